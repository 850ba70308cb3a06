"""Process-wide state of the web app: the data root's catalog, the job runner and the worker that
places new materials.

Pages import :func:`get_catalog` and :func:`get_job_runner` from here instead of from ``app``,
so that a page can be imported (and tested) without starting the server.
"""

from __future__ import annotations

import os
import threading

# the default root is defined once, in the backend, for the app and the CLI alike
from backend.data.roots import PROJECT_ROOT, default_data_root  # noqa: F401

_catalog = None
_runner = None
_shared_server = False
_lock = threading.Lock()


def init(data_root: str | os.PathLike) -> None:
    """Point the app at a data root (called once by ``app.create_app``)."""
    from backend.data.catalog import Catalog

    global _catalog, _runner
    with _lock:
        _catalog = Catalog(data_root)
        if _runner is not None and _runner.root != _catalog.root:
            _runner.stop()
            _runner = None


def get_catalog():
    """The :class:`backend.data.catalog.Catalog` of the app's data root."""
    if _catalog is None:
        init(default_data_root())
    return _catalog


def set_job_runner(runner) -> None:
    """Install the job runner ``app.create_app`` made (jobs never run in the web process)."""
    global _runner
    with _lock:
        _runner = runner


def get_job_runner():
    """The :class:`backend.jobs.JobRunner` of the data root: the app's, else one made on first use
    (local, or Celery when ``REDIS_URL`` is set) and started."""
    global _runner
    catalog = get_catalog()
    with _lock:
        if _runner is None:
            from backend.jobs import make_runner

            _runner = make_runner(catalog.root).start()
        return _runner


def set_shared_server(shared: bool = True) -> None:
    """Mark the app as served to many users (``create_server``, under gunicorn) rather than run
    by one (``python app.py``): pages then spare the server what only a single user can afford."""
    global _shared_server
    _shared_server = bool(shared)


def is_shared_server() -> bool:
    return _shared_server


_place_pool = None


def get_place_pool():
    """One worker process that reads and encodes the materials users place on a map: torch and
    pymatgen stay out of the web process, and the worker stays warm after its first use (a
    second placement does not load torch or the model again)."""
    global _place_pool
    with _lock:
        if _place_pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            _place_pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return _place_pool


def reset_place_pool() -> None:
    """Drop a worker that died (the next placement starts a new one)."""
    global _place_pool
    with _lock:
        if _place_pool is not None:
            _place_pool.shutdown(wait=False, cancel_futures=True)
        _place_pool = None


def in_place_worker(fn, *args, timeout: float, **kwargs):
    """``fn(*args, **kwargs)`` run in the placing worker (:func:`get_place_pool`), its result.
    A :class:`~backend.errors.BandscapeError` it raises comes back as it is; a worker that died or
    a timeout becomes one that says so, and the next call starts a new worker."""
    from backend.errors import BandscapeError

    try:
        return get_place_pool().submit(fn, *args, **kwargs).result(timeout=timeout)
    except BandscapeError:
        raise
    except Exception as exc:
        reset_place_pool()
        raise BandscapeError(f"the worker process failed ({type(exc).__name__}: {exc}); try again") from None
