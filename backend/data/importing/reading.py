"""Reading an import: the files of each group sorted by format, each material read with its
companions (its Fermi energy, its k-path), a problem for each file that is not read. One bad
file never stops the others."""

from __future__ import annotations

import io
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from backend.data.bands import read_fermi
from backend.data.image_window import window_of_plots
from backend.data.importing.bandplots import read_band_plot
from backend.data.importing.bsjson import read_band_structure_json
from backend.data.importing.detect import COMPANIONS, MATERIALS, prefix_of, sniff
from backend.data.importing.qe import fermi_from_pwout, read_filband, read_gnu
from backend.data.importing.records import DEFAULT_LIMITS, SUPPORTED, Imported, ImportLimits, Problem, problem
from backend.data.importing.sources import Gatherer, Group
from backend.data.importing.vasp import (FERMI_HINT, fermi_from_doscar, fermi_from_outcar, read_eigenval_run,
                                         read_vasprun_run)
from backend.errors import BandscapeError, DataError, ParameterError

#: a material name is a file name in the data root: letters, digits and a few signs
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+\-()\[\],=]*")
#: the formats that one material may come in twice in a folder, the first one read
_PREFERRED = {"eigenval": "vasprun", "gnu": "filband"}


def read_uploads(files: list[tuple[str, bytes]], *, fermi: float | None = None,
                 kpath_labels: list[str] | None = None,
                 limits: ImportLimits = DEFAULT_LIMITS) -> tuple[list[Imported], list[Problem]]:
    """Read files as a browser uploads them, ``(name, content)``: the materials read, and a
    problem for each file that is not. A name may hold folders (``run1/EIGENVAL``); zip
    archives are expanded. ``fermi`` (eV) is the Fermi energy of every input that needs one;
    ``kpath_labels`` name the high-symmetry points where no KPOINTS does."""
    fermi, kpath_labels = _check_options(fermi, kpath_labels)
    with tempfile.TemporaryDirectory(prefix="bandscape-import-") as tmp:
        gatherer = Gatherer(Path(tmp), limits)
        for name, data in files:
            gatherer.add_upload(name, data)
        return _read_all(gatherer, fermi, kpath_labels)


def read_paths(paths, *, fermi: float | None = None, kpath_labels: list[str] | None = None,
               limits: ImportLimits = DEFAULT_LIMITS) -> tuple[list[Imported], list[Problem]]:
    """As :func:`read_uploads`, for files and folders on disk (a folder: every file in it and
    its sub-folders); a file's companions may be any file beside it."""
    fermi, kpath_labels = _check_options(fermi, kpath_labels)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    with tempfile.TemporaryDirectory(prefix="bandscape-import-") as tmp:
        gatherer = Gatherer(Path(tmp), limits)
        for path in paths:
            gatherer.add_path(path)
        return _read_all(gatherer, fermi, kpath_labels)


def _check_options(fermi, kpath_labels):
    if fermi is not None:
        try:
            fermi = float(fermi)
        except (TypeError, ValueError):
            raise ParameterError(f"fermi must be a number of eV, got {fermi!r}") from None
        if not math.isfinite(fermi):
            raise ParameterError(f"fermi must be a finite number of eV, got {fermi!r}")
    if kpath_labels is not None:
        kpath_labels = [str(s).strip() for s in kpath_labels]
        if len(kpath_labels) < 2:
            raise ParameterError(f"kpath_labels: name at least the two ends of the path, got {kpath_labels!r}")
    return fermi, kpath_labels


def _read_all(gatherer: Gatherer, fermi, kpath_labels) -> tuple[list[Imported], list[Problem]]:
    groups = gatherer.finish()
    imported, problems = [], list(gatherer.problems)
    for group in groups:
        found, trouble = read_group(group, fermi=fermi, kpath_labels=kpath_labels)
        imported += found
        problems += trouble
    return imported, problems


@dataclass
class _Entry:
    path: Path
    source: str
    given: bool
    kind: str | None
    prefix: str


@dataclass
class _Context:
    group: Group
    companions: list[_Entry]
    n_materials: int
    fermi: float | None
    labels: list[str] | None

    def find(self, kind: str, prefix: str) -> _Entry | None:
        """The companion of ``kind`` for a material of ``prefix``: one of the same prefix,
        else one without a prefix, else the only one in a folder of one material."""
        of_kind = [c for c in self.companions if c.kind == kind]
        for want in (prefix, ""):
            match = [c for c in of_kind if c.prefix == want]
            if match:
                return match[0]
        return of_kind[0] if len(of_kind) == 1 and self.n_materials == 1 else None


def read_group(group: Group, *, fermi: float | None, kpath_labels: list[str] | None) -> tuple[list[Imported], list[Problem]]:
    """The materials of one group, and the problems of its files."""
    entries, problems = _sort(group)
    materials = [e for e in entries if e.given and e.kind in MATERIALS]
    # (not read, read instead): an EIGENVAL beside the vasprun.xml of its run, a .gnu beside its filband
    twins = [(e, p) for e in materials for p in materials if _PREFERRED.get(e.kind) == p.kind and p.prefix == e.prefix]
    materials = [e for e in materials if all(e is not t for t, _ in twins)]
    companions = [e for e in entries if e.kind in COMPANIONS]
    if not materials:
        lonely = [e.source for e in companions if e.given]
        if lonely:
            problems.append(problem(lonely[0], f"{', '.join(lonely)}: no band data beside "
                                               f"{'them' if len(lonely) > 1 else 'it'} (an EIGENVAL, vasprun.xml or "
                                               "bands.x output) in the same folder or upload to read it for"))
    ctx = _Context(group, companions, len(materials), fermi, kpath_labels)
    imported = []
    for entry in materials:
        try:
            item = _read_one(entry, ctx)
        except BandscapeError as exc:
            problems.append(problem(entry.source, _clean(str(exc), group)))
            continue
        except Exception as exc:  # a parser's own error on a malformed file: that file is skipped, the rest go on
            problems.append(problem(entry.source, f"{entry.source}: could not be read: {type(exc).__name__}: "
                                                  f"{_clean(str(exc), group)}"))
            continue
        item.notes += [f"{t.source} not read: {entry.source} is the same run" for t, kept in twins if kept is entry]
        imported.append(item)
    return imported, problems


def _sort(group: Group) -> tuple[list[_Entry], list[Problem]]:
    entries, problems = [], []
    for f in group.files:
        try:
            kind = sniff(f.path)
        except OSError as exc:
            if f.given:
                problems.append(problem(f.source, f"{f.source}: cannot be read: {exc.strerror}"))
            continue
        if kind is None and f.given:
            problems.append(problem(f.source, f"{f.source}: unsupported format: {_describe(f.path)} "
                                              f"(supported: {SUPPORTED})"))
        if kind not in (None, "other"):
            entries.append(_Entry(f.path, f.source, f.given, kind, prefix_of(f.path.name, kind)))
    return entries, problems


def as_png(path: Path) -> bytes:
    """An image file's content as PNG bytes (a JPEG converted; a PNG as it is)."""
    data = path.read_bytes()
    if data.startswith(b"\x89PNG"):
        return data
    buf = io.BytesIO()
    with Image.open(io.BytesIO(data)) as im:
        im.convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def _describe(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head:
        return "the file is empty"
    if b"\x00" in head:
        return "binary content of no known kind"
    first = head.decode("latin-1").strip().splitlines()[0][:60] if head.strip() else ""
    return f"a text file starting {first!r}" if first else "blank text"


def _read_one(entry: _Entry, ctx: _Context) -> Imported:
    name = _material_name(entry, ctx.group)
    notes: list[str] = []
    if entry.kind == "image":
        plot = read_band_plot(entry.path)
        window = window_of_plots(ctx.group.label) if ctx.group.label else None
        return Imported(name=name, source=entry.source, plot=plot, window=window, notes=notes,
                        plot_png=as_png(entry.path))
    kpoints = ctx.find("kpoints", entry.prefix)
    if entry.kind == "eigenval":
        ef = _fermi(entry, ctx, ("outcar", "doscar"), notes)
        bd = read_eigenval_run(entry.path, efermi=ef, material=name, kpoints=kpoints and kpoints.path, labels=ctx.labels)
    elif entry.kind == "vasprun":
        ef = _fermi(entry, ctx, (), notes, required=False)
        bd = read_vasprun_run(entry.path, efermi=ef, material=name, kpoints=kpoints and kpoints.path, labels=ctx.labels)
    elif entry.kind == "json":
        bd = read_band_structure_json(entry.path, efermi=_fermi(entry, ctx, (), notes, required=False),
                                      material=name or None)
        name = _checked_name(bd.material, entry.source)
    else:  # filband, gnu
        ef = _fermi(entry, ctx, ("pwout",), notes)
        reader = read_filband if entry.kind == "filband" else read_gnu
        bd = reader(entry.path, efermi=ef, material=name, labels=ctx.labels)
        if entry.kind == "gnu":
            notes.append("a .gnu file does not say where the k-path turns: only its ends are marked "
                         "(the filband file beside it has the k-points)")
    bd.source = entry.source
    bd.material = name
    if bd.nspin == 2:
        notes.append("spin-polarised: both channels drawn (spin down dashed)")
    return Imported(name=name, source=entry.source, bands=bd, notes=notes)


def _fermi(entry: _Entry, ctx: _Context, files: tuple[str, ...], notes: list[str], *, required: bool = True):
    """E_F for a material: the number given, else an EF file, else the ``files`` of the run
    (in order); None when ``required`` is False and none is found (the file has its own)."""
    if ctx.fermi is not None:
        return ctx.fermi
    ef_file = ctx.find("ef", entry.prefix)
    if ef_file is not None:
        return read_fermi(ef_file.path)
    readers = {"outcar": fermi_from_outcar, "doscar": fermi_from_doscar}
    for kind in files:
        found = ctx.find(kind, entry.prefix)
        if found is None:
            continue
        if kind == "pwout":
            value, what = fermi_from_pwout(found.path)
            notes.append(f"E_F = {value:g} eV: {what} in {found.source}")
        else:
            value = readers[kind](found.path)
            notes.append(f"E_F = {value:g} eV from {found.source}")
        return value
    if not required:
        return None
    if entry.kind in ("filband", "gnu"):
        raise DataError(f"{entry.source}: no Fermi energy: give it with --fermi EV (the app: the Fermi-energy field), "
                        "or add the pw.x scf output (or an EF file) beside it")
    raise DataError(f"{entry.source}: no Fermi energy: {FERMI_HINT}")


def _material_name(entry: _Entry, group: Group) -> str:
    """The material's name: its file's prefix (without ``2D_``, as ``preprocess`` names
    them), else its folder's name; for a JSON file '' (the band structure's formula then)."""
    name = re.sub(r"^2D_", "", entry.prefix) if entry.kind != "image" else entry.prefix
    if not name:
        name = group.label or ""
    if not name:
        if entry.kind == "json":
            return ""
        word = {"eigenval": "EIGENVAL", "vasprun": "vasprun.xml"}.get(entry.kind, entry.path.name)
        raise DataError(f"{entry.source}: the file's name does not name the material: call it NAME_{word} "
                        f"(e.g. Ac2HgGe_{word}), or put it in a folder (of a zip) named after the material")
    return _checked_name(name, entry.source)


def _checked_name(name: str, source: str) -> str:
    name = re.sub(r"\s+", "_", name.strip())
    if not _NAME.fullmatch(name):
        raise DataError(f"{source}: {name!r} cannot name a material: use letters, digits and _ . + - ( ) [ ] , = "
                        "(starting with a letter or digit)")
    return name


def _clean(message: str, group: Group) -> str:
    """A reader's message with the temporary folder's paths replaced by the names the user knows."""
    for f in sorted(group.files, key=lambda f: len(str(f.path)), reverse=True):
        message = message.replace(str(f.path), f.source)
    return message.replace(str(group.folder), group.where)
