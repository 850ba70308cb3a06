"""The tables of a grid search: per model, per cell, the ranking, scores against known labels;
and a search's result saved to and read from a folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from backend.cluster.validation import external_scores
from backend.data.labels import load_labels
from backend.evaluate.spec import MIN_CLUSTERS, GridResult, GridSpec, is_collapsed, spec_from_key
from backend.fileio import save_npz_atomic, write_json_atomic


def per_model_table(catalog, model_ids, spec, *, per, ami, ami_nn) -> pd.DataFrame:
    ms_grid, mcs_grid = np.meshgrid(spec.min_samples, spec.min_cluster_size, indexing="ij")
    frames = []
    for k, mid in enumerate(model_ids):
        r = per[mid]
        info = catalog.get(mid)
        frames.append(pd.DataFrame({
            "model_id": mid, "arch": info.arch, "latent": info.latent, "window": info.window,
            "epochs": info.epochs, "split": info.split,
            "min_samples": ms_grid.ravel(), "min_cluster_size": mcs_grid.ravel(),
            "n_clusters": r["n_clusters"].ravel(), "n_noise": r["n_noise"].ravel(),
            "dbcv": r["dbcv"].ravel(), "s_dbw": r["s_dbw"].ravel(),
            "mean_ami": ami[:, :, k].ravel(), "mean_ami_no_noise": ami_nn[:, :, k].ravel(),
            "collapsed": is_collapsed(r["distinct"], r["labels"].shape[-1]),
        }))
    return pd.concat(frames, ignore_index=True)


def cell_label(min_samples: int, min_cluster_size: int) -> str:
    return f"ms={int(min_samples)}, mcs={int(min_cluster_size)}"


def _best(group: pd.DataFrame, column: str) -> tuple:
    values = group[column]
    if values.isna().all():
        return np.nan, ""
    row = group.loc[values.idxmax()]
    return float(row[column]), row["model_id"]


def cells_table(per_model: pd.DataFrame, spec: GridSpec) -> pd.DataFrame:
    """Per cell, the best DBCV and mean AMIs among the clusterings that can be chosen: from
    models that have not collapsed, with at least two clusters (below, DBCV is undefined, and
    two all-noise clusterings agree perfectly: AMI 1). NaN and no model where none qualifies."""
    rows = []
    candidates = per_model[~per_model.collapsed & (per_model.n_clusters >= MIN_CLUSTERS)]
    groups = dict(list(candidates.groupby(["min_samples", "min_cluster_size"], sort=True)))
    for ms in spec.min_samples:
        for mcs in spec.min_cluster_size:
            row = {"min_samples": ms, "min_cluster_size": mcs}
            g = groups.get((ms, mcs))
            for col in ("dbcv", "mean_ami", "mean_ami_no_noise"):
                row[f"best_{col}"], row[f"best_{col}_model"] = _best(g, col) if g is not None else (np.nan, "")
            rows.append(row)
    return pd.DataFrame(rows)


def ranking_table(per_model: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """One row per model: its best DBCV and mean AMI over the grid (and where), its averages,
    and in how many cells it is the best."""
    rows = []
    for mid, g in per_model.groupby("model_id", sort=False):
        best = g.loc[g.dbcv.idxmax()]
        row = {"model_id": mid, "collapsed": bool(g.collapsed.iloc[0]), "best_dbcv": float(best.dbcv),
               "best_dbcv_cell": cell_label(best.min_samples, best.min_cluster_size),
               "mean_dbcv": float(g.dbcv.mean())}
        for col in ("mean_ami", "mean_ami_no_noise"):
            if g[col].isna().all():
                row[f"best_{col}"], row[f"best_{col}_cell"] = np.nan, ""
            else:
                b = g.loc[g[col].idxmax()]
                row[f"best_{col}"], row[f"best_{col}_cell"] = float(b[col]), cell_label(b.min_samples, b.min_cluster_size)
            row[f"grid_{col}"] = float(g[col].mean())
        for col in ("dbcv", "mean_ami", "mean_ami_no_noise"):
            row[f"cells_won_{col}"] = int((cells[f"best_{col}_model"] == mid).sum())
        rows.append(row)
    ranking = pd.DataFrame(rows).sort_values(["collapsed", "cells_won_dbcv", "best_dbcv"],
                                             ascending=[True, False, False], ignore_index=True)
    ranking.insert(0, "rank", np.arange(1, len(ranking) + 1))
    return ranking


def external_table(result: GridResult, catalog, column: str, *, min_samples: int | None = None,
                   min_cluster_size: int | None = None) -> pd.DataFrame:
    """Accuracy, NMI and ARI (with noise as a cluster and without noise) of every model's
    clustering against the ``column`` of the data root's labels.csv, in one cell or all."""
    truth = load_labels(catalog, column, result.materials)
    rows = []
    for ms in result.spec.min_samples if min_samples is None else (min_samples,):
        for mcs in result.spec.min_cluster_size if min_cluster_size is None else (min_cluster_size,):
            for mid in result.models:
                scores = external_scores(truth, result.cell_labels(mid, ms, mcs))
                rows.append({"model_id": mid, "min_samples": ms, "min_cluster_size": mcs, **scores})
    return pd.DataFrame(rows)


_TABLES = ("per_model", "cells", "ranking")


def save_result(result: GridResult, folder: str | os.PathLike) -> Path:
    """Write a search's result into ``folder`` (NumPy files, no pickles; :func:`load_result`
    reads it back exactly: NaN, inf, empty strings and dtypes included)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_npz_atomic(folder / "labels.npz", {"labels": result.labels, "materials": result.materials.astype(str)})
    for name in _TABLES:
        frame = getattr(result, name)
        cols = {f"c{i}": _plain(frame[c].to_numpy()) for i, c in enumerate(frame.columns)}
        save_npz_atomic(folder / f"{name}.npz", {**cols, "__columns__": np.array(list(frame.columns), dtype=str)})
    write_json_atomic(folder / "result.json", {"spec": result.spec.key(), "models": list(result.models),
                                               "warnings": list(result.warnings), "timings": result.timings})
    return folder


def _plain(values: np.ndarray) -> np.ndarray:
    """Strings as a fixed-width unicode array (storable without pickle)."""
    return values.astype(str) if values.dtype == object else values


def load_result(folder: str | os.PathLike) -> GridResult:
    """Read a result :func:`save_result` wrote."""
    folder = Path(folder)
    meta = json.loads((folder / "result.json").read_text())
    tables = {}
    for name in _TABLES:
        with np.load(folder / f"{name}.npz", allow_pickle=False) as z:
            columns = z["__columns__"].tolist()
            tables[name] = pd.DataFrame({c: z[f"c{i}"] for i, c in enumerate(columns)})
    with np.load(folder / "labels.npz", allow_pickle=False) as z:
        labels, materials = z["labels"], z["materials"]
    return GridResult(spec_from_key(meta["spec"]), meta["models"], materials, labels, tables["per_model"],
                      tables["cells"], tables["ranking"], meta["warnings"], meta["timings"])
