"""Jobs whose worker is gone: a local job whose process died with its runner (put back in the
queue by the next runner, :func:`recover_local`), a Celery job whose worker stopped reporting
(failed, :func:`reap_lost_jobs`)."""

from __future__ import annotations

import os
import signal
import socket
import time

from backend.jobs.execute import cleanup
from backend.jobs.store import JobStore, kind_of, requeued_fields

STALE_S = 300.0          # a running job not heard of for this long has lost its worker


def alive(pid) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"the job's process was killed by {name}{hint}; see the log"
    return f"the job's process exited with code {code} without recording a result; see the log"


def orphan_alive(rec: dict, runner_pid: int) -> bool:
    """A running local job of this host that another (or no longer existing) runner started and
    whose process still runs and reports: it will record its own end."""
    w = rec.get("worker") or {}
    fresh = time.time() - (rec.get("heartbeat_at") or 0) < STALE_S
    runner_alive = w.get("runner_pid") != runner_pid and alive(w.get("runner_pid"))
    return fresh and (alive(w.get("job_pid")) or runner_alive)


def recover_local(store: JobStore, kinds=None, runner_pid: int | None = None) -> list[str]:
    """Put back in the queue the local jobs (of ``kinds``) of this host whose process is gone (the
    app was killed while they ran). Returns their ids."""
    host = socket.gethostname()
    runner_pid = os.getpid() if runner_pid is None else runner_pid
    requeued = []
    for rec in store.all():
        w = rec.get("worker") or {}
        if rec.get("state") != "running" or rec.get("executor") != "local" or w.get("host") != host:
            continue
        if kinds is not None and kind_of(rec) not in kinds:
            continue
        if orphan_alive(rec, runner_pid):
            continue
        cleanup(store, rec)
        if rec.get("cancel_requested"):
            store.update(rec["job_id"], only_if=("running",), state="cancelled", finished_at=time.time())
        else:
            store.update(rec["job_id"], only_if=("running",), **requeued_fields(rec))
            requeued.append(rec["job_id"])
    return requeued


def reap_lost_jobs(store: JobStore) -> list[str]:
    """Mark failed the Celery jobs whose worker stopped reporting (crashed machine, killed worker):
    running, no heartbeat for ``STALE_S``. Local jobs are the local runner's (:func:`recover_local`)."""
    lost = []
    now = time.time()
    for rec in store.all():
        if rec.get("state") == "running" and rec.get("executor") == "celery" \
                and now - (rec.get("heartbeat_at") or rec.get("started_at") or now) > STALE_S:
            host = (rec.get("worker") or {}).get("host", "?")
            if store.update(rec["job_id"], only_if=("running",), state="failed", finished_at=now,
                            error=f"the worker on {host} stopped reporting for {STALE_S:.0f} s "
                                  f"(crashed or stopped); submit the job again") is not None:
                cleanup(store, rec)
                lost.append(rec["job_id"])
    return lost
