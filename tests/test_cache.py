"""Caches that fit their data, on real models: memory-mapped distance matrices shared between
processes, the same read-only objects from the per-process store, a byte limit that evicts the
least recently used, small results shared through Redis and kept per process when it is down."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import tracemalloc

import hdbscan
import numpy as np
import pytest

from backend import cache
from backend.cluster.distances import distance_matrix
from backend.cluster.models import _model_tree, cluster_model, distances_cached, model_distances, warm_clusterings
from backend.cluster.params import ClusterParams
from backend.data.catalog import Catalog
from tests.conftest import PAPER_MODEL, PROJECT, copy_models, demo_model, free_port

OTHER = "resnet18_latent2_window1eV_steps60_split0_width1"


@pytest.fixture()
def root(tmp_path, shared_root, monkeypatch):
    monkeypatch.setenv("BANDSCAPE_CACHE", str(tmp_path / "cache"))
    cache.configure(None, max_bytes=256 * 2 ** 20)  # a fresh per-process store for each test
    yield copy_models(shared_root, tmp_path / "root", (PAPER_MODEL, OTHER))
    cache.configure(None, max_bytes=cache.cache_bytes_limit())


def test_byte_limit_evicts_least_recently_used():
    a, b, c, d = (np.zeros(1000) for _ in range(4))  # 8000 bytes each
    store = cache.ArrayStore(max_bytes=3 * 8000)
    for key, arr in zip("abc", (a, b, c)):
        store.set(key, arr)
    assert store.bytes == 24000
    assert store.get("a") is a  # used: now the most recent
    store.set("d", d)
    assert store.get("b") is None  # the oldest unused one went
    assert [store.get(k) is v for k, v in zip("acd", (a, c, d))] == [True] * 3
    assert store.bytes <= store.max_bytes
    assert store.set("big", np.zeros(4000)) is False and store.get("big") is None  # over the budget: not kept
    assert store.get("a") is a  # and nothing was evicted for it


def test_budget_is_bytes_from_the_environment(monkeypatch):
    monkeypatch.setenv("BANDSCAPE_CACHE_BYTES", "512M")
    assert cache.cache_bytes_limit() == 512 * 2 ** 20 and cache.ArrayStore().max_bytes == 512 * 2 ** 20
    assert cache.parse_bytes("2G") == 2 * 2 ** 30 and cache.parse_bytes("300000000") == 300_000_000
    with pytest.raises(ValueError, match="BANDSCAPE_CACHE_BYTES"):
        cache.parse_bytes("lots")


def test_a_memory_map_counts_as_the_page_cache_not_the_process(tmp_path):
    path = tmp_path / "d.npy"
    np.save(path, np.zeros((500, 500)))
    mapped = np.load(path, mmap_mode="r")
    store = cache.ArrayStore(max_bytes=100_000)  # less than the file (2 MB)
    assert store.set("d", mapped) and store.get("d") is mapped and store.bytes == cache.nbytes(mapped) == 4096
    assert cache.nbytes(np.asarray(mapped) + 0) == 2_000_000  # a copy is the process's own


@pytest.fixture()
def demo_root(tmp_path, monkeypatch):
    monkeypatch.setenv("BANDSCAPE_CACHE", str(tmp_path / "cache"))
    cache.configure(None, max_bytes=256 * 2 ** 20)
    models = [demo_model(1), demo_model(2)]
    yield Catalog(copy_models(PROJECT, tmp_path / "root", models)), models
    cache.configure(None, max_bytes=cache.cache_bytes_limit())


def test_warm_clusterings_waits_for_the_matrices_and_keeps_the_result(demo_root, monkeypatch):
    """After start, each model's default clustering is computed into memory once its distance
    matrix is in the cache folder (the prewarm job's); without one it waits, until its deadline."""
    import backend.cluster.models as models_module

    cat, models = demo_root
    start = time.monotonic()
    assert warm_clusterings(cat, models, ClusterParams(), max_materials=10_000, until=start + 0.3) == 0
    assert time.monotonic() - start < 5  # gave up at the deadline (after one 2-s wait)
    model_distances(cat, models[1])
    assert warm_clusterings(cat, models, ClusterParams(), max_materials=599, until=time.monotonic() + 0.3) == 0
    assert warm_clusterings(cat, models, ClusterParams(), max_materials=10_000, until=time.monotonic() + 0.3) == 1
    monkeypatch.setattr(models_module, "_from_tree", lambda *a, **k: pytest.fail("clustered again"))
    assert cluster_model(cat, models[1], ClusterParams()).labels.shape == (600,)


def test_warm_clusterings_leaves_half_of_the_store_to_users(demo_root):
    cat, models = demo_root
    for m in models:
        model_distances(cat, m)
    cache.configure(None, max_bytes=256 * 2 ** 20)  # empty (the matrices stay in the cache folder)
    assert warm_clusterings(cat, models[:1], ClusterParams(), max_materials=10_000, until=time.monotonic() + 5) == 1
    one = cache.array_store().bytes  # what one model's data and clustering hold
    cache.configure(None, max_bytes=int(1.5 * one))  # past half full after the first model
    assert warm_clusterings(cat, models, ClusterParams(), max_materials=10_000, until=time.monotonic() + 5) == 1
    cache.configure(None, max_bytes=int(4 * one))
    assert warm_clusterings(cat, models, ClusterParams(), max_materials=10_000, until=time.monotonic() + 5) == 2


@pytest.mark.shared_data
def test_warm_cache_returns_the_same_read_only_objects(root):
    cat = Catalog(root)
    D = model_distances(cat, PAPER_MODEL)
    assert isinstance(D, np.memmap) and not D.flags.writeable  # a read-only map of the cache file
    assert model_distances(cat, PAPER_MODEL) is D
    data = cat.load(PAPER_MODEL)
    assert Catalog(root).load(PAPER_MODEL) is data and not data.X.flags.writeable
    first = cluster_model(cat, PAPER_MODEL, ClusterParams())
    assert cluster_model(cat, PAPER_MODEL, ClusterParams()) is first
    with pytest.raises(ValueError):
        D[0, 1] = 0.0  # nobody can change what everyone shares
    # a recluster at another min cluster size re-cuts the cached tree: no copy of D (2.4 MB) is made
    tree = _model_tree(str(cat.root), PAPER_MODEL, (cache.file_signature(cat.get(PAPER_MODEL).embedding_path),
                       cache.file_signature(cat.get(PAPER_MODEL).fingerprint_path)), "minkowski", 0.2, 2)
    assert not tree.flags.writeable
    tracemalloc.start()
    again = cluster_model(cat, PAPER_MODEL, ClusterParams(min_cluster_size=5))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert again.n_clusters != first.n_clusters
    assert peak < D.nbytes / 8, f"a recluster allocated {peak} bytes; the matrix is {D.nbytes}"


MAPPER = """
import json, sys
import numpy as np
from backend.data.catalog import Catalog
from backend.cluster import model_distances, distances_cached
cat = Catalog(sys.argv[1])
was = distances_cached(cat, sys.argv[2])
D = model_distances(cat, sys.argv[2])
print(json.dumps({"was_cached": was, "memmap": isinstance(D, np.memmap), "file": str(D.filename),
                  "sum": float(np.asarray(D).sum())}))
"""


@pytest.mark.shared_data
def test_distance_matrix_is_computed_once_for_all_processes(root):
    cat = Catalog(root)
    assert not distances_cached(cat, OTHER)
    run = lambda: json.loads(subprocess.run([sys.executable, "-c", MAPPER, str(root), OTHER], cwd=PROJECT,  # noqa: E731
                                            capture_output=True, text=True, timeout=120, check=True,
                                            env=os.environ).stdout)
    first = run()  # one worker computes and writes it
    assert not first["was_cached"] and first["memmap"]
    mtime = os.stat(first["file"]).st_mtime_ns
    second = run()  # another maps the same file
    assert second["was_cached"] and second["file"] == first["file"] and os.stat(first["file"]).st_mtime_ns == mtime
    assert second["sum"] == first["sum"] == pytest.approx(float(model_distances(cat, OTHER).sum()))


@pytest.mark.shared_data
def test_small_results_shared_through_redis(root, redis_url):
    """Two processes (web workers) with REDIS_URL: what one clustered, the other reads."""
    import redis
    from cachelib import RedisCache

    client = redis.Redis.from_url(redis_url)
    cache.configure(RedisCache(client, key_prefix="bandscape:test:"))
    cat = Catalog(root)
    mine = cluster_model(cat, PAPER_MODEL, ClusterParams(min_cluster_size=4))
    assert any(k.startswith(b"bandscape:test:bandscape:_cluster_model:") for k in client.keys())
    code = (f"from cachelib import RedisCache; import redis, sys; from backend import cache;"
            f"from backend.cluster import algorithms, models, params;"
            f"cache.configure(RedisCache(redis.Redis.from_url({redis_url!r}), key_prefix='bandscape:test:'));"
            f"algorithms.cluster.__code__ = (lambda *a, **k: 1/0).__code__;"  # it must not compute
            f"from backend.data.catalog import Catalog;"
            f"r = models.cluster_model(Catalog({str(root)!r}), {PAPER_MODEL!r}, params.ClusterParams(min_cluster_size=4));"
            f"print(r.n_clusters, r.n_noise)")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, timeout=120, env=os.environ)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(mine.n_clusters), str(mine.n_noise)]


@pytest.mark.shared_data
def test_redis_down_falls_back_to_the_process(root, caplog):
    import hdbscan
    import redis
    from cachelib import RedisCache

    from backend.cluster.distances import distance_matrix

    dead = RedisCache(redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5))
    cache.configure(dead)
    cat = Catalog(root)
    with caplog.at_level(logging.WARNING, logger="backend.cache"):
        r = cluster_model(cat, PAPER_MODEL, ClusterParams())
        assert cluster_model(cat, PAPER_MODEL, ClusterParams()) is r  # served by the process's own store
    warnings = [rec for rec in caplog.records if "unreachable" in rec.getMessage()]
    assert len(warnings) == 1  # said once per outage, not per request
    # the same clustering as hdbscan's own on the same distances (the paper's model, 3/2 leaf,
    # Minkowski 0.2: 44 clusters and 307 noise with hdbscan 0.8.44, 43 and 292 with 0.8.40-0.8.43)
    X = cat.load(PAPER_MODEL).X
    ref = hdbscan.HDBSCAN(metric="precomputed", min_cluster_size=3, min_samples=2,
                          cluster_selection_method="leaf").fit_predict(distance_matrix(X, "minkowski", 0.2))
    assert (r.n_clusters, r.n_noise) == (ref.max() + 1, int((ref < 0).sum()))


def test_memoised_functions_have_unique_names_across_the_backend():
    """A memoised call's key holds the function's qualified name without its module (so that a
    move between modules keeps the cache folder's entries): two memoised functions of the same
    name would share entries."""
    import ast
    from pathlib import Path

    names = []
    for path in Path(__file__).resolve().parents[1].joinpath("backend").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any(
                    getattr(d, "id", None) in ("memoize", "memoize_array", "memoize_mapped") for d in node.decorator_list):
                names.append(node.name)
    assert len(names) >= 6  # the catalog's, the clustering's, the labels', the grid search's
    assert len(names) == len(set(names)), sorted(names)
