"""Placing new materials on the published 546-material map: time and self-consistency.

    python bench/place.py [--published ../shared/data/heuslerene] [--root DIR --model ID] [--n 100]

The map: a bandscape model of the published 1 eV plots, ``--root``/``--model`` (e.g. one made
by ``import-plots`` + ``train`` without flags), else one made here in a temporary root from the
imported plots by the shipped pretrained encoder (``encode --pretrained``: no training).

Measured, as the CLI's ``place`` does it (read the files, draw, encode, neighbours, cluster,
position), on the published data's raw VASP run (2D_Ac2HgGe_EIGENVAL + its E_F file):

- ``first_s``: the first placement in a fresh process (torch, pymatgen and the model loaded);
- ``warm_s``: the median of 5 more (the target: <= 2 s);
- ``batch_s``: ``--n`` materials in one call (the demo's band data files; target: 100 <= 60 s);
- ``self_rank``: where Ac2HgGe's own published point ranks among the placed run's neighbours
  (target: within the 3 nearest), with its distance's percentile among the map's pairs.

Prints one JSON line (with the machine: cores, CPU, bf16).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))


def machine() -> dict:
    from backend.autoencoder.pretrained import machine as host

    return host()


def pretrained_map(published: Path, work: Path) -> tuple[Path, str]:
    from backend.autoencoder.images import import_plots
    from backend.autoencoder.pretrained import encode_pretrained

    images = work / "images" / "train_1eV"
    import_plots(published / "images" / "bands_10width_1eV", images, size=224, window=1)
    return work, encode_pretrained(images, work, window=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--published", type=Path,
                    default=Path(os.environ.get("BANDSCAPE_SHARED", PROJECT.parent / "shared" / "data" / "heuslerene")))
    ap.add_argument("--root", type=Path, help="data root of a model of the published 1 eV plots")
    ap.add_argument("--model", help="its model id")
    ap.add_argument("--n", type=int, default=100, help="materials in the batch")
    args = ap.parse_args(argv)

    from backend.data.importing import read_paths
    from backend.discover.place import place_materials

    raw = [args.published / "raw" / "2D_Ac2HgGe_EIGENVAL", args.published / "raw" / "2D_Ac2HgGe_EF"]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        if args.root and args.model:
            root, model_id, how = args.root, args.model, "given"
        else:
            root, model_id = pretrained_map(args.published, Path(tmp))
            how = "encode --pretrained of the imported published 1 eV plots"
        setup_s = time.perf_counter() - t0

        def place_once():
            items, problems = read_paths(raw)
            assert not problems, problems
            placed, problems = place_materials(root, model_id, items)
            assert placed and not problems, problems
            return placed[0]

        t0 = time.perf_counter()
        first = place_once()
        first_s = time.perf_counter() - t0
        warm = []
        for _ in range(5):
            t0 = time.perf_counter()
            place_once()
            warm.append(time.perf_counter() - t0)
        bands = sorted((PROJECT / "assets" / "bands").glob("*.npz"))[: args.n]
        from types import SimpleNamespace

        from backend.data.bands import load_band_data

        t0 = time.perf_counter()
        items = [SimpleNamespace(name=p.stem, source=p.name, bands=load_band_data(p), plot=None, window=None,
                                 notes=[]) for p in bands]
        placed, problems = place_materials(root, model_id, items)
        batch_s = time.perf_counter() - t0
        names = [n["material"] for n in first.neighbours]
        rank = names.index("Ac2HgGe") + 1 if "Ac2HgGe" in names else None
    print(json.dumps({
        "bench": "place", "model": model_id, "map": how, "setup_s": round(setup_s, 1),
        "first_s": round(first_s, 2), "warm_s": round(statistics.median(warm), 3),
        "batch_n": len(placed), "batch_problems": len(problems), "batch_s": round(batch_s, 2),
        "self_rank": rank, "self_percentile": first.neighbours[rank - 1]["percentile"] if rank else None,
        "nearest": names[:3], "cluster": first.cluster, "confidence": first.confidence,
        "targets": {"warm_s": 2.0, "batch_100_s": 60.0, "self_rank_max": 3},
        "machine": machine(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
