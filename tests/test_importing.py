"""Importing a user's own materials (backend.data.importing and ``python -m backend import``):
each format against its reference reader (pymatgen's Eigenval, a pymatgen BandStructureSymmLine
round trip, a bands.x file written here), every bad input as one problem that names its file
while a good file of the same batch is written, zip safety, names that exist, and the command
end to end."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import re
import zipfile

import numpy as np
import pytest
from PIL import Image

from backend.__main__ import main
from backend.data.bands import BandData, load_band_data, path_geometry, read_fermi, render_display_png
from backend.data.importing import ImportLimits, import_materials, read_paths, read_uploads
from backend.errors import ParameterError
from tests.conftest import PROJECT

# ---- small band structures, written here ---------------------------------------------------------

G, M, K = np.array([0, 0, 0.0]), np.array([0.5, 0, 0]), np.array([1 / 3, 1 / 3, 0])
PATH = np.array([a + t * (b - a) for a, b in ((G, M), (M, K), (K, G)) for t in np.linspace(0, 1, 6)])  # VASP line mode


def bands(nspin=1, nb=4, seed=0, nk=18) -> np.ndarray:
    """(nspin, nb, nk) eV: cosine bands around 0, a different set per seed."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 2 * np.pi, nk)
    e = np.stack([[rng.uniform(-1.5, 1.5) + rng.uniform(0.2, 1) * np.cos(x * rng.uniform(0.5, 2) + rng.uniform(0, 3))
                   for _ in range(nb)] for _ in range(nspin)])
    return np.round(e, 6)


def eigenval_text(energies: np.ndarray, k: np.ndarray = PATH) -> str:
    nspin, nb, nk = energies.shape
    out = [f"    1    1    1    {nspin}", "  0.1E+02  0.5E-09  0.5E-09  0.19E-08  0.5E-15", "  1.0E-004", "  CAR ",
           " unknown system", f"      8    {nk}     {nb}"]
    for i in range(nk):
        out += ["", f"  {k[i, 0]:.7E}  {k[i, 1]:.7E}  {k[i, 2]:.7E}  {1 / nk:.7E}"]
        for b in range(nb):
            out.append(f"    {b + 1:3d}   " + "  ".join(f"{energies[s, b, i]:.6f}" for s in range(nspin))
                       + "   " + "  ".join("1.000000" for _ in range(nspin)))
    return "\n".join(out) + "\n"


KPOINTS = """k-path
6
Line-mode
reciprocal
0 0 0 ! G
0.5 0 0 ! M

0.5 0 0 ! M
0.333333 0.333333 0 ! K

0.333333 0.333333 0 ! K
0 0 0 ! G
"""


def vasprun_text(energies: np.ndarray, k: np.ndarray = PATH, efermi: float = 0.25, with_eigen: bool = True) -> str:
    """A vasprun.xml with what pymatgen's BSVasprun reads (energies (nspin, nb, nk))."""
    lattice = np.array([[3.0, 0, 0], [-1.5, 2.598076, 0], [0, 0, 20.0]])
    v = lambda row: "<v>" + " ".join(f"{x:.8f}" for x in row) + "</v>"
    struct = lambda name: (f'<structure name="{name}"><crystal><varray name="basis">{"".join(v(r) for r in lattice)}'
                           f'</varray></crystal><varray name="positions"><v>0 0 0</v></varray></structure>')
    eig = ""
    if with_eigen:
        sets = "".join(f'<set comment="spin {s + 1}">' + "".join(
            f'<set comment="kpoint {i + 1}">' + "".join(f"<r>{e:.6f} 1.0</r>" for e in energies[s, :, i]) + "</set>"
            for i in range(len(k))) + "</set>" for s in range(len(energies)))
        eig = f"<eigenvalues><array><field>eigene</field><field>occ</field><set>{sets}</set></array></eigenvalues>"
    return f"""<?xml version="1.0" encoding="ISO-8859-1"?>
<modeling>
<generator><i name="program" type="string">vasp </i><i name="version" type="string">6.3.0 </i></generator>
<incar><i type="string" name="SYSTEM">test</i></incar>
<kpoints><generation param="listgenerated"><i name="divisions" type="int"> 6 </i></generation>
<varray name="kpointlist">{''.join(v(p) for p in k)}</varray>
<varray name="weights">{''.join(v([0.0]) for _ in k)}</varray></kpoints>
<parameters><i type="int" name="ISPIN">{len(energies)}</i></parameters>
<atominfo><array name="atoms"><set><rc><c>Si</c><c>1</c></rc></set></array>
<array name="atomtypes"><set><rc><c>1</c><c>Si</c><c>28.085</c><c>4.0</c><c>PAW_PBE Si</c></rc></set></array></atominfo>
{struct("initialpos")}
<calculation>{eig}<dos><i name="efermi"> {efermi} </i></dos></calculation>
{struct("finalpos")}
</modeling>
"""


def symm_line(nspin=1, efermi=0.1):
    from pymatgen.core import Lattice
    from pymatgen.electronic_structure.bandstructure import BandStructureSymmLine
    from pymatgen.electronic_structure.core import Spin

    e = bands(nspin, seed=3)
    spins = {Spin.up: e[0]} | ({Spin.down: e[1]} if nspin == 2 else {})
    return BandStructureSymmLine(PATH, spins, Lattice.hexagonal(3.0, 20.0).reciprocal_lattice, efermi,
                                 {"\\Gamma": G, "M": M, "K": K})


def filband_text(k: np.ndarray, energies: np.ndarray) -> str:
    """bands.x's filband: header, then per k-point its coordinates and 10 energies a line,
    written as Fortran does (no space before a minus sign)."""
    nb, nk = energies.shape
    out = [f" &plot nbnd=   {nb}, nks=   {nk} /"]
    for i in range(nk):
        out.append("           " + "".join(f"{x:10.6f}" for x in k[i]))
        row = energies[:, i]
        for start in range(0, nb, 10):
            out.append("".join(f"{x:8.4f}" for x in row[start:start + 10]))
    return "\n".join(out) + "\n"


def plot_png(seed=5, window=1) -> bytes:
    """A labelled band plot like the published ones, of a made-up material."""
    bd = BandData("P", path_geometry(PATH)[0], bands(1, seed=seed), 0.0, path_geometry(PATH)[0][[0, 5, 11, 17]],
                  ["Γ", "M", "K", "Γ"])
    return render_display_png(bd, window)


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            z.writestr(info, "/etc/passwd")
    return buf.getvalue()


GOOD = ("2D_Good_EIGENVAL", eigenval_text(bands(seed=1)).encode())
GOOD_EF = ("2D_Good_EF", b"0.2\n")


def files_of(root, name: str) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(f"{name}.*"))


def only(problems, source: str):
    found = [p for p in problems if p.source == source]
    assert len(found) == 1, problems
    assert source.split(":")[0].split("/")[-1] in found[0].message
    return found[0].message


# ---- formats -----------------------------------------------------------------------------------------

@pytest.mark.shared_data
def test_eigenval_is_read_as_pymatgen_reads_it(shared_root, tmp_path):
    from pymatgen.electronic_structure.core import Spin
    from pymatgen.io.vasp.outputs import Eigenval

    raw = shared_root / "raw"
    uploads = [(f, (raw / f).read_bytes()) for f in ("2D_Ac2HgGe_EIGENVAL", "2D_Ac2HgGe_EF")]
    imported, problems = read_uploads(uploads)
    assert problems == [] and [i.name for i in imported] == ["Ac2HgGe"]
    item = imported[0]
    reference = Eigenval(str(raw / "2D_Ac2HgGe_EIGENVAL")).eigenvalues[Spin.up][:, :, 0].T
    assert item.source == "2D_Ac2HgGe_EIGENVAL" and item.bands.source == "2D_Ac2HgGe_EIGENVAL"
    assert item.bands.energies.shape == (1, 60, 300)
    np.testing.assert_array_equal(item.bands.energies[0], reference)
    assert item.bands.efermi == read_fermi(raw / "2D_Ac2HgGe_EF") == -0.341798
    assert item.bands.tick_labels == ["Γ", "M", "K", "Γ"] and item.notes == []
    # the same from the folder on disk
    on_disk, problems = read_paths([raw])
    assert problems == [] and on_disk[0].source == str(raw / "2D_Ac2HgGe_EIGENVAL")
    np.testing.assert_array_equal(on_disk[0].bands.energies, item.bands.energies)


@pytest.mark.shared_data
def test_published_plot_is_read_with_its_window(shared_root):
    from backend.data.plots import import_plot

    plot = shared_root / "images" / "bands_10width_1eV" / "Ac2HgGe.png"
    imported, problems = read_paths([plot])
    assert problems == [] and imported[0].name == "Ac2HgGe" and imported[0].window == 1
    np.testing.assert_array_equal(imported[0].plot, import_plot(plot))
    uploaded, _ = read_uploads([("Ac2HgGe.png", plot.read_bytes())])
    assert uploaded[0].window is None  # an upload does not say its window


def test_band_structure_json_round_trip():
    bs = symm_line()
    doc = json.dumps(bs.as_dict()).encode()
    imported, problems = read_uploads([("Si_bandstructure.json", doc)])
    assert problems == [] and len(imported) == 1
    bd = imported[0].bands
    assert imported[0].name == "Si"
    np.testing.assert_allclose(bd.energies[0], bs.bands[next(iter(bs.bands))])
    np.testing.assert_allclose(bd.kdist, bs.distance)
    assert bd.efermi == 0.1 and bd.tick_labels == ["Γ", "M", "K", "Γ"]
    np.testing.assert_allclose(bd.ticks, np.asarray(bs.distance)[[0, 5, 11, 17]])
    # inside an API response, spin-polarised
    wrapped = json.dumps({"data": [{"bandstructure": symm_line(nspin=2).as_dict()}]}).encode()
    imported, problems = read_uploads([("Si2_bs.json", wrapped)])
    assert problems == [] and imported[0].bands.nspin == 2
    assert any("spin-polarised: both channels drawn" in n for n in imported[0].notes)


def test_vasprun_gives_its_own_fermi_energy_and_a_reciprocal_path():
    e = bands(seed=2)
    imported, problems = read_uploads([("Si_vasprun.xml", vasprun_text(e).encode())])
    assert problems == []
    bd = imported[0].bands
    assert imported[0].name == "Si" and bd.efermi == 0.25 and bd.kunits == "1/Å"
    np.testing.assert_allclose(bd.energies, e)
    # --fermi wins over the file's own; gzip-compressed, as calculation databases keep them
    imported, problems = read_uploads([("Si_vasprun.xml.gz", gzip.compress(vasprun_text(e).encode()))], fermi=-1.5)
    assert problems == [] and imported[0].name == "Si" and imported[0].source == "Si_vasprun.xml.gz"
    assert imported[0].bands.efermi == -1.5
    np.testing.assert_allclose(imported[0].bands.energies, e)


def test_quantum_espresso_filband_with_the_fermi_energy_of_pw_output():
    k = PATH * 1.7  # units of 2π/a
    e = bands(nb=13, seed=4) - 12  # 13 bands: two lines per k-point
    pwout = b"\n     Program PWSCF v.7.2 starts on ...\n ...\n     the Fermi energy is     4.1234 ev\n"
    text = filband_text(k, e[0])
    assert re.search(r"\d-\d", text)  # numbers glued, as Fortran writes them
    imported, problems = read_uploads([("Si.bands.dat", text.encode()), ("Si.scf.out", pwout)])
    assert problems == [] and imported[0].name == "Si"
    bd = imported[0].bands
    np.testing.assert_allclose(bd.energies, e, atol=5e-5)
    np.testing.assert_allclose(bd.kdist, path_geometry(k)[0], atol=1e-5)
    assert bd.efermi == 4.1234 and bd.kunits == "2π/a" and len(bd.ticks) == 4
    assert any("Si.scf.out" in n for n in imported[0].notes)
    # the two-column .gnu of the same bands
    gnu = "\n\n".join("\n".join(f"{d:10.4f}{x:10.4f}" for d, x in zip(bd.kdist, band)) for band in e[0])
    imported, problems = read_uploads([("Si.bands.dat.gnu", gnu.encode())], fermi=4.0)
    assert problems == []
    np.testing.assert_allclose(imported[0].bands.energies, e, atol=5e-5)


# ---- companions ----------------------------------------------------------------------------------------

def test_fermi_energy_from_outcar_or_doscar_and_labels_from_kpoints():
    e = bands(seed=6)
    outcar = b" E-fermi :  -1.0000     XC(G=0):  -9.0\n ...\n E-fermi :   0.3141     XC(G=0):  -9.0\n"
    doscar = b"1\n2\n3\n4\n5\n    10.0   -20.0   301    0.2718   1.0\n"
    imported, problems = read_uploads([
        ("A/EIGENVAL", eigenval_text(e).encode()), ("A/OUTCAR", outcar), ("A/KPOINTS", KPOINTS.replace("! K", "! X").encode()),
        ("B/EIGENVAL", eigenval_text(e).encode()), ("B/DOSCAR", doscar)])
    assert problems == []
    by_name = {i.name: i for i in imported}
    assert by_name["A"].bands.efermi == 0.3141 and by_name["A"].bands.tick_labels == ["Γ", "M", "X", "Γ"]
    assert by_name["B"].bands.efermi == 0.2718
    assert any("OUTCAR" in n for n in by_name["A"].notes)


def test_a_whole_run_folder_reads_its_bands_and_passes_over_the_rest(tmp_path):
    run = tmp_path / "Foo"
    run.mkdir()
    for name, data in {"EIGENVAL": GOOD[1], "OUTCAR": b" E-fermi :   0.5000     XC(G=0):  -9.0\n", "KPOINTS": KPOINTS.encode(),
                       "INCAR": b"ISPIN = 1\n", "WAVECAR": bytes(50_000), "CHGCAR": b"x" * 50_000, ".DS_Store": b"x"}.items():
        (run / name).write_bytes(data)
    imported, problems = read_paths([run], limits=ImportLimits(max_file_bytes=20_000))
    assert problems == [] and [i.name for i in imported] == ["Foo"] and imported[0].bands.efermi == 0.5


# ---- bad input: one clear problem naming the file, the good file beside it written --------------------

def _bad_batch(tmp_path, bad: list[tuple[str, bytes]], source: str, **options) -> str:
    """Import ``bad`` beside a good material; returns the problem's message for ``source``,
    having checked that the good one is written and nothing of the bad one."""
    imported, problems = read_uploads([GOOD, GOOD_EF, *bad], **options)
    report = import_materials(tmp_path, imported, windows=(1,))
    assert report.written[:1] == ["Good"] and files_of(tmp_path, "Good")
    written = {p.stem for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".png", ".npz")}
    assert written == {"Good"}, written
    return only(problems + report.problems, source)


def test_truncated_eigenval(tmp_path):
    text = eigenval_text(bands(seed=7)).splitlines()
    message = _bad_batch(tmp_path, [("2D_X_EIGENVAL", "\n".join(text[:40]).encode()), ("2D_X_EF", b"0\n")], "2D_X_EIGENVAL")
    assert "truncated" in message and "k-point" in message


def test_non_numeric_eigenval(tmp_path):
    text = eigenval_text(bands(seed=7)).splitlines()
    text[20] = text[20].replace(".", ",", 1)
    message = _bad_batch(tmp_path, [("2D_X_EIGENVAL", "\n".join(text).encode()), ("2D_X_EF", b"0\n")], "2D_X_EIGENVAL")
    assert "line 21" in message


def test_vasprun_without_bands(tmp_path):
    message = _bad_batch(tmp_path, [("X_vasprun.xml", vasprun_text(bands(), with_eigen=False).encode())], "X_vasprun.xml")
    assert "no eigenvalues" in message


def test_spin_polarised_run_is_read_with_a_note(tmp_path):
    e = bands(nspin=2, seed=8)
    imported, problems = read_uploads([("2D_S_EIGENVAL", eigenval_text(e).encode()), ("2D_S_EF", b"0.1\n")])
    assert problems == [] and imported[0].bands.nspin == 2
    np.testing.assert_allclose(imported[0].bands.energies, e)
    assert imported[0].notes == ["spin-polarised: both channels drawn (spin down dashed)"]
    report = import_materials(tmp_path, imported, windows=(1,))
    assert report.written == ["S"] and "spin-polarised" in report.notes["S"][0]
    assert load_band_data(tmp_path / "bands" / "S.npz").nspin == 2


def test_kpoints_that_do_not_match(tmp_path):
    message = _bad_batch(tmp_path, [("2D_X_EIGENVAL", eigenval_text(bands(seed=9)).encode()), ("2D_X_EF", b"0\n"),
                                    ("2D_X_KPOINTS", KPOINTS.replace("\n6\n", "\n40\n", 1).encode())], "2D_X_EIGENVAL")
    assert "120 k-points" in message and "has 18" in message and "2D_X_KPOINTS" in message


def test_missing_fermi_energy_says_how_to_give_it(tmp_path):
    message = _bad_batch(tmp_path, [("2D_X_EIGENVAL", eigenval_text(bands(seed=9)).encode())], "2D_X_EIGENVAL")
    assert "--fermi" in message and all(w in message for w in ("EF", "OUTCAR", "DOSCAR"))


def test_unsupported_format(tmp_path):
    message = _bad_batch(tmp_path, [("notes.docx", b"PK-not-really\x00\x01binary")], "notes.docx")
    assert "unsupported format" in message and "supported:" in message and "vasprun.xml" in message


def test_json_that_is_no_band_structure(tmp_path):
    message = _bad_batch(tmp_path, [("mp-149.json", b'{"material_id": "mp-149", "formula": "Si"}')], "mp-149.json")
    assert "no pymatgen band structure" in message and "material_id" in message


@pytest.mark.parametrize("member", ["../evil.png", "/abs/evil.png", "a/../../evil.png"])
def test_zip_with_names_that_climb_out_is_refused(tmp_path, member):
    archive = zip_bytes({"fine/2D_Z_EIGENVAL": GOOD[1], "fine/2D_Z_EF": b"0\n", member: plot_png()})
    message = _bad_batch(tmp_path, [("evil.zip", archive)], "evil.zip")
    assert member in message and "not read" in message
    assert not (tmp_path.parent / "evil.png").exists()


def test_zip_with_a_symlink_is_refused(tmp_path):
    message = _bad_batch(tmp_path, [("link.zip", zip_bytes({"2D_Z_EIGENVAL": GOOD[1]}, symlink="passwd"))], "link.zip")
    assert "symbolic link" in message


def test_zip_that_expands_past_the_limit_is_refused(tmp_path):
    bomb = zip_bytes({"zeros.txt": bytes(2_000_000)})
    assert len(bomb) < 10_000
    limits = ImportLimits(max_expanded_bytes=1_000_000)
    message = _bad_batch(tmp_path, [("bomb.zip", bomb)], "bomb.zip", limits=limits)
    assert "over the limit" in message and "1.9 MB" in message


def test_upload_over_the_limit(tmp_path):
    big = ("2D_Big_EIGENVAL", eigenval_text(bands(nb=40, seed=1)).encode())
    limits = ImportLimits(max_file_bytes=len(GOOD[1]) + 10)
    message = _bad_batch(tmp_path, [big, ("2D_Big_EF", b"0\n")], "2D_Big_EIGENVAL", limits=limits)
    assert "over the limit" in message


@pytest.mark.parametrize("kind", ["blank", "photo", "dark"])
def test_image_that_is_not_a_band_plot(tmp_path, kind):
    rng = np.random.default_rng(0)
    if kind == "blank":
        image = np.full((480, 640, 3), 255, np.uint8)
    elif kind == "photo":
        image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    else:  # a frame, as a plot has, around a dark picture
        image = rng.integers(0, 120, (480, 640, 3), dtype=np.uint8)
        image[40, 60:600] = image[440, 60:600] = image[40:441, 60] = image[40:441, 600] = 0
    message = _bad_batch(tmp_path, [(f"{kind}.png", png(image))], f"{kind}.png")
    assert "axes frame" in message or "does not look like a band plot" in message


def test_file_without_a_material_name(tmp_path):
    message = _bad_batch(tmp_path, [("EIGENVAL", GOOD[1]), ("EF", b"0\n")], "EIGENVAL")
    assert "name" in message and "_EIGENVAL" in message


# ---- zips, plots, names that exist -------------------------------------------------------------------

def test_zip_folders_are_groups_and_plots_keep_their_window(tmp_path):
    archive = zip_bytes({"Foo/EIGENVAL": GOOD[1], "Foo/EF": b"0.2\n", "Foo/KPOINTS": KPOINTS.encode(),
                         "plots/bands_10width_2eV/Bar.png": plot_png(window=2), "__MACOSX/._junk": b"x"})
    imported, problems = read_uploads([("runs.zip", archive)])
    assert problems == []
    by_name = {i.name: i for i in imported}
    assert by_name["Foo"].source == "runs.zip:Foo/EIGENVAL" and by_name["Foo"].bands.efermi == 0.2
    assert by_name["Bar"].window == 2 and by_name["Bar"].plot.shape == (224, 224)
    report = import_materials(tmp_path, imported, windows=(1, 3))
    assert sorted(report.written) == ["Bar", "Foo"]
    assert files_of(tmp_path, "Foo") == ["bands/Foo.npz", "images/display_1eV/Foo.png", "images/display_3eV/Foo.png",
                                         "images/train_1eV/Foo.png", "images/train_3eV/Foo.png"]
    assert files_of(tmp_path, "Bar") == ["images/train_2eV/Bar.png"]
    assert json.loads((tmp_path / "images/train_2eV/images.json").read_text())["window"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_plot_of_unknown_window_is_not_written(tmp_path):
    imported, _ = read_uploads([("Q.png", plot_png())])
    report = import_materials(tmp_path, imported)
    assert report.written == [] and report.skipped == ["Q.png"]
    assert "window" in only(report.problems, "Q.png") and not files_of(tmp_path, "Q")


def test_a_name_that_exists(tmp_path):
    first, _ = read_uploads([GOOD, GOOD_EF])
    import_materials(tmp_path, first, windows=(1,))
    npz = tmp_path / "bands" / "Good.npz"
    before = npz.read_bytes()
    second, _ = read_uploads([GOOD, ("2D_Good_EF", b"0.7\n")])
    report = import_materials(tmp_path, second, windows=(1,))
    message = only(report.problems, "2D_Good_EIGENVAL")
    assert report.written == [] and "already exists" in message and "replace" in message and "keep both" in message
    assert npz.read_bytes() == before
    report = import_materials(tmp_path, second, windows=(1,), on_conflict="keep-both")
    assert report.written == ["Good_2"] and load_band_data(tmp_path / "bands" / "Good_2.npz").material == "Good_2"
    # replacing at other windows removes the old window's images
    report = import_materials(tmp_path, second, windows=(2,), on_conflict="replace")
    assert report.written == ["Good"] and load_band_data(npz).efermi == 0.7
    assert files_of(tmp_path, "Good") == ["bands/Good.npz", "images/display_2eV/Good.png", "images/train_2eV/Good.png"]
    with pytest.raises(ParameterError, match="on_conflict"):
        import_materials(tmp_path, second, on_conflict="overwrite")


def test_same_name_twice_in_one_import(tmp_path):
    imported, _ = read_uploads([GOOD, GOOD_EF, ("Good_bandstructure.json", json.dumps(symm_line().as_dict()).encode())])
    report = import_materials(tmp_path, imported, windows=(1,), on_conflict="replace")
    assert report.written == ["Good"] and "also the name of 2D_Good_EIGENVAL" in only(report.problems, "Good_bandstructure.json")


def test_reading_an_uploaded_plot_does_not_import_torch():
    """The web app reads uploads; it never imports torch (the job workers do)."""
    code = ("import sys; from backend.data.importing import read_uploads; "
            "from tests.test_importing import plot_png; "
            "imported, problems = read_uploads([('X.png', plot_png())]); "
            "assert imported and not problems; print(sorted({'torch', 'dash'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=PROJECT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ---- the command ---------------------------------------------------------------------------------------

def test_import_command_end_to_end(tmp_path, capsys):
    inputs = tmp_path / "in"
    (inputs / "run").mkdir(parents=True)
    (inputs / "run" / GOOD[0]).write_bytes(GOOD[1])
    (inputs / "run" / "2D_Good_EF").write_bytes(b"0.2\n")
    (inputs / "Si_vasprun.xml").write_text(vasprun_text(bands(seed=2)))
    (inputs / "2D_NoEF_EIGENVAL").write_bytes(GOOD[1])
    root = tmp_path / "root"
    code = main(["import", "--data", str(root), "--windows", "1", str(inputs / "run"), str(inputs / "Si_vasprun.xml"),
                 str(inputs / "2D_NoEF_EIGENVAL")])
    out = capsys.readouterr().out
    assert code == 0
    assert f"2 of 3 materials imported into {root}" in out
    assert f"skipped {inputs / '2D_NoEF_EIGENVAL'}: no Fermi energy" in out
    assert sorted(p.name for p in (root / "bands").iterdir()) == ["Good.npz", "Si.npz"]
    assert sorted(p.name for p in (root / "images").iterdir()) == ["display_1eV", "train_1eV"]  # --windows 1
    code = main(["import", "--data", str(root), str(inputs / "run")])
    out = capsys.readouterr().out
    assert code == 1 and "0 of 1 materials imported" in out and "already exists" in out
    assert main(["import", "--data", str(root), "--on-conflict", "keep-both", str(inputs / "run")]) == 0
    assert (root / "bands" / "Good_2.npz").is_file() and (root / "images" / "train_3eV" / "Good_2.png").is_file()
