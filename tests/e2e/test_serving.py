"""Several web workers in Debian's chromium: a grid search started from one page is shown at once
by a reload served by another worker; a callback whose connection dies is sent again."""

from __future__ import annotations

from backend.jobs import JobStore
from tests.conftest import PAPER_MODEL, copy_models
from tests.e2e.browser import start_server, stop_app

MODELS = (PAPER_MODEL, "resnet18_latent2_window1eV_steps60_split0_width1", "resnet50_latent2_window1eV_steps120_split1.0_width1")
QUERY = "/evaluate?models=window%3D1&ms=2:3&mcs=3:5&metric=minkowski&p=0.2"
STATUS_IS = "t => { const e = document.getElementById('evaluate-status'); return e && e.innerText.startsWith(t); }"


def test_search_survives_a_reload_onto_another_worker(browser, tmp_path, shared_root):
    root = copy_models(shared_root, tmp_path / "root", MODELS)
    proc, url = start_server(root, workers=2, threads=2,
                             env={"BANDSCAPE_CACHE": str(tmp_path / "cache"), "BANDSCAPE_PREWARM": "0"})
    try:
        first = browser.new_context(viewport={"width": 1500, "height": 1000})
        page = first.new_page()
        worker = page.goto(url + QUERY).headers["x-bandscape-worker"]
        page.wait_for_function(STATUS_IS, arg="not run yet", timeout=60_000)
        page.click("#evaluate-run")
        page.wait_for_function(STATUS_IS, arg="3 models x 6 cells", timeout=120_000)
        first.close()

        # a reload in a new browser (a new connection), until another worker serves the page
        for _ in range(40):
            ctx = browser.new_context(viewport={"width": 1500, "height": 1000})
            again = ctx.new_page()
            other = again.goto(url + QUERY).headers["x-bandscape-worker"]
            if other != worker:
                break
            ctx.close()
        assert other != worker, "every reload was served by the first worker"
        # the finished search is there at once, without pressing Run, with its tables
        again.wait_for_function(STATUS_IS, arg="3 models x 6 cells", timeout=30_000)
        again.locator("#evaluate-cell-info").get_by_text("best DBCV").wait_for(timeout=30_000)
        assert again.locator("#evaluate-table tbody tr").count() == 1 + 1 + 3
        ctx.close()
        searches = JobStore(root).all("search")
        assert len(searches) == 1 and searches[0]["state"] == "done"  # run once, never restarted
    finally:
        stop_app(proc)


def test_a_callback_whose_connection_dies_is_sent_again(browser, shared_app):
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    seen = []

    def drop_first(route):
        seen.append(route.request.post_data)
        if len(seen) == 1:
            route.abort("connectionreset")  # as when the worker answering it is killed
        else:
            route.continue_()

    page.route("**/_dash-update-component", drop_first)
    page.goto(shared_app + "/")
    page.wait_for_selector("#explore-summary-text", timeout=120_000)
    assert len(seen) >= 2 and seen[1] == seen[0]  # the same callback, sent again
    page.close()
