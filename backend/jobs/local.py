"""The local runner: queued jobs of a data root run on this host, one at a time per lane, each in
a fresh process (``python -m backend.jobs.process``).

One runner per lane and host: every web worker of a multi-process server starts a
:class:`LocalRunner`, and the one that holds a lane's :class:`~backend.jobs.locking.LaneLock`
serves that lane; when its process dies the kernel frees the lock and another worker takes over
(a job still running in the dead worker's child is left to finish: it records its own end).
Cancelling a running job sends its process SIGTERM, which the process turns into a clean stop,
and SIGKILL after ``grace_s``. Stopping the runner puts its running jobs back in the queue, so a
restart resumes the queue.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from backend.jobs.execute import cleanup, worker_info
from backend.jobs.kinds import LANES, get_kind, kinds_in_lane
from backend.jobs.locking import LaneLock
from backend.jobs.reaper import exit_reason, orphan_alive, recover_local
from backend.jobs.runner import JobRunner
from backend.jobs.store import kind_of, requeued_fields

log = logging.getLogger("backend.jobs")

PROJECT = Path(__file__).resolve().parents[2]
LANE_RETRY_S = 2.0       # a worker without a lane's lock asks again this often


def _job_env() -> dict:
    """The job's environment: the project importable, and the thread limits a web process set
    for itself (``BANDSCAPE_JOB_UNSET``, see app.py) lifted: a job may use every core."""
    env = dict(os.environ)
    for var in env.pop("BANDSCAPE_JOB_UNSET", "").split():
        env.pop(var, None)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(PROJECT) + (os.pathsep + path if path else "")
    return env


class LocalRunner(JobRunner):
    """Runs the root's queued local jobs, one at a time per lane (see :data:`backend.jobs.kinds.LANES`).

    ``start()`` serves in background threads (the app); :meth:`serve` in the foreground (the CLI).
    """

    kind = "local"

    def __init__(self, root: str | os.PathLike, poll_s: float = 0.5, grace_s: float = 20.0, lanes=LANES):
        super().__init__(root)
        self.poll_s, self.grace_s = poll_s, grace_s
        self.lanes = tuple(lanes)
        self._locks = {lane: LaneLock(self.store.dir, lane) for lane in self.lanes}
        self._wakes = {lane: threading.Event() for lane in self.lanes}
        self._stopping = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        self.current: dict[str, str] = {}  # lane -> job id running now
        self._atexit = False

    def _dispatch(self, job_ids):
        for wake in self._wakes.values():
            wake.set()

    @property
    def serving(self) -> list[str]:
        """The lanes this runner holds (runs jobs of) now."""
        return [lane for lane, lock in self._locks.items() if lock.held]

    def start(self) -> "LocalRunner":
        if any(t.is_alive() for t in self._threads.values()):
            return self
        self._stopping.clear()
        for lane in self.lanes:
            t = threading.Thread(target=self._hold_and_serve, args=(lane,), name=f"bandscape-jobs-{lane}", daemon=True)
            self._threads[lane] = t
            t.start()
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        return self

    def _hold_and_serve(self, lane: str) -> None:
        lock = self._locks[lane]
        while not self._stopping.is_set():
            if lock.try_acquire():
                try:
                    self.recover(lane)
                    self._serve_lane(lane)
                finally:
                    lock.release()
                return
            self._stopping.wait(LANE_RETRY_S)

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._dispatch([])
        for proc in list(self._procs.values()):
            if proc.poll() is None:
                proc.terminate()  # -> requeued by the job process itself
        for proc in list(self._procs.values()):
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        for t in self._threads.values():
            if t is not threading.current_thread():
                t.join(timeout)

    def recover(self, lane: str | None = None) -> list[str]:
        """Put back in the queue the local jobs (of one lane) of this host whose process is gone
        (the app was killed while they ran). Returns their ids."""
        return recover_local(self.store, kinds_in_lane(lane) if lane else None)

    def serve(self, until: Callable[[], bool] | None = None, on_poll: Callable[[dict], None] | None = None) -> list[str]:
        """Run queued jobs in the foreground until stopped, or until ``until()`` is true when the
        queue is empty. Lanes another runner of this host holds are left to it. Returns the lanes
        served."""
        held = [lane for lane in self.lanes if self._locks[lane].try_acquire()]
        threads = [threading.Thread(target=self._serve_lane, args=(lane, until, on_poll), daemon=True,
                                    name=f"bandscape-jobs-{lane}") for lane in held]
        try:
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.5)
        finally:
            if any(t.is_alive() for t in threads):  # Ctrl-C: running jobs go back to the queue
                self.stop()
            for lane in held:
                self._locks[lane].release()
        return held

    def _orphan_running(self, kinds) -> bool:
        host = socket.gethostname()
        return any(r.get("state") == "running" and r.get("executor") == "local" and kind_of(r) in kinds
                   and (r.get("worker") or {}).get("host") == host and orphan_alive(r, os.getpid())
                   for r in self.store.all())

    def _serve_lane(self, lane: str, until=None, on_poll=None) -> None:
        kinds = kinds_in_lane(lane)
        wake = self._wakes[lane]
        while not self._stopping.is_set():
            try:
                if not self._orphan_running(kinds):
                    rec = self.store.claim_next("local", worker_info(runner_pid=os.getpid()), kinds)
                    if rec is not None:
                        log.info("job %s (%s %s) started", rec["job_id"], kind_of(rec), rec.get("key"))
                        final = self.run_claimed(rec, on_poll, lane)
                        log.info("job %s (%s %s) %s", rec["job_id"], kind_of(rec), rec.get("key"), final)
                        continue
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception:  # an unreadable record or a full disk must not end the queue for good
                log.exception("job runner of %s (%s lane): error; retrying", self.root, lane)
                self._stopping.wait(5.0)
                continue
            if until is not None and until():
                return
            wake.wait(self.poll_s)
            wake.clear()

    def run_claimed(self, rec: dict, on_poll: Callable[[dict], None] | None = None, lane: str | None = None) -> str:
        job_id = rec["job_id"]
        lane = lane or get_kind(kind_of(rec)).lane
        self.store.dir.mkdir(parents=True, exist_ok=True)
        with open(self.store.log_path(job_id), "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "backend.jobs.process", str(self.root), job_id],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=_job_env())
        self.current[lane], self._procs[lane] = job_id, proc
        try:
            self.store.update(job_id, lambda r: r["worker"].update(job_pid=proc.pid))
            term_sent = None
            while proc.poll() is None:
                try:
                    proc.wait(self.poll_s)
                except subprocess.TimeoutExpired:
                    pass
                rec = self.store.load(job_id)
                if on_poll is not None:
                    on_poll(rec)
                if rec.get("cancel_requested") and proc.poll() is None:
                    if term_sent is None:
                        proc.terminate()
                        term_sent = time.monotonic()
                    elif time.monotonic() - term_sent > self.grace_s:
                        proc.kill()
            rec = self.store.load(job_id)
            if rec["state"] == "running":  # the process died without recording its end
                cleanup(self.store, rec)
                if rec.get("cancel_requested"):
                    rec = self.store.update(job_id, state="cancelled", finished_at=time.time())
                elif self._stopping.is_set():  # stopped before it could requeue itself
                    rec = self.store.update(job_id, **requeued_fields(rec))
                else:
                    rec = self.store.update(job_id, state="failed", finished_at=time.time(),
                                            error=exit_reason(proc.returncode))
            if on_poll is not None:
                on_poll(rec)
            return rec["state"]
        finally:
            if proc.poll() is None:  # leaving abnormally (Ctrl-C in `jobs worker`): the job goes back to the queue
                proc.terminate()
                try:
                    proc.wait(self.grace_s)
                except subprocess.TimeoutExpired:
                    proc.kill()
            self.current.pop(lane, None)
            self._procs.pop(lane, None)
