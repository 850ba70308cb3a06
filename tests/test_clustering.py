"""Clustering against the libraries called directly, on the real fingerprints."""

from __future__ import annotations

import hdbscan
import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.cluster import DBSCAN, KMeans
from sklearn.metrics import adjusted_rand_score

from backend.catalog import Catalog
from backend.clustering import ClusterParams, cluster_model, distance_matrix, labels_table, model_distances
from backend.elements import element_mask, elements_present, formula_elements
from backend.errors import ParameterError
from tests.conftest import PAPER_MODEL


@pytest.fixture(scope="module")
def cat(shared_root):
    return Catalog(shared_root)


@pytest.fixture(scope="module")
def paper(cat):
    return cat.load(PAPER_MODEL)


def test_distance_matrix_applies_p(paper):
    X = paper.X[:40]
    D = distance_matrix(X, "minkowski", 0.2)
    ref = (np.abs(X[:, None, :] - X[None, :, :]) ** 0.2).sum(-1) ** 5
    assert np.allclose(D, ref, rtol=1e-10)
    assert np.allclose(distance_matrix(X, "euclidean"), cdist(X, X))
    assert not D.flags.writeable


def test_hdbscan_euclidean_equals_library(cat, paper):
    r = cluster_model(cat, PAPER_MODEL, ClusterParams(metric="euclidean"))
    ref = hdbscan.HDBSCAN(min_cluster_size=3, min_samples=2, cluster_selection_method="leaf").fit_predict(paper.X)
    assert np.array_equal(r.labels, ref)


def test_hdbscan_minkowski_equals_library_on_precomputed(cat, paper):
    r = cluster_model(cat, PAPER_MODEL, ClusterParams(min_cluster_size=4, min_samples=3, selection="eom"))
    D = cdist(paper.X, paper.X, "minkowski", p=0.2)
    ref = hdbscan.HDBSCAN(metric="precomputed", min_cluster_size=4, min_samples=3,
                          cluster_selection_method="eom").fit_predict(D)
    assert np.array_equal(r.labels, ref)
    # one cached tree per min_samples, cut at each min_cluster_size: the library's labels each time
    for mcs in (3, 5, 8):
        r = cluster_model(cat, PAPER_MODEL, ClusterParams(min_cluster_size=mcs, min_samples=3, selection="leaf"))
        ref = hdbscan.HDBSCAN(metric="precomputed", min_cluster_size=mcs, min_samples=3,
                              cluster_selection_method="leaf").fit_predict(D)
        assert np.array_equal(r.labels, ref), mcs


def test_minkowski_p02_differs_from_euclidean_on_paper_model(cat):
    mink = cluster_model(cat, PAPER_MODEL, ClusterParams())
    eucl = cluster_model(cat, PAPER_MODEL, ClusterParams(metric="euclidean"))
    assert adjusted_rand_score(mink.labels, eucl.labels) < 0.99
    # the published app's call (p=0.2 without metric='minkowski') is the Euclidean clustering
    published = hdbscan.HDBSCAN(min_cluster_size=3, min_samples=2, cluster_selection_method="leaf",
                                p=0.2).fit_predict(cat.load(PAPER_MODEL).X)
    assert np.array_equal(published, eucl.labels)


def test_cached_distance_matrix_is_not_poisoned(cat):
    D1 = model_distances(cat, PAPER_MODEL, "minkowski", 0.2).copy()
    for mcs in (2, 5, 9):
        cluster_model(cat, PAPER_MODEL, ClusterParams(min_cluster_size=mcs, recluster_noise=True))
    assert np.array_equal(model_distances(cat, PAPER_MODEL, "minkowski", 0.2), D1)


def test_kmeans_and_gmm_are_seeded_and_match_sklearn(cat, paper):
    r = cluster_model(cat, PAPER_MODEL, ClusterParams(algo="kmeans", n_clusters=7))
    ref = KMeans(n_clusters=7, n_init=10, random_state=0).fit_predict(paper.X)
    assert np.array_equal(r.labels, ref) and r.n_clusters == 7 and r.n_noise == 0
    g1 = cluster_model(cat, PAPER_MODEL, ClusterParams(algo="gmm", n_clusters=4)).labels
    g2 = cluster_model(cat, PAPER_MODEL, ClusterParams(algo="gmm", n_clusters=4)).labels
    assert np.array_equal(g1, g2) and len(np.unique(g1)) == 4


def test_unencoded_clusters_umap_coordinates(cat):
    data = cat.load("unencoded_window1eV_width1")
    r = cluster_model(cat, data.model_id, ClusterParams(metric="euclidean"))
    ref = hdbscan.HDBSCAN(min_cluster_size=3, min_samples=2, cluster_selection_method="leaf").fit_predict(data.xy)
    assert np.array_equal(r.labels, ref)


def test_double_cluster_halos_only_on_non_noise(cat, paper):
    r = cluster_model(cat, PAPER_MODEL, ClusterParams(double_cluster=True))
    assert (r.halo[r.noise] == -1).all()
    ref = DBSCAN(eps=0.8, min_samples=5).fit_predict(paper.xy[~r.noise])
    assert np.array_equal(r.halo[~r.noise], ref)


def test_recluster_noise_only_moves_noise(cat):
    base = cluster_model(cat, PAPER_MODEL, ClusterParams())
    r = cluster_model(cat, PAPER_MODEL, ClusterParams(recluster_noise=True, rc_min_cluster_size=3, rc_min_samples=2))
    assert r.reclustered.sum() > 0
    assert np.array_equal(r.labels[~base.noise], base.labels[~base.noise])
    assert (r.labels[r.reclustered] > base.labels.max()).all()
    assert (r.reclustered <= base.noise).all()


@pytest.mark.parametrize("kwargs, field", [
    ({"min_cluster_size": 1}, "min_cluster_size"), ({"min_samples": 0}, "min_samples"),
    ({"algo": "dbscan"}, "algo"), ({"metric": "cosine"}, "metric"), ({"p": 0}, "p must be"),
    ({"selection": "best"}, "selection"), ({"min_cluster_size": 2.5}, "min_cluster_size"),
    ({"min_cluster_size": 1000}, "exceeds the 546"), ({"algo": "kmeans", "n_clusters": 600}, "n_clusters"),
])
def test_bad_parameters_name_the_field(cat, kwargs, field):
    with pytest.raises(ParameterError, match=field):
        cluster_model(cat, PAPER_MODEL, ClusterParams(**kwargs))


def test_labels_table_has_every_parameter(cat, paper):
    params = ClusterParams(recluster_noise=True, double_cluster=True).validate()
    table = labels_table(paper, cluster_model(cat, PAPER_MODEL, params), params)
    assert list(table.columns[:6]) == ["material", "cluster", "noise", "x", "y", "model_id"]
    for col in ("min_cluster_size", "min_samples", "selection", "metric", "p", "rc_min_cluster_size", "dc_eps"):
        assert col in table.columns
    assert len(table) == 546 and (table["noise"] == (table["cluster"] < 0)).all()


def test_element_filter_semantics(paper):
    names = ["Ac2HgGe", "Au2MnAl", "Fe2CoSi", "2D_AgAuCu2", "kagome_0001"]
    assert formula_elements("2D_AgAuCu2") == {"Ag", "Au", "Cu"}
    assert formula_elements("kagome_0001") == frozenset()
    assert element_mask(names, ["Au", "Fe"], "inclusive").tolist() == [False, True, True, True, False]
    assert element_mask(names, ["Au", "Cu"], "exclusive").tolist() == [False, False, False, True, False]
    assert not element_mask(names, [], "inclusive").any()
    present = elements_present(paper.names)
    assert "Ac" in present and "Hg" in present and len(present) == len(set(present))
    # on the real data: exclusive matches are a subset of inclusive ones
    inc, exc = element_mask(paper.names, ["Au", "Ag"], "inclusive"), element_mask(paper.names, ["Au", "Ag"], "exclusive")
    assert exc.sum() > 0 and (exc <= inc).all() and inc.sum() > exc.sum()
