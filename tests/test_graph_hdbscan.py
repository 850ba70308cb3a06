"""HDBSCAN on a k-nearest-neighbour graph (backend.cluster.graph_hdbscan) against the exact path on
real data (the demo and the published fingerprints), and on a generated mixture."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_mutual_info_score

from backend.cluster.algorithms import hdbscan_labels, single_linkage_tree
from backend.cluster.distances import distance_matrix
from backend.cluster.graph_hdbscan import graph_single_linkage_tree, spanning_tree, subgraph
from backend.cluster.knn import knn_from_distances, knn_graph
from backend.data.catalog import Catalog


@pytest.fixture(scope="module")
def matrix(dataset):
    X = Catalog(dataset.root).load(dataset.model).X
    return X, distance_matrix(X)


@pytest.mark.parametrize("min_samples", [1, 2, 5])
def test_complete_graph_gives_the_exact_labels(matrix, min_samples):
    """k = n - 1: the graph path's tree cuts into the very labels of hdbscan's dense path, in
    every cell (ties broken as hdbscan breaks them)."""
    X, D = matrix
    exact = single_linkage_tree(D, min_samples)
    graph = graph_single_linkage_tree(knn_from_distances(D, len(D) - 1), min_samples, X)
    for mcs in (2, 3, 5, 10):
        for selection in ("leaf", "eom"):
            np.testing.assert_array_equal(hdbscan_labels(None, graph, mcs, selection=selection),
                                          hdbscan_labels(D, exact, mcs, selection=selection))


def test_a_small_graph_agrees_on_real_fingerprints(matrix):
    X, D = matrix
    exact = hdbscan_labels(D, single_linkage_tree(D, 2), 3, selection="leaf")
    graph = hdbscan_labels(None, graph_single_linkage_tree(knn_from_distances(D, 15), 2, X), 3, selection="leaf")
    assert adjusted_mutual_info_score(exact, graph) >= 0.95


def _shuffled_ties_labels(D, min_samples, mcs, selection, seed):
    """Exact HDBSCAN with the tree's equal-weight edges taken in another order: a clustering
    as exact as hdbscan's own (mutual reachability is full of ties: max(core a, core b, d))."""
    from hdbscan._hdbscan_linkage import label, mst_linkage_core
    from hdbscan._hdbscan_reachability import mutual_reachability

    mst = mst_linkage_core(mutual_reachability(np.array(D), min_samples))
    mst = mst[np.random.default_rng(seed).permutation(len(mst))]
    return hdbscan_labels(None, label(mst[np.argsort(mst.T[2], kind="stable")]), mcs, selection=selection)


def test_mixture_of_5000_under_minkowski_02():
    """5,000 points of a generated mixture (backend.data.synth: 12 clusters in 147 dimensions and
    background), Minkowski p = 0.2: the graph path (its own kNN search, k = 15) against the
    exact path. With 'eom' the clusters are the mixture's and both paths agree (AMI >= 0.95).
    With the paper's cell (3/2, leaf) both break the mixture into ~290 specks, which depend
    on the order of equal-weight edges: the exact path against itself with the ties taken in
    other orders scores AMI 0.92-0.94, and the graph path must agree with it at least as well."""
    from backend.data.synth import SynthSpec, synth_fingerprints, synth_truth

    spec = SynthSpec(n=5000, n_clusters=12, seed=3).validate()
    truth, _ = synth_truth(spec)
    X = synth_fingerprints(truth, spec.n_clusters, np.random.default_rng(7)).astype(np.float64)
    graph = knn_graph(X, 15, metric="minkowski", p=0.2, method="exact")
    D = distance_matrix(X)
    # the graph's neighbours are the matrix's (float32 ranking, float64 distances)
    np.testing.assert_allclose(graph["dist"], np.take_along_axis(D, graph["idx"].astype(int), 1), rtol=1e-12)
    exact_tree = single_linkage_tree(D, 2)
    tree = graph_single_linkage_tree(graph, 2, X)
    eom = hdbscan_labels(None, exact_tree, 3, selection="eom")
    assert adjusted_mutual_info_score(truth, eom) >= 0.95  # the mixture's clusters
    assert adjusted_mutual_info_score(eom, hdbscan_labels(None, tree, 3, selection="eom")) >= 0.95
    exact = hdbscan_labels(None, exact_tree, 3, selection="leaf")
    approx = hdbscan_labels(None, tree, 3, selection="leaf")
    itself = min(adjusted_mutual_info_score(exact, _shuffled_ties_labels(D, 2, 3, "leaf", s)) for s in range(3))
    assert adjusted_mutual_info_score(exact, approx) >= itself - 0.01
    assert adjusted_mutual_info_score(exact, approx) >= 0.9


def test_rechecking_the_longest_edges_only_shortens_the_tree():
    """Cutting the graph tree's longest edges and joining the parts from measured pairs gives a
    tree no heavier than the graph's own, and no lighter than the exact minimum."""
    from backend.data.synth import SynthSpec, synth_fingerprints, synth_truth

    spec = SynthSpec(n=1500, n_clusters=8, seed=5).validate()
    truth, _ = synth_truth(spec)
    X = synth_fingerprints(truth, spec.n_clusters, np.random.default_rng(2)).astype(np.float64)
    D = distance_matrix(X)
    graph = knn_from_distances(D, 10)
    plain = spanning_tree(graph, 2, X, recheck_top=0)[:, 2].sum()
    rechecked = spanning_tree(graph, 2, X)[:, 2].sum()
    exact = single_linkage_tree(D, 2)[:, 2].sum()
    assert exact * (1 - 1e-12) <= rechecked <= plain
    assert rechecked < plain  # this mixture's graph reaches some clusters by a detour


def test_disconnected_graph_is_joined_into_one_tree():
    """Two far-apart blobs: each point's neighbours are in its own blob, the graph has two parts;
    the tree joins them with one edge at their true closest pair's reachability."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (60, 5)), rng.normal(40, 1, (60, 5))])
    D = distance_matrix(X, "euclidean")
    mst = spanning_tree(knn_from_distances(D, 5), 2, X, p=2)
    assert len(mst) == len(X) - 1
    cross = (mst[:, 0] < 60) != (mst[:, 1] < 60)
    assert cross.sum() == 1
    exact = single_linkage_tree(D, 2)
    assert mst[:, 2].max() == pytest.approx(exact[:, 2].max(), rel=1e-9)


def test_subgraph_keeps_only_edges_among_the_rows():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 4))
    g = knn_from_distances(distance_matrix(X, "euclidean"), 6)
    rows = np.flatnonzero(rng.random(80) < 0.5)
    sub = subgraph(g, rows)
    assert sub.shape == (len(rows), 6)
    for r, old in enumerate(rows):
        kept = [rows.tolist().index(j) for j in g["idx"][old] if j in set(rows)]
        assert sub["idx"][r][: len(kept)].tolist() == kept
        assert np.isinf(sub["dist"][r][len(kept):]).all()
