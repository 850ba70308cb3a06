from __future__ import annotations

import pytest

from tests.e2e.browser import launch_browser, new_page, start_app, stop_app


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch_browser(pw)
        yield b
        b.close()


@pytest.fixture(scope="session")
def data_app(dataset):
    """The real app on the committed demo, and on the published data when present: its base URL."""
    proc, url = start_app(dataset.root)
    yield url
    stop_app(proc)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The app on the committed demo with a cache folder of its own, one per test module:
    ``(url, catalog, default model, its data)``."""
    from backend.cluster.params import default_model
    from backend.data.catalog import Catalog
    from tests.conftest import PROJECT

    cat = Catalog(PROJECT)
    model = default_model(cat)
    proc, url = start_app(PROJECT, env={"BANDSCAPE_PREWARM": "0",
                                        "BANDSCAPE_CACHE": str(tmp_path_factory.mktemp("cache"))})
    yield url, cat, model, cat.load(model)
    stop_app(proc)


@pytest.fixture()
def page(browser):
    """A fresh page that accepts downloads (a module may define its own)."""
    pg = new_page(browser, accept_downloads=True)
    yield pg
    pg.close()
