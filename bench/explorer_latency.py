"""Explorer latency in a real browser: first render, recluster, hover, model switch, bytes.

    python bench/explorer_latency.py --data ../shared/data/heuslerene [--repeats 9]

Starts the app twice on a fresh cache folder (without, then with the distance-matrix job that
fills the shared cache at start), drives it in Debian's headless chromium with Playwright and prints one JSON line of medians in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.catalog import Catalog  # noqa: E402
from backend.clustering import PAPER_MODEL, ClusterParams, cluster_model  # noqa: E402
from tests.e2e.browser import POINT_XY_JS, launch_browser, start_app, stop_app  # noqa: E402

# the materials' trace has its points (SVG or WebGL): the map is on screen
POINTS_DRAWN_JS = ("() => { const g = document.querySelector('#explore-graph .js-plotly-plot');"
                   " return !!(g && g._fullData && g._fullData[1] && g._fullData[1].x && g._fullData[1].x.length); }")
SUMMARY_IS = "t => { const e = document.getElementById('explore-summary-text'); return e && e.innerText.startsWith(t); }"


def expected_summary(cat, model_id, params) -> str:
    r = cluster_model(cat, model_id, params)
    return f"{r.n_clusters} clusters · {r.n_noise} noise"


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1600, "height": 950})
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("#explore-summary-text", timeout=120_000)
    page.wait_for_function(POINTS_DRAWN_JS, timeout=60_000, polling="raf")
    first = time.perf_counter() - t0
    if page.locator("#explore-help-close").is_visible():
        page.click("#explore-help-close")
        page.wait_for_selector("#explore-help", state="hidden")
    return page, first


def measure_reclusters(page, cat, repeats):
    """Change min cluster size to settings not seen before (no cached clustering) and wait for
    the summary of that very clustering; count the bytes the server sent for it."""
    times, sizes, sent = [], [], []
    page.on("response", lambda r: sent.append(r) if "_dash-update-component" in r.url else None)
    shown = expected_summary(cat, PAPER_MODEL, ClusterParams())
    mcs = 3
    while len(times) < repeats:
        mcs += 1
        target = expected_summary(cat, PAPER_MODEL, ClusterParams(min_cluster_size=mcs))
        if target == shown:
            continue  # the page would not visibly change
        page.wait_for_timeout(200)
        sent.clear()
        t0 = time.perf_counter()
        page.fill("#explore-mcs", str(mcs))
        page.wait_for_function(SUMMARY_IS, arg=target, timeout=60_000, polling="raf")
        times.append(time.perf_counter() - t0)
        page.wait_for_timeout(200)
        sizes.append(sum(len(r.body()) for r in sent))
        shown = target
    return times, sizes


HOVER_PROBE = """
() => {
    const gd = document.getElementById("explore-graph").querySelector(".js-plotly-plot");
    const im = document.getElementById("explore-hover-img");
    window.bsHover = [];
    gd.on("plotly_hover", () => { window.bsHoverT0 = performance.now(); });
    im.addEventListener("load", () => { window.bsHover.push(performance.now() - window.bsHoverT0); });
}
"""


def measure_hovers(page, repeats):
    """Two clocks: from the mouse move (includes Plotly's hover detection and Playwright's
    polling) and, in the page, from Plotly's hover event to the image's load event."""
    page.evaluate(HOVER_PROBE)
    times = []
    for i in range(repeats):
        pt = page.evaluate(POINT_XY_JS, [17 + 41 * i])
        t0 = time.perf_counter()
        page.mouse.move(pt["x"], pt["y"])
        page.wait_for_function(
            "n => { const im = document.getElementById('explore-hover-img');"
            " return document.getElementById('explore-hover-name').innerText === n && im.complete"
            " && im.naturalWidth > 0 && im.src.endsWith(encodeURIComponent(n) + '.png'); }",
            arg=pt["name"], timeout=30_000, polling="raf")
        times.append(time.perf_counter() - t0)
    in_page = page.evaluate("() => window.bsHover")
    return times, [t / 1000 for t in in_page]


def measure_switches(page, cat, models):
    times = []
    for mid in models:
        target = expected_summary(cat, mid, ClusterParams())
        t0 = time.perf_counter()
        page.evaluate("id => window.dash_clientside.set_props('explore-model', {value: id})", mid)
        page.wait_for_function(SUMMARY_IS, arg=target, timeout=120_000, polling="raf")
        page.wait_for_function("id => location.search.includes('model=' + id)", arg=mid, timeout=10_000)
        times.append(time.perf_counter() - t0)
    return times


def med_ms(values) -> float:
    return round(1000 * statistics.median(values), 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    cat = Catalog(args.data)
    switch_models = [m.model_id for m in cat.models.values()
                     if not m.is_unencoded and m.window == 1 and m.model_id != PAPER_MODEL][: args.repeats]
    from playwright.sync_api import sync_playwright

    out = {"bench": "explorer_latency", "data": args.data, "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    import tempfile

    from backend.jobs import JobStore

    cache = tempfile.mkdtemp(prefix="bandscape-bench-cache-")
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        # 1) cold: no prewarm, nothing cached
        proc, url = start_app(args.data, env={"BANDSCAPE_PREWARM": "0", "BANDSCAPE_CACHE": cache})
        try:
            page, first_cold = open_page(browser, url + "/")
            out["first_render_cold_ms"] = round(1000 * first_cold, 1)
            out["model_switch_cold_ms"] = med_ms(measure_switches(page, cat, switch_models))
            page.close()
        finally:
            stop_app(proc)
        # 2) the app as users run it: distance matrices computed by a background job
        shutil.rmtree(cache)
        proc, url = start_app(args.data, env={"BANDSCAPE_CACHE": cache})
        os.environ["BANDSCAPE_CACHE"] = cache  # (where a read-only root's job records are)
        store = JobStore(args.data)
        try:
            firsts = []
            for _ in range(3):
                page, first = open_page(browser, url + "/")
                firsts.append(first)
                page.close()
            out["first_render_ms"] = med_ms(firsts)
            deadline = time.time() + 600
            while any(r["state"] in ("queued", "running") for r in store.all("distances")) and time.time() < deadline:
                time.sleep(1)
            page, _ = open_page(browser, url + "/")
            rec, sizes = measure_reclusters(page, cat, args.repeats)
            out["recluster_ms"] = med_ms(rec)
            out["bytes_per_recluster"] = int(statistics.median(sizes))
            page.wait_for_timeout(3000)  # let the image prefetch finish
            from_mouse, in_page = measure_hovers(page, args.repeats)
            out["hover_ms"] = med_ms(in_page)
            out["hover_from_mouse_ms"] = med_ms(from_mouse)
            page.fill("#explore-mcs", "3")
            page.wait_for_function(SUMMARY_IS, arg=expected_summary(cat, PAPER_MODEL, ClusterParams()), timeout=60_000)
            out["model_switch_ms"] = med_ms(measure_switches(page, cat, switch_models[::-1]))
            page.close()
        finally:
            stop_app(proc)
            shutil.rmtree(cache, ignore_errors=True)
        browser.close()
    out["repeats"] = args.repeats
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
