"""The fingerprint-quality report: every model of a selection in one table, next to baselines
computed from the same images and, with labels, a supervised ceiling.

    from backend.data.catalog import Catalog
    from backend.quality import QualitySpec, quality_report
    result = quality_report(Catalog("."), ["resnet18_latent3_window3eV_..."], QualitySpec(labels="family"))
    result.table            # one row per feature set (models, baselines, ceiling, chance)
    result.physics          # with QualitySpec(physics=True): the physics section (backend.quality.physics)

Rows are grouped by energy window: the baselines of a window are computed from that window's
training images (``images/train_{W}eV``), or, where a root has only display plots (the published
layout), from those plots turned into training images as ``import-plots`` does
(:mod:`backend.quality.inputs`). The feature sets (:mod:`backend.quality.features`): the models,
the unencoded map, PCA-50 of the pixels at the models' input size and at the study's 224 px, the
models' architectures untrained; with labels the majority and random classes and the supervised
CNN ceiling (:func:`backend.quality.baselines.supervised_ceiling`: as many epochs as the window's
longest-trained model, learning rate picked on an inner split; ``train_acc`` next to its held-out
``probe_acc``).

Scores (columns of :attr:`QualityResult.table`):

- with labels (materials without a label are left out, and a warning says how many):
  ``probe_acc`` / ``probe_std`` (5-fold stratified linear probe, one fold assignment per window
  shared by every row), ``probe_nmi`` (NMI of the probe's held-out predictions against the labels:
  the clustering scores' yardstick, since no clustering of a feature set can be expected to group
  the labels better than a classifier trained on them; the ceiling's row holds its CNN's),
  ``kmeans_*`` (K-Means with k = number of classes), ``hdbscan_*`` (HDBSCAN
  at the cell the explorer opens with, :func:`explorer_cell`, noise as a cluster; ``_nmi``,
  ``_ari``, ``_acc``), ``knn_agreement``
  (share of the 10 nearest fingerprints with the same label);
- without labels: ``trustworthiness`` of the model's 2-D map, ``effective_dim`` (participation
  ratio of the fingerprint covariance: ~1 for a collapsed model), ``distinct`` (share of distinct
  fingerprints), ``recon_loss`` (held-out BCE of the clean validation images, for models whose
  weights and images are here).

Every row is cached on disk under ``<cache>/quality/`` (:mod:`backend.quality.rowcache`), keyed by
the content of its inputs (the fingerprint and map files, the images, the labels), the report's
settings, the HDBSCAN cell and the source of this package's modules (a code change recomputes).
"""

from __future__ import annotations

import dataclasses
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
from backend.discover.explorer_view import ExplorerView
from backend.errors import ParameterError
from backend.progress import ProgressFn, null_progress
from backend.quality.features import (
    FeatureSet,
    ceiling_epochs,
    ceiling_scores,
    model_feature_set,
    pixel_feature_sets,
    pixel_sizes,
    untrained_feature_sets,
)
from backend.quality.inputs import WindowInputs, labelled_folds
from backend.quality.metrics import (
    N_FOLDS,
    SEED,
    chance_accuracy,
    kmeans_labels,
    knn_agreement,
    heldout_nmi,
    map_trustworthiness,
    probe_predictions,
)
from backend.quality.physics import physics_frame, physics_window
from backend.quality.rowcache import RowCache

#: columns of the table, in order
COLUMNS = ("feature_set", "kind", "window", "model_id", "objective", "dim", "n", "probe_acc", "probe_std",
           "probe_nmi", "train_acc", "kmeans_nmi", "kmeans_ari", "kmeans_acc", "hdbscan_nmi", "hdbscan_ari", "hdbscan_acc",
           "hdbscan_clusters", "hdbscan_noise", "knn_agreement", "trustworthiness", "effective_dim",
           "distinct", "recon_loss")
KINDS = ("model", "baseline", "ceiling", "chance")


def explorer_cell() -> ClusterParams:
    """The clustering the explorer opens with (its default view's parameters)."""
    return ExplorerView().params().validate()


@dataclass(frozen=True)
class QualitySpec:
    """Settings of a report. ``labels``: a column of the root's ``labels.csv`` (None: the
    label-free scores only); ``ceiling``: train the supervised CNN (labels only); ``physics``:
    add the physics section (:mod:`backend.quality.physics`)."""

    labels: str | None = None
    n_folds: int = N_FOLDS
    seed: int = SEED
    k_neighbours: int = 10
    ceiling: bool = True
    baselines: bool = True
    physics: bool = False

    def validate(self) -> "QualitySpec":
        for name, low in (("n_folds", 2), ("seed", 0), ("k_neighbours", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ParameterError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.labels is not None and (not isinstance(self.labels, str) or not self.labels.strip()):
            raise ParameterError(f"labels must name a column of labels.csv, got {self.labels!r}")
        return self

    def key(self) -> dict:
        """Every setting (a job records the spec by it)."""
        return dataclasses.asdict(self)

    def row_key(self) -> dict:
        """The settings a row's numbers depend on (not which sections or rows are computed)."""
        return {k: getattr(self, k) for k in ("labels", "n_folds", "seed", "k_neighbours")}


@dataclass
class QualityResult:
    """``table``: the main table (:data:`COLUMNS`); ``physics``: the physics section (long:
    :data:`backend.quality.physics.PHYSICS_COLUMNS`), None unless asked for; ``meta``: what the
    rows were computed with (the HDBSCAN cell, the ceilings' epochs and learning rates)."""

    table: pd.DataFrame
    spec: QualitySpec
    warnings: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    physics: pd.DataFrame | None = None
    meta: dict = field(default_factory=dict)

    def models(self) -> pd.DataFrame:
        return self.table[self.table.kind == "model"]

    def reference(self, window, feature_set: str) -> pd.Series | None:
        rows = self.table[(self.table.window == window) & (self.table.feature_set == feature_set)]
        return rows.iloc[0] if len(rows) else None


# ---- scoring ------------------------------------------------------------------------------------

def effective_dim(X) -> float:
    """Participation ratio (sum of covariance eigenvalues)^2 / (sum of their squares)."""
    X = np.asarray(X, dtype=np.float64)
    if len(X) < 2:
        return float("nan")
    ev = np.clip(np.linalg.eigvalsh(np.cov(X, rowvar=False).reshape(X.shape[1], X.shape[1])), 0, None)
    return float(ev.sum() ** 2 / (ev ** 2).sum()) if ev.sum() > 0 else 0.0


def score_features(X, names, ctx: WindowInputs, *, spec: QualitySpec, xy=None, warnings: list | None = None,
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
    accs, pred = probe_predictions(Xl, y, folds)
    row["probe_acc"], row["probe_std"] = float(np.mean(accs)), float(np.std(accs))
    row["probe_nmi"] = heldout_nmi(y, pred)
    k = len(np.unique(y))
    km = external_scores(y, kmeans_labels(Xl, k, spec.seed))
    row.update(kmeans_nmi=km["nmi"], kmeans_ari=km["ari"], kmeans_acc=km["accuracy"])
    params = explorer_cell()
    if len(Xl) > params.min_cluster_size:
        labels = cluster(Xl, np.zeros((len(Xl), 2)), params).labels
        hd = external_scores(y, labels)
        row.update(hdbscan_nmi=hd["nmi"], hdbscan_ari=hd["ari"], hdbscan_acc=hd["accuracy"],
                   hdbscan_clusters=int(len(np.unique(labels[labels >= 0]))), hdbscan_noise=int((labels < 0).sum()))
    row["knn_agreement"] = knn_agreement(Xl, y, spec.k_neighbours)
    return row


def _chance_rows(ctx: WindowInputs, spec: QualitySpec) -> list[dict]:
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
        row.update(kmeans_nmi=sc["nmi"], kmeans_ari=sc["ari"], kmeans_acc=sc["accuracy"], probe_nmi=sc["nmi"])
        if strategy == "random":
            # a material's neighbours share its label by chance with probability sum_c p_c^2
            p = np.unique(y, return_counts=True)[1] / len(y)
            row["knn_agreement"] = float((p ** 2).sum())
        rows.append(row)
    return rows


# ---- the report ---------------------------------------------------------------------------------

def quality_report(catalog, model_ids, spec: QualitySpec | None = None, *, cache_dir: str | os.PathLike | None = None,
                   progress: ProgressFn | None = None, use_cache: bool = True, windows=()) -> QualityResult:
    """Score every model of ``model_ids`` and the baselines of their windows (see module doc);
    ``windows`` (eV): more windows to report the baselines of, with or without models (a root
    with images and no models yet)."""
    progress = progress or null_progress
    spec = (spec or QualitySpec()).validate()
    t0 = time.perf_counter()
    model_ids = list(dict.fromkeys(model_ids))
    if not model_ids and not windows:
        raise ParameterError("no models to report on")
    infos = [catalog.get(m) for m in model_ids]
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    cache = RowCache(cache_dir / "quality", use_cache)
    warnings: list[str] = []
    rows, physics_rows, meta = [], [], {"hdbscan_cell": explorer_cell().relevant(), "ceiling": {}}
    windows = sorted({i.window for i in infos} | {float(w) for w in windows}, key=lambda w: (w is None, w or 0))
    n_steps = len(infos) + len(windows) * (6 if spec.physics else 4)
    step = 0

    def advance(stage: str):
        nonlocal step
        step += 1
        progress(min(step, n_steps), n_steps, stage=stage)

    for window in windows:
        group = [i for i in infos if i.window == window]
        ctx = _window_context(catalog, window, group, spec, cache_dir, warnings)
        sets = _feature_sets(catalog, window, group, ctx, spec, warnings)
        base_key = {"spec": spec.row_key(), "labels": ctx.labels_key, "cell": explorer_cell().as_dict()}
        for fs in sets:
            rows.append(_feature_row(catalog, fs, window, ctx, spec, cache, base_key, warnings))
            advance(fs.name)
        if spec.baselines and ctx.labels is not None and ctx.images()[1] is not None:
            rows.extend({**r, "window": window} for r in _chance_rows(ctx, spec))
            if spec.ceiling:
                rows.append(_ceiling_row(window, group, ctx, spec, cache, meta))
        advance("ceiling")
        if spec.physics and window is None:
            warnings.append("physics section: models without an energy window have no descriptors; left out")
        elif spec.physics:
            physics_rows += physics_window(catalog, window, sets, ctx=ctx, spec=spec, cache=cache, warnings=warnings,
                                           epochs=ceiling_epochs(group), meta=meta)
            advance("physics")
    table = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in table.columns:
            table[col] = np.nan
    table = table[list(COLUMNS)]
    progress(n_steps, n_steps, stage="done")
    return QualityResult(table=table, spec=spec, warnings=list(dict.fromkeys(warnings)),
                         timings={"total_s": time.perf_counter() - t0, "cached_rows": cache.hits},
                         physics=physics_frame(physics_rows) if spec.physics else None, meta=meta)


def _window_context(catalog, window, group, spec: QualitySpec, cache_dir: Path, warnings: list) -> WindowInputs:
    ctx = WindowInputs(catalog, window, cache_dir, enabled=spec.baselines)
    if not group and ctx.images()[1] is None:
        raise ParameterError(f"window {window:g} eV: no models, training images or display plots under {catalog.root}")
    if spec.labels is not None:
        ctx.label = labelled_folds(catalog, spec.labels, ctx.universe([i.model_id for i in group]),
                                   n_folds=spec.n_folds, seed=spec.seed, where=f"window {window} eV", warnings=warnings)
    return ctx


def _feature_sets(catalog, window, group, ctx: WindowInputs, spec: QualitySpec, warnings: list) -> list[FeatureSet]:
    """The selected models, then the baselines every model of a window is read against: its
    unencoded map, PCA of the pixels at the models' input sizes and 224 px, untrained networks."""
    sets = [model_feature_set(catalog, i) for i in group]
    if not spec.baselines:
        return sets
    label = f"window {window} eV"
    unenc = [m for m in catalog.models.values() if m.is_unencoded and m.window == window]
    if unenc and unenc[0].model_id not in {i.model_id for i in group}:
        sets.append(model_feature_set(catalog, unenc[0]))
    elif not unenc:
        warnings.append(f"{label}: no unencoded map ({unencoded_model_id(window)}) under {catalog.root}")
    if ctx.images()[1] is None:
        warnings.append(f"{label}: no training images or display plots under {catalog.root}; the pixel, "
                        "untrained-network and ceiling baselines need them")
        return sets
    sets += pixel_feature_sets(ctx, pixel_sizes(group), seed=spec.seed, unenc_info=unenc[0] if unenc else None)
    sets += untrained_feature_sets(ctx, group, seed=spec.seed)
    return sets


def _feature_row(catalog, fs: FeatureSet, window, ctx: WindowInputs, spec: QualitySpec, cache: RowCache,
                 base_key: dict, warnings: list) -> dict:
    what = f"model {fs.model_id}" if fs.kind == "model" else fs.name
    is_model = fs.kind == "model"

    def compute():
        names, X = fs.load()
        local: list[str] = []
        row = score_features(X, names, ctx, spec=spec, xy=fs.xy(), warnings=local, what=what)
        return {**row, "recon_loss": _recon_loss(catalog, fs.info) if is_model else None, "warnings": local}

    row = dict(cache.get_or_compute({**base_key, **fs.key}, compute))
    warnings.extend(row.pop("warnings", []))
    return {"feature_set": fs.name, "kind": fs.kind, "window": window, "model_id": fs.model_id,
            "objective": fs.objective, **row}


def _ceiling_row(window, group, ctx: WindowInputs, spec: QualitySpec, cache: RowCache, meta: dict) -> dict:
    """A small CNN trained with the labels, on the same folds, as long as the window's models."""
    row = ceiling_scores(ctx, ctx.label, epochs=ceiling_epochs(group), seed=spec.seed, cache=cache)
    meta["ceiling"][f"window {window} eV, {spec.labels}"] = {k: row[k] for k in ("epochs", "lr", "lr_scores", "seconds")}
    return {"feature_set": "supervised CNN (ceiling)", "kind": "ceiling", "window": window,
            "objective": f"trained with the labels ({row['epochs']} epochs, lr {row['lr']:g})",
            **{k: row[k] for k in ("probe_acc", "probe_std", "probe_nmi", "train_acc", "n")}}


def _recon_loss(catalog, info) -> float | None:
    """Held-out reconstruction BCE of a model whose weights and images are under the root."""
    if info is None or info.is_unencoded or info.meta_path is None:
        return None
    try:
        # torch, imported only when a report needs a model's reconstruction loss
        from backend.autoencoder.evaluation import heldout_reconstruction_loss
    except ImportError:
        return None
    return heldout_reconstruction_loss(catalog, info.model_id)
