"""Atomic file writes: a reader (the explorer, another process) never sees a half-written file.

Every writer in the backend goes through these helpers: the content is written to a temporary
file in the destination folder, flushed to disk, then renamed over the destination, which POSIX
guarantees to be atomic on one filesystem.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; rename it onto ``dest`` if the block succeeds.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``dest`` is
    left as it was.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp creates 0600; give the file the permissions a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(dest: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return Path(dest)


def write_text_atomic(dest: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(dest, text.encode("utf-8"))


def write_json_atomic(dest: str | os.PathLike, obj, indent: int = 2) -> Path:
    return write_text_atomic(dest, json.dumps(obj, indent=indent, sort_keys=False, default=_json_default) + "\n")


def write_npy_atomic(dest: str | os.PathLike, array) -> Path:
    """Write one NumPy array as ``.npy`` (memory-mappable) atomically."""
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
    return Path(dest)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block: across
    processes and threads (each call opens its own file description); not re-entrant."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)



@contextlib.contextmanager
def try_file_lock(path: str | os.PathLike) -> Iterator[bool]:
    """Like :func:`file_lock` without waiting: the block gets True holding the lock, False when
    another process (or thread) holds it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)

def write_csv_atomic(dest: str | os.PathLike, frame, **to_csv_kwargs) -> Path:
    """Write a pandas DataFrame as CSV atomically (``index=False`` unless given)."""
    to_csv_kwargs.setdefault("index", False)
    buf = io.StringIO()
    frame.to_csv(buf, **to_csv_kwargs)
    return write_text_atomic(dest, buf.getvalue())


def _json_default(obj):
    # numpy scalars and arrays, paths
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's content (hex), read a megabyte at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def json_digest(obj) -> str:
    """A short stable key (24 hex digits) of a JSON-able object: keys sorted, other values as str."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:24]


def load_npz(path: str | os.PathLike) -> dict | None:
    """The arrays of an ``.npz`` file, or None when it is missing or unreadable (a cache entry to
    compute again)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError):
        return None


def save_npz_atomic(path: str | os.PathLike, arrays: dict) -> Path:
    """Write ``arrays`` as a compressed ``.npz``, atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return write_bytes_atomic(path, buf.getvalue())
