"""Chemical elements of materials, from their formulas (pymatgen's ``Composition``)."""

from __future__ import annotations

import functools
import hashlib
import re

import numpy as np

from backend.cache import array_store, make_read_only
from backend.errors import ParameterError

FILTER_MODES = ("inclusive", "exclusive")
# names like "kagome_0042" or "2D_Ac2HgGe" carry a formula after the last underscore, if any
_PREFIX = re.compile(r"^(?:2D_)")


# a plain formula (symbols and amounts, no brackets): read by a regular expression, 100 times
# faster than pymatgen's parser and the same symbols (tested on the published names)
_PLAIN = re.compile(r"^(?:[A-Z][a-z]?\d*(?:\.\d+)?)+$")
_SYMBOL = re.compile(r"[A-Z][a-z]?")


@functools.lru_cache(maxsize=1)
def _symbols() -> frozenset[str]:
    from pymatgen.core.periodic_table import Element  # pymatgen: only once a formula is read

    return frozenset(e.symbol for e in Element)


def formula_elements(name: str) -> frozenset[str]:
    """Element symbols of a material name such as ``Ac2HgGe`` or ``2D_Ac2HgGe``; an empty set
    when the name is not a chemical formula (e.g. the demo's ``kagome_0042``)."""
    formula = _PREFIX.sub("", name)
    if _PLAIN.match(formula):
        found = frozenset(_SYMBOL.findall(formula))
        if found <= _symbols():
            return found
    return _pymatgen_elements(formula)


@functools.lru_cache(maxsize=65536)
def _pymatgen_elements(formula: str) -> frozenset[str]:
    from pymatgen.core import Composition  # pymatgen: only once a formula is read

    try:
        comp = Composition(formula)
    except Exception:  # pymatgen raises several types for non-formulas
        return frozenset()
    try:
        found = frozenset(el.symbol for el in comp.elements)
    except AttributeError:  # dummy species
        return frozenset()
    # pymatgen reads a name like "M000001" as a dummy species "M": a name with any symbol that is
    # no element is not a formula, and has no elements
    return found if found <= _symbols() else frozenset()


def _names_key(names) -> str:
    return hashlib.blake2b("\n".join(map(str, names)).encode(), digest_size=16).hexdigest()


def element_table(names) -> dict[str, np.ndarray]:
    """For every element that occurs, the bool mask (n,) of the materials containing it, by
    symbol in order of atomic number; parsed once per list of names (cached by its content)."""
    key = ("bandscape:elements", _names_key(names))
    table = array_store().get(key)
    if table is None:
        table = make_read_only(_element_table([str(n) for n in names]))
        array_store().set(key, table)
    return table


def _element_table(names: list[str]) -> dict[str, np.ndarray]:
    from pymatgen.core.periodic_table import Element  # pymatgen: only once a formula is read

    sets = [formula_elements(n) for n in names]
    found = sorted(set().union(*sets) if sets else set(), key=lambda s: Element(s).Z)
    column = {sym: j for j, sym in enumerate(found)}
    member = np.zeros((len(found), len(names)), dtype=bool)
    for i, els in enumerate(sets):
        for sym in els:
            member[column[sym], i] = True
    return {sym: member[j] for sym, j in column.items()}


def elements_present(names) -> list[str]:
    """Sorted symbols (by atomic number) of every element that occurs in at least one material."""
    return list(element_table(names))


def element_mask(names, selected, mode: str = "inclusive") -> np.ndarray:
    """Bool (n,) mask of the materials matching the selected elements.

    ``inclusive``: the material contains any of them; ``exclusive``: it contains all of them.
    No selection matches nothing.
    """
    if mode not in FILTER_MODES:
        raise ParameterError(f"element filter mode must be one of {FILTER_MODES}, got {mode!r}")
    selected = set(selected or ())
    if not selected:
        return np.zeros(len(names), dtype=bool)
    table = element_table(names)
    absent = np.zeros(len(names), dtype=bool)
    masks = [table.get(sym, absent) for sym in selected]
    return np.logical_or.reduce(masks) if mode == "inclusive" else np.logical_and.reduce(masks)
