"""``preprocess``: VASP outputs -> band data, training images and display plots."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from backend.commands import add_data_arg
from backend.data.bands import read_eigenval, read_fermi, read_vasprun, write_material_outputs
from backend.errors import BandscapeError, DataError, ParameterError
from backend.progress import TqdmProgress


def register(sub) -> None:
    p = sub.add_parser("preprocess", help="VASP EIGENVAL/vasprun.xml files -> band data, training images, display plots")
    p.add_argument("--eigenvals", required=True,
                   help="folder of *EIGENVAL / *vasprun.xml files, or of one folder per material holding EIGENVAL or vasprun.xml")
    p.add_argument("--fermi", help="folder of Fermi-energy files ({prefix}_EF or FERMI_ENERGY.in beside the EIGENVAL), or one value in eV")
    add_data_arg(p, old_out=True, help="data root to write into (default: $BANDSCAPE_DATA)")
    p.add_argument("--windows", default="1,2,3", help="energy windows, eV (default 1,2,3)")
    p.add_argument("--labels", help="high-symmetry labels when no line-mode KPOINTS is found, e.g. G,M,K,G")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.set_defaults(handler=cmd_preprocess)


def find_inputs(folder: Path) -> list[Path]:
    """EIGENVAL or vasprun files: ``*EIGENVAL*``/``*vasprun*.xml`` in the folder, else one per sub-folder."""
    if not folder.is_dir():
        raise DataError(f"--eigenvals {folder} is not a folder")
    direct = sorted(p for p in folder.iterdir() if p.is_file() and ("EIGENVAL" in p.name or p.name.endswith("vasprun.xml")))
    if direct:
        return direct
    found = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        for name in ("EIGENVAL", "vasprun.xml"):
            if (sub / name).is_file():
                found.append(sub / name)
                break
    return found


def fermi_for(path: Path, fermi: str | None) -> float | None:
    """E_F for one input: a number given on the command line, or a file found by name."""
    if fermi is not None:
        try:
            return float(fermi)
        except ValueError:
            pass
    folders = [Path(fermi)] if fermi else []
    folders.append(path.parent)
    prefix = path.name.replace("EIGENVAL", "").rstrip("_.")
    for d in folders:
        for name in (f"{prefix}_EF" if prefix else None, "FERMI_ENERGY.in", "EF"):
            if name and (d / name).is_file():
                return read_fermi(d / name)
    return None


def _process(task) -> tuple[str, str | None]:
    path, fermi, out, windows, labels = task
    try:
        ef = fermi_for(path, fermi)
        if path.name.endswith(".xml"):
            bd = read_vasprun(path, ef, labels)
        else:
            if ef is None:
                return str(path), "no Fermi energy: no {prefix}_EF or FERMI_ENERGY.in found; pass --fermi"
            bd = read_eigenval(path, ef, labels)
        empty = [w for w in windows if bd.bands_in_window(w) == 0]
        write_material_outputs(bd, out, windows)
        return str(path), (f"warning: no band within ±{empty} eV (empty image written)" if empty else None)
    except BandscapeError as exc:
        return str(path), str(exc)


def cmd_preprocess(args) -> int:
    try:
        windows = [float(w) for w in args.windows.split(",") if w.strip()]
    except ValueError:
        raise ParameterError(f"--windows must be numbers separated by commas, got {args.windows!r}") from None
    if not windows or any(w <= 0 for w in windows):
        raise ParameterError(f"--windows must be positive numbers of eV, got {args.windows!r}")
    labels = [s.strip() for s in args.labels.split(",")] if args.labels else None
    inputs = find_inputs(Path(args.eigenvals))
    if not inputs:
        raise ParameterError(f"no EIGENVAL or vasprun.xml files under {args.eigenvals}")
    tasks = [(p, args.fermi, Path(args.data), windows, labels) for p in inputs]
    problems = {}
    jobs = args.jobs or os.cpu_count() or 1
    with TqdmProgress(desc="preprocess", unit="file") as bar, ProcessPoolExecutor(max_workers=jobs) as pool:
        for i, (path, msg) in enumerate(pool.map(_process, tasks, chunksize=4), 1):
            if msg:
                problems[path] = msg
            bar(i, len(tasks), problems=len(problems))
    skipped = {p: m for p, m in problems.items() if not m.startswith("warning")}
    shown = ", ".join(f"{w:g}" for w in windows)
    print(f"{len(tasks) - len(skipped)} of {len(tasks)} materials written to {args.data} (windows {shown} eV)")
    for path, msg in problems.items():
        print(f"{'skipped' if path in skipped else 'note'}: {path}: {msg}")
    return 0 if len(skipped) < len(tasks) else 1
