"""DBCV, S_Dbw and AMI against their reference implementations, on the demo's fingerprints and the
real ones."""

from __future__ import annotations

import numpy as np
import pytest
from hdbscan.validity import validity_index
from s_dbw import S_Dbw
from sklearn.metrics import adjusted_mutual_info_score

from backend.cluster.algorithms import cluster_hdbscan
from backend.cluster.distances import distance_matrix
from backend.cluster.validation import (
    DBCV_UNDEFINED,
    SDBW_UNDEFINED,
    all_points_core_distances,
    ami,
    dbcv,
    mean_ami,
    pairwise_ami,
    s_dbw,
)
from backend.data.catalog import Catalog
from backend.errors import ParameterError
from tests.conftest import PAPER_MODEL


@pytest.fixture(scope="module")
def X(dataset):
    return Catalog(dataset.root).load(dataset.model).X


@pytest.fixture(scope="module")
def D_mink(X):
    return distance_matrix(X, "minkowski", 0.2)


@pytest.mark.parametrize("mcs,ms", [(3, 2), (4, 3)])
def test_dbcv_equals_hdbscan_validity_index_under_euclidean(X, mcs, ms):
    # hdbscan's core distances skip zero distances, so materials with the same fingerprint (two
    # pairs of the demo's 1 eV plots, one with no band in the window) count differently there:
    # compared on the distinct rows
    X = X[np.sort(np.unique(X, axis=0, return_index=True)[1])]
    labels = cluster_hdbscan(X, mcs, ms, selection="leaf", metric="euclidean")
    assert len(np.unique(labels[labels >= 0])) >= 2
    D = distance_matrix(X, "euclidean")
    ours = dbcv(D, labels, X.shape[1])
    # hdbscan's formula raises distances to the power -dim: at 96 numbers a close pair (0.67)
    # overflows float64's sums, so it is compared where its arithmetic holds (DBCV is scale-free)
    scale = np.median(D)
    assert ours == pytest.approx(validity_index(X / scale, labels), rel=1e-9, abs=1e-12)
    assert dbcv(D / scale, labels, X.shape[1]) == pytest.approx(ours, rel=1e-10)


@pytest.mark.shared_data
def test_dbcv_under_minkowski_is_scale_invariant_where_hdbscan_underflows(shared_root):
    """The paper's 147-number fingerprints under Minkowski p = 0.2: where hdbscan's formula fails."""
    X = Catalog(shared_root).load(PAPER_MODEL).X
    D_mink = distance_matrix(X, "minkowski", 0.2)
    labels = cluster_hdbscan(X, 3, 2, selection="leaf", metric="minkowski", p=0.2, D=D_mink)
    assert D_mink.max() > 1e9  # the regime where (1/d)^147 underflows
    ours = dbcv(D_mink, labels, X.shape[1])
    for scale in (1e-12, 1e-9, 1e3):
        assert dbcv(D_mink * scale, labels, X.shape[1]) == pytest.approx(ours, rel=1e-10)
    # hdbscan's own formula is right once the distances are brought to where float64 holds them...
    rescaled = validity_index(D_mink / np.median(D_mink), labels, metric="precomputed", d=X.shape[1])
    assert rescaled == pytest.approx(ours, rel=1e-9)
    # ...and silently different on the raw ones: its core distances have underflowed to zero
    raw = validity_index(D_mink, labels, metric="precomputed", d=X.shape[1])
    assert abs(raw - ours) > 1e-3
    with np.errstate(divide="ignore"):
        core = all_points_core_distances(np.log(D_mink), labels, X.shape[1])
    assert np.all(core[labels >= 0] > 0) and np.all(np.isnan(core[labels < 0]))


def test_dbcv_undefined_values(X, D_mink):
    n, d = X.shape
    assert dbcv(D_mink, np.full(n, -1), d) == DBCV_UNDEFINED
    one = np.full(n, -1)
    one[:10] = 0
    assert dbcv(D_mink, one, d) == DBCV_UNDEFINED
    with pytest.raises(ParameterError, match="labels must have shape"):
        dbcv(D_mink, one[:-1], d)


@pytest.mark.parametrize("mcs,ms", [(3, 2), (4, 3)])
def test_s_dbw_equals_package_with_noise_as_one_cluster(X, mcs, ms):
    labels = cluster_hdbscan(X, mcs, ms, selection="leaf", metric="euclidean")
    assert (labels < 0).any()
    assert s_dbw(X, labels) == pytest.approx(S_Dbw(X, labels, method="Tong", alg_noise="comb"), rel=1e-9)


def test_s_dbw_under_minkowski_and_undefined(X, D_mink):
    labels = cluster_hdbscan(X, 3, 2, selection="leaf", metric="minkowski", p=0.2, D=D_mink)
    value = s_dbw(X, labels, metric="minkowski", p=0.2)
    assert np.isfinite(value) and value > 0
    assert s_dbw(X, np.full(len(X), -1)) == SDBW_UNDEFINED  # all noise: one group


def test_ami_identities_and_sklearn(X, D_mink):
    a = cluster_hdbscan(X, 3, 2, selection="leaf", metric="minkowski", p=0.2, D=D_mink)
    b = cluster_hdbscan(X, 6, 4, selection="leaf", metric="minkowski", p=0.2, D=D_mink)
    assert ami(a, a) == pytest.approx(1.0)
    assert ami(a, a, "remove") == pytest.approx(1.0)
    # renaming clusters changes nothing
    perm = np.where(a >= 0, (a * 7 + 3) % 1000, -1)
    assert ami(perm, b) == pytest.approx(ami(a, b))
    # noise as a cluster: scikit-learn on the labels as they are
    assert ami(a, b) == pytest.approx(adjusted_mutual_info_score(a, b), abs=1e-12)
    # noise removed: only the points clustered in both
    keep = (a >= 0) & (b >= 0)
    assert ami(a, b, "remove") == pytest.approx(adjusted_mutual_info_score(a[keep], b[keep]), abs=1e-12)
    assert ami(a, b, "remove") != pytest.approx(ami(a, b))
    # nothing shared: defined as 0
    assert ami(np.full(len(a), -1), b, "remove") == 0.0
    with pytest.raises(ParameterError, match="noise must be"):
        ami(a, b, "drop")


def test_mean_ami(X, D_mink):
    labs = np.stack([cluster_hdbscan(X, mcs, 2, selection="leaf", metric="minkowski", p=0.2, D=D_mink)
                     for mcs in (3, 4, 6)])
    A = pairwise_ami(labs)
    assert np.allclose(A, A.T) and np.allclose(np.diag(A), 1)
    assert mean_ami(labs) == pytest.approx((A.sum(1) - 1) / 2)
    assert np.isnan(mean_ami(labs[:1])).all()
