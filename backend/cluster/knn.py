"""k-nearest-neighbour graphs under the clustering metric, without an n x n matrix.

A graph is a structured array ``(n, k)`` with fields ``idx`` (int32: the neighbour's row) and
``dist`` (float64: its distance), each row sorted by distance, the point itself left out. It is
what the graph path of HDBSCAN (:mod:`backend.cluster.graph_hdbscan`) needs, and what nearest-neighbour
questions can reuse.

Two ways to build one:

* ``exact``: brute force in blocks of rows, float32 arithmetic (NumPy's SIMD ``power``) to rank
  candidates, then the chosen neighbours' distances recomputed in float64. Cost n^2 d.
* ``nndescent``: pynndescent's NN-descent (Dong et al. 2011) with the metric compiled for the
  given p (float32 ``powf``: twice as fast as pynndescent's generic Minkowski, same neighbours),
  then float64 distances for the found neighbours. Cost about n^1.1 d k^2, plus ~30 s of numba
  compilation in each fresh process.

``auto`` takes the exact way up to :data:`EXACT_KNN_MAX` points. Minkowski with p < 1 is not a
metric (no triangle inequality); NN-descent does not need one, it only ranks candidates.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from backend.cluster.distances import check_metric
from backend.errors import ParameterError

#: brute force up to this many points (below, it beats NN-descent and its compilation)
EXACT_KNN_MAX = 10_000
#: neighbours per point kept in a model's graph: enough for min_samples up to this, and for a
#: spanning tree close to the exact one (see bench/scale.py's agreement check)
DEFAULT_K = 15
GRAPH_DTYPE = np.dtype([("idx", "<i4"), ("dist", "<f8")])
METHODS = ("auto", "exact", "nndescent")


def _check(X, k: int, metric: str, p: float):
    metric, p = check_metric(metric, p)
    X = np.asarray(X)
    if X.ndim != 2 or len(X) < 2:
        raise ParameterError(f"X must be a 2-D array of at least 2 rows, got shape {X.shape}")
    k = int(k)
    if not 1 <= k:
        raise ParameterError(f"k must be >= 1, got {k}")
    return X, min(k, len(X) - 1), metric, p


def pair_distances(X: np.ndarray, rows: np.ndarray, cols: np.ndarray, *, p: float) -> np.ndarray:
    """float64 distances between ``X[rows[i]]`` and ``X[cols[i, j]]``: (len(rows), cols.shape[1]);
    the formula of :func:`backend.cluster.distance_matrix` (Minkowski p; p = 2 Euclidean)."""
    out = np.empty(cols.shape, dtype=np.float64)
    step = max(1, 2_000_000 // max(1, cols.shape[1] * X.shape[1]))
    for s in range(0, len(rows), step):
        a = np.asarray(X[rows[s:s + step]], dtype=np.float64)[:, None, :]
        b = np.asarray(X[cols[s:s + step]], dtype=np.float64)
        d = np.abs(a - b)
        if p == 2:
            out[s:s + step] = np.sqrt(np.einsum("ijk,ijk->ij", d, d))
        else:
            np.power(d, p, out=d)
            out[s:s + step] = d.sum(-1) ** (1.0 / p)
    return out


def _finish(X: np.ndarray, idx: np.ndarray, k: int, p: float) -> np.ndarray:
    """Drop each point from its own list (or the last candidate when a duplicate took its
    place), recompute the distances in float64 and sort each row by them."""
    n = len(X)
    rows = np.arange(n)
    is_self = idx == rows[:, None]
    has_self = is_self.any(1)
    drop = np.where(has_self, np.argmax(is_self, 1), idx.shape[1] - 1)
    keep = np.ones(idx.shape, dtype=bool)
    keep[rows, drop] = False
    idx = idx[keep].reshape(n, idx.shape[1] - 1)[:, :k]
    dist = pair_distances(X, rows, idx, p=p)
    order = np.lexsort((idx, dist), axis=1)  # by distance, ties by row
    graph = np.empty((n, idx.shape[1]), dtype=GRAPH_DTYPE)
    graph["idx"] = np.take_along_axis(idx, order, 1)
    graph["dist"] = np.take_along_axis(dist, order, 1)
    return graph


def _exact_candidates(X: np.ndarray, k: int, p: float, progress=None) -> np.ndarray:
    """The k + 1 nearest rows of every row (itself included), ranked in float32."""
    Xf = np.ascontiguousarray(X, dtype=np.float32)
    n, d = Xf.shape
    block = max(1, min(256, 4_000_000 // max(1, n * d)))
    starts = list(range(0, n, block))
    out = np.empty((n, k + 1), dtype=np.int64)
    pf = np.float32(p)

    def one(s):
        a = Xf[s:s + block, None, :]
        if p == 2:
            diff = a - Xf[None]
            sums = np.einsum("ijk,ijk->ij", diff, diff)
        else:
            diff = np.abs(a - Xf[None])
            np.power(diff, pf, out=diff)
            sums = diff.sum(-1)
        part = np.argpartition(sums, k, axis=1)[:, : k + 1]
        out[s:s + block] = part
        return len(part)

    done = 0
    workers = max(1, min(len(starts), _threads()))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for count in pool.map(one, starts):
            done += count
            if progress is not None:
                progress(done, n, stage="exact neighbours")
    return out


def _threads() -> int:
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
    except ValueError:
        return os.cpu_count() or 1


def _minkowski_metric(p: float):
    """``sum |x_i - y_i|^p`` compiled for this p (a monotone function of the distance: the
    ranking is the same, the p-th root is left for the float64 pass)."""
    import numba  # numba: ~0.3 s to import, and compiling takes longer; only for a graph

    pf = np.float32(p)

    @numba.njit(fastmath=True)
    def minkowski_p(x, y):
        r = np.float32(0.0)
        for i in range(x.shape[0]):
            r += math.pow(abs(x[i] - y[i]), pf)
        return r

    return minkowski_p


def _nndescent_candidates(X: np.ndarray, k: int, metric: str, p: float, seed: int = 0) -> np.ndarray:
    from pynndescent import NNDescent  # pynndescent: ~2.5 s to import (numba); only for large roots

    Xf = np.ascontiguousarray(X, dtype=np.float32)
    kw = {"metric": "euclidean"} if p == 2 else {"metric": _minkowski_metric(p)}
    index = NNDescent(Xf, n_neighbors=k + 1, random_state=seed, n_jobs=_threads(), low_memory=True,
                      compressed=True, verbose=False, **kw)
    idx, _ = index.neighbor_graph
    return np.asarray(idx, dtype=np.int64)


def knn_graph(X: np.ndarray, k: int = DEFAULT_K, *, metric: str = "minkowski", p: float = 0.2,
              method: str = "auto", progress=None) -> np.ndarray:
    """The k-nearest-neighbour graph of the rows of ``X`` (n, d) under ``metric`` (see the module
    docstring): a structured (n, k) array with ``idx`` and ``dist``. ``progress(done, total,
    stage=...)`` as everywhere."""
    X, k, metric, p = _check(X, k, metric, p)
    if method not in METHODS:
        raise ParameterError(f"method must be one of {METHODS}, got {method!r}")
    if method == "auto":
        method = "exact" if len(X) <= EXACT_KNN_MAX else "nndescent"
    if method == "exact" or k + 1 >= len(X):
        cand = _exact_candidates(X, k, p, progress)
    else:
        if progress is not None:
            progress(0, 2, stage="nn-descent")
        cand = _nndescent_candidates(X, k, metric, p)
        if progress is not None:
            progress(1, 2, stage="exact distances")
    graph = _finish(X, cand, k, p)
    if progress is not None:
        progress(1, 1, stage="neighbour graph")
    return graph


def knn_from_distances(D: np.ndarray, k: int) -> np.ndarray:
    """The k-nearest-neighbour graph read off a full distance matrix ``D`` (n, n) (ties: the
    lower index first): with k = n - 1 the graph is complete."""
    D = np.asarray(D)
    n = len(D)
    k = min(int(k), n - 1)
    masked = np.array(D, dtype=np.float64)
    np.fill_diagonal(masked, np.inf)
    order = np.argsort(masked, axis=1, kind="stable")[:, :k]
    graph = np.empty((n, k), dtype=GRAPH_DTYPE)
    graph["idx"] = order
    graph["dist"] = np.take_along_axis(masked, order, 1)
    return graph
