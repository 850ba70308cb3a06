"""The paper's full model-selection search, cold and cached.

    python bench/evaluate_grid.py --data ../shared/data/heuslerene [--models window=1] [--metric minkowski]

72 one-eV models x 81 cells (min_samples, min_cluster_size in 2..10, leaf, Minkowski p=0.2):
HDBSCAN, DBCV, S_Dbw per clustering and pairwise AMI per cell. Cold = an empty cache folder;
cached = the same search again, in the same process (files already parsed) and in a new process
(only the cache and the fingerprint files read and hashed). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.data.catalog import Catalog  # noqa: E402
from backend.evaluate.grid import GridSpec, grid_search  # noqa: E402
from backend.evaluate.select import select_models  # noqa: E402


def _cached_in_new_process(args, cache: str) -> float:
    import subprocess

    code = ("import sys, time; sys.path.insert(0, {root!r})\n"
            "from backend.data.catalog import Catalog\n"
            "from backend.evaluate.grid import grid_search\n"
            "from backend.evaluate.select import select_models\n"
            "from backend.evaluate.spec import GridSpec\n"
            "cat = Catalog({data!r}); t = time.perf_counter()\n"
            "r = grid_search(cat, select_models(cat, {models!r}), GridSpec(metric={metric!r}, p={p!r}), cache_dir={cache!r})\n"
            "assert r.timings['models_computed'] == 0 and r.timings['ami_cached']\n"
            "print(time.perf_counter() - t)").format(root=str(Path(__file__).resolve().parents[1]), data=args.data,
                                                    models=args.models, metric=args.metric, p=args.p, cache=cache)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "heuslerene"))
    ap.add_argument("--models", default="window=1")
    ap.add_argument("--metric", default="minkowski", choices=("minkowski", "euclidean"))
    ap.add_argument("--p", type=float, default=0.2)
    ap.add_argument("--jobs", type=int, default=None)
    args = ap.parse_args()

    cat = Catalog(args.data)
    ids = select_models(cat, args.models)
    spec = GridSpec(metric=args.metric, p=args.p)
    with tempfile.TemporaryDirectory(prefix="bandscape-bench-") as cache:
        t0 = time.perf_counter()
        cold = grid_search(cat, ids, spec, cache_dir=cache, n_jobs=args.jobs)
        t_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        cached = grid_search(cat, ids, spec, cache_dir=cache, n_jobs=args.jobs)
        t_cached = time.perf_counter() - t0
        t_cached_new = _cached_in_new_process(args, cache)
    assert cached.per_model.equals(cold.per_model)
    n_cells = len(spec.min_samples) * len(spec.min_cluster_size)
    print(json.dumps({
        "bench": "evaluate_grid", "models": len(ids), "cells": n_cells, "metric": args.metric,
        "p": args.p if args.metric == "minkowski" else None,
        "clusterings": len(ids) * n_cells, "ami_pairs": len(ids) * (len(ids) - 1) // 2 * n_cells * 2,
        "cold_s": round(t_cold, 2), "cached_s": round(t_cached_new, 3), "cached_same_process_s": round(t_cached, 3),
        "cold_breakdown_s": {k: cold.timings[k] for k in ("hash_s", "models_s", "ami_s")},
        "target_cold_s": 300, "target_cached_s": 5,
        "cpus": os.cpu_count(), "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
