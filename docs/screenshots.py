"""Regenerate the screenshots of the demo (README and docs/): ``docs/demo.png``, ``docs/discover.png``,
``docs/evaluate.png``.

    python docs/screenshots.py [--data .] [--out docs]

Starts ``python app.py`` on a fresh cache folder and, in headless chromium: the explorer as a new
user first sees it (the default model; K-Means with k = 4 and the map coloured by the known
family; one point hovered); the discovery path of
``tests/e2e/test_explore_discover.py`` (lasso, gallery, a pinned material and its neighbours,
consensus colouring); the evaluate page after a grid search with the family labels. Only the
project's own demo goes into git: pictures of the published data show third-party plots.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.browser import POINT_PIXEL_JS, launch_browser, new_page, start_app, stop_app  # noqa: E402
from tests.e2e.test_explore_discover import done_when_flow  # noqa: E402
from tests.e2e.test_explore_page import hover, open_explorer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT))
    ap.add_argument("--out", default=str(ROOT / "docs"))
    args = ap.parse_args()
    out = Path(args.out)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as cache:
        proc, url = start_app(Path(args.data).resolve(), env={"BANDSCAPE_CACHE": cache}, timeout=120)
        try:
            with sync_playwright() as pw:
                browser = launch_browser(pw)
                page = new_page(browser, width=1200, height=720)
                # K-Means at the number of families, the map coloured by the known family
                open_explorer(page, url + "/?algo=kmeans&k=5&color=family")
                pt = page.evaluate(POINT_PIXEL_JS, [100])
                hover(page, pt)
                page.wait_for_function("n => document.getElementById('explore-hover-name').innerText === n",
                                       arg=pt["name"], timeout=10_000)
                page.wait_for_function("() => document.getElementById('explore-hover-img').complete",
                                       timeout=10_000)
                page.screenshot(path=str(out / "demo.png"))

                page = new_page(browser, height=1150, accept_downloads=True)
                done_when_flow(page, url, Path(args.data).resolve(), screenshot=out / "discover.png")

                page = new_page(browser, width=1400, height=1000)
                page.goto(url + "/evaluate")
                page.wait_for_selector("#evaluate-label", timeout=60_000)
                page.locator("#evaluate-label").select_option("family")
                page.get_by_role("button", name="Run grid search").click()
                page.wait_for_selector("text=/models x 81 cells/", timeout=600_000)
                page.wait_for_timeout(2000)
                page.screenshot(path=str(out / "evaluate.png"))
                browser.close()
        finally:
            stop_app(proc)
    print(f"written demo.png, discover.png and evaluate.png to {out}")


if __name__ == "__main__":
    main()
