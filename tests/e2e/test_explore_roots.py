"""The explorer on roots a lab really has: material names that are not formulas, a read-only root."""

from __future__ import annotations

import os
import stat
import urllib.parse

import pandas as pd

from backend.cluster.models import cluster_model
from backend.cluster.params import ClusterParams
from backend.data.catalog import Catalog
from tests.conftest import PROJECT, copy_models, demo_model
from tests.e2e.browser import start_app, stop_app
from tests.e2e.test_explore_page import open_explorer

#: names that start like a formula but are none: pymatgen reads "M000001" as a dummy species "M"
ODD_NAMES = ("M{:06d}", "C2DB-{}", "Mo_sample{}", "X{}Y")


def _rename_materials(root, model_id):
    cat = Catalog(root)
    info = cat.get(model_id)
    first = pd.read_csv(info.embedding_path)
    names = {old: ODD_NAMES[i % len(ODD_NAMES)].format(i) + ".png" for i, old in enumerate(first["filename"])}
    for path in filter(None, (info.fingerprint_path, info.embedding_path)):
        frame = pd.read_csv(path)
        frame["filename"] = frame["filename"].map(names)
        frame.to_csv(path, index=False)
    return names


def _read_only(root):
    for folder, dirs, files in os.walk(root):
        for name in files:
            os.chmod(os.path.join(folder, name), stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)


def _listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_names_that_are_no_formulas_open_a_readonly_root(browser, tmp_path):
    model = demo_model(3)
    root = copy_models(PROJECT, tmp_path / "root", [model])
    _rename_materials(root, model)
    want = cluster_model(Catalog(root), model, ClusterParams())
    _read_only(root)
    before = _listing(root)
    proc, url = start_app(root)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors = open_explorer(page, url + f"/?model={model}")
        page.wait_for_function("t => document.getElementById('explore-summary-text').innerText.startsWith(t)",
                               arg=f"{want.n_clusters} clusters · {want.n_noise} noise", timeout=30_000)
        # no element is made up from the names: the filter says the dataset has no formulas
        assert "no chemical formulas in this dataset" in page.content()
        # exploring wrote nothing into the root (job records and caches live in the state folder)
        page.fill("#explore-mcs", "5")
        want5 = cluster_model(Catalog(root), model, ClusterParams(min_cluster_size=5))
        page.wait_for_function("t => document.getElementById('explore-summary-text').innerText.startsWith(t)",
                               arg=f"{want5.n_clusters} clusters · {want5.n_noise} noise", timeout=30_000)
        assert not [e for e in errors if "favicon" not in e], errors
        page.close()
    finally:
        stop_app(proc)
    assert _listing(root) == before


#: the SHA-256 (hex) of what the page's image element shows, fetched again from its address
IMAGE_DIGEST_JS = """
async (img) => {
    const r = await fetch(img.src);
    const bytes = await r.arrayBuffer();
    const hash = await crypto.subtle.digest("SHA-256", bytes);
    return {status: r.status, missing: r.headers.get("X-Bandscape-Missing"), loaded: img.complete && img.naturalWidth > 0,
            sha: Array.from(new Uint8Array(hash)).map(b => b.toString(16).padStart(2, "0")).join("")};
}
"""


def test_names_that_need_quoting_show_their_own_images(browser, tmp_path):
    """Material names with spaces, '+', '#', '%', '?', quotes and non-ASCII letters: the hover and
    the gallery show each one's own image, at the address Python writes for it."""
    import hashlib

    from components.material_image import material_image_url
    from tests.e2e.browser import POINT_PIXEL_JS
    from tests.e2e.test_explore_page import hover
    from tests.test_material_image import odd_root

    root, model, expected = odd_root(tmp_path)
    digests = {name: hashlib.sha256(png).hexdigest() for name, png in expected.items()}
    proc, url = start_app(root, env={"BANDSCAPE_PREWARM": "0"})
    try:
        page = browser.new_page(viewport={"width": 1600, "height": 950})
        errors = open_explorer(page, url + "/")
        page.wait_for_function("() => (window.bandscapeNames || []).length > 0")
        for name in expected:
            pt = page.evaluate(POINT_PIXEL_JS, [name])
            hover(page, pt)
            page.wait_for_function("n => document.getElementById('explore-hover-name').innerText === n", arg=name,
                                   timeout=10_000)
            img = page.locator("#explore-hover-img")
            assert img.get_attribute("src") == material_image_url(1, name)
            page.wait_for_function("() => { const im = document.getElementById('explore-hover-img');"
                                   " return im.complete && im.naturalWidth > 0; }", timeout=10_000)
            shown = img.evaluate(IMAGE_DIGEST_JS)
            assert shown == {"status": 200, "missing": None, "loaded": True, "sha": digests[name]}, name

        # the same materials selected (a shared link's selection): the gallery's thumbnails
        page.goto(url + "/?" + urllib.parse.urlencode({"pts": ",".join(expected)}))
        page.wait_for_selector("#explore-gallery img", timeout=30_000)
        thumbs = page.locator("#explore-gallery figure.explore-thumb")
        page.wait_for_function("n => document.querySelectorAll('#explore-gallery figure.explore-thumb').length === n",
                               arg=len(expected), timeout=10_000)
        for k in range(thumbs.count()):
            name = thumbs.nth(k).get_attribute("data-pin")
            img = thumbs.nth(k).locator("img")
            assert img.get_attribute("src") == material_image_url(1, name)
            img.evaluate("im => im.decode()")
            assert img.evaluate(IMAGE_DIGEST_JS) == {"status": 200, "missing": None, "loaded": True,
                                                     "sha": digests[name]}, name
        assert not [e for e in errors if "favicon" not in e], errors
        page.close()
    finally:
        stop_app(proc)
