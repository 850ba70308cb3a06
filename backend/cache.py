"""Memoisation at the backend boundary: pure functions keyed by file signatures and parameters.

Three decorators, one per kind of value, so that a cache hit costs what the value allows:

* :func:`memoize_mapped` -- one large array (a distance matrix: 8 n^2 bytes). Written once as
  ``.npy`` under ``<cache dir>/arrays/`` and memory-mapped read-only by every process of the host:
  computed once (a file lock makes the other processes wait for it, then map it), held once in
  the page cache however many web workers use it, kept across restarts.
* :func:`memoize_array` -- large objects made of arrays (a model's fingerprints, an HDBSCAN
  tree). Kept in the process's :class:`ArrayStore`: a hit returns the very same object, its
  arrays read-only, nothing copied or unpickled.
* :func:`memoize` -- small serialisable results (a clustering's labels, a PNG, a labels table).
  In the shared store when the app configured one (:func:`configure`: flask-caching's
  ``RedisCache`` with ``REDIS_URL``, so every web worker reuses what another computed), else in
  the process's :class:`ArrayStore` like the above.

The :class:`ArrayStore` is bounded in bytes, not items: ``BANDSCAPE_CACHE_BYTES`` per process
(default 256 MiB; ``512M``, ``2G`` or a number of bytes), least recently used out first. Memory
maps count at their full size (their pages are shared, but this bounds what one process keeps
mapped). File contents enter every key through :func:`file_signature` (path, size, mtime), so an
edited or replaced file is read again.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import re
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from backend.errors import ParameterError
from backend.fileio import file_lock, write_npy_atomic

log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 256 * 2 ** 20
_UNITS = {"": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}


def default_cache_dir() -> Path:
    """``$BANDSCAPE_CACHE``, else ``$XDG_CACHE_HOME/bandscape``, else ``~/.cache/bandscape``."""
    if os.environ.get("BANDSCAPE_CACHE"):
        return Path(os.environ["BANDSCAPE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bandscape"


def parse_bytes(text: str | int) -> int:
    """``'512M'``, ``'2G'``, ``'1.5g'``, ``'300000000'`` -> bytes (binary units)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", str(text).lower())
    if not m:
        raise ParameterError(f"BANDSCAPE_CACHE_BYTES: {text!r} is not a size like 256M, 2G or 300000000")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def cache_bytes_limit() -> int:
    raw = os.environ.get("BANDSCAPE_CACHE_BYTES")
    return parse_bytes(raw) if raw else DEFAULT_CACHE_BYTES


def file_signature(path: str | os.PathLike) -> tuple:
    """(absolute path, size, mtime_ns): changes whenever the file is rewritten."""
    st = os.stat(path)
    return (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


# ---- sizes and read-only values -----------------------------------------------------------------

def nbytes(value, _depth: int = 0) -> int:
    """Roughly the memory ``value`` holds: arrays by their buffers, bytes by length, frames by
    pandas' deep count, containers and dataclasses by their parts."""
    if isinstance(value, np.memmap):  # a file's pages: the OS's shared, reclaimable page cache
        return 4096
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (bytes, bytearray, str)):
        return len(value)
    if _depth > 4:
        return sys.getsizeof(value)
    if hasattr(value, "memory_usage") and hasattr(value, "columns"):  # a DataFrame
        return int(value.memory_usage(deep=True).sum())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(nbytes(getattr(value, f.name), _depth + 1) for f in dataclasses.fields(value)) + 64
    if isinstance(value, dict):
        return sum(nbytes(k, _depth + 1) + nbytes(v, _depth + 1) for k, v in value.items()) + 64
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v, _depth + 1) for v in value) + 56
    return sys.getsizeof(value)


def make_read_only(value, _depth: int = 0):
    """Mark every array in ``value`` read-only (one object handed to many callers must not be
    changed by any); returns ``value``."""
    if isinstance(value, np.ndarray):
        value.setflags(write=False)
    elif _depth < 4 and dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            make_read_only(getattr(value, f.name), _depth + 1)
    elif _depth < 4 and isinstance(value, (list, tuple)):
        for v in value:
            make_read_only(v, _depth + 1)
    elif _depth < 4 and isinstance(value, dict):
        for v in value.values():
            make_read_only(v, _depth + 1)
    return value


# ---- the per-process store ----------------------------------------------------------------------

class ArrayStore:
    """A thread-safe LRU bounded in bytes (see :func:`nbytes`); values are kept as they are and
    handed back as the same objects. A value larger than the whole budget is not kept."""

    def __init__(self, max_bytes: int | None = None):
        self.max_bytes = cache_bytes_limit() if max_bytes is None else int(max_bytes)
        self._data: OrderedDict = OrderedDict()  # key -> (value, size)
        self._lock = threading.Lock()
        self.bytes = 0

    def get(self, key):
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            self._data.move_to_end(key)
            return item[0]

    def set(self, key, value, timeout=None, *, size: int | None = None):
        size = nbytes(value) if size is None else size
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            if size > self.max_bytes:
                return False
            self._data[key] = (value, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, (_, s) = self._data.popitem(last=False)
                self.bytes -= s
        return True

    def keys(self) -> list:
        with self._lock:
            return list(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self):
        with self._lock:
            self._data.clear()
            self.bytes = 0


class SharedStore:
    """A store shared between processes (flask-caching's cache backend, e.g. RedisCache) that never
    fails a request: while the backend is unreachable, values go to ``fallback`` (the process's
    own store), with one warning per outage."""

    RETRY_S = 30.0

    def __init__(self, backend, fallback: ArrayStore, name: str = "shared cache"):
        self.backend, self.fallback, self.name = backend, fallback, name
        self._down_until = 0.0

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc) -> None:
        if self.available:
            log.warning("%s unreachable (%s); using per-process caches for %.0f s", self.name, exc, self.RETRY_S)
        self._down_until = time.monotonic() + self.RETRY_S

    def get(self, key):
        if self.available:
            try:
                hit = self.backend.get(key)
                if hit is not None:
                    return hit
            except Exception as exc:  # connection refused, timeout, a corrupt value
                self._failed(exc)
        return self.fallback.get(key)

    def set(self, key, value, timeout=None):
        if self.available:
            try:
                self.backend.set(key, value, timeout=timeout)
                return True
            except Exception as exc:
                self._failed(exc)
        return self.fallback.set(key, value)


_arrays = ArrayStore()
_small = None  # a SharedStore when configured; else the process's ArrayStore


def configure(store=None, max_bytes: int | None = None) -> None:
    """Share small results through ``store`` (``get``/``set``, e.g. a flask-caching backend), or
    keep them per process (None); ``max_bytes`` resets the per-process store's budget."""
    global _small, _arrays
    if max_bytes is not None:
        _arrays = ArrayStore(max_bytes)
    _small = None if store is None else (store if isinstance(store, SharedStore) else SharedStore(store, _arrays))


def array_store() -> ArrayStore:
    return _arrays


def small_store():
    return _small if _small is not None else _arrays


def cache_key(fn, args, kwargs) -> str:
    """The key of a memoised call: the function's name and a hash of its arguments. The name is
    its ``__qualname__`` without the module, so a move of the function between modules keeps its
    entries (memoised names are unique in the project: a test checks it)."""
    raw = repr((args, sorted(kwargs.items())))
    return f"bandscape:{fn.__qualname__}:" + hashlib.sha1(raw.encode()).hexdigest()


class _KeyLocks:
    """One computation per key at a time in this process: concurrent callers wait for the first."""

    def __init__(self):
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __call__(self, key):
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def done(self, key):
        with self._guard:
            self._locks.pop(key, None)


def _memoizer(store_of, prepare=lambda value: value):
    def decorator(fn):
        locks = _KeyLocks()

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            key = cache_key(fn, args, kwargs)
            store = store_of()
            hit = store.get(key)
            if hit is not None:
                return hit
            with locks(key):
                hit = store.get(key)
                if hit is None:
                    hit = prepare(fn(*args, **kwargs))
                    store.set(key, hit)
            locks.done(key)
            return hit

        wrapper.uncached = fn
        return wrapper

    return decorator


#: small serialisable results: shared between workers when a shared store is configured
memoize = _memoizer(small_store)
#: large objects of arrays: the process's byte-bounded store; a hit is the same read-only object
memoize_array = _memoizer(array_store, make_read_only)


def memoize_mapped(fn):
    """Cache ``fn``'s array result as a ``.npy`` file under ``<cache dir>/arrays/`` and return it
    memory-mapped read-only (an ``np.memmap``): every process of the host maps the same file."""
    folder = fn.__qualname__

    def path_of(key: str) -> Path:
        return default_cache_dir() / "arrays" / folder / (key.rsplit(":", 1)[1] + ".npy")

    def open_mapped(path: Path):
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError):  # missing, or not a complete array: compute
            return None

    @functools.wraps(fn)
    def mapped(*args, progress=None, build: bool = True, **kwargs):
        # ``progress`` reaches ``fn`` (it is not part of the key); ``build=False`` only looks:
        # None when the file is not there
        key = cache_key(fn, args, kwargs)
        store = array_store()
        hit = store.get(key)
        if hit is not None:
            return hit
        path = path_of(key)
        hit = open_mapped(path)
        if hit is None and build:
            with file_lock(path.with_suffix(".lock")):  # another process may be writing it
                hit = open_mapped(path)
                if hit is None:
                    extra = {} if progress is None else {"progress": progress}
                    write_npy_atomic(path, fn(*args, **kwargs, **extra))
                    hit = open_mapped(path)
        if hit is not None:
            store.set(key, hit)  # the map itself: in the process's store
        return hit

    mapped.uncached = fn
    mapped.cached_path = lambda *args, **kwargs: path_of(cache_key(fn, args, kwargs))
    return mapped
