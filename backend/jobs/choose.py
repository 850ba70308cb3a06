"""Where a data root's jobs run: a local runner, or Celery workers when ``REDIS_URL`` is set."""

from __future__ import annotations

import os

from backend.jobs.celery_app import CeleryRunner
from backend.jobs.local import LocalRunner
from backend.jobs.runner import JobRunner


def make_runner(root: str | os.PathLike, redis_url: str | None = None) -> JobRunner:
    """A Celery runner when ``redis_url`` (or ``$REDIS_URL``) is set, else a local runner (not
    started: the app calls ``start()``)."""
    url = redis_url if redis_url is not None else os.environ.get("REDIS_URL")
    return CeleryRunner(root, url) if url else LocalRunner(root)
