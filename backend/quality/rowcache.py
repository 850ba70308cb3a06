"""The on-disk cache of the quality report's rows, keyed by their inputs and by the code that
computes them.

A row is a small JSON document under ``<cache>/quality/``; its key is a digest of what the row
was computed from (file hashes, settings) and of :func:`code_version`: the source of the modules
of this package (the report, the baselines, the metrics, the descriptors, the physics section).
A change to any of them makes every old row a miss, so a fixed bug never leaves stale numbers.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from backend.fileio import json_digest, write_json_atomic

#: the package whose source decides the rows' numbers
PACKAGE_DIR = Path(__file__).resolve().parent


def code_version(folder: Path | None = None) -> str:
    """sha256 over the names and source of the ``*.py`` modules of ``folder`` (default: this
    package); equal for equal code, different after any edit."""
    return _code_version(str(Path(folder or PACKAGE_DIR).resolve()))


@lru_cache(maxsize=8)
def _code_version(folder: str) -> str:
    h = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


class RowCache:
    """``get_or_compute(key, compute)``: the cached row of ``key`` (a JSON-able dict), or
    ``compute()`` written atomically. ``enabled`` False recomputes (and rewrites) every row."""

    def __init__(self, folder: Path, enabled: bool = True):
        self.folder, self.enabled, self.hits = Path(folder), enabled, 0
        self.version = code_version()

    def path(self, key: dict) -> Path:
        return self.folder / f"row-{json_digest({'code': self.version, **key})}.json"

    def get_or_compute(self, key: dict, compute):
        path = self.path(key)
        if self.enabled:
            try:
                row = json.loads(path.read_text())
                self.hits += 1
                return row
            except (OSError, ValueError):
                pass
        row = compute()
        write_json_atomic(path, row)
        return row
