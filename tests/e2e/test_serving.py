"""Several web workers: bench/load.py's client (payloads recorded from the real page in Debian's
chromium, a few users, a few seconds) against the production command, with a worker killed
mid-run; Redis down; a grid search started from one page shown at once by a reload served by
another worker; a callback whose connection dies sent again by the page."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from backend.jobs import JobStore
from tests.conftest import PAPER_MODEL, copy_models, free_port
from tests.e2e.browser import start_app, start_server, stop_app, worker_pids

MODELS = (PAPER_MODEL, "resnet18_latent2_window1eV_steps60_split0_width1", "resnet50_latent2_window1eV_steps120_split1.0_width1")
MIXED = (PAPER_MODEL, "resnet18_latent2_window1eV_steps60_split0_width1", "resnet50_latent2_window2eV_steps120_split1.0_width1")
QUERY = "/evaluate?models=window%3D1&ms=2:3&mcs=3:5&metric=minkowski&p=0.2"
STATUS_IS = "t => { const e = document.getElementById('evaluate-status'); return e && e.innerText.startsWith(t); }"


@pytest.mark.shared_data  # real models and display images of the published data
def test_search_survives_a_reload_onto_another_worker(browser, tmp_path, shared_root, monkeypatch):
    root = copy_models(shared_root, tmp_path / "root", MODELS)
    monkeypatch.setenv("BANDSCAPE_CACHE", str(tmp_path / "cache"))  # the server's state folder: its job records
    proc, url = start_server(root, workers=2, threads=2,
                             env={"BANDSCAPE_CACHE": str(tmp_path / "cache"), "BANDSCAPE_PREWARM": "0"})
    try:
        first = browser.new_context(viewport={"width": 1500, "height": 1000})
        page = first.new_page()
        worker = page.goto(url + QUERY).headers["x-bandscape-worker"]
        page.wait_for_function(STATUS_IS, arg="not run yet", timeout=60_000)
        page.click("#evaluate-run")
        page.wait_for_function(STATUS_IS, arg="3 models x 6 cells", timeout=120_000)
        first.close()

        # a reload in a new browser (a new connection), until another worker serves the page
        for _ in range(40):
            ctx = browser.new_context(viewport={"width": 1500, "height": 1000})
            again = ctx.new_page()
            other = again.goto(url + QUERY).headers["x-bandscape-worker"]
            if other != worker:
                break
            ctx.close()
        assert other != worker, "every reload was served by the first worker"
        # the finished search is there at once, without pressing Run, with its tables
        again.wait_for_function(STATUS_IS, arg="3 models x 6 cells", timeout=30_000)
        again.locator("#evaluate-cell-info").get_by_text("best DBCV").wait_for(timeout=30_000)
        assert again.locator("#evaluate-table tbody tr").count() == 1 + 1 + 3
        ctx.close()
        searches = JobStore(root).all("search")
        assert len(searches) == 1 and searches[0]["state"] == "done"  # run once, never restarted
    finally:
        stop_app(proc)


def test_a_callback_whose_connection_dies_is_sent_again(browser, data_app):
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    seen = []

    def drop_first(route):
        seen.append(route.request.post_data)
        if len(seen) == 1:
            route.abort("connectionreset")  # as when the worker answering it is killed
        else:
            route.continue_()

    page.goto(data_app + "/?algo=hdbscan")  # (the page comes with its layout: no callback yet)
    page.wait_for_selector("#explore-summary-text", timeout=120_000)
    before = page.inner_text("#explore-summary-text")
    page.route("**/_dash-update-component", drop_first)
    page.fill("#explore-mcs", "9")  # a recluster: its first request is cut
    page.wait_for_function("t => document.getElementById('explore-summary-text').innerText !== t", arg=before,
                           timeout=60_000)
    assert len(seen) >= 2 and seen[1] == seen[0]  # the same callback, sent again
    page.close()


@pytest.mark.shared_data  # real models and display images of the published data
def test_load_client_against_the_production_server(browser, shared_root, tmp_path):
    from bench.load import run_load

    root = copy_models(shared_root, tmp_path / "root", MIXED)
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
        out = run_load(url, str(root), users=3, duration=12, master_pid=proc.pid, on_start=kill_a_worker,
                       browser=browser)
        alive = worker_pids(proc.pid)
    finally:
        stop_app(proc)
    assert out["errors"] == 0, out["error_samples"]
    for name in ("open", "recluster", "switch", "hover_image"):
        assert out["interactions"][name]["n"] >= 1, (name, out["interactions"])
    assert out["recorded"]["recluster_callbacks"] >= 1 and out["recorded"]["switch_callbacks"] >= 1
    # a shared server's page prefetches around the cursor, not every image of the map
    assert out["recorded"]["page_prefetches_around_cursor"] and not out["recorded"]["page_prefetches_images"]
    assert out["requests"] > 50 and len(out["requests_per_worker"]) >= 2  # both workers served
    assert killed["pid"] not in alive and len(alive) == 2  # replaced by the master
    assert 0 < out["peak_memory_mb"]["workers_pss_mb"] <= out["peak_memory_mb"]["workers_rss_mb"]


@pytest.mark.shared_data  # real models and display images of the published data
def test_redis_down_the_app_says_so_and_serves(browser, shared_root, tmp_path):
    from bench.load import run_load
    root = copy_models(shared_root, tmp_path / "root", MIXED[:2])
    proc, url = start_app(root, env={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "BANDSCAPE_PREWARM": "0",
                                     "BANDSCAPE_CACHE": str(tmp_path / "cache")})
    try:
        out = run_load(url, str(root), users=1, duration=4, browser=browser)
        log = (Path(os.environ.get("TMPDIR", "/tmp")) / f"bandscape-app-{url.rsplit(':', 1)[1]}.log").read_text()
    finally:
        stop_app(proc)
    assert "REDIS_URL is set but Redis at redis://127.0.0.1" in log and "caching per process" in log
    assert out["errors"] == 0, out["error_samples"]
    assert out["interactions"]["open"]["n"] == 1 and out["requests"] > 10
