"""Model selection: the study's nested grid search over models x HDBSCAN parameters.

For every model and every cell (min_samples, min_cluster_size) of the grid, HDBSCAN clusters the
model's fingerprints under one metric, and each clustering gets its number of clusters and noise
points, its DBCV and its S_Dbw; then, per cell, every model gets its mean AMI with all the other
models (noise as a cluster, and noise removed). Per cell the best DBCV and the best mean AMIs name
their model.

Work is shared where the maths allows: one distance matrix (and its logarithm) per model, one
mutual-reachability single-linkage tree per (model, min_samples) cut at every min_cluster_size,
scores computed once per distinct labeling. Models run in parallel (joblib), then cells.

Results are cached on disk per model (key: the fingerprint file's SHA-256, the material order and
the grid parameters) and for the AMI stage (key: every model's key), so a repeated search only
hashes files and reads the cache; a changed fingerprint file is recomputed.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from backend.cache import default_cache_dir
from backend.errors import ParameterError
from backend.progress import ProgressFn, null_progress

PAPER_RANGE = tuple(range(2, 11))
CACHE_VERSION = 3  # 3: DBCV takes hdbscan.validity's tree among equal-weight MSTs
#: a model whose distinct fingerprints number fewer than this fraction of its materials has
#: collapsed (its encoder maps almost everything to a few points; on the shared data one model
#: has 2 distinct fingerprints for 546 materials): its clusters of duplicates get DBCV = 1 in
#: every cell, so it is flagged and left out of the cell maxima
COLLAPSED_FRACTION = 0.1
#: a clustering takes part in the cell maxima only with at least this many clusters
MIN_CLUSTERS = 2
#: model fields a filter may name, and the catalog attribute each reads
FILTER_KEYS = {"arch": "arch", "latent": "latent", "window": "window", "epochs": "epochs", "steps": "epochs",
               "split": "split", "width": "line_width", "line_width": "line_width", "id": "model_id"}


@dataclass(frozen=True)
class GridSpec:
    """The HDBSCAN grid: every ``min_samples`` x every ``min_cluster_size``, one selection method
    and one metric (the paper's: 2..10 x 2..10, leaf, Minkowski p = 0.2)."""

    min_samples: tuple = PAPER_RANGE
    min_cluster_size: tuple = PAPER_RANGE
    selection: str = "leaf"
    metric: str = "minkowski"
    p: float = 0.2

    def validate(self, n_samples: int | None = None) -> "GridSpec":
        from backend.clustering import SELECTIONS, _check_metric

        metric, p = _check_metric(self.metric, self.p)
        if self.selection not in SELECTIONS:
            raise ParameterError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        ms = _int_tuple("min_samples", self.min_samples, 1)
        mcs = _int_tuple("min_cluster_size", self.min_cluster_size, 2)
        if n_samples is not None:
            if max(ms) >= n_samples:
                raise ParameterError(f"min_samples up to {max(ms)} needs more than {n_samples} materials")
            if max(mcs) > n_samples:
                raise ParameterError(f"min_cluster_size up to {max(mcs)} exceeds the {n_samples} materials")
        return dataclasses.replace(self, min_samples=ms, min_cluster_size=mcs, metric=metric, p=p)

    def key(self) -> dict:
        return {"min_samples": list(self.min_samples), "min_cluster_size": list(self.min_cluster_size),
                "selection": self.selection, "metric": self.metric, "p": self.p if self.metric == "minkowski" else None}

    def explorer_query(self, model_id: str, min_samples: int, min_cluster_size: int) -> str:
        """The explorer URL (query part) that opens ``model_id`` clustered as in this cell."""
        from backend.explorer_view import explorer_url

        return explorer_url(model=model_id, algo="hdbscan", min_cluster_size=min_cluster_size,
                            min_samples=min_samples, selection=self.selection, metric=self.metric,
                            p=self.p if self.metric == "minkowski" else None)


def _int_tuple(name: str, values, low: int) -> tuple:
    try:
        out = tuple(sorted({int(v) for v in values}))
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be integers >= {low}, got {values!r}") from None
    if not out:
        raise ParameterError(f"{name}: the range is empty")
    if out[0] < low:
        raise ParameterError(f"{name} must be integers >= {low}, got {out[0]}")
    return out


def parse_range(text: str, name: str = "range") -> tuple:
    """``'2:10'`` (inclusive), ``'2:10:2'``, ``'3,5,8'`` or ``'4'`` -> a tuple of ints."""
    text = str(text).strip()
    try:
        if ":" in text:
            parts = [int(x) for x in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            step = parts[2] if len(parts) == 3 else 1
            if step < 1 or parts[1] < parts[0]:
                raise ValueError
            return tuple(range(parts[0], parts[1] + 1, step))
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ParameterError(f"{name}: {text!r} is not a range like 2:10, 2:10:2 or 3,5,8") from None


def parse_filter(text: str | None) -> dict:
    """``'window=1,arch=50'`` -> {'window': ['1'], 'arch': ['50']}; ``|`` separates alternatives
    (``latent=2|3``); ``id=`` takes a glob."""
    terms: dict[str, list[str]] = {}
    for term in (text or "").replace(";", ",").split(","):
        term = term.strip()
        if not term:
            continue
        key, sep, value = term.partition("=")
        key = key.strip().lower()
        if not sep or not value.strip():
            raise ParameterError(f"model filter term {term!r} is not key=value (e.g. window=1,arch=50)")
        if key not in FILTER_KEYS:
            raise ParameterError(f"model filter key {key!r} is not one of {sorted(set(FILTER_KEYS))}")
        terms.setdefault(key, []).extend(v.strip() for v in value.split("|"))
    return terms


def _matches(info, key: str, wanted: list[str]) -> bool:
    value = getattr(info, FILTER_KEYS[key])
    for w in wanted:
        if key == "id":
            if fnmatch.fnmatch(info.model_id, w):
                return True
        elif key == "arch":
            w = w.lower()
            if value == w or value == f"resnet{w}":
                return True
        elif value is not None:
            try:
                if float(value) == float(w):
                    return True
            except ValueError:
                raise ParameterError(f"model filter {key}={w!r}: expected a number") from None
    return False


def select_models(catalog, filter_text: str | None = None) -> list[str]:
    """The ids of the catalog's models that match ``filter_text`` (see :func:`parse_filter`).
    Unencoded baselines are left out unless the filter asks for ``arch=unencoded``."""
    terms = parse_filter(filter_text)
    wants_unencoded = "unencoded" in [w.lower() for w in terms.get("arch", [])]
    chosen = []
    for mid, info in catalog.models.items():
        if info.is_unencoded and not wants_unencoded:
            continue
        if all(_matches(info, k, v) for k, v in terms.items()):
            chosen.append(mid)
    if not chosen:
        windows = sorted({i.window for i in catalog.models.values() if i.window is not None})
        raise ParameterError(
            f"model filter {filter_text!r} matches none of the {len(catalog.models)} models under "
            f"{catalog.root} (windows there: {windows}; keys: arch, latent, window, epochs, split, width, id)")
    return chosen


# ---- per model ----------------------------------------------------------------------------------

def evaluate_model(X: np.ndarray, spec: GridSpec) -> dict:
    """Cluster fingerprints ``X`` (n, d) in every cell of ``spec`` and score each clustering.

    Returns arrays indexed [min_samples, min_cluster_size]: ``labels`` (S, C, n) int16,
    ``n_clusters``, ``n_noise`` (S, C) int, ``dbcv``, ``s_dbw`` (S, C) float; ``distinct``: how
    many distinct fingerprints there are (see :data:`COLLAPSED_FRACTION`).
    """
    from backend.clustering import distance_matrix, hdbscan_labels, single_linkage_tree
    from backend.validation import dbcv, s_dbw

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
            labels = hdbscan_labels(D, tree, mcs, spec.selection)
            key = labels.tobytes()
            if key not in seen:  # neighbouring cells often give the same clustering
                seen[key] = (dbcv(D, labels, X.shape[1], log_D=log_D), s_dbw(X, labels, spec.metric, spec.p))
            out["labels"][i, j] = labels
            out["n_clusters"][i, j] = len(np.unique(labels[labels >= 0]))
            out["n_noise"][i, j] = int((labels < 0).sum())
            out["dbcv"][i, j], out["s_dbw"][i, j] = seen[key]
    return out


# ---- cache --------------------------------------------------------------------------------------

def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:24]


def _load_npz(path: Path) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError):  # missing or corrupt: recompute
        return None


def _save_npz(path: Path, arrays: dict) -> None:
    from backend.fileio import write_bytes_atomic

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes_atomic(path, buf.getvalue())


# ---- the search ---------------------------------------------------------------------------------

@dataclass
class GridResult:
    """The tables of one search.

    ``per_model``: one row per (model, min_samples, min_cluster_size): n_clusters, n_noise,
    dbcv, s_dbw, mean_ami, mean_ami_no_noise and the model's hyperparameters.
    ``cells``: one row per cell: the best DBCV, mean AMI and mean AMI without noise, and the
    model of each. ``ranking``: one row per model over the whole grid. ``labels``: (m, S, C, n)
    the clusterings, materials in the order of ``materials``. ``warnings``: what the user should
    know (e.g. AMI needs two models).
    """

    spec: GridSpec
    models: list
    materials: np.ndarray
    labels: np.ndarray
    per_model: pd.DataFrame
    cells: pd.DataFrame
    ranking: pd.DataFrame
    warnings: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    def cell(self, min_samples: int, min_cluster_size: int) -> pd.DataFrame:
        """The per-model rows of one cell."""
        t = self.per_model
        return t[(t.min_samples == min_samples) & (t.min_cluster_size == min_cluster_size)]

    def cell_labels(self, model_id: str, min_samples: int, min_cluster_size: int) -> np.ndarray:
        i = self.models.index(model_id)
        return self.labels[i, self.spec.min_samples.index(min_samples),
                           self.spec.min_cluster_size.index(min_cluster_size)].astype(np.int64)


def grid_search(catalog, model_ids, spec: GridSpec | None = None, cache_dir: str | os.PathLike | None = None,
                n_jobs: int | None = None, progress: ProgressFn | None = None, use_cache: bool = True) -> GridResult:
    """Run (or read from the cache) the grid search over ``model_ids`` of ``catalog``.

    ``n_jobs``: worker processes (default: all cores); ``progress(done, total, stage=...)`` is
    called as models and cells finish. Materials are matched by name across models; only the
    materials every model has take part (a warning says how many were left out).
    """
    import time

    from joblib import Parallel, delayed

    progress = progress or null_progress
    t0 = time.perf_counter()
    model_ids = list(dict.fromkeys(model_ids))
    spec, materials, X_of, keys, cache, warnings = _prepare(catalog, model_ids, spec, cache_dir)
    n_jobs = n_jobs or os.cpu_count() or 1
    t_hash = time.perf_counter() - t0

    per: dict[str, dict] = {}
    todo = []
    for mid in model_ids:
        hit = _load_npz(cache / f"{mid}-{keys[mid]}.npz") if use_cache else None
        if hit is not None:
            per[mid] = hit
        else:
            todo.append(mid)
    total = len(model_ids) + len(spec.min_samples) * len(spec.min_cluster_size)
    done = len(per)
    progress(done, total, stage="models")
    if todo:
        jobs = Parallel(n_jobs=min(n_jobs, len(todo)), return_as="generator")(
            delayed(evaluate_model)(X_of[mid], spec) for mid in todo)
        for mid, res in zip(todo, jobs):
            per[mid] = res
            _save_npz(cache / f"{mid}-{keys[mid]}.npz", res)
            done += 1
            progress(done, total, stage="models", model=mid)
    t_models = time.perf_counter() - t0 - t_hash

    S, C, m = len(spec.min_samples), len(spec.min_cluster_size), len(model_ids)
    labels = np.stack([per[mid]["labels"] for mid in model_ids])  # (m, S, C, n)
    ami_key = _digest({"v": CACHE_VERSION, "models": [[mid, keys[mid]] for mid in model_ids]})
    ami_path = cache / f"ami-{ami_key}.npz"
    hit = _load_npz(ami_path) if use_cache else None
    if m < 2:
        warnings.append("AMI compares models: with one model the mean AMI columns are empty (NaN)")
        ami = np.full((S, C, m), np.nan)
        ami_nn = np.full((S, C, m), np.nan)
    elif hit is not None:
        ami, ami_nn = hit["ami"], hit["ami_no_noise"]
    else:
        cells = [(i, j) for i in range(S) for j in range(C)]
        ami, ami_nn = np.zeros((S, C, m)), np.zeros((S, C, m))
        chunk = max(1, len(cells) // (4 * n_jobs))
        groups = [cells[k:k + chunk] for k in range(0, len(cells), chunk)]
        runs = Parallel(n_jobs=min(n_jobs, len(groups)), return_as="generator")(
            delayed(_cells_ami)(labels[:, [i for i, _ in g], [j for _, j in g]]) for g in groups)
        for g, res in zip(groups, runs):
            for (i, j), (a, b) in zip(g, res):
                ami[i, j], ami_nn[i, j] = a, b
            done += len(g)
            progress(done, total, stage="ami")
        _save_npz(ami_path, {"ami": ami, "ami_no_noise": ami_nn})
    progress(total, total, stage="done")
    t_ami = time.perf_counter() - t0 - t_hash - t_models

    per_model = _per_model_table(catalog, model_ids, spec, per, ami, ami_nn)
    cells_t = _cells_table(per_model, spec)
    ranking = _ranking_table(per_model, cells_t)
    collapsed = sorted(per_model.model_id[per_model.collapsed].unique())
    if collapsed:
        warnings.append(f"left out of the cell maxima: {len(collapsed)} collapsed model(s) with fewer than "
                        f"{COLLAPSED_FRACTION:.0%} distinct fingerprints ({', '.join(collapsed)}); their "
                        "clusters of identical points score DBCV = 1")
    if (per_model.n_clusters < 2).all():
        warnings.append("no clustering in the grid has two clusters: DBCV is -1 (undefined) everywhere")
    timings = {"hash_s": round(t_hash, 3), "models_s": round(t_models, 3), "ami_s": round(t_ami, 3),
               "total_s": round(time.perf_counter() - t0, 3), "models_computed": len(todo),
               "ami_cached": hit is not None}
    return GridResult(spec, model_ids, materials, labels, per_model, cells_t, ranking, warnings, timings)


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
    materials_key = _digest(materials.tolist())
    for mid, d in zip(model_ids, datas):
        info = catalog.get(mid)
        source = info.fingerprint_path or info.embedding_path
        order = pd.Index(d.names).get_indexer(materials)
        X_of[mid] = d.X[order]
        keys[mid] = _digest({"v": CACHE_VERSION, "file": file_sha256(source), "materials": materials_key,
                             "spec": spec.key()})
    return spec, materials, X_of, keys, cache, warnings


def evaluate_models_into_cache(catalog, model_ids, spec: GridSpec | None = None, start: int = 0,
                               cache_dir: str | os.PathLike | None = None,
                               progress: ProgressFn | None = None) -> dict:
    """One part of a search spread over workers: evaluate the models of the search ``model_ids``
    whose results are not in the cache folder, one at a time from the ``start``-th (so that
    parts started at different models meet late), each under a lock in the cache folder that
    another part holding it makes this one skip (on shared storage: across machines). Then
    :func:`grid_search` on the same models finds every model in the cache. Returns how many
    models this part computed and skipped."""
    from backend.fileio import try_file_lock

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
                _save_npz(path, evaluate_model(X_of[mid], spec))
                computed.append(mid)
        progress(k + 1, len(order), stage="models", model=mid)
    return {"computed": computed, "skipped": skipped}


def _cells_ami(labelings: np.ndarray) -> list:
    """``labelings`` (m, g, n): the m models' clusterings in g cells -> [(mean AMI, without noise)]."""
    from backend.validation import mean_ami

    cells = (labelings[:, c].astype(np.int64) for c in range(labelings.shape[1]))
    return [(mean_ami(L, "cluster"), mean_ami(L, "remove")) for L in cells]


def _per_model_table(catalog, model_ids, spec, per, ami, ami_nn) -> pd.DataFrame:
    S, C = len(spec.min_samples), len(spec.min_cluster_size)
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
            "collapsed": bool(int(r["distinct"]) < COLLAPSED_FRACTION * r["labels"].shape[-1]),
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


def _cells_table(per_model: pd.DataFrame, spec: GridSpec) -> pd.DataFrame:
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


def _ranking_table(per_model: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
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


def external_table(result: GridResult, catalog, column: str, min_samples: int | None = None,
                   min_cluster_size: int | None = None) -> pd.DataFrame:
    """Accuracy, NMI and ARI (with noise as a cluster and without noise) of every model's
    clustering against the ``column`` of the data root's labels.csv, in one cell or all."""
    from backend.labels import load_labels
    from backend.validation import external_scores

    truth = load_labels(catalog, column, result.materials)
    rows = []
    for ms in result.spec.min_samples if min_samples is None else (min_samples,):
        for mcs in result.spec.min_cluster_size if min_cluster_size is None else (min_cluster_size,):
            for mid in result.models:
                scores = external_scores(truth, result.cell_labels(mid, ms, mcs))
                rows.append({"model_id": mid, "min_samples": ms, "min_cluster_size": mcs, **scores})
    return pd.DataFrame(rows)


def search_key(catalog, model_ids, spec: GridSpec) -> str:
    """What identifies a search's result: the root, the models (with their files' signatures, so
    that a rewritten file makes a new search) and the grid."""
    from backend.cache import file_signature

    files = []
    for mid in model_ids:
        info = catalog.get(mid)
        files.append([file_signature(p) for p in (info.fingerprint_path, info.embedding_path) if p is not None])
    return _digest({"v": CACHE_VERSION, "root": str(catalog.root), "models": list(model_ids),
                    "spec": spec.validate().key(), "files": files})


def spec_from_key(key: dict) -> GridSpec:
    """The inverse of :meth:`GridSpec.key`."""
    return GridSpec(min_samples=tuple(key["min_samples"]), min_cluster_size=tuple(key["min_cluster_size"]),
                    selection=key["selection"], metric=key["metric"],
                    p=key["p"] if key.get("p") is not None else GridSpec.p).validate()


_TABLES = ("per_model", "cells", "ranking")


def save_result(result: GridResult, folder: str | os.PathLike) -> Path:
    """Write a search's result into ``folder`` (NumPy files, no pickles; :func:`load_result`
    reads it back exactly: NaN, inf, empty strings and dtypes included)."""
    from backend.fileio import write_json_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _save_npz(folder / "labels.npz", {"labels": result.labels, "materials": result.materials.astype(str)})
    for name in _TABLES:
        frame = getattr(result, name)
        cols = {f"c{i}": _plain(frame[c].to_numpy()) for i, c in enumerate(frame.columns)}
        _save_npz(folder / f"{name}.npz", {**cols, "__columns__": np.array(list(frame.columns), dtype=str)})
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
