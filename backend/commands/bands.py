"""Data in: ``preprocess`` (VASP outputs -> band data, training images and display plots),
``import-plots`` (published band plots -> training images) and ``import`` (a user's own files of
any supported format, one by one: :mod:`backend.data.importing`). All record the images' energy
window in the folder's ``images.json`` (:mod:`backend.data.image_window`), which training checks."""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from backend.autoencoder.config import STUDY_RECIPE
from backend.commands import Deprecated, add_command, add_data_arg
from backend.data.bands import read_eigenval, read_fermi, read_vasprun, write_material_outputs
from backend.data.image_window import images_window, window_of_plots, write_images_meta
from backend.data.importing import ON_CONFLICT, import_materials, read_paths
from backend.errors import BandscapeError, DataError, ParameterError
from backend.progress import TqdmProgress


def register(sub) -> None:
    p = add_command(sub, "preprocess", "VASP EIGENVAL/vasprun.xml files -> band data, training images, display plots")
    p.add_argument("--eigenvals", required=True,
                   help="folder of *EIGENVAL / *vasprun.xml files, or of one folder per material holding EIGENVAL or vasprun.xml")
    p.add_argument("--fermi", help="folder of Fermi-energy files ({prefix}_EF or FERMI_ENERGY.in beside the EIGENVAL), "
                                   "or one value in eV (default: such files beside each input)")
    add_data_arg(p, old_out=True, required=True, help="data root to write into")
    p.add_argument("--windows", default="1,2,3", help="energy windows, ±eV, comma-separated")
    p.add_argument("--kpath-labels", metavar="LABELS",
                   help="high-symmetry point labels of the k-path when no line-mode KPOINTS is found, e.g. G,M,K,G "
                        "(default: from KPOINTS)")
    p.add_argument("--labels", dest="kpath_labels", action=Deprecated,
                   new="the k-path labels are --kpath-labels (--labels names a label column in evaluate and quality)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.set_defaults(handler=cmd_preprocess)

    p = add_command(sub, "import-plots", "training images from published matplotlib band plots")
    p.add_argument("--plots", required=True, help="folder of labelled band-structure PNGs")
    p.add_argument("--out", required=True, help="folder to write the training images into, e.g. ROOT/images/train_1eV")
    p.add_argument("--window", type=float, default=None,
                   help="energy window of the plots, ±eV, recorded with the images for training to check "
                        "(default: from a plots folder named display_{W}eV or bands_10width_{W}eV, or an --out "
                        "named train_{W}eV)")
    p.add_argument("--image-size", type=int, default=STUDY_RECIPE["image_size"],
                   help="pixels (the study's; training resizes to its own --image-size)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: up to 4)")
    p.set_defaults(handler=cmd_import_plots)

    p = add_command(sub, "import", "your own materials (VASP, vasprun.xml, QE bands.x, pymatgen JSON, band plots, zips)",
                    description="Import your own materials into a data root: VASP EIGENVAL (with its E_F), vasprun.xml, "
                                "Quantum ESPRESSO bands.x output, pymatgen BandStructure JSON, band-plot images, and zip "
                                "archives of these. Companion files (EF, OUTCAR, DOSCAR, KPOINTS, pw.x output) are found "
                                "beside each file, paired by name prefix (2D_X_EIGENVAL with 2D_X_EF).")
    p.add_argument("files", nargs="+", metavar="FILES", help="files or folders (a folder: every file in it, recursively)")
    add_data_arg(p, required=True, help="data root to write into")
    p.add_argument("--fermi", type=float, metavar="EV",
                   help="Fermi energy (eV) of every input, over any the files give (default: an EF / FERMI_ENERGY.in, "
                        "OUTCAR or DOSCAR file beside an EIGENVAL; the file's own for vasprun.xml and JSON; a pw.x "
                        "output beside a bands.x file)")
    p.add_argument("--windows", default="1,2,3", help="energy windows of band data's images, ±eV, comma-separated")
    p.add_argument("--kpath-labels", metavar="LABELS",
                   help="high-symmetry point labels of the k-path when no line-mode KPOINTS is found, e.g. G,M,K,G "
                        "(default: from KPOINTS)")
    p.add_argument("--plot-window", type=float, metavar="W",
                   help="energy window (±eV) of band-plot images (default: from a folder named display_{W}eV or "
                        "bands_10width_{W}eV)")
    p.add_argument("--on-conflict", choices=ON_CONFLICT, default="fail",
                   help="a name that exists in the data root: fail (skip it), replace it, or keep both (NAME_2)")
    p.set_defaults(handler=cmd_import)


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


def parse_windows(text: str) -> list[float]:
    """``--windows 1,2,3`` -> [1.0, 2.0, 3.0]; a ParameterError for anything else."""
    try:
        windows = [float(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise ParameterError(f"--windows must be numbers separated by commas, got {text!r}") from None
    if not windows or any(w <= 0 for w in windows):
        raise ParameterError(f"--windows must be positive numbers of eV, got {text!r}")
    return windows


def cmd_preprocess(args) -> int:
    windows = parse_windows(args.windows)
    labels = [s.strip() for s in args.kpath_labels.split(",")] if args.kpath_labels else None
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
    if len(skipped) < len(tasks):
        for w in windows:
            folder = Path(args.data) / "images" / f"train_{w:g}eV"
            write_images_meta(folder, window=w, image_size=None, source="preprocess")
    shown = ", ".join(f"{w:g}" for w in windows)
    print(f"{len(tasks) - len(skipped)} of {len(tasks)} materials written to {args.data} (windows {shown} eV)")
    for path, msg in problems.items():
        print(f"{'skipped' if path in skipped else 'note'}: {path}: {msg}")
    return 0 if len(skipped) < len(tasks) else 1


def cmd_import_plots(args) -> int:
    # torch: imported by the handler only, so that --help stays fast
    from backend.autoencoder.images import import_plots

    window = args.window or window_of_plots(args.plots) or images_window(args.out).window
    with TqdmProgress(desc="import-plots", unit="image") as bar:
        report = import_plots(args.plots, args.out, size=args.image_size, jobs=args.jobs, progress=bar, window=window)
    print(f"{report['written']} training images written to {args.out}"
          + (f" (window ±{window:g} eV, recorded in images.json)" if window else ""))
    if not window:
        print("note: the window of these plots is not known (pass --window W): training cannot check it",
              file=sys.stderr)
    for path, reason in report["skipped"].items():
        print(f"skipped {path}: {reason}")
    return 0 if report["written"] else 1


def cmd_import(args) -> int:
    windows = parse_windows(args.windows)
    labels = [s.strip() for s in args.kpath_labels.split(",")] if args.kpath_labels else None
    if args.plot_window is not None and not args.plot_window > 0:
        raise ParameterError(f"--plot-window must be a positive number of eV, got {args.plot_window}")
    imported, problems = read_paths(args.files, fermi=args.fermi, kpath_labels=labels)
    for item in imported:
        if item.plot is not None and args.plot_window is not None:
            item.window = args.plot_window
    with TqdmProgress(desc="import", unit="material") as bar:
        report = import_materials(args.data, imported, windows=windows, on_conflict=args.on_conflict, progress=bar)
    print(f"{len(report.written)} of {len(imported) + len(problems)} materials imported into {args.data}")
    for name in report.written:
        for note in report.notes[name]:
            print(f"note: {name}: {note}")
    for p in problems + report.problems:
        print(f"skipped {p.message}" if p.message.startswith(f"{p.source}: ") else f"skipped {p.source}: {p.message}")
    return 0 if report.written else 1
