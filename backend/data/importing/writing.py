"""Writing imported materials into a data root, in the catalog's layout: band data
(``bands/NAME.npz``) with its training images and display plots for each window, as
``preprocess`` writes them; a band plot's training image into ``images/train_{W}eV``, as
``import-plots`` does.

A material is written whole or not at all: its files are drawn in a hidden folder of the root
first, then each is renamed into place (atomic per file). A name that is taken (in the root, or
earlier in the same import) is handled as ``on_conflict`` says.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from backend.data.bands import write_material_outputs
from backend.data.catalog import BAND_DATA_DIRS, DISPLAY_IMAGE_DIRS, TRAIN_IMAGE_DIRS
from backend.data.image_window import META_FILE, write_images_meta
from backend.data.importing.reading import read_uploads
from backend.data.importing.records import Imported, ImportReport, problem
from backend.errors import BandscapeError, ParameterError
from backend.fileio import atomic_path

ON_CONFLICT = ("fail", "replace", "keep-both")


def import_materials(root: str | os.PathLike, imported: list[Imported], *, windows=(1, 2, 3),
                     on_conflict: str = "fail", progress=None) -> ImportReport:
    """Write each imported material into the data root ``root``.

    Band data: ``bands/NAME.npz``, ``images/train_{W}eV/NAME.png`` and
    ``images/display_{W}eV/NAME.png`` for each of ``windows`` (±eV). A band plot: its training
    image into ``images/train_{W}eV`` of its own window (a plot whose window is not known is a
    problem). A name already taken: ``on_conflict`` "fail" (a problem saying how to replace it
    or keep both), "replace" (the old material's files are removed; never one written earlier
    in this import), "keep-both" (``NAME_2``, ``NAME_3``...). ``progress(done, total, **info)``
    per material."""
    root = Path(root)
    windows = _check_windows(windows)
    if on_conflict not in ON_CONFLICT:
        raise ParameterError(f"on_conflict must be one of {', '.join(ON_CONFLICT)}, got {on_conflict!r}")
    report = ImportReport()
    existing = existing_names(root)
    for done, item in enumerate(imported, 1):
        name = _resolve_name(item, existing, report, on_conflict, root)
        if name is not None:
            try:
                notes = _write(root, item, name, windows, replace=name in existing)
            except BandscapeError as exc:
                report.problems.append(problem(item.source, str(exc)))
                report.skipped.append(item.source)
            else:
                report.written.append(name)
                report.sources[name] = item.source
                report.notes[name] = list(item.notes) + notes
        if progress:
            progress(done, len(imported), written=len(report.written), problems=len(report.problems))
    return report


def _check_windows(windows) -> list[float]:
    try:
        values = [float(w) for w in windows]
    except (TypeError, ValueError):
        raise ParameterError(f"windows must be numbers of eV, got {windows!r}") from None
    if not values or any(not np.isfinite(w) or w <= 0 for w in values):
        raise ParameterError(f"windows must be positive numbers of eV, got {windows!r}")
    return values


def existing_names(root: Path) -> set[str]:
    """The materials a data root has: band-data files, training images, display plots."""
    names = set()
    for pattern in BAND_DATA_DIRS:
        names |= {p.stem for p in (root / pattern).glob("*.npz")}
    for pattern in TRAIN_IMAGE_DIRS + DISPLAY_IMAGE_DIRS:
        names |= {p.stem for p in root.glob(f"{pattern.format(w='*')}/*.png")}
    return names


def _resolve_name(item: Imported, existing: set[str], report: ImportReport, on_conflict: str, root: Path) -> str | None:
    """The name to write ``item`` under, or None (and a problem) when it is not written."""
    name = item.name
    written = set(report.written)
    if item.bands is None and item.plot is None:
        report.problems.append(problem(item.source, f"{item.source}: nothing to write (no band data and no plot)"))
    elif name not in existing and name not in written:
        return name
    elif on_conflict == "keep-both":
        n = 2
        while f"{name}_{n}" in existing or f"{name}_{n}" in written:
            n += 1
        return f"{name}_{n}"
    elif on_conflict == "replace" and name not in written:
        return name
    elif name in written:
        report.problems.append(problem(item.source, f"{item.source}: {name} is also the name of {report.sources[name]} in this "
                                                    f"import: rename one of them, or keep both (on conflict: keep-both, "
                                                    f"which writes this one as {name}_2)"))
    else:
        report.problems.append(problem(item.source, f"{item.source}: a material named {name} already exists in {root}: "
                                                    f"replace it (--on-conflict replace) or keep both "
                                                    f"(--on-conflict keep-both, which writes this one as {name}_2)"))
    report.skipped.append(item.source)
    return None


def _write(root: Path, item: Imported, name: str, windows: list[float], *, replace: bool) -> list[str]:
    """Write one material (all its files or none); returns notes for the user."""
    notes = []
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=_ensure(root)))
    try:
        if item.bands is not None:
            bd = dataclasses.replace(item.bands, material=name)
            empty = [w for w in windows if bd.bands_in_window(w) == 0]
            if empty:
                notes.append(f"no band within ±{', '.join(f'{w:g}' for w in empty)} eV of E_F (an empty image is written)")
            write_material_outputs(bd, staging, windows)
            train_windows = windows
        else:
            if item.window is None:
                raise _Unwritable(f"{item.source}: the energy window of this band plot is not known: give it "
                                  "(--plot-window W), or put the plots in a folder named bands_10width_{W}eV or display_{W}eV")
            with atomic_path(staging / "images" / f"train_{item.window:g}eV" / f"{name}.png") as tmp:
                Image.fromarray(np.asarray(item.plot, dtype=np.uint8)).save(tmp, format="PNG")
            train_windows = [item.window]
        files = sorted(p.relative_to(staging) for p in staging.rglob("*") if p.is_file())
        if replace:
            notes += _remove_old(root, name, keep=set(files))
        for rel in files:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, root / rel)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for w in train_windows:
        folder = root / "images" / f"train_{w:g}eV"
        if not (folder / META_FILE).exists():
            write_images_meta(folder, window=w, image_size=None if item.bands is not None else 224, source="import")
    return notes


class _Unwritable(BandscapeError):
    """An imported material that cannot be written (its message names the file)."""


def _ensure(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return root


def _remove_old(root: Path, name: str, keep: set[Path]) -> list[str]:
    """The files of the material being replaced that its new files do not overwrite (another
    window, band data where there is a plot now): removed, so no stale image stays behind."""
    old = [p for pattern in BAND_DATA_DIRS if not pattern.startswith("assets") for p in [root / pattern / f"{name}.npz"]]
    old += [p for pattern in TRAIN_IMAGE_DIRS + DISPLAY_IMAGE_DIRS if not pattern.startswith("assets")
            for p in root.glob(f"{pattern.format(w='*')}/{name}.png")]
    removed = [p for p in old if p.is_file() and p.relative_to(root) not in keep]
    for p in removed:
        p.unlink()
    return [f"replaced: {', '.join(str(p.relative_to(root)) for p in removed)} removed"] if removed else []


def import_uploads(root: str | os.PathLike, files: list[tuple[str, bytes]], *, fermi: float | None = None,
                   plot_window: float | None = None, windows=(1, 2, 3), on_conflict: str = "keep-both") -> dict:
    """The browser's import: uploaded files (name, content) read and written into the data root
    (:func:`import_materials`); a plot of unknown window takes ``plot_window``. Returns
    ``{"written": [names], "problems": [{"source", "message"}], "renamed": {new name: its own}}``,
    JSON-able (it crosses from a worker process to the web process)."""
    imported, problems = read_uploads(files, fermi=fermi)
    for item in imported:
        if item.plot is not None and item.window is None and plot_window is not None:
            item.window = float(plot_window)
    report = import_materials(root, imported, windows=windows, on_conflict=on_conflict)
    problems = list(problems) + list(report.problems)
    original = {i.source: i.name for i in imported}
    renamed = {name: original.get(src, "") for name, src in report.sources.items() if original.get(src) != name}
    return {"written": list(report.written), "problems": [{"source": p.source, "message": p.message} for p in problems],
            "renamed": renamed}
