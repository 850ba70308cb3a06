"""The quality report's supervised ceiling, its physics section and its code-keyed cache, on toys
that can fail and on a small DFT-like root built here (band data, images, exact labels)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from backend.quality import metrics
from tests.conftest import PROJECT, demo_model

# ---- the ceiling on a toy -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy():
    """Images whose label is their line's slope, / or \\ at a random height: learnable from the
    pixels, but not from how much ink there is (the same for both classes)."""
    rng = np.random.default_rng(0)
    n, size = 160, 32
    ink = np.zeros((n, 1, size, size), np.uint8)
    y = np.array(["up", "down"])[np.arange(n) % 2]
    cols = np.arange(size)
    for i in range(n):
        offset = rng.integers(-8, 9)
        rows = np.clip((cols if y[i] == "up" else size - 1 - cols) // 2 + size // 4 + offset, 0, size - 1)
        ink[i, 0, rows, cols] = 1
    return ink, y


def test_ceiling_learns_what_a_weak_feature_cannot_and_is_at_chance_on_shuffled_labels(toy):
    from backend.quality.baselines import supervised_ceiling

    ink, y = toy
    folds = metrics.make_folds(y)
    weak = ink.reshape(len(ink), -1).mean(1, keepdims=True).astype(float)  # ink per image: no class signal
    probe = metrics.linear_probe(weak, y, folds)[0]
    ceiling = supervised_ceiling(ink, y, folds, epochs=8, size=32, lrs=(3e-3, 1e-2))
    assert ceiling["probe_acc"] > 0.9 > probe + 0.25, (ceiling, probe)
    assert ceiling["train_acc"] >= ceiling["probe_acc"] - 0.05
    assert ceiling["lr"] in (3e-3, 1e-2) and set(ceiling["lr_scores"]) == {"0.003", "0.01"}
    assert ceiling["epochs"] == 8 and ceiling["seconds"] > 0
    # its held-out predictions group the two classes: accuracy > 0.9 of two balanced classes is
    # an NMI of at least 1 - H(0.1) / 1 bit = 0.53
    assert ceiling["probe_nmi"] > 0.5, ceiling

    shuffled = np.random.default_rng(1).permutation(y)
    sfolds = metrics.make_folds(shuffled)
    at_chance = supervised_ceiling(ink, shuffled, sfolds, epochs=8, size=32, lrs=(3e-3, 1e-2))
    assert abs(at_chance["probe_acc"] - 0.5) < 0.15, at_chance
    assert at_chance["probe_nmi"] < 0.1, at_chance


def test_ceiling_views_keep_the_fermi_level_within_a_few_pixels():
    """The ceiling's training views shift a line by a few pixels at most and never flip E."""
    import torch

    from backend.autoencoder.objectives import band_views
    from backend.quality.baselines import CEILING_NOISE, CEILING_SHIFT_PX, CEILING_SIZE, CEILING_VIEWS

    x = torch.zeros(64, 1, CEILING_SIZE, CEILING_SIZE)
    x[:, 0, 20, :] = 1                                   # a flat band above the middle (E_F)
    views = band_views(x, torch.Generator().manual_seed(0), views=CEILING_VIEWS, noise=0.0)
    profile = views[:, 0].sum(2)                          # ink per row (a thickened line spans 3 rows)
    centre = (profile * torch.arange(CEILING_SIZE)).sum(1) / profile.sum(1)
    assert (centre - 20).abs().max() <= CEILING_SHIFT_PX + 1e-6 and ((centre - 20).abs() > 0.5).any()
    assert CEILING_VIEWS.flip == 0 and 0 < CEILING_NOISE < 1


# ---- the cache ----------------------------------------------------------------------------------

def test_code_version_follows_the_source(tmp_path):
    from backend.quality.rowcache import PACKAGE_DIR, code_version

    copy = tmp_path / "quality"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = code_version(copy)
    assert before == code_version(PACKAGE_DIR)
    (copy / "metrics.py").write_text((copy / "metrics.py").read_text() + "\n# a change\n")
    from backend.quality import rowcache

    rowcache._code_version.cache_clear()  # versions are remembered per process (its code does not change)
    assert code_version(copy) != before


def test_a_code_change_recomputes_every_row(tmp_path, monkeypatch):
    from backend.data.catalog import Catalog
    from backend.quality import QualitySpec, quality_report
    from backend.quality import rowcache

    spec = QualitySpec(labels="family", ceiling=False)
    first = quality_report(Catalog(PROJECT), [demo_model(3)], spec, cache_dir=tmp_path)
    again = quality_report(Catalog(PROJECT), [demo_model(3)], spec, cache_dir=tmp_path)
    assert first.timings["cached_rows"] == 0 and again.timings["cached_rows"] == len(again.table) - 2
    monkeypatch.setattr(rowcache, "code_version", lambda folder=None: "another version of the code")
    changed = quality_report(Catalog(PROJECT), [demo_model(3)], spec, cache_dir=tmp_path)
    assert changed.timings["cached_rows"] == 0
    pd.testing.assert_frame_equal(changed.table, first.table)


# ---- HDBSCAN at the explorer's cell --------------------------------------------------------------

def test_hdbscan_scores_are_those_of_the_explorers_opening_view(tmp_path):
    from backend.cluster.models import cluster_model
    from backend.cluster.validation import external_scores
    from backend.data.catalog import Catalog
    from backend.data.labels import load_labels
    from backend.discover.explorer_view import ExplorerView
    from backend.quality import QualitySpec, quality_report

    cat = Catalog(PROJECT)
    result = quality_report(cat, [demo_model(3)], QualitySpec(labels="family", ceiling=False, baselines=False),
                            cache_dir=tmp_path)
    view = ExplorerView()
    opened = cluster_model(cat, demo_model(3), view.params())    # what the explorer draws first
    y = load_labels(cat, "family", cat.load(demo_model(3)).names)
    row = result.table.iloc[0]
    assert row.hdbscan_nmi == pytest.approx(external_scores(y, opened.labels)["nmi"])
    assert row.hdbscan_clusters == len(set(opened.labels) - {-1})
    assert result.meta["hdbscan_cell"] == view.params().validate().relevant()


# ---- the physics section on a DFT-like root -----------------------------------------------------

N_MATERIALS = 40


def _write_model(root, model_id: str, names, X, *, unencoded: bool = False):
    """A model's fingerprint, map and metadata files in the catalog's layout (an unencoded model:
    its map only)."""
    emb = root / "embeddings"
    emb.mkdir(exist_ok=True)
    files = [f"{n}.png" for n in names]
    pd.DataFrame({"filename": files, "z0": X[:, 0], "z1": X[:, 1 % X.shape[1]]}).to_csv(
        emb / f"{model_id}_embedding.csv", index=False)
    if unencoded:
        return
    cols = [f"z{i}" for i in range(X.shape[1])]
    pd.DataFrame(X, columns=cols).assign(filename=files)[["filename", *cols]].to_csv(emb / f"{model_id}.csv",
                                                                                     index=False)
    (root / "models").mkdir(exist_ok=True)
    (root / "models" / f"{model_id}.json").write_text(json.dumps({"config": {"image_size": 64, "objective": "test"}}))


#: a "model" whose fingerprints are the band data's own descriptors (it knows the physics), and
#: one whose fingerprints are noise (it knows nothing); two training epochs keep the ceiling cheap
ORACLE = "resnet18_latent3_window1eV_steps2_split1.0_width1_size64_oracle"
NOISE = "resnet18_latent3_window1eV_steps2_split1.0_width1_size64_noise"


@pytest.fixture(scope="module")
def dftlike(tmp_path_factory):
    from backend.data.bands import load_band_data
    from backend.data.dftlike import build_dftlike_root
    from backend.quality.descriptors import band_data_descriptors
    from backend.quality.physics import TARGETS

    root = tmp_path_factory.mktemp("dftlike")
    build_dftlike_root(root, n=N_MATERIALS, seed=0, family_set="demo", windows=(1,), jobs=1)
    exact = pd.DataFrame({f.stem: band_data_descriptors(load_band_data(f), window=1.0)
                          for f in sorted((root / "bands").glob("*.npz"))}).T
    oracle = exact[list(TARGETS)].fillna(-1.0).to_numpy(float)
    _write_model(root, ORACLE, exact.index, oracle)
    _write_model(root, NOISE, exact.index, np.random.default_rng(0).normal(size=(len(exact), 8)))
    _write_model(root, "unencoded_window1eV_width1", exact.index, np.random.default_rng(1).normal(size=(len(exact), 2)),
                 unencoded=True)
    labels = pd.read_csv(root / "labels.csv")
    labels.assign(one_class="x").to_csv(root / "labels.csv", index=False)
    return root, exact


@pytest.fixture(scope="module")
def physics_report(dftlike, tmp_path_factory):
    from backend.data.catalog import Catalog
    from backend.quality import QualitySpec, quality_report

    root, _ = dftlike
    cache = tmp_path_factory.mktemp("cache")
    spec = QualitySpec(labels="family", physics=True)
    return quality_report(Catalog(root), [ORACLE, NOISE], spec, cache_dir=cache), cache


def _value(physics, feature_set, target, score):
    rows = physics[(physics.feature_set == feature_set) & (physics.target == target) & (physics.score == score)]
    assert len(rows) == 1, (feature_set, target, score, physics.feature_set.unique())
    return rows.value.item()


def test_physics_section_scores_every_feature_set_on_every_descriptor_and_label(physics_report, dftlike):
    from backend.quality.physics import TARGETS

    result, _ = physics_report
    root, _ = dftlike
    p = result.physics
    sets = {ORACLE, NOISE, "unencoded UMAP (2-D)", "pixels 64px (PCA-50)", "pixels 224px (PCA-50)",
            "untrained resnet18 latent3 64px"}
    labels = pd.read_csv(root / "labels.csv", dtype=str).drop(columns=["material", "one_class"])
    scored = [c for c in labels if labels[c].value_counts().min() >= 2]
    assert set(scored) >= {"family", "metal"}
    r2 = p[p.score == "r2"]
    assert set(r2.feature_set) >= sets and set(r2.target) == set(TARGETS)
    acc = p[p.score == "accuracy"]
    for feature_set in sets | {"majority class", "supervised CNN (ceiling)"}:
        assert set(acc[acc.feature_set == feature_set].target) == set(scored), feature_set
    ceiling = acc[acc.feature_set == "supervised CNN (ceiling)"]
    assert ceiling.train_acc.between(0, 1).all() and ceiling.value.between(0, 1).all()
    # the fingerprints that are the descriptors predict them (10 neighbours of 32 in 7-D: far from
    # 1 on 40 materials); noise does not
    for t in ("density_at_ef", "line_density", "n_fermi_crossings", "flat_strip"):
        oracle, noise = _value(p, ORACLE, t, "r2"), _value(p, NOISE, t, "r2")
        assert oracle > 0.3 and oracle > noise + 0.3 and noise < 0.15, (t, oracle, noise)


def test_physics_section_says_what_it_left_out(physics_report, dftlike):
    result, _ = physics_report
    _, exact = dftlike
    w = result.warnings
    assert any("labels.csv" in m and "'one_class'" in m and "single class" in m for m in w), w
    for t in ("flat_strip", "max_slope", "gap"):
        missing = int(exact[t].isna().sum())
        said = [m for m in w if f"descriptor {t!r} is undefined for" in m]
        if missing:
            assert said and f"for {missing} of the {N_MATERIALS} materials" in said[0], (t, said)
        else:
            assert not said
    assert int(exact.flat_strip.isna().sum()) > 0  # the root has materials with no line near E_F


def test_physics_rows_are_cached(physics_report, dftlike):
    from backend.data.catalog import Catalog
    from backend.quality import QualitySpec, quality_report

    result, cache = physics_report
    root, _ = dftlike
    again = quality_report(Catalog(root), [ORACLE, NOISE], QualitySpec(labels="family", physics=True),
                           cache_dir=cache)
    pd.testing.assert_frame_equal(again.physics, result.physics)
    assert again.timings["total_s"] < result.timings["total_s"]


def test_cli_prints_the_table_and_the_physics_section(dftlike, physics_report):
    root, _ = dftlike
    _, cache = physics_report
    out = subprocess.run([sys.executable, "-m", "backend", "quality", "--data", str(root), "--labels", "family",
                          "--cache", str(cache)], capture_output=True, text=True, cwd=PROJECT, timeout=600)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "window 1 eV" in text and "supervised CNN (ceiling)" in text and "train" in text
    assert "descriptor R^2" in text and "label accuracy" in text and "its training accuracy" in text
    for name in ("pixels 64px (PCA-50)", "pixels 224px (PCA-50)", "untrained resnet18 latent3 64px",
                 "unencoded UMAP (2-D)"):
        assert text.count(name) == 3, name  # the main table, the R^2 block and the accuracy block
    assert text.count("majority class") == 2 and text.count("supervised CNN (ceiling)") == 2  # no R^2 rows
    for label in ("family", "metal", "flat_band_at_ef", "filling"):
        assert label in text.split("label accuracy")[1], label
    assert "HDBSCAN at the explorer's opening cell: algo=hdbscan" in text
    assert "warning:" in out.stderr and "'one_class'" in out.stderr
    quiet = subprocess.run([sys.executable, "-m", "backend", "quality", "--data", str(root), "--labels", "family",
                            "--cache", str(cache), "--no-physics", "--no-ceiling"], capture_output=True, text=True,
                           cwd=PROJECT, timeout=600)
    assert quiet.returncode == 0 and "descriptor R^2" not in quiet.stdout


@pytest.mark.shared_data
def test_physics_section_on_the_published_data_reads_the_plots_and_summarises_the_models(tmp_path, shared_root):
    from backend.data.catalog import Catalog
    from backend.quality import QualitySpec, quality_report

    cat = Catalog(shared_root)
    ids = sorted(m for m in cat.models if "window1eV" in m and not cat.get(m).is_unencoded)[:3]
    result = quality_report(cat, ids, QualitySpec(physics=True, baselines=False), cache_dir=tmp_path)
    p = result.physics
    assert result.meta["physics_source"]["1"] == "display plots"
    assert {"published models (3): median", "published models (3): best"} <= set(p.feature_set)
    assert not any(m in set(p.feature_set) for m in ids)
    best = p[p.feature_set == "published models (3): best"].set_index("target").value
    median = p[p.feature_set == "published models (3): median"].set_index("target").value
    assert (best >= median - 1e-12).all() and (p.score == "r2").all()


def test_a_root_without_models_gets_its_baselines_and_physics(dftlike, physics_report, tmp_path):
    """A DFT-like root as built (images, band data, labels; no models yet)."""
    root, _ = dftlike
    _, cache = physics_report
    bare = tmp_path / "bare"
    shutil.copytree(root, bare, ignore=shutil.ignore_patterns("embeddings", "models"))
    out = subprocess.run([sys.executable, "-m", "backend", "quality", "--data", str(bare), "--labels", "family",
                          "--cache", str(cache), "--no-ceiling"], capture_output=True, text=True, cwd=PROJECT,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    assert "no models under" in out.stderr and "untrained resnet18 latent3 128px ch16 2 parts" in out.stdout
    assert out.stdout.count("pixels 224px (PCA-50)") == 3 and "descriptor R^2" in out.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    out = subprocess.run([sys.executable, "-m", "backend", "quality", "--data", str(empty)], capture_output=True,
                         text=True, cwd=PROJECT, timeout=600)
    assert out.returncode != 0 and "no models and no training images" in out.stderr
