"""Band structures from VASP: reading, the k-path, band-data files and rendering.

    bd = read_eigenval("2D_Ac2HgGe_EIGENVAL", efermi=read_fermi("2D_Ac2HgGe_EF"))
    save_band_data(bd, root)                       # root/bands/Ac2HgGe.npz
    render_training_image(bd, window=1)            # 224x224 uint8, black lines on white
    render_display_png(bd, window=1)               # labelled plot, PNG bytes

Parsing uses pymatgen's ``Eigenval`` / ``Vasprun``; this module adds what a batch over hundreds
of materials needs: a check of the file against its header that names the line where it goes
wrong, the k-path's corners found from the path itself, and one compact file per material that is
the single source of the training images, the display plots and the interactive viewer.
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from backend.errors import DataError
from backend.fileio import atomic_path, write_bytes_atomic

DEFAULT_LABELS_3 = ("Γ", "M", "K", "Γ")
_GREEK = {"G": "Γ", "GAMMA": "Γ", "\\GAMMA": "Γ", "Γ": "Γ"}


@dataclass
class BandData:
    """One material's band structure.

    ``kdist`` (nk,): cumulative path length (1/Å when a lattice was known, else fractional units);
    ``energies`` (nspin, nbands, nk): eV, absolute; ``efermi``: eV; ``ticks`` (nt,): path lengths
    of the high-symmetry points, both ends included; ``tick_labels``: their names.
    """

    material: str
    kdist: np.ndarray
    energies: np.ndarray
    efermi: float
    ticks: np.ndarray
    tick_labels: list[str]
    source: str = ""
    kunits: str = "fractional"
    extra: dict = field(default_factory=dict)

    @property
    def nspin(self) -> int:
        return self.energies.shape[0]

    def relative(self) -> np.ndarray:
        """E - E_F, (nspin, nbands, nk)."""
        return self.energies - self.efermi

    def bands_in_window(self, window: float) -> int:
        rel = self.relative()
        return int(((rel.max(-1) >= -window) & (rel.min(-1) <= window)).sum())


# ---- reading -------------------------------------------------------------------------------------

def read_fermi(path: str | os.PathLike) -> float:
    """E_F from a Fermi-energy file: one number on its first line (an ``EF`` file), or VASPKIT's
    ``FERMI_ENERGY.in`` (a comment line, then the number first on the second line)."""
    path = Path(path)
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise DataError(f"Fermi-energy file {path} cannot be read: {exc.strerror}") from None
    first = lines[0].split()[:1] if lines else []
    line = 1 if first and _is_number(first[0]) else 2
    if line == 2 and (len(lines) < 2 or not lines[1].split()):
        raise DataError(f"Fermi-energy file {path}: line 2 should hold the Fermi energy, file has {len(lines)} lines")
    text = lines[line - 1].split()[0]
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"Fermi-energy file {path}, line 2: {text!r} is not a number") from None
    if not np.isfinite(value):
        raise DataError(f"Fermi-energy file {path}, line {line}: the Fermi energy is {value}")
    return value


def check_eigenval(path: str | os.PathLike) -> tuple[int, int, int]:
    """Check an EIGENVAL against its header; returns (ispin, nkpts, nbands).

    Raises DataError naming the line of the first problem: a truncated file, a k-point or band
    line that does not parse, band counts that disagree with the header, NaN energies.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DataError(f"EIGENVAL {path} cannot be read: {exc.strerror}") from None
    if len(lines) < 7:
        raise DataError(f"EIGENVAL {path}: only {len(lines)} lines, the header alone has 6")
    try:
        ispin = int(lines[0].split()[3])
        nelect, nkpts, nbands = (int(float(v)) for v in lines[5].split()[:3])
    except (IndexError, ValueError):
        raise DataError(f"EIGENVAL {path}, line 6: expected 'NELECT NKPTS NBANDS', got {lines[5].strip()!r}") from None
    if ispin not in (1, 2) or nkpts < 1 or nbands < 1:
        raise DataError(f"EIGENVAL {path}: header says ISPIN={ispin}, {nkpts} k-points, {nbands} bands")
    line = 6  # 0-based index of the blank line before the first k-point
    for k in range(nkpts):
        while line < len(lines) and not lines[line].strip():
            line += 1
        if line >= len(lines):
            raise DataError(f"EIGENVAL {path} is truncated: k-point {k + 1} of {nkpts} is missing (end of file at line {len(lines)})")
        kfields = lines[line].split()
        if len(kfields) != 4 or not all(_is_number(v) for v in kfields):
            raise DataError(f"EIGENVAL {path}, line {line + 1}: expected k-point {k + 1} as 'kx ky kz weight', got {lines[line].strip()!r}")
        for b in range(nbands):
            idx = line + 1 + b
            if idx >= len(lines):
                raise DataError(f"EIGENVAL {path} is truncated in k-point {k + 1}: band {b + 1} of {nbands} missing (line {idx + 1})")
            fields = lines[idx].split()
            want = 3 if ispin == 1 else 5
            if len(fields) < want - (1 if ispin == 1 else 2) or not fields or not _is_int(fields[0]):
                raise DataError(f"EIGENVAL {path}, line {idx + 1}: expected band {b + 1} of k-point {k + 1}, got {lines[idx].strip()!r} "
                                f"(header says {nbands} bands)")
            if int(fields[0]) != b + 1:
                raise DataError(f"EIGENVAL {path}, line {idx + 1}: band index {fields[0]} where band {b + 1} was expected "
                                f"(the header says {nbands} bands per k-point)")
            energies = fields[1:3] if ispin == 2 else fields[1:2]
            for e in energies:
                if not _is_number(e) or not np.isfinite(float(e)):
                    raise DataError(f"EIGENVAL {path}, line {idx + 1}: energy {e!r} of band {b + 1}, k-point {k + 1} is not a finite number")
        line += 1 + nbands
    rest = [i for i in range(line, len(lines)) if lines[i].strip()]
    if rest:
        raise DataError(f"EIGENVAL {path}, line {rest[0] + 1}: data after the {nkpts} k-points of the header "
                        f"(more k-points or bands than the header says)")
    return ispin, nkpts, nbands


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def material_name(path: str | os.PathLike) -> str:
    """``2D_Ac2HgGe_EIGENVAL`` -> ``Ac2HgGe``; ``.../Ac2HgGe/EIGENVAL`` -> ``Ac2HgGe``."""
    path = Path(path)
    stem = path.name
    if stem.upper() in ("EIGENVAL", "VASPRUN.XML"):
        return path.parent.name
    stem = re.sub(r"(_|\.)?(EIGENVAL|vasprun\.xml)$", "", stem, flags=re.IGNORECASE)
    return re.sub(r"^2D_", "", stem)


def read_eigenval(path: str | os.PathLike, efermi: float, labels: list[str] | None = None,
                  *, lattice=None, material: str | None = None) -> BandData:
    """Band data from an EIGENVAL (ISPIN 1 or 2) and a Fermi energy (eV).

    ``lattice``: a pymatgen Lattice of the real-space cell, for k distances in 1/Å; by default a
    POSCAR or CONTCAR beside the file is used when present, else fractional distances.
    """
    # pymatgen's VASP reader: ~1.5 s to import; only where a VASP file is read
    from pymatgen.electronic_structure.core import Spin
    from pymatgen.io.vasp.outputs import Eigenval

    path = Path(path)
    check_eigenval(path)
    try:
        eig = Eigenval(str(path))
    except Exception as exc:  # pymatgen raises several types; the check above names lines
        raise DataError(f"EIGENVAL {path} could not be parsed: {exc}") from None
    spins = [Spin.up] + ([Spin.down] if eig.ispin == 2 else [])
    energies = np.stack([eig.eigenvalues[s][:, :, 0].T for s in spins])  # (nspin, nbands, nk)
    kfrac = np.asarray(eig.kpoints, dtype=float)
    if lattice is None:
        lattice = _lattice_beside(path)
    return _band_data(material or material_name(path), kfrac, energies, efermi, labels, lattice,
                      source=str(path), kpoints_file=path.parent / "KPOINTS")


def read_vasprun(path: str | os.PathLike, efermi: float | None = None, labels: list[str] | None = None,
                 *, material: str | None = None) -> BandData:
    """Band data from a vasprun.xml (lattice and, unless given, E_F from the file).

    Read with pymatgen's ``BSVasprun``, which reads the eigenvalues and ``efermi`` and skips the
    DOS (``Vasprun`` without its DOS has no Fermi energy)."""
    # pymatgen's VASP reader: ~1.5 s to import; only where a VASP file is read
    from pymatgen.electronic_structure.core import Spin
    from pymatgen.io.vasp.outputs import BSVasprun

    path = Path(path)
    try:
        run = BSVasprun(str(path), parse_projected_eigen=False, parse_potcar_file=False)
    except Exception as exc:
        raise DataError(f"vasprun {path} could not be parsed: {exc}") from None
    if not run.eigenvalues or Spin.up not in run.eigenvalues:
        raise DataError(f"vasprun {path} has no eigenvalues (no <eigenvalues> block): not a band-structure run, "
                        f"or VASP stopped before writing them")
    spins = [Spin.up] + ([Spin.down] if Spin.down in run.eigenvalues else [])
    energies = np.stack([run.eigenvalues[s][:, :, 0].T for s in spins])
    kfrac = np.asarray(run.actual_kpoints, dtype=float)
    if kfrac.shape != (energies.shape[2], 3):
        raise DataError(f"vasprun {path}: {len(kfrac)} k-points in its <kpoints> but eigenvalues at {energies.shape[2]}")
    ef = run.efermi if efermi is None else efermi
    if ef is None:
        raise DataError(f"vasprun {path} has no Fermi energy; pass one with --fermi")
    structure = getattr(run, "final_structure", None)  # BSVasprun reads the final structure only
    return _band_data(material or material_name(path), kfrac, energies, float(ef), labels,
                      structure.lattice if structure is not None else None, source=str(path),
                      kpoints_file=path.parent / "KPOINTS")


def _lattice_beside(path: Path):
    for name in ("POSCAR", "CONTCAR", f"{path.name.replace('EIGENVAL', 'POSCAR')}"):
        cand = path.parent / name
        if cand.is_file() and cand != path:
            try:
                from pymatgen.core import Structure  # pymatgen: only where a VASP file is read

                return Structure.from_file(str(cand)).lattice
            except Exception:
                continue
    return None


def _band_data(material, kfrac, energies, efermi, labels, lattice, source, kpoints_file) -> BandData:
    if lattice is not None:
        cart = kfrac @ lattice.reciprocal_lattice.matrix
        units = "1/Å"
    else:
        cart = kfrac
        units = "fractional"
    if labels is None:
        labels = kpoints_labels(kpoints_file)
    return band_data_on_path(material, cart, energies, efermi=efermi, labels=labels, kunits=units, source=source)


def band_data_on_path(material: str, k: np.ndarray, energies: np.ndarray, *, efermi: float,
                      labels: list[str] | None = None, kunits: str = "fractional", source: str = "") -> BandData:
    """Band data from the k-points of a path, ``k`` (nk, 3) in ``kunits``, and ``energies``
    (nspin, nbands, nk), eV. The high-symmetry points are found from the path
    (:func:`path_geometry`); ``labels`` name them (default: Γ-M-K-Γ for a path of three
    segments, else none); a count that differs from the path's is an error naming ``source``."""
    if not np.isfinite(energies).all():
        raise DataError(f"{source}: NaN or infinite energies")
    kdist, corners = path_geometry(k)
    if labels is None:
        labels = list(DEFAULT_LABELS_3) if len(corners) == 4 else [""] * len(corners)
    if len(labels) != len(corners):
        raise DataError(f"{source}: the path has {len(corners)} high-symmetry points "
                        f"({len(corners) - 1} segments) but {len(labels)} labels were given ({','.join(labels)})")
    return BandData(material=material, kdist=kdist, energies=energies.astype(np.float64), efermi=float(efermi),
                    ticks=kdist[corners], tick_labels=[tick_label(l) for l in labels],
                    source=source, kunits=kunits)


def tick_label(label: str) -> str:
    """A high-symmetry point's name as the plots show it: ``G``, ``GAMMA``, ``\\Gamma`` -> ``Γ``;
    a discontinuity ``K|M`` label by label."""
    return "|".join(_GREEK.get(part.strip().upper(), part.strip()) for part in label.split("|"))


def path_geometry(k: np.ndarray, tol: float = 1e-6, angle_tol_deg: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative distance along a k-path (nk, 3) and the indices of its high-symmetry points.

    A segment ends where a k-point repeats (VASP's line mode writes each segment's end points) or
    where the path turns by more than ``angle_tol_deg``; jumps between segments that do not meet
    (a discontinuous path) add no distance. Nothing about the path's start or direction is assumed.
    """
    k = np.asarray(k, dtype=float)
    steps = np.diff(k, axis=0)
    lengths = np.linalg.norm(steps, axis=1)
    scale = max(np.median(lengths[lengths > tol]) if (lengths > tol).any() else 1.0, tol)
    repeat = lengths < tol * max(1.0, np.abs(k).max())
    # a jump much longer than the typical step is a discontinuity (e.g. ...|K -> M|...): no distance
    jump = lengths > 20 * scale
    dist = np.concatenate([[0.0], np.cumsum(np.where(repeat | jump, 0.0, lengths))])
    corners = {0, len(k) - 1}
    for i in np.flatnonzero(repeat | jump):
        corners.add(int(i) if repeat[i] else int(i) + 1)
    cos_tol = np.cos(np.radians(angle_tol_deg))
    for i in range(1, len(k) - 1):
        a, b = steps[i - 1], steps[i]
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        if na > tol and nb > tol and not jump[i - 1] and not jump[i] and a @ b / (na * nb) < cos_tol:
            corners.add(i)
    # one tick per place: a repeated point's two indices share a distance
    idx = np.array(sorted(corners))
    keep = np.concatenate([[True], np.diff(dist[idx]) > tol * max(dist[-1], 1.0)])
    return dist, idx[keep]


def kpoints_labels(kpoints: str | os.PathLike) -> list[str] | None:
    """Labels of a line-mode KPOINTS (``! G`` comments), one per high-symmetry point; None when
    the file is missing, not line mode, or unlabelled."""
    kpoints = Path(kpoints)
    if not kpoints.is_file():
        return None
    lines = kpoints.read_text().splitlines()
    if len(lines) < 4 or not lines[2].strip().lower().startswith("l"):
        return None
    points = [ln.split("!")[-1].strip() for ln in lines[4:] if "!" in ln and ln.split("!")[0].split()]
    if len(points) < 2:
        return None
    labels = [points[0]]
    for a, b in zip(points[1::2], points[2::2] + [None]):
        labels.append(a if b is None or a == b else f"{a}|{b}")
    return labels


# ---- band-data files -----------------------------------------------------------------------------

def save_band_data(bd: BandData, root: str | os.PathLike) -> Path:
    """Write ``root/bands/{material}.npz`` atomically (float32 energies: 0.1 meV is plenty)."""
    dest = Path(root) / "bands" / f"{bd.material}.npz"
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, kdist=bd.kdist.astype(np.float32), energies=bd.energies.astype(np.float32),
                                efermi=np.float64(bd.efermi), ticks=bd.ticks.astype(np.float32),
                                tick_labels=np.array(bd.tick_labels), material=np.array(bd.material),
                                source=np.array(bd.source), kunits=np.array(bd.kunits))
    return dest


def load_band_data(path: str | os.PathLike) -> BandData:
    try:
        with np.load(path, allow_pickle=False) as z:
            return BandData(material=str(z["material"]), kdist=z["kdist"].astype(np.float64),
                            energies=z["energies"].astype(np.float64), efermi=float(z["efermi"]),
                            ticks=z["ticks"].astype(np.float64), tick_labels=[str(s) for s in z["tick_labels"]],
                            source=str(z["source"]), kunits=str(z["kunits"]))
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"band-data file {path} is not readable: {exc}") from None


# ---- rendering -----------------------------------------------------------------------------------

def _plot_bands(ax, bd: BandData, window: float, colour: str, lw: float) -> None:
    rel = bd.relative()
    styles = ("-", "--")
    for s in range(bd.nspin):
        segs = np.split(np.arange(len(bd.kdist)), np.flatnonzero(np.diff(bd.kdist) == 0) + 1)
        for band in rel[s]:
            if band.max() < -window - 1 or band.min() > window + 1:
                continue  # far outside the window: not drawn (saves most of the time)
            for seg in segs:
                ax.plot(bd.kdist[seg], band[seg], color=colour, lw=lw, ls=styles[s], solid_capstyle="butt")
    ax.set_xlim(bd.kdist[0], bd.kdist[-1])
    ax.set_ylim(-window, window)


def render_training_image(bd: BandData, window: float, size: int = 224, *, line_width: float = 1.0) -> np.ndarray:
    """The study's training image: E - E_F within ±window, ``size``² pixels, ``line_width``-pt
    black lines on white, no axes, no Fermi line, binarised at 0.8 -> uint8 (0 line, 255 white)."""
    from matplotlib.figure import Figure  # matplotlib: ~0.5 s to import; only where a plot is drawn

    fig = Figure(figsize=(size / 100, size / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    _plot_bands(ax, bd, window, "black", line_width)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, facecolor="white")
    grey = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"), dtype=np.float32)
    return np.where(grey / 255.0 < 0.8, 0, 255).astype(np.uint8)


def render_display_png(bd: BandData, window: float) -> bytes:
    """A labelled plot like the published ones (640x480): title, energy axis, k labels, red dashed
    Fermi line, grey lines at the high-symmetry points.

    Drawing the axes' decorations is most of Matplotlib's time (~40 of ~55 ms here), and they
    are the same for every material with the same k-path and window: from the second material
    with a k-path on (per thread), the decorations are drawn once into a kept background and
    only the bands, the Fermi line, the spines and the title over it, in Matplotlib's own order
    (the same pixels; ~15 ms)."""
    key = (float(window), tuple(np.round(bd.kdist[[0, -1]], 9)), tuple(np.round(bd.ticks, 9)), tuple(bd.tick_labels))
    if not hasattr(_display, "templates"):
        # per thread (Matplotlib's objects are not thread-safe): the k-paths met, the last few
        # of them with their background, least recently used first
        _display.seen, _display.templates = OrderedDict(), OrderedDict()
    seen, templates = _display.seen, _display.templates
    if key in templates:
        templates.move_to_end(key)
    elif key in seen:
        templates[key] = _DisplayTemplate(bd, window)
        if len(templates) > 4:
            templates.popitem(last=False)
    else:
        # a k-path met once (real compounds each have their own): the plain drawing
        seen[key] = None
        if len(seen) > 256:
            seen.popitem(last=False)
        return _plain_display_png(bd, window)
    return templates[key].render(bd, window)


_display = threading.local()


def _display_axes(fig, bd: BandData):
    ax = fig.add_subplot()
    for t in bd.ticks[1:-1]:
        ax.axvline(t, color="grey", lw=0.8, alpha=0.6)
    return ax


def _display_labels(ax, bd: BandData) -> None:
    ax.set_xticks(bd.ticks, bd.tick_labels)
    ax.set_ylabel(r"$E - E_F$ (eV)")  # every plot is referenced to the Fermi level
    ax.set_xlabel("wave vector along the k-path")


def _plain_display_png(bd: BandData, window: float) -> bytes:
    from matplotlib.figure import Figure  # matplotlib: ~0.5 s to import; only where a plot is drawn

    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    ax = _display_axes(fig, bd)
    _plot_bands(ax, bd, window, "black", 1.0)
    ax.axhline(0, color="red", ls="--", lw=1.0, alpha=0.7)
    _display_labels(ax, bd)
    ax.set_title(f"Band Structure: {bd.material}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


class _DisplayTemplate:
    """The display plot's decorations for one k-path and window, drawn once (Matplotlib's
    blitting): the background without what Matplotlib draws over the bands (the Fermi line and
    the spines come after lines in its order; the title is per material)."""

    def __init__(self, bd: BandData, window: float):
        # matplotlib: ~0.5 s to import; only where a plot is drawn
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.fig = Figure(figsize=(6.4, 4.8), dpi=100)
        self.canvas = FigureCanvasAgg(self.fig)
        ax = self.ax = _display_axes(self.fig, bd)
        ax.set_xlim(bd.kdist[0], bd.kdist[-1])
        ax.set_ylim(-window, window)
        ax.set_autoscale_on(False)
        _display_labels(ax, bd)
        ax.set_title(" ")
        self.fermi = ax.axhline(0, color="red", ls="--", lw=1.0, alpha=0.7)
        over = [self.fermi, *ax.spines.values()]
        for artist in over:
            artist.set_visible(False)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)
        for artist in over:
            artist.set_visible(True)

    def render(self, bd: BandData, window: float) -> bytes:
        ax = self.ax
        self.canvas.restore_region(self.background)
        first = len(ax.lines)
        _plot_bands(ax, bd, window, "black", 1.0)
        bands = ax.lines[first:]
        try:
            for artist in [*bands, self.fermi, *ax.spines.values()]:
                ax.draw_artist(artist)
            ax.title.set_text(f"Band Structure: {bd.material}")
            ax.draw_artist(ax.title)
        finally:
            for line in list(bands):
                line.remove()
        width, height = self.canvas.get_width_height()
        img = Image.frombuffer("RGBA", (width, height), self.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        buf = io.BytesIO()
        img.save(buf, format="PNG", compress_level=1)
        return buf.getvalue()


def write_material_outputs(bd: BandData, root: str | os.PathLike, windows=(1, 2, 3), *, size: int = 224) -> list[Path]:
    """Band data, training images and display plots of one material in the catalog's layout."""
    root = Path(root)
    written = [save_band_data(bd, root)]
    for w in windows:
        wname = int(w) if float(w).is_integer() else w
        dest = root / "images" / f"train_{wname}eV" / f"{bd.material}.png"
        with atomic_path(dest) as tmp:
            Image.fromarray(render_training_image(bd, w, size)).save(tmp, format="PNG")
        written.append(dest)
        written.append(write_bytes_atomic(root / "images" / f"display_{wname}eV" / f"{bd.material}.png",
                                          render_display_png(bd, w)))
    return written
