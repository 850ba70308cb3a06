"""Clustering against the libraries called directly, on the demo's fingerprints and the real ones."""

from __future__ import annotations

import hdbscan
import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.cluster import DBSCAN, KMeans
from sklearn.metrics import adjusted_rand_score

from backend.cluster.distances import distance_matrix
from backend.cluster.models import cluster_model, labels_table, model_distances
from backend.cluster.params import ClusterParams
from backend.data.catalog import Catalog
from backend.data.elements import element_mask, elements_present, formula_elements
from backend.errors import ParameterError
from tests.conftest import PAPER_MODEL


@pytest.fixture(scope="module")
def cat(dataset):
    return Catalog(dataset.root)


@pytest.fixture(scope="module")
def model(dataset):
    """The demo's 1 eV autoencoder; on the published data, the paper's model."""
    return dataset.model


@pytest.fixture(scope="module")
def data(cat, model):
    return cat.load(model)


def test_distance_matrix_applies_p(data):
    X = data.X[:40]
    D = distance_matrix(X, "minkowski", 0.2)
    ref = (np.abs(X[:, None, :] - X[None, :, :]) ** 0.2).sum(-1) ** 5
    assert np.allclose(D, ref, rtol=1e-10)
    assert np.allclose(distance_matrix(X, "euclidean"), cdist(X, X))
    assert not D.flags.writeable


def test_distance_matrix_rows_are_the_distances_from_each_material(data):
    """Computed a block of rows at a time, with equal coordinates handled apart (raised to the
    smallest normal number for p >= 0.15, masked for a smaller p): every row equals the distances
    from that material exactly (the neighbours use those), a duplicate is at distance 0, and
    scipy's Minkowski distances agree to rounding."""
    from backend.cluster.distances import distances_from

    X = np.array(data.X[:150], dtype=float)
    X[7] = X[3]          # a duplicate material
    X[:, 1] = 0.25       # a coordinate every material shares
    for p in (0.05, 0.2, 0.5, 1.0, 3.0):
        D = distance_matrix(X, "minkowski", p)
        assert all(np.array_equal(D[i], distances_from(X, i, metric="minkowski", p=p)) for i in range(len(X)))
        assert np.array_equal(D, D.T) and D[3, 7] == 0 and np.all(np.diag(D) == 0)
        assert np.allclose(D, cdist(X, X, "minkowski", p=p), rtol=1e-12, atol=0)


def test_hdbscan_euclidean_equals_library(cat, model, data):
    r = cluster_model(cat, model, ClusterParams(metric="euclidean"))
    ref = hdbscan.HDBSCAN(min_cluster_size=3, min_samples=2, cluster_selection_method="leaf").fit_predict(data.X)
    assert np.array_equal(r.labels, ref)


def test_hdbscan_minkowski_equals_library_on_precomputed(cat, model, data):
    r = cluster_model(cat, model, ClusterParams(min_cluster_size=4, min_samples=3, selection="eom"))
    D = cdist(data.X, data.X, "minkowski", p=0.2)
    ref = hdbscan.HDBSCAN(metric="precomputed", min_cluster_size=4, min_samples=3,
                          cluster_selection_method="eom").fit_predict(D)
    assert np.array_equal(r.labels, ref)
    # one cached tree per min_samples, cut at each min_cluster_size: the library's labels each time
    for mcs in (3, 5, 8):
        r = cluster_model(cat, model, ClusterParams(min_cluster_size=mcs, min_samples=3, selection="leaf"))
        ref = hdbscan.HDBSCAN(metric="precomputed", min_cluster_size=mcs, min_samples=3,
                              cluster_selection_method="leaf").fit_predict(D)
        assert np.array_equal(r.labels, ref), mcs


def test_minkowski_p02_differs_from_euclidean(cat, model, data):
    mink = cluster_model(cat, model, ClusterParams())
    eucl = cluster_model(cat, model, ClusterParams(metric="euclidean"))
    assert adjusted_rand_score(mink.labels, eucl.labels) < 0.99
    # the published app's call (p=0.2 without metric='minkowski') is the Euclidean clustering
    published = hdbscan.HDBSCAN(min_cluster_size=3, min_samples=2, cluster_selection_method="leaf",
                                p=0.2).fit_predict(data.X)
    assert np.array_equal(published, eucl.labels)


def test_cached_distance_matrix_is_not_poisoned(cat, model):
    D1 = model_distances(cat, model, metric="minkowski", p=0.2).copy()
    for mcs in (2, 5, 9):
        cluster_model(cat, model, ClusterParams(min_cluster_size=mcs, recluster_noise=True))
    assert np.array_equal(model_distances(cat, model, metric="minkowski", p=0.2), D1)


def test_kmeans_and_gmm_are_seeded_and_match_sklearn(cat, model, data):
    r = cluster_model(cat, model, ClusterParams(algo="kmeans", n_clusters=7))
    ref = KMeans(n_clusters=7, n_init=10, random_state=0).fit_predict(data.X)
    assert np.array_equal(r.labels, ref) and r.n_clusters == 7 and r.n_noise == 0
    g1 = cluster_model(cat, model, ClusterParams(algo="gmm", n_clusters=4)).labels
    g2 = cluster_model(cat, model, ClusterParams(algo="gmm", n_clusters=4)).labels
    assert np.array_equal(g1, g2) and len(np.unique(g1)) == 4


def test_unencoded_clusters_umap_coordinates(cat):
    data = cat.load("unencoded_window1eV_width1")
    r = cluster_model(cat, data.model_id, ClusterParams(metric="euclidean"))
    ref = hdbscan.HDBSCAN(min_cluster_size=3, min_samples=2, cluster_selection_method="leaf").fit_predict(data.xy)
    assert np.array_equal(r.labels, ref)


def test_double_cluster_halos_only_on_non_noise(cat, model, data):
    r = cluster_model(cat, model, ClusterParams(double_cluster=True))
    assert (r.halo[r.noise] == -1).all()
    ref = DBSCAN(eps=0.8, min_samples=5).fit_predict(data.xy[~r.noise])
    assert np.array_equal(r.halo[~r.noise], ref)


def test_recluster_noise_only_moves_noise(cat, model):
    base = cluster_model(cat, model, ClusterParams())
    r = cluster_model(cat, model, ClusterParams(recluster_noise=True, rc_min_cluster_size=3, rc_min_samples=2))
    assert r.reclustered.sum() > 0
    assert np.array_equal(r.labels[~base.noise], base.labels[~base.noise])
    assert (r.labels[r.reclustered] > base.labels.max()).all()
    assert (r.reclustered <= base.noise).all()


@pytest.mark.parametrize("kwargs, field", [
    ({"min_cluster_size": 1}, "min_cluster_size"), ({"min_samples": 0}, "min_samples"),
    ({"algo": "dbscan"}, "algo"), ({"metric": "cosine"}, "metric"), ({"p": 0}, "p must be"),
    ({"selection": "best"}, "selection"), ({"min_cluster_size": 2.5}, "min_cluster_size"),
    ({"min_cluster_size": 100_000}, r"exceeds the \d+ materials"), ({"algo": "kmeans", "n_clusters": 100_000}, "n_clusters"),
])
def test_bad_parameters_name_the_field(cat, model, kwargs, field):
    with pytest.raises(ParameterError, match=field):
        cluster_model(cat, model, ClusterParams(**kwargs))


def test_labels_table_has_every_parameter(cat, model, data):
    params = ClusterParams(recluster_noise=True, double_cluster=True).validate()
    table = labels_table(data, cluster_model(cat, model, params), params)
    assert list(table.columns[:6]) == ["material", "cluster", "noise", "x", "y", "model_id"]
    for col in ("min_cluster_size", "min_samples", "selection", "metric", "p", "rc_min_cluster_size", "dc_eps"):
        assert col in table.columns
    assert len(table) == len(data.names) and (table["noise"] == (table["cluster"] < 0)).all()


def test_element_filter_semantics():
    names = ["Ac2HgGe", "Au2MnAl", "Fe2CoSi", "2D_AgAuCu2", "kagome_0001"]
    assert formula_elements("2D_AgAuCu2") == {"Ag", "Au", "Cu"}
    assert formula_elements("kagome_0001") == frozenset()
    assert element_mask(names, ["Au", "Fe"], "inclusive").tolist() == [False, True, True, True, False]
    assert element_mask(names, ["Au", "Cu"], "exclusive").tolist() == [False, False, False, True, False]
    assert not element_mask(names, [], "inclusive").any()
    # by atomic number, each once; names that are no formula (the demo's) add nothing
    assert elements_present(names) == ["Al", "Si", "Mn", "Fe", "Co", "Cu", "Ge", "Ag", "Au", "Hg", "Ac"]
    assert elements_present(["kagome_0001", "dice_0002"]) == []


@pytest.mark.shared_data
def test_element_filter_on_the_published_formulas(shared_root):
    names = Catalog(shared_root).load(PAPER_MODEL).names
    present = elements_present(names)
    assert "Ac" in present and "Hg" in present and len(present) == len(set(present))
    # exclusive matches are a subset of inclusive ones
    inc, exc = element_mask(names, ["Au", "Ag"], "inclusive"), element_mask(names, ["Au", "Ag"], "exclusive")
    assert exc.sum() > 0 and (exc <= inc).all() and inc.sum() > exc.sum()
