"""The explorer at scale: synthetic data roots of 1,000 / 10,000 / 100,000 materials in a real browser.

    python bench/scale.py --n 100000 [--n 10000 --n 1000] [--roots DIR] [--repeats 5]

For each size: a synthetic data root (``python -m backend synth``; reused from ``--roots`` when
it is there), the app (``python app.py --data ROOT``) on a fresh cache folder, driven in
Debian's headless chromium with Playwright. Prints one JSON line, one entry per size, times in
milliseconds (medians):

- ``graph_build_s``: the page opened on an empty cache folder -> the map clustered (its summary
  shown), while the neighbour graph is built in the background (a job; ``graph_progress_shown``:
  the page showed its progress meanwhile); ``first_draw_cold_s``: navigation start -> the frame
  after the map's points are drawn, grey, in that wait (target 5 s at 100,000). Only where
  HDBSCAN takes the graph path (above EXACT_MAX materials).
- ``first_render_ms``: navigation start -> the frame after the materials' trace has its points,
  graph cached (median of 3 loads).
- ``recluster_ms``: the ``input`` event on the min-cluster-size box -> the frame after the map
  shows the new clustering (the summary names it and the colours split the materials as its
  labels do); each a clustering not shown before. ``bytes_per_recluster``: the bodies of the
  callback responses of one recluster.
- ``model_switch_ms``: the model set -> the frame after the map shows the other model's
  clustering at its positions; its graph is cached (built before, as the app's job does).
- ``hover_ms``: the ``mousemove`` onto a point -> the frame after its band image has loaded and
  its name shows, the cursor having passed 40 px from the point 400 ms before (the page
  prefetches the images around the cursor, as when a user moves over the map);
  ``hover_cold_ms``: the cursor jumps onto a point far from where it was (nothing prefetched).
  The synthetic roots have band data, no image files: every image is drawn by the server.
- ``peak_rss_mb`` / ``peak_pss_mb``: the app's process and its children (jobs), sampled every
  0.25 s over the whole run of that size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS_100K = {"first_draw_cold_s": 5, "first_render_ms": 4000, "recluster_ms": 1500, "model_switch_ms": 3000, "hover_ms": 150,
                "bytes_per_recluster": 150_000, "peak_rss_mb": 4096}

# the hover panel shows a name other than `before`, and that material's image has loaded
HOVER_SHOWS = """t0 => { const im = document.getElementById('explore-hover-img');
    const name = document.getElementById('explore-hover-name').innerText;
    return name && name !== %s && im.complete && im.naturalWidth > 0
        && im.src.endsWith('/' + encodeURIComponent(name) + '.png'); }"""
# the screen position of some points spread over the list, inside the plot
POINTS_JS = """
([count, offset]) => {
    const gd = document.querySelector('#explore-graph .js-plotly-plot');
    const tr = gd._fullData[1], L = gd._fullLayout, r = gd.getBoundingClientRect(), n = tr.x.length, out = [];
    for (let k = 0; out.length < count && k < 50 * count; k++) {
        const i = (7919 * (k + 1) + 104729 * offset) % n;
        const x = L.xaxis._offset + L.xaxis.l2p(tr.x[i]), y = L.yaxis._offset + L.yaxis.l2p(tr.y[i]);
        if (x > L.xaxis._offset + 60 && x < L.xaxis._offset + L.xaxis._length - 60
            && y > L.yaxis._offset + 60 && y < L.yaxis._offset + L.yaxis._length - 60) {
            out.push({x: r.left + x, y: r.top + y, i: i});
        }
    }
    return out;
}
"""


class MemorySampler(threading.Thread):
    """Peak RSS and PSS of a process and its descendants."""

    def __init__(self, pid: int, every: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.every, self.stop = pid, every, threading.Event()
        self.peak_rss = self.peak_pss = 0

    def run(self):
        from bench._machine import mem_kb, proc_tree

        while not self.stop.is_set():
            mem = [mem_kb(p) for p in proc_tree(self.pid)]
            self.peak_rss = max(self.peak_rss, sum(m[0] for m in mem))
            self.peak_pss = max(self.peak_pss, sum(m[1] for m in mem))
            self.stop.wait(self.every)


def ensure_root(roots: Path, n: int) -> Path:
    root = roots / f"synth-{n}"
    if not (root / "embeddings").is_dir():
        subprocess.run([sys.executable, "-m", "backend", "synth", "--n", str(n), "--data", str(root)], cwd=ROOT,
                       check=True, stdout=subprocess.DEVNULL)
    return root


def open_page(browser, url: str, timeout_s: float):
    from bench.explorer_latency import FIRST_DRAWN_JS

    page = browser.new_page(viewport={"width": 1600, "height": 950})
    page.add_init_script(FIRST_DRAWN_JS)
    t0 = time.perf_counter()
    page.goto(url)
    progress = False
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if page.evaluate("() => window.bsFirstDrawn !== undefined"):
            break
        progress = progress or page.evaluate("() => !!document.getElementById('explore-graph-progress')")
        time.sleep(0.25)
    else:
        raise RuntimeError(f"the map was not drawn within {timeout_s:.0f} s")
    first = page.evaluate("() => window.bsFirstDrawn") / 1000
    # a large root's first visit draws the map grey while its graph is built: clustered when the
    # summary shows
    while time.time() < deadline:
        progress = progress or page.evaluate("() => !!document.getElementById('explore-graph-progress')")
        if page.evaluate("() => !!document.getElementById('explore-summary-text')"):
            break
        time.sleep(0.25)
    else:
        raise RuntimeError(f"the map was not clustered within {timeout_s:.0f} s")
    wall = time.perf_counter() - t0
    try:
        page.wait_for_selector("#explore-help", state="visible", timeout=5_000)
        page.click("#explore-help-close")
        page.wait_for_selector("#explore-help", state="hidden")
    except Exception:  # (the help opens on a first visit only)
        pass
    return page, first, wall, progress


def measure_reclusters(page, cat, model_id, repeats):
    """bench/explorer_latency.py's reclusters on this model (min cluster size up to 60), then
    back to the default setting."""
    from backend.cluster.params import ClusterParams
    from bench.explorer_latency import expected_summary
    from bench.explorer_latency import measure_reclusters as reclusters

    times, sizes = reclusters(page, cat, repeats, model_id=model_id, settle_ms=500, max_mcs=60)
    page.fill("#explore-mcs", "3")
    page.wait_for_function("t => document.getElementById('explore-summary-text').innerText.startsWith(t)",
                           arg=expected_summary(cat, model_id, ClusterParams()), timeout=60_000)
    return times, sizes


def measure_hovers(page, repeats, approach: bool):
    from bench.explorer_latency import ARM_JS, WAIT_JS

    points = page.evaluate(POINTS_JS, [repeats, int(approach)])  # other points each way: none seen before
    out = []
    for pt in points:
        page.mouse.move(pt["x"] + 300, pt["y"] - 300)
        page.wait_for_timeout(200)
        if approach:
            page.mouse.move(pt["x"] + 40, pt["y"], steps=4)
            page.wait_for_timeout(400)
        before = page.inner_text("#explore-hover-name")
        page.evaluate(ARM_JS, ["mousemove", None])
        # whichever point the page's hover rule picks there: a name other than the one shown,
        # and its image loaded
        page.evaluate(WAIT_JS, HOVER_SHOWS % (json.dumps(before),))
        page.mouse.move(pt["x"], pt["y"])
        out.append(page.evaluate("() => window.bsWait") / 1000)
    return out


def measure_switch(page, cat, model_id):
    from backend.cluster.params import ClusterParams
    from bench.explorer_latency import WAIT_JS, redrawn

    page.wait_for_timeout(300)
    page.evaluate("() => { window.bsT = {t0: null, t1: null}; }")
    page.evaluate(WAIT_JS, redrawn(cat, model_id, ClusterParams()))
    page.evaluate("id => { window.bsT.t0 = performance.now();"
                  " window.dash_clientside.set_props('explore-model', {value: id}); }", model_id)
    return page.evaluate("() => window.bsWait") / 1000


def med_ms(values) -> float | None:
    return round(1000 * statistics.median(values), 1) if values else None


def run_size(browser, root: Path, repeats: int) -> dict:
    from backend.cluster.models import model_graph
    from backend.cluster.params import ClusterParams, default_model, uses_graph
    from backend.data.catalog import Catalog
    from tests.e2e.browser import start_app, stop_app

    cache = Path(tempfile.mkdtemp(prefix="bandscape-scale-cache-"))
    os.environ["BANDSCAPE_CACHE"] = str(cache)  # this process reads the same graphs as the app
    cat = Catalog(root)
    model = default_model(cat)
    other = next(m for m in sorted(cat.models) if m != model)
    n = len(cat.load(model).names)
    out = {"materials": n, "graph_path": uses_graph(n)}
    proc, url = start_app(root, env={"BANDSCAPE_CACHE": str(cache)}, timeout=180)
    sampler = MemorySampler(proc.pid)
    sampler.start()
    try:
        page, first, wall, progress = open_page(browser, url + "/", timeout_s=1800)
        if uses_graph(n):
            out["graph_build_s"] = round(wall, 1)
            out["graph_progress_shown"] = progress
            out["first_draw_cold_s"] = round(first, 2)
        else:
            out["first_render_cold_ms"] = round(1000 * first, 1)
        page.close()
        firsts = []
        for _ in range(3):
            page, first, _, _ = open_page(browser, url + "/", timeout_s=120)
            firsts.append(first)
            page.close()
        out["first_render_ms"] = med_ms(firsts)
        page, _, _, _ = open_page(browser, url + "/", timeout_s=120)
        times, sizes = measure_reclusters(page, cat, model, repeats)
        out["recluster_ms"] = med_ms(times)
        out["bytes_per_recluster"] = int(statistics.median(sizes)) if sizes else None
        out["hover_ms"] = med_ms(measure_hovers(page, repeats, approach=True))
        out["hover_cold_ms"] = med_ms(measure_hovers(page, repeats, approach=False))
        # the other model's graph as the app's job builds it (then the switch finds it cached)
        p = ClusterParams()
        if uses_graph(n):
            t0 = time.perf_counter()
            model_graph(cat, other, metric=p.metric, p=p.p, min_samples=p.min_samples)
            out["graph_build_other_s"] = round(time.perf_counter() - t0, 1)
        switches = []
        for _ in range(max(1, repeats // 2)):
            switches.append(measure_switch(page, cat, other))
            switches.append(measure_switch(page, cat, model))
        out["model_switch_ms"] = med_ms(switches)
        page.close()
    finally:
        sampler.stop.set()
        sampler.join()
        stop_app(proc)
        shutil.rmtree(cache, ignore_errors=True)
    out["peak_rss_mb"] = round(sampler.peak_rss / 1024, 1)
    out["peak_pss_mb"] = round(sampler.peak_pss / 1024, 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, action="append", help="materials (repeatable; default 1000, 10000, 100000)")
    ap.add_argument("--roots", default=os.path.join(tempfile.gettempdir(), "bandscape-synth"),
                    help="folder of the synthetic roots (synth-N), written when missing")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    sizes = args.n or [1000, 10_000, 100_000]
    from playwright.sync_api import sync_playwright

    from tests.e2e.browser import launch_browser

    out = {"bench": "scale", "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "load_1min_start": round(os.getloadavg()[0], 2), "sizes": {}}
    roots = Path(args.roots)
    roots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        for n in sizes:
            out["sizes"][str(n)] = run_size(browser, ensure_root(roots, n), args.repeats)
        browser.close()
    big = out["sizes"].get("100000")
    if big:
        out["targets_100k"] = TARGETS_100K
        out["met_100k"] = {k: (big.get(k) is not None and big[k] <= v) for k, v in TARGETS_100K.items()}
    out["load_1min_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
