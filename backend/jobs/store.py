"""Job records: one JSON file per job in the data root's jobs folder, changed only under a lock.

::

    queued -> running -> done | failed | cancelled

Every record has ``job_id``, ``kind`` (see :mod:`backend.jobs.kinds`; records written before
kinds existed are training jobs), ``key`` (what the job computes: the same key is not run twice
at once), ``state``, ``executor`` (local or celery), ``progress``, ``error``, ``result`` and the
times; a kind adds its own fields (a training job its ``config``, ``images`` and ``model_id``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

from backend.cache import default_cache_dir
from backend.errors import BandscapeError, ParameterError
from backend.fileio import write_json_atomic
from backend.jobs.locking import exclusive

JOBS_DIR = "jobs"
STATES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE = ("queued", "running")
FINAL = ("done", "failed", "cancelled")
EXECUTORS = ("local", "celery")
LOG_TAIL_LINES = 40
_JOB_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,80}$")


class UnknownJobError(BandscapeError, KeyError):
    """A job id that has no record under the data root."""

    def __str__(self):
        return str(self.args[0]) if self.args else "unknown job"


def new_job_id() -> str:
    """Sortable by submission time, unique without coordination (several submitters share a root)."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def kind_of(rec: dict) -> str:
    return rec.get("kind") or "train"


def jobs_dir(root: str | os.PathLike) -> Path:
    """Where a data root's job records live: in the state folder (the cache folder,
    ``$BANDSCAPE_CACHE``), ``jobs/<root name>-<hash of its path>``, never in the root itself: a
    lab's dataset is often read-only or under version control, and job records are not data.
    Everything that runs a root's jobs (the app, the CLI, Celery workers on other machines) sees
    the same records when it has the same cache folder and the root at the same path."""
    root = Path(root).expanduser().resolve()
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return default_cache_dir() / JOBS_DIR / f"{root.name}-{digest}"


class JobStore:
    """The job records of one data root (see :func:`jobs_dir`).

    Every change goes through :meth:`update` (or :meth:`claim_next`), which holds an exclusive
    ``flock`` on ``.lock`` in the jobs folder while it reads, changes and atomically rewrites one
    record: the web processes (cancel), the worker (progress) and the runner (state) never
    overwrite each other.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()
        self.dir = jobs_dir(self.root)
        self._cache: dict[Path, tuple[int, dict]] = {}
        self._cache_lock = threading.Lock()

    # paths
    def path(self, job_id: str) -> Path:
        if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
            raise ParameterError(f"job id must be letters, digits, '-' and '_', got {job_id!r}")
        return self.dir / f"{job_id}.json"

    def log_path(self, job_id: str) -> Path:
        return self.path(job_id).with_suffix(".log")

    def lock(self):
        """Exclusive across processes and threads; not re-entrant."""
        return exclusive(self.dir / ".lock")

    # reading
    def load(self, job_id: str) -> dict:
        path = self.path(job_id)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise UnknownJobError(f"no job {job_id!r} under {self.dir} (list them with "
                                  f"`python -m backend jobs list --data {self.root}`)") from None

    def all(self, kind: str | None = None) -> list[dict]:
        """Every record (of one ``kind``), oldest first (re-read only when its file changed)."""
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
                if kind is None or kind_of(cached[1]) == kind:
                    records.append(cached[1])
            for gone in set(self._cache) - seen:
                del self._cache[gone]
        return sorted((dict(r) for r in records), key=lambda r: (r.get("created_at", 0), r.get("job_id", "")))

    def find(self, kind: str, key: str, states: Iterable[str] = STATES) -> dict | None:
        """The newest record of ``kind`` for ``key`` in one of ``states``."""
        states = tuple(states)
        found = [r for r in self.all(kind) if r.get("key") == key and r.get("state") in states]
        return found[-1] if found else None

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

    def claim_next(self, executor: str, worker: dict, kinds: Iterable[str] | None = None) -> dict | None:
        """Mark the oldest queued job of ``executor`` (and of one of ``kinds``) running for
        ``worker``; None if there is none."""
        if not self.dir.is_dir():  # nothing was ever submitted (and a read-only root stays untouched)
            return None
        kinds = None if kinds is None else set(kinds)
        with self.lock():
            queued = [r for r in self.all() if r.get("state") == "queued" and r.get("executor") == executor
                      and (kinds is None or kind_of(r) in kinds)]
            if not queued:
                return None
            rec = self.load(queued[0]["job_id"])
            if rec.get("state") != "queued":
                return None
            now = time.time()
            rec.update(state="running", started_at=now, heartbeat_at=now, worker=worker)
            return self._save(rec)


def new_record(kind: str, key: str, executor: str, *, created_at: float | None = None, **fields) -> dict:
    """A queued record with every common field; ``fields`` are the kind's own."""
    if executor not in EXECUTORS:
        raise ParameterError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    return {
        "job_id": new_job_id(), "kind": kind, "key": key, "state": "queued", "executor": executor,
        "created_at": created_at or time.time(), "started_at": None, "finished_at": None, "heartbeat_at": None,
        "worker": None, "cancel_requested": False, "progress": {"stage": "queued"}, "error": None,
        "result": None, **fields,
    }


def enqueue(store: JobStore, kind: str, key: str, *, executor: str, reuse_done: bool = True,
            **fields) -> tuple[dict, bool]:
    """Queue a job of ``kind`` for ``key`` unless one is queued or running (or, with
    ``reuse_done``, finished): returns (its record, whether it is new)."""
    with store.lock():
        states = ACTIVE + (("done",) if reuse_done else ())
        found = store.find(kind, key, states)
        if found is not None:
            return found, False
        return store._save(new_record(kind, key, executor, **fields)), True


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


def requeued_fields(rec: dict) -> dict:
    """The fields of a job put back in the queue, to run again from the start."""
    progress = ({"stage": "queued", "epoch": 0, "epochs": rec["config"]["epochs"]} if "config" in rec
                else {"stage": "queued"})
    fields = dict(state="queued", started_at=None, heartbeat_at=None, worker=None, progress=progress)
    fields.update({k: [] for k in ("history", "batch_losses") if k in rec})
    return fields
