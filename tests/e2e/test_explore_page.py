"""The explorer in Debian's chromium on the demo and the real data: recluster, hover, share the URL."""

from __future__ import annotations

import re

import pytest

from backend.cluster.models import cluster_model
from backend.cluster.params import ClusterParams, default_model
from backend.data.catalog import Catalog
from components.material_image import material_image_url
from tests.conftest import DEMO_BANDS, PROJECT, copy_models, demo_model
from tests.e2e.browser import POINT_PIXEL_JS


def open_explorer(page, url):
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#explore-summary-text", timeout=60_000)
    # the help opens by itself on a first visit, once the map is drawn
    page.wait_for_selector("#explore-help", state="visible", timeout=30_000)
    page.click("#explore-help-close")
    page.wait_for_selector("#explore-help", state="hidden")
    return errors


def hover(page, pt) -> None:
    """Move onto a point the way a hand does: approach, then onto it."""
    page.mouse.move(pt["x"] - 25, pt["y"] - 25)
    page.mouse.move(pt["x"], pt["y"], steps=4)


def summary(page) -> str:
    return page.locator("#explore-summary-text").inner_text()


@pytest.fixture()
def page(browser):
    pg = browser.new_page(viewport={"width": 1600, "height": 950})
    yield pg
    pg.close()


def test_recluster_hover_and_share(page, data_app, dataset):
    errors = open_explorer(page, data_app + "/?algo=hdbscan")  # the study's cell (the demo opens on K-Means)
    cat = Catalog(dataset.root)
    model = default_model(cat)  # the paper's model on the published data, else the last trained one
    window = cat.get(model).window
    first = cluster_model(cat, model, ClusterParams())
    assert summary(page).startswith(f"{first.n_clusters} clusters · {first.n_noise} noise")

    # recluster: the figure and summary follow the new parameter
    after = cluster_model(cat, model, ClusterParams(min_cluster_size=6))
    page.fill("#explore-mcs", "6")
    page.wait_for_function(
        "t => document.getElementById('explore-summary-text').innerText.startsWith(t)",
        arg=f"{after.n_clusters} clusters · {after.n_noise} noise", timeout=30_000)
    # the address follows (written in the browser once the view callback has answered)
    page.wait_for_function("() => location.search.includes('mcs=6')", timeout=10_000)

    # hover a point: the image of that very material is shown (and loads)
    for i in (10, 200, 400):
        pt = page.evaluate(POINT_PIXEL_JS, [i])
        hover(page, pt)
        page.wait_for_function("n => document.getElementById('explore-hover-name').innerText === n",
                               arg=pt["name"], timeout=10_000)
        src = page.get_attribute("#explore-hover-img", "src")
        assert src == material_image_url(window, pt["name"])
        page.wait_for_function("() => { const im = document.getElementById('explore-hover-img');"
                               " return im.complete && im.naturalWidth === 640; }", timeout=10_000)

    # click pins the material: its image, or its interactive band structure where there is band data
    page.mouse.click(pt["x"], pt["y"])
    pinned = ".pinned-name" if cat.band_data_dir() is None else "#explore-band-viewer .gtitle"
    page.wait_for_selector(f"{pinned}:text('{pt['name']}')", timeout=10_000)

    # the URL reopens the same view
    shared = page.url
    page.goto(shared)
    page.wait_for_selector("#explore-summary-text", timeout=60_000)
    assert summary(page).startswith(f"{after.n_clusters} clusters")
    assert page.input_value("#explore-mcs") == "6"
    assert not [e for e in errors if "favicon" not in e], errors


def _switches(dataset) -> dict:
    """Per dataset: a field changed by its dropdown, the model that gives (keeping the other
    choices), and a model id typed into the search box with the fields it sets."""
    if dataset.name == "heuslerene":
        return {"field": ("arch", "resnet18"), "moves_to": "resnet18_latent3_window1eV_steps90_split1.0_width1",
                "keeps": {"epochs": "90", "latent": "3"}, "typed": "resnet50_latent1_window2eV_steps30_split0_width1",
                "sets": {"window": "2", "latent": "1", "split": "0"}}
    return {"field": ("window", "2"), "moves_to": demo_model(2), "keeps": {"latent": "3", "arch": "resnet18"},
            "typed": demo_model(3), "sets": {"window": "3", "latent": "3"}}


def test_model_switch_by_dropdown_and_bad_url(page, data_app, dataset):
    sw = _switches(dataset)
    errors = open_explorer(page, data_app + "/?model=resnet99_nope&mcs=abc")
    alerts = page.locator("#explore-notes").inner_text()
    assert "unknown model 'resnet99_nope'" in alerts and "mcs='abc'" in alerts
    # switching one field keeps the other choices
    field, value = sw["field"]
    page.select_option(f"#explore-field-{field}", value)
    page.wait_for_function("m => document.querySelector('#explore-model').value === m", arg=sw["moves_to"],
                           timeout=30_000)
    for name, kept in sw["keeps"].items():
        assert page.input_value(f"#explore-field-{name}") == kept, name
    # the id search box sets every field
    page.fill("#explore-model", sw["typed"])
    page.press("#explore-model", "Enter")
    window = sw["sets"]["window"]
    page.wait_for_function("w => document.querySelector('#explore-field-window').value === w", arg=window,
                           timeout=30_000)
    for name, value in sw["sets"].items():
        assert page.input_value(f"#explore-field-{name}") == value, name
    page.wait_for_function("m => location.search.includes('model=' + m)", arg=sw["typed"], timeout=10_000)
    # an impossible number is refused with a message, not a stack trace
    page.fill("#explore-ms", "0")
    page.wait_for_selector("#explore-alert .alert-danger", timeout=30_000)
    assert re.search(r"min samples \(>= 1\): the field is empty or out of range", page.locator("#explore-alert").inner_text())
    # an invalid number is not written into the shareable URL (which had ms=2 before)
    page.wait_for_function("() => !location.search.includes('&ms=')", timeout=10_000)
    assert not [e for e in errors if "favicon" not in e], errors


@pytest.mark.parametrize("source", ["demo", pytest.param("heuslerene", marks=pytest.mark.shared_data)])
def test_band_data_gives_hover_plot_and_interactive_viewer(page, tmp_path, source, request):
    """A root with band data but no display images: hover shows a plot rendered from the band
    data, a click pins an interactive band structure."""
    from backend.data.bands import load_band_data, read_eigenval, read_fermi, save_band_data
    from tests.e2e.browser import start_app, stop_app

    root = tmp_path / "root"
    if source == "demo":
        copy_models(PROJECT, root, [demo_model()])
        bd = load_band_data(DEMO_BANDS / "honeycomb_0001.npz")
    else:
        shared_root = request.getfixturevalue("shared_root")
        root.mkdir()
        (root / "fingerprints").symlink_to(shared_root / "fingerprints")
        raw = shared_root / "raw"
        bd = read_eigenval(raw / "2D_Ac2HgGe_EIGENVAL", read_fermi(raw / "2D_Ac2HgGe_EF"))
    save_band_data(bd, root)
    name = bd.material
    proc, url = start_app(root, env={"BANDSCAPE_PREWARM": "0"})
    try:
        errors = open_explorer(page, url + "/")
        pt = page.evaluate(POINT_PIXEL_JS, [name])
        hover(page, pt)
        page.wait_for_function("n => document.getElementById('explore-hover-name').innerText === n", arg=name,
                               timeout=20_000)
        page.wait_for_function("n => { const im = document.getElementById('explore-hover-img');"
                               " return im.src.endsWith(`/material-image/1/${n}.png`) && im.complete && im.naturalWidth === 640; }",
                               arg=name, timeout=20_000)
        page.mouse.click(pt["x"], pt["y"])
        page.wait_for_selector("#explore-band-viewer .js-plotly-plot", timeout=20_000)
        ticks = page.evaluate("() => [...document.querySelectorAll('#explore-band-viewer .xtick text')].map(t => t.textContent)")
        assert ticks == ["Γ", "M", "K", "Γ"]
        assert not [e for e in errors if "favicon" not in e], errors
    finally:
        stop_app(proc)


def test_the_first_visit_opens_a_short_tour(page, demo):
    """The help is a tour of a few steps, one on screen at a time, with the full reference folded
    under it; the Help button opens it again from the first step."""
    from components.help import TOUR

    url = demo[0]
    page.goto(url + "/")
    page.wait_for_selector("#explore-help", state="visible", timeout=60_000)
    visible = "() => Array.from(document.querySelectorAll('.explore-tour-step')).filter(s => s.offsetParent)" \
              ".map(s => s.querySelector('h5').innerText)"
    assert page.evaluate(visible) == [TOUR[0][0]]
    assert f"1 of {len(TOUR)}" in page.inner_text("#explore-help")
    for title, _ in TOUR[1:]:
        page.click("#explore-help-next")
        assert page.evaluate(visible) == [title]
    page.click("#explore-help-next")  # past the last: stays
    assert page.evaluate(visible) == [TOUR[-1][0]]
    page.click("#explore-help-back")
    assert page.evaluate(visible) == [TOUR[-2][0]]
    assert not page.is_visible("text=Recommended settings (the paper)")  # folded
    page.click("#explore-help-reference summary")
    assert page.is_visible("text=Recommended settings (the paper)")
    page.click("#explore-help-close")
    page.wait_for_selector("#explore-help", state="hidden")
    page.click("#explore-help-open")
    page.wait_for_selector("#explore-help", state="visible")
    assert page.evaluate(visible) == [TOUR[0][0]]


def test_the_page_comes_with_the_layout_and_links_still_route(page, demo):
    """The opened page (the explorer at a shared address) is in the layout the browser fetches:
    no callback asks for it, and it shows the address's view; the navigation bar's links still
    route between pages (Dash's router callback), and back returns to that view."""
    url, cat, model, _ = demo
    after = cluster_model(cat, model, ClusterParams(min_cluster_size=7))
    bodies = []
    page.on("request", lambda r: bodies.append(r.post_data or "") if "_dash-update-component" in r.url else None)
    page.goto(f"{url}/?model={model}&mcs=7")
    page.wait_for_function("t => (document.getElementById('explore-summary-text') || {}).innerText?.startsWith(t)",
                           arg=f"{after.n_clusters} clusters · {after.n_noise} noise", timeout=60_000)
    page.wait_for_timeout(500)
    assert not [b for b in bodies if "_pages_content" in b], "the page was asked for again"
    assert page.input_value("#explore-mcs") == "7"
    assert page.title() == "bandscape · explore"
    page.click("#explore-help-close")
    page.click("nav a:text('Evaluate')")
    page.wait_for_selector("#evaluate-empty", timeout=30_000)
    assert page.url.endswith("/evaluate") and page.query_selector("#explore-graph") is None
    page.go_back()
    page.wait_for_function("t => (document.getElementById('explore-summary-text') || {}).innerText?.startsWith(t)",
                           arg=f"{after.n_clusters} clusters · {after.n_noise} noise", timeout=60_000)
    assert page.input_value("#explore-mcs") == "7"
