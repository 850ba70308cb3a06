"""Importing a user's own materials into a data root: band data from VASP (EIGENVAL with its
Fermi energy, vasprun.xml), pymatgen BandStructure JSON (what the Materials Project serves) and
Quantum ESPRESSO (``bands.x`` output), band-plot images, and zip archives of these.

    imported, problems = read_paths(["runs/", "plots.zip"], fermi=None)
    report = import_materials(root, imported, windows=(1, 2, 3), on_conflict="fail")

Reading and writing are two steps, so that an app can show what was read before anything is
written. One bad file never stops the others: it becomes a :class:`Problem` whose message names
it.

- :mod:`.records`: :class:`Imported`, :class:`Problem`, :class:`ImportLimits`, :class:`ImportReport`
- :mod:`.sources`: uploads, paths, zip and gzip archives -> groups of files in a temporary folder
- :mod:`.detect`: a file's format from its name and content; the prefix that pairs companions
- :mod:`.reading`: :func:`read_uploads`, :func:`read_paths`: each group's materials
- :mod:`.vasp`, :mod:`.qe`, :mod:`.bsjson`, :mod:`.bandplots`: one format each
- :mod:`.writing`: :func:`import_materials`, and :func:`import_uploads` (the browser's: read and write)
"""

from backend.data.importing.reading import read_paths, read_uploads
from backend.data.importing.records import SUPPORTED, Imported, ImportLimits, ImportReport, Problem
from backend.data.importing.writing import ON_CONFLICT, import_materials, import_uploads

__all__ = ["ON_CONFLICT", "SUPPORTED", "ImportLimits", "ImportReport", "Imported", "Problem", "import_materials",
           "import_uploads", "read_paths", "read_uploads"]
