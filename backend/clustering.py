"""Clustering of fingerprints: HDBSCAN, K-Means, GMM, double clustering, noise reclustering.

Arrays in, arrays out (scikit-learn style). Labels are int arrays of shape (n,), ``-1`` = noise.

The distance metric is chosen here, once, by :func:`distance_matrix`, and used by clustering and
validation alike. Minkowski with p < 1 is applied for real, through a precomputed matrix: the
published explorer passes ``p=0.2`` to ``hdbscan.HDBSCAN`` without ``metric='minkowski'`` (so it
clusters with the Euclidean metric), and hdbscan's tree algorithms drop ``p`` even when asked for
Minkowski.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

import numpy as np

from backend.cache import memoize, memoize_array, memoize_mapped
from backend.errors import ParameterError

ALGORITHMS = ("hdbscan", "kmeans", "gmm")
SELECTIONS = ("leaf", "eom")
METRICS = ("euclidean", "minkowski")
#: the paper's recommended settings (Hart et al., Heuslerene)
PAPER_MODEL = "resnet50_latent3_window1eV_steps90_split1.0_width1"
RANDOM_STATE = 0  # K-Means and GMM: same settings, same picture
#: above this many materials a full distance matrix (8 n^2 bytes) is refused
MAX_PRECOMPUTED = 20_000
#: up to this many materials HDBSCAN runs on the full distance matrix (exact); above, on a
#: k-nearest-neighbour graph (:mod:`backend.hdbscan_graph`), whose cost grows as n, not n^2
EXACT_MAX = 4_000
#: above this many materials GMM is fitted on a random sample of this size (then every
#: material is assigned): a full-covariance EM on 10^5 x 147 takes minutes
GMM_FIT_MAX = 3_000
#: above this many materials K-Means runs its k-means++ start once instead of 10 times
KMEANS_FULL_MAX = 5_000


def default_model(catalog) -> str:
    """The model a view opens with: the paper's when the root has it, else the last trained one
    (else the last model)."""
    models = catalog.models
    if PAPER_MODEL in models:
        return PAPER_MODEL
    trained = [m for m in models.values() if not m.is_unencoded]
    return (trained or list(models.values()))[-1].model_id


def distance_matrix(X: np.ndarray, metric: str = "minkowski", p: float = 0.2) -> np.ndarray:
    """Pairwise distances of the rows of ``X`` (n, d) -> (n, n) float64, read-only.

    ``metric='minkowski'`` uses ``(sum_k |x_k - y_k|^p)^(1/p)`` for any p > 0 (not a metric for
    p < 1, but what the study uses); ``'euclidean'`` is p = 2.
    """
    metric, p = _check_metric(metric, p)
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


def distances_from(X: np.ndarray, index: int, metric: str = "minkowski", p: float = 0.2) -> np.ndarray:
    """Distances (n,) from row ``index`` of ``X`` (n, d) to every row, by the same formula (and
    the same floating-point operations) as the matching row of :func:`distance_matrix`."""
    metric, p = _check_metric(metric, p)
    X = np.ascontiguousarray(X, dtype=np.float64)
    if metric == "euclidean" or p == 2:
        from scipy.spatial.distance import cdist

        return cdist(X[index:index + 1], X, "euclidean")[0]
    out = _minkowski_sums(X.T, X[index:index + 1], p)[0]
    return np.power(out, 1.0 / p, out=out)


def _check_metric(metric: str, p: float | None) -> tuple[str, float]:
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


@dataclass(frozen=True)
class ClusterParams:
    """Every parameter of one clustering view. Defaults: the paper's HDBSCAN settings."""

    algo: str = "hdbscan"
    min_cluster_size: int = 3
    min_samples: int = 2
    selection: str = "leaf"
    metric: str = "minkowski"
    p: float = 0.2
    n_clusters: int = 5                 # K-Means / GMM
    double_cluster: bool = False        # DBSCAN on the UMAP of the non-noise points
    dc_eps: float = 0.8
    dc_min_samples: int = 5
    recluster_noise: bool = False       # HDBSCAN on the noise points
    rc_min_cluster_size: int = 3
    rc_min_samples: int = 5

    def validate(self, n_samples: int | None = None) -> "ClusterParams":
        """Check every field; return a normalised copy (ints as ints, p as float)."""
        if self.algo not in ALGORITHMS:
            raise ParameterError(f"algo must be one of {ALGORITHMS}, got {self.algo!r}")
        if self.selection not in SELECTIONS:
            raise ParameterError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        metric, p = _check_metric(self.metric, self.p)
        ints = {}
        for name, low in (("min_cluster_size", 2), ("min_samples", 1), ("n_clusters", 1),
                          ("dc_min_samples", 1), ("rc_min_cluster_size", 2), ("rc_min_samples", 1)):
            value = getattr(self, name)
            try:
                ivalue = int(value)
            except (TypeError, ValueError):
                raise ParameterError(f"{name} must be an integer >= {low}, got {value!r}") from None
            if ivalue != value or ivalue < low:
                raise ParameterError(f"{name} must be an integer >= {low}, got {value!r}")
            ints[name] = ivalue
        try:
            eps = float(self.dc_eps)
        except (TypeError, ValueError):
            eps = -1.0
        if not eps > 0:
            raise ParameterError(f"dc_eps must be a positive number, got {self.dc_eps!r}")
        if n_samples is not None:
            if self.algo == "hdbscan" and ints["min_cluster_size"] > n_samples:
                raise ParameterError(f"min_cluster_size={ints['min_cluster_size']} exceeds the {n_samples} materials")
            if self.algo == "hdbscan" and ints["min_samples"] >= n_samples:
                raise ParameterError(f"min_samples must be below the number of materials ({n_samples})")
            if self.algo in ("kmeans", "gmm") and ints["n_clusters"] > n_samples:
                raise ParameterError(f"n_clusters={ints['n_clusters']} exceeds the {n_samples} materials")
        return dataclasses.replace(self, metric=metric, p=p, dc_eps=eps,
                                   double_cluster=bool(self.double_cluster),
                                   recluster_noise=bool(self.recluster_noise), **ints)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def relevant(self) -> dict:
        """Only the parameters that influence the result (for exports and summaries)."""
        d = {"algo": self.algo}
        if self.algo == "hdbscan":
            d.update(min_cluster_size=self.min_cluster_size, min_samples=self.min_samples,
                     selection=self.selection, metric=self.metric)
            if self.metric == "minkowski":
                d["p"] = self.p
            if self.recluster_noise:
                d.update(recluster_noise=True, rc_min_cluster_size=self.rc_min_cluster_size,
                         rc_min_samples=self.rc_min_samples)
        else:
            d["n_clusters"] = self.n_clusters
        if self.double_cluster:
            d.update(double_cluster=True, dc_eps=self.dc_eps, dc_min_samples=self.dc_min_samples)
        return d


class LabelCounts:
    """``n_clusters`` and ``n_noise`` of a result with ``labels`` (-1 = noise)."""

    @property
    def n_clusters(self) -> int:
        return int(len(np.unique(self.labels[self.labels >= 0])))

    @property
    def n_noise(self) -> int:
        return int((self.labels < 0).sum())


@dataclass(frozen=True)
class ClusterResult(LabelCounts):
    """``labels`` (n,): final labels (noise -1, reclustered noise gets labels after the others);
    ``noise`` (n,) bool: noise of the first clustering; ``reclustered`` (n,) bool: noise points
    that noise reclustering put into a cluster; ``halo`` (n,): DBSCAN labels of the double
    clustering (-1 where none or off)."""

    labels: np.ndarray
    noise: np.ndarray
    reclustered: np.ndarray
    halo: np.ndarray


    def cluster_sizes(self) -> dict[int, int]:
        values, counts = np.unique(self.labels[self.labels >= 0], return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}


def cluster_hdbscan(X: np.ndarray, min_cluster_size: int = 3, min_samples: int = 2,
                    selection: str = "leaf", metric: str = "minkowski", p: float = 0.2,
                    D: np.ndarray | None = None) -> np.ndarray:
    """HDBSCAN labels of the rows of ``X`` (n, d). ``D``: the precomputed
    ``distance_matrix(X, metric, p)`` when the caller has it (Minkowski only)."""
    import hdbscan

    metric, p = _check_metric(metric, p)
    kwargs = dict(min_cluster_size=int(min_cluster_size), min_samples=int(min_samples),
                  cluster_selection_method=selection)
    if D is None and uses_graph(len(X)):
        from backend.hdbscan_graph import graph_single_linkage_tree
        from backend.knn_graph import DEFAULT_K, knn_graph

        graph = knn_graph(X, max(DEFAULT_K, int(min_samples)), metric, p)
        return hdbscan_labels(None, graph_single_linkage_tree(graph, min_samples, X, p), min_cluster_size, selection)
    if metric == "euclidean":
        # hdbscan's trees need a writable array (the cached fingerprints are read-only maps)
        return hdbscan.HDBSCAN(metric="euclidean", **kwargs).fit_predict(np.array(X, dtype=np.float64))
    if D is None:
        D = distance_matrix(X, metric, p)
    return hdbscan_labels(D, single_linkage_tree(D, min_samples), min_cluster_size, selection)


def uses_graph(n_samples: int) -> bool:
    """Whether HDBSCAN on this many materials takes the neighbour-graph path (see :data:`EXACT_MAX`)."""
    return int(n_samples) > EXACT_MAX


def single_linkage_tree(D: np.ndarray, min_samples: int) -> np.ndarray:
    """HDBSCAN's single-linkage tree of the mutual-reachability graph of the distance matrix
    ``D`` (n, n) for one ``min_samples``: (n - 1, 4) merges. hdbscan's own routine, the one
    ``HDBSCAN(metric='precomputed')`` runs; kept apart so that one tree serves every
    min_cluster_size (the explorer's slider, the grid search's rows)."""
    from hdbscan.hdbscan_ import _hdbscan_generic

    # it writes into the matrix it is given: hand it a copy
    tree, _ = _hdbscan_generic(np.array(D, dtype=np.float64), min_samples=int(min_samples), alpha=1.0,
                               metric="precomputed")
    tree.setflags(write=False)
    return tree


def hdbscan_labels(D: np.ndarray | None, tree: np.ndarray, min_cluster_size: int, selection: str = "leaf") -> np.ndarray:
    """HDBSCAN's labels (n,) from a single-linkage tree: condense at ``min_cluster_size``,
    select clusters by ``selection`` ('leaf' or 'eom'); the same labels as ``fit_predict``.
    ``D`` is not used (kept for callers that pass the matrix the tree came from)."""
    from hdbscan.hdbscan_ import _tree_to_labels

    labels = _tree_to_labels(D, np.array(tree), int(min_cluster_size), selection, False, False, 0.0, 0)[0]
    return np.asarray(labels, dtype=np.int64)


def cluster_kmeans(X: np.ndarray, n_clusters: int = 5) -> np.ndarray:
    """K-Means labels (n,); 10 k-means++ starts, one above :data:`KMEANS_FULL_MAX` materials."""
    from sklearn.cluster import KMeans

    n_init = 10 if len(X) <= KMEANS_FULL_MAX else 1
    return KMeans(n_clusters=int(n_clusters), n_init=n_init, random_state=RANDOM_STATE).fit_predict(X)


def cluster_gmm(X: np.ndarray, n_clusters: int = 5) -> np.ndarray:
    """Gaussian-mixture labels (n,): full covariances (diagonal where they are singular); above
    :data:`GMM_FIT_MAX` materials fitted on a fixed random sample, then every material assigned."""
    from sklearn.mixture import GaussianMixture

    fit_on = X
    if len(X) > GMM_FIT_MAX:
        fit_on = X[np.random.default_rng(RANDOM_STATE).choice(len(X), GMM_FIT_MAX, replace=False)]
    try:
        gmm = GaussianMixture(n_components=int(n_clusters), covariance_type="full", reg_covar=1e-6,
                              random_state=RANDOM_STATE).fit(fit_on)
    except ValueError:
        # fingerprints with more dimensions than points per component give singular covariances
        gmm = GaussianMixture(n_components=int(n_clusters), covariance_type="diag", reg_covar=1e-4,
                              random_state=RANDOM_STATE).fit(fit_on)
    return gmm.predict(X)


def double_cluster(xy: np.ndarray, noise: np.ndarray, eps: float = 0.8, min_samples: int = 5) -> np.ndarray:
    """DBSCAN on the 2-D embedding of the non-noise points -> halo labels (n,), -1 for noise."""
    from sklearn.cluster import DBSCAN

    halo = np.full(len(xy), -1, dtype=int)
    keep = ~noise
    if keep.sum() >= 1:
        halo[keep] = DBSCAN(eps=eps, min_samples=int(min_samples)).fit_predict(xy[keep])
    return halo


def recluster_noise(X: np.ndarray, labels: np.ndarray, min_cluster_size: int, min_samples: int,
                    metric: str, p: float, D: np.ndarray | None = None,
                    graph: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """HDBSCAN (eom, as the published explorer) on the noise points only.

    Returns the new labels (found clusters numbered after the existing ones) and the mask of
    noise points that were put into a cluster. Too few noise points: nothing changes. With the
    materials' kNN ``graph`` (the graph path), the noise points are clustered on the part of it
    between noise points (a noise point with fewer than ``min_samples`` noise neighbours there
    stays noise; separate parts join only at the root of the tree): no new neighbour search.
    """
    noise = labels < 0
    idx = np.flatnonzero(noise)
    new = labels.copy()
    moved = np.zeros(len(labels), dtype=bool)
    if len(idx) < max(int(min_cluster_size), 2):
        return new, moved
    ms = min(int(min_samples), len(idx) - 1)
    if graph is not None:
        from backend.hdbscan_graph import graph_single_linkage_tree, subgraph

        sub_graph = subgraph(graph, idx)
        ms = min(ms, sub_graph.shape[1])
        sub = hdbscan_labels(None, graph_single_linkage_tree(sub_graph, ms), min_cluster_size, "eom")
        offset = int(labels.max()) + 1 if (labels >= 0).any() else 0
        found = sub >= 0
        new[idx[found]] = sub[found] + offset
        moved[idx[found]] = True
        return new, moved
    sub_D = None
    if metric == "minkowski" and p != 2:
        sub_D = (D if D is not None else distance_matrix(X, metric, p))[np.ix_(idx, idx)]
        sub_D.setflags(write=False)
    sub = cluster_hdbscan(X[idx], min_cluster_size, ms, "eom", metric, p, D=sub_D)
    offset = int(labels.max()) + 1 if (labels >= 0).any() else 0
    found = sub >= 0
    new[idx[found]] = sub[found] + offset
    moved[idx[found]] = True
    return new, moved


def _first_clustering(X: np.ndarray, params: ClusterParams, D: np.ndarray | None) -> np.ndarray:
    if params.algo == "hdbscan":
        return cluster_hdbscan(X, params.min_cluster_size, params.min_samples, params.selection,
                               params.metric, params.p, D=D)
    if params.algo == "kmeans":
        return cluster_kmeans(X, params.n_clusters)
    return cluster_gmm(X, params.n_clusters)


def cluster(X: np.ndarray, xy: np.ndarray, params: ClusterParams, D: np.ndarray | None = None,
            labels: np.ndarray | None = None, graph: np.ndarray | None = None) -> ClusterResult:
    """Run the whole clustering view on fingerprints ``X`` (n, d) with embedding ``xy`` (n, 2).
    ``labels``: the first clustering when the caller already has it (from a cached tree);
    ``graph``: the kNN graph of ``X`` when HDBSCAN took the graph path (noise reclustering
    reuses it)."""
    params = params.validate(len(X))
    if labels is None:
        labels = _first_clustering(X, params, D)
    labels = np.array(labels, dtype=int)
    noise = labels < 0
    moved = np.zeros(len(labels), dtype=bool)
    if params.recluster_noise and params.algo == "hdbscan":
        labels, moved = recluster_noise(X, labels, params.rc_min_cluster_size, params.rc_min_samples,
                                        params.metric, params.p, D=D, graph=graph)
    halo = (double_cluster(xy, noise, params.dc_eps, params.dc_min_samples) if params.double_cluster
            else np.full(len(labels), -1, dtype=int))
    for arr in (labels, noise, moved, halo):
        arr.setflags(write=False)
    return ClusterResult(labels=labels, noise=noise, reclustered=moved, halo=halo)


# ---- cached, catalog-level entry points (what the app and the CLI call) ------------------------

@memoize_mapped
def _model_distances(catalog_root: str, model_id: str, data_key: tuple, metric: str, p: float) -> np.ndarray:
    from backend.catalog import Catalog

    return distance_matrix(Catalog.at(catalog_root).load(model_id).X, metric, p)


def model_distances(catalog, model_id: str, metric: str = "minkowski", p: float = 0.2) -> np.ndarray:
    """The cached distance matrix of a model's fingerprints (keyed by its files' signatures): a
    read-only memory map of a file in the cache folder, shared by every process of the host."""
    metric, p = _check_metric(metric, p)
    return _model_distances(str(catalog.root), model_id, _data_key(catalog, model_id), metric, p)


def clustering_metric(params: ClusterParams) -> tuple[str, float]:
    """The distance a clustering works under: HDBSCAN's chosen metric; Euclidean for K-Means and
    GMM. Neighbours, medoids and subsets use it too."""
    if params.algo == "hdbscan":
        return _check_metric(params.metric, params.p)
    return "euclidean", 2.0


def model_matrix(catalog, model_id: str, params: ClusterParams) -> np.ndarray:
    """The cached distance matrix of a model under its clustering's metric."""
    return model_distances(catalog, model_id, *clustering_metric(params))


def distances_cached(catalog, model_id: str, metric: str = "minkowski", p: float = 0.2) -> bool:
    """Whether the model's distance matrix is already in the cache folder."""
    metric, p = _check_metric(metric, p)
    return _model_distances.cached_path(str(catalog.root), model_id, _data_key(catalog, model_id), metric, p).is_file()


def prewarm_distances(catalog, model_ids, metric: str = "minkowski", p: float = 0.2,
                      budget_bytes: float = 2e9, stop=None, progress=None) -> int:
    """Compute and cache the distance matrices of ``model_ids`` in order, so that switching to
    them is instant; stops at ``budget_bytes`` of matrices or when ``stop`` (an Event) is set.
    Returns how many were cached. Meant for a background thread (scipy releases the GIL)."""
    metric, p = _check_metric(metric, p)
    if metric == "euclidean":
        return 0  # Euclidean HDBSCAN uses a space tree, no matrix to cache
    used, done = 0.0, 0
    model_ids = list(model_ids)
    for i, mid in enumerate(model_ids):
        if stop is not None and stop.is_set():
            break
        try:
            info = catalog.get(mid)
            if info.is_unencoded:
                continue
            n = len(catalog.load(mid).names)
            if uses_graph(n):
                continue  # no matrix on the graph path
            used += 8.0 * n * n
            if used > budget_bytes:
                break
            model_distances(catalog, mid, metric, p)
            done += 1
        except Exception:  # a broken model must not stop the others; the page reports it when opened
            continue
        if progress is not None:
            progress(i + 1, len(model_ids), model=mid)
    return done


def _data_key(catalog, model_id: str) -> tuple:
    from backend.cache import file_signature

    info = catalog.get(model_id)
    return (file_signature(info.embedding_path),
            file_signature(info.fingerprint_path) if info.fingerprint_path else None)


@memoize_mapped
def _model_graph(catalog_root: str, model_id: str, data_key: tuple, metric: str, p: float, k: int,
                 progress=None) -> np.ndarray:
    from backend.catalog import Catalog
    from backend.knn_graph import knn_graph

    return knn_graph(Catalog.at(catalog_root).load(model_id).X, k, metric, p, progress=progress)


def graph_k(min_samples: int = 1) -> int:
    """Neighbours per point of a model's graph: one graph serves every min_samples up to
    :data:`backend.knn_graph.DEFAULT_K` (a larger one gets its own graph)."""
    from backend.knn_graph import DEFAULT_K

    return max(DEFAULT_K, int(min_samples))


def model_graph(catalog, model_id: str, metric: str = "minkowski", p: float = 0.2, min_samples: int = 1,
                progress=None, build: bool = True) -> np.ndarray | None:
    """The kNN graph of a model's fingerprints under the metric (:mod:`backend.knn_graph`):
    built once and kept in the cache folder (written atomically: an interrupted build leaves
    nothing), memory-mapped read-only by every process of the host. ``build=False``: None when
    it is not built yet (a web request must not build one; see the ``graph`` job kind)."""
    metric, p = _check_metric(metric, p)
    return _model_graph(str(catalog.root), model_id, _data_key(catalog, model_id), metric, p, graph_k(min_samples),
                        progress=progress, build=build)


def graph_cached(catalog, model_id: str, metric: str = "minkowski", p: float = 0.2, min_samples: int = 1) -> bool:
    metric, p = _check_metric(metric, p)
    return _model_graph.cached_path(str(catalog.root), model_id, _data_key(catalog, model_id), metric, p,
                                    graph_k(min_samples)).is_file()


@memoize_mapped
def _model_graph_tree(catalog_root: str, model_id: str, data_key: tuple, metric: str, p: float, k: int,
                      min_samples: int, version: int) -> np.ndarray:
    # ``version``: backend.hdbscan_graph.TREE_VERSION, so that a changed algorithm is not
    # answered from the cache folder
    from backend.catalog import Catalog
    from backend.hdbscan_graph import graph_single_linkage_tree

    cat = Catalog.at(catalog_root)
    graph = _model_graph(catalog_root, model_id, data_key, metric, p, k)
    return graph_single_linkage_tree(graph, min_samples, cat.load(model_id).X, p)


@memoize_array
def _model_tree(catalog_root: str, model_id: str, data_key: tuple, metric: str, p: float, min_samples: int) -> np.ndarray:
    from backend.catalog import Catalog

    return single_linkage_tree(model_distances(Catalog.at(catalog_root), model_id, metric, p), min_samples)


@memoize
def _cluster_model(catalog_root: str, model_id: str, data_key: tuple, params: ClusterParams) -> ClusterResult:
    from backend.catalog import Catalog

    cat = Catalog.at(catalog_root)
    data = cat.load(model_id)
    if params.algo == "hdbscan" and uses_graph(len(data.names)):
        from backend.hdbscan_graph import TREE_VERSION

        k = graph_k(params.min_samples)
        graph = _model_graph(catalog_root, model_id, data_key, params.metric, params.p, k)
        # the tree depends on min_samples only; kept in the cache folder like the graph
        tree = _model_graph_tree(catalog_root, model_id, data_key, params.metric, params.p, k, params.min_samples,
                                 TREE_VERSION)
        labels = hdbscan_labels(None, tree, params.min_cluster_size, params.selection)
        return cluster(data.X, data.xy, params, labels=labels, graph=graph)
    if takes_matrix(params, len(data.names)):
        D = model_distances(cat, model_id, params.metric, params.p)
        # the tree depends on min_samples only: moving min_cluster_size re-cuts a cached tree
        tree = _model_tree(catalog_root, model_id, data_key, params.metric, params.p, params.min_samples)
        return _from_tree(data, params, D, tree)
    return cluster(data.X, data.xy, params)


def takes_matrix(params: ClusterParams, n_samples: int) -> bool:
    """Whether HDBSCAN runs on a full Minkowski distance matrix (not Euclidean, not the graph)."""
    return (params.algo == "hdbscan" and params.metric == "minkowski" and params.p != 2
            and not uses_graph(n_samples))


def _from_tree(data, params: ClusterParams, D: np.ndarray, tree: np.ndarray) -> ClusterResult:
    labels = hdbscan_labels(D, tree, params.min_cluster_size, params.selection)
    return cluster(data.X, data.xy, params, D=D, labels=labels)


def cluster_model(catalog, model_id: str, params: ClusterParams) -> ClusterResult:
    """Cluster a catalog model (cached by its files and the parameters). Unencoded models cluster
    their 2-D embedding, as in the study."""
    data = catalog.load(model_id)
    params = params.validate(len(data.names))
    return _cluster_model(str(catalog.root), model_id, _data_key(catalog, model_id), params)


def model_matrix_transient(catalog, model_id: str, params: ClusterParams) -> np.ndarray | None:
    """The distance matrix :func:`cluster_model_transient` clusters, computed in memory and not
    written to the cache folder; None when :func:`cluster_model` serves the model as it is (it does
    not take a matrix, or its matrix is cached already)."""
    n = len(catalog.load(model_id).names)
    params = params.validate(n)
    if not takes_matrix(params, n) or distances_cached(catalog, model_id, params.metric, params.p):
        return None
    return distance_matrix(catalog.load(model_id).X, params.metric, params.p)


def cluster_model_transient(catalog, model_id: str, params: ClusterParams, data=None,
                            D: np.ndarray | None = None) -> ClusterResult:
    """:func:`cluster_model`'s result, for a pass over many models (the consensus): a distance
    matrix that is not in the cache folder yet is computed in memory and let go, not written
    there (72 published models' would be 172 MB written, an fsync each: on this machine's disk
    the largest and least predictable part of a cold consensus), and nothing is memoised.
    ``data`` and ``D``: the model's data and :func:`model_matrix_transient`, when another process
    computed them."""
    data = catalog.load(model_id) if data is None else data
    params = params.validate(len(data.names))
    if D is None:
        D = model_matrix_transient(catalog, model_id, params)
    if D is None:
        return cluster_model(catalog, model_id, params)
    return _from_tree(data, params, D, single_linkage_tree(D, params.min_samples))


def labels_table(data, result: ClusterResult, params: ClusterParams):
    """The export table: one row per material with its cluster, noise flag, UMAP x/y, the model id
    and every clustering parameter that shaped the result (what the page and the CLI write)."""
    import pandas as pd

    frame = pd.DataFrame({
        "material": data.names,
        "cluster": result.labels,
        "noise": result.labels < 0,
        "x": data.xy[:, 0],
        "y": data.xy[:, 1],
        "model_id": data.model_id,
    })
    if params.recluster_noise and params.algo == "hdbscan":
        frame["reclustered"] = result.reclustered
    if params.double_cluster:
        frame["halo"] = result.halo
    for key, value in params.relevant().items():
        frame[key] = value
    return frame


def selection_table(data, result: ClusterResult, names):
    """The export of a selection: material, cluster (-1 noise), UMAP x/y and the model id of
    the materials ``names`` (in that order)."""
    import pandas as pd

    names = [str(n) for n in (names or [])]
    if not names:
        raise ParameterError("nothing is selected: draw a box or lasso on the map, or click a cluster")
    idx = pd.Index(data.names).get_indexer(names)
    if (idx < 0).any():
        missing = [n for n, i in zip(names, idx) if i < 0]
        raise ParameterError(f"{len(missing)} selected materials are not in model {data.model_id}, e.g. {missing[0]!r}")
    return pd.DataFrame({"material": data.names[idx], "cluster": result.labels[idx], "x": data.xy[idx, 0],
                         "y": data.xy[idx, 1], "model_id": data.model_id})
