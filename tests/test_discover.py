"""Finding and comparing materials: neighbours, consensus across models, cluster cards and
representative subsets, on the demo's real fingerprints (and the published ones when present)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics import adjusted_rand_score

from backend.cluster.models import cluster_model, model_matrix
from backend.cluster.params import ClusterParams
from backend.data.catalog import Catalog
from backend.data.elements import formula_elements
from backend.discover.cards import cluster_cards, medoid, model_cluster_cards
from backend.discover.consensus import STABLE, consensus, consensus_models, model_consensus, model_labelings
from backend.discover.neighbours import distance_ranks, model_neighbours, nearest_neighbours, pair_distances
from backend.discover.subset import model_subset, representative_subset
from backend.errors import ParameterError
from tests.conftest import PROJECT


@pytest.fixture(scope="module")
def cat(dataset):
    return Catalog(dataset.root)


@pytest.fixture(scope="module")
def data(cat, dataset):
    return cat.load(dataset.model)


# ---- neighbours ------------------------------------------------------------------------------

@pytest.mark.parametrize("metric,p", [("minkowski", 0.2), ("euclidean", 2.0), ("minkowski", 1.0)])
def test_neighbours_equal_brute_force(cat, dataset, data, metric, p):
    scipy_metric = {"metric": "euclidean"} if metric == "euclidean" else {"metric": "minkowski", "p": p}
    full = cdist(data.X, data.X, **scipy_metric)
    rng = np.random.default_rng(1)
    for i in rng.choice(len(data.names), 12, replace=False):
        ref = full[i].copy()
        ref[i] = np.inf
        k = 10
        kth = np.sort(ref)[k - 1]
        table = model_neighbours(cat, dataset.model, data.names[i], k=k, metric=metric, p=p)
        got = set(table["material"])
        strict = set(data.names[ref < kth * (1 - 1e-12)])
        boundary = set(data.names[np.abs(ref - kth) <= kth * 1e-12])
        # the same set as brute force; where distances tie at the k-th, any of the tied ones
        assert strict <= got <= strict | boundary
        assert len(got) == k and data.names[i] not in got
        assert np.allclose(table["distance"], np.sort(ref)[:k], rtol=1e-10)
        assert list(table["distance"]) == sorted(table["distance"])


@pytest.mark.parametrize("metric,p", [("minkowski", 0.2), ("euclidean", 2.0)])
def test_distance_ranks_place_a_distance_among_all_pairs(cat, dataset, data, metric, p):
    """A neighbour's distance, placed among all pairwise distances of the model (scipy's cdist
    as the reference): rank 1 + the number of pairs strictly closer, and that share in %."""
    scipy_metric = {"metric": "euclidean"} if metric == "euclidean" else {"metric": "minkowski", "p": p}
    full = cdist(data.X, data.X, **scipy_metric)
    ref = np.sort(full[np.triu_indices(len(full), 1)])
    np.testing.assert_allclose(pair_distances(data.X[:200], metric=metric, p=p), np.sort(
        cdist(data.X[:200], data.X[:200], **scipy_metric)[np.triu_indices(200, 1)]), rtol=1e-10)
    table = model_neighbours(cat, dataset.model, data.names[7], k=5, metric=metric, p=p)
    ranks = distance_ranks(cat, dataset.model, table["distance"], metric=metric, p=p)
    assert (ranks["pairs"] == len(ref)).all()
    for d, rank, pct in zip(table["distance"], ranks["pair_rank"], ranks["percentile"]):
        closer = int((ref < d * (1 - 1e-9)).sum())
        assert abs((rank - 1) - closer) <= int((np.abs(ref - d) <= d * 1e-9).sum())
        assert pct == pytest.approx(100 * (rank - 1) / len(ref))
    assert list(ranks["pair_rank"]) == sorted(ranks["pair_rank"])


def test_neighbours_bad_input(cat, dataset, data):
    with pytest.raises(ParameterError, match="is not in model"):
        model_neighbours(cat, dataset.model, "no_such_material", k=5)
    n = len(data.names)
    with pytest.raises(ParameterError, match=f"k={n} is larger than the {n - 1} other materials"):
        model_neighbours(cat, dataset.model, data.names[0], k=n)
    with pytest.raises(ParameterError, match="k must be a whole number >= 1"):
        nearest_neighbours(data.X, 0, 0)
    # every other material is a neighbour when k is the largest allowed
    assert len(model_neighbours(cat, dataset.model, data.names[0], k=n - 1)) == n - 1


# ---- consensus -------------------------------------------------------------------------------

def _same_partition(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return bool(np.array_equal(a < 0, b < 0) and adjusted_rand_score(a[a >= 0], b[b >= 0]) == 1.0)


def test_consensus_of_identical_clusterings_is_them(cat, dataset):
    labels = np.asarray(cluster_model(cat, dataset.model, ClusterParams()).labels)
    res = consensus(np.stack([labels] * 5), min_cluster_size=3)
    assert _same_partition(res.labels, labels)
    assert res.n_clusters == len(np.unique(labels[labels >= 0]))
    assert np.all(res.stability == 1.0)
    assert res.counts()["stable"] == len(labels)


def test_stability_drops_for_a_material_moved_in_half_the_inputs(cat, dataset):
    a = np.asarray(cluster_model(cat, dataset.model, ClusterParams()).labels)
    sizes = np.bincount(a[a >= 0])
    big = np.flatnonzero(sizes >= 4)
    x = np.flatnonzero(a == big[0])[0]
    b = a.copy()
    b[x] = big[1]  # x moves to another cluster in half of the clusterings
    res = consensus(np.stack([a, b, a, b]), min_cluster_size=3)
    assert res.stability[x] == pytest.approx(0.5)
    assert res.stability[x] < STABLE
    # materials in neither of the two clusters are untouched
    others = (a != big[0]) & (a != big[1])
    assert np.all(res.stability[others] == 1.0)


def test_the_default_model_set_is_the_window_or_every_autoencoder(cat, dataset):
    from backend.evaluate.select import select_models

    window = cat.get(dataset.model).window
    flt, ids = consensus_models(cat, None, window)
    # the shipped encoder's maps of the demo are not among the models a consensus combines by default
    same_window = [m for m, info in cat.models.items()
                   if info.window == window and not info.is_unencoded and not info.is_pretrained]
    if len(same_window) >= 2:  # the published data: the 72 one-eV models
        assert (flt, ids) == (f"window={window:g}", same_window)
    else:  # the demo: one autoencoder a window
        # (and not the maps of one part of a fingerprint, which would count its encoder twice)
        assert flt == "" and ids == [m for m, info in cat.models.items()
                                     if not info.is_unencoded and not info.is_pretrained and not info.is_part]
        assert len(ids) >= 2
    assert consensus_models(cat, "arch=18|unencoded", window) == ("arch=18|unencoded",
                                                                  select_models(cat, "arch=18|unencoded"))
    if dataset.name == "heuslerene":
        assert len(ids) == 72


def test_consensus_bad_input_and_cache(cat, dataset, tmp_path, monkeypatch):
    with pytest.raises(ParameterError, match="at least two models"):
        model_consensus(cat, [dataset.model], ClusterParams())
    with pytest.raises(ParameterError, match="at least two clusterings"):
        consensus(np.zeros((1, 10), dtype=int))
    ids = [m for m in cat.models if cat.get(m).window == cat.get(dataset.model).window][:4]
    params = ClusterParams(min_cluster_size=4)
    res = model_consensus(cat, ids, params, cache_dir=tmp_path)
    # the consensus of the models' own (explorer) clusterings
    materials, L = model_labelings(cat, ids, params)
    ref = consensus(L, 4, materials=materials, model_ids=ids)
    assert np.array_equal(res.labels, ref.labels) and np.allclose(res.stability, ref.stability)
    for mid, row in zip(ids, L):
        d = cat.load(mid)
        own = np.asarray(cluster_model(cat, mid, params).labels)[pd.Index(d.names).get_indexer(materials)]
        assert np.array_equal(row, own)
    # a metric nothing has cached yet: forked processes (the CLI's way) and threads (the app's)
    # give the explorer's labels, and neither leaves a distance matrix in the cache folder
    from backend.cluster.models import distances_cached

    monkeypatch.setenv("BANDSCAPE_CACHE", str(tmp_path / "fresh-cache"))
    fresh = ClusterParams(min_cluster_size=4, p=0.3)
    import glob
    import tempfile

    def spills():
        return {f for d in ("/dev/shm", tempfile.gettempdir()) for f in glob.glob(f"{d}/bandscape-consensus-*")}

    before = spills()
    by_process = model_labelings(cat, ids, fresh, processes=True)
    by_thread = model_labelings(cat, ids, fresh, processes=False)
    assert not any(distances_cached(cat, mid, metric="minkowski", p=0.3) for mid in ids)
    assert spills() <= before  # the workers' matrix files are gone
    for materials, L in (by_process, by_thread):
        for mid, row in zip(ids, L):
            d = cat.load(mid)
            own = np.asarray(cluster_model(cat, mid, fresh).labels)[pd.Index(d.names).get_indexer(materials)]
            assert np.array_equal(row, own)
    # read back from the disk cache, the same result
    from backend.cache import array_store

    array_store().clear()
    again = model_consensus(cat, ids, params, cache_dir=tmp_path)
    assert np.array_equal(again.labels, res.labels) and np.array_equal(again.stability, res.stability)
    assert list((tmp_path / "consensus").glob("*.npz"))


# ---- cluster cards ---------------------------------------------------------------------------

def test_cluster_cards(cat, dataset, data):
    params = ClusterParams()
    labels = np.asarray(cluster_model(cat, dataset.model, params).labels)
    D = model_matrix(cat, dataset.model, params)
    known = None
    if dataset.name == "demo":
        from backend.data.labels import load_labels

        known = load_labels(cat, "family", data.names)
    cards = model_cluster_cards(cat, dataset.model, params, label_column="family" if known is not None else None)
    assert [c.size for c in cards] == sorted(np.bincount(labels[labels >= 0]), reverse=True)
    for card in cards:
        members = np.flatnonzero(labels == card.cluster)
        sums = cdist(data.X[members], data.X[members], "minkowski", p=0.2).sum(axis=1)
        assert np.isclose(sums.min(), sums[list(members).index(card.medoid_index)], rtol=1e-9)
        assert card.medoid == data.names[card.medoid_index]
        for el in card.elements:
            assert el["count"] == sum(el["element"] in formula_elements(str(n)) for n in data.names[members])
            assert el["overall_count"] == sum(el["element"] in formula_elements(str(n)) for n in data.names)
            assert el["share"] > el["overall_share"] and el["p_value"] <= 0.05
        if known is not None:
            assert sum(card.labels.values()) == card.size
            assert card.labels == dict(pd.Series(known[members]).value_counts().sort_index()
                                       .sort_values(ascending=False, kind="stable"))
    if dataset.name == "heuslerene":
        assert any(c.elements for c in cards)  # some clusters are chemically distinct
    assert medoid(D, np.array([3])) == 3
    assert cluster_cards(data.names, np.full(len(data.names), -1), D) == []


# ---- representative subset -------------------------------------------------------------------

def test_subset_covers_every_cluster_in_proportion(cat, dataset, data):
    params = ClusterParams()
    labels = np.asarray(cluster_model(cat, dataset.model, params).labels)
    groups = np.unique(np.where(labels < 0, -1, labels))
    size = len(groups) + 20
    table, sub = model_subset(cat, dataset.model, params, size=size)
    assert len(table) == size == len(set(table["material"]))
    assert set(np.where(table["cluster"] < 0, -1, table["cluster"])) == set(groups)
    # medoids first, one per group, then the rest by farthest-first
    roles = list(table["role"])
    assert roles == ["medoid"] * len(groups) + ["farthest"] * 20
    # the 20 beyond the medoids follow the group sizes: the largest group gets the most
    b = sub.balance.set_index("cluster")
    assert b["chosen"].idxmax() == b["size"].idxmax()
    assert b["chosen"].sum() == size and (b["chosen"] <= b["size"]).all()
    # coverage as defined, computed here from the fingerprints
    D = cdist(data.X, data.X, "minkowski", p=0.2)
    nn = np.sort(D, axis=1)[:, 1]
    radius = np.median(nn)
    chosen = pd.Index(data.names).get_indexer(table["material"])
    assert sub.coverage == pytest.approx(float((D[:, chosen].min(axis=1) <= radius * (1 + 1e-9)).mean()), abs=2 / len(D))


def test_subset_bad_input_and_few(cat, dataset, data):
    n = len(data.names)
    with pytest.raises(ParameterError, match=f"subset size {n + 1} is larger than the data \\({n} materials\\)"):
        model_subset(cat, dataset.model, ClusterParams(), size=n + 1)
    with pytest.raises(ParameterError, match="whole number >= 1"):
        model_subset(cat, dataset.model, ClusterParams(), size=0)
    labels = np.array([0, 0, 0, 1, 1, 2, -1, -1])
    D = cdist(np.arange(8.0)[:, None], np.arange(8.0)[:, None])
    sub = representative_subset(D, labels, 2)
    assert sub.warnings and len(sub.indices) == 2
    # all of them: each once, the medoids of the four groups first (largest group first)
    full = representative_subset(D, labels, 8)
    assert sorted(full.indices.tolist()) == list(range(8))
    assert full.indices[:4].tolist() == [1, 6, 3, 5] and full.coverage == 1.0


def test_selection_table(cat, dataset, data):
    from backend.cluster.models import selection_table

    result = cluster_model(cat, dataset.model, ClusterParams())
    names = [data.names[5], data.names[2]]
    table = selection_table(data, result, names)
    assert list(table.material) == names and list(table.cluster) == [result.labels[5], result.labels[2]]
    assert np.allclose(table[["x", "y"]], data.xy[[5, 2]])
    with pytest.raises(ParameterError, match="nothing is selected"):
        selection_table(data, result, [])
    with pytest.raises(ParameterError, match="not in model"):
        selection_table(data, result, ["nope"])


# ---- command line ----------------------------------------------------------------------------

def test_cli_neighbours_consensus_subset(tmp_path, cat, dataset, data):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "backend", *args, "--data", str(dataset.root)],
                              capture_output=True, text=True, cwd=PROJECT,
                              env={"BANDSCAPE_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"})

    name = data.names[7]
    r = run("neighbours", "--model", dataset.model, "--material", name, "--k", "5", "--metric", "euclidean",
            "--out", str(tmp_path / "nb.csv"))
    assert r.returncode == 0, r.stderr
    nb = pd.read_csv(tmp_path / "nb.csv")
    assert list(nb["material"]) == list(model_neighbours(cat, dataset.model, name, k=5, metric="euclidean")["material"])
    r = run("neighbours", "--model", dataset.model, "--material", "Nope", "--k", "5")
    assert r.returncode == 2 and "is not in model" in r.stderr

    window = cat.get(dataset.model).window
    r = run("consensus", "--models", f"window={window:g}", "--min-cluster-size", "4", "--out", str(tmp_path / "c.csv"))
    ids = [m for m in cat.models if not cat.get(m).is_unencoded and not cat.get(m).is_pretrained
           and cat.get(m).window == window]
    if len(ids) < 2:
        assert r.returncode == 2 and "at least two models" in r.stderr
        r = run("consensus", "--models", "arch=18|unencoded", "--min-cluster-size", "4", "--out", str(tmp_path / "c.csv"))
    assert r.returncode == 0, r.stderr
    c = pd.read_csv(tmp_path / "c.csv")
    assert {"material", "consensus_cluster", "stability", "stable"} <= set(c.columns)
    assert c["stability"].between(0, 1).all()

    r = run("subset", "--model", dataset.model, "--size", "30", "--out", str(tmp_path / "s.csv"))
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(tmp_path / "s.csv")) == 30 and "coverage" in r.stdout
