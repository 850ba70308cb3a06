"""The explorer on a synthetic root above EXACT_MAX materials (the neighbour-graph path), in
chromium: the page shows the graph job's progress while it builds, then the map with the
clustering computed here from the same cached graph; the hover names the nearest material with
its cluster; a recluster re-cuts the cached tree. Also the ``synth`` command's root itself."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from backend.cluster.models import cluster_model
from backend.cluster.params import EXACT_MAX, ClusterParams, default_model, uses_graph
from backend.data.catalog import Catalog
from components.scatter import UNSELECTED_CODE
from tests.conftest import PROJECT
from tests.e2e.browser import start_app, stop_app
from tests.e2e.test_explore_hover import check_hovers, cursor_positions, screen_positions

N = EXACT_MAX + 500


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "root"
    subprocess.run([sys.executable, "-m", "backend", "synth", "--n", str(N), "--data", str(root), "--models", "1",
                    "--no-bands"], cwd=PROJECT, check=True, capture_output=True)
    return root


def test_synth_writes_a_root_with_its_known_clusters(synth_root):
    cat = Catalog(synth_root)
    model = default_model(cat)
    data = cat.load(model)
    assert data.X.shape == (N, 147) and data.xy.shape == (N, 2)
    labels = pd.read_csv(synth_root / "labels.csv")
    assert sorted(labels.iloc[:, 0]) == sorted(map(str, data.names))
    assert labels.shape[1] >= 2 and labels.iloc[:, 1].nunique() > 5  # the known clusters (and background)


def test_graph_path_in_the_page(synth_root, browser, tmp_path, monkeypatch):
    monkeypatch.setenv("BANDSCAPE_CACHE", str(tmp_path / "cache"))  # this process reads the app's graph
    cat = Catalog(synth_root)
    model = default_model(cat)
    data = cat.load(model)
    assert uses_graph(len(data.names))
    proc, url = start_app(synth_root, env={"BANDSCAPE_CACHE": str(tmp_path / "cache"), "BANDSCAPE_PREWARM": "0"})
    page = browser.new_page(viewport={"width": 1600, "height": 950})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(url + "/")
        page.wait_for_selector("#explore-graph-progress", timeout=60_000)  # the graph job's progress
        assert "neighbour graph" in page.inner_text("#explore-graph-progress")
        # the map is drawn at once, grey, while the graph is built (read together with the progress,
        # which goes when the clustering colours it)
        state = page.evaluate("""() => { const g = document.querySelector('#explore-graph .js-plotly-plot');
            const t = g && g._fullData && g._fullData[1];
            return {building: !!document.getElementById('explore-graph-progress'),
                    n: t ? t.x.length : 0, codes: t ? Array.from(new Set(Array.from(t.marker.color))) : []}; }""")
        if state["building"]:
            assert state["n"] == len(data.names) and state["codes"] == [UNSELECTED_CODE]
            assert "clustering" in page.inner_text("#explore-summary-waiting")
        page.wait_for_selector("#explore-summary-text", timeout=300_000)
        result = cluster_model(cat, model, ClusterParams())
        page.wait_for_function("t => document.getElementById('explore-summary-text').innerText.startsWith(t)",
                               arg=f"{result.n_clusters} clusters · {result.n_noise} noise", timeout=30_000)
        page.wait_for_selector("#explore-help", state="visible", timeout=10_000)
        page.click("#explore-help-close")
        page.wait_for_selector("#explore-help", state="hidden")
        page.wait_for_timeout(500)
        names = [str(n) for n in data.names]
        pos, g = screen_positions(page, data.xy)
        rng = np.random.default_rng(5)
        window = cat.get(model).window
        assert check_hovers(page, names, pos, g, cursor_positions(rng, pos, g, 12), window,
                            labels=result.labels) >= 4
        other = cluster_model(cat, model, ClusterParams(min_cluster_size=8))
        page.fill("#explore-mcs", "8")
        page.wait_for_function("t => document.getElementById('explore-summary-text').innerText.startsWith(t)",
                               arg=f"{other.n_clusters} clusters · {other.n_noise} noise", timeout=60_000)
        assert not errors, errors
    finally:
        page.close()
        stop_app(proc)


def test_prefetch_around_the_cursor_keeps_two_requests_in_flight(browser, tmp_path):
    """A map too large to load every image (above PREFETCH_ALL_MAX) prefetches the images around
    the cursor, at most two requests at a time and at low priority, so that a burst of them
    cannot hold up the hovered image; the hovered image still shows."""
    from components.scatter import PREFETCH_ALL_MAX

    root = tmp_path / "root"
    subprocess.run([sys.executable, "-m", "backend", "synth", "--n", str(PREFETCH_ALL_MAX + 200), "--data", str(root),
                    "--models", "1"], cwd=PROJECT, check=True, capture_output=True)
    cat = Catalog(root)
    data = cat.load(default_model(cat))
    proc, url = start_app(root, env={"BANDSCAPE_CACHE": str(tmp_path / "cache"), "BANDSCAPE_PREWARM": "0"})
    page = browser.new_page(viewport={"width": 1600, "height": 950})
    # the page's own count of its prefetch requests in flight (sent -> answered)
    page.add_init_script("""(() => {
        const real = window.fetch, f = window.bsFlight = {now: 0, max: 0, sent: 0};
        window.fetch = (url, init) => {
            const pre = init && init.headers && init.headers["X-Bandscape-Prefetch"] === "1";
            if (!pre) { return real(url, init); }
            f.now += 1; f.sent += 1; f.max = Math.max(f.max, f.now);
            return real(url, init).finally(() => { f.now -= 1; });
        };
    })()""")
    try:
        page.goto(url + "/")
        page.wait_for_selector("#explore-summary-text", timeout=120_000)
        page.wait_for_selector("#explore-help", state="visible", timeout=10_000)
        page.click("#explore-help-close")
        page.wait_for_selector("#explore-help", state="hidden")
        pos, g = screen_positions(page, data.xy)
        rng = np.random.default_rng(3)
        for cx, cy in cursor_positions(rng, pos, g, 30):
            page.mouse.move(float(cx), float(cy), steps=3)
            page.wait_for_timeout(40)
        page.wait_for_timeout(1500)
        flight = page.evaluate("() => window.bsFlight")
        assert flight["sent"] >= 10 and flight["max"] <= 2, flight
        # the last material hovered has its image
        x, y = pos[len(pos) // 2]
        page.mouse.move(float(x), float(y))
        page.wait_for_function("() => { const im = document.getElementById('explore-hover-img');"
                               " return im.complete && im.naturalWidth > 0 && im.src.includes('/material-image/'); }",
                               timeout=30_000)
    finally:
        page.close()
        stop_app(proc)
