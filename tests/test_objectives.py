"""Training objectives: band-structure views, NT-Xent, DEC's distributions, and that every
objective's loss falls when a small run overfits the committed demo images."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from backend.autoencoder.config import VIEWS, TrainConfig
from backend.autoencoder.device import pick_device
from backend.autoencoder.images import load_image_folder
from backend.autoencoder.objectives import (
    VIEW_SETS,
    ViewSet,
    band_views,
    dec_loss,
    nt_xent,
    student_t_assignments,
    target_distribution,
    wcss_loss,
)
from backend.autoencoder.training import build_model, fit
from backend.errors import ParameterError
from tests.conftest import copy_demo_images

torch.set_num_threads(2)


def _line_image(size=32, row=10):
    x = torch.zeros(1, 1, size, size)
    x[0, 0, row, :] = 1
    return x


def test_views_are_binary_and_move_lines_vertically_only():
    x = _line_image(32, 10).repeat(64, 1, 1, 1)
    lattice = dataclasses.replace(VIEW_SETS["lattice"], thicken=0.0)
    v = band_views(x, torch.Generator().manual_seed(0), views=lattice, noise=0.0)
    assert v.shape == x.shape and set(v.unique().tolist()) <= {0.0, 1.0}
    rows = v[:, 0].sum(2)  # ink per row: a horizontal line stays one full row (or leaves the image)
    kept = rows.sum(1) > 0
    assert kept.float().mean() > 0.5
    assert torch.all(rows[kept].max(1).values == 32)
    assert len(set(rows[kept].argmax(1).tolist())) > 10  # many different heights
    # a pure inversion E -> -E puts row r at row S-1-r
    flip = ViewSet(shift=0.0, stretch=1.0 + 1e-9, flip=1.0, thicken=0.0)
    flipped = band_views(_line_image(32, 10), torch.Generator().manual_seed(0), views=flip, noise=0.0)
    assert flipped[0, 0, 21].sum() == 32 and flipped[0, 0].sum() == 32
    # the same generator state gives the same views
    a = band_views(x, torch.Generator().manual_seed(3))
    b = band_views(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["fermi", "narrow"])
def test_fermi_views_keep_the_fermi_level(name):
    """E_F-referenced plots: the views that keep E_F move a line at E_F by at most a pixel and a
    half (E_F is known to 0.03 eV, one pixel of a 64 px image of +-1 eV; the line, half a pixel
    off the zoom's centre, moves by at most a third of that under a x1.3 zoom) and never invert
    energies."""
    size = 64
    views = dataclasses.replace(VIEW_SETS[name], thicken=0.0)
    fermi = torch.zeros(256, 1, size, size)
    fermi[:, 0, size // 2, :] = 1
    v = band_views(fermi, torch.Generator().manual_seed(0), views=views, window=1.0, noise=0.0)
    rows = v[:, 0].sum(2)
    centre = (rows * torch.arange(size)).sum(1) / rows.sum(1)
    assert torch.all((centre - size // 2).abs() <= 1.5) and torch.all(rows.sum(1) >= size)
    # a line near the top (E = +0.8 eV) stays above E_F (or is zoomed out of the window): no E -> -E
    high = _line_image(size, 6).repeat(256, 1, 1, 1)
    rows = band_views(high, torch.Generator().manual_seed(1), views=views, window=1.0, noise=0.0)[:, 0].sum(2)
    seen = rows.sum(1) > 0
    assert seen.float().mean() > 0.5 and torch.all(rows[seen].argmax(1) < size // 2 - 4)
    # the shape views move E_F: the same line at E_F lands all over the image
    shape = dataclasses.replace(VIEW_SETS["shape"], thicken=0.0)
    rows = band_views(fermi, torch.Generator().manual_seed(0), views=shape, window=1.0, noise=0.0)[:, 0].sum(2)
    assert rows.argmax(1).float().std() > 5


def test_k_crop_fills_the_width_with_part_of_the_path():
    """A k-point at the centre lands anywhere a crop of half the path or more can put it, and a
    horizontal line still spans the whole width (the crop never leaves an empty margin)."""
    size = 64
    views = dataclasses.replace(VIEW_SETS["fermi"], thicken=0.0, k_reverse=0.0, k_warp=0.0)
    tick = torch.zeros(256, 1, size, size)
    tick[:, 0, :, size // 2] = 1
    cols = band_views(tick, torch.Generator().manual_seed(4), views=views, window=1.0, noise=0.0)[:, 0].sum(1)
    where = cols.argmax(1).float()
    assert where.std() > 4 and where.min() >= 0 and where.max() <= size - 1
    flat = torch.zeros(16, 1, size, size)
    flat[:, 0, size // 2, :] = 1
    v = band_views(flat, torch.Generator().manual_seed(5), views=views, window=1.0, noise=0.0)
    assert torch.all(v[:, 0].amax(1).sum(1) == size)


def test_physical_views_move_along_k_only():
    """The k axis: a vertical line (a k-point) moves sideways, reversed paths mirror it."""
    size = 64
    views = dataclasses.replace(VIEW_SETS["narrow"], thicken=0.0)
    # a k-point at 1/6 of the width (a corner's neighbourhood) moves sideways, and reversed paths mirror it
    tick = torch.zeros(512, 1, size, size)
    tick[:, 0, :, size // 6] = 1
    cols = band_views(tick, torch.Generator().manual_seed(2), views=views, window=1.0, noise=0.0)[:, 0].sum(1)
    where = cols.argmax(1).float()
    left, right = where[where < size / 2], where[where >= size / 2]
    assert 0.3 < len(left) / len(where) < 0.7  # about half of the paths reversed
    assert left.std() > 1.0 and right.std() > 1.0  # the segments' stretch moves it
    assert (left.mean() + right.mean() - (size - 1)).abs() < 3  # mirrored about the centre


def test_every_view_set_has_a_config_name():
    from backend.autoencoder.config import VIEW_RECIPES

    assert {part for parts in VIEW_RECIPES.values() for part in parts} == set(VIEW_SETS)
    assert all(VIEW_RECIPES[name] == (name,) for name in VIEW_SETS)  # each set also trains alone
    assert VIEW_RECIPES[TrainConfig().views] == ("shape", "fermi")
    with pytest.raises(ParameterError, match="views must be one of"):
        TrainConfig(views="sideways").validate()
    assert TrainConfig(views="physical", init_from="").model_id.endswith("_contrastive_physical_ch32")
    assert TrainConfig(views="lattice").model_id.endswith("_contrastive_ch32")
    assert TrainConfig().parts == 2 and TrainConfig(views="lattice").parts == 1
    assert TrainConfig(objective="reconstruction").parts == 1


def test_nt_xent_matches_its_definition():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / 0.5
    expected = 0.0
    for i in range(10):
        j = (i + 5) % 10
        others = torch.cat([sim[i, :i], sim[i, i + 1:]])
        expected += -sim[i, j] + torch.logsumexp(others, 0)
    assert nt_xent(z1, z2, 0.5).item() == pytest.approx(expected.item() / 10, rel=1e-5)
    # matching views far from each other: near zero; a random pairing: near log(2n - 1)
    basis = torch.eye(8) * 10
    assert nt_xent(basis, basis, 0.1).item() < 1e-3
    assert nt_xent(z1, z2, 1e3).item() == pytest.approx(math.log(9), rel=1e-3)


def test_dec_distributions():
    z = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [2.5, 2.5]])
    mu = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
    q = student_t_assignments(z, mu)
    assert torch.allclose(q.sum(1), torch.ones(4))
    assert q[0, 0] > 0.9 and q[2, 1] > 0.9 and torch.allclose(q[3], torch.tensor([0.5, 0.5]))
    p = target_distribution(q)
    assert torch.allclose(p.sum(1), torch.ones(4))
    assert p[0, 0] > q[0, 0] and p[2, 1] > q[2, 1]  # sharper where confident
    assert dec_loss(q, q).item() == pytest.approx(0.0, abs=1e-6) and dec_loss(q, p).item() > 0
    assert wcss_loss(z, mu).item() == pytest.approx((0 + 0.01 + 0 + 12.5) / 4)


@pytest.fixture(scope="module")
def demo_ink(tmp_path_factory):
    folder = copy_demo_images(tmp_path_factory.mktemp("demo"), 16)
    return load_image_folder(folder, 32)[1]


@pytest.fixture(scope="module")
def lattice_ink():
    """16 band images of the first demo's generator (one to three single lattices, random E_F), 32 px."""
    from backend.data.bands import render_training_image
    from backend.data.random_lattices import FAMILIES, make_material

    images = [render_training_image(make_material(i, FAMILIES[i % 4], 0)[0], 1, 32) for i in range(16)]
    return torch.as_tensor((np.stack(images) < 204).astype(np.uint8))[:, None]


@pytest.mark.parametrize("recipe", [
    dict(objective="contrastive"),
    dict(objective="reconstruction"),
    # the fine-tunings on a one-part fingerprint of the first demo's simpler plots (lattice_ink)
    dict(objective="contrastive", views="lattice", cluster_loss="idec", clusters=4),
    dict(objective="contrastive", views="lattice", cluster_loss="dec", clusters=4),
    dict(objective="reconstruction", cluster_loss="wcss", clusters=4),
    dict(objective="reconstruction", cluster_loss="idec", clusters=4),  # IDEC as published
])
def test_each_objective_loss_decreases_on_an_overfit_run(demo_ink, lattice_ink, recipe):
    # torchvision's width: on 16 images the half-width default trunk leaves IDEC's loss flat in 6 epochs
    cfg = TrainConfig(**dict(dict(arch="resnet18", latent=3, image_size=32, channels=64, epochs=12, split=0.0,
                                  batch_size=16, max_lr=3e-3, cluster_epochs=6), **recipe)).validate()
    torch.manual_seed(0)
    model = build_model(cfg, pick_device("cpu"))
    ink = lattice_ink if recipe.get("views") == "lattice" else demo_ink
    history = fit(model, ink, cfg, device=pick_device("cpu"))
    pre = [h["train_loss"] for h in history if h["phase"] == "pretrain"]
    assert len(pre) == cfg.epochs and min(pre[-2:]) < 0.85 * pre[0]
    if cfg.cluster_loss != "none":
        fine = [h["train_loss"] for h in history if h["phase"] == "finetune"]
        assert len(fine) == cfg.cluster_epochs and np.all(np.isfinite(fine))
        if cfg.cluster_loss == "dec":
            # DEC's loss is measured against a target it sharpens every epoch, so it need not fall;
            # what it does is make the soft assignments more decided
            confidence = [h["cluster_confidence"] for h in history if h["phase"] == "finetune"]
            assert confidence[-1] > confidence[0]
        elif cfg.objective == "reconstruction":
            assert min(fine[-2:]) < fine[0]
        # (a contrastive fine-tuning's loss is that of one 16-image batch under views drawn anew
        # each epoch: it moves by more than 6 epochs lower it, so only that it ran is checked)
        assert model.centroids.shape == (4, model.fingerprint_size)


def test_objective_that_needs_k_is_refused_before_training():
    for loss in ("wcss", "dec", "idec"):
        with pytest.raises(ParameterError, match="--clusters"):
            TrainConfig(cluster_loss=loss).validate()
    with pytest.raises(ParameterError, match="objective"):
        TrainConfig(objective="vae").validate()
    assert TrainConfig(image_size=64).model_id.endswith("_size64_contrastive_physical_ch32")
    assert TrainConfig(objective="reconstruction", image_size=224, channels=64, epochs=30).model_id == \
        "resnet18_latent3_window1eV_steps30_split1.0_width1"  # the study's id
    assert TrainConfig(cluster_loss="idec", clusters=4, init_from="").model_id.endswith("_contrastive_physical_idec4_ch32")
