"""Running one job, the same on both paths (a local runner's child process, a Celery worker).

:func:`run_job` claims a queued job and :func:`execute_job` runs its kind's function with a
:class:`JobContext`: progress into the record (at most once a second), the cancel flag checked at
each report (raising :class:`backend.progress.Cancelled`), a heartbeat while a long step reports
nothing, and the outcome recorded: done with the function's result, cancelled or failed (the
kind's cleanup removes what it left), or back in the queue when the runner is stopping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
import traceback
from pathlib import Path

from backend.errors import BandscapeError
from backend.jobs.kinds import get_kind, resolve
from backend.jobs.store import JobStore, kind_of, requeued_fields
from backend.progress import Cancelled

WRITE_EVERY_S = 1.0      # a running job rewrites its record at most this often (plus at every stage)
HEARTBEAT_S = 10.0       # a worker touches its job's record this often, even inside a long step


class Interrupted(BaseException):
    """SIGTERM in a local job process: cancel if asked for, else the runner is stopping (requeue)."""


def worker_info(**extra) -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), **extra}


class JobContext:
    """What a kind's function gets: the record, the log, a progress callback and a place to put
    results so that they appear all at once."""

    def __init__(self, store: JobStore, record: dict, log=None):
        self.store, self.record, self.job_id, self.root = store, record, record["job_id"], store.root
        self._log = log
        self.t0 = time.perf_counter()
        self._last_write, self._stage = 0.0, None

    def log(self, line: str) -> None:
        if self._log is not None:
            self._log.write(f"{time.strftime('%H:%M:%S')} {line}\n")
            self._log.flush()

    def progress(self, done: int, total: int, **info) -> None:
        """The common progress signature (:mod:`backend.progress`): ``done`` of ``total`` units,
        ``stage`` and any numbers or strings in ``info`` are shown; raises Cancelled when asked."""
        stage = info.get("stage", "")
        fraction = min(done / max(total, 1), 1.0)
        elapsed = time.perf_counter() - self.t0
        p = {"stage": stage, "done": int(done), "total": int(total), "fraction": round(fraction, 4),
             "eta_s": round(elapsed * (1 - fraction) / fraction, 1) if 0 < fraction < 1 else (0.0 if fraction >= 1 else None)}
        p.update({k: v for k, v in info.items() if k != "stage" and isinstance(v, (int, float, str))})
        if stage == self._stage and done < total and time.monotonic() - self._last_write < WRITE_EVERY_S:
            return
        self._stage, self._last_write = stage, time.monotonic()
        rec = self.store.update(self.job_id, progress=p, heartbeat_at=time.time())
        if rec.get("cancel_requested"):
            self.log("cancel requested: stopping")
            raise Cancelled(f"job {self.job_id} cancelled")

    @contextlib.contextmanager
    def publish_dir(self, final: str | os.PathLike):
        """Yield an empty folder beside ``final``; when the block succeeds it becomes ``final``
        in one rename (replacing an older one), so readers see all of a result or none of it.
        On any exception (a cancel) it is removed."""
        final = Path(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        try:
            yield tmp
            old = None
            if final.exists():
                old = final.with_name(f".{final.name}.old-{os.getpid()}")
                os.rename(final, old)
            os.rename(tmp, final)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


class _Heartbeat(threading.Thread):
    """Touches the record while a long step reports nothing, so a silent record means a dead worker."""

    def __init__(self, store: JobStore, job_id: str):
        super().__init__(name=f"bandscape-heartbeat-{job_id}", daemon=True)
        self.store, self.job_id, self.stopped = store, job_id, threading.Event()

    def run(self):
        while not self.stopped.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):
                self.store.update(self.job_id, only_if=("running",), heartbeat_at=time.time())


def cleanup(store: JobStore, rec: dict) -> None:
    """Run the kind's cleanup (what a cancelled, failed or killed job may have left)."""
    kind = get_kind(kind_of(rec))
    if kind.cleanup:
        resolve(kind.cleanup)(store.root, rec)


def execute_job(store: JobStore, job_id: str) -> str:
    """Run a job already marked running; record its outcome. Returns the final state."""
    rec = store.load(job_id)
    kind = get_kind(kind_of(rec))
    store.dir.mkdir(parents=True, exist_ok=True)
    log = open(store.log_path(job_id), "a", buffering=1, encoding="utf-8")
    heartbeat = _Heartbeat(store, job_id)
    heartbeat.start()
    ctx = JobContext(store, rec, log)
    try:
        ctx.log(f"job {job_id}: {kind.name} {rec.get('model_id') or rec.get('key', '')} on "
                f"{socket.gethostname()} (pid {os.getpid()})")
        result = resolve(kind.run)(ctx)
        now = store.load(job_id)
        store.update(job_id, state="done", finished_at=time.time(), result=result,
                     progress={**(now.get("progress") or {}), "stage": "done", "fraction": 1.0, "eta_s": 0.0})
        return "done"
    except (Cancelled, Interrupted) as exc:
        cleanup(store, store.load(job_id))
        if isinstance(exc, Interrupted) and not store.load(job_id).get("cancel_requested"):
            # the runner is stopping (app shut down): back in the queue, to run again from the start
            ctx.log("interrupted: the runner stopped; the job is queued again")
            store.update(job_id, **requeued_fields(rec))
            return "queued"
        ctx.log("cancelled; nothing of it is kept")
        store.update(job_id, state="cancelled", finished_at=time.time())
        return "cancelled"
    except BaseException as exc:
        log.write(traceback.format_exc())
        cleanup(store, store.load(job_id))
        message = str(exc) if isinstance(exc, BandscapeError) else f"{type(exc).__name__}: {exc}"
        store.update(job_id, state="failed", finished_at=time.time(), error=message or type(exc).__name__)
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt, SystemExit: the worker is going down
        return "failed"
    finally:
        heartbeat.stopped.set()
        log.close()


def run_job(root: str, job_id: str) -> str:
    """The task both paths run: claim a queued job and run it. A job that is no longer queued
    (cancelled meanwhile, or a message delivered twice) is left alone. Returns the final state.

    ``BANDSCAPE_DATA``, when set in a worker's environment, replaces ``root`` (the shared data
    root mounted at another path on that machine)."""
    store = JobStore(os.environ.get("BANDSCAPE_DATA") or root)
    if store.update(job_id, only_if=("queued",), state="running", started_at=time.time(),
                    heartbeat_at=time.time(), worker=worker_info()) is None:
        return store.load(job_id)["state"]
    return execute_job(store, job_id)
