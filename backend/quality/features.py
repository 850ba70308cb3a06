"""The feature sets of one energy window that the quality report scores: each selected model's
fingerprints, and the baselines computed from the same images (the unencoded 2-D map, PCA of the
pixels at the models' input size and at the study's 224 px, the models' architectures untrained).

A :class:`FeatureSet` says what it is and how to get its array; the array is computed only when
a row that needs it is not in the cache (:mod:`backend.quality.rowcache`). The main table and the
physics section read the same feature sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from backend.autoencoder.config import FULL_WIDTH, TrainConfig
from backend.fileio import file_sha256

#: px: the pixel baselines' sizes besides the models' own: the study's input size
STUDY_SIZE = 224


@dataclass
class FeatureSet:
    """One feature set of a window. ``load()`` -> (names (n,), X (n, d)); ``xy()`` -> the 2-D
    map its trustworthiness is read on (aligned with ``names``), or None; ``key``: what its
    features are computed from (cache key); ``info``: the catalog's ModelInfo of a model."""

    name: str
    kind: str                    # "model" or "baseline"
    objective: str
    key: dict
    load: Callable
    xy: Callable = lambda: None
    model_id: str | None = None
    info: object = None


def model_objective(info) -> str:
    return str(info.extra.get("objective") or ("reconstruction" if info.meta_path else "published"))


def model_image_size(info) -> int:
    """A model's input size (its JSON's, else its id's ``size64``, else the study's 224 px)."""
    return int(info.image_size or STUDY_SIZE)


def is_published(info) -> bool:
    """A model without its own JSON (the study's published fingerprints), not an unencoded map."""
    return not info.is_unencoded and info.meta_path is None


def model_feature_set(catalog, info) -> FeatureSet:
    """The fingerprints of a model (an unencoded model: its 2-D map, as a baseline)."""
    files = [info.fingerprint_path or info.embedding_path, info.embedding_path]
    key = {"model": info.model_id, "files": [file_sha256(f) for f in files]}

    def load():
        data = catalog.load(info.model_id)
        return data.names, data.X

    def xy():
        return None if info.is_unencoded else catalog.load(info.model_id).xy

    if info.is_unencoded:
        return FeatureSet("unencoded UMAP (2-D)", "baseline", "unencoded UMAP", key, load, xy,
                          model_id=info.model_id, info=info)
    return FeatureSet(info.model_id, "model", model_objective(info), key, load, xy, model_id=info.model_id, info=info)


def pixel_sizes(group) -> list[int]:
    """The pixel baselines' sizes: every model's input size, training's default input size (128 px)
    and the study's 224 px."""
    return sorted({model_image_size(i) for i in group if not i.is_unencoded} | {TrainConfig.image_size, STUDY_SIZE})


def pixel_feature_sets(ctx, sizes, *, seed: int, unenc_info=None) -> list[FeatureSet]:
    """PCA-50 of the ink-mask pixels at each of ``sizes`` px; trustworthiness on the window's
    unencoded map ``unenc_info`` (if any)."""
    # torch (the baselines module holds the networks too): only where a report runs
    from backend.quality.baselines import PCA_COMPONENTS, pixel_pca

    def xy_of(size):
        if unenc_info is None:
            return None
        d = ctx.catalog.load(unenc_info.model_id)
        order = pd.Index(d.names).get_indexer(ctx.images(size)[0])
        return d.xy[order] if (order >= 0).all() else None

    out = []
    for size in sizes:
        key = {"baseline": "pixel_pca", "size": size, "images": ctx.images(size)[2]}
        out.append(FeatureSet(f"pixels {size}px (PCA-{PCA_COMPONENTS})", "baseline", f"PCA of raw pixels at {size} px",
                              key, lambda size=size: (ctx.images(size)[0], pixel_pca(ctx.images(size)[1], seed=seed)),
                              lambda size=size: xy_of(size)))
    return out


def untrained_feature_sets(ctx, group, *, seed: int) -> list[FeatureSet]:
    """The models' networks with random weights, one per (architecture, latent, size, trunk width,
    parts), on the images at that size."""
    # torch (untrained networks): only where a report runs
    from backend.quality.baselines import untrained_fingerprints, untrained_precision

    nets = sorted({(i.arch, int(i.latent), model_image_size(i), i.channels, i.parts) for i in group
                   if not i.is_unencoded and i.arch in ("resnet18", "resnet50") and i.latent})
    if not any(not i.is_unencoded for i in group):   # no models yet: the network training would make
        cfg = TrainConfig()
        nets = [(cfg.arch, cfg.latent, cfg.image_size, cfg.channels, cfg.parts)]
    features: dict = {}  # (arch, size, width, parts) -> {latent: X}, computed once, when a row needs it
    amp = str(untrained_precision())

    def load(net, latent):
        if net not in features:
            arch, size, channels, parts = net
            wanted = [z for a, z, s, c, p in nets if (a, s, c, p) == net]
            features[net] = untrained_fingerprints(ctx.images(size)[1], arch, wanted, image_size=size,
                                                   channels=channels, parts=parts, seed=seed)
        return ctx.images(net[1])[0], features[net][latent]

    out = []
    for arch, latent, size, channels, parts in nets:
        key = {"baseline": "untrained", "arch": arch, "latent": latent, "size": size,
               "images": ctx.images(size)[2], "amp": amp}
        name = f"untrained {arch} latent{latent} {size}px"
        if channels != FULL_WIDTH:   # torchvision's width (the study's) keeps the name it always had
            key["channels"], name = channels, f"{name} ch{channels}"
        if parts > 1:
            key["parts"], name = parts, f"{name} {parts} parts"
        out.append(FeatureSet(name, "baseline", "random weights", key,
                              lambda net=(arch, size, channels, parts), z=latent: load(net, z)))
    return out


def align(names, X, wanted) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``X`` (named ``names``) that are in ``wanted`` (a set or dict): (names, X)."""
    names = np.asarray(names)
    keep = np.array([n in wanted for n in names], dtype=bool)
    return names[keep], np.asarray(X, dtype=np.float64)[keep]


def ceiling_epochs(group) -> int:
    """The supervised ceiling's epochs: the longest-trained model's of ``group`` (the ceiling is
    trained as well as the models it is read against), else the training default."""
    # torch (the baselines module trains the ceiling): only where a report runs
    from backend.quality.baselines import CEILING_EPOCHS

    epochs = [int(i.epochs) for i in group if not i.is_unencoded and i.epochs]
    return max(epochs) if epochs else CEILING_EPOCHS


def ceiling_scores(ctx, label, *, epochs: int, seed: int, cache) -> dict:
    """The supervised CNN ceiling of one label column (a :class:`backend.quality.inputs.Labelled`)
    on a window's images at CEILING_SIZE (64 px), cached: ``probe_acc``, ``probe_std``,
    ``train_acc``, ``n``, ``lr``, ``lr_scores``, ``epochs``, ``seconds`` (of the run that computed it)."""
    # torch (the ceiling trains a network): only where a report runs
    from backend.quality.baselines import CEILING_LRS, CEILING_SIZE, supervised_ceiling

    names, ink, images_key = ctx.images(CEILING_SIZE)
    keep, y, folds = label.arrays(names)
    key = {"baseline": "ceiling", "images": images_key, "labels": label.key, "epochs": epochs,
           "lrs": list(CEILING_LRS), "seed": seed}
    return cache.get_or_compute(key, lambda: {**supervised_ceiling(ink[keep], y, folds, epochs=epochs, seed=seed),
                                              "n": int(keep.sum())})
