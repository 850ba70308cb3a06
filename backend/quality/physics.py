"""The quality report's physics section: how well each feature set of a window predicts the
physics a band plot shows near E_F.

- **descriptors** (:mod:`backend.quality.descriptors`, :data:`TARGETS`), from the root's band data
  (``bands/*.npz`` or ``assets/bands``: exact) when it has them, else from its display plots
  (approximate); never from a fingerprint. Each is scored by :func:`knn_r2`: 5-fold 10-nearest-
  neighbour regression R^2 on standardised features (0: no better than the mean; negative: worse).
  A descriptor undefined for a material (NaN: e.g. no line near E_F) leaves that material out of
  its R^2, and a warning says for how many.
- **labels**: every column of ``labels.csv`` with two or more classes that can be scored (each
  class on two materials or more): the linear probe's accuracy on stratified folds (one
  assignment per column, shared by every feature set), next to the majority class and the
  supervised CNN ceiling. A column that cannot be scored is left out with a warning naming the
  file and the column.

The section is a long table: one row per (window, feature set, target), ``score`` "r2" or
"accuracy".
"""

from __future__ import annotations

import hashlib
import warnings as _warnings
from pathlib import Path

import numpy as np
import pandas as pd

from backend.data.bands import load_band_data
from backend.data.labels import label_columns
from backend.errors import BandscapeError, DataError
from backend.fileio import json_digest, write_csv_atomic
from backend.quality.descriptors import band_data_descriptors, describe_plots
from backend.quality.features import ceiling_scores, is_published
from backend.quality.inputs import labelled_folds
from backend.quality.metrics import chance_accuracy, linear_probe
from backend.quality.rowcache import code_version

#: the descriptors scored: those read alike from band data and from plots
TARGETS = ("n_fermi_crossings", "metal", "density_at_ef", "line_density", "flat_strip", "max_slope", "gap")
#: the physics section's columns, in order
PHYSICS_COLUMNS = ("window", "feature_set", "kind", "target", "score", "value", "train_acc", "n")
#: neighbours of the k-NN regression
K_NEIGHBOURS = 10


def knn_r2(X, y, *, k: int = K_NEIGHBOURS, n_folds: int = 5, seed: int = 0) -> float:
    """``n_folds``-fold (shuffled, seeded) k-NN regression R^2 of ``y`` (n,) from standardised
    ``X`` (n, d), predictions pooled over the folds; NaN targets left out; NaN when fewer than
    ``n_folds`` * 2 materials remain or ``y`` is constant."""
    # sklearn: ~2 s to import; not in a web process
    from sklearn.model_selection import KFold
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(y)
    X, y = np.asarray(X, dtype=np.float64)[ok], y[ok]
    if len(y) < 2 * n_folds or np.ptp(y) == 0:
        return float("nan")
    X = StandardScaler().fit_transform(X)
    pred = np.empty_like(y)
    for train, test in KFold(n_folds, shuffle=True, random_state=seed).split(X):
        pred[test] = KNeighborsRegressor(min(k, len(train))).fit(X[train], y[train]).predict(X[test])
    return float(1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum())


# ---- descriptors --------------------------------------------------------------------------------

def _folder_digest(folder: Path, pattern: str) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.glob(pattern)):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def window_descriptors(catalog, window: float, cache_dir: Path, *, warnings: list) -> tuple[pd.DataFrame | None, str]:
    """(descriptors indexed by material (columns :data:`TARGETS`), source) of a window: from the
    root's band data, else its display plots (cached as CSV, keyed by the files' content and the
    code); (None, reason) when the root has neither. Undefined descriptors are NaN, and a warning
    says how many materials each leaves out."""
    band_dir, plot_dir = catalog.band_data_dir(), catalog.display_image_dir(window)
    if band_dir is not None and any(band_dir.glob("*.npz")):
        source, folder, pattern = "band data", band_dir, "*.npz"
    elif plot_dir is not None:
        source, folder, pattern = "display plots", plot_dir, "*.png"
    else:
        return None, f"no band data or display plots for window {window:g} eV under {catalog.root}"
    key = json_digest({"folder": _folder_digest(folder, pattern), "window": window, "code": code_version()})
    path = Path(cache_dir) / "quality" / f"descriptors-{key}.csv"
    if path.is_file():
        frame = pd.read_csv(path, index_col="material", dtype={"material": str})
    else:
        if source == "band data":
            rows = []
            for f in sorted(band_dir.glob("*.npz")):
                try:
                    rows.append({"material": f.stem, **band_data_descriptors(load_band_data(f), window=window)})
                except BandscapeError as exc:
                    raise DataError(f"band data {f}: {exc}") from None
            frame = pd.DataFrame(rows).set_index("material")
        else:
            frame = describe_plots(sorted(plot_dir.glob("*.png")), window=window).set_index("material")
        frame = frame[list(TARGETS)]
        write_csv_atomic(path, frame.reset_index())
    frame.index = frame.index.astype(str)
    for t in TARGETS:
        missing = int(frame[t].isna().sum())
        if missing:
            warnings.append(f"window {window:g} eV: descriptor {t!r} is undefined for {missing} of the "
                            f"{len(frame)} materials ({source}; e.g. no line near E_F); they are left out of its R^2")
    return frame, source


# ---- labels -------------------------------------------------------------------------------------

def physics_labels(catalog, universe, *, n_folds: int, seed: int, where: str, warnings: list) -> dict:
    """column -> :class:`backend.quality.inputs.Labelled` for every column of ``labels.csv`` that
    can be scored on ``universe``; the others are left out, each with a warning naming the file,
    the column and why."""
    out = {}
    for column in label_columns(catalog):
        try:
            out[column] = labelled_folds(catalog, column, universe, n_folds=n_folds, seed=seed, where=where,
                                         warnings=[])
        except BandscapeError as exc:
            warnings.append(f"physics section, {where}: label column {column!r} left out: {exc}")
    return out


# ---- scores -------------------------------------------------------------------------------------

def physics_scores(names, X, descriptors: pd.DataFrame | None, *, labels: dict, seed: int) -> dict:
    """{"r2": {descriptor: R^2}, "accuracy": {column: probe accuracy}, "n": {target: materials}}
    of one feature array ``X`` (n, d) whose rows are ``names``."""
    names = np.asarray(names).astype(str)
    X = np.asarray(X, dtype=np.float64)
    out: dict = {"r2": {}, "accuracy": {}, "n": {}}
    if descriptors is not None:
        d = descriptors.reindex(names)
        for t in TARGETS:
            y = d[t].to_numpy(float)
            out["r2"][t] = knn_r2(X, y, seed=seed)
            out["n"][t] = int(np.isfinite(y).sum())
    for column, lab in labels.items():
        keep, y, folds = lab.arrays(names)
        if len(np.unique(folds)) < 2 or len(np.unique(y)) < 2:
            continue
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore", UserWarning)
            out["accuracy"][column] = linear_probe(X[keep], y, folds)[0]
        out["n"][column] = int(keep.sum())
    return out


def long_rows(window, name: str, kind: str, *, scores: dict) -> list[dict]:
    """The section's rows of one feature set from :func:`physics_scores`' dict."""
    rows = []
    for score in ("r2", "accuracy"):
        for target, value in scores.get(score, {}).items():
            rows.append({"window": window, "feature_set": name, "kind": kind, "target": target, "score": score,
                         "value": value, "train_acc": None, "n": scores["n"].get(target)})
    return rows


def majority_rows(window, labels: dict) -> list[dict]:
    """The majority-class accuracy of every label column, on its folds."""
    rows = []
    for column, lab in labels.items():
        y = np.array(list(lab.labels.values()))
        folds = np.array([lab.folds[n] for n in lab.labels])
        rows.append({"window": window, "feature_set": "majority class", "kind": "chance", "target": column,
                     "score": "accuracy", "value": chance_accuracy(y, folds, "majority"), "n": len(y)})
    return rows


def summarise(window, name: str, per_model: list[dict]) -> list[dict]:
    """Median and best over many models' :func:`physics_scores` (the study's published models)."""
    rows = []
    for stat, fn in (("median", np.nanmedian), ("best", np.nanmax)):
        merged = {"r2": {}, "accuracy": {}, "n": {}}
        for score in ("r2", "accuracy"):
            for t in per_model[0][score]:
                values = np.array([m[score].get(t, np.nan) for m in per_model], dtype=float)
                merged[score][t] = float(fn(values)) if np.isfinite(values).any() else float("nan")
                merged["n"][t] = per_model[0]["n"].get(t)
        rows += long_rows(window, f"{name} ({len(per_model)}): {stat}", "model", scores=merged)
    return rows


def physics_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for col in PHYSICS_COLUMNS:
        if col not in frame.columns:
            frame[col] = np.nan
    return frame[list(PHYSICS_COLUMNS)]


# ---- one window ---------------------------------------------------------------------------------

def physics_window(catalog, window, sets, *, ctx, spec, cache, warnings: list, epochs: int, meta: dict) -> list[dict]:
    """The section's rows of one window: every feature set of ``sets`` (the study's published
    models as their median and best when there are several), the majority class and, with
    ``spec.ceiling``, the supervised CNN of every label column."""
    descriptors, source = window_descriptors(catalog, window, ctx.cache_dir, warnings=warnings)
    if descriptors is None:
        warnings.append(f"physics section: {source}; the descriptors' R^2 is left out")
    universe = ctx.universe([fs.model_id for fs in sets if fs.model_id])
    labels = (physics_labels(catalog, universe, n_folds=spec.n_folds, seed=spec.seed, where=f"window {window} eV",
                             warnings=warnings) if catalog.labels_path() else {})
    meta.setdefault("physics_source", {})[f"{float(window):g}"] = source
    key = {"physics": TARGETS, "seed": spec.seed, "labels": {c: lab.key for c, lab in labels.items()},
           "descriptors": None if descriptors is None else json_digest(descriptors.reset_index().to_numpy().tolist())}
    rows, published = [], []
    n_published = sum(1 for fs in sets if fs.info is not None and is_published(fs.info))
    for fs in sets:
        scores = cache.get_or_compute({**key, **fs.key}, lambda fs=fs: physics_scores(
            *fs.load(), descriptors, labels=labels, seed=spec.seed))
        if n_published > 1 and fs.info is not None and is_published(fs.info):
            published.append(scores)
        else:
            rows += long_rows(window, fs.name, fs.kind, scores=scores)
    if published:
        rows += summarise(window, "published models", published)
    rows += majority_rows(window, labels)
    if spec.ceiling and spec.baselines and ctx.images()[1] is not None:
        for column, lab in labels.items():
            c = ceiling_scores(ctx, lab, epochs=epochs, seed=spec.seed, cache=cache)
            meta["ceiling"][f"window {window} eV, {column}"] = {k: c[k] for k in ("epochs", "lr", "lr_scores", "seconds")}
            rows.append({"window": window, "feature_set": "supervised CNN (ceiling)", "kind": "ceiling",
                         "target": column, "score": "accuracy", "value": c["probe_acc"], "train_acc": c["train_acc"],
                         "n": c["n"]})
    return rows
