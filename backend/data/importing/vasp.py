"""VASP runs for an import: an EIGENVAL or a vasprun.xml with the files beside it that give its
Fermi energy (an EF / FERMI_ENERGY.in file, an OUTCAR, a DOSCAR) and its k-path (KPOINTS).

The band data itself is read by :mod:`backend.data.bands` (``read_eigenval``,
``read_vasprun``); this module finds and reads the companions, and checks a KPOINTS against
the run it sits beside.
"""

from __future__ import annotations

import re
from pathlib import Path

from backend.data.bands import BandData, check_eigenval, kpoints_labels, read_eigenval, read_vasprun
from backend.errors import DataError

_EFERMI = re.compile(r"E-fermi\s*:\s*(\S+)")

#: how a user gives a missing Fermi energy
FERMI_HINT = ("give it with --fermi EV (the app: the Fermi-energy field), or add an EF / FERMI_ENERGY.in, "
              "OUTCAR or DOSCAR file of the run beside it")


def fermi_from_outcar(path: Path) -> float:
    """E_F from an OUTCAR: its last ``E-fermi :`` line."""
    value = None
    with open(path, errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if "E-fermi" in line:
                m = _EFERMI.search(line)
                value = (number, m.group(1) if m else line.strip())
    if value is None:
        raise DataError(f"OUTCAR {path} has no 'E-fermi :' line (the run stopped before its first electronic step ended?)")
    number, text = value
    try:
        return float(text)
    except ValueError:
        raise DataError(f"OUTCAR {path}, line {number}: E-fermi {text!r} is not a number") from None


def fermi_from_doscar(path: Path) -> float:
    """E_F from a DOSCAR: the fourth number of its sixth line (EMAX EMIN NEDOS EFERMI ...)."""
    with open(path, errors="replace") as fh:
        lines = [fh.readline() for _ in range(6)]
    fields = lines[5].split()
    if len(fields) < 4:
        raise DataError(f"DOSCAR {path}, line 6: expected 'EMAX EMIN NEDOS EFERMI weight', got {lines[5].strip()!r}")
    try:
        return float(fields[3])
    except ValueError:
        raise DataError(f"DOSCAR {path}, line 6: E_F {fields[3]!r} is not a number") from None


def kpoints_count(path: Path) -> int:
    """The number of k-points a KPOINTS file asks for: divisions x segments in line mode, the
    list's length when explicit. An automatic mesh is an error: it is no path."""
    # pymatgen's VASP input reader: ~1.5 s to import; only where a VASP file is read
    from pymatgen.io.vasp.inputs import Kpoints

    try:
        kp = Kpoints.from_file(str(path))
    except Exception as exc:  # pymatgen raises several types on a malformed file
        raise DataError(f"KPOINTS {path} cannot be read: {type(exc).__name__}: {exc}") from None
    if kp.style == Kpoints.supported_modes.Line_mode:
        return int(kp.num_kpts) * (len(kp.kpts) // 2)
    if kp.num_kpts > 0:
        return int(kp.num_kpts)
    raise DataError(f"KPOINTS {path} is an automatic {kp.style.name} mesh, not a path: the run beside it "
                    f"is no band-structure run along a k-path")


def check_kpoints(kpoints: Path, nk: int, run: str) -> None:
    """A KPOINTS must ask for as many k-points as the run beside it has."""
    want = kpoints_count(kpoints)
    if want != nk:
        raise DataError(f"KPOINTS {kpoints} asks for {want} k-points but {run} has {nk}: "
                        f"they are not of the same run")


def read_eigenval_run(path: Path, *, efermi: float, material: str, kpoints: Path | None,
                      labels: list[str] | None) -> BandData:
    """An EIGENVAL with its E_F, its KPOINTS checked against it (when there is one) and the
    k-path labels from it (else ``labels``)."""
    _, nk, _ = check_eigenval(path)
    if kpoints is not None:
        check_kpoints(kpoints, nk, f"EIGENVAL {path}")
        labels = kpoints_labels(kpoints) or labels
    return read_eigenval(path, efermi, labels, material=material)


def read_vasprun_run(path: Path, *, efermi: float | None, material: str, kpoints: Path | None,
                     labels: list[str] | None) -> BandData:
    """A vasprun.xml (E_F from the file unless given), its KPOINTS checked against it."""
    if kpoints is not None:
        nk = vasprun_kpoint_count(path)
        if nk is not None:
            check_kpoints(kpoints, nk, f"vasprun {path}")
        labels = kpoints_labels(kpoints) or labels
    return read_vasprun(path, efermi, labels, material=material)


def vasprun_kpoint_count(path: Path) -> int | None:
    """The number of k-points in a vasprun.xml's ``kpointlist`` (near its top: read up to its
    end only), or None when there is none."""
    count, inside = 0, False
    with open(path, errors="replace") as fh:
        for line in fh:
            if inside:
                if "</varray>" in line:
                    return count + line.split("</varray>")[0].count("<v")
                count += line.count("<v")
            elif '<varray name="kpointlist"' in line:
                inside = True
                rest = line.split('<varray name="kpointlist"', 1)[1]
                if "</varray>" in rest:
                    return rest.split("</varray>")[0].count("<v")
                count = rest.count("<v")
            elif "<calculation" in line:
                return None
    return None
