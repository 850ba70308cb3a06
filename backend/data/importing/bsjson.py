"""pymatgen band structures as JSON (``BandStructureSymmLine.as_dict()``, what the Materials
Project serves, also inside an API response): band data along the path pymatgen drew it on.

The path length is pymatgen's ``distance`` (1/Å, no length across a discontinuity); the
high-symmetry points are its labelled k-points, two labels at one place written ``K|M``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from backend.data.bands import BandData, tick_label
from backend.errors import DataError

_CLASSES = ("BandStructureSymmLine", "LobsterBandStructureSymmLine", "BandStructure")


def find_band_structure(doc, depth: int = 4) -> dict | None:
    """The first dict with a pymatgen band structure's ``@class`` in ``doc`` (an API response
    wraps it: ``{"data": [{"bandstructure": {...}}]}``), breadth first."""
    level = [doc]
    for _ in range(depth):
        nxt = []
        for item in level:
            if isinstance(item, dict):
                if item.get("@class") in _CLASSES:
                    return item
                nxt.extend(v for v in item.values() if isinstance(v, (dict, list)))
            elif isinstance(item, list):
                nxt.extend(v for v in item if isinstance(v, (dict, list)))
        level = nxt
    return None


def read_band_structure_json(path: Path, *, efermi: float | None, material: str | None) -> BandData:
    """Band data from a pymatgen BandStructureSymmLine JSON file; E_F from its ``efermi``
    unless given; ``material``: its name, else the structure's reduced formula."""
    # pymatgen's electronic structure: ~1.5 s to import; only where a band structure is read
    from pymatgen.electronic_structure.bandstructure import BandStructureSymmLine
    from pymatgen.electronic_structure.core import Spin

    try:
        doc = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid JSON: {exc}") from None
    found = find_band_structure(doc)
    if found is None:
        keys = ", ".join(list(doc)[:8]) if isinstance(doc, dict) else type(doc).__name__
        raise DataError(f"{path}: JSON, but no pymatgen band structure in it (no '@class': 'BandStructureSymmLine'; "
                        f"it holds {keys})")
    if found["@class"] == "BandStructure":
        raise DataError(f"{path}: a pymatgen BandStructure on a k-point mesh, not along a path "
                        "(BandStructureSymmLine): there is no band plot to draw")
    try:
        bs = BandStructureSymmLine.from_dict(found)
    except Exception as exc:  # pymatgen raises several types on a malformed dict
        raise DataError(f"{path}: not a readable pymatgen BandStructureSymmLine: {type(exc).__name__}: {exc}") from None
    ef = bs.efermi if efermi is None else efermi
    if ef is None or not np.isfinite(ef):
        raise DataError(f"{path}: the band structure has no efermi; give the Fermi energy with --fermi")
    spins = [Spin.up] + ([Spin.down] if Spin.down in bs.bands else [])
    energies = np.stack([np.asarray(bs.bands[s], dtype=float) for s in spins])  # (nspin, nbands, nk)
    if not np.isfinite(energies).all():
        raise DataError(f"{path}: NaN or infinite energies")
    kdist = np.asarray(bs.distance, dtype=float)
    ticks, labels = _ticks(kdist, [kp.label for kp in bs.kpoints])
    if material is None:
        structure = getattr(bs, "structure", None)
        material = structure.composition.reduced_formula if structure is not None else None
    if not material:
        raise DataError(f"{path}: neither the file name nor the band structure names the material; rename the file "
                        "NAME_bandstructure.json")
    return BandData(material=material, kdist=kdist, energies=energies, efermi=float(ef), ticks=ticks,
                    tick_labels=labels, source=str(path), kunits="1/Å")


def _ticks(kdist: np.ndarray, names: list[str | None]) -> tuple[np.ndarray, list[str]]:
    """The labelled k-points as ticks: one per place along the path (``K|M`` where a jump puts
    two there), both ends included (unlabelled when pymatgen has no label for them)."""
    places: list[tuple[float, list[str]]] = []
    tol = 1e-9 * max(float(kdist[-1]), 1.0)
    for i, name in enumerate(names):
        if not name and i not in (0, len(names) - 1):
            continue
        label = tick_label(name) if name else ""
        if places and abs(kdist[i] - places[-1][0]) <= tol:
            if label and label not in places[-1][1]:
                places[-1][1].append(label)
        else:
            places.append((float(kdist[i]), [label] if label else []))
    return np.array([p for p, _ in places]), ["|".join(n) for _, n in places]
