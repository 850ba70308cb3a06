"""Training jobs: records on disk, a local runner, and the same task on Celery.

A job trains one model (a :class:`~backend.autoencoder.config.TrainConfig`) on a folder of
training images into a data root. Its record is ``<root>/jobs/{job_id}.json``, written atomically
under a lock, so the jobs table survives page reloads and app restarts, and every process that
shares the root (the app, the CLI, Celery workers on other machines) sees the same jobs::

    queued -> running -> done | failed | cancelled

Where a job runs:

* **locally** (the default): :class:`LocalRunner` runs queued jobs one at a time, each in a fresh
  process started with the ``spawn`` context. The web process never imports torch or touches
  CUDA (a CUDA context does not survive ``fork``), and a crash or an out-of-memory kill takes only
  the job down.
* **on Celery** (``REDIS_URL`` set): :class:`CeleryRunner` sends the job id through the Redis
  broker; any ``celery -A backend.jobs worker`` that sees the same data root (shared storage)
  runs it. This module's ``app`` is that Celery app.

Both paths run :func:`run_job`. It writes progress into the record (after every batch, at most once
a second) and looks at the record's cancel flag at each report, raising
:class:`backend.progress.Cancelled`; the local runner also interrupts its process. ``train_model``
writes its outputs only at the end, each atomically, and removes them if it is interrupted while
writing; files that a killed process may still have left are removed by
:func:`remove_partial_outputs`. So a cancelled or crashed job leaves no model.

The same model asked for twice runs once: while a job for a model id is queued or running, or
has finished and its model exists, submitting it again returns that job (:func:`submit_jobs`).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import math
import multiprocessing
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from backend.autoencoder.config import TrainConfig
from backend.catalog import model_paths, path_in_root, resolve_in_root
from backend.errors import BandscapeError, DataError, ParameterError
from backend.fileio import write_json_atomic
from backend.progress import Cancelled

log = logging.getLogger(__name__)

JOBS_DIR = "jobs"
STATES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE = ("queued", "running")
FINAL = ("done", "failed", "cancelled")
EXECUTORS = ("local", "celery")

WRITE_EVERY_S = 1.0      # a running job rewrites its record at most this often (plus at every epoch)
HEARTBEAT_S = 10.0       # a worker touches its job's record this often, even inside a long step
STALE_S = 300.0          # a running job not heard of for this long has lost its worker
MAX_BATCH_POINTS = 1000  # batch losses kept for the live curve (thinned beyond this)
LOG_TAIL_LINES = 40

#: training throughput at 224 px on this project's CPU (x86_64, 2 cores, AVX2, no bf16), from
#: ``bench/train_throughput.py``; scaled by (224 / image size)^2 for other sizes. Estimates only.
CPU_IMAGES_PER_S = {"resnet18": 6.2, "resnet50": 2.8}
UMAP_S = 10.0            # encoding aside, UMAP of a few hundred points, roughly

JOB_PROCESS_PREFIX = "bandscape-job-"
_JOB_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,80}$")


class UnknownJobError(BandscapeError, KeyError):
    """A job id that has no record under the data root."""

    def __str__(self):
        return str(self.args[0]) if self.args else "unknown job"


class _Interrupted(BaseException):
    """SIGTERM in a local job process: cancel if asked for, else the runner is stopping (requeue)."""


# ---- records --------------------------------------------------------------------------------------

def new_job_id() -> str:
    """Sortable by submission time, unique without coordination (several submitters share a root)."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def _fmt(x) -> str:
    return "nan" if x is None else f"{x:.4f}"


def _finite(x):
    """JSON has no NaN: a missing loss (no validation split) is written as null."""
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


class JobStore:
    """The job records of one data root (``<root>/jobs/``).

    Every change goes through :meth:`update` (or :meth:`claim_next`), which holds an exclusive
    ``flock`` on ``jobs/.lock`` while it reads, changes and atomically rewrites one record: the web
    process (cancel), the worker (progress) and the runner (state) never overwrite each other.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()
        self.dir = self.root / JOBS_DIR
        self._cache: dict[Path, tuple[int, dict]] = {}
        self._cache_lock = threading.Lock()

    # paths
    def path(self, job_id: str) -> Path:
        if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
            raise ParameterError(f"job id must be letters, digits, '-' and '_', got {job_id!r}")
        return self.dir / f"{job_id}.json"

    def log_path(self, job_id: str) -> Path:
        return self.path(job_id).with_suffix(".log")

    @contextlib.contextmanager
    def lock(self):
        """Exclusive across processes and threads (each call opens its own file description);
        not re-entrant."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fh = open(self.dir / ".lock", "a+")
        except OSError as exc:
            raise DataError(f"cannot write job records under {self.dir}: {exc.strerror or exc}") from None
        with fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # reading
    def load(self, job_id: str) -> dict:
        path = self.path(job_id)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise UnknownJobError(f"no job {job_id!r} under {self.dir} (list them with "
                                  f"`python -m backend jobs list --out {self.root}`)") from None

    def all(self) -> list[dict]:
        """Every record, oldest first (re-read only when its file changed)."""
        if not self.dir.is_dir():
            return []
        records = []
        with self._cache_lock:
            seen = set()
            for entry in os.scandir(self.dir):
                if not entry.name.endswith(".json") or entry.name.startswith("."):
                    continue
                path = Path(entry.path)
                seen.add(path)
                try:
                    mtime = entry.stat().st_mtime_ns
                    cached = self._cache.get(path)
                    if cached is None or cached[0] != mtime:
                        cached = (mtime, json.loads(path.read_text()))
                        self._cache[path] = cached
                except (FileNotFoundError, json.JSONDecodeError):
                    continue  # removed meanwhile, or not a record of ours
                records.append(cached[1])
            for gone in set(self._cache) - seen:
                del self._cache[gone]
        return sorted((dict(r) for r in records), key=lambda r: (r.get("created_at", 0), r.get("job_id", "")))

    def log_tail(self, job_id: str, lines: int = LOG_TAIL_LINES) -> str:
        try:
            with open(self.log_path(job_id), "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 64 * 1024))
                text = fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # writing
    def _save(self, rec: dict) -> dict:
        rec["updated_at"] = time.time()
        write_json_atomic(self.path(rec["job_id"]), rec)
        return rec

    def create(self, rec: dict) -> dict:
        with self.lock():
            return self._save(rec)

    def update(self, job_id: str, changes: dict | Callable[[dict], dict | None] | None = None,
               only_if: Iterable[str] | None = None, **fields) -> dict | None:
        """Change one record under the lock: ``changes`` is a dict to merge, or a function that
        edits the record in place (returning False skips the write). With ``only_if``, the
        change is made only when the job is in one of those states; None is returned otherwise."""
        with self.lock():
            rec = self.load(job_id)
            if only_if is not None and rec.get("state") not in tuple(only_if):
                return None
            if callable(changes):
                if changes(rec) is False:
                    return rec
            elif changes:
                rec.update(changes)
            rec.update(fields)
            return self._save(rec)

    def claim_next(self, executor: str, worker: dict) -> dict | None:
        """Mark the oldest queued job of ``executor`` running for ``worker``; None if none."""
        if not self.dir.is_dir():  # nothing was ever submitted (and a read-only root stays untouched)
            return None
        with self.lock():
            queued = [r for r in self.all() if r.get("state") == "queued" and r.get("executor") == executor]
            if not queued:
                return None
            rec = self.load(queued[0]["job_id"])
            if rec.get("state") != "queued":
                return None
            now = time.time()
            rec.update(state="running", started_at=now, heartbeat_at=now, worker=worker)
            return self._save(rec)


# ---- submitting -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Submission:
    """What became of one requested model: ``queued`` (a new job), ``duplicate`` (the job already
    queued, running or done for that model id) or ``exists`` (the model is there already and was
    not made by a job; nothing to do unless ``overwrite``)."""

    model_id: str
    status: str
    job_id: str | None


def count_images(folder: str | os.PathLike) -> int:
    folder = Path(folder)
    return sum(1 for e in os.scandir(folder) if e.name.lower().endswith(".png") and not e.name.startswith(".")) \
        if folder.is_dir() else 0


def model_exists(root: str | os.PathLike, model_id: str) -> bool:
    paths = model_paths(root, model_id)
    return paths["embedding"].exists() or paths["weights"].exists()


def estimate_seconds(cfg: TrainConfig, n_images: int, images_per_s: float | None = None) -> float:
    """Rough wall time of one training run on this project's CPU (or at ``images_per_s``)."""
    ips = images_per_s or CPU_IMAGES_PER_S.get(cfg.arch, CPU_IMAGES_PER_S["resnet50"]) * (224 / cfg.image_size) ** 2
    n_val = int(round(cfg.split * n_images))
    n_train = n_images - n_val
    # a forward pass (validation, encoding) costs about a third of a training step
    per_epoch = n_train / ips + n_val / (3 * ips)
    return cfg.epochs * per_epoch + n_images / (3 * ips) + UMAP_S


def _check_images(root: Path, images: str | os.PathLike) -> tuple[Path, str]:
    """The folder, and how the record names it: relative to the root when inside it, so a
    worker that mounts the shared root elsewhere still finds it."""
    folder = Path(images).expanduser()
    folder = (folder if folder.is_absolute() else Path.cwd() / folder).resolve()
    if not folder.is_dir():
        raise ParameterError(f"images: folder {folder} does not exist")
    if count_images(folder) < 3:
        raise ParameterError(f"images: folder {folder} has {count_images(folder)} PNG images; training needs at least 3")
    return folder, path_in_root(root, folder)


def submit_jobs(store: JobStore, configs: Iterable[TrainConfig], images: str | os.PathLike,
                executor: str = "local", overwrite: bool = False) -> list[Submission]:
    """Validate every config (ParameterError names the field), then queue a job per model id that
    is not already queued, running or done (see :class:`Submission`). Nothing is queued if any
    config is invalid."""
    if executor not in EXECUTORS:
        raise ParameterError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    configs = [c.validate() for c in configs]
    if not configs:
        raise ParameterError("nothing to train: the grid selection is empty")
    folder, stored_images = _check_images(store.root, images)
    n_images = count_images(folder)
    out: list[Submission] = []
    with store.lock():
        records = store.all()
        active = {r["model_id"]: r for r in records if r.get("state") in ACTIVE}
        done = {r["model_id"]: r for r in records if r.get("state") == "done"}
        now = time.time()
        for i, cfg in enumerate(configs):
            mid = cfg.model_id
            exists = model_exists(store.root, mid)
            if mid in active:
                out.append(Submission(mid, "duplicate", active[mid]["job_id"]))
                continue
            if exists and not overwrite:
                job = done.get(mid)
                out.append(Submission(mid, "duplicate", job["job_id"]) if job else Submission(mid, "exists", None))
                continue
            job_id = new_job_id()
            rec = {
                "job_id": job_id, "model_id": mid, "state": "queued", "executor": executor,
                "config": cfg.as_dict(), "images": stored_images, "n_images": n_images,
                "overwrite": bool(overwrite), "created_at": now + i * 1e-6, "started_at": None, "finished_at": None,
                "heartbeat_at": None, "worker": None, "cancel_requested": False,
                "estimate_s": round(estimate_seconds(cfg, n_images), 1),
                "progress": {"stage": "queued", "epoch": 0, "epochs": cfg.epochs},
                "history": [], "batch_losses": [], "error": None, "result": None,
            }
            store._save(rec)
            active[mid] = rec
            out.append(Submission(mid, "queued", job_id))
    return out


def request_cancel(store: JobStore, job_id: str) -> dict:
    """A queued job is cancelled at once; a running one gets the cancel flag, which its worker
    acts on at its next progress report. Finished jobs are left as they are."""

    def change(rec):
        if rec["state"] == "queued":
            rec.update(state="cancelled", finished_at=time.time(), cancel_requested=True)
        elif rec["state"] == "running":
            rec["cancel_requested"] = True
        else:
            return False

    return store.update(job_id, change)


# ---- running one job (both paths) ---------------------------------------------------------------

def _worker_info(**extra) -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), **extra}


def started_training(rec: dict) -> bool:
    """Whether a job got as far as training (before that it wrote nothing, so it has nothing to
    clean up, and files of the same model id are someone else's)."""
    return (rec.get("progress") or {}).get("stage") not in (None, "queued")


def remove_partial_outputs(root: str | os.PathLike, model_id: str, since: float | None) -> list[Path]:
    """Remove a model's files written at or after ``since`` (a job's start): what a killed job may
    have left. Older files (a model being overwritten) are kept."""
    removed = []
    if since is None:
        return removed
    for path in model_paths(root, model_id).values():
        try:
            if path.stat().st_mtime >= since:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            pass
    return removed


class JobProgress:
    """The progress callback of a running job: keeps the record's progress, per-epoch history
    and batch losses up to date, and raises :class:`Cancelled` when the record asks for it."""

    def __init__(self, store: JobStore, job_id: str, log=None):
        self.store, self.job_id, self.log = store, job_id, log
        self.t_train = time.perf_counter()  # ETA counts loading and set-up as part of the run
        self.last_write = 0.0
        self.progress: dict = {}
        self.history: list[dict] = []
        self.batch_losses: list[list[float]] = []
        self._step, self._n_batches = 1, 0  # keep every n-th batch loss once there are many

    def __call__(self, done: int, total: int, **info) -> None:
        stage = info.get("stage", "train")
        now = time.perf_counter()
        p = self.progress
        p.update(stage=stage, epoch=done, epochs=total)
        if stage == "batch":
            batch, batches = info.get("batch", 0), max(info.get("batches", 1), 1)
            p.update(batch=batch, batches=batches, batch_loss=_finite(info.get("batch_loss")),
                     images_per_s=_finite(info.get("images_per_s")))
            fraction = (done + batch / batches) / max(total, 1)
            self._n_batches += 1
            if self._n_batches % self._step == 0:
                self.batch_losses.append([round(done + batch / batches, 4), _finite(info.get("batch_loss"))])
            if len(self.batch_losses) > MAX_BATCH_POINTS:
                self.batch_losses = self.batch_losses[::2]
                self._step *= 2
        elif stage == "train":
            row = {"epoch": done, "train_loss": _finite(info.get("train_loss")),
                   "val_loss": _finite(info.get("val_loss")), "images_per_s": _finite(info.get("images_per_s"))}
            self.history.append(row)
            p.update(train_loss=row["train_loss"], val_loss=row["val_loss"], images_per_s=row["images_per_s"],
                     batch=p.get("batches", 0))
            fraction = done / max(total, 1)
            self._log(f"epoch {done}/{total}: train loss {_fmt(row['train_loss'])}"
                      + (f", val loss {_fmt(row['val_loss'])}" if row["val_loss"] is not None else "")
                      + (f", {row['images_per_s']:.1f} images/s" if row["images_per_s"] else ""))
        else:  # encode, umap, done: training is over
            fraction = 1.0
            self._log(f"stage {stage}")
        elapsed = now - self.t_train
        p["fraction"] = round(min(fraction, 1.0), 4)
        p["eta_s"] = round(elapsed * (1 - fraction) / fraction, 1) if 0 < fraction < 1 else (0.0 if fraction >= 1 else None)
        if stage == "batch" and time.monotonic() - self.last_write < WRITE_EVERY_S:
            return
        self.last_write = time.monotonic()
        rec = self.store.update(self.job_id, progress=dict(p), history=list(self.history),
                                batch_losses=list(self.batch_losses), heartbeat_at=time.time())
        # once the outputs are written ("done") the model stays: a late cancel has nothing to stop
        if rec.get("cancel_requested") and stage != "done":
            self._log("cancel requested: stopping")
            raise Cancelled(f"job {self.job_id} cancelled")

    def _log(self, line: str) -> None:
        if self.log is not None:
            self.log.write(f"{time.strftime('%H:%M:%S')} {line}\n")
            self.log.flush()


class _Heartbeat(threading.Thread):
    """Touches the record while a long step (encoding, UMAP, one slow batch) reports nothing, so a
    silent record means a dead worker."""

    def __init__(self, store: JobStore, job_id: str):
        super().__init__(name=f"bandscape-heartbeat-{job_id}", daemon=True)
        self.store, self.job_id, self.stopped = store, job_id, threading.Event()

    def run(self):
        while not self.stopped.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):
                self.store.update(self.job_id, only_if=("running",), heartbeat_at=time.time())


def _requeued(rec: dict) -> dict:
    """The fields of a job put back in the queue, to run again from the start."""
    return dict(state="queued", started_at=None, heartbeat_at=None, worker=None, history=[], batch_losses=[],
                progress={"stage": "queued", "epoch": 0, "epochs": rec["config"]["epochs"]})


def execute_job(store: JobStore, job_id: str) -> str:
    """Train a job already marked running; record its outcome. Returns the final state."""
    rec = store.load(job_id)
    model_id, started = rec["model_id"], rec.get("started_at")
    store.dir.mkdir(parents=True, exist_ok=True)
    log = open(store.log_path(job_id), "a", buffering=1, encoding="utf-8")
    heartbeat = _Heartbeat(store, job_id)
    heartbeat.start()
    progress = JobProgress(store, job_id, log)
    try:
        progress._log(f"job {job_id}: {model_id} on {socket.gethostname()} (pid {os.getpid()})")
        from backend.autoencoder.training import train_model  # torch: in the worker only

        progress.t_train = time.perf_counter()
        images = resolve_in_root(store.root, rec["images"])
        result = train_model(TrainConfig(**rec["config"]), images, store.root, progress=progress,
                             overwrite=rec.get("overwrite", False))
        store.update(job_id, state="done", finished_at=time.time(),
                     result={"wall_time_s": round(result.wall_time_s, 2), "device": result.device},
                     progress={**progress.progress, "stage": "done", "fraction": 1.0, "eta_s": 0.0})
        progress._log(f"done in {result.wall_time_s:.1f} s on {result.device}")
        return "done"
    except (Cancelled, _Interrupted) as exc:
        if progress.progress:
            remove_partial_outputs(store.root, model_id, started)
        if isinstance(exc, _Interrupted) and not store.load(job_id).get("cancel_requested"):
            # the runner is stopping (app shut down): back in the queue, to run again from the start
            progress._log("interrupted: the runner stopped; the job is queued again")
            store.update(job_id, **_requeued(rec))
            return "queued"
        progress._log("cancelled; no model written")
        store.update(job_id, state="cancelled", finished_at=time.time())
        return "cancelled"
    except BaseException as exc:
        log.write(traceback.format_exc())
        if progress.progress:  # a run refused up front ("already exists") wrote nothing
            remove_partial_outputs(store.root, model_id, started)
        message = str(exc) if isinstance(exc, BandscapeError) else f"{type(exc).__name__}: {exc}"
        store.update(job_id, state="failed", finished_at=time.time(), error=message or type(exc).__name__)
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt, SystemExit: the worker is going down
        return "failed"
    finally:
        heartbeat.stopped.set()
        log.close()


def run_job(root: str, job_id: str) -> str:
    """The task both paths run: claim a queued job and train it. A job that is no longer queued
    (cancelled meanwhile, or a message delivered twice) is left alone. Returns the final state.

    ``BANDSCAPE_DATA``, when set in a worker's environment, replaces ``root`` (the shared data
    root mounted at another path on that machine)."""
    store = JobStore(os.environ.get("BANDSCAPE_DATA") or root)
    if store.update(job_id, only_if=("queued",), state="running", started_at=time.time(),
                    heartbeat_at=time.time(), worker=_worker_info()) is None:
        return store.load(job_id)["state"]
    return execute_job(store, job_id)


def _job_process_main(root: str, job_id: str) -> None:
    """Entry point of a local job's process: output to the job's log, SIGTERM -> interrupt."""
    store = JobStore(root)
    fd = os.open(store.log_path(job_id), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)  # C-level output too (warnings of native libraries, fatal errors)
    os.dup2(fd, 2)
    os.close(fd)

    def on_term(signum, frame):
        raise _Interrupted()

    signal.signal(signal.SIGTERM, on_term)
    # Ctrl-C in a terminal reaches the whole process group: the runner decides (SIGTERM), not the job
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        execute_job(store, job_id)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the outcome is recorded: exit quietly


# ---- the runners --------------------------------------------------------------------------------

class JobRunner:
    """Submit, cancel and list the jobs of one data root; subclasses say where jobs run."""

    kind = "local"

    def __init__(self, root: str | os.PathLike):
        self.store = JobStore(root)

    @property
    def root(self) -> Path:
        return self.store.root

    def submit(self, configs: Iterable[TrainConfig], images: str | os.PathLike, overwrite: bool = False) -> list[Submission]:
        subs = submit_jobs(self.store, configs, images, self.kind, overwrite)
        self._dispatch([s.job_id for s in subs if s.status == "queued"])
        return subs

    def cancel(self, job_id: str) -> dict:
        return request_cancel(self.store, job_id)

    def jobs(self) -> list[dict]:
        reap_lost_jobs(self.store)
        return self.store.all()

    def _dispatch(self, job_ids: list[str]) -> None:
        pass

    def start(self) -> "JobRunner":
        return self

    def stop(self) -> None:
        pass


class LocalRunner(JobRunner):
    """Runs the root's queued local jobs one at a time, each in a fresh ``spawn`` process.

    ``start()`` runs it in a background thread (the app); :meth:`serve` in the foreground (the
    CLI). Cancelling a running job sends its process SIGTERM, which the process turns into a clean
    stop (no model), and SIGKILL after ``grace_s``. Stopping the runner puts its running job back
    in the queue, so an app restart resumes the queue.
    """

    kind = "local"

    def __init__(self, root: str | os.PathLike, poll_s: float = 0.5, grace_s: float = 20.0):
        super().__init__(root)
        self.poll_s, self.grace_s = poll_s, grace_s
        self._ctx = multiprocessing.get_context("spawn")
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc = None
        self.current: str | None = None

    def _dispatch(self, job_ids):
        self._wake.set()

    def start(self) -> "LocalRunner":
        if multiprocessing.current_process().name.startswith(JOB_PROCESS_PREFIX):
            # a spawn child re-imports the parent's main module; a runner started there at import
            # time must not start a second queue inside the job's process
            return self
        if self._thread is None or not self._thread.is_alive():
            self.recover()
            self._stopping.clear()
            self._thread = threading.Thread(target=self.serve, name="bandscape-jobs", daemon=True)
            self._thread.start()
            atexit.register(self.stop)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._wake.set()
        proc = self._proc
        if proc is not None and proc.is_alive():
            proc.terminate()  # -> requeued by the job process itself
            proc.join(timeout)
            if proc.is_alive():
                proc.kill()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def recover(self) -> list[str]:
        """Put back in the queue the local jobs of this host whose process is gone (the app was
        killed while they ran). Returns their ids."""
        host = socket.gethostname()
        requeued = []
        for rec in self.store.all():
            w = rec.get("worker") or {}
            if rec.get("state") != "running" or rec.get("executor") != "local" or w.get("host") != host:
                continue
            fresh = time.time() - (rec.get("heartbeat_at") or 0) < STALE_S
            runner_alive = w.get("runner_pid") != os.getpid() and _alive(w.get("runner_pid"))
            if fresh and (_alive(w.get("job_pid")) or runner_alive):
                continue  # another runner's, or orphaned but alive: it will record its own end
            if started_training(rec):
                remove_partial_outputs(self.root, rec["model_id"], rec.get("started_at"))
            if rec.get("cancel_requested"):
                self.store.update(rec["job_id"], only_if=("running",), state="cancelled", finished_at=time.time())
            else:
                self.store.update(rec["job_id"], only_if=("running",), **_requeued(rec))
                requeued.append(rec["job_id"])
        return requeued

    def serve(self, until: Callable[[], bool] | None = None, on_poll: Callable[[dict], None] | None = None) -> None:
        """Run queued jobs until stopped, or until ``until()`` is true when the queue is empty."""
        while not self._stopping.is_set():
            try:
                rec = self.store.claim_next("local", _worker_info(runner_pid=os.getpid()))
                if rec is not None:
                    log.info("job %s (%s) started", rec["job_id"], rec["model_id"])
                    final = self.run_claimed(rec, on_poll)
                    log.info("job %s (%s) %s", rec["job_id"], rec["model_id"], final)
                    continue
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception:  # an unreadable record or a full disk must not end the queue for good
                log.exception("job runner of %s: error; retrying", self.root)
                self._stopping.wait(5.0)
                continue
            if until is not None and until():
                return
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def run_claimed(self, rec: dict, on_poll: Callable[[dict], None] | None = None) -> str:
        job_id = rec["job_id"]
        proc = self._ctx.Process(target=_job_process_main, args=(str(self.root), job_id),
                                 name=f"{JOB_PROCESS_PREFIX}{job_id}")
        self.current, self._proc = job_id, proc
        try:
            proc.start()
            self.store.update(job_id, lambda r: r["worker"].update(job_pid=proc.pid))
            term_sent = None
            while proc.is_alive():
                proc.join(self.poll_s)
                rec = self.store.load(job_id)
                if on_poll is not None:
                    on_poll(rec)
                if rec.get("cancel_requested") and proc.is_alive():
                    if term_sent is None:
                        proc.terminate()
                        term_sent = time.monotonic()
                    elif time.monotonic() - term_sent > self.grace_s:
                        proc.kill()
            rec = self.store.load(job_id)
            if rec["state"] == "running":  # the process died without recording its end
                if started_training(rec):
                    remove_partial_outputs(self.root, rec["model_id"], rec.get("started_at"))
                if rec.get("cancel_requested"):
                    rec = self.store.update(job_id, state="cancelled", finished_at=time.time())
                elif self._stopping.is_set():  # stopped before it could requeue itself
                    rec = self.store.update(job_id, **_requeued(rec))
                else:
                    rec = self.store.update(job_id, state="failed", finished_at=time.time(),
                                            error=_exit_reason(proc.exitcode))
            if on_poll is not None:
                on_poll(rec)
            return rec["state"]
        finally:
            if proc.is_alive():  # leaving abnormally (Ctrl-C in `jobs worker`): the job goes back to the queue
                proc.terminate()
                proc.join(self.grace_s)
                if proc.is_alive():
                    proc.kill()
            self.current, self._proc = None, None


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"the training process was killed by {name}{hint}; see the log"
    return f"the training process exited with code {code} without recording a result; see the log"


def _alive(pid) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_lost_jobs(store: JobStore) -> list[str]:
    """Mark failed the Celery jobs whose worker stopped reporting (crashed machine, killed worker):
    running, no heartbeat for ``STALE_S``. Local jobs are the local runner's (:meth:`LocalRunner.recover`)."""
    lost = []
    now = time.time()
    for rec in store.all():
        if rec.get("state") == "running" and rec.get("executor") == "celery" \
                and now - (rec.get("heartbeat_at") or rec.get("started_at") or now) > STALE_S:
            host = (rec.get("worker") or {}).get("host", "?")
            if store.update(rec["job_id"], only_if=("running",), state="failed", finished_at=now,
                            error=f"the worker on {host} stopped reporting for {STALE_S:.0f} s "
                                  f"(crashed or stopped); submit the job again") is not None:
                if started_training(rec):
                    remove_partial_outputs(store.root, rec["model_id"], rec.get("started_at"))
                lost.append(rec["job_id"])
    return lost


# ---- Celery -------------------------------------------------------------------------------------

TASK_NAME = "bandscape.run_job"


def make_celery(broker_url: str | None = None):
    """The Celery app: Redis broker, one long job per worker process at a time, no result backend
    (progress and results are in the job records on the shared data root)."""
    from celery import Celery

    capp = Celery("bandscape", broker=broker_url or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
                  set_as_current=False)
    capp.conf.update(
        task_serializer="json", accept_content=["json"], task_ignore_result=True,
        # a worker takes a job only when it is free, so an idle GPU machine gets the next one
        task_acks_late=True, worker_prefetch_multiplier=1,
        # a training run takes hours; Redis must not hand an unacknowledged job to another worker
        broker_transport_options={"visibility_timeout": 7 * 24 * 3600},
        broker_connection_retry_on_startup=True,
    )
    capp.task(name=TASK_NAME, ignore_result=True)(run_job)
    return capp


class CeleryRunner(JobRunner):
    """Sends jobs to Celery workers through Redis; they write progress into the shared records."""

    kind = "celery"

    def __init__(self, root: str | os.PathLike, broker_url: str):
        super().__init__(root)
        self.broker_url = broker_url
        self._celery = make_celery(broker_url)

    def _dispatch(self, job_ids):
        for job_id in job_ids:
            try:
                self._celery.send_task(TASK_NAME, args=[str(self.root), job_id], task_id=job_id, retry=True,
                                       retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5})
            except Exception as exc:
                self.store.update(job_id, only_if=("queued",), state="failed", finished_at=time.time(),
                                  error=f"could not reach the broker at {_redact(self.broker_url)}: {exc}")
                raise BandscapeError(f"job {job_id} not sent: could not reach the broker at "
                                     f"{_redact(self.broker_url)} ({exc}); is redis-server running?") from None


def _redact(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)


def make_runner(root: str | os.PathLike, redis_url: str | None = None) -> JobRunner:
    """A Celery runner when ``redis_url`` (or ``$REDIS_URL``) is set, else a local runner (not
    started: the app calls ``start()``)."""
    url = redis_url if redis_url is not None else os.environ.get("REDIS_URL")
    return CeleryRunner(root, url) if url else LocalRunner(root)


# ---- presentation helpers (CLI and page) ----------------------------------------------------------

def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600} h {rest % 3600 // 60:02d} min"
    return f"{days} d {text}" if days else text


def format_progress(rec: dict) -> str:
    """One line: where a job is (epoch of total, losses, images/s, ETA) or how it ended."""
    p = rec.get("progress") or {}
    state = rec.get("state")
    if state == "queued":
        return f"waiting; ≈ {format_duration(rec.get('estimate_s'))} of training on this CPU"
    if state == "failed":
        return f"failed: {rec.get('error') or 'see the log'}"
    if state == "cancelled":
        return "cancelled"
    if state == "running" and p.get("stage") in (None, "queued"):
        return "starting (loading the images, building the model)"
    parts = [f"epoch {p.get('epoch', 0)}/{p.get('epochs', '?')}"]
    if state == "running" and p.get("stage") == "batch" and p.get("batches"):
        parts[0] += f" (batch {p.get('batch')}/{p.get('batches')})"
    elif state == "running" and p.get("stage") in ("encode", "umap"):
        parts.append("encoding" if p["stage"] == "encode" else "UMAP")
    if p.get("train_loss") is not None:
        parts.append(f"train {p['train_loss']:.4f}")
    if p.get("val_loss") is not None:
        parts.append(f"val {p['val_loss']:.4f}")
    if p.get("images_per_s"):
        parts.append(f"{p['images_per_s']:.1f} img/s")
    if state == "running":
        parts.append(f"ETA {format_duration(p.get('eta_s'))}")
    if state == "done" and rec.get("result"):
        parts.append(f"{format_duration(rec['result'].get('wall_time_s'))} on {rec['result'].get('device')}")
    return " · ".join(parts)


# ``celery -A backend.jobs worker`` finds this app; importing it costs ~0.1 s and no connection
try:
    app = make_celery()
except ImportError:  # celery is needed only with REDIS_URL
    app = None
