"""Which format a file is, from its name and its first bytes, and the prefix that pairs it with
its companions (``2D_Ac2HgGe_EIGENVAL`` and ``2D_Ac2HgGe_EF`` share ``2D_Ac2HgGe``).

Materials (each read into one :class:`~backend.data.importing.records.Imported`):
``eigenval``, ``vasprun``, ``json`` (a pymatgen BandStructure), ``filband`` and ``gnu``
(Quantum ESPRESSO ``bands.x``), ``image`` (a band plot). Companions (read for a material beside
them): ``ef`` (a Fermi-energy file), ``outcar``, ``doscar``, ``kpoints``, ``poscar``, ``pwout``
(a pw.x output). ``other``: files of a calculation that an import has no use for (INCAR,
WAVECAR...), passed over in silence. None: not known.
"""

from __future__ import annotations

import re
from pathlib import Path

MATERIALS = ("eigenval", "vasprun", "json", "filband", "gnu", "image")
COMPANIONS = ("ef", "outcar", "doscar", "kpoints", "poscar", "pwout")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
_HEAD = 8192

#: files of a VASP or Quantum ESPRESSO calculation that hold nothing an import reads
_OTHER_NAMES = {"INCAR", "POTCAR", "OSZICAR", "WAVECAR", "CHGCAR", "CHG", "IBZKPT", "PROCAR", "XDATCAR", "PCDAT",
                "REPORT", "WAVEDER", "LOCPOT", "ELFCAR", "AECCAR0", "AECCAR1", "AECCAR2", "PARCHG", "VASPOUT.H5",
                "VASP.OUT", "STOPCAR", "KPOINTS_OPT", "BAND.DAT", "README", "README.MD", "README.TXT"}
_OTHER_SUFFIXES = (".rap", ".paw", ".upf", ".in", ".sh", ".slurm", ".pbs")

#: the word each kind's file names end with (after the prefix and a separator)
_KIND_WORDS = {
    "eigenval": r"EIGENVAL", "outcar": r"OUTCAR", "doscar": r"DOSCAR", "kpoints": r"KPOINTS",
    "poscar": r"(POSCAR|CONTCAR)(\.vasp)?|\.vasp", "ef": r"EF|FERMI_ENERGY\.in",
    "vasprun": r"vasprun\.xml|vasprun|\.xml",
    "filband": r"(bands?|filband)?(\.dat|\.out|\.txt)?", "gnu": r"(bands?|filband)?(\.dat)?\.gnu",
    "pwout": r"(scf|nscf|pw|bands?)?(\.out|\.log|\.txt)?",
    "json": r"(band_?structure|bs|bands?)?\.json", "image": r"\.(png|jpe?g)",
}


def sniff(path: Path) -> str | None:
    """The kind of the file at ``path`` (see the module's docstring), or None."""
    with open(path, "rb") as fh:
        head = fh.read(_HEAD)
    upper = path.name.upper()
    if head.startswith((PNG_MAGIC, JPEG_MAGIC)):
        return "image"
    if b"\x00" in head:  # binary: no text format of ours
        return "other" if _is_other(upper) else None
    text = head.decode("latin-1")
    start = text.lstrip()[:200]
    if start.startswith(("<?xml", "<modeling")):
        return "vasprun" if "<modeling" in text else None
    if start.startswith("{"):
        return "json"
    if start.lower().startswith("&plot"):
        return "filband"
    if "Program PWSCF" in text:
        return "pwout"
    for kind, word in (("eigenval", "EIGENVAL"), ("outcar", "OUTCAR"), ("doscar", "DOSCAR")):
        if word in upper:
            return kind
    if "KPOINTS" in upper and not upper.startswith("KPOINTS_OPT"):
        return "kpoints"
    if upper in ("EF", "FERMI_ENERGY.IN") or re.search(r"[_.\-](EF|FERMI_ENERGY\.IN)$", upper):
        return "ef"
    if "POSCAR" in upper or "CONTCAR" in upper or upper.endswith(".VASP"):
        return "poscar"
    if upper.endswith(".GNU"):
        return "gnu"
    if _is_other(upper):
        return "other"
    if _looks_like_eigenval(text):
        return "eigenval"
    return None


def maybe_companion(name: str) -> bool:
    """Whether a file not asked for, beside one that was, may be a companion, by its name
    alone (a folder of hundreds of plots is not opened file by file for that)."""
    upper = name.upper().removesuffix(".GZ")
    return (any(word in upper for word in ("EIGENVAL", "OUTCAR", "DOSCAR", "KPOINTS", "POSCAR", "CONTCAR", "FERMI"))
            or upper == "EF" or bool(re.search(r"[_.\-]EF$", upper))
            or upper.endswith((".VASP", ".OUT", ".LOG", ".TXT")))


def is_other_name(name: str) -> bool:
    """A file of a calculation that an import has no use for, by its name (WAVECAR, CHGCAR...):
    passed over before any limit on sizes is applied to it."""
    return _is_other(name.upper())


def _is_other(upper: str) -> bool:
    return (upper in _OTHER_NAMES or any(upper.endswith(sep + n) for n in _OTHER_NAMES for sep in "_.-")
            or upper.lower().endswith(_OTHER_SUFFIXES))


def _looks_like_eigenval(text: str) -> bool:
    """An EIGENVAL by its header: four integers on line 1, 'NELECT NKPTS NBANDS' on line 6."""
    lines = text.splitlines()
    if len(lines) < 7:
        return False
    first, sixth = lines[0].split(), lines[5].split()
    return len(first) == 4 and all(f.isdigit() for f in first) and len(sixth) == 3 and all(f.isdigit() for f in sixth)


def prefix_of(name: str, kind: str) -> str:
    """The part of a file name before the word of its kind: ``2D_X_EIGENVAL`` -> ``2D_X``,
    ``Si.bands.dat.gnu`` -> ``Si``, ``vasprun.xml`` -> ``''``; an image's whole stem."""
    word = _KIND_WORDS.get(kind)
    if word is None:
        return name
    stripped = re.sub(rf"(^|[_.\-]*)(?:{word})$", "", name, flags=re.IGNORECASE)
    return stripped.rstrip("_.-")
