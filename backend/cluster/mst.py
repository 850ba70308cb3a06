"""Minimum spanning trees of dense weight matrices (Prim's algorithm, O(n^2) with NumPy).

Shared by DBCV (:mod:`backend.cluster.validation`), which needs the tree of each cluster's
mutual-reachability distances, and graph HDBSCAN (:mod:`backend.cluster.graph_hdbscan`), which
joins the components of a neighbour graph.
"""

from __future__ import annotations

import numpy as np


def prim_mst(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum spanning tree of the complete graph with weights ``W`` (m, m), grown from vertex 0
    (first minimum on ties, as hdbscan's Prim). Returns parent (m,) (-1 for the root) and the
    weight of each vertex's edge to its parent (m,).

    Mutual reachability distances tie often (every distance below a core distance becomes that
    core distance), so the tree is rarely unique, and DBCV's internal vertices depend on which of
    the equal-weight trees is taken. This takes the one ``hdbscan.validity`` takes (the reference
    the published study's scores come from): each vertex hangs from the lowest-numbered vertex
    added before it whose edge has the same weight (within a relative 1e-5; hdbscan's absolute
    1e-8 is left out so that the score stays scale-invariant)."""
    m = len(W)
    parent = np.full(m, -1)
    best = W[0].copy()
    in_tree = np.zeros(m, dtype=bool)
    in_tree[0] = True
    best[0] = np.inf
    best_from = np.zeros(m, dtype=np.int64)
    weight = np.zeros(m)
    order = np.empty(m, dtype=np.int64)
    order[0] = 0
    for i in range(1, m):
        v = int(np.argmin(np.where(in_tree, np.inf, best)))
        w = best[v]
        earlier = order[:i]
        tied = earlier[np.abs(W[v, earlier] - w) <= 1e-5 * abs(w)] if np.isfinite(w) else earlier[:0]
        parent[v] = tied.min() if len(tied) else best_from[v]
        weight[v] = w
        in_tree[v] = True
        order[i] = v
        closer = ~in_tree & (W[v] < best)
        best[closer] = W[v][closer]
        best_from[closer] = v
    return parent, weight
