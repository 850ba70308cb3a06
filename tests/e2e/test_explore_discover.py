"""The explorer's discovery tools in chromium, on the demo: lasso -> gallery -> pin, the
neighbour view, cluster selection kept in the URL, the consensus colouring and a representative
subset; each checked against the backend called directly (and the lasso against the points'
screen positions computed here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.path import Path as PolyPath

from backend.cluster.models import cluster_model
from backend.cluster.params import ClusterParams, default_model
from backend.data.catalog import Catalog
from backend.discover.consensus import consensus_models, model_consensus
from backend.discover.neighbours import model_neighbours
from backend.discover.subset import model_subset
from backend.evaluate.select import select_models
from components.scatter import SCALE_COLOURS, UNSELECTED_CODE, colour_codes, stability_codes
from tests.conftest import PROJECT
from tests.e2e.browser import start_app, stop_app
from tests.e2e.test_explore_hover import POINT_STYLES_JS, _rgb, open_map, screen_positions

GALLERY_COUNT = "() => { const b = document.querySelector('#explore-gallery-info b'); return b ? b.innerText : ''; }"
CODES_JS = "() => Array.from(document.querySelector('#explore-graph .js-plotly-plot')._fullData[1].marker.color)"



def lasso(page, polygon) -> None:
    """Press at the first vertex, move through the others (back to the first for a lasso; a box
    is the rectangle of the first and the last), release."""
    page.mouse.move(*polygon[0])
    page.mouse.down()
    for x, y in polygon[1:]:
        page.mouse.move(x, y, steps=6)
    page.mouse.up()


def wait_count(page, text: str) -> None:
    page.wait_for_function(f"t => ({GALLERY_COUNT})() === t", arg=text, timeout=20_000)


def test_lasso_gallery_pin_and_neighbours(page, demo):
    url, cat, model, data = demo
    names = np.array([str(n) for n in data.names])
    open_map(page, url)
    page.click("#explore-tool label:has-text('lasso select')")
    pos, g = screen_positions(page, data.xy)
    cx, cy, w, h = g["left"] + g["width"] / 2, g["top"] + g["height"] / 2, g["width"], g["height"]
    polygon = [(cx - 0.25 * w, cy - 0.2 * h), (cx + 0.1 * w, cy - 0.3 * h), (cx + 0.2 * w, cy + 0.2 * h),
               (cx - 0.15 * w, cy + 0.25 * h)]
    lasso(page, polygon + polygon[:1])
    # the materials inside the drawn polygon, from their coordinates and the axes (points within
    # half a pixel of its edge may fall either way)
    path = PolyPath(np.array(polygon))
    inside = path.contains_points(pos)
    sure = path.contains_points(pos, radius=-1.0) & path.contains_points(pos, radius=1.0)
    page.wait_for_selector("#explore-gallery .explore-thumb", timeout=20_000)
    count = int(page.evaluate(GALLERY_COUNT).split()[0])
    assert abs(count - inside.sum()) <= (inside != sure).sum() + 2
    assert count > 20

    # the export holds exactly the selected materials, with their clusters and coordinates
    with page.expect_download() as dl:
        page.click("#explore-export-selection")
    table = pd.read_csv(dl.value.path())
    assert len(table) == count and set(table.material) >= set(names[inside & sure]) - set(names[~inside])
    assert set(table.material) <= set(names[path.contains_points(pos, radius=3.0) | path.contains_points(pos, radius=-3.0)])
    labels = cluster_model(cat, model, ClusterParams()).labels
    at = pd.Index(names).get_indexer(table.material)
    np.testing.assert_array_equal(table.cluster, labels[at])
    np.testing.assert_allclose(table[["x", "y"]], data.xy[at])

    # unselected points are grey, selected ones keep their cluster's colour
    styles = page.evaluate(POINT_STYLES_JS)
    chosen = set(at)
    for i, label in enumerate(labels):
        want = SCALE_COLOURS[UNSELECTED_CODE] if i not in chosen else SCALE_COLOURS[colour_codes(np.array([label]))[0]]
        assert styles[str(i)][0] == _rgb(want), (i, label, styles[str(i)])

    # a page of thumbnails with name and cluster; a click pins that material
    first = page.locator("#explore-gallery .explore-thumb").nth(2)
    name = first.get_attribute("data-pin")
    caption = first.locator("figcaption").inner_text()
    i = list(names).index(name)
    assert caption.startswith(name) and ("noise" if labels[i] < 0 else f"cluster {labels[i]}") in caption
    families = set(pd.read_csv(PROJECT / "labels.csv", dtype=str)["family"])
    assert any(f in caption for f in families), caption  # the caption names the material's family
    first.click()
    page.wait_for_selector(f"#explore-band-viewer .gtitle:text('{name}')", timeout=20_000)

    # its ten nearest materials under the clustering's metric, listed and drawn
    page.wait_for_selector("#explore-neighbours .explore-neighbour", timeout=20_000)
    want = model_neighbours(cat, model, name, k=10, metric="minkowski", p=0.2)
    shown = page.locator("#explore-neighbours .explore-neighbour").evaluate_all("els => els.map(e => e.dataset.pin)")
    assert shown == list(want.material)
    lines = page.evaluate("() => { const t = document.querySelector('#explore-graph .js-plotly-plot').data[4];"
                          " return [Array.from(t.x), Array.from(t.y)]; }")
    ends = np.array([[lines[0][3 * j + 1], lines[1][3 * j + 1]] for j in range(10)])
    np.testing.assert_allclose(ends, data.xy[want["index"].to_numpy()], rtol=1e-6)
    assert np.allclose(lines[0][0::3], data.xy[i, 0]) and np.allclose(lines[1][0::3], data.xy[i, 1])

    # k larger than the set: a clear message, the lines gone
    page.fill("#explore-nb-k", str(len(names)))
    page.wait_for_selector("#explore-neighbours .alert", timeout=20_000)
    assert f"k={len(names)} is larger than the {len(names) - 1} other materials" in page.inner_text("#explore-neighbours")
    page.wait_for_function("() => document.querySelector('#explore-graph .js-plotly-plot').data[4].x.length === 0")

    # a lasso around nothing: a message, no gallery, nothing grey
    page.click("#explore-tool label:has-text('box select')")
    page.evaluate("() => window.scrollTo(0, 0)")
    pos, g = screen_positions(page, data.xy)  # the page scrolled to the gallery and back
    corner = (g["left"] + 3, g["top"] + g["height"] - 3)
    far = np.hypot(pos[:, 0] - corner[0], pos[:, 1] - corner[1]).min()
    if far > 30:
        lasso(page, [(corner[0], corner[1] - 20), (corner[0] + 15, corner[1] - 2)])
        page.wait_for_function("() => document.getElementById('explore-gallery-info').innerText"
                               ".startsWith('Nothing selected: the box holds no visible material')", timeout=10_000)
        assert page.locator("#explore-gallery .explore-thumb").count() == 0
        assert all(s[0] != _rgb(SCALE_COLOURS[UNSELECTED_CODE]) for s in page.evaluate(POINT_STYLES_JS).values())
    assert not page.errors, page.errors


def test_cluster_click_selection_is_kept_in_the_url(page, demo):
    url, cat, model, data = demo
    result = cluster_model(cat, model, ClusterParams())
    open_map(page, url)
    badge = page.locator("#explore-sizes-box .badge").nth(0)
    k = int(badge.get_attribute("data-cluster"))
    badge.click()
    size = int((result.labels == k).sum())
    wait_count(page, f"{size} selected")
    assert f"(cluster {k})" in page.inner_text("#explore-gallery-info")
    members = set(np.array(data.names)[result.labels == k])
    page.wait_for_function("() => location.search.includes('pts=')", timeout=10_000)
    from urllib.parse import parse_qs, urlsplit

    assert set(parse_qs(urlsplit(page.url).query)["pts"][0].split(",")) == members
    # the shared link opens with the same selection
    page.goto(page.url)
    page.wait_for_selector("#explore-summary-text", timeout=60_000)
    wait_count(page, f"{size} selected")
    assert "(from the URL)" in page.inner_text("#explore-gallery-info")
    # clear: the gallery closes, the address drops the selection
    page.click("#explore-gallery-clear")
    page.wait_for_function("() => !location.search.includes('pts=')", timeout=10_000)
    assert not page.is_visible("#explore-gallery-box")
    assert not page.errors, page.errors


def test_consensus_colouring_and_subset(page, demo):
    url, cat, model, data = demo
    open_map(page, url)
    # the demo has one autoencoder per window: by default, the consensus of all its autoencoders
    ids = select_models(cat, "")
    assert len(ids) >= 2 and all(len(select_models(cat, f"window={cat.get(m).window:g}")) == 1 for m in ids)
    assert page.get_attribute("#explore-consensus-models", "placeholder") == f"all autoencoders ({len(ids)} models)"
    page.select_option("#explore-colour-by", "consensus")
    page.wait_for_selector("#explore-consensus-summary", timeout=120_000)
    cons = model_consensus(cat, ids, ClusterParams())
    assert f"consensus of {len(ids)} models (all autoencoders)" in page.inner_text("#explore-consensus-summary")
    at = pd.Index(cons.materials).get_indexer(data.names)
    page.wait_for_function(f"() => ({CODES_JS})().join() === {list(map(int, colour_codes(cons.labels[at])))!r}.join()",
                           timeout=20_000)

    # a set of one model: a clear message, nothing half-drawn
    page.fill("#explore-consensus-models", f"id={model}")
    page.press("#explore-consensus-models", "Enter")
    page.wait_for_selector("#explore-alert .alert-danger", timeout=60_000)
    assert "a consensus needs at least two models" in page.inner_text("#explore-alert")

    flt = "arch=18|unencoded"
    ids = select_models(cat, flt)
    cons = model_consensus(cat, ids, ClusterParams())
    page.fill("#explore-consensus-models", flt)
    page.press("#explore-consensus-models", "Enter")
    page.wait_for_function("t => { const s = document.getElementById('explore-consensus-summary');"
                           " return !!s && s.innerText.includes(t); }", arg=f"({flt})", timeout=120_000)
    assert not page.locator("#explore-alert .alert").count()
    counts = cons.counts()
    text = page.inner_text("#explore-consensus-summary")
    assert text.startswith(f"{counts['stable']} of {len(data.names)} materials stable")
    assert f"consensus of {len(ids)} models ({flt})" in text and f"{cons.n_clusters} clusters" in text
    at = pd.Index(cons.materials).get_indexer(data.names)
    page.wait_for_function(f"() => ({CODES_JS})().join() === {list(map(int, colour_codes(cons.labels[at])))!r}.join()",
                           timeout=20_000)
    page.select_option("#explore-colour-by", "stability")
    page.wait_for_function(f"() => ({CODES_JS})().join() === {list(map(int, stability_codes(cons.stability[at])))!r}.join()",
                           timeout=20_000)
    assert page.evaluate("() => location.search").count("cons=") == 1

    # a representative subset of the clustering on screen, selected on the map
    table, sub = model_subset(cat, model, ClusterParams(), size=30)
    page.fill("#explore-subset-n", "30")
    page.click("#explore-subset-choose")
    page.wait_for_selector("#explore-subset-coverage", timeout=30_000)
    assert page.inner_text("#explore-subset-coverage") == f"{sub.coverage:.1%}"
    wait_count(page, "30 selected")
    with page.expect_download() as dl:
        page.click("#explore-subset-export")
    assert list(pd.read_csv(dl.value.path()).material) == list(table.material)
    page.fill("#explore-subset-n", str(len(data.names) + 1))
    page.click("#explore-subset-choose")
    # the report of the subset above may still be on screen: wait for the new answer
    page.wait_for_function("(t) => (document.querySelector('#explore-subset-report .alert') || {}).innerText"
                           " && document.querySelector('#explore-subset-report .alert').innerText.includes(t)",
                           arg=f"larger than the data ({len(data.names)} materials)", timeout=30_000)

    # cluster cards: one per cluster, with the label mix; a click selects that cluster
    page.click("#explore-cards-btn")
    page.wait_for_selector(".explore-card", timeout=30_000)
    result = cluster_model(cat, model, ClusterParams())
    assert page.locator(".explore-card").count() == min(result.n_clusters, 60)
    card = page.locator(".explore-card").nth(0)
    assert "labels: " in card.inner_text()
    k = int(card.get_attribute("data-cluster"))
    card.click()
    wait_count(page, f"{int((result.labels == k).sum())} selected")
    assert not [e for e in page.errors if "favicon" not in e], page.errors


def done_when_flow(page, url, root, screenshot=None) -> dict:
    """The issue's "done when", in the browser: lasso a region, see its band structures, pin one,
    see its ten neighbours, colour by the consensus of the page's default models (the 72 one-eV
    models on the published data), export a 50-material representative subset. ``screenshot``:
    where to save a picture of the page once the consensus colouring shows (on the demo:
    docs/discover.png, by docs/screenshots.py)."""
    cat = Catalog(root)
    model = default_model(cat)
    data = cat.load(model)
    # the page's default model set: the 72 one-eV models on the published data, every
    # autoencoder on the demo (one a window)
    flt, ids = consensus_models(cat, None, cat.get(model).window)
    cons = model_consensus(cat, ids, ClusterParams())
    open_map(page, url)
    page.click("#explore-tool label:has-text('lasso select')")
    pos, g = screen_positions(page, data.xy)
    # a region rich in consensus clusters: of windows a quarter of the plot wide and high, the
    # one holding the most consensus-cluster members; the lasso is the octagon inscribed in it
    clustered = pos[pd.Index(data.names).get_indexer(cons.materials[cons.labels >= 0])]
    dx, dy = g["width"] / 8, g["height"] / 8
    centres = [(g["left"] + fx * g["width"], g["top"] + fy * g["height"])
               for fx in np.linspace(0.15, 0.85, 15) for fy in np.linspace(0.2, 0.85, 14)]
    xm, ym = max(centres, key=lambda c: int(((np.abs(clustered[:, 0] - c[0]) < dx)
                                                & (np.abs(clustered[:, 1] - c[1]) < dy)).sum()))
    octagon = [(xm + dx * np.cos(a), ym + dy * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 9)]
    lasso(page, octagon)
    page.wait_for_selector("#explore-gallery .explore-thumb img", timeout=20_000)
    selected = int(page.evaluate(GALLERY_COUNT).split()[0])
    thumb = page.locator("#explore-gallery .explore-thumb").nth(0)
    name = thumb.get_attribute("data-pin")
    thumb.click()
    page.wait_for_selector(f".pinned-name:text('{name}'), #explore-band-viewer .gtitle:text('{name}')", timeout=20_000)
    page.wait_for_selector("#explore-neighbours .explore-neighbour", timeout=20_000)
    shown = page.locator("#explore-neighbours .explore-neighbour").evaluate_all("els => els.map(e => e.dataset.pin)")
    assert shown == list(model_neighbours(cat, model, name, k=10, metric="minkowski", p=0.2).material)

    page.select_option("#explore-colour-by", "consensus")
    page.wait_for_selector("#explore-consensus-summary", timeout=180_000)
    text = page.inner_text("#explore-consensus-summary")
    assert text.startswith(f"{cons.counts()['stable']} of {len(data.names)} materials stable")
    assert f"consensus of {len(ids)} models ({flt or 'all autoencoders'})" in text
    page.evaluate("() => window.scrollTo(0, 0)")
    page.mouse.move(5, 5)
    page.wait_for_timeout(800)
    if screenshot:
        page.screenshot(path=str(screenshot))

    page.fill("#explore-subset-n", "50")
    page.click("#explore-subset-choose")
    page.wait_for_selector("#explore-subset-coverage", timeout=60_000)
    wait_count(page, "50 selected")
    with page.expect_download() as dl:
        page.click("#explore-subset-export")
    subset = pd.read_csv(dl.value.path())
    assert len(subset) == 50 and subset.material.is_unique
    return {"selected": selected, "pinned": name, "models": len(ids), "subset": len(subset),
            "coverage": page.inner_text("#explore-subset-coverage")}


@pytest.mark.shared_data
def test_done_when_on_the_published_data(page, shared_root, tmp_path):
    proc, url = start_app(shared_root, env={"BANDSCAPE_PREWARM": "0", "BANDSCAPE_CACHE": str(tmp_path)})
    try:
        out = done_when_flow(page, url, shared_root)
        assert out["models"] == 72 and out["selected"] > 0
        assert not [e for e in page.errors if "favicon" not in e], page.errors
    finally:
        stop_app(proc)
