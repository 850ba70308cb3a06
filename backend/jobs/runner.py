"""Submitting, cancelling and listing the jobs of one data root: :class:`JobRunner`, whose
subclasses say where jobs run (:mod:`backend.jobs.local`, :mod:`backend.jobs.celery_app`);
:func:`backend.jobs.choose.make_runner` picks one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from backend.jobs.kinds import get_kind
from backend.jobs.reaper import reap_lost_jobs
from backend.jobs.store import JobStore, enqueue, request_cancel
from backend.jobs.train_job import submit_jobs


class JobRunner:
    """Submit, cancel and list the jobs of one data root; subclasses say where jobs run."""

    kind = "local"

    def __init__(self, root: str | os.PathLike):
        self.store = JobStore(root)

    @property
    def root(self) -> Path:
        return self.store.root

    def submit(self, configs: Iterable, images: str | os.PathLike, overwrite: bool = False) -> list:
        """Queue training jobs (see :func:`backend.jobs.train_job.submit_jobs`)."""
        subs = submit_jobs(self.store, configs, images, executor=self.kind, overwrite=overwrite)
        self._dispatch([s.job_id for s in subs if s.status == "queued"])
        return subs

    def submit_job(self, kind: str, key: str, reuse_done: bool = True, **fields) -> dict:
        """Queue a job of any kind for ``key`` unless one is queued, running (or done, with
        ``reuse_done``) for it: returns the record, new or found."""
        get_kind(kind)
        rec, new = enqueue(self.store, kind, key, executor=self.kind, reuse_done=reuse_done, **fields)
        if new:
            self._dispatch([rec["job_id"]])
        return rec

    def cancel(self, job_id: str) -> dict:
        return request_cancel(self.store, job_id)

    def jobs(self, kind: str | None = None) -> list[dict]:
        reap_lost_jobs(self.store)
        return self.store.all(kind)

    def _dispatch(self, job_ids: list[str]) -> None:
        pass

    def start(self) -> "JobRunner":
        return self

    def stop(self) -> None:
        pass
