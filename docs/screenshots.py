"""Regenerate the screenshots of the demo (README and docs/): ``docs/demo.png``, ``docs/discover.png``,
``docs/evaluate.png``, ``docs/place.png``.

    python docs/screenshots.py [--data .] [--out docs]

Starts ``python app.py`` on a fresh cache folder and, in headless chromium: the explorer as a new
user first sees it (the root's opening view: the band-shape map of the 3 eV model, K-Means with
k = 5, coloured by the known family; one point hovered); the discovery path of
``tests/e2e/test_explore_discover.py`` (lasso, gallery, a pinned material and its neighbours,
consensus colouring); the evaluate page after a grid search with the family labels; a material
of a lattice the demo lacks (a dice lattice from the generator's held-out set, as a band plot)
placed on the shipped encoder's map of the demo's 3 eV images (removed again afterwards). Only the
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
                # the first screen: the address names no view (the demo's explorer.json decides)
                open_explorer(page, url + "/")
                hover_some_point(page)
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

                place_shot(new_page(browser, width=1400, height=900), url, Path(args.data).resolve(), out)
                browser.close()
        finally:
            stop_app(proc)
    print(f"written demo.png, discover.png, evaluate.png and place.png to {out}")


def hover_some_point(page, candidates=range(100, 600, 50)) -> None:
    """Hover the first of ``candidates`` (material indices) whose point can be hovered on its own
    (a pixel nearer to it than to any other point, and not under the map's overlays)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for i in candidates:
        pt = page.evaluate(POINT_PIXEL_JS, [i])
        if not pt:
            continue
        hover(page, pt)
        try:
            page.wait_for_function("n => document.getElementById('explore-hover-name').innerText === n",
                                   arg=pt["name"], timeout=3_000)
            return
        except PlaywrightTimeout:  # another point, or an overlay, took the hover
            continue
    raise RuntimeError(f"none of the materials {list(candidates)} could be hovered")


def place_shot(page, url: str, root: Path, out: Path) -> None:
    """A new material dropped on the demo's map: placed, hovered, its neighbours listed."""
    from backend.data.bands import render_display_png
    from backend.data.catalog import Catalog
    from backend.data.dftlike import make_material
    from backend.discover.additions import remove_placed

    cat = Catalog(root)
    model = next(m.model_id for m in cat.models.values() if m.is_pretrained and m.window == 3)
    with tempfile.TemporaryDirectory() as tmp:
        plot = Path(tmp) / "my_dice_lattice.png"
        plot.write_bytes(render_display_png(make_material(3, family="dice", seed=7, family_set="holdout").band_data, 3))
        open_explorer(page, url + f"/?model={model}")
        page.set_input_files("#explore-place-upload input[type=file]", [str(plot)])
        page.wait_for_selector("#explore-placed-list .placed-entry", timeout=120_000)
        star = page.evaluate("""() => { const g = document.querySelector('#explore-graph .js-plotly-plot'),
            t = g._fullData[5], L = g._fullLayout, r = g.getBoundingClientRect();
            return [r.left + L.xaxis._offset + L.xaxis.l2p(t.x[0]), r.top + L.yaxis._offset + L.yaxis.l2p(t.y[0])]; }""")
        page.mouse.click(*star)
        page.wait_for_selector("#explore-neighbours .explore-neighbour", timeout=20_000)
        page.mouse.move(*star)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "place.png"), full_page=True)
    remove_placed(root, "my_dice_lattice", model)


if __name__ == "__main__":
    main()
