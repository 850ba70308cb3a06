"""The explorer's keyboard and mouse conventions, in chromium on the demo: Escape clears a
selection, a pinned material's close button unpins it (its neighbours leave the map)."""

from __future__ import annotations

from components.scatter import SCALE_COLOURS, UNSELECTED_CODE
from tests.e2e.browser import POINT_PIXEL_JS
from tests.e2e.test_explore_hover import POINT_STYLES_JS, _rgb, open_map

GALLERY_COUNT = "() => { const b = document.querySelector('#explore-gallery-info b'); return b ? b.innerText : ''; }"
NEIGHBOUR_LINES = "() => document.querySelector('#explore-graph .js-plotly-plot').data[4].x.length"



def test_escape_clears_the_selection(page, demo):
    url, _, _, _ = demo
    open_map(page, url)
    grey = _rgb(SCALE_COLOURS[UNSELECTED_CODE])
    page.locator("#explore-sizes-box .badge[data-cluster]").nth(0).click()
    page.wait_for_function(f"() => ({GALLERY_COUNT})().endsWith(' selected')", timeout=20_000)
    assert any(s[0] == grey for s in page.evaluate(POINT_STYLES_JS).values())
    page.wait_for_function("() => location.search.includes('pts=')", timeout=10_000)

    page.keyboard.press("Escape")
    page.wait_for_selector("#explore-gallery-box", state="hidden", timeout=10_000)
    assert all(s[0] != grey for s in page.evaluate(POINT_STYLES_JS).values()), "no point stays grey"
    page.wait_for_function("() => !location.search.includes('pts=')", timeout=10_000)
    assert not page.errors, page.errors


def test_a_pinned_material_can_be_unpinned(page, demo):
    url, _, _, data = demo
    open_map(page, url)
    names = []
    for i in (10, 300):
        pt = page.evaluate(POINT_PIXEL_JS, [i])
        page.mouse.move(pt["x"], pt["y"])
        page.mouse.click(pt["x"], pt["y"])
        page.wait_for_selector(f"#explore-pin-panel [data-unpin='{pt['name']}']", timeout=20_000)
        # the neighbours' panel and lines come from a second callback; the next point's pixel is
        # read once the page has settled, not while that panel may still move the map
        page.wait_for_function("n => document.getElementById('explore-neighbours').innerText.includes(n)",
                               arg=pt["name"], timeout=20_000)
        # ... and once its lines are on the map (that redraw is what swallowed a click in CI), two
        # frames later
        page.wait_for_function(f"() => ({NEIGHBOUR_LINES})() > 0", timeout=20_000)
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        names.append(pt["name"])
    page.wait_for_selector("#explore-neighbours .explore-neighbour", timeout=20_000)
    assert page.evaluate(NEIGHBOUR_LINES) > 0
    # a distance says where it lies among all pairs of the model (raw Minkowski 0.2 has no unit)
    pairs = len(data.names) * (len(data.names) - 1) // 2
    assert f"all {pairs:,} pairs" in page.inner_text("#explore-neighbours-head")
    assert page.locator("#explore-neighbours .explore-pair-rank").first.inner_text().startswith("closest ")

    # the last one pinned goes: the other stays, with its own neighbours
    page.click(f"#explore-pin-panel [data-unpin='{names[1]}']")
    page.wait_for_selector(f"#explore-pin-panel [data-unpin='{names[1]}']", state="detached", timeout=20_000)
    assert page.locator(f"#explore-pin-panel [data-unpin='{names[0]}']").count() == 1
    page.wait_for_function("n => document.getElementById('explore-neighbours').innerText.includes(n)",
                           arg=names[0], timeout=20_000)
    # and the last: nothing pinned, no neighbours listed or drawn
    page.click(f"#explore-pin-panel [data-unpin='{names[0]}']")
    page.wait_for_selector("#explore-pin-panel [data-unpin]", state="detached", timeout=20_000)
    page.wait_for_function(f"() => ({NEIGHBOUR_LINES})() === 0", timeout=20_000)
    assert page.locator("#explore-neighbours .explore-neighbour").count() == 0
    assert not page.errors, page.errors
