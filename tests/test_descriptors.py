"""Physics descriptors: hand-built band structures with known answers, read from their band data
and from display plots of them; the published Ac2HgGe run against its published plot; bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backend.data.bands import BandData, read_eigenval, read_fermi, render_display_png
from backend.errors import DataError
from backend.quality.descriptors import (DESCRIPTORS, band_data_descriptors, band_descriptors, describe_plots,
                                         plot_descriptors)

NK = 301
X = np.linspace(0.0, 1.0, NK)          # path fraction: slopes come out in eV per path


def band_data(*bands, name="hand") -> BandData:
    """BandData over a closed path of length 1 (Γ-M-K-Γ ticks) from bands given as functions of x."""
    e = np.array([b(X) for b in bands])[None]
    return BandData(material=name, kdist=X.copy(), energies=e, efermi=0.0, ticks=np.array([0, 0.4, 0.7, 1.0]),
                    tick_labels=["Γ", "M", "K", "Γ"])


def plot_of(bd: BandData, tmp_path, window: float = 1.0) -> dict:
    path = tmp_path / f"{bd.material}.png"
    path.write_bytes(render_display_png(bd, window))
    return plot_descriptors(path, window=window)


def gapped(delta: float, v: float = 4.0):
    """Two bands ±sqrt(Δ² + (v (x - ½))²): a direct gap 2Δ at the middle of the path."""
    return (lambda x: -np.sqrt(delta ** 2 + (v * (x - 0.5)) ** 2), lambda x: np.sqrt(delta ** 2 + (v * (x - 0.5)) ** 2))


def cone(v: float, at: float = 0.5, energy: float = 0.0):
    """A Dirac cone at path fraction ``at``: energy ± v |x - at| (eV, eV per path)."""
    return (lambda x: energy - v * np.abs(x - at), lambda x: energy + v * np.abs(x - at))


def test_a_gapped_two_band_model(tmp_path):
    bd = band_data(*gapped(0.3))
    d = band_data_descriptors(bd)
    assert d["metal"] == 0 and d["n_fermi_crossings"] == 0 and d["n_crossing_bands"] == 0
    assert d["gap"] == pytest.approx(0.6) and d["vbm"] == pytest.approx(-0.3) and d["cbm"] == pytest.approx(0.3)
    assert d["density_at_ef"] == 0
    assert math.isnan(d["flat_bandwidth"]) and math.isnan(d["flat_strip"])   # no line within 0.1 eV
    assert math.isnan(d["max_slope"])                                          # nor within 0.2 eV
    p = plot_of(bd, tmp_path)
    assert p["metal"] == 0 and p["n_fermi_crossings"] == 0
    assert p["gap"] == pytest.approx(0.6, abs=0.012)                           # 2 px at ±1 eV
    assert p["vbm"] == pytest.approx(-0.3, abs=0.006) and p["cbm"] == pytest.approx(0.3, abs=0.006)
    assert p["density_at_ef"] == 0 and math.isnan(p["max_slope"])
    # a gap wider than the window: the plot cannot see its edges
    wide = plot_of(band_data(*gapped(1.5), name="wide"), tmp_path)
    assert math.isnan(wide["gap"]) and math.isnan(wide["vbm"])


def test_a_flat_band_at_the_fermi_level(tmp_path):
    bd = band_data(lambda x: np.full_like(x, 0.03), lambda x: -0.8 + 0.5 * np.cos(2 * np.pi * x), name="flat")
    d = band_data_descriptors(bd)
    assert d["flat_bandwidth"] == pytest.approx(0.0) and d["flat_strip"] == pytest.approx(0.0)
    assert d["density_at_ef"] == pytest.approx(1.0) and d["metal"] == 0
    assert d["gap"] == pytest.approx(0.03 - (-0.3))
    p = plot_of(bd, tmp_path)
    assert math.isnan(p["flat_bandwidth"])                                   # a plot cannot tell bands apart
    assert p["flat_strip"] == pytest.approx(0.0, abs=0.006)
    assert p["density_at_ef"] == pytest.approx(1.0, abs=0.02)
    assert p["gap"] == pytest.approx(0.33, abs=0.012)
    # a dispersive band: the flattest band near E_F is that band, the flat strip no wider
    d = band_data_descriptors(band_data(lambda x: 0.6 * np.cos(2 * np.pi * x)))
    assert d["flat_bandwidth"] == pytest.approx(1.2, abs=1e-3) and d["flat_strip"] <= d["flat_bandwidth"] + 1e-12


def test_a_dirac_cone_at_the_fermi_level(tmp_path):
    v = 6.0
    above = band_data(*cone(v, energy=-0.05), name="doped")              # E_F 50 meV above the Dirac point
    d = band_data_descriptors(above)
    assert d["n_fermi_crossings"] == 2 and d["n_crossing_bands"] == 1 and d["metal"] == 1 and d["gap"] == 0
    assert d["max_slope"] == pytest.approx(v)
    assert d["density_at_ef"] == pytest.approx(0.3 / v + 0.1 / v, rel=0.02)   # upper band ±0.15/v, lower ±0.05/v
    p = plot_of(above, tmp_path)
    assert p["n_fermi_crossings"] == 2 and p["n_crossing_bands"] == 1 and p["metal"] == 1
    assert p["max_slope"] == pytest.approx(v, rel=0.2)
    assert p["density_at_ef"] == pytest.approx(d["density_at_ef"], abs=0.02)
    # the Dirac point exactly at E_F: energy-ordered bands touch there (a semimetal: no crossing,
    # no gap); a plot shows an X, which it cannot tell from lines crossing E_F
    at = band_data_descriptors(band_data(*cone(v)))
    assert at["metal"] == 0 and at["n_fermi_crossings"] == 0 and at["gap"] == 0
    pa = plot_of(band_data(*cone(v), name="at"), tmp_path)
    assert pa["metal"] == 1 and pa["gap"] == 0
    # steeper cones read steeper
    steep = plot_of(band_data(*cone(20.0, energy=-0.05), name="steep"), tmp_path)
    assert steep["max_slope"] == pytest.approx(20.0, rel=0.2)


def test_several_crossing_bands_and_spin_channels():
    e = np.array([[0.5 * np.cos(2 * np.pi * X) - 0.1, 0.3 * np.cos(4 * np.pi * X)]])
    d = band_descriptors(X, e)
    assert d["n_crossing_bands"] == 2 and d["n_fermi_crossings"] == 2 + 4
    both_spins = band_descriptors(X, np.concatenate([e, e + 0.01]))    # (nspin, nbands, nk)
    assert both_spins["n_crossing_bands"] == 4


def test_segments_that_do_not_meet_add_no_length():
    k = np.concatenate([np.linspace(0, 1, 50), np.linspace(1, 2, 50)])       # a repeated point
    e = np.concatenate([np.linspace(-0.05, 0.05, 50), np.linspace(0.05, 0.15, 50)])[None]
    d = band_descriptors(k, e)
    assert d["n_fermi_crossings"] == 1
    assert d["max_slope"] == pytest.approx(0.2, rel=1e-6)                   # 0.1 eV over half the path


def test_bad_band_data_names_the_field():
    with pytest.raises(ValueError, match="nk"):
        band_descriptors(X, np.zeros((2, NK - 1)))
    with pytest.raises(ValueError, match="finite"):
        band_descriptors(X, np.full((1, NK), np.nan))


def test_a_file_that_is_not_a_plot_names_the_file(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(DataError, match="notes.png"):
        plot_descriptors(text, window=1)
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("RGB", (640, 480), "white").save(blank)
    with pytest.raises(DataError, match="blank.png.*axes frame"):
        plot_descriptors(blank, window=1)
    with pytest.raises(DataError, match="notes.png"):
        describe_plots([blank.with_name("notes.png")], window=1)


def test_generated_materials_read_alike_from_band_data_and_plot(tmp_path):
    from backend.data.dftlike import generate

    rows = []
    for m in generate(20, seed=4):
        if not m.labels["dirac_at_ef"]:                                    # (an X at E_F: see above)
            rows.append((band_data_descriptors(m.band_data), plot_of(m.band_data, tmp_path)))
    metal = np.array([(a["metal"], b["metal"]) for a, b in rows])
    assert (metal[:, 0] == metal[:, 1]).mean() >= 0.9 and len(set(metal[:, 0])) == 2
    density = np.array([(a["density_at_ef"], b["density_at_ef"]) for a, b in rows])
    assert np.abs(density[:, 0] - density[:, 1]).mean() < 0.03
    slope = np.array([(a["max_slope"], b["max_slope"]) for a, b in rows])
    slope = slope[~np.isnan(slope).any(1)]
    assert np.median(np.abs(slope[:, 1] / slope[:, 0] - 1)) < 0.05


@pytest.mark.shared_data
def test_the_published_run_reads_alike_from_its_eigenval_and_its_plot(shared_root):
    bd = read_eigenval(shared_root / "raw/2D_Ac2HgGe_EIGENVAL", efermi=read_fermi(shared_root / "raw/2D_Ac2HgGe_EF"))
    d = band_data_descriptors(bd)
    p = plot_descriptors(shared_root / "images/bands_10width_1eV/Ac2HgGe.png", window=1)
    assert set(DESCRIPTORS) <= set(p)
    assert d["n_fermi_crossings"] == p["n_fermi_crossings"] == 4 and d["metal"] == p["metal"] == 1
    assert p["density_at_ef"] == pytest.approx(d["density_at_ef"], abs=0.03)
    assert p["flat_strip"] == pytest.approx(d["flat_strip"], abs=0.02)
    assert p["max_slope"] == pytest.approx(d["max_slope"], rel=0.25)
    assert p["line_density"] == pytest.approx(d["line_density"], rel=0.05)
    assert abs(p["fermi_line_offset"]) < 0.006                                # the red line is where E = 0 is
