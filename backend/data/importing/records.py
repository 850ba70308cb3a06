"""What an import reads and reports: :class:`Imported` (one material read), :class:`Problem` (one
file that was not), :class:`ImportLimits` (how much an import may read) and :class:`ImportReport`
(what was written into a data root)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backend.data.bands import BandData

#: the formats an import reads, for messages
SUPPORTED = ("VASP EIGENVAL (with E_F), vasprun.xml, pymatgen BandStructure JSON, "
             "Quantum ESPRESSO bands.x output (filband, .dat.gnu), band-plot images (PNG, JPEG), "
             "zip archives of these")

MB = 1 << 20


@dataclass
class Imported:
    """One material read from the user's files: band data, or a band plot's training image.

    ``plot``: (224, 224) uint8, 0 = line, 255 = white, as :func:`backend.data.plots.import_plot`
    gives it; ``plot_png``: the plot as the user gave it, as PNG (what a viewer shows of it);
    ``window``: the plot's energy window (±eV) when known, else None; ``notes``: warnings to show
    the user (the material is read all the same)."""

    name: str
    source: str
    bands: BandData | None = None
    plot: np.ndarray | None = None
    window: float | None = None
    notes: list[str] = field(default_factory=list)
    plot_png: bytes | None = None


@dataclass
class Problem:
    """A file (or archive member, or material) that was not read or not written; ``message``
    names the file and says what is wrong."""

    source: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ImportLimits:
    """How much an import reads: ``max_file_bytes`` per file (an upload, or an archive member
    once expanded), ``max_total_bytes`` over all the files of one call, ``max_expanded_bytes``
    per archive once expanded, ``max_members`` per archive."""

    max_file_bytes: int = 200 * MB
    max_total_bytes: int = 1024 * MB
    max_expanded_bytes: int = 1024 * MB
    max_members: int = 10_000


#: the limits of an import unless told otherwise
DEFAULT_LIMITS = ImportLimits()


@dataclass
class ImportReport:
    """What :func:`~backend.data.importing.import_materials` did: ``written``: the names written
    (after renaming, see ``on_conflict``), in order; ``sources``: written name -> where it came
    from; ``notes``: written name -> warnings; ``problems``: one per material not written;
    ``skipped``: the sources of those materials."""

    written: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)


def problem(source: str, message: str) -> Problem:
    """A Problem whose message names its file (prefixed with ``source`` when it does not)."""
    return Problem(source, message if source in message else f"{source}: {message}")
