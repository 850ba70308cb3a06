"""`python -m backend models|cluster` end to end, and the app's start-up checks."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from backend.cluster.models import cluster_model
from backend.cluster.params import ClusterParams
from backend.data.catalog import Catalog
from tests.conftest import PAPER_MODEL, PROJECT, demo_model


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "backend", *args], cwd=PROJECT, capture_output=True,
                          text=True, timeout=120, env=env)


def test_models_json_lists_the_demo_with_its_metadata():
    out = run("models", "--data", str(PROJECT), "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["model_id"]: r for r in json.loads(out.stdout)}
    cat = Catalog(PROJECT)
    assert set(rows) == set(cat.models)
    for mid, info in cat.models.items():
        assert {k: rows[mid][k] for k in info.hyperparameters()} == info.hyperparameters()
    meta = json.loads((PROJECT / "models" / f"{demo_model()}.json").read_text())["config"]
    assert rows[demo_model()]["epochs"] == meta["epochs"] and rows[demo_model()]["metadata"] == f"models/{demo_model()}.json"


@pytest.mark.shared_data
def test_models_json_lists_the_catalog(shared_root):
    out = run("models", "--data", str(shared_root), "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 219
    paper = next(r for r in rows if r["model_id"] == PAPER_MODEL)
    assert paper["latent"] == 3 and paper["split"] == 0.1 and paper["epochs"] == 90


def test_cluster_writes_the_pages_export(tmp_path):
    out_csv = tmp_path / "labels.csv"
    out = run("cluster", "--data", str(PROJECT), "--model", demo_model(), "--min-cluster-size", "4",
              "--out", str(out_csv))
    assert out.returncode == 0, out.stderr
    expected = cluster_model(Catalog(PROJECT), demo_model(), ClusterParams(min_cluster_size=4))
    assert f"{expected.n_clusters} clusters, {expected.n_noise} noise" in out.stdout
    table = pd.read_csv(out_csv)
    assert (table["cluster"].to_numpy() == expected.labels).all()
    assert (table["min_cluster_size"] == 4).all() and (table["p"] == 0.2).all()


def test_cli_errors_are_one_line(tmp_path):
    out = run("cluster", "--data", str(PROJECT), "--model", "resnet99_nope")
    assert out.returncode == 2 and "unknown model id 'resnet99_nope'" in out.stderr and "Traceback" not in out.stderr
    out = run("cluster", "--data", str(PROJECT), "--model", demo_model(), "--min-samples", "0")
    assert out.returncode == 2 and "min_samples" in out.stderr
    out = run("models", "--data", str(tmp_path))
    assert out.returncode == 1 and "no models" in out.stdout


def test_app_refuses_an_empty_root_with_a_hint(tmp_path):
    out = subprocess.run([sys.executable, "app.py", "--data", str(tmp_path), "--port", "1"], cwd=PROJECT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "no models found" in out.stderr and "--data" in out.stderr and "Traceback" not in out.stderr
