"""bench/load.py's simulated users: each a thread with its own HTTP connection that opens the
explorer and then reclusters, hovers and switches models as :data:`MIX` says, replaying the
recorded payloads with its own state; :class:`Stats` collects their timings and errors."""

from __future__ import annotations

import concurrent.futures as cf
import copy
import random
import statistics
import threading
import time

import numpy as np

from bench._load_recording import CALLBACK, Recording, payload_items, state_key

MIX = (("recluster", 0.40), ("hover", 0.45), ("switch", 0.15))


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
