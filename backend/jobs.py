"""Training jobs: records on disk, a local runner and a Celery path (work in progress)."""
