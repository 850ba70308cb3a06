"""Chemical elements of materials, from their formulas (pymatgen's ``Composition``)."""

from __future__ import annotations

import functools
import re

import numpy as np

FILTER_MODES = ("inclusive", "exclusive")
# names like "kagome_0042" or "2D_Ac2HgGe" carry a formula after the last underscore, if any
_PREFIX = re.compile(r"^(?:2D_)")


@functools.lru_cache(maxsize=65536)
def formula_elements(name: str) -> frozenset[str]:
    """Element symbols of a material name such as ``Ac2HgGe`` or ``2D_Ac2HgGe``; an empty set
    when the name is not a chemical formula (e.g. the demo's ``kagome_0042``)."""
    from pymatgen.core import Composition

    formula = _PREFIX.sub("", name)
    try:
        comp = Composition(formula)
    except Exception:  # pymatgen raises several types for non-formulas
        return frozenset()
    try:
        return frozenset(el.symbol for el in comp.elements)
    except AttributeError:  # dummy species
        return frozenset()


def elements_present(names) -> list[str]:
    """Sorted symbols of every element that occurs in at least one material."""
    from pymatgen.core.periodic_table import Element

    found = set().union(*(formula_elements(str(n)) for n in names)) if len(names) else set()
    return sorted(found, key=lambda s: Element(s).Z)


def element_mask(names, selected, mode: str = "inclusive") -> np.ndarray:
    """Bool (n,) mask of the materials matching the selected elements.

    ``inclusive``: the material contains any of them; ``exclusive``: it contains all of them.
    No selection matches nothing.
    """
    if mode not in FILTER_MODES:
        from backend.errors import ParameterError

        raise ParameterError(f"element filter mode must be one of {FILTER_MODES}, got {mode!r}")
    selected = set(selected or ())
    if not selected:
        return np.zeros(len(names), dtype=bool)
    test = (lambda els: bool(els & selected)) if mode == "inclusive" else (lambda els: selected <= els)
    return np.fromiter((test(formula_elements(str(n))) for n in names), dtype=bool, count=len(names))
