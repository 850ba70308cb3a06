"""The default data root, one definition for the app and every command: ``$BANDSCAPE_DATA`` when
set, else the project folder itself, which holds the demo dataset (``python -m backend demo``)."""

from __future__ import annotations

import os
from pathlib import Path

#: the project folder (its models/, embeddings/ and assets/ are the demo dataset)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def default_data_root() -> Path:
    """``$BANDSCAPE_DATA`` if set, else the project itself (its demo dataset)."""
    return Path(os.environ.get("BANDSCAPE_DATA") or PROJECT_ROOT)
