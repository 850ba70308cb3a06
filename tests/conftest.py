"""Test data: the project's committed demo everywhere it serves; the published Heuslerene data
where only it will do.

Tests that need the published data are marked ``@pytest.mark.shared_data`` (or get it from a
parametrised fixture's ``heuslerene`` case). On a clone without that data they are skipped, all
with one reason that names the folder and how to get it; with ``BANDSCAPE_REQUIRE_SHARED=1``
(set by ``.ci/run`` when the folder exists) a missing folder or any skipped published-data test
fails the run instead, so a skip can never hide a failure there.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BANDSCAPE_SHARED", PROJECT.parent / "shared" / "data" / "heuslerene"))
PAPER_MODEL = "resnet50_latent3_window1eV_steps90_split1.0_width1"
DEMO_IMAGES = PROJECT / "assets" / "images" / "train_1eV"
DEMO_BANDS = PROJECT / "assets" / "bands"
#: what the published-data tests read: the explorer's fingerprints and plots, one raw VASP run
SHARED_NEEDS = ("fingerprints", "images/bands_10width_1eV", "raw/2D_Ac2HgGe_EIGENVAL", "raw/2D_Ac2HgGe_EF")
REQUIRE_SHARED = os.environ.get("BANDSCAPE_REQUIRE_SHARED", "") not in ("", "0")


def shared_missing() -> list[str]:
    return [rel for rel in SHARED_NEEDS if not (SHARED / rel).exists()]


def shared_reason() -> str:
    missing = shared_missing()
    what = "not there" if len(missing) == len(SHARED_NEEDS) else f"it lacks {', '.join(missing)}"
    return (f"needs the published Heuslerene data at {SHARED} ({what}); README 'The published Heuslerene "
            "data' says how to get it (or set BANDSCAPE_SHARED to where it is)")


def pytest_runtest_setup(item):
    # raised here, in one place, so `-ra` folds every such skip into one summary line
    if item.get_closest_marker("shared_data") and shared_missing():
        if REQUIRE_SHARED:
            pytest.fail(f"BANDSCAPE_REQUIRE_SHARED is set but the test {shared_reason()}", pytrace=False)
        pytest.skip(shared_reason())


_skipped_shared: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and "shared_data" in report.keywords:
        _skipped_shared.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if REQUIRE_SHARED and _skipped_shared and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if REQUIRE_SHARED and _skipped_shared:
        terminalreporter.write_line(f"FAILED: {len(_skipped_shared)} published-data tests were skipped although "
                                    f"BANDSCAPE_REQUIRE_SHARED is set: {', '.join(_skipped_shared[:5])}", red=True)


@pytest.fixture(scope="session")
def shared_root() -> Path:
    """The published data (tests that use it are marked ``shared_data``, which skips them when it
    is missing)."""
    if shared_missing():
        pytest.fail("a test uses shared_root without the shared_data marker", pytrace=False)
    return SHARED


def demo_model(window: float = 1) -> str:
    """The id of the committed demo's trained autoencoder model for a window (not the shipped
    encoder's map; not hard-coded: the demo is rebuilt by `python -m backend demo`)."""
    from backend.data.catalog import Catalog

    return next(m.model_id for m in Catalog(PROJECT).models.values()
                if not m.is_unencoded and not m.is_pretrained and not m.is_part and m.window == window)


@dataclass(frozen=True)
class Dataset:
    """A data root and one of its autoencoder models, for tests that hold on either dataset."""

    name: str
    root: Path
    model: str


@pytest.fixture(scope="session", params=[
    pytest.param("demo"), pytest.param("heuslerene", marks=pytest.mark.shared_data)])
def dataset(request) -> Dataset:
    """The committed demo (always), and the published data with the paper's model (when present)."""
    if request.param == "demo":
        return Dataset("demo", PROJECT, demo_model())
    return Dataset("heuslerene", SHARED, PAPER_MODEL)


def copy_models(source_root: Path, root: Path, model_ids) -> Path:
    """A data root at ``root`` with copies of some models' fingerprint and embedding files (so a
    test may change them), in the source's layout; returns ``root``."""
    from backend.data.catalog import Catalog

    cat = Catalog(source_root)
    for mid in model_ids:
        info = cat.get(mid)
        for path in filter(None, (info.fingerprint_path, info.embedding_path)):
            dest = root / path.relative_to(cat.root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dest)
    return root


def copy_demo_images(dest: Path, n: int = 12) -> Path:
    """``n`` of the committed demo images, spread over its lattice families."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in spread(DEMO_IMAGES.glob("*.png"), n):
        shutil.copy(f, dest / f.name)
    return dest


def spread(files, n: int) -> list:
    """``n`` of ``files``, evenly spread (the demo's sorted names cycle through its families)."""
    files = sorted(files)
    return files[:: max(1, len(files) // n)][:n]


def demo_display_plots(dest: Path, n: int = 12, window: float = 1) -> Path:
    """Labelled band plots like the published explorer's, of ``n`` demo materials, rendered from the
    committed band data into ``dest``."""
    from backend.data.bands import load_band_data, render_display_png

    dest.mkdir(parents=True, exist_ok=True)
    for f in spread(DEMO_BANDS.glob("*.npz"), n):
        (dest / f"{f.stem}.png").write_bytes(render_display_png(load_band_data(f), window))
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
