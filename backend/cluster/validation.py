"""Validation of clusterings: internal scores (DBCV, S_Dbw), agreement between clusterings (AMI)
and external scores against known labels (accuracy, NMI, ARI).

Arrays in, floats out. ``labels`` are int arrays of shape (n,) with ``-1`` for noise; ``D`` is
the (n, n) distance matrix of :func:`backend.cluster.distance_matrix`, so every score uses the
metric the clustering used.

Values where a score is undefined (documented once, here, and used by the grid search):

* DBCV needs two clusters: fewer gives ``-1.0``, its worst value.
* S_Dbw needs two groups (noise counts as one): fewer gives ``inf``, its worst value.
* AMI with noise removed compares only the points that are non-noise in both labelings; with
  fewer than two such points there is nothing to agree on and it is ``0.0``.
"""

from __future__ import annotations

import math

import numpy as np

from backend.cluster import private_api
from backend.cluster.distances import check_metric
from backend.cluster.mst import prim_mst
from backend.errors import ParameterError

#: DBCV of a clustering with fewer than two clusters (undefined; the worst value)
DBCV_UNDEFINED = -1.0
#: S_Dbw of a clustering with fewer than two groups (undefined; the worst value)
SDBW_UNDEFINED = math.inf
#: S_Dbw's lambda (Tong & Tan 2009; the default of the ``s-dbw`` package)
TONG_LAMBDA = 0.7


def _check_labels(labels, n: int, name: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ParameterError(f"{name} must have shape ({n},) to match the data, got {labels.shape}")
    return labels.astype(np.int64, copy=False)


def _check_square(D) -> np.ndarray:
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ParameterError(f"D must be a square distance matrix (n, n), got shape {D.shape}")
    return D


# ---- DBCV ---------------------------------------------------------------------------------------

def all_points_core_distances(log_D: np.ndarray, labels: np.ndarray, dim: int) -> np.ndarray:
    """DBCV's all-points core distance of every clustered point, (n,) (NaN for noise).

    ``apcd(o) = (sum_{x in C(o), x != o} d(o, x)^-dim / (|C| - 1))^(-1/dim)``, evaluated in log
    space: with Minkowski p < 1 distances reach 1e10 and ``d^-dim`` (dim = 147) underflows
    float64, which silently turns the core distances into zeros. Zero distances (duplicates)
    are left out of the sum, as in ``hdbscan.validity``. ``log_D``: ``log(D)`` (n, n).
    """
    from scipy.special import logsumexp  # (scipy's submodules are imported where used: the web process needs none)

    out = np.full(len(labels), np.nan)
    # cluster by cluster: the work is the sum of the squared cluster sizes, not n^2
    for c in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == c)
        sub = log_D[np.ix_(idx, idx)]
        ok = np.isfinite(sub)
        np.fill_diagonal(ok, False)
        with np.errstate(invalid="ignore"):
            lse = logsumexp(np.where(ok, -float(dim) * sub, -np.inf), axis=1)
        core = np.zeros(len(idx))
        # a singleton cluster, or a point whose cluster mates are all its duplicates: 0
        good = np.isfinite(lse) & (len(idx) > 1)
        core[good] = np.exp(-(lse[good] - np.log(len(idx) - 1)) / float(dim))
        out[idx] = core
    return out


def _internal_tree(mrd: np.ndarray) -> tuple[np.ndarray, float]:
    """Internal vertices of a cluster's MST (degree > 1) and its density sparseness (the largest
    internal edge); with no internal vertex, vertex 0; with no internal edge, all edges."""
    m = len(mrd)
    if m == 1:
        return np.array([0]), 0.0
    parent, weight = prim_mst(mrd)
    child = np.arange(m)[parent >= 0]
    par = parent[parent >= 0]
    w = weight[parent >= 0]
    degree = np.bincount(np.concatenate([child, par]), minlength=m)
    internal = np.flatnonzero(degree > 1)
    if len(internal) == 0:
        internal = np.array([0])
    is_int = np.zeros(m, dtype=bool)
    is_int[internal] = True
    sel = is_int[child] & is_int[par]
    sparseness = float(w[sel].max()) if sel.any() else float(w.max())
    return internal, sparseness


def dbcv(D, labels, dim: int, *, log_D: np.ndarray | None = None, per_cluster: bool = False):
    """Density-Based Clustering Validation (Moulavi et al., SDM 2014) of ``labels`` under the
    distances ``D`` (n, n) of points in ``dim`` dimensions; in [-1, 1], higher is better.

    Noise points count in the weights (|C| / n) but belong to no cluster. Scale-invariant, and
    computed so that it stays so for any distance range (see :func:`all_points_core_distances`).
    With ``per_cluster=True`` also returns the validity of each cluster (by label, ascending).
    ``log_D``: ``log(D)`` when the caller has it (the grid search computes it once per model).
    """
    D = _check_square(D)
    labels = _check_labels(labels, len(D))
    dim = int(dim)
    if dim < 1:
        raise ParameterError(f"dim must be the number of features (>= 1), got {dim}")
    clusters = np.unique(labels[labels >= 0])
    if len(clusters) < 2:
        return (DBCV_UNDEFINED, np.array([])) if per_cluster else DBCV_UNDEFINED
    if log_D is None:
        with np.errstate(divide="ignore"):
            log_D = np.log(D)
    # relabel clusters 0..k-1 so that per-cluster arrays are dense
    dense = np.full(len(labels), -1)
    keep = labels >= 0
    dense[keep] = np.searchsorted(clusters, labels[keep])
    core = all_points_core_distances(log_D, dense, dim)
    k = len(clusters)
    sparseness = np.empty(k)
    sizes = np.empty(k, dtype=np.int64)
    internal_points, internal_cluster = [], []
    for c in range(k):
        idx = np.flatnonzero(dense == c)
        sizes[c] = len(idx)
        sub_core = core[idx]
        mrd = np.maximum(D[np.ix_(idx, idx)], np.maximum(sub_core[:, None], sub_core[None, :]))
        internal, sparseness[c] = _internal_tree(mrd)
        internal_points.append(idx[internal])
        internal_cluster.append(np.full(len(internal), c))
    pts = np.concatenate(internal_points)
    owner = np.concatenate(internal_cluster)          # sorted by cluster, as built
    starts = np.searchsorted(owner, np.arange(k))
    # density separation: the smallest mutual reachability between cluster i's internal points
    # and cluster j's, a block row at a time (memory: one cluster's internal points x all)
    sep = np.empty((k, k))
    core_pts = core[pts]
    for c in range(k):
        rows = internal_points[c]
        mrd = np.maximum(D[np.ix_(rows, pts)], np.maximum(core[rows][:, None], core_pts[None, :]))
        sep[c] = np.minimum.reduceat(mrd.min(axis=0), starts)
    np.fill_diagonal(sep, np.inf)
    min_sep = sep.min(axis=1)
    denom = np.maximum(min_sep, sparseness)
    with np.errstate(invalid="ignore", divide="ignore"):
        validity = np.where(denom > 0, (min_sep - sparseness) / denom, 0.0)
    score = float(np.sum(sizes / len(labels) * validity))
    return (score, validity) if per_cluster else score


# ---- S_Dbw --------------------------------------------------------------------------------------

def s_dbw(X, labels, *, metric: str = "euclidean", p: float = 2.0, lam: float = TONG_LAMBDA) -> float:
    """S_Dbw (Halkidi & Vazirgiannis 2001, in Tong & Tan's 2009 form) of ``labels`` on the points
    ``X`` (n, d); >= 0, lower is better. Noise (-1) counts as one more cluster.

    As the ``s-dbw`` package's default (method 'Tong', noise 'comb'): a cluster's centre is its
    member nearest (under ``metric``/``p``) to its mean; density = members within 1.96 sigma /
    sqrt(n) of a centre in every coordinate; ``Scat`` weights each cluster's spread by
    (n - n_i) / n.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ParameterError(f"X must be a 2-D array (n_samples, n_features), got shape {X.shape}")
    labels = _check_labels(labels, len(X))
    metric, p = check_metric(metric, p)
    groups, gi = np.unique(labels, return_inverse=True)
    k = len(groups)
    n = len(X)
    if k < 2 or k > n - 1:
        return SDBW_UNDEFINED
    order = np.argsort(gi, kind="stable")
    sizes = np.bincount(gi, minlength=k)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    Xs = X[order]
    members = [Xs[starts[g]: starts[g] + sizes[g]] for g in range(k)]  # views, group by group
    spread, centres = _spreads_and_centres(members, p)
    own_hw = 1.96 * spread / np.sqrt(sizes)[:, None]
    density = np.array([_in_boxes(members[g], centres[g][None], own_hw[g][None]).sum() for g in range(k)],
                       dtype=np.float64)
    if (density == 0).sum() > 1:  # cannot happen with member centres; kept for the definition
        return SDBW_UNDEFINED
    counts = _midpoint_box_counts(members, sizes, centres, spread, density, lam)
    pair_density = counts + counts.T
    ratio = pair_density / np.maximum(density[:, None], density[None, :])
    np.fill_diagonal(ratio, 0.0)
    dens_bw = ratio.sum() / (k * (k - 1))
    total_spread = np.linalg.norm(X.std(axis=0))
    scat = np.sum((n - sizes) / n * np.linalg.norm(spread, axis=1)) / (total_spread * (k - 1))
    return float(dens_bw + scat)


def _spreads_and_centres(members: list, p: float) -> tuple[np.ndarray, np.ndarray]:
    """Each group's standard deviation per coordinate and its centre (the member nearest its
    mean under Minkowski ``p``), (k, d) each."""
    from scipy.spatial.distance import cdist  # (0.5 s to import: only here)

    d = members[0].shape[1]
    spread, centres = np.empty((len(members), d)), np.empty((len(members), d))
    for g, pts in enumerate(members):
        spread[g] = pts.std(axis=0)
        mean = pts.mean(axis=0)[None, :]
        dist = cdist(pts, mean, "minkowski", p=p) if p != 2 else cdist(pts, mean, "euclidean")
        centres[g] = pts[int(np.argmin(dist))]
    return spread, centres


def _in_boxes(points: np.ndarray, centre: np.ndarray, half_width: np.ndarray) -> np.ndarray:
    """(len(points), len(centre)): whether each point lies in each box (every coordinate within
    its half-width of the box's centre)."""
    return np.all(np.abs(points[:, None, :] - centre[None, :, :]) <= half_width[None, :, :], axis=2)


def _midpoint_box_counts(members: list, sizes: np.ndarray, centres: np.ndarray, spread: np.ndarray,
                         density: np.ndarray, lam: float) -> np.ndarray:
    """(k, k): how many points of group g lie in the box of the pair (g, j), for every j, row by
    row (memory k x d). The box is centred on Tong's mix of the size- and density-weighted
    midpoints of the two centres; a box is rarely hit, so a first pass on a few coordinates
    discards most pairs."""
    k = len(members)
    counts = np.zeros((k, k))
    few = min(8, centres.shape[1])
    n_j, d_j = sizes[:, None].astype(float), density[:, None]
    for g in range(k):
        n_i, d_i, c_i = float(sizes[g]), density[g], centres[g][None, :]
        mid = (lam * (c_i * n_j + centres * n_i) / (n_i + n_j)
               + (1 - lam) * (c_i * d_i + centres * d_j) / (d_i + d_j))
        hw = 1.96 * ((spread[g][None, :] + spread) / 2) / np.sqrt(n_i + n_j)
        ii, jj = np.nonzero(_in_boxes(members[g][:, :few], mid[:, :few], hw[:, :few]))
        if len(ii):
            full = np.all(np.abs(members[g][ii] - mid[jj]) <= hw[jj], axis=1)
            counts[g] = np.bincount(jj[full], minlength=k)
    return counts


# ---- AMI ----------------------------------------------------------------------------------------

def _contingency(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ua, ia = np.unique(a, return_inverse=True)
    ub, ib = np.unique(b, return_inverse=True)
    return np.bincount(ia * len(ub) + ib, minlength=len(ua) * len(ub)).reshape(len(ua), len(ub))


def _entropy_of_counts(counts: np.ndarray) -> float:
    counts = counts[counts > 0].astype(np.float64)
    total = counts.sum()
    return float(-np.sum(counts / total * (np.log(counts) - np.log(total))))


def _expected_mi(C: np.ndarray, n: int) -> float:
    # scikit-learn's compiled kernel, the one adjusted_mutual_info_score calls
    return private_api.expected_mutual_information(C, n_samples=n)


def ami_from_contingency(C: np.ndarray) -> float:
    """Adjusted mutual information (arithmetic normalisation, as scikit-learn's default) of the
    two labelings whose contingency table is ``C`` (r, c) int."""
    C = np.asarray(C, dtype=np.int64)
    C = C[C.sum(axis=1) > 0][:, C.sum(axis=0) > 0]
    r, c = C.shape
    if r == c == 1 or r == c == 0:
        return 1.0
    if r == 1 or c == 1:
        return 0.0
    n = int(C.sum())
    row, col = C.sum(axis=1), C.sum(axis=0)
    i, j = np.nonzero(C)
    nij = C[i, j].astype(np.float64)
    mi = nij / n * (np.log(nij) - np.log(n)) + nij / n * (np.log(n) + np.log(n) - np.log(row[i] * col[j]))
    mi = np.where(np.abs(mi) < np.finfo(np.float64).eps, 0.0, mi)
    mi = max(float(mi.sum()), 0.0)
    emi = _expected_mi(C, n)
    h = (_entropy_of_counts(row) + _entropy_of_counts(col)) / 2
    eps = np.finfo(np.float64).eps
    den = h - emi
    den = min(den, -eps) if den < 0 else max(den, eps)
    num = mi - emi
    num = min(num, -eps) if num < 0 else max(num, eps)
    return float(num / den)


def ami(labels_a, labels_b, noise: str = "cluster") -> float:
    """Adjusted mutual information of two clusterings of the same points (n,) each.

    ``noise='cluster'``: noise (-1) is a cluster of its own; ``'remove'``: only the points that
    are non-noise in both count (0.0 when fewer than two are).
    """
    a = np.asarray(labels_a)
    b = _check_labels(labels_b, len(a), "labels_b")
    a = _check_labels(a, len(a), "labels_a")
    if noise == "remove":
        keep = (a >= 0) & (b >= 0)
        if keep.sum() < 2:
            return 0.0
        a, b = a[keep], b[keep]
    elif noise != "cluster":
        raise ParameterError(f"noise must be 'cluster' or 'remove', got {noise!r}")
    return ami_from_contingency(_contingency(a, b))


def pairwise_ami(labelings, noise: str = "cluster") -> np.ndarray:
    """AMI between every pair of clusterings: ``labelings`` (m, n) -> symmetric (m, m), ones on
    the diagonal."""
    L = np.asarray(labelings)
    m = len(L)
    out = np.eye(m)
    for i in range(m):
        for j in range(i + 1, m):
            out[i, j] = out[j, i] = ami(L[i], L[j], noise)
    return out


def mean_ami(labelings, noise: str = "cluster") -> np.ndarray:
    """Each clustering's mean AMI with all the others, (m,); NaN for every one when m < 2."""
    m = len(labelings)
    if m < 2:
        return np.full(m, np.nan)
    A = pairwise_ami(labelings, noise)
    return (A.sum(axis=1) - 1.0) / (m - 1)


# ---- external scores (known labels) -------------------------------------------------------------

def clustering_accuracy(true_labels, pred_labels) -> float:
    """Fraction of points whose cluster maps to their label under the best one-to-one mapping of
    clusters to labels (Hungarian algorithm); clusters left without a label count as wrong."""
    from scipy.optimize import linear_sum_assignment  # (imported where used: the web process needs none)

    true = np.unique(np.asarray(true_labels).astype(str), return_inverse=True)[1]
    pred = np.unique(np.asarray(pred_labels), return_inverse=True)[1]
    if len(true) == 0:
        return float("nan")
    table = np.zeros((pred.max() + 1, true.max() + 1), dtype=np.int64)
    np.add.at(table, (pred, true), 1)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(true))


def external_scores(true_labels, pred_labels) -> dict:
    """Accuracy, NMI and ARI of a clustering against known labels, (n,) each.

    ``*``: noise (-1) counted as one more cluster; ``*_no_noise``: noise points left out (all
    three are NaN when every point is noise, and ``noise_fraction`` says so).
    """
    from sklearn.metrics import (  # (heavy: ~0.5 s; not in a web process)
        adjusted_rand_score,
        normalized_mutual_info_score,
    )

    true = np.asarray(true_labels).astype(str)
    pred = np.asarray(pred_labels)
    if true.shape != pred.shape:
        raise ParameterError(f"labels and clustering differ in length: {true.shape} vs {pred.shape}")
    keep = pred >= 0
    out = {"accuracy": clustering_accuracy(true, pred), "nmi": float(normalized_mutual_info_score(true, pred)),
           "ari": float(adjusted_rand_score(true, pred)), "noise_fraction": float(1 - keep.mean()) if len(pred) else 0.0}
    if keep.any():
        out.update(accuracy_no_noise=clustering_accuracy(true[keep], pred[keep]),
                   nmi_no_noise=float(normalized_mutual_info_score(true[keep], pred[keep])),
                   ari_no_noise=float(adjusted_rand_score(true[keep], pred[keep])))
    else:
        out.update(accuracy_no_noise=float("nan"), nmi_no_noise=float("nan"), ari_no_noise=float("nan"))
    return out
