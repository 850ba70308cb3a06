"""Your own materials in chromium: upload a band plot (and a file that is not one) onto a map of
the demo's materials made by the shipped encoder -> progress -> a star on the map -> hover shows
its plot -> pinned, its neighbours listed -> removed; each checked against the backend."""

from __future__ import annotations

import shutil

import numpy as np

import pytest

from backend.data.bands import load_band_data, render_display_png
from backend.data.catalog import Catalog
from backend.discover.additions import placed_on
from tests.conftest import DEMO_BANDS, PROJECT, demo_model
from tests.e2e.browser import start_app, stop_app
from tests.e2e.test_explore_hover import open_map

STAR_JS = """() => { const g = document.querySelector('#explore-graph .js-plotly-plot'), t = g._fullData[5],
    L = g._fullLayout, r = g.getBoundingClientRect();
    return Array.from(t.x).map((x, i) => [r.left + L.xaxis._offset + L.xaxis.l2p(x),
                                          r.top + L.yaxis._offset + L.yaxis.l2p(t.y[i]), t.text[i]]); }"""


@pytest.fixture(scope="module")
def place_app(tmp_path_factory):
    """The app on a root of the demo's 3 eV images and band data, with the model the shipped
    encoder makes of them (weights a fresh clone has)."""
    from backend.autoencoder.pretrained import encode_pretrained

    root = tmp_path_factory.mktemp("placeapp")
    shutil.copytree(PROJECT / "assets" / "images" / "train_3eV", root / "images" / "train_3eV")
    shutil.copytree(DEMO_BANDS, root / "bands")
    model = encode_pretrained(root / "images" / "train_3eV", root, window=3)
    proc, url = start_app(root, env={"BANDSCAPE_PREWARM": "0",
                                     "BANDSCAPE_CACHE": str(tmp_path_factory.mktemp("cache"))})
    yield url, root, model
    stop_app(proc)


def test_upload_place_hover_pin_and_remove(page, place_app, tmp_path):
    url, root, model = place_app
    name = "kagome_0002"
    plot = tmp_path / "my_kagome.png"
    plot.write_bytes(render_display_png(load_band_data(DEMO_BANDS / f"{name}.npz"), 3))
    bad = tmp_path / "notes.txt"
    bad.write_text("not a band structure")
    open_map(page, url, f"?model={model}")
    page.set_input_files("#explore-place-upload input[type=file]", [str(plot), str(bad)])
    # progress, then one line for the placed file and one naming the file that failed
    page.wait_for_selector("#explore-placed-list .placed-entry", timeout=120_000)
    status = page.inner_text("#explore-place-status")
    assert "1 of 2 placed" in status and "notes.txt" in status
    records = placed_on(root, model)
    assert [r["name"] for r in records] == ["my_kagome"]
    entry = page.inner_text("#explore-placed-list .placed-entry")
    first = records[0]["neighbours"][0]["material"]
    assert first in entry and "of its 10 nearest" in entry
    # the star on the map, where the backend put it
    page.wait_for_function("() => document.querySelector('#explore-graph .js-plotly-plot')._fullData[5].x.length === 1")
    (sx, sy, text), = page.evaluate(STAR_JS)
    assert text == "my_kagome"
    # hover: its plot (served from additions/) and its name
    page.mouse.move(sx, sy)
    page.wait_for_function("() => document.getElementById('explore-hover-name').innerText.includes('my_kagome')")
    src = page.get_attribute("#explore-hover-img", "src")
    assert "my_kagome" in src
    assert page.evaluate("s => fetch(s).then(r => r.headers.get('X-Bandscape-Missing'))", src) is None
    # click: pinned, and its neighbours listed as the backend measured them
    page.mouse.click(sx, sy)
    page.wait_for_selector("#explore-neighbours .explore-neighbour", timeout=20_000)
    listed = page.eval_on_selector_all("#explore-neighbours .explore-neighbour", "els => els.map(e => e.dataset.pin)")
    assert listed == [n["material"] for n in records[0]["neighbours"]]
    # removed: gone from the panel, the map and the data root
    page.click("#explore-placed-list button:has-text('remove')")
    page.wait_for_selector("#explore-placed-list .placed-entry", state="detached", timeout=20_000)
    page.wait_for_function("() => document.querySelector('#explore-graph .js-plotly-plot')._fullData[5].x.length === 0")
    assert placed_on(root, model) == [] and not list((root / "additions").glob("images/*/my_kagome.png"))
    assert Catalog(root).display_image("my_kagome", 3) is None


@pytest.mark.shared_data
def test_the_published_vasp_run_is_placed_with_its_fermi_file(page, place_app, shared_root):
    """The Done-when path: a real VASP run (EIGENVAL and the file holding its E_F) dropped onto a
    map of the demo's materials."""
    url, root, model = place_app
    open_map(page, url, f"?model={model}")
    raw = shared_root / "raw"
    page.set_input_files("#explore-place-upload input[type=file]",
                         [str(raw / "2D_Ac2HgGe_EIGENVAL"), str(raw / "2D_Ac2HgGe_EF")])
    page.wait_for_selector("#explore-placed-list .placed-entry[data-placed='Ac2HgGe']", timeout=120_000)
    assert "1 of 1 placed" in page.inner_text("#explore-place-status")
    rec = next(r for r in placed_on(root, model) if r["name"] == "Ac2HgGe")
    entry = page.inner_text("#explore-placed-list .placed-entry[data-placed='Ac2HgGe']")
    cluster = "noise" if rec["cluster"] < 0 else f"cluster {rec['cluster']}"
    assert f"{cluster}: {rec['confidence']:.0%} of its 10 nearest" in entry
    assert rec["neighbours"][0]["material"] in entry
    page.click("#explore-placed-list .placed-entry[data-placed='Ac2HgGe'] button:has-text('remove')")
    page.wait_for_selector("#explore-placed-list .placed-entry", state="detached", timeout=20_000)


def test_a_model_without_weights_points_to_one_that_can_place(page, demo):
    """The committed demo's trained models have no weights in a clone: the card says so before
    any upload and links to the shipped encoder's map of the same window."""
    from backend.discover.place import encoder_available

    url, cat, _, _ = demo
    model = demo_model(3)  # a whole fingerprint's map (the demo opens on its shape part)
    if encoder_available(cat.root, model):
        pytest.skip(f"this clone has {model}'s weights (rebuilt by `python -m backend demo`)")
    open_map(page, url, f"?model={model}")
    note = page.inner_text(".explore-place-note")
    assert "weights are not here" in note and "python -m backend demo" in note
    page.click("#explore-place-alternative")
    page.wait_for_function("() => new URLSearchParams(location.search).get('model') || ''")
    chosen = page.evaluate("() => new URLSearchParams(location.search).get('model')")
    assert cat.get(chosen).is_pretrained and cat.get(chosen).window == cat.get(model).window
    page.wait_for_selector("#explore-place-upload")
    assert page.query_selector(".explore-place-note") is None


def test_a_new_view_of_a_map_without_stars_leaves_the_card_alone(page, demo):
    """A recluster of a map with nothing placed asks the card's callback, which changes nothing
    (no re-render of the card). (On a model without weights the card's link to the pretrained
    map carries the view, so there it follows each recluster; the test above.)"""
    url, cat, model, _ = demo
    pretrained = next(m for m, info in cat.models.items() if info.is_pretrained and info.window == cat.get(model).window)
    answers = []
    page.on("response", lambda r: answers.append(r.status) if "_dash-update-component" in r.url
            and "explore-placed-list" in (r.request.post_data or "") else None)
    open_map(page, url, f"?model={pretrained}")
    before = page.inner_text("#explore-summary-text")
    page.fill("#explore-mcs", "8")
    page.wait_for_function("t => document.getElementById('explore-summary-text').innerText !== t", arg=before)
    page.wait_for_timeout(500)
    assert answers and set(answers) == {204}, answers


SKETCH_PNG_JS = """() => { const c = document.getElementById('explore-sketch-canvas'), o = document.createElement('canvas');
    o.width = c.width; o.height = c.height; const x = o.getContext('2d');
    x.fillStyle = 'white'; x.fillRect(0, 0, o.width, o.height); x.drawImage(c, 0, 0); return o.toDataURL('image/png'); }"""


def test_search_by_sketch_lists_what_the_backend_finds(page, place_app):
    """Draw a flat band just above E_F and a parabola below it; the nearest materials listed
    are those the backend finds for the same drawing."""
    import base64

    from backend.discover.place import sketch_neighbours

    url, root, model = place_app
    open_map(page, url, f"?model={model}")
    page.click("#explore-sketch-box summary")
    page.click("#explore-sketch-find")  # nothing drawn yet: said so
    page.wait_for_selector("#explore-sketch-result .alert", timeout=10_000)
    assert "empty" in page.inner_text("#explore-sketch-result")
    box = page.locator("#explore-sketch-canvas").bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x0 + 0.02 * w, y0 + 0.42 * h)
    page.mouse.down()
    page.mouse.move(x0 + 0.98 * w, y0 + 0.42 * h, steps=20)
    page.mouse.up()
    page.mouse.move(x0 + 0.02 * w, y0 + 0.60 * h)
    page.mouse.down()
    for t in np.linspace(0, 1, 25):
        page.mouse.move(x0 + (0.02 + 0.96 * t) * w, y0 + (0.95 - 1.4 * t * (1 - t)) * h)
    page.mouse.up()
    page.click("#explore-sketch-find")
    page.wait_for_selector("#explore-sketch-result .explore-neighbour", timeout=120_000)
    listed = page.eval_on_selector_all("#explore-sketch-result .explore-neighbour", "els => els.map(e => e.dataset.pin)")
    png = base64.b64decode(page.evaluate(SKETCH_PNG_JS).split(",", 1)[1])
    expected = sketch_neighbours(str(root), model, png)
    assert listed == [n["material"] for n in expected["neighbours"]]
    assert ("noise" if expected["cluster"] < 0 else f"cluster {expected['cluster']}") in \
        page.inner_text("#explore-sketch-cluster")
    # a listed material pins like a neighbour
    page.click(f"#explore-sketch-result .explore-neighbour[data-pin='{listed[0]}']")
    page.wait_for_function("n => document.getElementById('explore-pin-panel').innerText.includes(n)", arg=listed[0])
    page.click("#explore-sketch-clear")
    page.wait_for_function("() => document.getElementById('explore-sketch-result').innerText === ''")


def test_a_file_over_the_upload_limit_is_named(page, place_app, tmp_path):
    """The upload component drops a file over the limit without a word; the card names it."""
    _, root, model = place_app
    proc, url = start_app(root, env={"BANDSCAPE_PREWARM": "0", "BANDSCAPE_UPLOAD_MAX_MB": "1",
                                     "BANDSCAPE_CACHE": str(tmp_path / "cache")})
    try:
        big = tmp_path / "huge_EIGENVAL"
        big.write_bytes(b"0" * (3 * 1024 * 1024))
        open_map(page, url, f"?model={model}")
        page.set_input_files("#explore-place-upload input[type=file]", [str(big)])
        page.wait_for_function("() => document.getElementById('explore-place-status').innerText.includes('huge_EIGENVAL')",
                               timeout=20_000)
        text = page.inner_text("#explore-place-status")
        assert "3 MB is over the upload limit of 1 MB" in text
        assert placed_on(root, model) == []
    finally:
        stop_app(proc)


def test_materials_of_the_root_that_the_map_lacks_are_placed_by_name(page, place_app):
    """Band data imported into the root after the model was made: offered by name, placed like
    an upload."""
    from backend.data.bands import save_band_data
    from backend.data.dftlike import make_material

    url, root, model = place_app
    bd = make_material(1, family="dice", seed=11, family_set="holdout").band_data
    bd.material = "dice_imported_later"
    save_band_data(bd, root)
    try:
        open_map(page, url, f"?model={model}")
        page.click("[id*='explore-place-pick'] .Select-placeholder")
        page.keyboard.type("dice_imported_later")
        page.keyboard.press("Enter")
        page.click("button:has-text('Place them')")
        page.wait_for_selector("#explore-placed-list .placed-entry[data-placed='dice_imported_later']", timeout=120_000)
        assert "1 of 1 placed" in page.inner_text("#explore-place-status")
        (rec,) = placed_on(root, model)
        assert rec["source"] == "bands/dice_imported_later.npz" and len(rec["neighbours"]) == 10
        page.click("#explore-placed-list button:has-text('remove')")
        page.wait_for_selector("#explore-placed-list .placed-entry", state="detached", timeout=20_000)
    finally:
        (root / "bands" / "dice_imported_later.npz").unlink(missing_ok=True)
