"""Clustering of fingerprints and its validation.

- :mod:`.distances`: the metric (Minkowski p > 0 or Euclidean), checked once; distance matrices
- :mod:`.params`: :class:`ClusterParams` (every parameter of a view, with their bounds) and
  :class:`ClusterResult`
- :mod:`.algorithms`: HDBSCAN, K-Means, GMM, double clustering, noise reclustering on arrays
- :mod:`.knn`, :mod:`.graph_hdbscan`, :mod:`.prim_kernel`, :mod:`.mst`: HDBSCAN on a
  k-nearest-neighbour graph, for roots too large for an n x n matrix
- :mod:`.models`: the cached, catalog-level entry points (:func:`cluster_model`)
- :mod:`.validation`: DBCV, S_Dbw, AMI, and scores against known labels
- :mod:`.private_api`: the private hdbscan / scikit-learn functions used, wrapped in one place

The names most callers need are importable from here::

    from backend.cluster import ClusterParams, cluster_model
"""

from backend.cluster.algorithms import cluster, cluster_gmm, cluster_hdbscan, cluster_kmeans
from backend.cluster.distances import METRICS, check_metric, distance_matrix, distances_from
from backend.cluster.models import (cluster_model, distances_cached, graph_cached, labels_table, model_distances,
                                    model_graph, model_matrix, selection_table)
from backend.cluster.params import ALGORITHMS, BOUNDS, PAPER_MODEL, SELECTIONS, ClusterParams, ClusterResult, default_model

__all__ = [
    "ALGORITHMS", "BOUNDS", "METRICS", "PAPER_MODEL", "SELECTIONS", "ClusterParams", "ClusterResult", "check_metric",
    "cluster", "cluster_gmm", "cluster_hdbscan", "cluster_kmeans", "cluster_model", "default_model", "distance_matrix",
    "distances_cached", "distances_from", "graph_cached", "labels_table", "model_distances", "model_graph",
    "model_matrix", "selection_table",
]
