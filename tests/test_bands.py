"""Band structures from VASP files: parsing, the k-path, rendering, the preprocess CLI; on an
EIGENVAL written from a demo material and on the real one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_dilation

from backend.autoencoder.images import import_plot
from backend.data.bands import (
    check_eigenval,
    load_band_data,
    path_geometry,
    read_eigenval,
    read_fermi,
    render_display_png,
    render_training_image,
    save_band_data,
    write_material_outputs,
)
from backend.data.catalog import Catalog
from backend.errors import DataError
from tests.conftest import DEMO_BANDS, PROJECT

DEMO_MATERIAL = "honeycomb_0001"  # several bands, none flat (a flat band fills an image row)


@pytest.fixture(scope="module")
def ac2hgge(shared_root):
    raw = shared_root / "raw"
    return read_eigenval(raw / "2D_Ac2HgGe_EIGENVAL", read_fermi(raw / "2D_Ac2HgGe_EF"))


@pytest.fixture(scope="module")
def demo_vasp_run(tmp_path_factory) -> tuple[Path, Path]:
    """``(EIGENVAL, Fermi-energy file)`` of a demo material, written as VASP does (line mode along
    Γ-M-K-Γ, fractional k-points, 100 a segment, segment ends repeated)."""
    bd = load_band_data(DEMO_BANDS / f"{DEMO_MATERIAL}.npz")
    d = tmp_path_factory.mktemp("vasp")
    k = _path(None, [(0, 0, 0), (0.5, 0, 0), (1 / 3, 1 / 3, 0), (0, 0, 0)], n=bd.energies.shape[-1] // 3)
    _write_eigenval(d / f"2D_{DEMO_MATERIAL}_EIGENVAL", k, np.moveaxis(bd.energies, 1, 2))
    (d / f"2D_{DEMO_MATERIAL}_EF").write_text(f"# E_F\n{bd.efermi:.6f}\n")
    return d / f"2D_{DEMO_MATERIAL}_EIGENVAL", d / f"2D_{DEMO_MATERIAL}_EF"


@pytest.fixture(scope="module", params=[pytest.param("demo"), pytest.param("heuslerene", marks=pytest.mark.shared_data)])
def vasp_run(request) -> tuple[Path, Path]:
    """``(EIGENVAL, Fermi-energy file)``: the demo material's, or the real Ac2HgGe's."""
    if request.param == "demo":
        return request.getfixturevalue("demo_vasp_run")
    raw = request.getfixturevalue("shared_root") / "raw"
    return raw / "2D_Ac2HgGe_EIGENVAL", raw / "2D_Ac2HgGe_EF"


@pytest.fixture(scope="module")
def band(vasp_run):
    return read_eigenval(vasp_run[0], read_fermi(vasp_run[1]))


def test_eigenval_reads_back_the_band_data_it_was_written_from(demo_vasp_run):
    bd = load_band_data(DEMO_BANDS / f"{DEMO_MATERIAL}.npz")
    band = read_eigenval(demo_vasp_run[0], read_fermi(demo_vasp_run[1]))
    assert band.material == DEMO_MATERIAL and band.energies.shape == bd.energies.shape
    assert np.allclose(band.energies, bd.energies, atol=1e-6) and band.efermi == pytest.approx(bd.efermi, abs=1e-6)
    # the corners are found at the segments' repeated end points
    assert band.tick_labels == ["Γ", "M", "K", "Γ"]
    assert np.allclose(band.ticks, band.kdist[[0, 99, 199, 299]])


@pytest.mark.shared_data
def test_real_eigenval(ac2hgge):
    bd = ac2hgge
    assert bd.material == "Ac2HgGe" and bd.energies.shape == (1, 60, 300)
    assert bd.efermi == pytest.approx(-0.341798)
    assert bd.tick_labels == ["Γ", "M", "K", "Γ"]
    # corners at the path's ends and its two repeated points (k-points 100/101 and 200/201)
    assert np.allclose(bd.ticks, [0, bd.kdist[99], bd.kdist[199], bd.kdist[-1]])
    assert bd.kdist[99] == pytest.approx(0.5)  # Gamma -> M(1/2, 0, 0), fractional units


def _overlap_f1(a: np.ndarray, b: np.ndarray, tol: int = 1) -> float:
    st = np.ones((2 * tol + 1, 2 * tol + 1), bool)
    p = (a & binary_dilation(b, st)).sum() / a.sum()
    r = (b & binary_dilation(a, st)).sum() / b.sum()
    return 2 * p * r / (p + r)


@pytest.mark.shared_data
def test_display_plot_matches_the_published_one(ac2hgge, shared_root, tmp_path):
    (tmp_path / "ours.png").write_bytes(render_display_png(ac2hgge, 1))
    assert Image.open(tmp_path / "ours.png").size == (640, 480)
    ours = import_plot(tmp_path / "ours.png") == 0          # band pixels inside the plot frame
    published = import_plot(shared_root / "images/bands_10width_1eV/Ac2HgGe.png") == 0
    other = import_plot(shared_root / "images/bands_10width_1eV/Mn2CrCo.png") == 0
    # measured: F1 1.000 within 1 px against the published plot, 0.34 against another material
    assert _overlap_f1(ours, published) > 0.97
    assert _overlap_f1(ours, other) < 0.6


@pytest.mark.shared_data
def test_training_image_agrees_with_the_published_plot(ac2hgge, shared_root):
    img = render_training_image(ac2hgge, 1)
    published = import_plot(shared_root / "images/bands_10width_1eV/Ac2HgGe.png") == 0
    assert _overlap_f1(img == 0, published, tol=2) > 0.97  # measured 0.998


def test_display_plots_drawn_over_a_kept_background_are_the_plain_drawing():
    """From the second material with a k-path on, the decorations come from a kept background:
    the pixels are exactly those of the plain Matplotlib drawing, for each window."""
    import io

    from PIL import Image

    from backend.data.bands import _display, _plain_display_png

    bands = [load_band_data(f) for f in sorted(DEMO_BANDS.glob("*.npz"))[:6]]
    for window in (1, 3):
        for bd in bands:
            ours = np.asarray(Image.open(io.BytesIO(render_display_png(bd, window))).convert("RGBA"))
            plain = np.asarray(Image.open(io.BytesIO(_plain_display_png(bd, window))).convert("RGBA"))
            assert ours.shape == (480, 640, 4) and np.array_equal(ours, plain), (bd.material, window)
    assert _display.templates, "the kept background was used"


def test_training_image_agrees_with_import_plots(band, tmp_path):
    """The training image drawn from band data is what `import-plots` makes of its display plot."""
    img = render_training_image(band, 1)
    assert img.shape == (224, 224) and set(np.unique(img)) <= {0, 255}
    (tmp_path / "plot.png").write_bytes(render_display_png(band, 1))
    imported = import_plot(tmp_path / "plot.png") == 0
    assert _overlap_f1(img == 0, imported, tol=2) > 0.97  # measured 1.000 (demo), 0.998 (Ac2HgGe)
    # no axes, no Fermi line: no row or column is all ink
    assert (img == 0).mean(0).max() < 0.9 and (img == 0).mean(1).max() < 0.9


def _write_eigenval(path, kpts, energies, ispin=1, nbands=None):
    nb = nbands or energies.shape[-1]
    lines = [f"    4    4    1    {ispin}", "  0.1E+03  0.5E-09  0.5E-09  0.1E-08  0.5E-15", "  1.0E-004", "  CAR",
             " test", f"     8    {len(kpts)}    {nb}"]
    for i, k in enumerate(kpts):
        lines += ["", f"  {k[0]:.7E}  {k[1]:.7E}  {k[2]:.7E}  1.0E-02"]
        for b in range(energies.shape[-1]):
            if ispin == 1:
                lines.append(f"  {b + 1}  {energies[0, i, b]:.6f}  1.0")
            else:
                lines.append(f"  {b + 1}  {energies[0, i, b]:.6f}  {energies[1, i, b]:.6f}  1.0  1.0")
    path.write_text("\n".join(lines) + "\n")


def _path(start, corners, n=5):
    """A line-mode path through ``corners`` (fractional), segment ends repeated."""
    pts = []
    for a, b in zip(corners[:-1], corners[1:]):
        for t in np.linspace(0, 1, n):
            pts.append(np.array(a) + t * (np.array(b) - np.array(a)))
    return np.array(pts)


@pytest.mark.parametrize("ispin", [1, 2])
def test_hand_written_eigenvals(tmp_path, ispin):
    k = _path(None, [(0, 0, 0), (0.5, 0, 0), (1 / 3, 1 / 3, 0), (0, 0, 0)])
    e = np.random.default_rng(0).normal(size=(ispin, len(k), 4))
    _write_eigenval(tmp_path / "2D_X2Y_EIGENVAL", k, e, ispin)
    bd = read_eigenval(tmp_path / "2D_X2Y_EIGENVAL", efermi=0.1)
    assert bd.material == "X2Y" and bd.energies.shape == (ispin, 4, len(k))
    assert np.allclose(bd.energies, np.round(np.moveaxis(e, 1, 2), 6), atol=1e-6)
    assert len(bd.ticks) == 4


@pytest.mark.parametrize("corners", [
    [(0, 0, 0), (0.5, 0, 0), (1 / 3, 1 / 3, 0), (0, 0, 0)],          # along a* first
    [(0, 0, 0), (0, 0.5, 0), (1 / 3, 1 / 3, 0), (0, 0, 0)],          # along b* first
    [(1 / 3, 1 / 3, 0), (0, 0, 0), (0.5, 0, 0), (0.5, 0.5, 0), (0, 0, 0)],  # starts at K, four segments
])
def test_corners_found_from_the_path_itself(corners):
    k = _path(None, corners, n=7)
    dist, idx = path_geometry(k)
    assert len(idx) == len(corners)
    assert np.allclose(k[idx], np.array(corners), atol=1e-9)
    # without repeated end points (a continuous path) the turns are still found
    unique = np.concatenate([k[:1], k[1:][np.linalg.norm(np.diff(k, axis=0), axis=1) > 1e-9]])
    assert len(path_geometry(unique)[1]) == len(corners)


def test_malformed_eigenvals_name_file_and_line(tmp_path, vasp_run):
    src = vasp_run[0].read_text().splitlines()
    nbands = int(src[5].split()[2])  # header line 6: NELECT NKPTS NBANDS; a k block: blank, k, bands
    cases = {
        "truncated": src[:500],
        "badheader": src[:5] + [" ".join(src[5].split()[:2] + ["sixty"])] + src[6:],
        "nan": src[:9] + [src[9].replace(src[9].split()[1], "NaN")] + src[10:],
        "morebands": src[:8 + nbands] + [f"   {nbands + 1}  1.0  0.0"] + src[8 + nbands:],
    }
    expected = {"truncated": "truncated", "badheader": "line 6", "nan": "line 10", "morebands": f"line {9 + nbands}"}
    for name, lines in cases.items():
        p = tmp_path / f"{name}_EIGENVAL"
        p.write_text("\n".join(lines) + "\n")
        with pytest.raises(DataError, match=expected[name]) as err:
            check_eigenval(p)
        assert p.name in str(err.value)
    with pytest.raises(DataError, match="line 2"):
        (tmp_path / "EF").write_text("header\nnot-a-number\n")
        read_fermi(tmp_path / "EF")


def test_band_data_round_trip_and_outputs(band, tmp_path):
    path = save_band_data(band, tmp_path)
    back = load_band_data(path)
    assert back.tick_labels == band.tick_labels and np.allclose(back.energies, band.energies, atol=1e-4)
    files = write_material_outputs(band, tmp_path, windows=(1, 3))
    assert {f.parent.name for f in files} == {"bands", "train_1eV", "display_1eV", "train_3eV", "display_3eV"}
    # an empty window gives a blank image, not an error
    far = load_band_data(path)
    far.efermi += 100
    assert (render_training_image(far, 1) == 255).all()


def test_preprocess_cli_end_to_end(tmp_path, vasp_run, band):
    src = tmp_path / "in"
    src.mkdir()
    for f in vasp_run:
        shutil.copy(f, src / f.name)
    text = vasp_run[0].read_text()
    (src / "2D_Broken_EIGENVAL").write_text(text[:5000])
    (src / "2D_Broken_EF").write_text("x\n0.0\n")
    (src / "2D_NoFermi_EIGENVAL").write_text(text)
    out = subprocess.run([sys.executable, "-m", "backend", "preprocess", "--eigenvals", str(src), "--data",
                          str(tmp_path / "root"), "--windows", "1,2", "--jobs", "2"],
                         cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "1 of 3 materials written" in out.stdout
    assert "2D_Broken_EIGENVAL" in out.stdout and "truncated" in out.stdout
    assert "2D_NoFermi_EIGENVAL" in out.stdout and "no Fermi energy" in out.stdout
    cat = Catalog(tmp_path / "root")
    assert cat.display_image(band.material, 2).name == f"{band.material}.png"
    assert Image.open(cat.train_image_dir(1) / f"{band.material}.png").size == (224, 224)


def test_labels_from_a_line_mode_kpoints(tmp_path):
    k = _path(None, [(0, 0, 0), (0.5, 0, 0), (0.5, 0.5, 0), (0, 0, 0)], n=6)
    _write_eigenval(tmp_path / "EIGENVAL", k, np.zeros((1, len(k), 2)))
    (tmp_path / "KPOINTS").write_text("k-path\n6\nLine-mode\nreciprocal\n"
                                      "0 0 0 ! G\n0.5 0 0 ! X\n\n0.5 0 0 ! X\n0.5 0.5 0 ! M\n\n0.5 0.5 0 ! M\n0 0 0 ! G\n")
    bd = read_eigenval(tmp_path / "EIGENVAL", efermi=0.0)
    assert bd.material == tmp_path.name and bd.tick_labels == ["Γ", "X", "M", "Γ"]
    with pytest.raises(DataError, match="4 high-symmetry points .* but 3 labels"):
        read_eigenval(tmp_path / "EIGENVAL", efermi=0.0, labels=["G", "X", "M"])
