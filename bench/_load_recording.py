"""bench/load.py's recording of the real page: the explorer driven once in Debian's chromium
(Playwright), its requests kept (assets, the callbacks' payloads per interaction, whether it
prefetches band images) for the simulated users to replay."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

CALLBACK = "/_dash-update-component"


@dataclass
class Recording:
    """What the page sent: GET paths on opening (document first), callback bodies per interaction,
    and whether it prefetched band images after opening / after a switch."""

    gets: list = field(default_factory=list)
    open_posts: list = field(default_factory=list)
    recluster: list = field(default_factory=list)
    switch: list = field(default_factory=list)
    prefetches: bool = False
    prefetches_around: bool = False
    state_keys: set = field(default_factory=set)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def record(url: str, switch_to: str, browser=None) -> Recording:
    """Drive the explorer in chromium once (in ``browser``, a Playwright browser, or one started
    here) and keep its requests."""
    if browser is None:
        from playwright.sync_api import sync_playwright

        from tests.e2e.browser import launch_browser

        with sync_playwright() as pw:
            own = launch_browser(pw)
            try:
                return record(url, switch_to, own)
            finally:
                own.close()
    rec = Recording()
    log: list = []
    page = browser.new_page(viewport={"width": 1600, "height": 950})
    page.on("request", lambda r: log.append(r))
    page.goto(url + "/")
    page.wait_for_selector("#explore-summary-text", timeout=120_000)
    page.wait_for_timeout(2000)  # the initial callbacks, and the start of any prefetch
    opened, log[:] = list(log), []
    # a cursor over the map: does the page prefetch the images around it? (the help, which
    # opens on a first visit, closed first: it covers the map)
    try:
        page.wait_for_selector("#explore-help", state="visible", timeout=5_000)
        page.click("#explore-help-close")
        page.wait_for_selector("#explore-help", state="hidden")
    except Exception:
        pass
    box = page.locator("#explore-graph .js-plotly-plot").bounding_box()
    for fx, fy in ((0.5, 0.5), (0.4, 0.6), (0.6, 0.4)):
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"], steps=3)
        page.wait_for_timeout(300)
    rec.prefetches_around = any(r.headers.get("x-bandscape-prefetch") == "1" for r in log)
    page.mouse.move(0, 0)
    page.wait_for_timeout(500)
    log[:] = []
    before = page.inner_text("#explore-summary-text")
    mcs = int(page.input_value("#explore-mcs"))
    page.fill("#explore-mcs", str(mcs + 4))
    page.wait_for_function("t => document.getElementById('explore-summary-text').innerText !== t",
                           arg=before, timeout=60_000)
    page.wait_for_timeout(500)
    reclustered, log[:] = list(log), []
    page.fill("#explore-model", switch_to)
    page.press("#explore-model", "Enter")
    page.wait_for_function("m => location.search.includes('model=' + m)", arg=switch_to, timeout=60_000)
    page.wait_for_timeout(1500)
    switched = list(log)
    page.close()
    for r in opened:
        path = _path(r.url)
        if r.method == "GET" and "/material-image/" not in path and r.url.startswith(url):
            rec.gets.append(path)
        elif r.method == "POST" and path == CALLBACK:
            rec.open_posts.append(r.post_data_json)
    rec.prefetches = any("/material-image/" in r.url for r in opened)
    rec.recluster = [r.post_data_json for r in reclustered if r.method == "POST" and _path(r.url) == CALLBACK]
    rec.switch = [r.post_data_json for r in switched if r.method == "POST" and _path(r.url) == CALLBACK]
    if not rec.recluster or not rec.switch:
        raise RuntimeError(f"recording failed: {len(rec.recluster)} recluster and {len(rec.switch)} switch requests")
    for body in rec.open_posts + rec.recluster + rec.switch:
        for item in payload_items(body):
            rec.state_keys.add(state_key(item))
    return rec


def payload_items(body: dict):
    for group in ("inputs", "state"):
        for item in body.get(group) or []:
            if isinstance(item, dict):  # (pattern-matching groups are lists: left as recorded)
                yield item


def state_key(item: dict) -> tuple:
    cid = item["id"]
    return (json.dumps(cid, sort_keys=True) if isinstance(cid, dict) else cid, item["property"])
