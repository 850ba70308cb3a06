"""Band-structure images rendered from band data, off the request thread, kept bounded in bytes.

A material without a display plot on disk gets one drawn from its band data (matplotlib, tens
of milliseconds). The drawing happens in one background thread per process, in priority order:
the image a hover is waiting for first, prefetches (the page asks for the points around the
cursor, never for everything) after it. A prefetch does not wait: it queues the drawing and is
answered at once. Drawn images go to the small-results store (:mod:`backend.cache`: per process,
bounded in bytes, least recently used out first; shared between web workers through Redis when
configured), under the same key whoever asked.
"""

from __future__ import annotations

import heapq
import itertools
import threading

from backend.cache import cache_key, small_store
from backend.data.bands import load_band_data, render_display_png

URGENT, PREFETCH = 0, 1
#: prefetches waiting beyond this many are dropped, oldest first (the cursor has moved on)
MAX_QUEUED = 256


class RenderQueue:
    """One worker thread drawing images by priority; ``get`` returns a drawn image or queues it."""

    def __init__(self):
        self._heap: list = []
        self._events: dict[str, threading.Event] = {}
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._thread = None

    def _start(self):
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="bandscape-render", daemon=True)
            self._thread.start()

    def get(self, key: str, draw, wait: bool, *, timeout: float = 30.0) -> bytes | None:
        """The image under ``key`` (drawn by ``draw()`` when missing). ``wait=False`` (a
        prefetch): None unless it is drawn already; it is queued behind the waited-for ones."""
        store = small_store()
        hit = store.get(key)
        if hit is not None:
            return hit
        with self._cv:
            event = self._events.get(key)
            if event is None:
                event = self._events[key] = threading.Event()
            heapq.heappush(self._heap, (URGENT if wait else PREFETCH, next(self._seq), key, draw))
            if len(self._heap) > MAX_QUEUED:
                self._heap = [item for item in self._heap if item[0] == URGENT] + \
                    sorted(item for item in self._heap if item[0] != URGENT)[-MAX_QUEUED // 2:]
                heapq.heapify(self._heap)
            self._start()
            self._cv.notify()
        if not wait:
            return None
        event.wait(timeout)
        return store.get(key)

    def _run(self):
        store = small_store()
        while True:
            with self._cv:
                while not self._heap:
                    self._cv.wait()
                _, _, key, draw = heapq.heappop(self._heap)
            event = self._events.get(key)
            try:
                if store.get(key) is None:
                    store.set(key, draw())
            except Exception:  # a broken band-data file: the request that waits gets None
                pass
            finally:
                with self._cv:
                    if event is not None and self._events.get(key) is event:
                        del self._events[key]
                if event is not None:
                    event.set()


_queue = RenderQueue()


def display_png(band_sig: tuple, window: float, wait: bool = True) -> bytes | None:
    """The display plot drawn from the band-data file ``band_sig`` (see
    :func:`backend.cache.file_signature`) for ``window``; ``wait=False``: None until drawn."""
    key = cache_key(display_png, (band_sig, float(window)), {})
    return _queue.get(key, lambda: render_display_png(load_band_data(band_sig[0]), float(window)), wait)
