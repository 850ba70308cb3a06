"""What the shipped pretrained encoder's fingerprints know, without any training on the data.

    python bench/pretrained_quality.py [--demo .] [--published ../shared/data/heuslerene] [--images /tmp/pub]
                                       [--encoder DIR]

1. On a DFT-like root (``--demo``, default the project's own demo: its 1 and 3 eV training images
   and ``labels.csv`` with family, metal, flat_band_at_ef, dirac_at_ef, filling): the 5-fold
   linear-probe accuracy (:func:`backend.quality.metrics.linear_probe`, stratified folds of
   :func:`~backend.quality.metrics.make_folds`) of each label from the pretrained fingerprints,
   from pixel PCA-50 at the encoder's input size and from the encoder's own network untrained.
2. On the published 1 eV plots (``--published``): each plot descriptor's 5-fold 10-NN R^2 from
   the pretrained fingerprints of the imported images, next to the encoder's own network
   untrained (three seeds' mean) and bench/physics_views.py's baselines (pixel PCA-50 at 64 and
   224 px, an untrained full-width ResNet-18, the published models).

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "bench"))

#: the encoder's folder (None: the shipped one); ``--encoder``
ENCODER = None

LABELS = ("family", "metal", "flat_band_at_ef", "dirac_at_ef", "filling")


@functools.lru_cache(maxsize=None)
def encoder(folder: Path | None = None):
    """The encoder (the shipped one, or ``--encoder``'s) and its TrainConfig, loaded and checked
    once a run."""
    from backend.autoencoder.shipped import load_pretrained_encoder, pretrained_config

    model, meta = load_pretrained_encoder(folder)
    return model, pretrained_config(meta)


def pretrained_fingerprints(images: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    import torch

    from backend.autoencoder.encoding import encode_images
    from backend.autoencoder.images import load_image_folder

    model, cfg = encoder(ENCODER)
    names, ink = load_image_folder(images, cfg.image_size)
    return names, encode_images(model, ink, torch.device("cpu")), ink.numpy()


def own_untrained(ink: np.ndarray, seed: int = 0) -> np.ndarray:
    """The encoder's network with random weights: its architecture, input size, trunk width and
    parts (:func:`backend.quality.baselines.untrained_fingerprints`)."""
    from backend.quality.baselines import untrained_fingerprints

    cfg = encoder(ENCODER)[1]
    return untrained_fingerprints(ink, cfg.arch, [cfg.latent], image_size=cfg.image_size, channels=cfg.channels,
                                  parts=cfg.parts, seed=seed)[cfg.latent]


def demo_image_dir(root: Path, window: int) -> Path:
    from backend.data.catalog import Catalog

    folder = Catalog(root).train_image_dir(window)
    if folder is None:
        raise SystemExit(f"--demo {root}: no training images for {window} eV")
    return folder


def demo_probes(root: Path) -> dict:
    from backend.quality.baselines import pixel_pca
    from backend.quality.metrics import linear_probe, make_folds

    labels = pd.read_csv(root / "labels.csv").set_index("material")
    out = {}
    for window in (1, 3):
        names, X, ink = pretrained_fingerprints(demo_image_dir(root, window))
        features = {"pretrained": X, f"pixels PCA-50 at {ink.shape[-1]} px": pixel_pca(ink),
                    "its own network untrained": own_untrained(ink)}
        rows = labels.reindex(names)
        for label in LABELS:
            y = rows[label].astype(str).to_numpy()
            folds = make_folds(y)
            out[f"{window}eV {label}"] = {name: round(linear_probe(F, y, folds)[0], 3) for name, F in features.items()}
    return out


def published_r2(data: Path, images: Path) -> dict:
    from physics_views import baselines, score

    from backend.autoencoder.images import import_plots
    from backend.quality.baselines import pixel_pca
    from backend.quality.descriptors import plot_descriptors

    plots = data / "images" / "bands_10width_1eV"
    if not images.is_dir():
        import_plots(plots, images, size=224, window=1)
    descriptors = pd.DataFrame([{"material": p.stem, **plot_descriptors(p, window=1)}
                                for p in sorted(plots.glob("*.png"))]).set_index("material")
    names, X, ink = pretrained_fingerprints(images)
    seeds = [score(names, own_untrained(ink, seed), descriptors) for seed in (0, 1, 2)]
    own = {k: round(float(np.mean([s[k] for s in seeds])), 3) for k in seeds[0]}
    at_size = {} if ink.shape[-1] in (64, 224) else {
        f"pixels PCA-50 at {ink.shape[-1]} px": score(names, pixel_pca(ink), descriptors)}
    return {"materials": len(names), "pretrained": score(names, X, descriptors),
            "its own network untrained (3 seeds' mean)": own, **at_size, **baselines(data, images, 1.0, descriptors)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, default=PROJECT, help="a DFT-like root with labels (default: the project's demo)")
    ap.add_argument("--published", type=Path, default=PROJECT.parent / "shared" / "data" / "heuslerene")
    ap.add_argument("--images", type=Path, default=None,
                    help="the published 1 eV plots imported already (`import-plots ... --window 1`), else imported "
                         "into a temporary folder")
    ap.add_argument("--encoder", type=Path, default=None,
                    help="a folder with band_encoder.pt/.json (`pretrain --out DIR`; default: the shipped encoder)")
    args = ap.parse_args()
    global ENCODER
    ENCODER = args.encoder
    from backend.autoencoder.device import cpu_has_bf16
    from backend.autoencoder.shipped import shipped_summary

    images = args.images or Path(tempfile.mkdtemp(prefix="bandscape-pretrained-quality-")) / "train_1eV"
    report = {"bench": "pretrained_quality", "machine": f"2 cores, bf16={cpu_has_bf16()}",
              "encoder_commit": shipped_summary(ENCODER).get("git_commit"),
              "demo_linear_probe": demo_probes(args.demo) if args.demo.is_dir() else None,
              "published_10nn_r2": published_r2(args.published, images) if args.published.is_dir() else None}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
