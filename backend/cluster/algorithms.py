"""Clustering algorithms on fingerprint arrays: HDBSCAN, K-Means, GMM, double clustering and
noise reclustering, and :func:`cluster`, which runs one whole view.

Arrays in, arrays out (scikit-learn style). Labels are int arrays of shape (n,), ``-1`` = noise.
Minkowski with p < 1 is applied for real, through a precomputed matrix: the published explorer
passes ``p=0.2`` to ``hdbscan.HDBSCAN`` without ``metric='minkowski'`` (so it clusters with the
Euclidean metric), and hdbscan's tree algorithms drop ``p`` even when asked for Minkowski.
"""

from __future__ import annotations

import numpy as np

from backend.cluster import private_api
from backend.cluster.distances import check_metric, distance_matrix
from backend.cluster.graph_hdbscan import graph_single_linkage_tree, subgraph
from backend.cluster.knn import DEFAULT_K, knn_graph
from backend.cluster.params import GMM_FIT_MAX, KMEANS_FULL_MAX, RANDOM_STATE, ClusterParams, ClusterResult, uses_graph


def cluster_hdbscan(X: np.ndarray, min_cluster_size: int = 3, min_samples: int = 2,
                    *, selection: str = "leaf", metric: str = "minkowski", p: float = 0.2,
                    D: np.ndarray | None = None) -> np.ndarray:
    """HDBSCAN labels of the rows of ``X`` (n, d). ``D``: the precomputed
    ``distance_matrix(X, metric, p)`` when the caller has it (Minkowski only)."""
    import hdbscan  # hdbscan (and sklearn with it): ~2 s to import; not at the web app's start

    metric, p = check_metric(metric, p)
    kwargs = dict(min_cluster_size=int(min_cluster_size), min_samples=int(min_samples),
                  cluster_selection_method=selection)
    if D is None and uses_graph(len(X)):
        graph = knn_graph(X, max(DEFAULT_K, int(min_samples)), metric=metric, p=p)
        tree = graph_single_linkage_tree(graph, min_samples, X, p=p)
        return hdbscan_labels(None, tree, min_cluster_size, selection=selection)
    if metric == "euclidean":
        # hdbscan's trees need a writable array (the cached fingerprints are read-only maps)
        return hdbscan.HDBSCAN(metric="euclidean", **kwargs).fit_predict(np.array(X, dtype=np.float64))
    if D is None:
        D = distance_matrix(X, metric, p)
    return hdbscan_labels(D, single_linkage_tree(D, min_samples), min_cluster_size, selection=selection)


def single_linkage_tree(D: np.ndarray, min_samples: int) -> np.ndarray:
    """HDBSCAN's single-linkage tree of the mutual-reachability graph of the distance matrix
    ``D`` (n, n) for one ``min_samples``: (n - 1, 4) merges. hdbscan's own routine, the one
    ``HDBSCAN(metric='precomputed')`` runs; kept apart so that one tree serves every
    min_cluster_size (the explorer's slider, the grid search's rows)."""
    # it writes into the matrix it is given: hand it a copy
    tree = private_api.hdbscan_single_linkage_tree(np.array(D, dtype=np.float64), min_samples=min_samples)
    tree.setflags(write=False)
    return tree


def hdbscan_labels(D: np.ndarray | None, tree: np.ndarray, min_cluster_size: int, *,
                   selection: str = "leaf") -> np.ndarray:
    """HDBSCAN's labels (n,) from a single-linkage tree: condense at ``min_cluster_size``,
    select clusters by ``selection`` ('leaf' or 'eom'); the same labels as ``fit_predict``.
    ``D`` is not used (kept for callers that pass the matrix the tree came from)."""
    return private_api.hdbscan_tree_labels(np.array(tree), min_cluster_size=min_cluster_size, selection=selection)


def cluster_kmeans(X: np.ndarray, n_clusters: int = 5) -> np.ndarray:
    """K-Means labels (n,); 10 k-means++ starts, one above :data:`KMEANS_FULL_MAX` materials."""
    from sklearn.cluster import KMeans  # sklearn: ~2 s to import; not at the web app's start

    n_init = 10 if len(X) <= KMEANS_FULL_MAX else 1
    return KMeans(n_clusters=int(n_clusters), n_init=n_init, random_state=RANDOM_STATE).fit_predict(X)


def cluster_gmm(X: np.ndarray, n_clusters: int = 5) -> np.ndarray:
    """Gaussian-mixture labels (n,): full covariances (diagonal where they are singular); above
    :data:`GMM_FIT_MAX` materials fitted on a fixed random sample, then every material assigned."""
    from sklearn.mixture import GaussianMixture  # sklearn: ~2 s to import; not at the web app's start

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


def double_cluster(xy: np.ndarray, noise: np.ndarray, *, eps: float = 0.8, min_samples: int = 5) -> np.ndarray:
    """DBSCAN on the 2-D embedding of the non-noise points -> halo labels (n,), -1 for noise."""
    from sklearn.cluster import DBSCAN  # sklearn: ~2 s to import; not at the web app's start

    halo = np.full(len(xy), -1, dtype=int)
    keep = ~noise
    if keep.sum() >= 1:
        halo[keep] = DBSCAN(eps=eps, min_samples=int(min_samples)).fit_predict(xy[keep])
    return halo


def recluster_noise(X: np.ndarray, labels: np.ndarray, *, min_cluster_size: int, min_samples: int,
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
        sub_graph = subgraph(graph, idx)
        ms = min(ms, sub_graph.shape[1])
        sub = hdbscan_labels(None, graph_single_linkage_tree(sub_graph, ms), min_cluster_size, selection="eom")
        offset = int(labels.max()) + 1 if (labels >= 0).any() else 0
        found = sub >= 0
        new[idx[found]] = sub[found] + offset
        moved[idx[found]] = True
        return new, moved
    sub_D = None
    if metric == "minkowski" and p != 2:
        sub_D = (D if D is not None else distance_matrix(X, metric, p))[np.ix_(idx, idx)]
        sub_D.setflags(write=False)
    sub = cluster_hdbscan(X[idx], min_cluster_size, ms, selection="eom", metric=metric, p=p, D=sub_D)
    offset = int(labels.max()) + 1 if (labels >= 0).any() else 0
    found = sub >= 0
    new[idx[found]] = sub[found] + offset
    moved[idx[found]] = True
    return new, moved


def _first_clustering(X: np.ndarray, params: ClusterParams, D: np.ndarray | None) -> np.ndarray:
    if params.algo == "hdbscan":
        return cluster_hdbscan(X, params.min_cluster_size, params.min_samples, selection=params.selection,
                               metric=params.metric, p=params.p, D=D)
    if params.algo == "kmeans":
        return cluster_kmeans(X, params.n_clusters)
    return cluster_gmm(X, params.n_clusters)


def cluster(X: np.ndarray, xy: np.ndarray, params: ClusterParams, *, D: np.ndarray | None = None,
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
        labels, moved = recluster_noise(X, labels, min_cluster_size=params.rc_min_cluster_size,
                                        min_samples=params.rc_min_samples, metric=params.metric, p=params.p,
                                        D=D, graph=graph)
    halo = (double_cluster(xy, noise, eps=params.dc_eps, min_samples=params.dc_min_samples) if params.double_cluster
            else np.full(len(labels), -1, dtype=int))
    for arr in (labels, noise, moved, halo):
        arr.setflags(write=False)
    return ClusterResult(labels=labels, noise=noise, reclustered=moved, halo=halo)
