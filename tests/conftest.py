from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BANDSCAPE_SHARED", PROJECT.parent / "shared" / "data" / "heuslerene"))
PAPER_MODEL = "resnet50_latent3_window1eV_steps90_split1.0_width1"


@pytest.fixture(scope="session")
def shared_root() -> Path:
    if not (SHARED / "fingerprints").is_dir():
        pytest.fail(f"the shared Heuslerene dataset is missing at {SHARED}")
    return SHARED
