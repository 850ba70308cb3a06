"""The DFT-like generator: textbook lattices, E_F from the electron count, labels against the
generator's own Hamiltonians, class balance of the default sets, determinism, a tiny data root."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backend.data import dftlike as D
from backend.errors import ParameterError


@pytest.fixture(scope="module", params=["demo", "holdout"])
def materials(request):
    """The default set of 600 materials (seed 0) of each family set (10-15 s each on 2 cores)."""
    return request.param, D.generate(600, seed=0, family_set=request.param)


def nearest_neighbour_model(family: str, breathing: float = 0.5, interlayer: float = 0.0) -> D.TightBinding:
    """One orbital per site, nearest-neighbour hopping +1 eV (the family's special bonds too)."""
    lat = D.LATTICES[family]
    cell = D.cell_vectors(lat.bravais, 1.0, aspect=2.0)
    xy = np.array(lat.sites) @ cell
    tb = D.TightBinding(cell=cell, onsite=np.zeros(len(lat.sites)))
    s, s2, d = D.site_bonds(lat, cell)[0]
    w = D._flux_signs(lat, s, s2)
    if family == "breathing_kagome":
        w = w * np.where(np.isclose(d, xy[s2] - xy[s]).all(1), 1.0, breathing)
    tb.add(s, s2, d, t=w)
    if family == "checkerboard":
        tb.add(0, 0, cell[0], t=1.0)
        tb.add(1, 1, cell[1], t=1.0)
    if family == "bilayer_honeycomb":
        tb.add(1, 2, np.zeros(2), t=interlayer)
    return tb


def path_bands(tb, family):
    k, dist, corners, _ = D.kpath(tb, D.LATTICES[family].bravais)
    return k, dist, corners, tb.bands(k).T


def cones_at(tb, family, energy):
    k, dist, _, bands = path_bands(tb, family)
    segments = np.split(np.arange(len(dist)), np.flatnonzero(np.diff(dist) == 0) + 1)
    return D.dirac_points(tb, k, bands - energy, segments=segments, efermi=energy)


def test_textbook_lattices():
    tb = nearest_neighbour_model("honeycomb")
    _, _, c, e = path_bands(tb, "honeycomb")                 # Γ, M, K, Γ
    assert np.allclose(e[:, c[0]], [-3, 3]) and np.allclose(e[:, c[2]], 0, atol=1e-12)
    assert [round(x, 6) for x, _ in cones_at(tb, "honeycomb", 0.0)] == [0.0] * 2   # at K, from M and from Γ
    _, _, c, e = path_bands(nearest_neighbour_model("kagome"), "kagome")
    assert np.allclose(e[0], -2) and np.allclose(e[1:, c[2]], 1)                   # flat band, cone at K
    _, _, c, e = path_bands(nearest_neighbour_model("lieb"), "lieb")
    assert np.allclose(e[1], 0, atol=1e-12) and np.allclose(e[:, c[2]], 0, atol=1e-12)  # flat through M's cone
    _, _, c, e = path_bands(nearest_neighbour_model("dice"), "dice")
    assert np.allclose(e[1], 0, atol=1e-12) and np.allclose(e[:, c[2]], 0, atol=1e-12)
    _, _, c, e = path_bands(nearest_neighbour_model("checkerboard"), "checkerboard")
    assert np.allclose(e[0], -2) and np.allclose(e[:, c[2]], -2)                   # touching at M
    _, _, c, e = path_bands(nearest_neighbour_model("breathing_kagome"), "breathing_kagome")
    assert np.allclose(e[0], -1.5) and np.diff(e[:, c[2]]).min() > 1                # flat band, K gapped
    assert cones_at(nearest_neighbour_model("pi_flux"), "pi_flux", 0.0)             # cones on X-S
    # a cone is linear; Bernal bilayer's touching at K is quadratic; a staggered potential gaps it
    assert not cones_at(nearest_neighbour_model("bilayer_honeycomb", interlayer=0.4), "bilayer_honeycomb", 0.0)
    gapped = nearest_neighbour_model("honeycomb")
    gapped.onsite = np.array([0.05, -0.05])
    assert not cones_at(gapped, "honeycomb", 0.0)
    assert not cones_at(nearest_neighbour_model("kagome"), "kagome", -2.0)          # flat + quadratic at Γ


def test_a_flat_band_is_followed_through_a_crossing():
    """A flat level at 0.5 eV and a dispersive band crossing it, hybridised by 2 meV: energy-ordered
    bands swap at the crossings and are not flat; followed by character, one band is."""
    cell = D.cell_vectors("square", 3.0)
    tb = D.TightBinding(cell=cell, onsite=np.array([0.0, 0.5]))
    tb.add(0, 0, cell, t=0.4)                            # 0.4 eV along x and y: a band from -1.6 to 1.6
    tb.add(1, 0, np.zeros(2), t=0.002)
    k, *_ = D.kpath(tb, "square")
    ordered = tb.bands(k)
    assert (ordered.max(0) - ordered.min(0) > 0.5).all()
    followed = D.tracked_bands(tb, k)
    assert min(followed.max(0) - followed.min(0)) < 0.01


def test_the_fermi_level_follows_from_the_electron_count(materials):
    _, ms = materials
    for m in ms[::10]:
        grid = m.model.bands(D.zone_grid(m.model)) - m.physics["efermi_abs"]
        n = m.physics["electrons"]
        half = n * len(grid) / 2                       # filled band-states: 2 electrons each
        assert (grid < -1e-9).sum() <= half <= (grid <= 1e-9).sum(), m.band_data.material
        assert m.band_data.efermi == 0.0               # stored relative to E_F


def test_insulators_have_their_fermi_level_mid_gap(materials):
    _, ms = materials
    insulators = [m for m in ms if m.physics["gap"] > 0]
    assert len(insulators) > 60
    for m in insulators:
        k, *_ = D.kpath(m.model, D.LATTICES[m.labels["family"]].bravais)
        both = np.concatenate([m.model.bands(D.zone_grid(m.model)), m.model.bands(k)]) - m.physics["efermi_abs"]
        vbm, cbm = both[both < 0].max(), both[both > 0].min()
        assert not m.labels["metal"] and vbm + cbm == pytest.approx(0, abs=1e-9)
        assert cbm - vbm == pytest.approx(m.physics["gap"]) and m.physics["electrons"] % 2 == 0
        n_filled = (both < 0).sum(1)
        assert (n_filled == m.physics["electrons"] // 2).all()       # the same bands filled everywhere


def test_labels_match_their_definitions(materials):
    _, ms = materials
    followed = 0
    for m in ms:
        e = m.band_data.energies[0]                    # (nbands, nk) along the path, E - E_F
        lab, phys = m.labels, m.physics
        near = np.abs(e).min(1) <= D.NEAR_EF
        if ((e.max(1) - e.min(1) < D.FLAT_WIDTH) & near).any():
            assert lab["flat_band_at_ef"]
        elif lab["flat_band_at_ef"]:                   # a flat band crossed by others, followed by character
            k, *_ = D.kpath(m.model, D.LATTICES[lab["family"]].bravais)
            t = (D.tracked_bands(m.model, k) - phys["efermi_abs"]).T
            assert (((t.max(1) - t.min(1)) < D.FLAT_WIDTH) & (np.abs(t).min(1) <= D.NEAR_EF)).any()
            followed += 1
        if lab["odd_electrons"]:
            assert lab["metal"]                        # an odd count cannot fill bands
        if phys["metal_on_path"]:                      # a band crossing E_F on the path
            assert lab["metal"]
        if lab["dirac_at_ef"]:
            assert abs(phys["dirac_energy"]) <= D.NEAR_EF
        f = phys["filling_fraction"]
        assert lab["filling"] == ("low" if f < 1 / 3 else "high" if f > 2 / 3 else "half")
    assert 0 < followed < 0.1 * len(ms)


def test_both_classes_of_every_label_are_common(materials):
    name, ms = materials
    labels = pd.DataFrame([m.labels for m in ms])
    for column in D.BINARY_LABELS:
        share = labels[column].mean()
        assert 0.15 <= share <= 0.85, f"{name}: {column} is true for {share:.1%}"
    assert set(labels["filling"]) == {"low", "half", "high"}
    assert len(set(labels["family"])) == 5 and set(labels["family"]) == set(D.FAMILY_SETS[name])


def test_bands_look_like_a_dft_run(materials):
    _, ms = materials
    within = [int((np.abs(m.band_data.energies[0]).min(1) < 3).sum()) for m in ms]
    assert np.median(within) >= 4 and min(within) >= 2             # several bands within ±3 eV of E_F
    for m in ms[::25]:
        assert m.model.n >= 6 and m.band_data.kunits == "1/Å"
        rng = np.random.default_rng(0)
        k = rng.normal(0, 1.5, (16, 2))
        assert np.allclose(m.model.bands(k), m.model.bands(-k), atol=1e-9)   # spin-degenerate bands


def test_deterministic_in_the_seed():
    a = D.make_material(7, family="kagome", seed=3)
    b = D.make_material(7, family="kagome", seed=3)
    c = D.make_material(7, family="kagome", seed=4)
    assert np.array_equal(a.band_data.energies, b.band_data.energies) and a.labels == b.labels
    assert a.band_data.energies.shape != c.band_data.energies.shape or not np.allclose(a.band_data.energies, c.band_data.energies)
    assert a.labels["material"] == "kagome_0007" and a.band_data.tick_labels == ["Γ", "M", "K", "Γ"]
    assert D.make_material(0, family="pi_flux", seed=0, family_set="holdout").band_data.tick_labels == ["Γ", "X", "S", "Y", "Γ"]


def test_a_tiny_data_root(tmp_path):
    from backend.data.bands import load_band_data

    report = D.build_dftlike_root(tmp_path, n=5, seed=1, family_set="holdout", windows=(1,), jobs=1)
    assert report["materials"] == 5
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert list(labels.columns) == ["material", "family", "orbitals", "mass", "metal", "flat_band_at_ef",
                                    "dirac_at_ef", "filling", "odd_electrons"]
    assert list(labels["family"]) == list(D.FAMILY_SETS["holdout"])
    physics = pd.read_csv(tmp_path / "physics.csv")
    assert list(physics["material"]) == list(labels["material"])
    for name in labels["material"]:
        assert (tmp_path / "images" / "train_1eV" / f"{name}.png").is_file()
        assert (tmp_path / "images" / "display_1eV" / f"{name}.png").is_file()
        bd = load_band_data(tmp_path / "bands" / f"{name}.npz")
        assert bd.efermi == 0.0 and bd.material == name
    assert not (tmp_path / "models").exists()                       # training is not done here


def test_bad_input_names_the_field(tmp_path):
    with pytest.raises(ParameterError, match="family"):
        D.make_material(0, family="hexagon", seed=0)
    with pytest.raises(ParameterError, match="family_set"):
        D.generate(3, family_set="real")
    with pytest.raises(ParameterError, match="n must be"):
        D.build_dftlike_root(tmp_path, n=2, windows=(1,))
    with pytest.raises(ParameterError, match="windows"):
        D.build_dftlike_root(tmp_path, n=5, windows=(0,))
    with pytest.raises(ParameterError, match="electrons"):
        D.fermi_level(np.zeros((4, 3)), np.zeros((2, 3)), 6)
