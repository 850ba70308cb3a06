"""The fingerprint-quality report: every model of a selection in one table, next to baselines
computed from the same images and, with labels, a supervised ceiling.

    from backend.data.catalog import Catalog
    from backend.quality import QualitySpec, quality_report
    result = quality_report(Catalog("."), ["resnet18_latent3_window3eV_..."], QualitySpec(labels="family"))
    result.table            # one row per feature set (models, baselines, ceiling, chance)

Rows are grouped by energy window: the baselines of a window are computed from that window's
training images (``images/train_{W}eV``), or, where a root has only display plots (the published
layout), from those plots turned into training images as ``import-plots`` does.

Scores (columns of :attr:`QualityResult.table`):

- with labels (materials without a label are left out, and a warning says how many):
  ``probe_acc`` / ``probe_std`` (5-fold stratified linear probe, one fold assignment per window
  shared by every row), ``kmeans_*`` (K-Means with k = number of classes), ``hdbscan_*`` (HDBSCAN
  at the explorer's default cell, noise as a cluster; ``_nmi``, ``_ari``, ``_acc``), ``knn_agreement``
  (share of the 10 nearest fingerprints with the same label);
- without labels: ``trustworthiness`` of the model's 2-D map, ``effective_dim`` (participation
  ratio of the fingerprint covariance: ~1 for a collapsed model), ``distinct`` (share of distinct
  fingerprints), ``recon_loss`` (held-out BCE of the clean validation images, for models whose
  weights and images are here).

Every row is cached on disk under ``<cache>/quality/``, keyed by the content of its inputs (the
fingerprint and map files, the images, the labels) and the report's settings.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from backend.cache import default_cache_dir
from backend.cluster.algorithms import cluster
from backend.cluster.params import ClusterParams
from backend.cluster.validation import external_scores
from backend.data.model_ids import unencoded_model_id
from backend.data.labels import labelled_materials, load_labels
from backend.errors import DataError, ParameterError
from backend.fileio import file_sha256, json_digest, load_npz, save_npz_atomic, write_json_atomic
from backend.progress import ProgressFn, null_progress
from backend.quality.metrics import (
    N_FOLDS,
    SEED,
    chance_accuracy,
    check_labels,
    kmeans_labels,
    knn_agreement,
    linear_probe,
    make_folds,
    map_trustworthiness,
)

CACHE_VERSION = 1
#: columns of the table, in order
COLUMNS = ("feature_set", "kind", "window", "model_id", "objective", "dim", "n", "probe_acc", "probe_std",
           "kmeans_nmi", "kmeans_ari", "kmeans_acc", "hdbscan_nmi", "hdbscan_ari", "hdbscan_acc",
           "hdbscan_clusters", "hdbscan_noise", "knn_agreement", "trustworthiness", "effective_dim",
           "distinct", "recon_loss")
KINDS = ("model", "baseline", "ceiling", "chance")


@dataclass(frozen=True)
class QualitySpec:
    """Settings of a report. ``labels``: a column of the root's ``labels.csv`` (None: the
    label-free scores only); ``ceiling``: train the supervised CNN (labels only)."""

    labels: str | None = None
    n_folds: int = N_FOLDS
    seed: int = SEED
    k_neighbours: int = 10
    ceiling: bool = True
    baselines: bool = True

    def validate(self) -> "QualitySpec":
        for name, low in (("n_folds", 2), ("seed", 0), ("k_neighbours", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ParameterError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.labels is not None and (not isinstance(self.labels, str) or not self.labels.strip()):
            raise ParameterError(f"labels must name a column of labels.csv, got {self.labels!r}")
        return self

    def key(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class QualityResult:
    table: pd.DataFrame
    spec: QualitySpec
    warnings: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    def models(self) -> pd.DataFrame:
        return self.table[self.table.kind == "model"]

    def reference(self, window, feature_set: str) -> pd.Series | None:
        rows = self.table[(self.table.window == window) & (self.table.feature_set == feature_set)]
        return rows.iloc[0] if len(rows) else None


# ---- inputs -------------------------------------------------------------------------------------

@dataclass
class _Window:
    """What a window's rows are scored on: its images, and the labelled materials with their folds."""

    window: float | None
    names: np.ndarray | None            # materials of the images (None: no images found)
    ink: np.ndarray | None              # (n, 1, S, S) uint8
    images_key: str | None
    labels: dict | None                 # material -> label (only labelled materials)
    folds: dict | None                  # material -> fold
    labels_key: str | None




def window_images(catalog, window, cache_dir: Path, *, size: int = 224, progress: ProgressFn = null_progress):
    """(names, ink uint8 (n, 1, size, size), key) of a window's training images; made from the
    display plots (and cached) when the root has no training images; (None, None, None) when it
    has neither."""
    # torch (the image helpers live with the autoencoder): only where a report runs, never in a web process
    from backend.autoencoder.images import (
        folder_fingerprint,
        import_plot,
        ink_from_grey,
        list_images,
        load_image_folder,
    )

    train_dir = catalog.train_image_dir(window)
    if train_dir is not None:
        key = json_digest({"train": folder_fingerprint(train_dir), "size": size})
        names, ink = load_image_folder(train_dir, size)
        return np.asarray(names), ink.numpy(), key
    display = catalog.display_image_dir(window)
    if display is None:
        return None, None, None
    files = list_images(display)
    key = json_digest({"display": folder_fingerprint(display), "size": size})
    path = cache_dir / f"images-{key}.npz"
    hit = load_npz(path)
    if hit is not None:
        return hit["names"], hit["ink"], key
    names, inks = [], []
    for i, f in enumerate(files, 1):
        try:
            inks.append(ink_from_grey(import_plot(f, size)))
            names.append(f.stem)
        except DataError:
            pass  # a plot without an axes frame cannot be imported; it simply has no baseline row
        progress(i, len(files), stage="import plots")
    ink = np.stack(inks)[:, None]
    save_npz_atomic(path, {"names": np.asarray(names), "ink": ink})
    return np.asarray(names), ink, key


def _window_inputs(catalog, window, infos, spec: QualitySpec, cache_dir: Path, warnings: list,
                   progress: ProgressFn) -> _Window:
    names, ink, images_key = (window_images(catalog, window, cache_dir, progress=progress)
                              if spec.baselines else (None, None, None))
    if spec.labels is None:
        return _Window(window, names, ink, images_key, None, None, None)

    path = catalog.labels_path()
    universe = names if names is not None else catalog.load(infos[0].model_id).names
    y = load_labels(catalog, spec.labels, universe)
    labelled = y != ""
    if not labelled.any():
        raise ParameterError(f"labels file {path}: column {spec.labels!r} labels none of the "
                             f"{len(universe)} materials of window {window} eV")
    if not labelled.all():
        warnings.append(f"{path.name}: column {spec.labels!r} labels {int(labelled.sum())} of the "
                        f"{len(universe)} materials of window {window} eV; the others are left out")

    unknown = sorted(set(labelled_materials(catalog, spec.labels)) - set(universe))
    if unknown:
        warnings.append(f"{path.name}: {len(unknown)} labelled materials are not among the {len(universe)} of "
                        f"window {window} eV (e.g. {', '.join(unknown[:3])}); the report uses the overlap")
    lab_names, y = np.asarray(universe)[labelled], y[labelled]
    y = check_labels(y, spec.n_folds, where=f"labels file {path}, column {spec.labels!r}")
    fold = make_folds(y, spec.n_folds, spec.seed)
    return _Window(window, names, ink, images_key, dict(zip(lab_names, y)), dict(zip(lab_names, fold)),
                   json_digest({"names": lab_names.tolist(), "y": y.tolist(), "folds": fold.tolist()}))


# ---- scoring ------------------------------------------------------------------------------------

def effective_dim(X) -> float:
    """Participation ratio (sum of covariance eigenvalues)^2 / (sum of their squares)."""
    X = np.asarray(X, dtype=np.float64)
    if len(X) < 2:
        return float("nan")
    ev = np.clip(np.linalg.eigvalsh(np.cov(X, rowvar=False).reshape(X.shape[1], X.shape[1])), 0, None)
    return float(ev.sum() ** 2 / (ev ** 2).sum()) if ev.sum() > 0 else 0.0


def score_features(X, names, ctx: _Window, *, spec: QualitySpec, xy=None, warnings: list | None = None,
                   what: str = "") -> dict:
    """Every score of one feature array ``X`` (n, d) whose rows are ``names``."""
    X = np.asarray(X, dtype=np.float64)
    names = np.asarray(names)
    row: dict = {"dim": int(X.shape[1]), "n": int(len(X))}
    row["effective_dim"] = effective_dim(X)
    row["distinct"] = float(len(np.unique(X, axis=0)) / len(X))
    if xy is not None:
        row["trustworthiness"] = map_trustworthiness(X, xy, spec.k_neighbours)
    if ctx.labels is None:
        return row
    keep = np.array([n in ctx.labels for n in names])
    if not keep.any():
        raise ParameterError(f"{what}: none of its {len(names)} materials has a label")
    if warnings is not None and not keep.all():
        warnings.append(f"{what}: {int((~keep).sum())} of its {len(names)} materials have no label and "
                        "were left out of the labelled scores")
    Xl, nl = X[keep], names[keep]
    y = np.array([ctx.labels[n] for n in nl])
    folds = np.array([ctx.folds[n] for n in nl])
    row["n"] = int(len(nl))
    row["probe_acc"], row["probe_std"] = linear_probe(Xl, y, folds)
    k = len(np.unique(y))
    km = external_scores(y, kmeans_labels(Xl, k, spec.seed))
    row.update(kmeans_nmi=km["nmi"], kmeans_ari=km["ari"], kmeans_acc=km["accuracy"])
    params = ClusterParams()  # the explorer's first view: the paper's cell
    if len(Xl) > params.min_cluster_size:
        labels = cluster(Xl, np.zeros((len(Xl), 2)), params).labels
        hd = external_scores(y, labels)
        row.update(hdbscan_nmi=hd["nmi"], hdbscan_ari=hd["ari"], hdbscan_acc=hd["accuracy"],
                   hdbscan_clusters=int(len(np.unique(labels[labels >= 0]))), hdbscan_noise=int((labels < 0).sum()))
    row["knn_agreement"] = knn_agreement(Xl, y, spec.k_neighbours)
    return row


def _chance_rows(ctx: _Window, spec: QualitySpec) -> list[dict]:
    names = np.array(list(ctx.labels))
    y = np.array([ctx.labels[n] for n in names])
    folds = np.array([ctx.folds[n] for n in names])
    k = len(np.unique(y))
    rng = np.random.default_rng(spec.seed)
    rows = []
    for strategy in ("majority", "random"):
        row = {"feature_set": f"{strategy} class", "kind": "chance", "n": len(y),
               "probe_acc": chance_accuracy(y, folds, strategy, seed=spec.seed), "probe_std": 0.0}
        pred = np.zeros(len(y), int) if strategy == "majority" else rng.integers(0, k, len(y))
        sc = external_scores(y, pred)
        row.update(kmeans_nmi=sc["nmi"], kmeans_ari=sc["ari"], kmeans_acc=sc["accuracy"])
        if strategy == "random":
            # a material's neighbours share its label by chance with probability sum_c p_c^2
            p = np.unique(y, return_counts=True)[1] / len(y)
            row["knn_agreement"] = float((p ** 2).sum())
        rows.append(row)
    return rows


# ---- cache --------------------------------------------------------------------------------------



class _RowCache:
    def __init__(self, folder: Path, enabled: bool):
        self.folder, self.enabled, self.hits = folder, enabled, 0

    def get_or_compute(self, key: dict, compute) -> dict:
        path = self.folder / f"row-{json_digest({'v': CACHE_VERSION, **key})}.json"
        if self.enabled:
            try:
                row = json.loads(path.read_text())
                self.hits += 1
                return row
            except (OSError, ValueError):
                pass
        row = compute()

        write_json_atomic(path, row)
        return row


# ---- the report ---------------------------------------------------------------------------------

def _model_objective(info) -> str:
    return str(info.extra.get("objective") or ("reconstruction" if info.meta_path else "published"))


def _model_image_size(info) -> int:
    return int(info.extra.get("image_size") or 224)


def quality_report(catalog, model_ids, spec: QualitySpec | None = None, *, cache_dir: str | os.PathLike | None = None,
                   progress: ProgressFn | None = None, use_cache: bool = True) -> QualityResult:
    """Score every model of ``model_ids`` and the baselines of their windows (see module doc)."""
    progress = progress or null_progress
    spec = (spec or QualitySpec()).validate()
    t0 = time.perf_counter()
    model_ids = list(dict.fromkeys(model_ids))
    if not model_ids:
        raise ParameterError("no models to report on")
    infos = [catalog.get(m) for m in model_ids]
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    cache = _RowCache(cache_dir / "quality", use_cache)
    warnings: list[str] = []
    rows: list[dict] = []
    windows = sorted({i.window for i in infos}, key=lambda w: (w is None, w or 0))
    n_steps = len(infos) + len(windows) * 4
    step = 0

    def advance(stage: str):
        nonlocal step
        step += 1
        progress(step, n_steps, stage=stage)

    for window in windows:
        group = [i for i in infos if i.window == window]
        ctx = _window_inputs(catalog, window, group, spec, cache_dir, warnings, null_progress)
        base_key = {"spec": spec.key(), "labels": ctx.labels_key}
        for info in group:
            data = catalog.load(info.model_id)
            files = [info.fingerprint_path or info.embedding_path, info.embedding_path]
            key = {**base_key, "model": info.model_id, "files": [file_sha256(f) for f in files]}
            what = f"model {info.model_id}"
            local: list[str] = []
            xy = None if info.is_unencoded else data.xy
            row = cache.get_or_compute(key, lambda: {
                **score_features(data.X, data.names, ctx, spec=spec, xy=xy, warnings=local, what=what),
                "recon_loss": _recon_loss(catalog, info), "warnings": local})
            warnings.extend(row.pop("warnings", []))
            rows.append({"feature_set": info.model_id, "kind": "baseline" if info.is_unencoded else "model",
                         "window": window, "model_id": info.model_id,
                         "objective": "unencoded UMAP" if info.is_unencoded else _model_objective(info), **row})
            advance(info.model_id)
        if not spec.baselines:
            continue
        rows.extend(_baseline_rows(catalog, window, group, ctx, spec, cache, base_key, warnings, advance))
    if not rows:
        raise ParameterError("nothing to report")
    table = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in table.columns:
            table[col] = np.nan
    table = table[list(COLUMNS)]
    progress(n_steps, n_steps, stage="done")
    return QualityResult(table=table, spec=spec, warnings=list(dict.fromkeys(warnings)),
                         timings={"total_s": time.perf_counter() - t0, "cached_rows": cache.hits})


def _baseline_rows(catalog, window, group, ctx: _Window, spec: QualitySpec, cache: _RowCache, base_key: dict,
                   warnings: list, advance) -> list[dict]:
    """The rows every model of a window is read against: its unencoded map, PCA of the pixels,
    untrained networks, and with labels the chance rows and the supervised ceiling."""
    label = f"window {window} eV"
    unenc = [m for m in catalog.models.values() if m.is_unencoded and m.window == window]
    rows = []
    # the unencoded map of this window, when the selection did not include it already
    if unenc and unenc[0].model_id not in {i.model_id for i in group}:
        rows.append(_unencoded_row(catalog, unenc[0], window, ctx, spec, cache, base_key))
    elif not unenc:
        warnings.append(f"{label}: no unencoded map ({unencoded_model_id(window)}) under {catalog.root}")
    if ctx.ink is None:
        warnings.append(f"{label}: no training images or display plots under {catalog.root}; the pixel, "
                        "untrained-network and ceiling baselines need them")
        return rows
    advance("pixels")
    rows.append(_pixel_row(catalog, unenc, window, ctx, spec, cache, base_key))
    advance("untrained")
    rows.extend(_untrained_rows(group, window, ctx, spec, cache, base_key))
    advance("ceiling")
    if ctx.labels is not None:
        rows.extend({**r, "window": window} for r in _chance_rows(ctx, spec))
        if spec.ceiling:
            rows.append(_ceiling_row(window, ctx, spec, cache, base_key))
    advance("baselines done")
    return rows


def _unencoded_row(catalog, info, window, ctx: _Window, spec: QualitySpec, cache: _RowCache, base_key: dict) -> dict:
    """The window's unencoded 2-D map (``info``) scored as a feature set."""
    data = catalog.load(info.model_id)
    key = {**base_key, "model": info.model_id, "files": [file_sha256(info.embedding_path)]}
    row = cache.get_or_compute(key, lambda: score_features(data.X, data.names, ctx, spec=spec, what=info.model_id))
    return {"feature_set": "unencoded UMAP (2-D)", "kind": "baseline", "window": window,
            "model_id": info.model_id, "objective": "unencoded UMAP", **row}


def _pixel_row(catalog, unenc: list, window, ctx: _Window, spec: QualitySpec, cache: _RowCache,
               base_key: dict) -> dict:
    """PCA of the raw pixels; its trustworthiness on the unencoded map of the window, if any."""
    # torch (the baselines module holds the networks too): only where a report runs
    from backend.quality.baselines import PCA_COMPONENTS, pixel_pca

    unenc_xy = None
    if unenc:
        d = catalog.load(unenc[0].model_id)
        order = pd.Index(d.names).get_indexer(ctx.names)
        unenc_xy = d.xy[order] if (order >= 0).all() else None

    def pixels():
        X = pixel_pca(ctx.ink, seed=spec.seed)
        return score_features(X, ctx.names, ctx, spec=spec, xy=unenc_xy, what="pixels")

    row = cache.get_or_compute({**base_key, "baseline": "pixel_pca", "images": ctx.images_key}, pixels)
    return {"feature_set": f"pixels (PCA-{PCA_COMPONENTS})", "kind": "baseline", "window": window,
            "objective": "PCA of raw pixels", **row}


def _untrained_rows(group, window, ctx: _Window, spec: QualitySpec, cache: _RowCache, base_key: dict) -> list[dict]:
    """The models' architectures with random weights, one row per (architecture, latent, size)."""
    # torch (untrained networks): only where a report runs
    from backend.quality.baselines import untrained_fingerprints, untrained_precision

    archs = sorted({(i.arch, int(i.latent), _model_image_size(i)) for i in group
                    if not i.is_unencoded and i.arch in ("resnet18", "resnet50") and i.latent})
    features: dict = {}  # (arch, size) -> {latent: X}, computed only when a row is not cached
    amp = str(untrained_precision())

    def untrained(arch, latent, size):
        if (arch, size) not in features:
            wanted = [z for a, z, s in archs if (a, s) == (arch, size)]
            features[(arch, size)] = untrained_fingerprints(ctx.ink, arch, wanted, image_size=size, seed=spec.seed)
        return score_features(features[(arch, size)][latent], ctx.names, ctx, spec=spec, what="untrained")

    rows = []
    for arch, latent, size in archs:
        row = cache.get_or_compute({**base_key, "baseline": "untrained", "arch": arch, "latent": latent,
                                    "size": size, "images": ctx.images_key, "amp": amp},
                                   lambda arch=arch, latent=latent, size=size: untrained(arch, latent, size))
        rows.append({"feature_set": f"untrained {arch} latent{latent} {size}px", "kind": "baseline",
                     "window": window, "objective": "random weights", **row})
    return rows


def _ceiling_row(window, ctx: _Window, spec: QualitySpec, cache: _RowCache, base_key: dict) -> dict:
    """A small CNN trained with the labels, on the same folds."""
    # torch (the supervised ceiling trains a network): only where a report runs
    from backend.quality.baselines import CEILING_EPOCHS, CEILING_SIZE, supervised_ceiling

    keep = np.array([n in ctx.labels for n in ctx.names])

    def ceiling():
        y = np.array([ctx.labels[n] for n in ctx.names[keep]])
        folds = np.array([ctx.folds[n] for n in ctx.names[keep]])
        acc, std = supervised_ceiling(ctx.ink[keep], y, folds, seed=spec.seed)
        return {"probe_acc": acc, "probe_std": std, "n": int(keep.sum())}

    row = cache.get_or_compute({**base_key, "baseline": "ceiling", "images": ctx.images_key,
                                "epochs": CEILING_EPOCHS, "size": CEILING_SIZE}, ceiling)
    return {"feature_set": "supervised CNN (ceiling)", "kind": "ceiling", "window": window,
            "objective": "trained with the labels", **row}


def _recon_loss(catalog, info) -> float | None:
    """Held-out reconstruction BCE of a model whose weights and images are under the root."""
    if info.is_unencoded or info.meta_path is None:
        return None
    try:
        # torch, imported only when a report needs a model's reconstruction loss
        from backend.autoencoder.evaluation import heldout_reconstruction_loss
    except ImportError:
        return None
    return heldout_reconstruction_loss(catalog, info.model_id)
