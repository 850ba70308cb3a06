"""Process-wide state of the web app: the data root's catalog.

Pages import :func:`get_catalog` from here instead of from ``app``,
so that a page can be imported (and tested) without starting the server.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent
_catalog = None
_lock = threading.Lock()


def default_data_root() -> Path:
    """``$BANDSCAPE_DATA`` if set, else the project itself (its demo dataset)."""
    return Path(os.environ.get("BANDSCAPE_DATA") or PROJECT_ROOT)


def init(data_root: str | os.PathLike) -> None:
    """Point the app at a data root (called once by ``app.create_app``)."""
    from backend.catalog import Catalog

    global _catalog
    with _lock:
        _catalog = Catalog(data_root)


def get_catalog():
    """The :class:`backend.catalog.Catalog` of the app's data root."""
    if _catalog is None:
        init(default_data_root())
    return _catalog
