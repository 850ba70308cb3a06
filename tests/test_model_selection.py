"""The grid search end to end on a few models (the demo's, and real ones when present): labels,
maxima, cache, report, CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backend.__main__ import main
from backend.cluster.algorithms import cluster_hdbscan
from backend.cluster.validation import ami
from backend.data.catalog import Catalog
from backend.data.model_ids import model_paths
from backend.errors import ParameterError
from backend.evaluate.grid import GridSpec, grid_search
from backend.evaluate.select import default_filter, select_models
from backend.evaluate.spec import parse_range
from tests.conftest import PAPER_MODEL, PROJECT, copy_models, demo_model

PUBLISHED = (PAPER_MODEL, "resnet18_latent2_window1eV_steps60_split0_width1",
             "resnet50_latent1_window1eV_steps30_split5.0_width1")  # the last one has collapsed
DEMO_COLLAPSED = "resnet18_latent1_window1eV_steps1_split0_width1_collapsed"
SPEC = GridSpec(min_samples=(2, 3), min_cluster_size=(3, 4, 6))


def write_collapsed(root, source_id: str, model_id: str) -> None:
    """A model whose encoder collapsed, as one of the published ones did: every material on one of
    two fingerprints (half on each)."""
    src = Catalog(root).get(source_id)
    fp = pd.read_csv(src.fingerprint_path)
    fp.iloc[:, 1:] = fp.iloc[np.arange(len(fp)) % 2, 1:].to_numpy()
    paths = model_paths(root, model_id)
    fp.to_csv(paths["fingerprints"], index=False)
    pd.read_csv(src.embedding_path).to_csv(paths["embedding"], index=False)


@pytest.fixture(params=[pytest.param("demo"), pytest.param("heuslerene", marks=pytest.mark.shared_data)])
def source(request, tmp_path):
    """A data root with copies of three models' files (so a test may change one), the last one
    collapsed; and their ids."""
    root = tmp_path / "root"
    if request.param == "heuslerene":
        return copy_models(request.getfixturevalue("shared_root"), root, PUBLISHED), PUBLISHED
    models = (demo_model(1), demo_model(2), DEMO_COLLAPSED)
    copy_models(PROJECT, root, models[:2])
    write_collapsed(root, models[0], DEMO_COLLAPSED)
    return root, models


def test_select_models_filters():
    cat = Catalog(PROJECT)
    # the unencoded baselines and the shipped encoder's maps only on request
    pretrained = {m.window: m.model_id for m in cat.models.values() if m.is_pretrained}
    assert select_models(cat, "window=1") == [demo_model(1)]
    assert len(select_models(cat, "arch=unencoded")) == 3 and len(select_models(cat)) == 3
    assert select_models(cat, f"id={demo_model(2)}") == [demo_model(2)]
    assert select_models(cat, "window=1|3,latent=3") == [demo_model(1), demo_model(3)]
    assert select_models(cat, "id=*pretrained") == sorted(pretrained.values())
    with pytest.raises(ParameterError, match="matches none"):
        select_models(cat, "window=7")
    with pytest.raises(ParameterError, match="not one of"):
        select_models(cat, "colour=red")
    # the evaluate page opens on a comparison: the demo has one trained model a window (its
    # shipped-encoder maps are not searched), so every window's
    assert default_filter(cat) == "" and len(select_models(cat, default_filter(cat))) == 3
    assert parse_range("2:10") == tuple(range(2, 11)) and parse_range("3,5") == (3, 5)
    with pytest.raises(ParameterError, match="--ms"):
        parse_range("10:2", "--ms")


@pytest.mark.shared_data
def test_select_models_filters_the_published_grid(shared_root):
    cat = Catalog(shared_root)
    one_ev = select_models(cat, "window=1")
    assert len(one_ev) == 72 and all("window1eV" in m for m in one_ev)
    assert len(select_models(cat, "window=1,arch=50,latent=3")) == 12
    assert len(select_models(cat, "window=1,latent=2|3")) == 48
    assert select_models(cat, f"id={PAPER_MODEL}") == [PAPER_MODEL]
    assert len(select_models(cat, "arch=unencoded")) == 3
    assert default_filter(cat) == "window=1"  # the paper's search


def test_grid_end_to_end_and_cache(source, tmp_path):
    root, MODELS = source
    first = MODELS[0]
    cat = Catalog(root)
    cache = tmp_path / "cache"
    events = []
    r = grid_search(cat, list(MODELS), SPEC, cache_dir=cache, n_jobs=2,
                    progress=lambda d, t, **i: events.append((d, t, i.get("stage"))))
    assert events[-1] == (3 + 6, 3 + 6, "done") and r.timings["models_computed"] == 3
    assert len(r.per_model) == 3 * 6 and len(r.cells) == 6
    # each cell's clustering is HDBSCAN's own with those parameters under Minkowski p=0.2
    X = cat.load(first).X
    order = pd.Index(cat.load(first).names).get_indexer(r.materials)
    for ms, mcs in ((2, 3), (3, 6)):
        ref = cluster_hdbscan(X, mcs, ms, selection="leaf", metric="minkowski", p=0.2)[order]
        assert np.array_equal(r.cell_labels(first, ms, mcs), ref)
    # mean AMI is the mean over the other two models
    a, b, c = (r.cell_labels(m, 2, 3) for m in MODELS)
    row = r.cell(2, 3).set_index("model_id")
    assert row.loc[first, "mean_ami"] == pytest.approx((ami(a, b) + ami(a, c)) / 2)
    assert row.loc[first, "mean_ami_no_noise"] == pytest.approx((ami(a, b, "remove") + ami(a, c, "remove")) / 2)
    # the collapsed model scores DBCV = 1 but is flagged and left out of the maxima
    assert row.loc[MODELS[2], "collapsed"] and row.loc[MODELS[2], "dbcv"] == pytest.approx(1.0)
    assert any("collapsed" in w for w in r.warnings)
    cell = r.cells.set_index(["min_samples", "min_cluster_size"]).loc[(2, 3)]
    live = row.drop(index=MODELS[2])
    assert cell.best_dbcv == pytest.approx(live.dbcv.max()) and cell.best_dbcv_model == live.dbcv.idxmax()
    assert r.ranking.model_id.iloc[-1] == MODELS[2]

    # cached: same tables, nothing recomputed
    again = grid_search(cat, list(MODELS), SPEC, cache_dir=cache)
    assert again.timings["models_computed"] == 0 and again.timings["ami_cached"]
    pd.testing.assert_frame_equal(again.per_model, r.per_model)
    # a changed fingerprint file is recomputed (and only that model)
    fp = cat.get(MODELS[1]).fingerprint_path
    frame = pd.read_csv(fp)
    frame.iloc[0, 1:] = frame.iloc[1, 1:].to_numpy()  # material 0 now looks like material 1
    frame.to_csv(fp, index=False)
    changed = grid_search(cat, list(MODELS), SPEC, cache_dir=cache)
    assert changed.timings["models_computed"] == 1 and not changed.timings["ami_cached"]


def test_single_model_and_bad_grid(source, tmp_path):
    root, (first, *_) = source
    cat = Catalog(root)
    r = grid_search(cat, [first], SPEC, cache_dir=tmp_path / "c")
    assert r.per_model.mean_ami.isna().all() and any("AMI compares models" in w for w in r.warnings)
    assert r.ranking.model_id.tolist() == [first]
    with pytest.raises(ParameterError, match="min_cluster_size"):
        grid_search(cat, [first], GridSpec(min_cluster_size=(1, 2)), cache_dir=tmp_path / "c")
    n = len(cat.load(first).names)
    with pytest.raises(ParameterError, match=f"min_samples up to {n} needs more than {n} materials"):
        grid_search(cat, [first], GridSpec(min_samples=(n,)), cache_dir=tmp_path / "c")


def test_cli_evaluate_writes_tables_and_figures(source, tmp_path, capsys):
    root, MODELS = source
    out = tmp_path / "out"
    code = main(["evaluate", "--data", str(root), "--min-samples", "2:3", "--min-cluster-size", "3,4",
                 "--metric", "euclidean", "--cache", str(tmp_path / "c"), "--jobs", "1", "--out", str(out)])
    assert code == 0
    for name in ("per_model.csv", "cells.csv", "ranking.csv", "cells.png", "cells.html", "model_grid.png",
                 "model_grid.html"):
        assert (out / name).stat().st_size > 0, name
    cells = pd.read_csv(out / "cells.csv")
    assert len(cells) == 4 and set(cells.best_dbcv_model) <= set(MODELS)
    assert "top-ranked model" in capsys.readouterr().out
    assert "cdn" not in (out / "cells.html").read_text()[:2000].lower()
    assert main(["evaluate", "--data", str(root), "--models", "window=7", "--out", str(out)]) == 2
    assert "matches none" in capsys.readouterr().err


def test_cells_without_two_clusters_name_no_model(source, tmp_path):
    """Clusterings of fewer than two clusters cannot be chosen: DBCV is -1 and all-noise
    clusterings agree perfectly (AMI 1), but no cell maximum names them."""
    root, MODELS = source
    cat = Catalog(root)
    r = grid_search(cat, list(MODELS[:2]), GridSpec(min_samples=(2,), min_cluster_size=(300,)), cache_dir=tmp_path / "c")
    assert (r.per_model.n_clusters < 2).all() and (r.per_model.dbcv == -1).all()
    assert np.allclose(r.per_model.mean_ami, 1.0)  # two trivial labelings agree
    cell = r.cells.iloc[0]
    assert np.isnan(cell.best_dbcv) and np.isnan(cell.best_mean_ami) and cell.best_mean_ami_model == ""
    assert any("two clusters" in w for w in r.warnings)
