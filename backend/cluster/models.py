"""Clustering of a catalog's models, cached: what the app and the CLI call.

Each function takes a :class:`~backend.data.catalog.Catalog` and a model id; the results are
memoised at this boundary (:mod:`backend.cache`) keyed by the model's files and the parameters:
distance matrices and neighbour graphs as memory-mapped files shared by every process of the host,
HDBSCAN trees and clusterings in the process's store.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from backend.cache import array_store, file_signature, memoize, memoize_array, memoize_mapped
from backend.cluster.algorithms import cluster, hdbscan_labels, single_linkage_tree
from backend.cluster.distances import check_metric, distance_matrix
from backend.cluster.graph_hdbscan import TREE_VERSION, graph_single_linkage_tree
from backend.cluster.knn import DEFAULT_K, knn_graph
from backend.cluster.params import ClusterParams, ClusterResult, clustering_metric, takes_matrix, uses_graph
from backend.data.catalog import Catalog
from backend.errors import ParameterError


@memoize
def _distinct_fingerprints(catalog_root: str, model_id: str, data_key: tuple) -> int:
    return int(len(np.unique(Catalog.at(catalog_root).load(model_id).X, axis=0)))


def distinct_fingerprints(catalog, model_id: str) -> int:
    """How many distinct fingerprint rows a model has (what the clustering sees: unencoded
    models, their 2-D embedding); cached by the model's files. Far fewer than its materials
    means the encoder collapsed (:func:`backend.evaluate.spec.is_collapsed`)."""
    return _distinct_fingerprints(str(catalog.root), model_id, _data_key(catalog, model_id))


@memoize_mapped
def _model_distances(catalog_root: str, model_id: str, data_key: tuple, metric: str, p: float) -> np.ndarray:
    return distance_matrix(Catalog.at(catalog_root).load(model_id).X, metric, p)


def model_distances(catalog, model_id: str, *, metric: str = "minkowski", p: float = 0.2) -> np.ndarray:
    """The cached distance matrix of a model's fingerprints (keyed by its files' signatures): a
    read-only memory map of a file in the cache folder, shared by every process of the host."""
    metric, p = check_metric(metric, p)
    return _model_distances(str(catalog.root), model_id, _data_key(catalog, model_id), metric, p)


def model_matrix(catalog, model_id: str, params: ClusterParams) -> np.ndarray:
    """The cached distance matrix of a model under its clustering's metric."""
    metric, p = clustering_metric(params)
    return model_distances(catalog, model_id, metric=metric, p=p)


def distances_cached(catalog, model_id: str, *, metric: str = "minkowski", p: float = 0.2) -> bool:
    """Whether the model's distance matrix is already in the cache folder."""
    metric, p = check_metric(metric, p)
    return _model_distances.cached_path(str(catalog.root), model_id, _data_key(catalog, model_id), metric, p).is_file()


def prewarm_distances(catalog, model_ids, *, metric: str = "minkowski", p: float = 0.2,
                      budget_bytes: float = 2e9, stop=None, progress=None) -> int:
    """Compute and cache the distance matrices of ``model_ids`` in order, so that switching to
    them is instant; stops at ``budget_bytes`` of matrices or when ``stop`` (an Event) is set.
    Returns how many were cached. Meant for a background thread (scipy releases the GIL)."""
    metric, p = check_metric(metric, p)
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
            model_distances(catalog, mid, metric=metric, p=p)
            done += 1
        except Exception:  # a broken model must not stop the others; the page reports it when opened
            continue
        if progress is not None:
            progress(i + 1, len(model_ids), model=mid)
    return done


def _data_key(catalog, model_id: str) -> tuple:
    info = catalog.get(model_id)
    return (file_signature(info.embedding_path),
            file_signature(info.fingerprint_path) if info.fingerprint_path else None)


@memoize_mapped
def _model_graph(catalog_root: str, model_id: str, data_key: tuple, metric: str, p: float, k: int,
                 progress=None) -> np.ndarray:
    return knn_graph(Catalog.at(catalog_root).load(model_id).X, k, metric=metric, p=p, progress=progress)


def graph_k(min_samples: int = 1) -> int:
    """Neighbours per point of a model's graph: one graph serves every min_samples up to
    :data:`backend.cluster.knn.DEFAULT_K` (a larger one gets its own graph)."""
    return max(DEFAULT_K, int(min_samples))


def model_graph(catalog, model_id: str, *, metric: str = "minkowski", p: float = 0.2, min_samples: int = 1,
                progress=None, build: bool = True) -> np.ndarray | None:
    """The kNN graph of a model's fingerprints under the metric (:mod:`backend.cluster.knn`):
    built once and kept in the cache folder (written atomically: an interrupted build leaves
    nothing), memory-mapped read-only by every process of the host. ``build=False``: None when
    it is not built yet (a web request must not build one; see the ``graph`` job kind)."""
    metric, p = check_metric(metric, p)
    return _model_graph(str(catalog.root), model_id, _data_key(catalog, model_id), metric, p, graph_k(min_samples),
                        progress=progress, build=build)


def graph_cached(catalog, model_id: str, *, metric: str = "minkowski", p: float = 0.2, min_samples: int = 1) -> bool:
    metric, p = check_metric(metric, p)
    return _model_graph.cached_path(str(catalog.root), model_id, _data_key(catalog, model_id), metric, p,
                                    graph_k(min_samples)).is_file()


def clustering_ready(catalog, model_id: str, params: ClusterParams) -> bool:
    """Whether :func:`cluster_model` can answer now: False for a large model's HDBSCAN whose
    neighbour graph is not built yet (a job builds it; nothing in the web process should)."""
    n = len(catalog.load(model_id).names)
    return not (params.algo == "hdbscan" and uses_graph(n) and not graph_cached(
        catalog, model_id, metric=params.metric, p=params.p, min_samples=params.min_samples))


@memoize_mapped
def _model_graph_tree(catalog_root: str, model_id: str, data_key: tuple, metric: str, p: float, k: int,
                      min_samples: int, version: int) -> np.ndarray:
    # ``version``: backend.cluster.graph_hdbscan.TREE_VERSION, so that a changed algorithm is not
    # answered from the cache folder
    cat = Catalog.at(catalog_root)
    graph = _model_graph(catalog_root, model_id, data_key, metric, p, k)
    return graph_single_linkage_tree(graph, min_samples, cat.load(model_id).X, p=p)


@memoize_array
def _model_tree(catalog_root: str, model_id: str, data_key: tuple, metric: str, p: float, min_samples: int) -> np.ndarray:
    return single_linkage_tree(model_distances(Catalog.at(catalog_root), model_id, metric=metric, p=p), min_samples)


@memoize
def _cluster_model(catalog_root: str, model_id: str, data_key: tuple, params: ClusterParams) -> ClusterResult:
    cat = Catalog.at(catalog_root)
    data = cat.load(model_id)
    if params.algo == "hdbscan" and uses_graph(len(data.names)):
        k = graph_k(params.min_samples)
        graph = _model_graph(catalog_root, model_id, data_key, params.metric, params.p, k)
        # the tree depends on min_samples only; kept in the cache folder like the graph
        tree = _model_graph_tree(catalog_root, model_id, data_key, params.metric, params.p, k, params.min_samples,
                                 TREE_VERSION)
        labels = hdbscan_labels(None, tree, params.min_cluster_size, selection=params.selection)
        return cluster(data.X, data.xy, params, labels=labels, graph=graph)
    if takes_matrix(params, len(data.names)):
        D = model_distances(cat, model_id, metric=params.metric, p=params.p)
        # the tree depends on min_samples only: moving min_cluster_size re-cuts a cached tree
        tree = _model_tree(catalog_root, model_id, data_key, params.metric, params.p, params.min_samples)
        return _from_tree(data, params, D, tree)
    return cluster(data.X, data.xy, params)


def _from_tree(data, params: ClusterParams, D: np.ndarray, tree: np.ndarray) -> ClusterResult:
    labels = hdbscan_labels(D, tree, params.min_cluster_size, selection=params.selection)
    return cluster(data.X, data.xy, params, D=D, labels=labels)


def cluster_model(catalog, model_id: str, params: ClusterParams) -> ClusterResult:
    """Cluster a catalog model (cached by its files and the parameters). Unencoded models cluster
    their 2-D embedding, as in the study."""
    data = catalog.load(model_id)
    params = params.validate(len(data.names))
    return _cluster_model(str(catalog.root), model_id, _data_key(catalog, model_id), params)


def warm_clusterings(catalog, model_ids, params: ClusterParams, *, max_materials: int, until: float,
                     pause: float = 0.005) -> int:
    """:func:`cluster_model` of each of ``model_ids`` (up to ``max_materials`` materials) into this
    process's memory, so that switching to it later only draws; one whose distance matrix is not
    in the cache folder yet (a prewarm job is computing it) is retried on the next pass, until
    ``until`` (a ``time.monotonic()``). It stops once the process's array store is half full (what
    users open stays cached). ``pause`` between models lets a web process's requests in. Returns
    how many it clustered; a model with bad files is left for its page to report."""
    store = array_store()
    pending, done = list(model_ids), 0
    while pending and time.monotonic() < until:
        waiting = []
        for model_id in pending:
            if time.monotonic() >= until or store.bytes > store.max_bytes / 2:
                return done
            try:
                n = len(catalog.load(model_id).names)
                if n > max_materials:
                    continue
                if (takes_matrix(params, n) and not catalog.get(model_id).is_unencoded  # (2-D: a quick matrix)
                        and not distances_cached(catalog, model_id, metric=params.metric, p=params.p)):
                    waiting.append(model_id)
                    continue
                cluster_model(catalog, model_id, params)
                done += 1
            except Exception:  # (e.g. malformed files): the page says what is wrong when it opens it
                continue
            time.sleep(pause)
        pending = waiting
        if pending:
            time.sleep(2.0)
    return done


def model_matrix_transient(catalog, model_id: str, params: ClusterParams) -> np.ndarray | None:
    """The distance matrix :func:`cluster_model_transient` clusters, computed in memory and not
    written to the cache folder; None when :func:`cluster_model` serves the model as it is (it does
    not take a matrix, or its matrix is cached already)."""
    n = len(catalog.load(model_id).names)
    params = params.validate(n)
    if not takes_matrix(params, n) or distances_cached(catalog, model_id, metric=params.metric, p=params.p):
        return None
    return distance_matrix(catalog.load(model_id).X, params.metric, params.p)


def cluster_model_transient(catalog, model_id: str, params: ClusterParams, *, data=None,
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
    names = [str(n) for n in (names or [])]
    if not names:
        raise ParameterError("nothing is selected: draw a box or lasso on the map, or click a cluster")
    idx = pd.Index(data.names).get_indexer(names)
    if (idx < 0).any():
        missing = [n for n, i in zip(names, idx) if i < 0]
        raise ParameterError(f"{len(missing)} selected materials are not in model {data.model_id}, e.g. {missing[0]!r}")
    return pd.DataFrame({"material": data.names[idx], "cluster": result.labels[idx], "x": data.xy[idx, 0],
                         "y": data.xy[idx, 1], "model_id": data.model_id})
