"""Background work: job records on disk, a local runner, and the same task on Celery.

A job is a record ``{job_id}.json`` in the data root's jobs folder (``<root>/jobs``; see
:func:`~backend.jobs.store.jobs_dir`), written atomically under a lock, so pages, the CLI and
Celery workers on other machines all see the same jobs, and a page reload (onto any web worker)
or an app restart loses nothing. Each job is of a *kind* (:mod:`backend.jobs.kinds`): ``train``
(an autoencoder), ``search`` (the evaluate page's grid search), ``distances`` (distance matrices
into the shared cache); a kind is a function run in the job's own process.

Where a job runs: locally (:class:`~backend.jobs.local.LocalRunner`, one job per lane at a time,
each in a fresh process, never in a web process), or on Celery workers when ``REDIS_URL`` is set
(:class:`~backend.jobs.celery_app.CeleryRunner`; ``celery -A backend.jobs worker`` finds
:data:`app` here). Both run :func:`~backend.jobs.execute.run_job`.

The modules, one concern each: ``store`` (records), ``locking`` (file locks), ``kinds`` (the
registry), ``execute`` (running one job), ``process`` (a local job's process), ``local`` (the
local runner), ``reaper`` (jobs whose worker is gone), ``runner`` (submit/cancel/list, choosing a
runner), ``celery_app`` (Celery), ``formatting`` (CLI and page text); and one module per kind:
``training``, ``search``, ``distances``.
"""

from backend.jobs.celery_app import TASK_NAME, CeleryRunner, app, make_celery, redact
from backend.jobs.choose import make_runner
from backend.jobs.execute import HEARTBEAT_S, WRITE_EVERY_S, JobContext, execute_job, run_job
from backend.jobs.formatting import format_duration, format_progress
from backend.jobs.kinds import LANES, JobKind, get_kind, register
from backend.jobs.local import LocalRunner
from backend.jobs.reaper import STALE_S, reap_lost_jobs
from backend.jobs.runner import JobRunner
from backend.jobs.store import (
                                ACTIVE,
                                EXECUTORS,
                                FINAL,
                                STATES,
                                JobStore,
                                UnknownJobError,
                                jobs_dir,
                                new_job_id,
                                request_cancel,
)
from backend.jobs.train_job import (
                                CPU_IMAGES_PER_S,
                                JobProgress,
                                Submission,
                                count_images,
                                estimate_seconds,
                                model_exists,
                                remove_partial_outputs,
                                submit_jobs,
)

_redact = redact  # the name the CLI used

__all__ = [
    "ACTIVE", "CPU_IMAGES_PER_S", "EXECUTORS", "FINAL", "HEARTBEAT_S", "LANES", "STALE_S", "STATES", "TASK_NAME",
    "WRITE_EVERY_S", "CeleryRunner", "JobContext", "JobKind", "JobProgress", "JobRunner", "JobStore", "LocalRunner",
    "Submission", "UnknownJobError", "app", "count_images", "estimate_seconds", "execute_job", "format_duration",
    "format_progress", "get_kind", "jobs_dir", "make_celery", "make_runner", "model_exists", "new_job_id",
    "reap_lost_jobs", "redact", "register", "remove_partial_outputs", "request_cancel", "run_job", "submit_jobs",
]
