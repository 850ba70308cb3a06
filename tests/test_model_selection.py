"""The grid search end to end on a few real models: labels, maxima, cache, report, CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backend.__main__ import main
from backend.catalog import Catalog
from backend.clustering import cluster_hdbscan
from backend.errors import ParameterError
from backend.model_selection import GridSpec, grid_search, parse_range, select_models
from backend.validation import ami
from tests.conftest import PAPER_MODEL, copy_models

MODELS = (PAPER_MODEL, "resnet18_latent2_window1eV_steps60_split0_width1",
          "resnet50_latent1_window1eV_steps30_split5.0_width1")  # the last one has collapsed
SPEC = GridSpec(min_samples=(2, 3), min_cluster_size=(3, 4, 6))


@pytest.fixture()
def root(tmp_path, shared_root):
    """A data root with copies of three models' files (so a test may change one)."""
    return copy_models(shared_root, tmp_path / "root", MODELS)


def test_select_models_filters(shared_root):
    cat = Catalog(shared_root)
    one_ev = select_models(cat, "window=1")
    assert len(one_ev) == 72 and all("window1eV" in m for m in one_ev)
    assert len(select_models(cat, "window=1,arch=50,latent=3")) == 12
    assert len(select_models(cat, "window=1,latent=2|3")) == 48
    assert select_models(cat, f"id={PAPER_MODEL}") == [PAPER_MODEL]
    assert len(select_models(cat, "arch=unencoded")) == 3
    with pytest.raises(ParameterError, match="matches none"):
        select_models(cat, "window=7")
    with pytest.raises(ParameterError, match="not one of"):
        select_models(cat, "colour=red")
    assert parse_range("2:10") == tuple(range(2, 11)) and parse_range("3,5") == (3, 5)
    with pytest.raises(ParameterError, match="--ms"):
        parse_range("10:2", "--ms")


def test_grid_end_to_end_and_cache(root, tmp_path):
    cat = Catalog(root)
    cache = tmp_path / "cache"
    events = []
    r = grid_search(cat, list(MODELS), SPEC, cache_dir=cache, n_jobs=2,
                    progress=lambda d, t, **i: events.append((d, t, i.get("stage"))))
    assert events[-1] == (3 + 6, 3 + 6, "done") and r.timings["models_computed"] == 3
    assert len(r.per_model) == 3 * 6 and len(r.cells) == 6
    # each cell's clustering is HDBSCAN's own with those parameters under Minkowski p=0.2
    X = cat.load(PAPER_MODEL).X
    order = pd.Index(cat.load(PAPER_MODEL).names).get_indexer(r.materials)
    for ms, mcs in ((2, 3), (3, 6)):
        ref = cluster_hdbscan(X, mcs, ms, "leaf", "minkowski", 0.2)[order]
        assert np.array_equal(r.cell_labels(PAPER_MODEL, ms, mcs), ref)
    # mean AMI is the mean over the other two models
    a, b, c = (r.cell_labels(m, 2, 3) for m in MODELS)
    row = r.cell(2, 3).set_index("model_id")
    assert row.loc[PAPER_MODEL, "mean_ami"] == pytest.approx((ami(a, b) + ami(a, c)) / 2)
    assert row.loc[PAPER_MODEL, "mean_ami_no_noise"] == pytest.approx((ami(a, b, "remove") + ami(a, c, "remove")) / 2)
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
    fp = root / "fingerprints" / f"{MODELS[1]}_.csv"
    frame = pd.read_csv(fp)
    frame.iloc[0, 1:] = frame.iloc[1, 1:].to_numpy()  # material 0 now looks like material 1
    frame.to_csv(fp, index=False)
    changed = grid_search(cat, list(MODELS), SPEC, cache_dir=cache)
    assert changed.timings["models_computed"] == 1 and not changed.timings["ami_cached"]


def test_single_model_and_bad_grid(root, tmp_path):
    cat = Catalog(root)
    r = grid_search(cat, [PAPER_MODEL], SPEC, cache_dir=tmp_path / "c")
    assert r.per_model.mean_ami.isna().all() and any("AMI compares models" in w for w in r.warnings)
    assert r.ranking.model_id.tolist() == [PAPER_MODEL]
    with pytest.raises(ParameterError, match="min_cluster_size"):
        grid_search(cat, [PAPER_MODEL], GridSpec(min_cluster_size=(1, 2)), cache_dir=tmp_path / "c")
    with pytest.raises(ParameterError, match="min_samples up to 600"):
        grid_search(cat, [PAPER_MODEL], GridSpec(min_samples=(600,)), cache_dir=tmp_path / "c")


def test_cli_evaluate_writes_tables_and_figures(root, tmp_path, capsys):
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
    assert main(["evaluate", "--data", str(root), "--models", "window=2", "--out", str(out)]) == 2
    assert "matches none" in capsys.readouterr().err


def test_cells_without_two_clusters_name_no_model(root, tmp_path):
    """Clusterings of fewer than two clusters cannot be chosen: DBCV is -1 and all-noise
    clusterings agree perfectly (AMI 1), but no cell maximum names them."""
    cat = Catalog(root)
    r = grid_search(cat, list(MODELS[:2]), GridSpec(min_samples=(2,), min_cluster_size=(300,)), cache_dir=tmp_path / "c")
    assert (r.per_model.n_clusters < 2).all() and (r.per_model.dbcv == -1).all()
    assert np.allclose(r.per_model.mean_ami, 1.0)  # two trivial labelings agree
    cell = r.cells.iloc[0]
    assert np.isnan(cell.best_dbcv) and np.isnan(cell.best_mean_ami) and cell.best_mean_ami_model == ""
    assert any("two clusters" in w for w in r.warnings)
