"""The production command with several workers under simulated users (bench/load.py's client,
short and with few users): no errors, every interaction served, and a worker killed mid-run is
replaced while the others keep serving (the client retries as the browser does)."""

from __future__ import annotations

import os
import signal
import time

from tests.conftest import PAPER_MODEL, copy_models
from tests.e2e.browser import start_server, stop_app, worker_pids

MODELS = (PAPER_MODEL, "resnet18_latent2_window1eV_steps60_split0_width1", "resnet50_latent2_window2eV_steps120_split1.0_width1")


def test_load_client_against_the_production_server(shared_root, tmp_path):
    from bench.load import run_load

    root = copy_models(shared_root, tmp_path / "root", MODELS)
    (root / "images").symlink_to(shared_root / "images")  # the real display images for hover
    proc, url = start_server(root, workers=2, threads=4, env={"BANDSCAPE_CACHE": str(tmp_path / "cache")})
    killed = {}

    def kill_a_worker(stats):
        deadline = time.time() + 10
        while stats.requests < 40 and time.time() < deadline:  # mid-run: requests in flight
            time.sleep(0.05)
        killed["pid"] = worker_pids(proc.pid)[0]
        os.kill(killed["pid"], signal.SIGKILL)

    try:
        out = run_load(url, str(root), users=3, duration=12, master_pid=proc.pid, on_start=kill_a_worker)
        alive = worker_pids(proc.pid)
    finally:
        stop_app(proc)
    assert out["errors"] == 0, out["error_samples"]
    for name in ("open", "recluster", "switch", "hover_image"):
        assert out["interactions"][name]["n"] >= 1, (name, out["interactions"])
    assert out["recorded"]["recluster_callbacks"] >= 1 and out["recorded"]["switch_callbacks"] >= 1
    assert out["requests"] > 50 and len(out["requests_per_worker"]) >= 2  # both workers served
    assert killed["pid"] not in alive and len(alive) == 2  # replaced by the master
    assert 0 < out["peak_memory_mb"]["workers_pss_mb"] <= out["peak_memory_mb"]["workers_rss_mb"]
