"""Where a view cannot mean much the explorer says so, in chromium: a collapsed model of the
published data (the evaluate page's definition), a clustering that is all noise or one cluster."""

from __future__ import annotations

import pytest

from backend.cluster.models import cluster_model, distinct_fingerprints
from backend.cluster.params import ClusterParams, default_model
from backend.data.catalog import Catalog
from backend.evaluate.spec import is_collapsed
from tests.conftest import PROJECT
from tests.e2e.browser import new_page, start_app, stop_app
from tests.e2e.test_explore_hover import open_map

#: on the published data: 2 distinct fingerprints for 546 materials
COLLAPSED_MODEL = "resnet50_latent1_window1eV_steps30_split5.0_width1"


@pytest.fixture()
def page(browser):
    pg = new_page(browser)
    yield pg
    pg.close()


def caveats(page) -> str:
    page.wait_for_selector("#explore-caveats", timeout=30_000)
    return page.inner_text("#explore-caveats")


@pytest.mark.shared_data
def test_a_collapsed_model_is_flagged(page, shared_root, tmp_path):
    cat = Catalog(shared_root)
    data = cat.load(COLLAPSED_MODEL)
    distinct = distinct_fingerprints(cat, COLLAPSED_MODEL)
    assert is_collapsed(distinct, len(data.names))
    paper = default_model(cat)
    assert not is_collapsed(distinct_fingerprints(cat, paper), len(cat.load(paper).names))
    proc, url = start_app(shared_root, env={"BANDSCAPE_PREWARM": "0", "BANDSCAPE_CACHE": str(tmp_path)}, timeout=120)
    try:
        open_map(page, url, f"?model={COLLAPSED_MODEL}")
        text = caveats(page)
        assert "This model has collapsed" in text
        assert f"its {len(data.names)} materials have only {distinct} distinct fingerprints" in text
        # another model: the warning goes
        page.fill("#explore-model", paper)
        page.press("#explore-model", "Enter")
        page.wait_for_selector("#explore-caveats", state="detached", timeout=60_000)
        assert not page.errors, page.errors
    finally:
        stop_app(proc)


def test_all_noise_and_one_cluster_are_said(page, tmp_path):
    cat = Catalog(PROJECT)
    model = default_model(cat)
    big = len(cat.load(model).names) // 2
    assert cluster_model(cat, model, ClusterParams(min_cluster_size=big)).n_clusters == 0
    proc, url = start_app(PROJECT, env={"BANDSCAPE_PREWARM": "0", "BANDSCAPE_CACHE": str(tmp_path)})
    try:
        open_map(page, url)
        assert page.locator("#explore-caveats").count() == 0, "a clustering of the demo with clusters: no warning"
        page.fill("#explore-mcs", str(big))
        assert "Every material is noise" in caveats(page)
        page.fill("#explore-mcs", "3")
        page.wait_for_selector("#explore-caveats", state="detached", timeout=30_000)
        assert not page.errors, page.errors
    finally:
        stop_app(proc)
