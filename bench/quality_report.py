"""The fingerprint-quality report over many models, cold and cached.

    python bench/quality_report.py --data ../shared/data/heuslerene [--models window=1] [--labels COLUMN]

Default: the 72 published one-eV models without labels (trustworthiness, effective dimension,
distinct fingerprints per model; baselines: pixel PCA from the display plots turned into training
images, the six untrained architectures, the unencoded map). Cold = an empty cache folder; cached
= the same report again in the same process. Prints one JSON line with a breakdown by row kind.
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
from backend.evaluate.select import select_models  # noqa: E402
from backend.quality import QualitySpec, quality_report  # noqa: E402
from backend.quality.baselines import untrained_precision  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "heuslerene"))
    ap.add_argument("--models", default="window=1")
    ap.add_argument("--labels", default=None)
    ap.add_argument("--physics", action="store_true", help="with the physics section")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    cat = Catalog(args.data)
    ids = select_models(cat, args.models)
    spec = QualitySpec(labels=args.labels, physics=args.physics)
    stages: dict[str, float] = {}
    last = [time.perf_counter()]

    def progress(done, total, stage="", **_):
        # the report names a row's feature set when it is done: the time since the last report is its
        now = time.perf_counter()
        kind = next((k for k in ("pixels", "untrained", "unencoded", "ceiling", "physics", "done")
                     if stage.startswith(k)), "models")
        stages[kind] = stages.get(kind, 0.0) + now - last[0]
        last[0] = now

    with tempfile.TemporaryDirectory(prefix="bandscape-bench-") as cache:
        t0 = time.perf_counter()
        cold = quality_report(cat, ids, spec, cache_dir=cache, progress=progress)
        t_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        cached = quality_report(cat, ids, spec, cache_dir=cache)
        t_cached = time.perf_counter() - t0
    assert cached.table.equals(cold.table)
    models = cold.models()
    print(json.dumps({
        "bench": "quality_report", "models": len(ids), "rows": len(cold.table), "labels": args.labels,
        "cold_s": round(t_cold, 2), "cached_s": round(t_cached, 3),
        # seconds spent on each kind of row: "models" scores the models, "pixels" the image loading
        # and pixel PCA, "untrained" the random-weight encoders, "ceiling" the CNN (and the chance
        # rows), "physics" the physics section (descriptors, R^2, probes, ceilings of every label)
        "cold_stages_s": {k: round(v, 2) for k, v in stages.items()},
        "target_cold_s": 60,
        "median_trustworthiness": round(float(models.trustworthiness.median()), 4),
        "median_effective_dim": round(float(models.effective_dim.median()), 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
        "untrained_precision": str(untrained_precision() or "float32"),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
