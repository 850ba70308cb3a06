"""What fingerprints know of the physics of real band plots, by contrastive view set.

    python bench/physics_views.py --data ../shared/data/heuslerene [--window 1] [--epochs 30]
                                  [--views lattice,physical,...] [--baselines-only]

1. makes 64 px training images from the published ``--window`` eV display plots (``import-plots``)
   and reads each plot's physics descriptors from its lines (:mod:`backend.quality.descriptors`:
   Fermi crossings, metal, line density at E_F, lines in the window, flat strip at E_F, steepest
   slope near E_F, gap), never from a fingerprint;
2. trains one contrastive ResNet-18 (latent 3, the default recipe but ``--epochs``) per view set
   (the recipes of ``train --views``: ``physical``, ``lattice``, ``shape``, ``fermi``, ``narrow``;
   and ablations of the Fermi part: one factor removed or a lattice factor added, see
   :func:`variants`) on those images;
3. scores every feature set by 5-fold 10-NN regression R^2 (standardised features) of each
   descriptor, as the quality report's physics section does (:mod:`backend.quality.physics`): the trained fingerprints, PCA-50 of the pixels at 64 and 224 px, an untrained
   ResNet-18 at 64 px, the unencoded UMAP and the study's 72 published one-eV models (median and
   best).

Prints one JSON line per trained model as it finishes, then one with everything. Training takes
most of the time (about 6 minutes a model at 30 epochs on 2 idle cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))


def variants() -> dict:
    """Ablations of the Fermi part's views, one factor changed (each trains as a one-part recipe);
    the named recipes of ``train --views`` (physical, lattice, shape, fermi, narrow) run as they are."""
    from backend.autoencoder.objectives import VIEW_SETS

    fermi = VIEW_SETS["fermi"]
    return {
        "fermi-no-crop": dataclasses.replace(fermi, k_crop=0.0),
        "fermi-no-reverse": dataclasses.replace(fermi, k_reverse=0.0),
        "fermi-no-warp": dataclasses.replace(fermi, k_warp=0.0),
        "fermi-zoom5": dataclasses.replace(fermi, stretch=1.05),
        "fermi+flip": dataclasses.replace(fermi, flip=0.5),
    }


def score(names, X, descriptors: pd.DataFrame) -> dict:
    """The report's physics section's R^2 of each descriptor (:func:`backend.quality.physics.knn_r2`)."""
    from backend.quality.physics import TARGETS, knn_r2

    d = descriptors.reindex([str(n) for n in names])
    return {t: round(knn_r2(X, d[t].to_numpy(float)), 3) for t in TARGETS}


def read_features(path) -> tuple[list[str], np.ndarray]:
    frame = pd.read_csv(path)
    names = frame["filename"].astype(str).str.replace(r"\.png$", "", regex=True)
    return names.tolist(), frame.drop(columns="filename").to_numpy(float)


def baselines(data: Path, images: Path, window: float, descriptors: pd.DataFrame) -> dict:
    from backend.autoencoder.images import load_image_folder
    from backend.quality.baselines import pixel_pca, untrained_fingerprints

    out = {}
    for size in (64, 224):
        names, ink = load_image_folder(images, size)
        ink = ink.numpy()
        out[f"pixels PCA-50 at {size} px"] = score(names, pixel_pca(ink), descriptors)
        if size == 64:
            untrained = untrained_fingerprints(ink, "resnet18", [3], image_size=64)[3]
            out["untrained ResNet-18 at 64 px"] = score(names, untrained, descriptors)
    w = f"{window:g}"
    published = [score(*read_features(p), descriptors)
                 for p in sorted(glob.glob(str(data / "fingerprints" / f"resnet*_window{w}eV_*_.csv")))]
    if published:
        table = pd.DataFrame(published)
        out[f"published models ({len(published)}): median"] = table.median().round(3).to_dict()
        out[f"published models ({len(published)}): best"] = table.max().round(3).to_dict()
    for p in glob.glob(str(data / "fingerprints" / "unencoded" / f"unencoded_window{w}eV_*embedding.csv")):
        out["unencoded UMAP (published)"] = score(*read_features(p), descriptors)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=PROJECT.parent / "shared" / "data" / "heuslerene")
    ap.add_argument("--window", type=float, default=1.0)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--views", default="lattice,physical", help="comma-separated recipes of train --views or ablations of variants(), or 'all'")
    ap.add_argument("--baselines-only", action="store_true")
    ap.add_argument("--work", type=Path, default=None, help="folder for images and models (default: a temporary one)")
    args = ap.parse_args()

    from backend.autoencoder import config
    from backend.autoencoder.config import TrainConfig
    from backend.autoencoder.device import cpu_has_bf16
    from backend.autoencoder.images import import_plots
    from backend.autoencoder.objectives import VIEW_SETS
    from backend.quality.descriptors import plot_descriptors

    work = args.work or Path(tempfile.mkdtemp(prefix="bandscape-physics-views-"))
    plots = args.data / "images" / f"bands_10width_{args.window:g}eV"
    images = work / "images" / f"train_{args.window:g}eV"
    if not images.is_dir():
        import_plots(plots, images, size=224)
    rows = []
    for p in sorted(plots.glob("*.png")):
        rows.append({"material": p.stem, **plot_descriptors(p, window=args.window)})
    descriptors = pd.DataFrame(rows).set_index("material")
    report = {"bench": "physics_views", "machine": f"{platform.machine()}, 2 cores, bf16={cpu_has_bf16()}",
              "materials": len(descriptors), "window": args.window, "epochs": args.epochs,
              "baselines": baselines(args.data, images, args.window, descriptors), "models": {}}
    if not args.baselines_only:
        from backend.autoencoder.training import train_model

        table = variants()
        names = [*config.VIEW_RECIPES, *table] if args.views == "all" else args.views.split(",")
        for name in names:
            if name not in config.VIEW_RECIPES:  # an ablation's view set, for this process only
                VIEW_SETS[name] = table[name]
                config.VIEW_RECIPES[name] = (name,)
                config.VIEWS = tuple(dict.fromkeys((*config.VIEWS, name)))
            cfg = TrainConfig(views=name, epochs=args.epochs, window=args.window, tag=name.replace("+", "-")
                              .replace("_", "-"))
            t = time.perf_counter()
            result = train_model(cfg, images, work / "models", overwrite=True)
            row = {"train_s": round(time.perf_counter() - t, 1),
                   **score(*read_features(result.paths["fingerprints"]), descriptors)}
            report["models"][name] = row
            print(json.dumps({"views": name, **row}), flush=True)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
