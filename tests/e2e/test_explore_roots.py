"""The explorer on roots a lab really has: material names that are not formulas, a read-only root."""

from __future__ import annotations

import os
import stat

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
