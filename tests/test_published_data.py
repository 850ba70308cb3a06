"""A clone without the published data passes, skipping the tests that need it with one reason;
where the data must be (CI: `.ci/run` sets BANDSCAPE_REQUIRE_SHARED), such a skip fails the run."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import PROJECT, SHARED_NEEDS

# the catalog's tests: some on the demo, some on the published data, one on both
SELECTION = ["tests/test_catalog.py", "-k", "published or unencoded or route"]


def run_pytest(tmp_path, shared, *extra, require=False, env=None):
    env = {**os.environ, **(env or {}), "BANDSCAPE_SHARED": str(shared)}
    env.pop("BANDSCAPE_REQUIRE_SHARED", None)
    if require:
        env["BANDSCAPE_REQUIRE_SHARED"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *SELECTION, *extra],
                          cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)


def counts(stdout: str) -> dict:
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|skipped|failed|errors?)", stdout.splitlines()[-1])}


def test_without_the_data_they_are_skipped_with_one_line(tmp_path):
    out = run_pytest(tmp_path, tmp_path / "nowhere")
    assert out.returncode == 0, out.stdout
    skipped = [line for line in out.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1, skipped
    n = counts(out.stdout)
    assert skipped[0].startswith(f"SKIPPED [{n['skipped']}] ")
    assert f"needs the published Heuslerene data at {tmp_path / 'nowhere'} (not there)" in skipped[0]
    assert "README" in skipped[0] and "BANDSCAPE_SHARED" in skipped[0]
    assert n["passed"] >= 2 and n["skipped"] >= 3  # the demo's tests ran


def test_where_the_data_must_be_its_absence_fails(tmp_path):
    out = run_pytest(tmp_path, tmp_path / "nowhere", require=True)
    assert out.returncode == 1
    n = counts(out.stdout)
    assert n.get("skipped", 0) == 0 and n["errors"] >= 3 and n["passed"] >= 2
    assert "BANDSCAPE_REQUIRE_SHARED is set but the test needs the published Heuslerene data" in out.stdout


def test_where_the_data_must_be_any_skip_of_its_tests_fails(tmp_path):
    """With the data there, a published-data test skipped for another reason still fails the run."""
    fake = tmp_path / "heuslerene"  # the pieces the tests look for (empty: no test gets to read them)
    for rel in SHARED_NEEDS:
        (fake / rel).mkdir(parents=True)
    (tmp_path / "skip_published.py").write_text(
        "import pytest\n\n\ndef pytest_runtest_setup(item):\n"
        "    if item.get_closest_marker('shared_data'):\n        pytest.skip('skipped for another reason')\n")
    out = run_pytest(tmp_path, fake, "-p", "skip_published", require=True,
                     env={"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))})
    n = counts(out.stdout)
    assert n["skipped"] >= 3 and n["passed"] >= 2 and "failed" not in n
    assert out.returncode == 1, out.stdout
    assert f"{n['skipped']} published-data tests were skipped although BANDSCAPE_REQUIRE_SHARED is set" in out.stdout
