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
   background), then walks its own path (``bench/_load_plan.py``), a step every 1-3 s:
   recluster (40 %: a cell no other request of the run asks for: min cluster size 2..40, min
   samples 1..8, leaf or eom, noise reclustering on or off, one element filter or none; the share
   of clusterings some user asked before is reported: ``asked_before_share``), hover (45 %: 3-5
   points 150 ms apart; an image the user's prefetch already
   fetched comes from the browser's cache, no request, counted apart; if the recorded page
   prefetches around the cursor, each hover also asks in the background for the images of the
   hovered material's nearest neighbours on the map, as the page does) or a switch (15 %: round
   the autoencoder models in the user's own order). Every payload carries the user's own state (values from the
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
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._load_plan import plan, repeat_share  # noqa: E402
from bench._load_recording import record  # noqa: E402
from bench._load_users import Stats, User  # noqa: E402
from bench._machine import Sampler, cpu_ticks, proc_tree  # noqa: E402

TARGETS = {"recluster_p95_ms": 1500, "hover_p95_ms": 300, "peak_memory_mb": 3072, "errors": 0}


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
    t0_ticks = {p: cpu_ticks([p]) for p in (proc_tree(master_pid) if master_pid else {})}
    client0 = os.times()
    sampler.start()
    until = time.time() + duration
    from backend.data.elements import elements_present

    encoded = [m for m in models if not catalog.get(m).is_unencoded and not catalog.get(m).is_pretrained] or models
    # every step is 1-3 s apart: a path of duration steps is never walked to its end
    paths = plan(users, int(duration) + 10, models=encoded, first_model=default,
                 elements=elements_present(catalog.load(default).names)[:8], seed=seed)
    crowd = [User(i, url, rec, catalog, paths[i], stats, until, random.Random(seed * 1000 + i)) for i in range(users)]
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
        # the share of clusterings asked for that some user had asked before (the most a cache could
        # answer; each recluster of the plan is a cell no other request asks for)
        "asked_before_share": stats.repeat_shares(), "plan_recluster_repeats": repeat_share(paths),
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
