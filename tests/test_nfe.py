"""The nearly-free-electron generator: the plane-wave Hamiltonian against textbook results
(free electrons, the zone-boundary gap of a weak potential, the honeycomb's Dirac point), the
labels' definitions and balance, and a held-out root built through `demo`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backend.data import nfe
from backend.data.demo import build_demo, demo_families
from backend.data.tightbinding import TOL, cell_vectors
from backend.errors import ParameterError


def crystal(family: str, depths, widths=(0.4, 0.4), a: float = 3.0) -> nfe.PlaneWaveCrystal:
    bravais, atoms = nfe.FAMILIES[family]
    return nfe.PlaneWaveCrystal(cell_vectors(bravais, a), atoms, depths[:len(atoms)], widths[:len(atoms)])


def test_free_electrons_are_parabolas_folded_into_the_zone():
    c = crystal("square", [0.0])
    b = 2 * np.pi / 3.0
    gamma = c.bands(np.zeros((1, 2)))[0]
    # at Γ: 0, then the four shortest G (|G| = b), then the four diagonal ones (|G| = √2 b)
    assert np.allclose(gamma[:9], nfe.HBAR2_2M * b * b * np.array([0, 1, 1, 1, 1, 2, 2, 2, 2]))
    x = c.bands(np.array([[b / 2, 0.0]]))[0]   # X: two plane waves meet
    assert np.isclose(x[0], x[1]) and np.isclose(x[0], nfe.HBAR2_2M * (b / 2) ** 2)


def test_a_weak_potential_opens_twice_its_fourier_component_at_the_zone_boundary():
    v0, sigma = 0.05, 0.4
    c = crystal("square", [v0], widths=[sigma])
    b = 2 * np.pi / 3.0
    x = c.bands(np.array([[b / 2, 0.0]]))[0]
    expected = 2 * v0 * np.exp(-0.5 * sigma ** 2 * b ** 2)
    assert abs((x[1] - x[0]) - expected) < 0.03 * expected


def test_the_honeycomb_has_a_dirac_point_at_k_unless_its_two_wells_differ():
    def splitting(depths):
        c = crystal("honeycomb", depths)
        k = np.array([1 / 3, 2 / 3]) @ c.reciprocal()
        e = np.sort(c.bands(k[None])[0][:3])
        return min(e[1] - e[0], e[2] - e[1])  # the doublet's splitting

    assert splitting([1.0, 1.0]) < 1e-3  # (the plane-wave cutoff breaks the symmetry by ~1e-4 eV)
    assert splitting([1.0, 0.6]) > 0.05


@pytest.fixture(scope="module")
def materials():
    families = list(nfe.FAMILIES)
    return [nfe.make_material(i, family=families[i % len(families)], seed=0) for i in range(150)]


def test_labels_match_their_definitions(materials):
    for bd, lab in materials:
        e = bd.energies[0]
        assert lab["odd_electrons"] == bool(lab["electrons"] % 2) and 1 <= lab["electrons"] <= 8
        crosses = bool(((e.min(1) < -TOL) & (e.max(1) > TOL)).any())
        if crosses or lab["odd_electrons"]:
            assert lab["metal"], lab
        if not lab["metal"]:  # E_F in a gap: mid-gap, bands on either side
            below, above = e[e < 0], e[e > 0]
            assert below.size and above.size and abs(below.max() + above.min()) < 1e-6 + 0.5 * (above.min() - below.max())


def test_both_classes_of_every_label_are_common(materials):
    frame = pd.DataFrame([lab for _, lab in materials])
    assert sorted(frame.family.unique()) == sorted(nfe.FAMILIES)
    for column in ("metal", "odd_electrons"):
        share = frame[column].mean()
        assert 0.15 <= share <= 0.85, (column, share)


def test_deterministic_and_bad_input_names_the_field():
    a, b = nfe.make_material(7, family="checkerboard", seed=3), nfe.make_material(7, family="checkerboard", seed=3)
    assert np.array_equal(a[0].energies, b[0].energies) and a[1] == b[1]
    with pytest.raises(ParameterError, match="family"):
        nfe.make_material(0, family="kagome", seed=0)


def test_a_held_out_root_of_another_construction(tmp_path):
    build_demo(tmp_path, n=10, seed=1, windows=(3,), jobs=1, families="holdout", models=False, generator="nfe")
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert sorted(labels.family.unique()) == sorted(demo_families("nfe", "holdout"))
    assert len(list((tmp_path / "assets" / "images" / "train_3eV").glob("nfe_*.png"))) == 10
    with pytest.raises(ParameterError, match="families"):
        demo_families("nfe", "demo")
