from __future__ import annotations

import pytest

from tests.e2e.browser import launch_browser, start_app, stop_app


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
