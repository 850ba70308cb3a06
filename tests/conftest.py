from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BANDSCAPE_SHARED", PROJECT.parent / "shared" / "data" / "heuslerene"))
PAPER_MODEL = "resnet50_latent3_window1eV_steps90_split1.0_width1"
DEMO_IMAGES = PROJECT / "assets" / "images" / "train_1eV"


@pytest.fixture(scope="session")
def shared_root() -> Path:
    if not (SHARED / "fingerprints").is_dir():
        pytest.fail(f"the shared Heuslerene dataset is missing at {SHARED}")
    return SHARED


def copy_models(shared_root: Path, root: Path, model_ids) -> Path:
    """A data root at ``root`` with copies of some published models' files (so a test may
    change them); returns ``root``."""
    d = root / "fingerprints"
    d.mkdir(parents=True, exist_ok=True)
    for mid in model_ids:
        for suffix in ("_.csv", "_embedding.csv"):
            shutil.copy(shared_root / "fingerprints" / f"{mid}{suffix}", d)
    return root


def copy_demo_images(dest: Path, n: int = 12) -> Path:
    """``n`` of the committed demo images, spread over the four lattice families."""
    dest.mkdir(parents=True, exist_ok=True)
    files = sorted(DEMO_IMAGES.glob("*.png"))
    for f in files[:: max(1, len(files) // n)][:n]:
        shutil.copy(f, dest / f.name)
    return dest


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def redis_url(tmp_path):
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is missing: apt-get install redis-server (bash .ci/run installs it)")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        wait_for(lambda: _ping(client), 10, "redis-server to answer")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def _ping(client) -> bool:
    try:
        return client.ping()
    except Exception:
        return False
