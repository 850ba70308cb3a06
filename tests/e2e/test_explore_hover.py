"""The explorer's hover on the demo map, in chromium: the material shown is the one nearest the
cursor on screen, computed here independently (the model's coordinates from its files, the
axes' ranges from the figure's layout and the plot area from the page), for random cursor
positions, after a zoom and a pan, and after a recluster (with the right cluster); and under a
cursor that stays still while the map changes (a recluster's loading cover, its new clusters)."""

from __future__ import annotations

import time
import urllib.parse

import numpy as np
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from backend.cluster.models import cluster_model
from backend.cluster.params import ClusterParams, default_model
from backend.data.catalog import Catalog
from components.material_image import material_image_url
from components.scatter import PREFETCH_RADIUS_PX
from tests.conftest import PROJECT
from tests.e2e.browser import POINT_PIXEL_JS, new_page, start_app, stop_app

# the plot area on screen (Plotly's drag rectangle covers exactly it) and the axes' ranges
GEOMETRY_JS = """
() => {
    const gd = document.querySelector('#explore-graph .js-plotly-plot');
    const r = gd.querySelector('.nsewdrag').getBoundingClientRect();
    return {left: r.left, top: r.top, width: r.width, height: r.height,
            xr: gd.layout.xaxis.range, yr: gd.layout.yaxis.range, radius: gd.layout.hoverdistance};
}
"""
SHOWN_JS = """
() => ({name: document.getElementById('explore-hover-name').innerText,
        src: document.getElementById('explore-hover-img').getAttribute('src'),
        tip: document.getElementById('explore-hover-tip').innerText,
        tipShown: getComputedStyle(document.getElementById('explore-hover-tip')).display !== 'none'})
"""


@pytest.fixture(scope="module")
def demo():
    cat = Catalog(PROJECT)
    model = default_model(cat)
    data = cat.load(model)
    proc, url = start_app(PROJECT, env={"BANDSCAPE_PREWARM": "0"})
    yield url, cat, model, data
    stop_app(proc)


@pytest.fixture()
def page(browser):
    pg = new_page(browser, height=950)
    yield pg
    pg.close()


def open_map(page, url, query="?algo=hdbscan"):
    """Open the explorer at ``query``: by default the study's HDBSCAN cell on the root's default
    model, which these tests are written for (an empty query opens the root's own opening view,
    on the demo its families coloured by label)."""
    page.goto(url + "/" + query)
    page.wait_for_selector("#explore-summary-text", timeout=60_000)
    page.wait_for_function("() => { const g = document.querySelector('#explore-graph .js-plotly-plot');"
                           " return !!(g && g._fullLayout && g.layout.xaxis.range); }", timeout=60_000)
    # the help opens by itself on a first visit, once the map is drawn
    page.wait_for_selector("#explore-help", state="visible", timeout=10_000)
    page.click("#explore-help-close")
    page.wait_for_selector("#explore-help", state="hidden")


def screen_positions(page, xy: np.ndarray) -> tuple[np.ndarray, dict]:
    g = page.evaluate(GEOMETRY_JS)
    (x0, x1), (y0, y1) = g["xr"], g["yr"]
    sx = g["left"] + (xy[:, 0] - x0) / (x1 - x0) * g["width"]
    sy = g["top"] + g["height"] - (xy[:, 1] - y0) / (y1 - y0) * g["height"]
    return np.column_stack([sx, sy]), g


def cursor_positions(rng, pos: np.ndarray, g: dict, n: int) -> np.ndarray:
    """Mostly near points (within 15 px of a random one, where neighbours compete), some
    anywhere in the plot area."""
    inside = pos[(pos[:, 0] > g["left"] + 5) & (pos[:, 0] < g["left"] + g["width"] - 5)
                 & (pos[:, 1] > g["top"] + 40) & (pos[:, 1] < g["top"] + g["height"] - 5)]
    near = inside[rng.integers(0, len(inside), n - n // 4)] + rng.uniform(-15, 15, (n - n // 4, 2))
    anywhere = np.column_stack([rng.uniform(g["left"] + 5, g["left"] + g["width"] - 5, n // 4),
                                rng.uniform(g["top"] + 40, g["top"] + g["height"] - 5, n // 4)])
    # inside the plot area (below the mode bar), in whole pixels: the page sees the mouse at
    # integer client coordinates
    out = np.vstack([near, anywhere])
    out[:, 0] = out[:, 0].clip(g["left"] + 5, g["left"] + g["width"] - 5)
    out[:, 1] = out[:, 1].clip(g["top"] + 40, g["top"] + g["height"] - 5)
    return np.round(out)


def check_hovers(page, names, pos: np.ndarray, g: dict, cursors: np.ndarray, window, labels=None) -> int:
    """Move to each cursor position; the material shown must be the nearest point (within the
    hover radius; beyond it, no tooltip). Returns how many positions named a material."""
    named = 0
    for cx, cy in cursors:
        page.mouse.move(float(cx), float(cy))
        d = np.hypot(pos[:, 0] - cx, pos[:, 1] - cy)
        best = d.min()
        if best <= g["radius"] - 0.5:
            # ties (coinciding points) may name any of the equally near ones
            allowed = {names[i] for i in np.flatnonzero(d <= best + 1e-3)}
            try:  # a busy page handles the move late
                page.wait_for_function("names => names.includes(document.getElementById('explore-hover-name')"
                                       ".innerText)", arg=sorted(allowed), timeout=2_000)
            except PlaywrightTimeout:
                pass  # the assertion below says what was shown instead
            shown = page.evaluate(SHOWN_JS)
            assert shown["name"] in allowed, (
                f"cursor ({cx:.1f}, {cy:.1f}): shown {shown['name']!r} at "
                f"{d[list(names).index(shown['name'])] if shown['name'] in names else 'n/a'} px; "
                f"nearest {sorted(allowed)} at {best:.2f} px")
            assert shown["src"] == material_image_url(window, shown["name"])
            assert shown["tipShown"] and shown["tip"].startswith(shown["name"])
            if labels is not None:
                i = list(names).index(shown["name"])
                assert shown["tip"].endswith("noise" if labels[i] < 0 else f"cluster {labels[i]}"), shown["tip"]
            named += 1
        elif best > g["radius"] + 0.5:
            shown = page.evaluate(SHOWN_JS)
            assert not shown["tipShown"], f"cursor ({cx:.1f}, {cy:.1f}) is {best:.1f} px from any point"
    return named


def test_hover_names_the_nearest_material(page, demo):
    url, cat, model, data = demo
    names = [str(n) for n in data.names]
    rng = np.random.default_rng(14)
    window = cat.get(model).window
    open_map(page, url)

    pos, g = screen_positions(page, data.xy)
    named = check_hovers(page, names, pos, g, cursor_positions(rng, pos, g, 50), window)
    assert named >= 30, "most cursor positions were near a point"

    # zoom in (mouse wheel) and pan (drag): still the nearest under the new axes
    before = g["xr"]
    page.mouse.move(g["left"] + g["width"] / 2, g["top"] + g["height"] / 2)
    page.mouse.wheel(0, -600)
    page.wait_for_function("r => { const l = document.querySelector('#explore-graph .js-plotly-plot').layout;"
                           " return l.xaxis.range[1] - l.xaxis.range[0] < 0.95 * (r[1] - r[0]); }", arg=before)
    page.mouse.move(g["left"] + 300, g["top"] + 300)
    page.mouse.down()
    page.mouse.move(g["left"] + 420, g["top"] + 250, steps=8)
    page.mouse.up()
    page.wait_for_timeout(300)
    pos, g2 = screen_positions(page, data.xy)
    assert g2["xr"] != before
    named = check_hovers(page, names, pos, g2, cursor_positions(rng, pos, g2, 25), window)
    assert named >= 12

    # recluster: the hover names the material and its new cluster
    params = ClusterParams(min_cluster_size=7)
    result = cluster_model(cat, model, params)
    page.fill("#explore-mcs", "7")
    page.wait_for_function("t => document.getElementById('explore-summary-text').innerText.startsWith(t)",
                           arg=f"{result.n_clusters} clusters · {result.n_noise} noise", timeout=30_000)
    page.wait_for_timeout(300)
    pos, g3 = screen_positions(page, data.xy)
    assert g3["xr"] == g2["xr"], "a recluster keeps the view"
    named = check_hovers(page, names, pos, g3, cursor_positions(rng, pos, g3, 25), window, labels=result.labels)
    assert named >= 12
    assert not page.errors, page.errors


# holds back the answers to reclusters (the requests that update the summary) by ``ms`` from
# now on, as a slow server or a busy machine does: long enough for the map's loading cover to show
DELAY_RECLUSTER_JS = """
ms => {
    if (window.reclusterDelay === undefined) {
        const fetch0 = window.fetch;
        window.fetch = function (url, options) {
            const answer = fetch0.apply(this, arguments), ms = window.reclusterDelay;
            const recluster = String(url).includes('_dash-update-component')
                && String(options && options.body).includes('explore-summary.children');
            return recluster && ms ? answer.then(r => new Promise(done => setTimeout(() => done(r), ms))) : answer;
        };
    }
    window.reclusterDelay = ms;
}
"""
# whether something other than the map (the loading cover) is under the page position [x, y]
COVERED_JS = """
([x, y]) => !document.querySelector('#explore-graph .js-plotly-plot').contains(document.elementFromPoint(x, y))
"""


def _cluster_text(label: int) -> str:
    return "noise" if label < 0 else f"cluster {label}"


def _wait_for_hover_at(page, xy: np.ndarray, names: list, labels: np.ndarray, cursor, what: str) -> None:
    """Wait, without a mouse move, until the hover names the material nearest the cursor on the
    map as drawn now (the page around it may still be settling), with its cluster in the
    tooltip; up to 5 s."""
    cx, cy = cursor
    deadline = time.monotonic() + 5
    while True:
        pos, g = screen_positions(page, xy)
        d = np.hypot(pos[:, 0] - cx, pos[:, 1] - cy)
        allowed = {names[i] for i in np.flatnonzero(d <= d.min() + 1e-3)}
        shown = page.evaluate(SHOWN_JS)
        if (d.min() <= g["radius"] - 0.5 and shown["name"] in allowed and shown["tipShown"]
                and shown["tip"].endswith(_cluster_text(labels[names.index(shown["name"])]))):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: cursor ({cx}, {cy}), nearest {sorted(allowed)} at {d.min():.2f} px "
                                 f"(clusters {[_cluster_text(labels[names.index(n)]) for n in sorted(allowed)]}); "
                                 f"shown {shown}")
        page.wait_for_timeout(100)


def test_hover_follows_the_map_under_a_still_cursor(page, demo):
    """The map changes under a cursor that does not move: a recluster's loading cover comes and
    goes (a move made while it is up falls on the cover, not on the map), and the new clusters
    arrive. The hover then names the material nearest the cursor, with its cluster, without a
    further move."""
    url, cat, model, data = demo
    names = [str(n) for n in data.names]
    first = cluster_model(cat, model, ClusterParams())
    result = cluster_model(cat, model, ClusterParams(min_cluster_size=7))
    open_map(page, url)
    g = page.evaluate(GEOMETRY_JS)
    # two materials far apart whose cluster the recluster changes, each at a whole-pixel cursor
    # where it is the nearest point, inside the plot area (below the mode bar)
    cursors = []
    for i in np.flatnonzero([_cluster_text(a) != _cluster_text(b) for a, b in zip(first.labels, result.labels)]):
        at = page.evaluate(POINT_PIXEL_JS, [int(i)])
        if not at or not (g["left"] + 5 < at["x"] < g["left"] + g["width"] - 5
                          and g["top"] + 40 < at["y"] < g["top"] + g["height"] - 5):
            continue
        if not cursors or np.hypot(at["x"] - cursors[0][0], at["y"] - cursors[0][1]) > 3 * g["radius"]:
            cursors.append((at["x"], at["y"]))
        if len(cursors) == 2:
            break
    assert len(cursors) == 2, "the recluster changes the cluster of materials far apart"
    page.mouse.move(*cursors[0])
    _wait_for_hover_at(page, data.xy, names, first.labels, cursors[0], "before the recluster")

    # a move onto another material while the loading cover is up
    page.evaluate(DELAY_RECLUSTER_JS, 3_000)
    page.fill("#explore-mcs", "7")
    page.wait_for_function(COVERED_JS, arg=cursors[1], timeout=10_000)
    page.mouse.move(*cursors[1])
    assert page.evaluate(COVERED_JS, cursors[1]), "the move fell on the loading cover"
    page.wait_for_function("t => document.getElementById('explore-summary-text').innerText.startsWith(t)",
                           arg=f"{result.n_clusters} clusters · {result.n_noise} noise", timeout=30_000)
    _wait_for_hover_at(page, data.xy, names, result.labels, cursors[1], "once the loading cover went")

    # a recluster under the still cursor: the tooltip tells the new cluster
    page.evaluate(DELAY_RECLUSTER_JS, 0)
    page.fill("#explore-mcs", str(ClusterParams().min_cluster_size))
    page.wait_for_function("t => document.getElementById('explore-summary-text').innerText.startsWith(t)",
                           arg=f"{first.n_clusters} clusters · {first.n_noise} noise", timeout=30_000)
    _wait_for_hover_at(page, data.xy, names, first.labels, cursors[1], "after a recluster under the still cursor")
    assert not page.errors, page.errors


def test_local_app_has_a_small_maps_images_before_the_hover(page, demo):
    """The local app (one user) loads every band image of a small map once the page is idle;
    a hover then shows its material without asking the server."""
    url, cat, model, data = demo
    names = [str(n) for n in data.names]
    window = cat.get(model).window
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "/material-image/" in r.url else None)
    open_map(page, url)
    got: set = set()
    for _ in range(360):  # up to three minutes: 600 plots drawn from band data on a busy machine
        got = {urllib.parse.unquote(u.rsplit("/", 1)[1])[:-len(".png")] for u in asked}
        if len(got) >= len(names):
            break
        page.wait_for_timeout(500)
    assert got == set(names)
    page.wait_for_load_state("networkidle")
    asked.clear()
    pos, g = screen_positions(page, data.xy)
    cursors = cursor_positions(np.random.default_rng(3), pos, g, 12)
    named = check_hovers(page, names, pos, g, cursors, window)
    assert named >= 6
    assert asked == [], f"hovers asked the server for {asked}"
    # the images of the points nearest the cursor are decoded ahead of their hover (those within
    # the prefetch radius: a cursor in an empty stretch of the map has none); a few dozen kept
    ahead = 0
    for cx, cy in cursors + 7:  # (between points)
        page.mouse.move(float(cx), float(cy))
        dist = np.hypot(pos[:, 0] - cx, pos[:, 1] - cy)
        if dist.min() > PREFETCH_RADIUS_PX:
            continue
        ahead += 1
        nearest = names[int(np.argmin(dist))]
        page.wait_for_function("u => { const m = window.bandscapeDecoded; return m && m.has(u) && m.get(u).complete; }",
                               arg=material_image_url(window, nearest), timeout=10_000)
    assert ahead >= 6
    assert 6 <= page.evaluate("() => window.bandscapeDecoded.size") <= 48
    assert not page.errors, page.errors


def test_hidden_points_are_not_hovered(page, demo):
    """With noise hidden, the nearest shown point is named, never a hidden one."""
    url, cat, model, data = demo
    names = np.array([str(n) for n in data.names])
    result = cluster_model(cat, model, ClusterParams())
    assert result.n_noise > 0
    open_map(page, url, "?hn=1")
    page.wait_for_function("() => { const t = document.querySelector('#explore-graph .js-plotly-plot')._fullData[1];"
                           " return t.marker.opacity.length > 0; }")
    pos, g = screen_positions(page, data.xy)
    shown = ~result.noise
    # right next to hidden points, in whole pixels (the page sees the mouse at integer client
    # coordinates: a fractional cursor here made near-ties disagree by a fraction of a pixel)
    cursors = np.round(pos[result.noise][:20] + 1.0)
    named = check_hovers(page, list(names[shown]), pos[shown], g, cursors, cat.get(model).window, labels=result.labels[shown])
    assert named >= 5


# computed fill and opacity of every drawn point of the materials' trace, by point index
POINT_STYLES_JS = """
() => {
    const gd = document.querySelector('#explore-graph .js-plotly-plot');
    const group = Array.from(gd.querySelectorAll('.scatterlayer g.trace')).find(g => g.__data__[0].trace.index === 1);
    const out = {};
    group.querySelectorAll('path.point').forEach(el => {
        const cs = getComputedStyle(el);
        out[el.__data__.i] = [cs.fill, Number(cs.opacity)];
    });
    return out;
}
"""


def _rgb(colour: str) -> str:
    from plotly.colors import hex_to_rgb, unlabel_rgb

    r, g, b = hex_to_rgb(colour) if colour.startswith("#") else unlabel_rgb(colour)
    return f"rgb({int(r)}, {int(g)}, {int(b)})"


def test_recolour_in_place_draws_what_plotly_draws(page, demo):
    """A recluster and hiding noise recolour the map in place: every point has the colour of
    its new cluster (PALETTE[k % len], noise black) and hidden points are transparent, exactly
    as Plotly draws the same figure from scratch."""
    from components.scatter import NOISE_COLOUR, PALETTE

    url, cat, model, data = demo
    open_map(page, url)
    result = cluster_model(cat, model, ClusterParams(min_cluster_size=5))
    want = {str(i): [_rgb(NOISE_COLOUR if label < 0 else PALETTE[label % len(PALETTE)]), 0 if label < 0 else 1]
            for i, label in enumerate(result.labels)}
    page.fill("#explore-mcs", "5")
    page.wait_for_function("t => document.getElementById('explore-summary-text').innerText.startsWith(t)",
                           arg=f"{result.n_clusters} clusters · {result.n_noise} noise", timeout=30_000)
    page.click("#explore-adv-btn")
    page.click("#explore-hide-noise")
    # wait for the state asserted below: every point drawn in its new cluster's colour, noise
    # hidden (the hide-noise switch's own restyle), not merely for some per-point opacity
    try:
        page.wait_for_function(f"want => {{ let got; try {{ got = ({POINT_STYLES_JS})(); }} catch (e) {{ return false; }}"
                               " return Object.keys(want).every(i => got[i] && got[i][0] === want[i][0]"
                               " && got[i][1] === want[i][1]); }", arg=want, timeout=30_000)
    except PlaywrightTimeout:
        pass  # the assertions below say which points differ
    in_place = page.evaluate(POINT_STYLES_JS)
    assert len(in_place) == len(data.names)
    for i, label in enumerate(result.labels):
        fill, opacity = in_place[str(i)]
        assert fill == want[str(i)][0], (i, label, fill)
        assert opacity == want[str(i)][1], (i, label, opacity)
    # Plotly's own drawing of the same figure (recomputed from its data)
    page.evaluate("() => Plotly.redraw(document.querySelector('#explore-graph .js-plotly-plot'))")
    page.wait_for_timeout(300)
    assert page.evaluate(POINT_STYLES_JS) == in_place
    assert not page.errors, page.errors


def test_webgl_map_above_the_svg_limit(page, demo, tmp_path):
    """Above SVG_MAX_POINTS the map is WebGL: the hover still names the nearest material, and a
    recluster (Plotly's restyle there) shows the new clusters."""
    import pandas as pd

    from components.scatter import SVG_MAX_POINTS

    _, cat, model, data = demo
    info = cat.get(model)
    copies = SVG_MAX_POINTS // len(data.names) + 1
    root = tmp_path / "big"
    (root / "embeddings").mkdir(parents=True)
    rng = np.random.default_rng(3)
    names = [f"{n}_{k}" for k in range(copies) for n in data.names]
    span = np.ptp(data.xy, axis=0) * 1.1
    xy = np.vstack([data.xy + span * [k % 3, k // 3] for k in range(copies)])
    X = np.vstack([data.X + rng.normal(0, 1e-3, data.X.shape) for _ in range(copies)])
    pd.DataFrame(xy, columns=["z0", "z1"]).assign(filename=[f"{n}.png" for n in names])[
        ["filename", "z0", "z1"]].to_csv(root / "embeddings" / info.embedding_path.name, index=False)
    pd.DataFrame(X, columns=[f"z{i}" for i in range(X.shape[1])]).assign(filename=[f"{n}.png" for n in names])[
        ["filename"] + [f"z{i}" for i in range(X.shape[1])]].to_csv(root / "embeddings" / info.fingerprint_path.name,
                                                                    index=False)
    big = Catalog(root)
    proc, url = start_app(root, env={"BANDSCAPE_PREWARM": "0"})
    try:
        open_map(page, url, "?metric=euclidean")
        assert page.evaluate("() => document.querySelector('#explore-graph .js-plotly-plot')._fullData[1].type") \
            == "scattergl"
        bd = big.load(model)
        names = [str(n) for n in bd.names]
        pos, g = screen_positions(page, bd.xy)
        rng = np.random.default_rng(4)
        assert check_hovers(page, names, pos, g, cursor_positions(rng, pos, g, 16), info.window) >= 8
        # a recluster that changes the summary, so that the wait below waits for it to be drawn
        # (the map holds each material six times, nearly the same: up to a minimum cluster size
        # of 6 the clustering is the same one cluster per material)
        first = cluster_model(big, model, ClusterParams(metric="euclidean"))
        result = cluster_model(big, model, ClusterParams(metric="euclidean", min_cluster_size=7))
        assert (result.n_clusters, result.n_noise) != (first.n_clusters, first.n_noise)
        page.fill("#explore-mcs", "7")
        page.wait_for_function("t => document.getElementById('explore-summary-text').innerText.startsWith(t)",
                               arg=f"{result.n_clusters} clusters · {result.n_noise} noise", timeout=60_000)
        page.wait_for_timeout(500)
        # the map may have moved on the page (a shorter legend above it), its axes not
        pos, g2 = screen_positions(page, bd.xy)
        assert g2["xr"] == g["xr"] and g2["yr"] == g["yr"], "a recluster keeps the view"
        assert check_hovers(page, names, pos, g2, cursor_positions(rng, pos, g2, 16), info.window,
                            labels=result.labels) >= 8
        assert not page.errors, page.errors
    finally:
        stop_app(proc)
