"""Discovery tools: gallery of a selection in the browser, neighbours, consensus across models.

    python bench/discover.py --data ../shared/data/heuslerene [--select 500] [--repeats 5]

Prints one JSON line:

- ``gallery_ms``: in headless chromium (Playwright), a box selection of ``--select`` materials
  on the paper model's map: from the ``mouseup`` event that ends the box (its ``timeStamp``)
  to the next frame after the gallery shows its first page of thumbnails with every image
  loaded (images in the browser cache, as after the page's prefetch). Median of ``--repeats``.
- ``neighbours_ms``: ``backend.discover.neighbours.model_neighbours`` (k = 10, Minkowski p = 0.2, the
  model's data loaded) for 50 materials of the paper model: median and max;
  ``neighbours_equal_brute_force``: how many of them equal scipy's ``cdist`` answer as a set.
- ``consensus_*``: ``backend.discover.consensus.model_consensus`` over the one-eV models (filter
  ``window=1``) at the paper's cell (3/2 leaf, Minkowski p = 0.2), each in a new process:
  ``cold_s`` with an empty cache (reading the 72 models' files, their distance matrices, in
  two forked processes, trees in the parent, then the consensus), ``cached_s`` (the disk cache of the same), and
  ``same_process_s`` (the in-process cache); ``warm_matrices_s``: the app's case once its
  background prewarm has cached the distance matrices (clustering and combining only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.cluster.params import PAPER_MODEL  # noqa: E402
from backend.data.catalog import Catalog  # noqa: E402

CONSENSUS_RUN = """
import json, sys, time
t0 = time.perf_counter()
from backend.data.catalog import Catalog
from backend.cluster import ClusterParams, model_distances
from backend.discover.consensus import model_consensus
from backend.evaluate.select import select_models
cat = Catalog(sys.argv[1])
ids = select_models(cat, "window=1")
t_import = time.perf_counter() - t0
out = {"models": len(ids)}
if sys.argv[2] == "warm":
    for mid in ids:
        model_distances(cat, mid, metric="minkowski", p=0.2)
t = time.perf_counter()
res = model_consensus(cat, ids, ClusterParams())
out["s"] = time.perf_counter() - t
t = time.perf_counter()
model_consensus(cat, ids, ClusterParams())
out["same_process_s"] = time.perf_counter() - t
out.update(import_s=t_import, clusters=res.n_clusters, noise=res.n_noise, **res.counts())
print(json.dumps(out))
"""

GALLERY_DONE = """
() => new Promise(resolve => {
    const T = window.bsT;
    const check = () => {
        const grid = document.getElementById('explore-gallery');
        const imgs = grid ? Array.from(grid.querySelectorAll('img')) : [];
        const info = document.querySelector('#explore-gallery-info b');
        if (T.t0 !== null && imgs.length && info && info.innerText === T.want
            && imgs.every(im => im.complete && im.naturalWidth > 0)) {
            requestAnimationFrame(() => resolve([performance.now() - T.t0, imgs.length]));
            return;
        }
        requestAnimationFrame(check);
    };
    check();
})
"""


def consensus_run(data: str, mode: str, cache: str) -> dict:
    r = subprocess.run([sys.executable, "-c", CONSENSUS_RUN, data, mode], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "BANDSCAPE_CACHE": cache}, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def bench_neighbours(cat) -> dict:
    import numpy as np
    from scipy.spatial.distance import cdist

    from backend.discover.neighbours import model_neighbours

    data = cat.load(PAPER_MODEL)
    rng = np.random.default_rng(0)
    picks = rng.choice(len(data.names), 50, replace=False)
    full = cdist(data.X, data.X, "minkowski", p=0.2)
    times, equal = [], 0
    model_neighbours(cat, PAPER_MODEL, data.names[0], k=10)
    for i in picks:
        t = time.perf_counter()
        table = model_neighbours(cat, PAPER_MODEL, data.names[i], k=10)
        times.append(time.perf_counter() - t)
        ref = full[i].copy()
        ref[i] = np.inf
        equal += set(table["material"]) == set(data.names[np.argsort(ref, kind="stable")[:10]])
    return {"neighbours_ms": round(1000 * statistics.median(times), 2), "neighbours_max_ms": round(1000 * max(times), 2),
            "neighbours_equal_brute_force": f"{equal}/{len(picks)}", "materials": len(data.names)}


def bench_gallery(data_root, n_select: int, repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    from tests.e2e.browser import launch_browser, start_app, stop_app

    sys.path.insert(0, str(ROOT / "bench"))
    from explorer_latency import open_page, wait_prefetch

    proc, url = start_app(data_root, env={"BANDSCAPE_PREWARM": "0"})
    times, shown = [], []
    try:
        with sync_playwright() as pw:
            browser = launch_browser(pw)
            page, _ = open_page(browser, url + "/")
            wait_prefetch(page)
            page.click("#explore-tool label:has-text('box select')")
            # a box from the left edge to just past the n-th point from the left, full height
            box = page.evaluate("""n => {
                const gd = document.querySelector('#explore-graph .js-plotly-plot');
                const tr = gd._fullData[1], L = gd._fullLayout, r = gd.getBoundingClientRect();
                const xs = Array.from(tr.x, x => L.xaxis._offset + L.xaxis.l2p(x)).sort((a, b) => a - b);
                const cut = (xs[n - 1] + xs[Math.min(n, xs.length - 1)]) / 2;
                const count = xs.filter(x => x <= cut).length;
                return {x0: r.left + L.xaxis._offset + 2, x1: r.left + cut, y0: r.top + L.yaxis._offset + 2,
                        y1: r.top + L.yaxis._offset + L.yaxis._length - 2, count};
            }""", n_select)
            for _ in range(repeats):
                page.evaluate("() => { const b = document.getElementById('explore-gallery-clear'); if (b) { b.click(); } }")
                page.evaluate("() => window.scrollTo(0, 0)")
                page.wait_for_timeout(400)
                page.evaluate("want => { window.bsT = {t0: null, want}; window.addEventListener('mouseup',"
                              " e => { window.bsT.t0 = e.timeStamp; }, {capture: true, once: true}); }",
                              f"{box['count']} selected")
                page.mouse.move(box["x0"], box["y0"])
                page.mouse.down()
                page.mouse.move(box["x1"], box["y1"], steps=5)
                page.mouse.up()
                ms, imgs = page.evaluate(GALLERY_DONE)
                times.append(ms)
                shown.append(imgs)
            browser.close()
    finally:
        stop_app(proc)
    return {"gallery_selected": box["count"], "gallery_thumbnails_per_page": shown[0],
            "gallery_ms": round(statistics.median(times), 1), "gallery_max_ms": round(max(times), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--select", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cat = Catalog(args.data)
    out = {"bench": "discover", "data": args.data, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "load_1min": round(os.getloadavg()[0], 2)}
    out.update(bench_neighbours(cat))
    with tempfile.TemporaryDirectory() as cache:
        cold = consensus_run(str(cat.root), "cold", cache)
        cached = consensus_run(str(cat.root), "cold", cache)
    with tempfile.TemporaryDirectory() as cache:
        warm = consensus_run(str(cat.root), "warm", cache)
    out.update({"consensus_models": cold["models"], "consensus_cold_s": round(cold["s"], 2),
                "consensus_cached_s": round(cached["s"], 3), "consensus_same_process_s": round(cold["same_process_s"], 4),
                "consensus_warm_matrices_s": round(warm["s"], 2), "consensus_clusters": cold["clusters"],
                "consensus_noise": cold["noise"], "consensus_stable": cold["stable"],
                "consensus_stable_in_cluster": cold["stable_in_cluster"]})
    out.update(bench_gallery(cat.root, args.select, args.repeats))
    out["load_1min_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
