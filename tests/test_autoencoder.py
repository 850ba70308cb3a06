"""The autoencoder backend: shapes, noise, a tiny real run on imported plots, atomic outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.autoencoder.config import paper_grid
from backend.autoencoder.device import pick_device
from backend.autoencoder.encoding import training_images
from backend.autoencoder.images import import_plot, import_plots, load_image_folder
from backend.autoencoder.model import Autoencoder
from backend.autoencoder.noise import localized_noise
from backend.autoencoder.training import TrainConfig, fit, train_model
from backend.data.bands import load_band_data, render_display_png
from backend.data.catalog import Catalog
from backend.errors import DataError, ParameterError
from backend.progress import Cancelled
from tests.conftest import DEMO_BANDS, demo_display_plots

torch.set_num_threads(2)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
@pytest.mark.parametrize("latent", [1, 2, 3])
def test_shapes_at_224(arch, latent):
    model = Autoencoder(arch, latent, 224).eval()
    with torch.no_grad():
        x = torch.rand(1, 1, 224, 224)
        z = model.encode(x)
        assert z.shape == (1, latent, 7, 7) and z.flatten(1).shape[1] == 49 * latent
        assert model.decoder(z).shape == (1, 1, 224, 224)


def test_noise_touches_inputs_only_with_the_right_area():
    g = torch.Generator().manual_seed(0)
    clean = torch.zeros(400, 1, 64, 64)
    target = clean.clone()
    noisy, mask = localized_noise(clean, g, p=0.5)
    assert torch.equal(clean, target)  # the input batch (the target) is not modified in place
    frac = mask.float().mean((1, 2, 3))
    applied = frac > 0
    assert 0.4 < applied.float().mean() < 0.6
    assert frac[applied].min() >= 0.18 and frac[applied].max() <= 0.32
    assert torch.equal(noisy[~mask], clean[~mask]) and noisy[mask].std() > 0.5
    # boxes differ between images (the published code gave every image the same box)
    first = [tuple(torch.nonzero(m[0]).min(0).values.tolist()) for m in mask[applied][:10]]
    assert len(set(first)) > 5


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory):
    """Training images imported from 12 labelled plots (of demo materials, drawn like the
    published ones)."""
    plots = demo_display_plots(tmp_path_factory.mktemp("plots"))
    out = tmp_path_factory.mktemp("train")
    report = import_plots(plots, out, size=224, jobs=2)
    assert report == {"written": 12, "skipped": {}}
    return out


@pytest.mark.parametrize("plot", [
    pytest.param("demo", id="demo"),  # a honeycomb material: no flat band that would fill a row
    pytest.param("heuslerene", id="heuslerene", marks=pytest.mark.shared_data)])
def test_import_plots_drops_axes_and_colored_lines(plot, tmp_path, request):
    if plot == "demo":
        path = tmp_path / "honeycomb_0001.png"
        path.write_bytes(render_display_png(load_band_data(DEMO_BANDS / "honeycomb_0001.npz"), 1))
    else:
        path = request.getfixturevalue("shared_root") / "images" / "bands_10width_1eV" / "Ac2HgGe.png"
    img = import_plot(path)
    assert img.shape == (224, 224) and set(np.unique(img)) <= {0, 255}
    ink = img == 0
    assert 0.01 < ink.mean() < 0.2  # band lines, not a filled frame
    assert ink.mean(1).max() < 0.9 and ink.mean(0).max() < 0.9  # no frame, Fermi or high-symmetry line


def test_tiny_real_run_is_read_by_the_catalog(tiny_images, tmp_path):
    cfg = TrainConfig(arch="resnet18", latent=2, epochs=2, split=0.25, image_size=64, batch_size=4)
    events = []
    images = tmp_path / "root" / "images" / "train_1eV"
    shutil.copytree(tiny_images, images)
    root = tmp_path / "root"
    result = train_model(cfg, images, root, progress=lambda d, t, **i: events.append((d, t, i)))
    assert result.model_id == "resnet18_latent2_window1eV_steps2_split2.5_width1_size64_contrastive_physical_ch32"
    assert [e[0] for e in events if e[2].get("stage") == "train"] == [1, 2]
    assert all(np.isfinite(e[2]["val_loss"]) for e in events if e[2].get("stage") == "train")
    info = Catalog(root).get(result.model_id)
    assert (info.arch, info.latent, info.epochs, info.split, info.extra["image_size"]) == ("resnet18", 2, 2, 0.25, 64)
    data = Catalog(root).load(result.model_id)
    assert data.X.shape == (12, 2 * 2 * 2 * 2) and data.xy.shape == (12, 2) and np.isfinite(data.xy).all()
    assert (root / "models" / f"{result.model_id}_recon.png").stat().st_size > 0
    with pytest.raises(ParameterError, match="already exists"):
        train_model(cfg, tiny_images, root)
    # the metadata names the image folder relative to the root: no path of this machine, and the
    # root can move
    meta = json.loads((root / "models" / f"{result.model_id}.json").read_text())
    assert meta["dataset"]["images"] == "images/train_1eV"
    moved = shutil.move(root, tmp_path / "moved")
    assert training_images(moved, result.model_id) == Path(moved) / "images" / "train_1eV"
    assert Catalog(moved).load(result.model_id).X.shape == (12, 2 * 2 * 2 * 2)  # two parts of 2x2 x latent 2


def test_losses_decrease_when_overfitting(tiny_images):
    names, ink = load_image_folder(tiny_images, 64)
    cfg = TrainConfig(arch="resnet18", latent=3, epochs=6, split=0.0, image_size=64, batch_size=6,
                      max_lr=3e-3, noise_prob=0.0, objective="reconstruction")
    torch.manual_seed(0)
    model = Autoencoder("resnet18", 3, 64)
    history = fit(model, ink, cfg, device=pick_device("cpu"))
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"]


def test_cancel_or_crash_leaves_no_model(tiny_images, tmp_path, monkeypatch):
    cfg = TrainConfig(arch="resnet18", latent=1, epochs=2, split=0.0, image_size=64, batch_size=4)

    def cancel(done, total, **info):
        raise Cancelled()

    with pytest.raises(Cancelled):
        train_model(cfg, tiny_images, tmp_path, progress=cancel)
    # a crash while writing the embedding (the last file) removes what was written before it
    import backend.autoencoder.encoding as enc

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(enc, "write_embeddings", broken)
    with pytest.raises(OSError, match="disk full"):
        train_model(cfg, tiny_images, tmp_path)
    assert len(Catalog(tmp_path)) == 0
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_bad_input_is_refused_before_training(tmp_path, tiny_images):
    with pytest.raises(DataError, match="does not exist"):
        train_model(TrainConfig(image_size=64), tmp_path / "missing", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no PNG images"):
        train_model(TrainConfig(image_size=64), tmp_path / "empty", tmp_path)
    mixed = tmp_path / "mixed"
    shutil.copytree(tiny_images, mixed)
    from PIL import Image

    Image.new("L", (100, 80), 255).save(mixed / "odd.png")
    with pytest.raises(DataError, match="mixes image sizes"):
        train_model(TrainConfig(image_size=64), mixed, tmp_path)
    (mixed / "odd.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="odd.png is not a readable image"):
        train_model(TrainConfig(image_size=64), mixed, tmp_path)
    for bad, field in [(dict(arch="vgg"), "arch"), (dict(latent=4), "latent"), (dict(split=1.0), "split"),
                       (dict(image_size=100), "image_size"), (dict(epochs=0), "epochs")]:
        with pytest.raises(ParameterError, match=field):
            TrainConfig(**bad).validate()


def test_paper_grid_has_216_distinct_models():
    grid = paper_grid()
    assert len(grid) == 216 and len({c.model_id for c in grid}) == 216
    # the study's settings give the study's ids; the default recipe marks its own
    from backend.autoencoder.config import STUDY_RECIPE

    assert "resnet50_latent3_window1eV_steps90_split1.0_width1" in {c.model_id for c in paper_grid(**STUDY_RECIPE)}
    # from scratch, every one (the shipped encoder's trunk is one of the grid's)
    assert all(c.model_id.endswith("_size128_contrastive_physical_ch32") and not c.init_from for c in grid)
    assert len(paper_grid(window=1, arch="resnet50")) == 36
