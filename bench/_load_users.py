"""bench/load.py's simulated users: each a thread with its own HTTP connection that opens the
explorer and then walks its own path (:mod:`bench._load_plan`: reclusters to cells no other
request asks for, hovers, model switches), replaying the recorded payloads with its own state;
:class:`Stats` collects their timings, errors and how many answers a cache could have given."""

from __future__ import annotations

import concurrent.futures as cf
import copy
import random
import statistics
import threading
import time

import numpy as np

from bench._load_plan import Step
from bench._load_recording import CALLBACK, Recording, payload_items, state_key


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = {}
        self.requests = 0
        self.retries = 0
        self.errors: list[str] = []
        self.workers: dict[str, int] = {}
        # (model, cell) asked so far by any user, and per interaction: asked, asked before
        self.asked: set = set()
        self.repeats: dict[str, list[int]] = {}

    def ask(self, name: str, key) -> None:
        """A clustering asked for: counted as a possible cache hit when any user asked it before."""
        with self.lock:
            counts = self.repeats.setdefault(name, [0, 0])
            counts[0] += 1
            counts[1] += key in self.asked
            self.asked.add(key)

    def repeat_shares(self) -> dict:
        return {name: round(rep / n, 3) for name, (n, rep) in sorted(self.repeats.items()) if n}

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
    def __init__(self, n: int, url: str, rec: Recording, catalog, path: list[Step], stats: Stats,
                 until: float, rng: random.Random):
        super().__init__(name=f"user-{n}", daemon=True)
        import requests

        self.url, self.rec, self.catalog, self.path, self.stats, self.until, self.rng = \
            url, rec, catalog, path, stats, until, rng
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
        for item in payload_items(body):
            k = state_key(item)
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

    def cell(self) -> tuple:
        """The user's current clustering: its model and the cell's control values."""
        keys = ("explore-mcs", "explore-ms", "explore-selection", "explore-rc", "explore-elements")
        return (self.model, tuple((k, repr(self.state.get((k, "value")))) for k in keys))

    def recluster(self, step: Step):
        self.state.update(step.cell)
        self.stats.ask("recluster", self.cell())
        for body in self.rec.recluster:
            self.callback(body)

    def switch(self, step: Step):
        self.model = step.model
        self.state[("explore-model", "value")] = self.model
        self.stats.ask("switch", self.cell())
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
        for step in self.path:
            time.sleep(self.rng.uniform(1.0, 3.0))
            if time.time() >= self.until:
                break
            action = step.action
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
                self.timed("switch", self.switch, step)
                self.prefetch()
            else:
                self.timed("recluster", self.recluster, step)
