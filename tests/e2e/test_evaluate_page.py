"""The evaluate page in Debian's chromium: a small grid search on three models (the demo's, and
real ones when present), pick a cell, open the chosen model and cell in the explorer."""

from __future__ import annotations

import urllib.parse

import pytest

from backend.cluster.models import cluster_model
from backend.cluster.params import ClusterParams
from backend.data.catalog import Catalog
from backend.evaluate.grid import GridSpec, grid_search
from tests.conftest import PAPER_MODEL, PROJECT, copy_models, demo_model
from tests.e2e.browser import start_app, stop_app

PUBLISHED = (PAPER_MODEL, "resnet18_latent2_window1eV_steps60_split0_width1",
             "resnet50_latent2_window1eV_steps120_split1.0_width1")


@pytest.fixture(params=[pytest.param("demo"), pytest.param("heuslerene", marks=pytest.mark.shared_data)])
def small_app(request, tmp_path):
    """The app on a root with copies of three models' files: its URL, the root, the models and a
    filter that selects them."""
    if request.param == "demo":
        models, source, selection = tuple(demo_model(w) for w in (1, 2, 3)), PROJECT, "latent=3"
    else:
        models, source, selection = PUBLISHED, request.getfixturevalue("shared_root"), "window=1"
    copy_models(source, tmp_path / "root", models)
    proc, url = start_app(tmp_path / "root", env={"BANDSCAPE_CACHE": str(tmp_path / "cache"), "BANDSCAPE_PREWARM": "0"})
    yield url, tmp_path / "root", models, selection
    stop_app(proc)


def test_grid_search_page_ranks_and_opens_the_explorer(browser, small_app, tmp_path):
    url, root, MODELS, selection = small_app
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    errors, requests = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url + f"/evaluate?models={urllib.parse.quote(selection)}&ms=2:3&mcs=3:5&metric=minkowski&p=0.2")
    # opening the page starts nothing; the button does
    page.wait_for_function("() => (document.getElementById('evaluate-status') || {}).innerText"
                           " && document.getElementById('evaluate-status').innerText.startsWith('not run yet')",
                           timeout=60_000)
    page.click("#evaluate-run")
    page.wait_for_function("() => { const e = document.getElementById('evaluate-status');"
                           " return e && e.innerText.includes('3 models x 6 cells'); }", timeout=120_000)
    expected = grid_search(Catalog(root), list(MODELS), GridSpec(min_samples=(2, 3), min_cluster_size=(3, 4, 5)),
                           cache_dir=tmp_path / "check")
    best = expected.cells.loc[expected.cells.best_dbcv.idxmax()]
    info = page.locator("#evaluate-cell-info")
    info.get_by_text(f"ms={best.min_samples}, mcs={best.min_cluster_size}").wait_for(timeout=30_000)
    assert page.locator("#evaluate-empty").is_hidden()  # the instructions made way for the results
    assert best.best_dbcv_model in info.inner_text()
    cell = expected.cell(int(best.min_samples), int(best.min_cluster_size)).set_index("model_id")
    if PAPER_MODEL in MODELS:  # where the study's chosen model stands, when it is compared
        rank = int((cell.dbcv > cell.loc[PAPER_MODEL, "dbcv"]).sum()) + 1
        assert f"The paper's model ({PAPER_MODEL}) here, of 3: {rank} by DBCV" in info.inner_text()
    else:
        assert "The paper's model" not in info.inner_text()
    assert page.locator("#evaluate-table tbody tr").count() == 1 + 1 + 3  # header, filter row, 3 models

    # the tables download as the CLI writes them
    with page.expect_download() as dl:
        page.click("#evaluate-download-btn")
    import zipfile
    with zipfile.ZipFile(dl.value.path()) as z:
        assert sorted(z.namelist()) == ["cells.csv", "per_model.csv", "ranking.csv"]
        assert len(z.read("per_model.csv").decode().strip().splitlines()) == 1 + 3 * 6

    # click another cell of the DBCV heat map: the page ranks the models of that cell
    target = (3, 5) if (best.min_samples, best.min_cluster_size) != (3, 5) else (2, 3)
    box = page.locator("#evaluate-cells .xy").first.bounding_box()
    ms_i, mcs_i = (2, 3).index(target[0]), (3, 4, 5).index(target[1])
    page.mouse.click(box["x"] + box["width"] * (mcs_i + 0.5) / 3, box["y"] + box["height"] * (1 - (ms_i + 0.5) / 2))
    info.get_by_text(f"ms={target[0]}, mcs={target[1]}").wait_for(timeout=30_000)
    cell = expected.cell(*target).set_index("model_id")
    first_row = page.locator("#evaluate-table tbody tr").nth(2).inner_text()
    assert cell.dbcv.idxmax() in first_row

    # its link opens the explorer on that model, clustered as in the cell
    page.locator("#evaluate-table a", has_text=MODELS[0]).click()
    page.wait_for_selector("#explore-summary-text", timeout=60_000)
    want = cluster_model(Catalog(root), MODELS[0], ClusterParams(min_cluster_size=target[1], min_samples=target[0]))
    page.wait_for_function("t => { const e = document.getElementById('explore-summary-text');"
                           " return e && e.innerText.startsWith(t); }",
                           arg=f"{want.n_clusters} clusters · {want.n_noise} noise", timeout=30_000)
    assert f"ms={target[0]}" in page.url and f"mcs={target[1]}" in page.url
    assert not errors
    # everything from the app itself, and plotly.js as our partial bundle, not the 4.8 MB full one
    assert requests and all(r.startswith(url) for r in requests)
    assert any("plotly-bandscape.min.js" in r for r in requests)
    assert not any("plotly.min.js" in r for r in requests)
    # regenerator-runtime in the place of Dash's Babel polyfill; every page worked with it
    assert any(r.endswith("/assets/vendor/regenerator-runtime.js") for r in requests)
    assert not any("polyfill" in r for r in requests)
    page.close()


def test_before_a_search_the_page_says_what_to_do_instead_of_empty_axes(browser, small_app):
    """A new user opening the page sees what to do, not three empty plots: the heat maps, the
    per-model grid and the quality chart wait, hidden, until there is a result to draw."""
    url, _, _, selection = small_app
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url + f"/evaluate?models={urllib.parse.quote(selection)}")
    page.wait_for_function("() => (document.getElementById('evaluate-status') || {}).innerText"
                           " && document.getElementById('evaluate-status').innerText.startsWith('not run yet')",
                           timeout=60_000)
    page.wait_for_selector("#evaluate-empty", state="visible", timeout=10_000)
    assert "Run grid search" in page.inner_text("#evaluate-empty")
    assert "Run quality report" in page.inner_text("#quality-empty")
    for graph in ("#evaluate-cells", "#evaluate-model-grid", "#quality-graph"):
        assert page.locator(graph).is_hidden(), graph
    assert page.locator(".js-plotly-plot .xy").filter(visible=True).count() == 0  # no axes at all
    page.close()


def test_bad_url_parameters_are_named(browser, small_app):
    url = small_app[0]
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto(url + "/evaluate?models=window%3D9&ms=abc&p=x")
    page.wait_for_selector("#evaluate-alert .alert", timeout=60_000)
    text = page.inner_text("#evaluate-alert")
    assert "min_samples: 'abc' is not a range" in text
    assert "p must be a positive number for the Minkowski metric, got 'x'" in text
    page.close()


def test_quality_section_runs_the_report_and_shows_it(browser, small_app, tmp_path):
    """The quality report from the page: a background job, then its rows (the same numbers as the
    backend's report) and what it could not compute on a root without images or labels."""
    from backend.quality import QualitySpec, quality_report

    url, root, models, selection = small_app
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + f"/evaluate?models={urllib.parse.quote(selection)}")
    page.wait_for_function("() => (document.getElementById('quality-status') || {}).innerText"
                           " && document.getElementById('quality-status').innerText.startsWith('not run yet')",
                           timeout=60_000)
    page.click("#quality-run")
    page.wait_for_function("() => { const e = document.getElementById('quality-status');"
                           " return e && / rows in /.test(e.innerText); }", timeout=180_000)
    expected = quality_report(Catalog(root), list(models), QualitySpec(), cache_dir=tmp_path / "check")
    table = page.locator("#quality-rows")
    table.locator("tbody tr").nth(len(models)).wait_for(timeout=30_000)  # header row + one per model
    text = table.inner_text()
    for _, row in expected.models().iterrows():
        assert row.feature_set in text
        assert str(round(float(row.trustworthiness), 3)) in text  # as the table rounds it
    assert "no training images or display plots" in page.locator("#quality-warnings").inner_text()
    assert page.locator("#quality-graph .scatterlayer .trace").count() >= 1
    assert page.locator("#quality-empty").is_hidden() and page.locator("#quality-graph").is_visible()
    assert not errors
