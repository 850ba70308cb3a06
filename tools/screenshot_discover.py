"""A picture of the discovery tools, taken with Playwright in
Debian's chromium on the published data, along the issue's "done when" path (the same steps as
``tests/e2e/test_explore_discover.py::test_done_when_on_the_published_data``).

    python tools/screenshot_discover.py --data ../shared/data/heuslerene --out discover.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.browser import launch_browser, new_page, start_app, stop_app  # noqa: E402
from tests.e2e.test_explore_discover import done_when_flow  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True, help="PNG to write (keep it out of git: it shows the published plots)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    root = Path(args.data).resolve()
    proc, url = start_app(root)
    try:
        with sync_playwright() as pw:
            browser = launch_browser(pw)
            page = new_page(browser, height=1150, accept_downloads=True)
            print(json.dumps(done_when_flow(page, url, root, screenshot=args.out)))
            browser.close()
    finally:
        stop_app(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
