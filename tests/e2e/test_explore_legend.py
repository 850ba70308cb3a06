"""What the explorer's map says of itself, in chromium: the legend names every category with
the colour drawn for its points (read from the plot), and a category keeps its colour when the
colouring changes."""

from __future__ import annotations

import pandas as pd

from backend.cluster.models import cluster_model
from backend.cluster.params import ClusterParams
from backend.cluster.validation import external_scores
from backend.data.labels import load_labels
from components.scatter import NOISE_COLOUR, PALETTE
from tests.conftest import PROJECT
from tests.e2e.test_explore_hover import POINT_STYLES_JS, _rgb, open_map

# the legend's entries as drawn: name, count and computed background colour
LEGEND_JS = """
() => Array.from(document.querySelectorAll('#explore-sizes-box .explore-legend-entry')).map(b => ({
    name: b.dataset.name, text: b.innerText, colour: getComputedStyle(b).backgroundColor}))
"""
LEGEND_TITLE_JS = "() => document.querySelector('#explore-sizes-box .explore-legend-title').innerText"



def wait_legend(page, title: str) -> list[dict]:
    page.wait_for_function(f"t => {{ try {{ return ({LEGEND_TITLE_JS})() === t; }} catch (e) {{ return false; }} }}",
                           arg=title + ":", timeout=30_000)
    return page.evaluate(LEGEND_JS)


def drawn_fills(page, n: int) -> list[str]:
    styles = page.evaluate(POINT_STYLES_JS)
    assert len(styles) == n
    return [styles[str(i)][0] for i in range(n)]


def test_legend_names_each_label_value_in_its_drawn_colour(page, demo):
    url, cat, model, data = demo
    family = pd.read_csv(PROJECT / "labels.csv", dtype=str).set_index("material")["family"]
    values = family.reindex([str(n) for n in data.names]).to_numpy()
    open_map(page, url, "?algo=kmeans&k=4&color=family")

    legend = wait_legend(page, "label: family")
    by_name = {e["name"]: e["colour"] for e in legend}
    assert sorted(by_name) == sorted(set(values)), "one entry per family on the map"
    # keyed to the value: the families' sorted order over labels.csv, not their order on screen
    for j, name in enumerate(sorted(set(family))):
        assert by_name[name] == _rgb(PALETTE[j % len(PALETTE)])
    for e in legend:
        assert e["text"] == f"{e['name']}: {int((values == e['name']).sum())}"
    page.wait_for_function(f"c => Object.values(({POINT_STYLES_JS})()).every(s => s[0] !== c)",
                           arg=_rgb(NOISE_COLOUR), timeout=20_000)
    fills = drawn_fills(page, len(values))
    wrong = [(i, values[i], fills[i]) for i in range(len(values)) if fills[i] != by_name[values[i]]]
    assert not wrong, f"{len(wrong)} points not in their family's legend colour, e.g. {wrong[:3]}"

    # by cluster: the legend names the clusters in their drawn colours, noise included
    page.locator("#explore-colour-by").select_option("cluster")
    result = cluster_model(cat, model, ClusterParams(algo="kmeans", n_clusters=4))
    legend = wait_legend(page, "clusters")
    assert {e["name"] for e in legend} == {str(k) for k in set(result.labels.tolist())}
    clusters = {e["name"]: e["colour"] for e in legend}
    want = [clusters[str(k)] for k in result.labels]
    page.wait_for_function(f"w => {{ const s = ({POINT_STYLES_JS})(); return w.every((c, i) => s[i][0] === c); }}",
                           arg=want, timeout=20_000)

    # and back: every family has the colour it had
    page.locator("#explore-colour-by").select_option("family")
    assert {e["name"]: e["colour"] for e in wait_legend(page, "label: family")} == by_name
    assert not page.errors, page.errors


def test_legend_of_an_hdbscan_clustering_names_noise_in_black(page, demo):
    url, cat, model, data = demo
    result = cluster_model(cat, model, ClusterParams())
    assert result.n_noise > 0
    open_map(page, url)
    legend = wait_legend(page, next(t for t in ("clusters", f"clusters (colours repeat every {len(PALETTE)})")
                                    if (result.labels.max() >= len(PALETTE)) == ("repeat" in t)))
    colours = {e["name"]: e["colour"] for e in legend}
    assert colours["noise"] == _rgb(NOISE_COLOUR)
    assert legend[-1]["text"] == f"noise: {result.n_noise}"
    fills = drawn_fills(page, len(data.names))
    for i, k in enumerate(result.labels):
        if str(k) in colours:
            assert fills[i] == colours[str(k)], (i, k)
    assert not page.errors, page.errors


def test_the_map_downloads_as_a_figure_with_axes_legend_and_caption(page, demo):
    """The SVG download is a figure for a paper: axis titles, the legend in the map's colours, a
    caption with the model and the clustering, a file name saying the same; the mode bar has
    no selection or image buttons of its own (the page's Map tool and downloads are the ones)."""
    url, cat, model, data = demo
    family = sorted(set(pd.read_csv(PROJECT / "labels.csv", dtype=str)["family"]))
    open_map(page, url, "?algo=kmeans&k=4&color=family")
    wait_legend(page, "label: family")
    titles = page.evaluate("() => Array.from(document.querySelectorAll('#explore-graph .modebar-btn'))"
                           ".map(b => b.getAttribute('data-title'))")
    assert titles and not [t for t in titles if any(w in t.lower() for w in ("select", "lasso", "download", "png", "share"))]

    with page.expect_download() as info:
        page.click("#explore-figure-svg")
    download = info.value
    assert download.suggested_filename == f"{model}_kmeans_k4_family.svg"
    svg = open(download.path(), encoding="utf-8").read()
    assert svg.startswith("<svg")
    for text in ("UMAP 1", "UMAP 2", "label: family", model, "K-Means, k = 4 · 4 clusters, 0 noise"):
        assert text in svg, text
    for j, name in enumerate(family):
        assert f"{name} (" in svg
        assert PALETTE[j % len(PALETTE)].lower() in svg.lower() or _rgb(PALETTE[j % len(PALETTE)]) in svg

    with page.expect_download() as info:
        page.click("#explore-figure-png")
    assert info.value.suggested_filename == f"{model}_kmeans_k4_family.png"
    with open(info.value.path(), "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not page.errors, page.errors


def test_the_demo_opens_on_its_families_with_a_legend_and_says_which_map_it_is(page, demo):
    """A new user's first screen (``/``, no view in the address): the demo's declared opening
    (``explorer.json``): its lattice families in the legend's colours, K-Means with as many
    clusters scored against them, and a line saying the map is the band-shape part."""
    url, cat, model, data = demo
    assert model.endswith("_shape-part")  # the root's declared default model
    family = pd.read_csv(PROJECT / "labels.csv", dtype=str).set_index("material")["family"]
    open_map(page, url, "")
    legend = wait_legend(page, "label: family")
    assert sorted(e["name"] for e in legend) == sorted(set(family))
    assert page.inner_text("#explore-summary-text").startswith("5 clusters · 0 noise")
    nmi = external_scores(load_labels(cat, "family", data.names),
                          cluster_model(cat, model, ClusterParams(algo="kmeans", n_clusters=5)).labels)["nmi"]
    assert f"NMI {nmi:.3f}" in page.inner_text("#explore-scores")
    assert "band shapes whatever the filling" in page.inner_text("#explore-part-map")
    assert "model=" in page.url and "color=family" in page.url  # the address now names the view
    assert not page.errors, page.errors
