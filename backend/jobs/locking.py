"""File locks of the job system (``flock``: exclusive across processes and threads).

Two kinds: :func:`exclusive` serialises every change of the job records of a data root (held for
milliseconds); a :class:`LaneLock` elects the one local runner per host that runs a lane's jobs
(held for as long as the runner lives; the kernel releases it when its process dies, so another
web worker takes over).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path

from backend.cache import default_cache_dir
from backend.errors import DataError
from backend.fileio import file_lock


@contextlib.contextmanager
def exclusive(path: str | os.PathLike):
    """Hold an exclusive lock on ``path`` (created if missing) for the block. Each call opens its
    own file description, so threads of one process exclude each other too; not re-entrant."""
    lock = file_lock(path)
    try:
        lock.__enter__()
    except OSError as exc:
        raise DataError(f"cannot write job records under {Path(path).parent}: {exc.strerror or exc}") from None
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


class LaneLock:
    """The right to run one lane of one jobs folder on this host, taken without waiting.

    The lock file lives in the host's cache folder (``$BANDSCAPE_CACHE/locks``), not in the jobs
    folder: local runners are per host, and ``flock`` on network storage is not to be trusted.
    """

    def __init__(self, jobs_dir: str | os.PathLike, lane: str):
        digest = hashlib.sha256(str(Path(jobs_dir).resolve()).encode()).hexdigest()[:16]
        self.path = default_cache_dir() / "locks" / f"jobs-{digest}-{lane}.lock"
        self._fh = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def try_acquire(self) -> bool:
        if self._fh is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        self._fh = fh
        return True

    def release(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()
