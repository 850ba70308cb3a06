"""The study's nested grid search over models x HDBSCAN parameters (model selection).

For every model and every cell (min_samples, min_cluster_size) of the grid, HDBSCAN clusters the
model's fingerprints under one metric, and each clustering gets its number of clusters and noise
points, its DBCV and its S_Dbw; then, per cell, every model gets its mean AMI with all the other
models (noise as a cluster, and noise removed). Per cell the best DBCV and the best mean AMIs name
their model (:mod:`backend.evaluate.tables`).

Work is shared where the maths allows: one distance matrix (and its logarithm) per model, one
mutual-reachability single-linkage tree per (model, min_samples) cut at every min_cluster_size,
scores computed once per distinct labeling. Models run in parallel (joblib), then cells.

Results are cached on disk per model (key: the fingerprint file's SHA-256, the material order and
the grid parameters) and for the AMI stage (key: every model's key), so a repeated search only
hashes files and reads the cache; a changed fingerprint file is recomputed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from backend.cache import default_cache_dir
from backend.cluster.algorithms import hdbscan_labels, single_linkage_tree
from backend.cluster.distances import distance_matrix
from backend.cluster.validation import dbcv, mean_ami, s_dbw
from backend.errors import ParameterError
from backend.evaluate.spec import CACHE_VERSION, COLLAPSED_FRACTION, GridResult, GridSpec
from backend.evaluate.tables import cells_table, per_model_table, ranking_table
from backend.fileio import file_sha256, json_digest, load_npz, save_npz_atomic, try_file_lock
from backend.progress import ProgressFn, null_progress


def evaluate_model(X: np.ndarray, spec: GridSpec) -> dict:
    """Cluster fingerprints ``X`` (n, d) in every cell of ``spec`` and score each clustering.

    Returns arrays indexed [min_samples, min_cluster_size]: ``labels`` (S, C, n) int16,
    ``n_clusters``, ``n_noise`` (S, C) int, ``dbcv``, ``s_dbw`` (S, C) float; ``distinct``: how
    many distinct fingerprints there are (see :data:`COLLAPSED_FRACTION`).
    """
    X = np.asarray(X, dtype=np.float64)
    D = distance_matrix(X, spec.metric, spec.p)
    with np.errstate(divide="ignore"):
        log_D = np.log(D)
    S, C, n = len(spec.min_samples), len(spec.min_cluster_size), len(X)
    out = {"labels": np.empty((S, C, n), dtype=np.int16), "n_clusters": np.zeros((S, C), dtype=np.int64),
           "n_noise": np.zeros((S, C), dtype=np.int64), "dbcv": np.zeros((S, C)), "s_dbw": np.zeros((S, C))}
    out["distinct"] = np.array(len(np.unique(X, axis=0)))
    seen: dict[bytes, tuple[float, float]] = {}
    for i, ms in enumerate(spec.min_samples):
        tree = single_linkage_tree(D, ms)
        for j, mcs in enumerate(spec.min_cluster_size):
            labels = hdbscan_labels(D, tree, mcs, selection=spec.selection)
            key = labels.tobytes()
            if key not in seen:  # neighbouring cells often give the same clustering
                seen[key] = (dbcv(D, labels, X.shape[1], log_D=log_D), s_dbw(X, labels, metric=spec.metric, p=spec.p))
            out["labels"][i, j] = labels
            out["n_clusters"][i, j] = len(np.unique(labels[labels >= 0]))
            out["n_noise"][i, j] = int((labels < 0).sum())
            out["dbcv"][i, j], out["s_dbw"][i, j] = seen[key]
    return out


def grid_search(catalog, model_ids, spec: GridSpec | None = None, *, cache_dir: str | os.PathLike | None = None,
                n_jobs: int | None = None, progress: ProgressFn | None = None, use_cache: bool = True) -> GridResult:
    """Run (or read from the cache) the grid search over ``model_ids`` of ``catalog``.

    ``n_jobs``: worker processes (default: all cores); ``progress(done, total, stage=...)`` is
    called as models and cells finish. Materials are matched by name across models; only the
    materials every model has take part (a warning says how many were left out).
    """
    progress = progress or null_progress
    t0 = time.perf_counter()
    model_ids = list(dict.fromkeys(model_ids))
    spec, materials, X_of, keys, cache, warnings = _prepare(catalog, model_ids, spec, cache_dir)
    n_jobs = n_jobs or os.cpu_count() or 1
    t_hash = time.perf_counter() - t0

    m = len(model_ids)
    total = m + len(spec.min_samples) * len(spec.min_cluster_size)
    per, computed = _model_results(model_ids, X_of, keys, cache, spec, n_jobs=n_jobs, use_cache=use_cache,
                                   report=lambda done, **info: progress(done, total, **info))
    t_models = time.perf_counter() - t0 - t_hash

    labels = np.stack([per[mid]["labels"] for mid in model_ids])  # (m, S, C, n)
    ami_key = json_digest({"v": CACHE_VERSION, "models": [[mid, keys[mid]] for mid in model_ids]})
    ami, ami_nn, ami_cached = _mean_amis(labels, cache / f"ami-{ami_key}.npz", n_jobs=n_jobs, use_cache=use_cache,
                                         warnings=warnings,
                                         report=lambda cells, **info: progress(m + cells, total, **info))
    progress(total, total, stage="done")
    t_ami = time.perf_counter() - t0 - t_hash - t_models

    per_model = per_model_table(catalog, model_ids, spec, per=per, ami=ami, ami_nn=ami_nn)
    cells_t = cells_table(per_model, spec)
    ranking = ranking_table(per_model, cells_t)
    warnings.extend(_score_warnings(per_model))
    timings = {"hash_s": round(t_hash, 3), "models_s": round(t_models, 3), "ami_s": round(t_ami, 3),
               "total_s": round(time.perf_counter() - t0, 3), "models_computed": len(computed),
               "ami_cached": ami_cached}
    return GridResult(spec, model_ids, materials, labels, per_model, cells_t, ranking, warnings, timings)


def _model_results(model_ids, X_of, keys, cache: Path, spec: GridSpec, *, n_jobs: int, use_cache: bool,
                   report) -> tuple[dict, list]:
    """Every model's :func:`evaluate_model` result, from the cache folder or computed (models in
    parallel) and saved there; and the ids of the models computed. ``report(done, stage=...)``
    as models finish."""
    per: dict[str, dict] = {}
    todo = []
    for mid in model_ids:
        hit = load_npz(cache / f"{mid}-{keys[mid]}.npz") if use_cache else None
        if hit is not None:
            per[mid] = hit
        else:
            todo.append(mid)
    report(len(per), stage="models")
    if todo:
        jobs = Parallel(n_jobs=min(n_jobs, len(todo)), return_as="generator")(
            delayed(evaluate_model)(X_of[mid], spec) for mid in todo)
        for mid, res in zip(todo, jobs):
            per[mid] = res
            save_npz_atomic(cache / f"{mid}-{keys[mid]}.npz", res)
            report(len(per), stage="models", model=mid)
    return per, todo


def _mean_amis(labels: np.ndarray, path: Path, *, n_jobs: int, use_cache: bool, warnings: list,
               report) -> tuple[np.ndarray, np.ndarray, bool]:
    """Each model's mean AMI with the others in every cell, noise as a cluster and noise removed,
    (S, C, m) each, for the models' ``labels`` (m, S, C, n): read from ``path``, or computed
    (groups of cells in parallel) and saved there; and whether they were read.
    ``report(cells_done, stage="ami")`` as groups finish."""
    m, S, C = labels.shape[:3]
    hit = load_npz(path) if use_cache else None
    if m < 2:
        warnings.append("AMI compares models: with one model the mean AMI columns are empty (NaN)")
        return np.full((S, C, m), np.nan), np.full((S, C, m), np.nan), hit is not None
    if hit is not None:
        return hit["ami"], hit["ami_no_noise"], True
    cells = [(i, j) for i in range(S) for j in range(C)]
    ami, ami_nn = np.zeros((S, C, m)), np.zeros((S, C, m))
    chunk = max(1, len(cells) // (4 * n_jobs))
    groups = [cells[k:k + chunk] for k in range(0, len(cells), chunk)]
    runs = Parallel(n_jobs=min(n_jobs, len(groups)), return_as="generator")(
        delayed(_cells_ami)(labels[:, [i for i, _ in g], [j for _, j in g]]) for g in groups)
    done = 0
    for g, res in zip(groups, runs):
        for (i, j), (a, b) in zip(g, res):
            ami[i, j], ami_nn[i, j] = a, b
        done += len(g)
        report(done, stage="ami")
    save_npz_atomic(path, {"ami": ami, "ami_no_noise": ami_nn})
    return ami, ami_nn, False


def _score_warnings(per_model: pd.DataFrame) -> list[str]:
    """What a reader of the cell maxima must know: collapsed models left out, no two clusters."""
    warnings = []
    collapsed = sorted(per_model.model_id[per_model.collapsed].unique())
    if collapsed:
        warnings.append(f"left out of the cell maxima: {len(collapsed)} collapsed model(s) with fewer than "
                        f"{COLLAPSED_FRACTION:.0%} distinct fingerprints ({', '.join(collapsed)}); their "
                        "clusters of identical points score DBCV = 1")
    if (per_model.n_clusters < 2).all():
        warnings.append("no clustering in the grid has two clusters: DBCV is -1 (undefined) everywhere")
    return warnings


def _prepare(catalog, model_ids, spec, cache_dir):
    """What every part of a search needs: the validated spec, the materials every model has
    (sorted), each model's fingerprints in that order and its cache key, the cache folder and
    the warnings so far."""
    if not model_ids:
        raise ParameterError("no models to evaluate")
    warnings: list[str] = []
    datas = [catalog.load(mid) for mid in model_ids]
    common = set(datas[0].names)
    for d in datas[1:]:
        common &= set(d.names)
    materials = np.array(sorted(common))
    if len(materials) < 3:
        raise ParameterError(f"the models share only {len(materials)} materials; a grid search needs at least 3")
    left_out = max(len(d.names) for d in datas) - len(materials)
    if left_out:
        warnings.append(f"{left_out} materials are missing from some models and were left out")
    spec = (spec or GridSpec()).validate(len(materials))
    cache = (Path(cache_dir) if cache_dir else default_cache_dir()) / "evaluate"
    X_of, keys = {}, {}
    materials_key = json_digest(materials.tolist())
    for mid, d in zip(model_ids, datas):
        info = catalog.get(mid)
        source = info.fingerprint_path or info.embedding_path
        order = pd.Index(d.names).get_indexer(materials)
        X_of[mid] = d.X[order]
        keys[mid] = json_digest({"v": CACHE_VERSION, "file": file_sha256(source), "materials": materials_key,
                             "spec": spec.key()})
    return spec, materials, X_of, keys, cache, warnings


def evaluate_models_into_cache(catalog, model_ids, spec: GridSpec | None = None, *, start: int = 0,
                               cache_dir: str | os.PathLike | None = None,
                               progress: ProgressFn | None = None) -> dict:
    """One part of a search spread over workers: evaluate the models of the search ``model_ids``
    whose results are not in the cache folder, one at a time from the ``start``-th (so that
    parts started at different models meet late), each under a lock in the cache folder that
    another part holding it makes this one skip (on shared storage: across machines). Then
    :func:`grid_search` on the same models finds every model in the cache. Returns how many
    models this part computed and skipped."""
    progress = progress or null_progress
    model_ids = list(dict.fromkeys(model_ids))
    spec, _, X_of, keys, cache, _ = _prepare(catalog, model_ids, spec, cache_dir)
    order = model_ids[start % len(model_ids):] + model_ids[: start % len(model_ids)]
    computed, skipped = [], []
    for k, mid in enumerate(order):
        path = cache / f"{mid}-{keys[mid]}.npz"
        if path.is_file():
            continue
        with try_file_lock(path.with_suffix(".lock")) as mine:
            if not mine:
                skipped.append(mid)  # another part is on it
            elif not path.is_file():
                save_npz_atomic(path, evaluate_model(X_of[mid], spec))
                computed.append(mid)
        progress(k + 1, len(order), stage="models", model=mid)
    return {"computed": computed, "skipped": skipped}


def _cells_ami(labelings: np.ndarray) -> list:
    """``labelings`` (m, g, n): the m models' clusterings in g cells -> [(mean AMI, without noise)]."""
    cells = (labelings[:, c].astype(np.int64) for c in range(labelings.shape[1]))
    return [(mean_ami(L, "cluster"), mean_ami(L, "remove")) for L in cells]


