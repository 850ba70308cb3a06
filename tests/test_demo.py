"""The demo: a tiny build end to end from each generator (the DFT-like default and the first
demo's random-E_F lattices, whose textbook dispersions are checked here), the committed demo, and
the external scores against known labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backend.cluster.params import default_model
from backend.cluster.validation import clustering_accuracy, external_scores
from backend.data.bands import load_band_data
from backend.data.catalog import Catalog
from backend.data.demo import build_demo, demo_families
from backend.data.model_ids import part_parent
from backend.data.opening import read_opening
from backend.data.random_lattices import FAMILIES, GAMMA, K, M, bands_of, kpath, make_material

DFT_FAMILIES = demo_families("dftlike", "demo")
DFT_LABELS = ["family", "orbitals", "mass", "metal", "flat_band_at_ef", "dirac_at_ef", "filling", "odd_electrons"]

HS = np.array([GAMMA, M, K])


@pytest.mark.parametrize("t, e0", [(1.0, 0.0), (0.7, 0.3)])
def test_textbook_dispersions(t, e0):
    tri = bands_of("triangular", HS, t=t, e0=e0)[0]
    assert np.allclose(tri, [e0 - 6 * t, e0 + 2 * t, e0 + 3 * t])
    honey = bands_of("honeycomb", HS, t=t, e0=e0)
    assert np.allclose(honey[:, 0], [e0 - 3 * t, e0 + 3 * t]) and np.allclose(honey[:, 1], [e0 - t, e0 + t])
    assert np.allclose(honey[:, 2], e0)  # Dirac cone at K
    kag = bands_of("kagome", HS, t=t, e0=e0)
    assert np.allclose(kag[:, 0], e0 + np.array([-4, 2, 2]) * t)
    assert np.allclose(kag[:, 2], e0 + np.array([-1, -1, 2]) * t)  # Dirac point at K, flat band above
    k, _, _ = kpath(50)
    assert np.allclose(bands_of("kagome", k, t=t, e0=e0)[2], e0 + 2 * t)  # flat everywhere
    dice = bands_of("dice", k, t=t, e0=e0)
    assert np.allclose(dice[1], e0)  # flat band...
    assert np.allclose(bands_of("dice", HS[2:], t=t, e0=e0)[:, 0], e0)  # ...through the Dirac point at K


def test_materials_are_deterministic_and_labelled():
    a, la = make_material(7, "kagome", 0)
    b, lb = make_material(7, "kagome", 0)
    c, _ = make_material(7, "kagome", 1)
    assert np.array_equal(a.energies, b.energies) and la == lb
    assert not np.array_equal(a.energies.shape, c.energies.shape) or not np.allclose(a.energies, c.energies)
    assert la["family"] == "kagome" and la["material"] == "kagome_0007"
    assert a.tick_labels == ["Γ", "M", "K", "Γ"] and len(a.ticks) == 4


def test_tiny_demo_build(tmp_path):
    report = build_demo(tmp_path, n=12, seed=3, windows=(1,), epochs=1, image_size=32, jobs=2)
    assert report["materials"] == 12
    cat = Catalog(tmp_path)
    pretrained = [m for m in cat.models.values() if m.is_pretrained]
    trained = "resnet18_latent3_window1eV_steps1_split1.0_width1_size32_contrastive_physical_ch32"
    assert set(cat.models) - {m.model_id for m in pretrained} == {
        "unencoded_window1eV_width1", trained, f"{trained}_shape-part", f"{trained}_fermi-part"}
    # it opens on the band-shape map of its widest window's model, coloured by the family
    assert read_opening(tmp_path) == ({"default_model": f"{trained}_shape-part", "opening_view": {
        "algo": "kmeans", "k": str(len(DFT_FAMILIES)), "color": "family"}}, None)
    assert default_model(cat) == f"{trained}_shape-part"
    # the shipped encoder's map of the window: what a clone without trained weights places materials on
    assert [m.window for m in pretrained] == [1] and pretrained[0].model_id in report["models"]
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert list(labels.columns) == ["material"] + DFT_LABELS
    assert sorted(labels["family"].unique()) == sorted(DFT_FAMILIES)
    physics = pd.read_csv(tmp_path / "physics.csv")
    assert list(physics["material"]) == list(labels["material"]) and (physics["electrons"] > 0).all()
    data = cat.load("unencoded_window1eV_width1")
    assert sorted(data.names) == sorted(labels["material"])
    assert isinstance(cat.display_image("kagome_0002", 1), bytes)  # rendered from band data
    bd = load_band_data(tmp_path / "assets" / "bands" / "kagome_0002.npz")
    assert bd.efermi == 0.0  # referenced to E_F, as VASP/QE plots are
    # same seed, same band files
    again = tmp_path / "again"
    build_demo(again, n=12, seed=3, windows=(1,), jobs=2, models=False)
    first = sorted((tmp_path / "assets" / "bands").glob("*.npz"))
    assert [np.load(f)["energies"].tobytes() for f in first] == \
        [np.load(again / "assets" / "bands" / f.name)["energies"].tobytes() for f in first]


def test_tiny_lattice_demo_build_keeps_its_views(tmp_path):
    """The first demo's generator stays buildable, its models trained with the views made for it."""
    report = build_demo(tmp_path, n=8, seed=3, windows=(1,), epochs=1, image_size=32, jobs=1, generator="lattice")
    assert report["models"][:2] == ["unencoded_window1eV_width1",
                                    "resnet18_latent3_window1eV_steps1_split1.0_width1_size32_contrastive_ch32"]
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert list(labels.columns) == ["material", "family", "metal", "flat_band"]
    assert sorted(labels["family"].unique()) == sorted(FAMILIES)
    assert not (tmp_path / "physics.csv").exists()


def test_bad_demo_parameters_name_the_field(tmp_path):
    from backend.errors import ParameterError

    with pytest.raises(ParameterError, match="generator"):
        build_demo(tmp_path, n=12, generator="vasp", models=False)
    with pytest.raises(ParameterError, match="families"):
        build_demo(tmp_path, n=12, families="other", models=False)
    with pytest.raises(ParameterError, match="n must be at least 10"):
        build_demo(tmp_path, n=6, models=False)
    assert not (tmp_path / "labels.csv").exists()


def test_external_scores_on_hand_made_labelings():
    truth = np.array(["a"] * 4 + ["b"] * 4 + ["c"] * 2)
    perfect = np.array([0] * 4 + [1] * 4 + [2] * 2)
    s = external_scores(truth, perfect)
    assert s["accuracy"] == s["nmi"] == s["ari"] == 1.0
    permuted = np.array([2] * 4 + [0] * 4 + [1] * 2)
    assert external_scores(truth, permuted)["accuracy"] == 1.0 and external_scores(truth, permuted)["ari"] == 1.0
    noise = np.full(10, -1)
    s = external_scores(truth, noise)
    assert s["accuracy"] == 0.4 and s["ari"] == 0.0 and np.isnan(s["ari_no_noise"]) and s["noise_fraction"] == 1.0
    half = perfect.copy()
    half[[0, 4]] = -1
    s = external_scores(truth, half)
    assert s["accuracy_no_noise"] == 1.0 and s["accuracy"] == pytest.approx(0.8)
    assert clustering_accuracy(["a", "a", "b"], [0, 1, 1]) == pytest.approx(2 / 3)


def test_committed_demo_is_the_apps_default_and_is_labelled():
    """The demo in the project root (built by `python -m backend demo`) opens in the catalog, and
    its labels line up with the materials of every model."""
    from backend.data.labels import label_columns, load_labels
    from tests.conftest import PROJECT, demo_model

    cat = Catalog(PROJECT)
    assert {m.window for m in cat.models.values()} == {1, 2, 3} and len(cat) == 11
    # per window: the unencoded map, the model trained by `train` without flags, the shipped encoder's map
    assert sorted((m.window, m.is_unencoded, m.is_pretrained) for m in cat.models.values() if not m.is_part) == sorted(
        (w, u, p) for w in (1, 2, 3) for u, p in ((True, False), (False, False), (False, True)))
    # and the two part maps of the 3 eV model, the band-shape one the map the demo opens on
    parts = sorted(m.model_id for m in cat.models.values() if m.is_part)
    assert parts == sorted(f"{demo_model(3)}_{p}-part" for p in ("fermi", "shape"))
    assert default_model(cat) == f"{demo_model(3)}_shape-part"
    assert label_columns(cat) == DFT_LABELS
    for mid in cat.models:
        data = cat.load(mid)
        fam = load_labels(cat, "family", data.names)
        assert len(data.names) == 600 and set(fam) == set(DFT_FAMILIES)


def test_the_demo_models_are_what_train_makes_by_default():
    """The quality docs/findings.md reports for the demo's models is what a user gets from `train`
    without flags: every committed demo model's recorded config is TrainConfig's defaults (bar
    its window, and the device it ran on)."""
    import json

    from backend.autoencoder.config import TrainConfig
    from tests.conftest import PROJECT

    defaults = TrainConfig().as_dict()
    trained = sorted(p for p in (PROJECT / "models").glob("*.json")
                     if not p.stem.endswith("_pretrained") and not part_parent(p.stem))
    assert len(trained) == 3
    for path in trained:
        cfg = json.loads(path.read_text())["config"]
        differ = {k for k in defaults if cfg.get(k) != defaults[k]} - {"window", "device"}
        assert not differ, f"{path.name} differs from train's defaults in {sorted(differ)}"
        assert TrainConfig(window=cfg["window"]).model_id == path.stem


def test_holdout_lattices_are_textbook_and_unlike_the_demo(tmp_path):
    """The first demo's held-out families (lattices it does not contain) have their defining features."""
    from backend.data.random_lattices import HOLDOUT_FAMILIES, SQ_M, SQ_X, kpath

    sq = np.array([[0.0, 0.0], SQ_X, SQ_M])
    t, e0 = 0.8, 0.2
    assert np.allclose(bands_of("square", sq, t=t, e0=e0)[0], e0 + np.array([-4, 0, 4]) * t)
    lieb = bands_of("lieb", sq, t=t, e0=e0)
    assert np.allclose(lieb[1], e0) and np.allclose(lieb[:, 2], e0)  # flat band through the cone at M
    k, _, _ = kpath(40, lattice="square")
    assert np.allclose(bands_of("lieb", k, t=t, e0=e0)[1], e0)  # flat along the whole path
    cb = bands_of("checkerboard", k, t=t, e0=e0)
    assert np.allclose(cb[0], e0 - 2 * t) and np.isclose(cb[1, 79], e0 - 2 * t)  # flat band, touching at M
    from backend.data.random_lattices import hamiltonian

    gap = np.linalg.eigvalsh(hamiltonian("gapped_honeycomb", HS[2:], t=t, e0=e0, gap=0.3))[0]
    assert np.allclose(gap, [e0 - 0.3, e0 + 0.3])  # the cone at K opens a gap of 2 * 0.3
    report = build_demo(tmp_path, n=8, seed=1, windows=(1,), jobs=1, families="holdout", models=False,
                        generator="lattice")
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert report["models"] == ["unencoded_window1eV_width1"]
    assert sorted(labels.family.unique()) == sorted(HOLDOUT_FAMILIES)
    assert not set(labels.family) & set(FAMILIES)


def test_dftlike_holdout_demo_shares_no_lattice_with_the_demo(tmp_path):
    build_demo(tmp_path, n=10, seed=1, windows=(1,), jobs=1, families="holdout", models=False)
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert sorted(labels.family.unique()) == sorted(demo_families("dftlike", "holdout"))
    assert not set(labels.family) & set(DFT_FAMILIES)
