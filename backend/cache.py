"""Memoisation at the backend boundary: pure functions keyed by file signatures and parameters.

Functions decorated with :func:`memoize` take hashable arguments; file contents enter the key
through :func:`file_signature` (path, size, modification time), so an edited or replaced file is
read again. The store is an in-process LRU by default; the app plugs in its flask-caching
``Cache`` (anything with ``get(key)`` and ``set(key, value)``) with :func:`configure`, so a
deployment can share the cache between worker processes.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path


def file_signature(path: str | os.PathLike) -> tuple:
    """(absolute path, size, mtime_ns): changes whenever the file is rewritten."""
    st = os.stat(path)
    return (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


class LRUStore:
    """A small thread-safe in-process LRU (values are kept as they are, not copied)."""

    def __init__(self, maxsize: int = 256):
        self.maxsize = maxsize
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def set(self, key, value, timeout=None):
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        return True

    def clear(self):
        with self._lock:
            self._data.clear()


_store = LRUStore()


def configure(store) -> None:
    """Use ``store`` (``get``/``set``, e.g. a flask_caching.Cache) for every memoised function."""
    global _store
    _store = store


def get_store():
    return _store


def memoize(fn):
    """Cache ``fn``'s results by its qualified name and arguments (which must have a stable repr)."""
    prefix = f"bandscape:{fn.__module__}.{fn.__qualname__}:"
    locks: dict[str, threading.Lock] = {}
    locks_guard = threading.Lock()

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        raw = repr((args, sorted(kwargs.items())))
        key = prefix + hashlib.sha1(raw.encode()).hexdigest()
        hit = _store.get(key)
        if hit is not None:
            return hit
        # one computation per key at a time: concurrent callbacks wait for the first one
        with locks_guard:
            lock = locks.setdefault(key, threading.Lock())
        with lock:
            hit = _store.get(key)
            if hit is None:
                hit = fn(*args, **kwargs)
                _store.set(key, hit)
        with locks_guard:
            locks.pop(key, None)
        return hit

    wrapper.uncached = fn
    return wrapper
