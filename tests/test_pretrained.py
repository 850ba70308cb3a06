"""The pretrained band encoder shipped with bandscape: its files, encoding a user's images with
it, fine-tuning from it, its corpus, and the clear messages when its files are missing or broken."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from backend.__main__ import main
from backend.autoencoder import shipped
from backend.autoencoder import config
from backend.autoencoder.config import (
    PRETRAINED,
    SCRATCH_CHANNELS,
    STUDY_RECIPE,
    VIEWS,
    TrainConfig,
    trunk_mismatch,
    view_parts,
)
from backend.autoencoder.encoding import encode_images, load_model
from backend.autoencoder.images import load_image_folder
from backend.autoencoder.model import Autoencoder
from backend.autoencoder.pretrained import encode_pretrained
from backend.autoencoder.shipped import REBUILD_COMMAND, load_pretrained_encoder, shipped_paths
from backend.autoencoder.training import train_model
from backend.data.catalog import Catalog
from backend.data.model_ids import model_paths
from backend.errors import DataError, ParameterError
from tests.conftest import DEMO_IMAGES


def demo_folder(tmp_path, n: int, name: str = "train_1eV"):
    """The first ``n`` of the demo's 1 eV training images, in a folder of their own (window known)."""
    folder = tmp_path / "images" / name
    folder.mkdir(parents=True)
    for p in sorted(DEMO_IMAGES.glob("*.png"))[:n]:
        shutil.copy(p, folder / p.name)
    shutil.copy(DEMO_IMAGES / "images.json", folder / "images.json")
    return folder


def test_the_shipped_encoder_is_small_recorded_and_deterministic(tmp_path):
    weights, record = shipped_paths()
    assert weights.stat().st_size + record.stat().st_size <= 8 * 2**20
    model, meta = load_pretrained_encoder()
    cfg = meta["config"]
    assert cfg["channels"] in (16, 32) and cfg["objective"] == "contrastive" and cfg["views"] in VIEWS
    corpus = meta["corpus"]
    assert corpus["n"] >= 20000 and corpus["family_set"] == "demo" and corpus["seed"] >= 1000
    assert corpus["generator"] == "backend.data.dftlike" and set(corpus["window_counts"]) == {"1", "2", "3"}
    assert meta["rebuild"].startswith("python -m backend pretrain") and meta["git_commit"]
    assert {"corpus_build_s", "train_s", "images_per_s"} <= set(meta["timing"])
    assert {"cores", "cpu_bf16"} <= set(meta["machine"])
    state = torch.load(weights, map_location="cpu", weights_only=True)["state_dict"]
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}

    _, ink = load_image_folder(demo_folder(tmp_path, 20), cfg["image_size"])
    first = encode_images(model, ink, torch.device("cpu"))
    again = encode_images(load_pretrained_encoder()[0], ink, torch.device("cpu"))
    parts, grid = len(view_parts(cfg["views"])), cfg["image_size"] // 32  # one encoder a part; a 32x smaller grid
    assert first.shape == (20, parts * grid * grid * cfg["latent"]) and np.isfinite(first).all()
    assert np.array_equal(first, again)
    assert np.unique(first.round(4), axis=0).shape[0] > 10  # not collapsed onto one point


def test_encode_pretrained_writes_a_model_the_catalog_lists(tmp_path):
    root = tmp_path / "root"
    images = demo_folder(root, 30)
    assert main(["encode", "--pretrained", "--images", str(images), "--data", str(root)]) == 0
    models = Catalog(root).models
    (model_id,) = models
    channels = load_pretrained_encoder()[1]["config"]["channels"]
    assert model_id.endswith(f"_ch{channels}_pretrained") and "window1eV" in model_id
    meta = json.loads(model_paths(root, model_id)["metadata"].read_text())
    assert meta["config"]["window"] == 1 and meta["pretrained"]["corpus"]["n"] >= 20000
    assert "not trained on these images" in meta["description"]
    data = Catalog(root).load(model_id)
    assert data.X.shape[0] == 30
    # a model like any other: re-encoding it with `encode --model` works from its own copy
    assert main(["encode", "--model", model_id, "--data", str(root)]) == 0


@pytest.mark.parametrize("broken", ["missing", "corrupt", "no-record"])
def test_missing_or_corrupt_weights_name_the_file_and_the_rebuild(tmp_path, monkeypatch, capsys, broken):
    folder = tmp_path / "weights"
    folder.mkdir()
    weights, record = shipped_paths(folder)
    if broken != "no-record":
        shutil.copy(shipped_paths()[1], record)
    if broken == "corrupt":
        weights.write_bytes(b"not a torch file")
    elif broken == "no-record":
        shutil.copy(shipped_paths()[0], weights)
    monkeypatch.setattr(shipped, "SHIPPED_DIR", folder)
    with pytest.raises(DataError) as err:
        load_pretrained_encoder()
    message = str(err.value)
    assert REBUILD_COMMAND in message
    assert str(record if broken == "no-record" else weights) in message
    # the commands refuse with the same message and leave nothing half-written
    root = tmp_path / "root"
    images = demo_folder(root, 6)
    with pytest.raises(DataError, match="rebuild it with"):
        encode_pretrained(images, root)
    assert not (root / "models").exists() and not (root / "embeddings").exists()
    assert main(["encode", "--pretrained", "--images", str(images), "--data", str(root)]) == 2
    assert REBUILD_COMMAND in capsys.readouterr().err


def test_a_corrupt_record_is_named_too(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    folder.mkdir()
    weights, record = shipped_paths(folder)
    shutil.copy(shipped_paths()[0], weights)
    record.write_text("{not json")
    monkeypatch.setattr(shipped, "SHIPPED_DIR", folder)
    with pytest.raises(DataError, match=f"{record}.*rebuild it with"):
        load_pretrained_encoder()


def test_train_init_from_pretrained_starts_from_the_shipped_weights(tmp_path):
    root = tmp_path / "root"
    images = demo_folder(root, 12)
    cfg = TrainConfig(init_from=PRETRAINED, epochs=1, split=0, batch_size=6, views="lattice")
    result = train_model(cfg, images, root)
    shipped = load_pretrained_encoder()[1]["config"]
    channels = shipped["channels"]
    assert result.model_id.endswith(f"_ch{channels}_pretrained-tuned") and "steps1" in result.model_id
    tuned, tuned_cfg = load_model(root, result.model_id)
    assert tuned_cfg["views"] == shipped["views"] and tuned_cfg["channels"] == channels  # the shipped recipe's
    assert tuned_cfg["init_from"] == PRETRAINED and tuned_cfg["epochs"] == 1
    start = load_pretrained_encoder()[0].state_dict()
    moved = [k for k, v in tuned.state_dict().items() if v.is_floating_point() and not torch.equal(v, start[k])]
    assert moved and len(result.history) == 1
    meta = json.loads(model_paths(root, result.model_id)["metadata"].read_text())
    assert meta["pretrained"]["corpus"]["n"] >= 20000
    assert result.model_id in Catalog(root).models


def test_train_starts_from_the_shipped_encoder_when_it_asks_for_its_trunk(monkeypatch, tmp_path):
    shipped = load_pretrained_encoder()[1]["config"]
    default = TrainConfig()
    assert default.init_from == PRETRAINED and default.channels == shipped["channels"]
    assert default.model_id == ("resnet18_latent3_window1eV_steps60_split1.0_width1_size128_contrastive_physical"
                                f"_ch{shipped['channels']}_pretrained-tuned")
    # the run's own fields (window, epochs, seed, fine-tuning) keep it; another trunk trains from scratch
    assert TrainConfig(window=3, epochs=5, seed=2, cluster_loss="wcss", clusters=4).init_from == PRETRAINED
    for other in (dict(image_size=64), dict(channels=32), dict(arch="resnet50"), dict(latent=1),
                  dict(views="lattice"), dict(objective="reconstruction")):
        cfg = TrainConfig(**other)
        assert cfg.init_from == "" and cfg.model_id.endswith(f"_ch{cfg.channels}"), other
    assert TrainConfig(image_size=64).channels == SCRATCH_CHANNELS
    assert TrainConfig(init_from="").channels == SCRATCH_CHANNELS
    assert TrainConfig(**STUDY_RECIPE).init_from == ""
    assert TrainConfig.from_record({"arch": "resnet18", "latent": 3}).init_from == ""  # a record from before it
    # a clone without the record trains from scratch rather than failing
    monkeypatch.setattr(config, "PRETRAINED_DIR", tmp_path)
    assert "missing" in trunk_mismatch({})[0] and TrainConfig().init_from == ""


def test_train_cli_says_where_it_starts(tmp_path, capsys):
    root = tmp_path / "root"
    images = demo_folder(root, 12)
    common = ["train", "--images", str(images), "--data", str(root), "--epochs", "1", "--split", "0",
              "--batch-size", "6"]
    assert main(common) == 0
    out = capsys.readouterr()
    assert "starting from the encoder shipped with bandscape" in out.err and "_ch16_pretrained-tuned:" in out.out
    assert main(common + ["--image-size", "64"]) == 0
    out = capsys.readouterr()
    assert "training from scratch" in out.err and "image_size 64 (the shipped encoder's: 128)" in out.err
    assert "_size64_contrastive_physical_ch32:" in out.out


def test_channels_is_validated_and_named_in_the_id_only_when_not_64():
    assert TrainConfig(init_from="").model_id == \
        "resnet18_latent3_window1eV_steps60_split1.0_width1_size128_contrastive_physical_ch32"
    assert TrainConfig(channels=64).model_id.endswith("_size128_contrastive_physical")
    assert TrainConfig(channels=16, init_from=PRETRAINED).model_id.endswith("_ch16_pretrained-tuned")
    for bad in (48, 0, True, "32", 32.0):
        with pytest.raises(ParameterError, match="channels must be one of"):
            TrainConfig(channels=bad).validate()
    with pytest.raises(ParameterError, match="needs a cluster_loss"):
        TrainConfig(init_from="some_model").validate()
    TrainConfig(init_from=PRETRAINED).validate()  # pre-training further needs none
    sizes = {c: sum(p.numel() for p in Autoencoder("resnet18", 3, 64, "contrastive", channels=c).encoder.parameters())
             for c in (16, 32, 64)}
    assert sizes[16] < sizes[32] < sizes[64] and sizes[64] / sizes[32] > 3.5


def test_the_corpus_draws_what_a_folder_of_training_images_loads(tmp_path):
    from backend.data.bands import render_training_image
    from backend.data.corpus import build_corpus, corpus_window, training_ink
    from backend.data.dftlike import make_material

    for index, family in ((3, "kagome"), (7, "lieb")):
        bd = make_material(index, family=family, seed=1000).band_data
        window = corpus_window(1000, index)
        folder = tmp_path / str(index)
        folder.mkdir()
        Image.fromarray(render_training_image(bd, window, 224)).save(folder / "m.png")
        _, ink = load_image_folder(folder, 64)
        assert np.array_equal(training_ink(bd, window, 64), ink[0, 0].numpy())
    corpus = build_corpus(10, jobs=1)
    assert corpus.ink.shape == (10, 1, 64, 64) and set(corpus.windows) <= {1.0, 2.0, 3.0}
    assert list(corpus.labels["family"][:5]) == ["triangular", "honeycomb", "kagome", "square", "lieb"]
    with pytest.raises(ParameterError, match="seed must be >= 1000"):
        build_corpus(10, seed=0)


def test_pretrain_builds_its_corpus_at_the_requested_size(tmp_path):
    """``pretrain --image-size``: the corpus is drawn at that size, the encoder takes it as input,
    and the record's rebuild command repeats it."""
    out = tmp_path / "weights"
    assert main(["pretrain", "--out", str(out), "--n", "40", "--epochs", "1", "--image-size", "32",
                 "--channels", "16", "--views", "fermi", "--jobs", "1"]) == 0
    meta = json.loads((out / "band_encoder.json").read_text())
    assert meta["config"]["image_size"] == 32 and meta["corpus"]["image_size"] == 32
    assert "--image-size 32" in meta["rebuild"]
    model, _ = load_pretrained_encoder(out)
    _, ink = load_image_folder(demo_folder(tmp_path, 6), 32)
    X = encode_images(model, ink, torch.device("cpu"))
    assert X.shape == (6, 3) and np.isfinite(X).all()  # one part, a 1x1 grid of 3 latent channels at 32 px
