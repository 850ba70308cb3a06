"""The pretrained encoder's cost: building its corpus and training on it, on this machine.

    python bench/pretrain.py [--n 1000] [--epochs 1] [--jobs 2]

Runs :func:`backend.autoencoder.pretrained.pretrain_encoder` (the shipped recipe, ``--n``
materials, ``--epochs``) into a temporary folder. ``corpus_build_s``: generating the DFT-like
materials and drawing their 64 px images in ``--jobs`` processes; ``train_s``: building the
model, the epochs (validation included) and nothing after; ``images_per_s``: training images
(two views each) per second of ``train_s``. Also prints the shipped encoder's own numbers from
its record (``shipped``), so one line compares a small run here with the real one.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=None)
    args = ap.parse_args()

    from backend.autoencoder.pretrained import pretrain_encoder
    from backend.autoencoder.shipped import shipped_summary

    with tempfile.TemporaryDirectory(prefix="bandscape-pretrain-") as out:
        meta = pretrain_encoder(out, n=args.n, epochs=args.epochs, jobs=args.jobs)
    shipped = shipped_summary()
    report = {"bench": "pretrain", "n": args.n, "epochs": args.epochs, "jobs": args.jobs or os.cpu_count(),
              **{k: meta["timing"][k] for k in ("corpus_build_s", "train_s", "images_per_s")},
              "corpus_s_per_1000": round(1000 * meta["timing"]["corpus_build_s"] / args.n, 1),
              "weights_mb": round(meta["weights_bytes"] / 1e6, 2), "autocast": meta["autocast"],
              "machine": meta["machine"],
              "shipped": ({"n": shipped["corpus"]["n"], **shipped["timing"],
                           "cpu_bf16": shipped["machine"]["cpu_bf16"], "cores": shipped["machine"]["cores"],
                           "load_avg_at_start": shipped["machine"]["load_avg_at_start"]} if shipped else None)}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
