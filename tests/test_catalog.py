"""The data catalog on our layout (the committed demo) and on the real published one, and its
bad-input messages."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from backend.data.catalog import Catalog
from backend.data.model_ids import make_model_id, parse_model_id, unencoded_model_id
from backend.errors import DataError, UnknownModelError
from tests.conftest import PAPER_MODEL, PROJECT, copy_models, demo_model


@pytest.mark.shared_data
def test_catalog_finds_all_published_models(shared_root):
    cat = Catalog(shared_root)
    archs = [m.arch for m in cat.models.values()]
    assert archs.count("resnet18") == 108 and archs.count("resnet50") == 108
    assert sorted(m.model_id for m in cat.models.values() if m.is_unencoded) == [
        "unencoded_window1eV_width1", "unencoded_window2eV_width1", "unencoded_window3eV_width1"]
    grid = {(m.arch, m.latent, m.window, m.epochs, m.split) for m in cat.models.values() if not m.is_unencoded}
    assert grid == {(a, l, w, e, s) for a in ("resnet18", "resnet50") for l in (1, 2, 3) for w in (1, 2, 3)
                    for e in (30, 60, 90, 120) for s in (0, 0.1, 0.5)}


@pytest.mark.shared_data
def test_paper_model_hyperparameters_and_data(shared_root):
    cat = Catalog(shared_root)
    m = cat.get(PAPER_MODEL)
    assert (m.arch, m.latent, m.window, m.epochs, m.split, m.line_width) == ("resnet50", 3, 1, 90, 0.1, 1)
    data = cat.load(PAPER_MODEL)
    assert data.X.shape == (546, 147) and data.xy.shape == (546, 2)
    # rows are matched by filename, not position
    emb = pd.read_csv(m.embedding_path).set_index("filename")
    i = 123
    assert np.allclose(data.xy[i], emb.loc[data.images[i], ["z0", "z1"]].to_numpy())
    assert data.names[0] == data.images[0].removesuffix(".png")


@pytest.mark.shared_data
@pytest.mark.parametrize("latent", [1, 2, 3])
def test_fingerprint_sizes_match_latent(shared_root, latent):
    cat = Catalog(shared_root)
    for m in cat.models.values():
        if m.latent == latent and m.window == latent:  # one window per latent keeps it quick
            assert cat.load(m.model_id).X.shape == (546, 49 * latent), m.model_id


def test_demo_model_hyperparameters_come_from_its_metadata(tmp_path):
    """Our layout: hyperparameters from models/{id}.json, rows matched by filename even when the
    two files list the materials in different orders."""
    mid = demo_model()
    meta = json.loads((PROJECT / "models" / f"{mid}.json").read_text())
    root = copy_models(PROJECT, tmp_path, [mid])
    (root / "models").mkdir()
    shutil.copy(PROJECT / "models" / f"{mid}.json", root / "models")
    emb_path = root / "embeddings" / f"{mid}_embedding.csv"
    emb = pd.read_csv(emb_path)
    emb.iloc[::-1].to_csv(emb_path, index=False)  # the embedding's rows reversed
    m = Catalog(root).get(mid)
    cfg = meta["config"]
    assert (m.arch, m.latent, m.window, m.epochs, m.split) == (cfg["arch"], cfg["latent"], cfg["window"],
                                                              cfg["epochs"], cfg["split"])
    assert m.extra["image_size"] == cfg["image_size"]
    data = Catalog(root).load(mid)
    assert data.X.shape == (meta["dataset"]["n_images"], meta["fingerprint_size"]) and data.xy.shape[1] == 2
    emb = emb.set_index("filename")
    for i in (0, 123, len(data.names) - 1):
        assert np.allclose(data.xy[i], emb.loc[data.images[i], ["z0", "z1"]].to_numpy())
    assert data.names[0] == data.images[0].removesuffix(".png")


@pytest.mark.parametrize("root", [pytest.param(PROJECT, id="demo"),
                                  pytest.param(None, id="heuslerene", marks=pytest.mark.shared_data)])
def test_latent_choices_name_the_fingerprint_width_loaded(root, request):
    """The explorer's latent choices say how many numbers a fingerprint has: 2x4x4xz for the demo's
    128 px two-part models (2x2x2xz for the shipped encoder's 64 px map), 7x7xz for the study's
    224 px ones, as the loaded fingerprints have."""
    from components.explore_controls import field_options

    cat = Catalog(root or request.getfixturevalue("shared_root"))
    models = list(cat.models.values())
    for arch in {m.arch for m in models if not m.is_unencoded}:
        for opt in field_options(models, arch, "latent"):
            for one in (m for m in models if m.arch == arch and str(m.latent) == opt["value"]):
                n = cat.load(one.model_id).X.shape[1]
                assert f"= {n})" in opt["label"] or f" {n} " in opt["label"] or f"({n} " in opt["label"], (opt, one.model_id)


@pytest.mark.parametrize("root", [pytest.param(PROJECT, id="demo"),
                                  pytest.param(None, id="heuslerene", marks=pytest.mark.shared_data)])
def test_unencoded_clusters_its_embedding(root, request):
    root = root or request.getfixturevalue("shared_root")
    data = Catalog(root).load("unencoded_window2eV_width1")
    assert data.X.shape == (len(data.names), 2) and np.array_equal(data.X, data.xy)


def test_model_ids_round_trip():
    mid = make_model_id("resnet18", 3, 1, epochs=2, split=0.1, tag="size64")
    assert mid == "resnet18_latent3_window1eV_steps2_split1.0_width1_size64"
    hp = parse_model_id(mid)
    assert (hp["arch"], hp["latent"], hp["window"], hp["epochs"], hp["split"], hp["tag"]) == (
        "resnet18", 3, 1, 2, 0.1, "size64")
    assert parse_model_id("resnet50_latent1_window3eV_steps30_split0_width1")["split"] == 0
    assert parse_model_id("resnet50_latent1_window3eV_steps30_split5.0_width1")["split"] == 0.5
    assert parse_model_id(unencoded_model_id(2))["arch"] == "unencoded"


def _our_root(tmp_path, model_id="resnet18_latent1_window1eV_steps5_split0_width1_mine"):
    """A root of our layout holding a copy of the demo model's files under another id."""
    src = Catalog(PROJECT).get(demo_model())
    (tmp_path / "embeddings").mkdir()
    shutil.copy(src.fingerprint_path, tmp_path / "embeddings" / f"{model_id}.csv")
    shutil.copy(src.embedding_path, tmp_path / "embeddings" / f"{model_id}_embedding.csv")
    return model_id


def test_our_layout_with_metadata(tmp_path):
    mid = _our_root(tmp_path, "custom_model")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "custom_model.json").write_text(json.dumps(
        {"config": {"arch": "resnet50", "latent": 1, "window": 2, "epochs": 7, "split": 0.1, "image_size": 64}}))
    m = Catalog(tmp_path).get(mid)
    assert (m.arch, m.latent, m.window, m.epochs, m.split) == ("resnet50", 1, 2, 7, 0.1)
    assert m.extra["image_size"] == 64
    assert Catalog(tmp_path).load(mid).X.shape == Catalog(PROJECT).load(demo_model()).X.shape


def test_models_appear_and_disappear_while_running(tmp_path):
    cat = Catalog(tmp_path)
    assert len(cat) == 0
    mid = _our_root(tmp_path)
    assert mid in cat
    (tmp_path / "embeddings" / f"{mid}.csv").unlink()
    (tmp_path / "embeddings" / f"{mid}_embedding.csv").unlink()
    assert mid not in cat
    with pytest.raises(UnknownModelError, match="unknown model id"):
        cat.load(mid)


@pytest.mark.parametrize("target, corrupt, message", [
    ("emb", lambda t: t.drop(index=[3, 4]), r"lacks 2 of the \d+ materials"),
    ("fp", lambda t: t.assign(z5=t["z5"].astype(object).where(t.index != 7, "abc")), "non-numeric or missing value 'abc'"),
    ("fp", lambda t: t.assign(z0=t["z0"].where(t.index != 2, np.nan)), "row 4"),
    ("fp", lambda t: pd.concat([t, t.iloc[[0]]]), "duplicate filename"),
    ("emb", lambda t: t.drop(columns=["filename"]), "no 'filename' column"),
])
def test_bad_files_name_the_file_and_row(tmp_path, target, corrupt, message):
    mid = _our_root(tmp_path)
    path = tmp_path / "embeddings" / (f"{mid}.csv" if target == "fp" else f"{mid}_embedding.csv")
    corrupt(pd.read_csv(path)).to_csv(path, index=False)
    with pytest.raises(DataError, match=message) as err:
        Catalog(tmp_path).load(mid)
    assert path.name in str(err.value)


def test_missing_root_is_named(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path / "nope")):
        Catalog(tmp_path / "nope")


def test_file_route_cannot_leave_the_root():
    cat = Catalog(PROJECT)
    assert cat.resolve_file("assets/images/train_1eV/kagome_0002.png") is not None
    assert cat.resolve_file(f"../{PROJECT.name}/README.md") is not None  # still inside
    assert cat.resolve_file("../../../etc/passwd") is None
    assert cat.resolve_file(f"../{PROJECT.name}-not/README.md") is None
    assert cat.display_image("../README", 1) is None
    assert cat.display_image("kagome_0002", 1)[:8] == b"\x89PNG\r\n\x1a\n"  # rendered from its band data


@pytest.mark.shared_data
def test_published_display_images_are_files_inside_the_root(shared_root):
    cat = Catalog(shared_root)
    assert cat.resolve_file("images/bands_10width_1eV/Ac2HgGe.png") is not None
    assert cat.resolve_file("../heuslerene/README.md") is not None  # still inside
    assert cat.display_image("../README", 1) is None
    assert cat.display_image("Ac2HgGe", 1).name == "Ac2HgGe.png"


def test_extra_map_rows_are_named_with_both_counts(tmp_path):
    mid = _our_root(tmp_path)
    path = tmp_path / "embeddings" / f"{mid}_embedding.csv"
    table = pd.read_csv(path)
    extra = table.iloc[:2].assign(filename=["ghost_1.vasp", "ghost_2.vasp"])
    pd.concat([table, extra]).to_csv(path, index=False)
    with pytest.raises(DataError, match=rf"has {len(table)} materials, embedding file .* has {len(table) + 2}") as err:
        Catalog(tmp_path).load(mid)
    assert "ghost_1" in str(err.value)


def test_a_table_too_large_for_memory_says_what_it_needs(tmp_path, monkeypatch):
    """The demo's fingerprints on a machine with 100 kB free: refused before parsing, with the
    file, the memory it needs and the memory there is."""
    import backend.data.tables as tables

    mid = _our_root(tmp_path)
    monkeypatch.setattr(tables, "_memory_available", lambda: 100_000)
    with pytest.raises(DataError, match=r"too large for this machine's memory.*needs about \d+\.\d GB, and 0\.0 GB") as err:
        Catalog(tmp_path).load(mid)
    assert f"{mid}" in str(err.value)
    monkeypatch.undo()
    assert Catalog(tmp_path).load(mid).X.shape[0] > 0
