"""Load test: simulated users against the production server.

    python bench/load.py --data ../shared/data/heuslerene [--users 20] [--duration 120] [--workers 4]
    python bench/load.py --url http://127.0.0.1:8050 --data DIR     # an app already running

1. Starts the production command, ``gunicorn "app:create_server()" -w 4 --threads 4``, on the data
   root (unless ``--url``).
2. Records the explorer's requests from the real page in Debian's chromium (Playwright): opening
   it, a recluster (min cluster size) and a model switch (the id box): the assets, the
   ``/_dash-update-component`` payloads in the order the page sent them, and whether the page
   prefetches the model's band images (all of them, or around the cursor).
3. Replays them with N users, each a thread with its own HTTP connection, for the duration. A
   user opens the page (document, then assets six at a time as a browser would, then the
   callbacks; then, if the recorded page did, the model's band images four at a time in the
   background), then repeats, after a pause of 1-3 s: recluster (40 %: min cluster size 2..15,
   min samples 1..5), hover (45 %: 3-5 points 150 ms apart; an image the user's prefetch already
   fetched comes from the browser's cache, no request, counted apart; if the recorded page
   prefetches around the cursor, each hover also asks in the background for the images of the
   hovered material's nearest neighbours on the map, as the page does) or a switch to a random model
   (15 %). Every payload carries the user's own state (values from the
   answers it got before), as the browser's would. A request that fails at the connection or
   with 502/503/504 is sent again (a callback twice, an image once), as ``assets/retry.js`` does
   in the browser.
4. Samples every 0.5 s the memory of the server (the gunicorn master, its workers and any job
   process: RSS, and PSS, which counts shared pages such as the memory-mapped distance matrices
   once) and the machine's load.

Prints one JSON line: requests, errors, p50/p95/max per interaction, peak memory, load; and with
the default settings whether the issue's targets are met (20 users x 2 min, zero errors,
recluster p95 <= 1.5 s, hover image p95 <= 300 ms, all workers <= 3 GB).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import copy
import json
import os
import platform
import random
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CALLBACK = "/_dash-update-component"
TARGETS = {"recluster_p95_ms": 1500, "hover_p95_ms": 300, "peak_memory_mb": 3072, "errors": 0}
MIX = (("recluster", 0.40), ("hover", 0.45), ("switch", 0.15))


# ---- recording the real page ------------------------------------------------------------------

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
        for item in _items(body):
            rec.state_keys.add(_key(item))
    return rec


def _items(body: dict):
    for group in ("inputs", "state"):
        for item in body.get(group) or []:
            if isinstance(item, dict):  # (pattern-matching groups are lists: left as recorded)
                yield item


def _key(item: dict) -> tuple:
    cid = item["id"]
    return (json.dumps(cid, sort_keys=True) if isinstance(cid, dict) else cid, item["property"])


# ---- the simulated users ----------------------------------------------------------------------

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = {}
        self.requests = 0
        self.retries = 0
        self.errors: list[str] = []
        self.workers: dict[str, int] = {}

    def request(self, worker: str | None, retried: int):
        with self.lock:
            self.requests += 1
            self.retries += retried
            if worker:
                self.workers[worker] = self.workers.get(worker, 0) + 1

    def time(self, name: str, seconds: float):
        with self.lock:
            self.times.setdefault(name, []).append(seconds)

    def error(self, text: str):
        with self.lock:
            self.errors.append(text)

    def summary(self) -> dict:
        out = {}
        for name, ts in sorted(self.times.items()):
            ts = sorted(ts)
            out[name] = {"n": len(ts), "p50_ms": round(1000 * statistics.median(ts), 1),
                         "p95_ms": round(1000 * ts[min(len(ts) - 1, int(0.95 * len(ts)))], 1),
                         "max_ms": round(1000 * ts[-1], 1)}
        return out


class User(threading.Thread):
    def __init__(self, n: int, url: str, rec: Recording, catalog, models: list[str], stats: Stats,
                 until: float, rng: random.Random):
        super().__init__(name=f"user-{n}", daemon=True)
        import requests

        self.url, self.rec, self.catalog, self.models, self.stats, self.until, self.rng = \
            url, rec, catalog, models, stats, until, rng
        self.http = requests.Session()
        self.state: dict = {}
        self.model = None
        self.prefetched: set = set()   # windows whose prefetch started
        self.in_cache: set = set()     # (window, material) images this user's browser has

    # one request, retried like assets/retry.js
    def send(self, method: str, path: str, body=None, session=None):
        http = session or self.http
        retries = 2 if path == CALLBACK else 1
        for attempt in range(retries + 1):
            try:
                r = http.request(method, self.url + path, json=body, timeout=60)
            except Exception as exc:  # connection reset, refused: the worker died
                if attempt < retries:
                    time.sleep(0.3)
                    continue
                self.stats.request(None, attempt)
                raise RuntimeError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
            if r.status_code in (502, 503, 504) and attempt < retries:
                time.sleep(0.3)
                continue
            self.stats.request(r.headers.get("X-Bandscape-Worker"), attempt)
            if r.status_code not in (200, 204):
                raise RuntimeError(f"{method} {path}: HTTP {r.status_code}")
            if path == CALLBACK and "internal error" in r.text:
                raise RuntimeError(f"{method} {path}: the callback reported an internal error")
            return r
        raise AssertionError("unreachable")

    def callback(self, body: dict):
        body = copy.deepcopy(body)
        for item in _items(body):
            k = _key(item)
            if k in self.state:
                item["value"] = self.state[k]
        r = self.send("POST", CALLBACK, body)
        if r.status_code == 200:
            for cid, props in (r.json().get("response") or {}).items():
                for prop, value in props.items():
                    if (cid, prop) in self.rec.state_keys and not (isinstance(value, dict) and "__dash_patch_update" in value):
                        self.state[(cid, prop)] = value

    def timed(self, name: str, fn, *args) -> None:
        t0 = time.perf_counter()
        try:
            fn(*args)
        except Exception as exc:
            self.stats.error(f"{name}: {exc}")
            return
        self.stats.time(name, time.perf_counter() - t0)

    # interactions
    def open_page(self):
        import requests

        self.send("GET", self.rec.gets[0])  # the document
        with cf.ThreadPoolExecutor(6) as pool, requests.Session() as side:
            list(pool.map(lambda p: self.send("GET", p, session=side), self.rec.gets[1:]))
        for body in self.rec.open_posts:
            self.callback(body)

    def recluster(self):
        self.state[("explore-mcs", "value")] = self.rng.randint(2, 15)
        self.state[("explore-ms", "value")] = self.rng.randint(1, 5)
        for body in self.rec.recluster:
            self.callback(body)

    def switch(self):
        self.model = self.rng.choice(self.models)
        self.state[("explore-model", "value")] = self.model
        for body in self.rec.switch:
            self.callback(body)

    def hover(self, name: str):
        from components.material_image import material_image_url

        r = self.send("GET", material_image_url(self.window(), name))
        if not r.content.startswith(b"\x89PNG"):
            raise RuntimeError(f"image of {name}: not a PNG")
        self.in_cache.add((self.window(), name))

    def prefetch_around(self, name: str):
        """What a page that prefetches around the cursor sends as it moves onto ``name``: the
        images of the materials nearest it on the map (pages/explore.py's PREFETCH_AROUND), in
        the background, with the prefetch header (the server answers 202 while one is drawn)."""
        from components.material_image import material_image_url
        from components.scatter import PREFETCH_AROUND

        data = self.catalog.load(self.model)
        i = int(np.flatnonzero(data.names == name)[0])
        d = ((data.xy - data.xy[i]) ** 2).sum(1)
        near = [str(data.names[j]) for j in np.argsort(d)[1:PREFETCH_AROUND + 1]]
        window = self.window()
        todo = [m for m in near if (window, m) not in self.in_cache]

        def run():
            import requests

            with requests.Session() as http:
                for m in todo:
                    try:
                        r = http.get(self.url + material_image_url(window, m), headers={"X-Bandscape-Prefetch": "1"},
                                     timeout=60)
                    except Exception:
                        continue
                    self.stats.request(r.headers.get("X-Bandscape-Worker"), 0)
                    if r.status_code == 200:
                        self.in_cache.add((window, m))

        threading.Thread(target=run, daemon=True).start()

    def window(self):
        return self.catalog.get(self.model).window

    def prefetch(self):
        """The page's prefetch of the model's band images (four at a time), in the background."""
        if not self.rec.prefetches or self.window() is None or self.window() in self.prefetched:
            return
        self.prefetched.add(self.window())
        names = list(self.catalog.load(self.model).names)
        window = self.window()

        def run():
            import requests

            from components.material_image import material_image_url

            with requests.Session() as http, cf.ThreadPoolExecutor(4) as pool:
                def one(name):
                    if time.time() < self.until and (window, name) not in self.in_cache:
                        self.timed("prefetch_image", lambda: self.send("GET", material_image_url(window, name), session=http))
                        self.in_cache.add((window, name))
                list(pool.map(one, names))

        threading.Thread(target=run, daemon=True).start()

    def run(self):
        from backend.cluster.params import default_model

        self.model = default_model(self.catalog)
        self.timed("open", self.open_page)
        self.prefetch()
        actions, weights = zip(*MIX)
        while time.time() < self.until:
            time.sleep(self.rng.uniform(1.0, 3.0))
            if time.time() >= self.until:
                break
            action = self.rng.choices(actions, weights)[0]
            if action == "hover":
                names = self.catalog.load(self.model).names
                for _ in range(self.rng.randint(3, 5)):
                    name = str(self.rng.choice(names))
                    if (self.window(), name) in self.in_cache:
                        self.stats.time("hover_from_browser_cache", 0.0)
                    else:
                        self.timed("hover_image", self.hover, name)
                    if self.rec.prefetches_around and self.window() is not None:
                        self.prefetch_around(name)
                    time.sleep(0.15)
            elif action == "switch":
                self.timed("switch", self.switch)
                self.prefetch()
            else:
                self.timed("recluster", self.recluster)


# ---- memory and load of the machine -------------------------------------------------------------

def _proc_tree(root_pid: int) -> dict[int, int]:
    """pid -> parent pid of ``root_pid`` and all its descendants."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root_pid: parent.get(root_pid, 0)}, [root_pid]
    while frontier:
        p = frontier.pop()
        for child, pp in parent.items():
            if pp == p and child not in tree:
                tree[child] = p
                frontier.append(child)
    return tree


def _mem_kb(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def _cpu_ticks(pids) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total


def _machine_ticks() -> tuple[int, int]:
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in cpu]
    idle = values[3] + values[4]
    return sum(values), idle


class Sampler(threading.Thread):
    """Peak memory of the server's processes, the machine's load, and the CPU others used."""

    def __init__(self, master_pid: int | None, every: float = 0.5):
        super().__init__(daemon=True)
        self.master, self.every, self.stop = master_pid, every, threading.Event()
        self.peak = {"workers_rss_mb": 0.0, "workers_pss_mb": 0.0, "all_rss_mb": 0.0, "all_pss_mb": 0.0}
        self.loads: list[float] = []
        self.max_workers = 0
        self.server_ticks = 0
        self._seen_ticks: dict[int, int] = {}

    def run(self):
        self.t0_machine = _machine_ticks()
        while not self.stop.is_set():
            self.loads.append(float(Path("/proc/loadavg").read_text().split()[0]))
            if self.master:
                tree = _proc_tree(self.master)
                workers = [p for p, pp in tree.items() if pp == self.master]
                self.max_workers = max(self.max_workers, len(workers))
                mem = {p: _mem_kb(p) for p in tree}
                sums = {"workers_rss_mb": sum(mem[p][0] for p in workers), "workers_pss_mb": sum(mem[p][1] for p in workers),
                        "all_rss_mb": sum(m[0] for m in mem.values()), "all_pss_mb": sum(m[1] for m in mem.values())}
                for k, v in sums.items():
                    self.peak[k] = max(self.peak[k], round(v / 1024, 1))
                for p in tree:  # CPU time of every server process seen (workers, jobs)
                    self._seen_ticks[p] = _cpu_ticks([p]) or self._seen_ticks.get(p, 0)
            self.stop.wait(self.every)
        self.t1_machine = _machine_ticks()

    def cpu_split(self, t0_ticks: dict) -> dict:
        total = self.t1_machine[0] - self.t0_machine[0]
        busy = total - (self.t1_machine[1] - self.t0_machine[1])
        server = sum(v - t0_ticks.get(p, 0) for p, v in self._seen_ticks.items())
        cores = os.cpu_count() or 1
        return {"machine_busy_cores": round(cores * busy / max(total, 1), 2),
                "server_cores": round(cores * server / max(total, 1), 2),
                "others_cores": round(cores * max(busy - server, 0) / max(total, 1), 2)}


# ---- the run ----------------------------------------------------------------------------------

def run_load(url: str, data: str, users: int, duration: float, master_pid: int | None = None, seed: int = 0,
             on_start=None, browser=None) -> dict:
    """Record the page (in ``browser`` when given), then run ``users`` for ``duration`` seconds
    against ``url``; the result as a dict (what the JSON line prints). ``on_start(stats)`` is
    called once the users run."""
    from backend.cluster.params import default_model
    from backend.data.catalog import Catalog

    catalog = Catalog(data)
    models = sorted(catalog.models)
    default = default_model(catalog)
    rng = random.Random(seed)
    switch_to = next(m for m in rng.sample(models, len(models)) if m != default)
    t_rec = time.perf_counter()
    rec = record(url, switch_to, browser)
    t_rec = time.perf_counter() - t_rec
    stats = Stats()
    sampler = Sampler(master_pid)
    t0_ticks = {p: _cpu_ticks([p]) for p in (_proc_tree(master_pid) if master_pid else {})}
    client0 = os.times()
    sampler.start()
    until = time.time() + duration
    crowd = [User(i, url, rec, catalog, models, stats, until, random.Random(seed * 1000 + i)) for i in range(users)]
    for u in crowd:
        u.start()
        time.sleep(min(0.25, duration / max(users, 1) / 10))  # not all in the same millisecond
    if on_start is not None:
        on_start(stats)
    for u in crowd:
        u.join(duration + 120)
    time.sleep(0.5)
    sampler.stop.set()
    sampler.join()
    client = os.times()
    client_cpu = (client.user + client.system) - (client0.user + client0.system)
    inter = stats.summary()
    out = {
        "bench": "load", "url": url, "data": str(Path(data).resolve()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
        "users": users, "duration_s": duration, "record_s": round(t_rec, 1),
        "recorded": {"open_gets": len(rec.gets), "open_callbacks": len(rec.open_posts),
                     "recluster_callbacks": len(rec.recluster), "switch_callbacks": len(rec.switch),
                     "page_prefetches_images": rec.prefetches, "page_prefetches_around_cursor": rec.prefetches_around},
        "requests": stats.requests, "retried": stats.retries, "errors": len(stats.errors),
        "error_samples": stats.errors[:5], "interactions": inter,
        "requests_per_worker": dict(sorted(stats.workers.items())),
        "peak_memory_mb": sampler.peak if master_pid else None,
        "max_worker_processes": sampler.max_workers if master_pid else None,
        "load_avg_1min": {"mean": round(statistics.mean(sampler.loads), 2), "max": max(sampler.loads)} if sampler.loads else None,
        "cpu": ({**sampler.cpu_split(t0_ticks), "load_client_cores": round(client_cpu / duration, 2)}
                if master_pid else None),
    }
    if master_pid:
        out["targets"] = TARGETS
        out["met"] = {
            "errors": len(stats.errors) == TARGETS["errors"],
            "recluster_p95": inter.get("recluster", {}).get("p95_ms", 1e9) <= TARGETS["recluster_p95_ms"],
            "hover_p95": inter.get("hover_image", {}).get("p95_ms", 1e9) <= TARGETS["hover_p95_ms"],
            "peak_memory": sampler.peak["workers_pss_mb"] <= TARGETS["peak_memory_mb"],
        }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("BANDSCAPE_DATA"), required=not os.environ.get("BANDSCAPE_DATA"),
                    help="data root (the server's, and where the users pick models)")
    ap.add_argument("--url", help="an app already running (default: start the production command)")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--duration", type=float, default=120.0, help="seconds")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from tests.e2e.browser import start_server, stop_app

    proc = None
    url = args.url
    if url is None:
        proc, url = start_server(args.data, workers=args.workers, threads=args.threads)
    try:
        out = run_load(url.rstrip("/"), args.data, args.users, args.duration, proc.pid if proc else None, args.seed)
    finally:
        if proc is not None:
            stop_app(proc)
    out.update(workers=args.workers if proc else None, threads=args.threads if proc else None)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
