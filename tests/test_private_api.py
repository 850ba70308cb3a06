"""Each private hdbscan / scikit-learn function bandscape wraps gives the library's public result."""

from __future__ import annotations

import hdbscan
import numpy as np
import pytest
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import pdist, squareform
from sklearn.metrics import adjusted_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

from backend.cluster import private_api


def _blobs(seed=0, n=120):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(4, 5))
    return np.concatenate([c + rng.normal(size=(n // 4, 5)) for c in centres])


@pytest.mark.parametrize("selection", ["leaf", "eom"])
def test_tree_and_labels_equal_hdbscan_precomputed(selection):
    X = _blobs()
    D = squareform(pdist(X))
    expected = hdbscan.HDBSCAN(metric="precomputed", min_cluster_size=5, min_samples=3,
                               cluster_selection_method=selection).fit_predict(D.copy())
    tree = private_api.hdbscan_single_linkage_tree(D.copy(), min_samples=3)
    labels = private_api.hdbscan_tree_labels(tree, min_cluster_size=5, selection=selection)
    assert tree.shape == (len(X) - 1, 4)
    np.testing.assert_array_equal(labels, expected)
    assert len(set(labels) - {-1}) == 4


def test_single_linkage_of_a_spanning_tree_equals_hdbscan_single_linkage():
    X = _blobs(1, 60)
    D = squareform(pdist(X))
    mst = minimum_spanning_tree(D).tocoo()
    edges = np.column_stack([mst.row, mst.col, mst.data]).astype(np.float64)
    edges = edges[np.argsort(edges[:, 2])]
    tree = private_api.hdbscan_label_spanning_tree(edges)
    public = hdbscan.HDBSCAN(min_samples=1, min_cluster_size=2, gen_min_span_tree=True).fit(X)
    np.testing.assert_allclose(np.sort(tree[:, 2]), np.sort(public.single_linkage_tree_.to_numpy()[:, 2]))
    assert tree[-1, 3] == len(X)  # the last merge holds every point


def test_expected_mutual_information_gives_sklearns_ami():
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 5, 300), rng.integers(0, 7, 300)
    C = contingency_matrix(a, b).astype(np.int64)
    emi = private_api.expected_mutual_information(C, n_samples=300)
    from backend.cluster.validation import ami_from_contingency

    assert 0 < emi < 0.2
    assert ami_from_contingency(C) == pytest.approx(adjusted_mutual_info_score(a, b), abs=1e-10)


def test_a_missing_private_function_names_the_library_and_its_tested_range(monkeypatch):
    import hdbscan.hdbscan_ as module

    monkeypatch.delattr(module, "_tree_to_labels")
    with pytest.raises(private_api.PrivateAPIError, match=r"_tree_to_labels is missing from hdbscan .*hdbscan>=0.8.40,<0.9"):
        private_api.hdbscan_tree_labels(np.zeros((1, 4)), min_cluster_size=2, selection="leaf")


def test_the_tested_ranges_are_requirements_bounds():
    from pathlib import Path

    req = (Path(__file__).resolve().parents[1] / "requirements.txt").read_text().splitlines()
    for dist, spec in private_api.TESTED.items():
        assert f"{dist}{spec}" in req
