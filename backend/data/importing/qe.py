"""Quantum ESPRESSO band structures: the output of ``bands.x`` (``filband``, and its two-column
``filband.gnu``) and the Fermi energy of a ``pw.x`` output.

pymatgen reads pw.x's input and total energies (``pymatgen.io.pwscf``), not its bands, and ASE
is no dependency: ``bands.x`` writes a simple format, read here.

``filband``: a header ``&plot nbnd= N, nks= K /``, then per k-point a line with its three
Cartesian coordinates (units of 2π/a) and N energies (eV) over as many lines as it takes.
``filband.gnu``: one band after the other, lines ``k E`` (k the path length in 2π/a), bands
separated by blank lines; it does not say where the path turns.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from backend.data.bands import BandData, band_data_on_path, tick_label
from backend.errors import DataError

_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eEdD][-+]?\d+)?")
_HEADER = re.compile(r"nbnd\s*=\s*(\d+)\s*,\s*nks\s*=\s*(\d+)", re.IGNORECASE)
_FERMI = re.compile(r"the Fermi energy is\s+(\S+)\s+ev", re.IGNORECASE)
_HOMO = re.compile(r"highest occupied(?:, lowest unoccupied)? level \(ev\):\s+(\S+)", re.IGNORECASE)
KUNITS = "2π/a"


def _numbers(line: str) -> list[float]:
    # Fortran glues numbers ("-10.1234-11.2345"): numbers by pattern, not by spaces
    return [float(t.replace("d", "e").replace("D", "e")) for t in _NUMBER.findall(line)]


def read_filband(path: Path, *, efermi: float, material: str, labels: list[str] | None) -> BandData:
    """Band data from a ``bands.x`` filband (energies (1, nbnd, nks), k-path from the points)."""
    lines = path.read_text(errors="replace").splitlines()
    m = _HEADER.search(lines[0]) if lines else None
    if not m:
        raise DataError(f"filband {path}, line 1: expected '&plot nbnd= N, nks= K /', got {lines[0].strip()[:80]!r}"
                        if lines else f"filband {path} is empty")
    nbnd, nks = int(m.group(1)), int(m.group(2))
    if nbnd < 1 or nks < 2:
        raise DataError(f"filband {path}, line 1: {nbnd} bands at {nks} k-points: no band structure")
    k = np.empty((nks, 3))
    energies = np.empty((nbnd, nks))
    at = 1
    for i in range(nks):
        while at < len(lines) and not lines[at].strip():
            at += 1
        if at >= len(lines):
            raise DataError(f"filband {path} is truncated: k-point {i + 1} of {nks} is missing (end of file at line {len(lines)})")
        coords = _numbers(lines[at])
        if len(coords) != 3:
            raise DataError(f"filband {path}, line {at + 1}: expected k-point {i + 1} as three coordinates, "
                            f"got {lines[at].strip()[:80]!r}")
        k[i] = coords
        values: list[float] = []
        first = at + 1
        at += 1
        while len(values) < nbnd and at < len(lines):
            values += _numbers(lines[at])
            at += 1
        if len(values) != nbnd:
            raise DataError(f"filband {path}, lines {first + 1}-{at}: {len(values)} energies for k-point {i + 1} "
                            f"where the header says {nbnd} bands" + (" (the file ends there)" if at >= len(lines) else ""))
        energies[:, i] = values
    rest = [j for j in range(at, len(lines)) if lines[j].strip()]
    if rest:
        raise DataError(f"filband {path}, line {rest[0] + 1}: data after the {nks} k-points of the header")
    return band_data_on_path(material, k, energies[None], efermi=efermi, labels=labels, kunits=KUNITS, source=str(path))


def read_gnu(path: Path, *, efermi: float, material: str, labels: list[str] | None) -> BandData:
    """Band data from a ``bands.x`` ``.gnu`` file. It has no k-points, only the path length:
    the ends of the path are its only high-symmetry points (``labels``: its first and last
    name those)."""
    blocks: list[list[tuple[float, float]]] = [[]]
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            if blocks[-1]:
                blocks.append([])
            continue
        values = _numbers(line)
        if len(values) != 2 or len(line.split()) != 2:
            raise DataError(f"{path}, line {number}: expected two numbers 'k E', got {line.strip()[:80]!r}")
        blocks[-1].append((values[0], values[1]))
    blocks = [b for b in blocks if b]
    if not blocks or len(blocks[0]) < 2:
        raise DataError(f"{path}: no band of at least two points")
    nk = len(blocks[0])
    for b, block in enumerate(blocks, 1):
        if len(block) != nk:
            raise DataError(f"{path}: band {b} has {len(block)} points, band 1 has {nk}")
    data = np.array(blocks)  # (nbands, nk, 2)
    kdist = data[0, :, 0]
    if not np.allclose(data[:, :, 0], kdist[None], atol=1e-4) or (np.diff(kdist) < -1e-6).any():
        raise DataError(f"{path}: the bands are not on one increasing path (their k columns differ)")
    energies = data[None, :, :, 1]
    if not np.isfinite(energies).all():
        raise DataError(f"{path}: NaN or infinite energies")
    ends = [labels[0], labels[-1]] if labels else ["", ""]
    return BandData(material=material, kdist=kdist - kdist[0], energies=energies, efermi=float(efermi),
                    ticks=np.array([0.0, kdist[-1] - kdist[0]]), tick_labels=[tick_label(l) for l in ends],
                    source=str(path), kunits=KUNITS)


def fermi_from_pwout(path: Path) -> tuple[float, str]:
    """E_F from a pw.x output, and what it is: the last 'the Fermi energy is' (a metal), else
    the last 'highest occupied level' (an insulator: the top of the valence band)."""
    text = path.read_text(errors="replace")
    for pattern, what in ((_FERMI, "the Fermi energy"), (_HOMO, "the highest occupied level")):
        found = pattern.findall(text)
        if found:
            try:
                return float(found[-1]), what
            except ValueError:
                raise DataError(f"pw.x output {path}: {what} {found[-1]!r} is not a number") from None
    raise DataError(f"pw.x output {path} has no 'the Fermi energy is' or 'highest occupied level' line "
                    "(not an scf run, or it stopped early)")
