"""Explorer latency in a real browser: first render, hover, recluster, model switch, bytes.

    python bench/explorer_latency.py --data ../shared/data/heuslerene [--repeats 9] [--app-dir DIR]

Starts the app twice on a fresh cache folder (without, then with the background computation of
the distance matrices: a job in this checkout, a thread in older ones), drives it in
Debian's headless chromium with Playwright and prints one JSON line of medians in milliseconds.
``--app-dir`` runs another checkout of bandscape with the same probes (a before/after in one
session, under the same load).

Where each timer starts and stops (all in the page, on the browser's own clock, except where
said; "the next frame" is the first requestAnimationFrame callback after the event, i.e. the
frame that paints it):

- ``first_render_ms``: navigation start (``performance.timeOrigin``) -> the next frame after
  the materials' trace has its points (``_fullData[1].x`` filled). Median of 5 page loads of
  the prewarmed app (once its background distance matrices are done, so that they do not
  share the CPU); ``first_render_cold_ms``: one load of a just-started app.
- ``hover_ms``: the ``mousemove`` event's ``timeStamp`` (when the browser received the move
  onto a point) -> the next frame after the hover image has loaded with that point's material
  (the ``load`` event of ``#explore-hover-img`` with its URL) and the name shows it. Chrome hands
  a mouse move to the page at the start of the next frame, so when the page sets the image in
  the move's handler that frame shows it, and this timer stops one frame later: its median cannot
  go below about 25 ms (half a frame of waiting for the first, one frame more) whatever the page
  does. ``hover_paint_ms`` stops at the paint of the frame that shows the image (a task posted
  from that frame's animation callbacks, which runs once its style, layout and paint are done);
  ``hover_page_ms`` is that from when the page was handed the move (what the page's own code and
  its frame cost, without the browser's wait for the frame). The points
  are ones with no other point within 10 px, so that "the point under the cursor" is the same
  for any hover rule; images are in the browser cache (after the page's prefetch), as when
  people browse. ``hover_wall_ms``: the same from Playwright's side (``mouse.move`` called ->
  the page reports the image), which adds the driver's round trips.
- ``recluster_ms``: the ``input`` event on the min-cluster-size box -> the next frame after
  the map shows the new clustering (``REDRAWN``: the summary names it and the points' colours
  split the materials as its labels do). Each value is a clustering not computed before.
- ``model_switch_ms``: the model set (``set_props``) -> the next frame after the map shows the
  new model's clustering at the new model's positions.
- ``bytes_per_recluster``: bodies of the ``_dash-update-component`` responses of one recluster.
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

from backend.cluster.models import cluster_model  # noqa: E402
from backend.cluster.params import PAPER_MODEL, ClusterParams  # noqa: E402
from backend.data.catalog import Catalog  # noqa: E402
from tests.e2e.browser import launch_browser, start_app, stop_app  # noqa: E402

# A probe that notes when the materials' points are first drawn (``window.bsFirstDrawn``).
FIRST_DRAWN_JS = """
(function poll() {
    const g = document.querySelector('#explore-graph .js-plotly-plot');
    if (g && g._fullData && g._fullData[1] && g._fullData[1].x && g._fullData[1].x.length) {
        requestAnimationFrame(() => { window.bsFirstDrawn = performance.now(); });
        return;
    }
    requestAnimationFrame(poll);
})();
"""
# In every page, before its scripts: a larger resource-timing buffer (the image prefetch), and
# the probe.
INIT_JS = "performance.setResourceTimingBufferSize(20000);\n" + FIRST_DRAWN_JS
SUMMARY_IS = "t => { const e = document.getElementById('explore-summary-text'); return e && e.innerText.startsWith(t); }"

# Start a clock at the next event of a kind (its timeStamp), stop it at the next frame after
# `done()` holds, checked on every frame and after every load event (window.bsWait resolves to
# the time).
ARM_JS = """
([kind, selector]) => {
    window.bsT = {t0: null, t1: null};
    const target = selector ? document.querySelector(selector) : window;
    // t0: when the browser received the event; h: when the page was handed it
    target.addEventListener(kind, e => { if (window.bsT.t0 === null) { window.bsT.t0 = e.timeStamp;
                                                                      window.bsT.h = performance.now(); } },
                            {capture: true, once: true});
}
"""
WAIT_JS = """
(cond) => { window.bsWait = new Promise(resolve => {
    const done = new Function("t0", "return (" + cond + ")(t0);");
    // T.paint: when the frame that shows it has been painted (a task posted from that frame's
    // animation callbacks runs after its style, layout and paint)
    const painted = () => { const ch = new MessageChannel();
        ch.port1.onmessage = () => { window.bsT.paint = performance.now(); }; ch.port2.postMessage(0); };
    const check = inFrame => {
        const T = window.bsT;
        if (T.t0 !== null && done(T.t0)) {
            if (inFrame) { painted(); }  // this frame shows it
            requestAnimationFrame(() => { if (!inFrame) { painted(); } T.t1 = performance.now(); resolve(T.t1 - T.t0); });
            return true;
        }
        return false;
    };
    const img = document.getElementById('explore-hover-img');
    const onLoad = () => { if (check(false)) { img.removeEventListener('load', onLoad); } };
    img.addEventListener('load', onLoad);
    const frame = () => { if (!check(true)) { requestAnimationFrame(frame); } else { img.removeEventListener('load', onLoad); } };
    requestAnimationFrame(frame);
}); }
"""
# the image has loaded for material `name` and the name shows it
HOVER_DONE = """t0 => { const im = document.getElementById('explore-hover-img');
    return document.getElementById('explore-hover-name').innerText === %s && im.complete && im.naturalWidth > 0
        && im.src.endsWith('/' + encodeURIComponent(%s) + '.png'); }"""
# The map shows a clustering: the summary names it, and the points' colour values (whatever
# their encoding) split the materials as its labels do (one colour per cluster, noise apart),
# at the model's positions (first point's x). Checked on the plot's own data, which Plotly and
# bandscape's in-place recolouring both update in the task that draws.
REDRAWN = """t0 => { const e = document.getElementById('explore-summary-text');
    if (!e || !e.innerText.startsWith(%s)) { return false; }
    const labels = %s, x0 = %s;
    const tr = document.querySelector('#explore-graph .js-plotly-plot')._fullData[1];
    if (Math.abs(tr.x[0] - x0) > 1e-4 * (1 + Math.abs(x0))) { return false; }
    const col = tr.marker.color, byLabel = new Map(), noiseCol = new Set(), otherCol = new Set();
    for (let i = 0; i < labels.length; i++) {
        const c = String(col[i]);
        if (byLabel.has(labels[i]) && byLabel.get(labels[i]) !== c) { return false; }
        byLabel.set(labels[i], c);
        (labels[i] < 0 ? noiseCol : otherCol).add(c);
    }
    for (const c of noiseCol) { if (otherCol.has(c)) { return false; } }
    return true; }"""


def redrawn(cat, model_id, params) -> str:
    """The REDRAWN condition for this clustering of this model."""
    r = cluster_model(cat, model_id, params)
    x0 = float(cat.load(model_id).xy[0, 0])
    return REDRAWN % (json.dumps(f"{r.n_clusters} clusters · {r.n_noise} noise"), json.dumps(r.labels.tolist()),
                      json.dumps(x0))


# Points with no other point within `gap` px on screen (so that every hover rule picks them),
# spread over the list; their screen position and name.
ISOLATED_JS = """
([count, gap]) => {
    const gd = document.querySelector('#explore-graph .js-plotly-plot');
    const tr = gd._fullData[1], L = gd._fullLayout, r = gd.getBoundingClientRect();
    const n = tr.x.length, xs = [], ys = [];
    for (let i = 0; i < n; i++) { xs.push(L.xaxis._offset + L.xaxis.l2p(tr.x[i])); ys.push(L.yaxis._offset + L.yaxis.l2p(tr.y[i])); }
    const out = [];
    for (let k = 0; k < n && out.length < count; k++) {
        const i = (17 + 41 * k) % n;
        let near = false;
        for (let j = 0; j < n && !near; j++) {
            near = j !== i && Math.hypot(xs[i] - xs[j], ys[i] - ys[j]) < gap;
        }
        if (!near && xs[i] > L.xaxis._offset + 20 && ys[i] > L.yaxis._offset + 40) {
            out.push({x: r.left + xs[i], y: r.top + ys[i], name: String(window.bandscapeNames[i])});
        }
    }
    return out;
}
"""


def expected_summary(cat, model_id, params) -> str:
    r = cluster_model(cat, model_id, params)
    return f"{r.n_clusters} clusters · {r.n_noise} noise"


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1600, "height": 950})
    page.add_init_script(INIT_JS)
    page.goto(url)
    page.wait_for_function("() => window.bsFirstDrawn !== undefined", timeout=120_000, polling=50)
    first = page.evaluate("() => window.bsFirstDrawn") / 1000
    page.wait_for_selector("#explore-summary-text", timeout=60_000)
    # the help opens by itself on a first visit (bandscape: once the map is drawn): close it
    page.wait_for_selector("#explore-help", state="visible", timeout=30_000)
    page.click("#explore-help-close")
    page.wait_for_selector("#explore-help", state="hidden")
    return page, first


def measure_reclusters(page, cat, repeats, model_id=PAPER_MODEL, settle_ms=300, max_mcs=None):
    """Change min cluster size to settings not seen before (no cached clustering); time it
    through the redraw; count the bytes the server sent for it (waiting ``settle_ms`` after each
    for the responses). Stops at ``repeats`` values, or at min cluster size ``max_mcs``."""
    times, sizes, sent = [], [], []
    page.on("response", lambda r: sent.append(r) if "_dash-update-component" in r.url else None)
    shown = expected_summary(cat, model_id, ClusterParams())
    mcs = 3
    while len(times) < repeats and (max_mcs is None or mcs < max_mcs):
        mcs += 1
        target = expected_summary(cat, model_id, ClusterParams(min_cluster_size=mcs))
        if target == shown:
            continue  # the page would not visibly change
        page.wait_for_timeout(300)
        sent.clear()
        page.evaluate(ARM_JS, ["input", "#explore-mcs"])
        page.evaluate(WAIT_JS, redrawn(cat, model_id, ClusterParams(min_cluster_size=mcs)))
        page.fill("#explore-mcs", str(mcs))
        times.append(page.evaluate("() => window.bsWait") / 1000)
        page.wait_for_timeout(settle_ms)
        sizes.append(sum(len(r.body()) for r in sent if r.status != 204))  # (204: no body)
        shown = target
    return times, sizes


def wait_prefetch(page, timeout_s=60):
    """Until the page has fetched an image of every material (its prefetch), or the timeout."""
    deadline = time.time() + timeout_s
    n = page.evaluate("() => document.querySelector('#explore-graph .js-plotly-plot')._fullData[1].x.length")
    while time.time() < deadline:
        got = page.evaluate("() => new Set(performance.getEntriesByType('resource').map(e => e.name)"
                            ".filter(u => u.includes('/material-image/'))).size")
        if got >= n:
            return
        time.sleep(0.5)


def measure_hovers(page, repeats):
    """Per hover: to the next frame after the image shows (``hover_ms``), to the paint of the
    frame that shows it (``hover_paint_ms``), that from when the page was handed the move
    (``hover_page_ms``), and on Playwright's clock."""
    points = page.evaluate(ISOLATED_JS, [repeats, 10])
    in_page, paint, wall = [], [], []
    for pt in points:
        page.mouse.move(pt["x"] - 150, pt["y"] + 150)  # off the point (an empty place or another point)
        page.wait_for_timeout(250)
        page.evaluate(ARM_JS, ["mousemove", None])
        name = json.dumps(pt["name"])
        page.evaluate(WAIT_JS, HOVER_DONE % (name, name))
        t0 = time.perf_counter()
        page.mouse.move(pt["x"], pt["y"])
        page.wait_for_function("() => window.bsT.t1 !== null", timeout=30_000, polling="raf")
        wall.append(time.perf_counter() - t0)
        in_page.append(page.evaluate("() => window.bsWait") / 1000)
        page.wait_for_function("() => window.bsT.paint !== undefined", timeout=10_000, polling="raf")
        paint.append(page.evaluate("() => [window.bsT.paint - window.bsT.t0, window.bsT.paint - window.bsT.h]"))
    return in_page, [p[0] / 1000 for p in paint], [p[1] / 1000 for p in paint], wall


def measure_switches(page, cat, models):
    times = []
    for mid in models:
        page.wait_for_timeout(300)
        page.evaluate("() => { window.bsT = {t0: null, t1: null}; }")
        page.evaluate(WAIT_JS, redrawn(cat, mid, ClusterParams()))
        page.evaluate("id => { window.bsT.t0 = performance.now();"
                      " window.dash_clientside.set_props('explore-model', {value: id}); }", mid)
        times.append(page.evaluate("() => window.bsWait") / 1000)
    return times


def med_ms(values) -> float:
    return round(1000 * statistics.median(values), 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--app-dir", default=None, help="run the app of this bandscape checkout (default: this one)")
    args = ap.parse_args()
    cat = Catalog(args.data)
    data_root = cat.root  # absolute: the app may run from another checkout (--app-dir)
    switch_models = [m.model_id for m in cat.models.values()
                     if not m.is_unencoded and m.window == 1 and m.model_id != PAPER_MODEL][: args.repeats]
    from playwright.sync_api import sync_playwright

    app_dir = Path(args.app_dir).resolve() if args.app_dir else None
    out = {"bench": "explorer_latency", "data": args.data, "app": args.app_dir or "this checkout",
           "machine": f"{platform.machine()}, {os.cpu_count()} cores", "load_1min": round(os.getloadavg()[0], 2)}
    import tempfile

    from backend.jobs import JobStore

    cache = tempfile.mkdtemp(prefix="bandscape-bench-cache-")  # matrices persist in the cache: start empty
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        # 1) cold: no prewarm, nothing cached
        proc, url = start_app(data_root, env={"BANDSCAPE_PREWARM": "0", "BANDSCAPE_CACHE": cache}, project=app_dir)
        try:
            page, first_cold = open_page(browser, url + "/")
            out["first_render_cold_ms"] = round(1000 * first_cold, 1)
            out["model_switch_cold_ms"] = med_ms(measure_switches(page, cat, switch_models))
            page.close()
        finally:
            stop_app(proc)
        # 2) the app as users run it: distance matrices prewarmed in the background
        shutil.rmtree(cache)
        proc, url = start_app(data_root, env={"BANDSCAPE_CACHE": cache}, project=app_dir)
        log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bandscape-app-{url.rsplit(':', 1)[1]}.log"
        os.environ["BANDSCAPE_CACHE"] = cache  # (where a read-only root's job records are)
        as_job = ((app_dir or Path(__file__).resolve().parents[1]) / "backend" / "jobs").is_dir()
        store = JobStore(data_root)
        try:
            deadline = time.time() + 600
            while (any(r["state"] in ("queued", "running") for r in store.all("distances")) if as_job
                   else "distance matrices of" not in log.read_text()) and time.time() < deadline:
                time.sleep(1)
            firsts = []
            for _ in range(5):
                page, first = open_page(browser, url + "/")
                firsts.append(first)
                page.close()
            out["first_render_ms"] = med_ms(firsts)
            page, _ = open_page(browser, url + "/")
            wait_prefetch(page)
            in_page, paint, handed, wall = measure_hovers(page, args.repeats)
            out["hover_ms"] = med_ms(in_page)
            out["hover_paint_ms"] = med_ms(paint)
            out["hover_page_ms"] = med_ms(handed)
            out["hover_wall_ms"] = med_ms(wall)
            rec, sizes = measure_reclusters(page, cat, args.repeats)
            out["recluster_ms"] = med_ms(rec)
            out["bytes_per_recluster"] = int(statistics.median(sizes))
            page.fill("#explore-mcs", "3")
            page.wait_for_function(SUMMARY_IS, arg=expected_summary(cat, PAPER_MODEL, ClusterParams()), timeout=60_000)
            out["model_switch_ms"] = med_ms(measure_switches(page, cat, switch_models[::-1]))
            page.close()
        finally:
            stop_app(proc)
            shutil.rmtree(cache, ignore_errors=True)
        browser.close()
    out["repeats"] = args.repeats
    out["load_1min_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
