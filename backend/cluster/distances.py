"""Distances between fingerprints: the one place the clustering metric is chosen and checked.

Minkowski with any p > 0 (the study's p = 0.2 is no metric, but what the study uses) or Euclidean.
:func:`check_metric` validates a (metric, p) pair for every caller; :func:`distance_matrix` and
:func:`distances_from` compute with the same floating-point operations, so a row of the matrix
equals the distances from that row.
"""

from __future__ import annotations

import threading

import numpy as np

from backend.errors import ParameterError

METRICS = ("euclidean", "minkowski")


#: above this many materials a full distance matrix (8 n^2 bytes) is refused
MAX_PRECOMPUTED = 20_000


def distance_matrix(X: np.ndarray, metric: str = "minkowski", p: float = 0.2) -> np.ndarray:
    """Pairwise distances of the rows of ``X`` (n, d) -> (n, n) float64, read-only.

    ``metric='minkowski'`` uses ``(sum_k |x_k - y_k|^p)^(1/p)`` for any p > 0 (not a metric for
    p < 1, but what the study uses); ``'euclidean'`` is p = 2.
    """
    metric, p = check_metric(metric, p)
    X = np.ascontiguousarray(X, dtype=np.float64)  # (a DataFrame's values are column-major: 1.3x slower)
    if X.ndim != 2:
        raise ParameterError(f"X must be a 2-D array (n_samples, n_features), got shape {X.shape}")
    if len(X) > MAX_PRECOMPUTED:
        raise ParameterError(
            f"{len(X)} materials are too many for a full Minkowski distance matrix "
            f"({8 * len(X) ** 2 / 1e9:.0f} GB; limit {MAX_PRECOMPUTED}); use metric='euclidean'")
    if metric == "euclidean" or p == 2:
        from scipy.spatial.distance import pdist, squareform  # (0.6 s to import: only here)

        D = squareform(pdist(X, "euclidean"))
    else:
        # the upper triangle, a block of rows at a time (one NumPy pass per block, not per row:
        # the Python loop no longer holds the GIL that other models' threads want); mirrored
        n, d = X.shape
        XT = np.ascontiguousarray(X.T)
        D = np.zeros((n, n))
        rows = int(max(1, min(64, 300_000 // max(1, n * d))))  # temporaries of ~2.4 MB: in cache
        for i0 in range(0, n - 1, rows):
            i1 = min(i0 + rows, n - 1)
            S = _minkowski_sums(XT[:, i0 + 1:], X[i0:i1], p)  # (i1 - i0, n - i0 - 1)
            for r in range(i0, i1):
                D[r, r + 1:] = S[r - i0, r - i0:]
        np.power(D, 1.0 / p, out=D)
        D += D.T
    D.setflags(write=False)
    return D


#: per thread: the scratch array of :func:`_minkowski_sums` (blocks of the matrix are ~2.4 MB; a
#: fresh allocation each block cost page faults, a fifth of the matrix time on two threads)
_SCRATCH = threading.local()


_SCRATCH_MAX = 1 << 20  # elements (8 MB) kept per thread; larger calls allocate and let go


_TINY = float(np.finfo(np.float64).tiny)


def _scratch(size: int) -> np.ndarray:
    if size > _SCRATCH_MAX:
        return np.empty(size)
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.size < size:
        buf = _SCRATCH.buf = np.empty(max(size, 1 << 16))
    return buf[:size]


def _minkowski_sums(YT: np.ndarray, x: np.ndarray, p: float) -> np.ndarray:
    """``sum_k |y_k - x_k|^p`` for every column ``y`` of ``YT`` (d, m) and every row ``x`` of
    ``x`` (b, d): (b, m). Laid out (b, d, m), so that NumPy's inner loops run along the m rows
    (1.5x the speed of (b, m, d) at d = 49-147), and summed over k in order. The power as
    ``exp(p log|.|)``: NumPy's SIMD log and exp are ~1.7x its power (and that several times
    scipy's per-element ``pow`` in ``pdist(..., 'minkowski')``), within two ulps of it. Every pair
    gets the same operations whatever the block, so a row of :func:`distance_matrix` equals
    :func:`distances_from`."""
    b, d = x.shape
    m = YT.shape[1]
    # C order whatever ``YT``'s strides (a transposed view needs no copy): the sum over k then
    # runs in the same order for every caller
    diff = _scratch(b * d * m).reshape(b, d, m)
    np.subtract(YT[None, :, :], x[:, :, None], out=diff)
    np.abs(diff, out=diff)
    # equal coordinates (a tenth of the pairs' in trained fingerprints) would take log's and
    # exp's slow path for log(0) = -inf
    floor = _TINY ** p
    if floor < 1e-45:
        # raised to the smallest normal number, whose power (6.7e-62 at p = 0.2) vanishes in any
        # sum that has one coordinate apart by more than ~1e-200: the same sums, bit for bit, as
        # zeroing them, at half the passes; a sum of only such terms is an equal pair: 0
        np.maximum(diff, _TINY, out=diff)
        np.log(diff, out=diff)
        diff *= p
        np.exp(diff, out=diff)
        out = diff.sum(axis=1)
        out[out <= 2 * d * floor] = 0.0
        return out
    # small p (the floor's power no longer vanishes): computed as log(1) and zeroed after
    zero = diff == 0
    np.add(diff, zero, out=diff)
    np.log(diff, out=diff)
    diff *= p
    np.exp(diff, out=diff)
    np.logical_not(zero, out=zero)
    np.multiply(diff, zero, out=diff)
    return diff.sum(axis=1)


def distances_from(X: np.ndarray, index: int, *, metric: str = "minkowski", p: float = 0.2) -> np.ndarray:
    """Distances (n,) from row ``index`` of ``X`` (n, d) to every row, by the same formula (and
    the same floating-point operations) as the matching row of :func:`distance_matrix`."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    return distances_to(X, X[index:index + 1], metric=metric, p=p)[0]


def distances_to(X: np.ndarray, Q: np.ndarray, *, metric: str = "minkowski", p: float = 0.2) -> np.ndarray:
    """Distances (m, n) from each row of ``Q`` (m, d) to every row of ``X`` (n, d): new points
    measured against a model's fingerprints by the formula of :func:`distance_matrix`."""
    metric, p = check_metric(metric, p)
    X = np.ascontiguousarray(X, dtype=np.float64)
    Q = np.ascontiguousarray(np.atleast_2d(Q), dtype=np.float64)
    if Q.shape[1] != X.shape[1]:
        raise ParameterError(f"points of {Q.shape[1]} numbers cannot be measured against fingerprints of {X.shape[1]}")
    if metric == "euclidean" or p == 2:
        from scipy.spatial.distance import cdist  # (0.5 s to import: only here)

        return cdist(Q, X, "euclidean")
    # a block of queries at a time: the (b, d, n) scratch stays near 64 MB at any n
    step = max(1, (8 << 20) // max(1, X.shape[0] * X.shape[1]))
    out = np.vstack([_minkowski_sums(X.T, Q[i:i + step], p) for i in range(0, len(Q), step)])
    return np.power(out, 1.0 / p, out=out)


def check_metric(metric: str, p: float | None) -> tuple[str, float]:
    if metric not in METRICS:
        raise ParameterError(f"metric must be one of {METRICS}, got {metric!r}")
    if metric == "euclidean":
        return metric, 2.0
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise ParameterError(f"p must be a positive number for the Minkowski metric, got {p!r}") from None
    if not np.isfinite(p) or p <= 0:
        raise ParameterError(f"p must be a positive number for the Minkowski metric, got {p!r}")
    return metric, p
