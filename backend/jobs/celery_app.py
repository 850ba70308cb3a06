"""The Celery path: jobs go through a Redis broker to ``celery -A backend.jobs worker`` processes,
which write progress into the same records on the shared data root (no result backend)."""

from __future__ import annotations

import os
import re
import time

from backend.errors import BandscapeError
from backend.jobs.execute import run_job
from backend.jobs.runner import JobRunner

TASK_NAME = "bandscape.run_job"


def redact(url: str) -> str:
    """A broker URL without its password, for messages."""
    return re.sub(r"//[^@/]*@", "//***@", url)


def make_celery(broker_url: str | None = None):
    """The Celery app: Redis broker, one long job per worker process at a time, no result backend
    (progress and results are in the job records on the shared data root)."""
    from celery import Celery  # celery: only with a Redis broker (REDIS_URL); the local runner needs none

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
                                  error=f"could not reach the broker at {redact(self.broker_url)}: {exc}")
                raise BandscapeError(f"job {job_id} not sent: could not reach the broker at "
                                     f"{redact(self.broker_url)} ({exc}); is redis-server running?") from None


# ``celery -A backend.jobs worker`` finds this app (re-exported by the package); importing it costs
# ~0.1 s and no connection
try:
    app = make_celery()
except ImportError:  # celery is needed only with REDIS_URL
    app = None
