"""DFT-like band structures with exact physics labels: tight-binding materials whose Fermi level
follows from their electron count, as in a VASP or Quantum ESPRESSO run.

The demo's generator (:mod:`backend.data.demo`); the first demo's, :mod:`backend.data.random_lattices`,
draws its Fermi level at random. Here a
material is a cell with a fixed, integer number of electrons, and everything a band plot shows
near E_F follows from its Hamiltonian.

**The cell.** An *active* lattice (the family) with one to three orbitals per site (s-, p-, d-like:
on-site splittings of 1-3.5 eV, each orbital its own nearest-neighbour hopping, bandwidths
0.5-5 eV, weak inter-orbital hopping), optional second-neighbour hoppings (which bend flat bands),
and at most one mass term: a staggered sublattice potential (gaps Dirac cones, keeps time
reversal) or a spin-orbit-like imaginary second-neighbour hopping i·λ·ν_ij (Kane-Mele: ν = ±1 by
the turn of the two bonds; gaps Dirac cones, keeps inversion). Around it, like the many bands of a
DFT run: 1-3 *background* bands (one orbital each on the Bravais lattice, bandwidths 2.5-6 eV,
centred anywhere in ±4 eV) hybridised with the active orbitals by 0.03-0.25 eV, 2-5 narrow filled
*core* bands at -9 to -4.5 eV and 1-3 empty bands at +4 to +8 eV. All hoppings are either real
(time reversal: E(k) = E(-k)) or, with the spin-orbit-like term, inversion-symmetric about the
cell's origin, so every band is spin-degenerate and holds 2 electrons.

**The Fermi level.** The cell has N electrons (an integer). The chemical potential follows from
filling N/2 states per k-point on a Γ-centred 24 x 24 grid of the 2-D Brillouin zone (it holds
Γ, M, K and X): E_F sits halfway between the highest filled and lowest empty grid state. When
the filled bands are separated from the empty ones on the grid and the path (an insulator),
E_F is placed **mid-gap**. VASP and QE put it somewhere in the gap (VASP's smeared E_F often
near the VBM; pymatgen moves one that falls inside a band edge to mid-gap); the published
Heuslerene plots have it near the middle (their 30 gapped plots: at 0.44 of the gap above the VBM
on average, 0.31-0.59). Every band structure is stored relative to E_F (``efermi = 0``), as
VASP/QE plots show it.

**Labels**, exact, from the Hamiltonian (``labels.csv``):

- ``family``: the active lattice; ``orbitals`` (1-3 per site); ``mass`` (none/staggered/soc);
- ``metal``: a band is partly filled: it crosses E_F anywhere in the sampled zone (grid and
  path), or the count is odd (which half-fills a band, even a flat one at E_F); filled and empty
  bands that only touch at E_F (a Dirac point there) are not a metal (a semimetal);
- ``flat_band_at_ef``: a band narrower than :data:`FLAT_WIDTH` along the path that comes within
  :data:`NEAR_EF` of E_F: an energy-ordered band (as an EIGENVAL lists them) or a band followed
  by its character through crossings with weakly hybridised bands (:func:`tracked_bands`), as
  the eye follows a flat line that steep ones cross;
- ``dirac_at_ef``: two adjacent bands touch (gap < :data:`DIRAC_TOUCH`, located on the path by
  refining the Hamiltonian around each sampled minimum) with a linear dispersion on both sides,
  within :data:`NEAR_EF` of E_F (a cone on the path: one off the path is not seen by a plot);
- ``filling``: the filled fraction of the states of the bands between the core and the empty
  high bands: low (< 1/3), half, high (> 2/3); ``odd_electrons``: N is odd (then the cell must
  be a metal).

``physics.csv`` holds the exact numbers behind them (electron count, bands, BZ gap, ...).

**Two sets**: ``demo`` (triangular, honeycomb, kagome, square, Lieb lattices; uniform hoppings)
and ``holdout`` (dice, checkerboard, breathing kagome, Bernal bilayer honeycomb and π-flux square
lattices, with a uniaxial strain of the hoppings and a random sublattice disorder the demo does
not have; the π-flux lattice's rectangular cell has its own path Γ-X-S-Y-Γ), so that a recipe
tuned on one is checked on the other. Deterministic in (seed, index); 600 materials in 10-12 s.

**Sampling.** What makes a label true is rare when parameters are drawn blindly (a flat band
needs no second-neighbour hopping and E_F in it), so each material first draws an *intent*
(:data:`INTENTS`): anywhere, a gap, a flat band, a Dirac touching; the intent shapes the draw
(a flat-band intent keeps the lattice's flat band or adds a localised d/f-like orbital; a Dirac
intent keeps the cone unmassed) and picks the electron count that puts E_F there. The labels are
then computed from the result, whatever the intent was: it is recorded in ``physics.csv`` only.

The lattices, the Hamiltonian and the analysis of bands near E_F are in
:mod:`backend.data.tightbinding`, the random cell of one material in :mod:`backend.data.dftlike_cell`;
this module fills the cell with electrons, labels it and writes data roots (and re-exports the
names of both).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backend.data.bands import BandData, write_material_outputs
from backend.data.dftlike_cell import (  # noqa: F401  (re-exported: the generator's names in one place)
    DIRAC_LATTICES,
    FLAT_LATTICES,
    INTENTS,
    _add_localised,
    _build,
    _clear_background,
    _draw_intent,
)
from backend.data.tightbinding import (  # noqa: F401  (re-exported)
    DIRAC_TOUCH,
    FLAT_WIDTH,
    GRID,
    LATTICES,
    NEAR_EF,
    PER_SEGMENT,
    TOL,
    Lattice,
    TightBinding,
    _flux_signs,
    cell_vectors,
    dirac_points,
    fermi_level,
    kpath,
    site_bonds,
    tracked_bands,
    zone_grid,
)
from backend.errors import ParameterError
from backend.fileio import write_csv_atomic

FAMILY_SETS = {
    "demo": ("triangular", "honeycomb", "kagome", "square", "lieb"),
    "holdout": ("dice", "checkerboard", "breathing_kagome", "bilayer_honeycomb", "pi_flux"),
}
#: the yes/no labels (each class at least 15 % of a default set: tests/test_dftlike.py)
BINARY_LABELS = ("metal", "flat_band_at_ef", "dirac_at_ef", "odd_electrons")


# ---- one material ---------------------------------------------------------------------------------

@dataclass
class Material:
    """A generated material: its band data (relative to E_F), labels and exact quantities."""

    band_data: BandData
    labels: dict
    physics: dict
    model: TightBinding


def make_material(index: int, *, family: str, seed: int, family_set: str = "demo") -> Material:
    """One material (deterministic in ``seed`` and ``index``), its labels and exact quantities."""
    if family not in LATTICES:
        raise ParameterError(f"family must be one of {tuple(LATTICES)}, got {family!r}")
    rng = np.random.default_rng([seed, index, 25])
    intent = _draw_intent(family, rng)
    tb, drawn = _build(family, rng, holdout=family_set == "holdout", intent=intent)
    lat = LATTICES[family]
    k, dist, corners, names = kpath(tb, lat.bravais)
    kgrid = zone_grid(tb)
    grid, path = tb.bands(kgrid), tb.bands(k)               # (nk, nb) each
    if intent == "flat" or rng.random() < 0.15:
        flat_bands = _flat_bands(grid, path, drawn)
        if intent != "flat" or not len(flat_bands):       # a localised orbital, in a free energy window
            if intent == "flat":                           # (made more likely by moving the background)
                _clear_background(tb, drawn, _free_energy(grid, path, drawn, rng), rng, margin=0.8)
                grid, path = tb.bands(kgrid), tb.bands(k)
            _add_localised(tb, drawn, _free_energy(grid, path, drawn, rng), rng)
            grid, path = tb.bands(kgrid), tb.bands(k)
    target = _target(tb, k, dist, grid, path, drawn, rng)
    if target is not None and rng.random() < 0.7:
        _clear_background(tb, drawn, target, rng)
        grid, path = tb.bands(kgrid), tb.bands(k)
    nb = tb.n
    n_core, n_high = drawn["core"], drawn["high"]
    electrons = _electrons(rng, tb, k, dist, grid, path, drawn, target)
    ef, gapped = fermi_level(grid, path, electrons)
    rel = (path - ef).T                                      # (nb, nk)
    both = np.concatenate([grid, path]) - ef
    tol = TOL
    crossing = bool(((both.min(0) < -tol) & (both.max(0) > tol)).any())
    # not a metal: a gap at E_F, or filled and empty bands that only touch at E_F (a semimetal);
    # an odd count half-fills a band, even a perfectly flat one sitting at E_F
    m = electrons // 2
    touching = electrons % 2 == 0 and both[:, m - 1].max() <= tol and both[:, m].min() >= -tol
    metal = crossing or not (gapped or touching)
    width = rel.max(1) - rel.min(1)
    near = np.abs(rel).min(1) <= NEAR_EF
    flat = bool(((width < FLAT_WIDTH) & near).any())
    if not flat and near.any():    # a flat band that dispersive bands cross: follow it by character
        tracked = (tracked_bands(tb, k) - ef).T
        flat = bool((((tracked.max(1) - tracked.min(1)) < FLAT_WIDTH) & (np.abs(tracked).min(1) <= NEAR_EF)).any())
    segments = np.split(np.arange(len(dist)), np.flatnonzero(np.diff(dist) == 0) + 1)
    diracs = dirac_points(tb, k, rel, segments=segments, efermi=ef)
    fraction = (electrons - 2 * n_core) / (2 * (nb - n_core - n_high))
    filling = "low" if fraction < 1 / 3 else "high" if fraction > 2 / 3 else "half"
    name = f"{family}_{index:04d}"
    bd = BandData(material=name, kdist=dist, energies=rel[None], efermi=0.0, ticks=dist[corners],
                  tick_labels=names, source=f"dftlike {family_set}, seed {seed}", kunits="1/Å")
    labels = {"material": name, "family": family, "orbitals": drawn["orbitals"], "mass": drawn["mass"],
              "metal": metal, "flat_band_at_ef": flat, "dirac_at_ef": bool(diracs), "filling": filling,
              "odd_electrons": bool(electrons % 2)}
    below, above = both[both <= 0], both[both > 0]
    physics = {"material": name, "electrons": electrons, "bands": nb, "efermi_abs": ef,
               "gap": 0.0 if metal or not gapped else float(above.min() - below.max()),
               "metal_on_path": bool(((rel.min(1) < -tol) & (rel.max(1) > tol)).any()),
               "flattest_near_ef": float(width[near].min()) if near.any() else math.nan,
               "dirac_energy": min((e for e, _ in diracs), key=abs) if diracs else math.nan,
               "filling_fraction": fraction, "intent": drawn["intent"], "localised": drawn["localised"]}
    return Material(band_data=bd, labels=labels, physics=physics, model=tb)


def _flat_bands(grid, path, drawn) -> np.ndarray:
    """Indices of the partly fillable bands narrower than FLAT_WIDTH over the grid and the path."""
    both = np.concatenate([grid, path])
    lo_band, hi_band = drawn["core"], grid.shape[1] - drawn["high"]
    widths = both.max(0) - both.min(0)
    return np.flatnonzero(widths[lo_band:hi_band] < FLAT_WIDTH) + lo_band


def _free_energy(grid, path, drawn, rng) -> float:
    """An energy (eV) among the active bands that no band covers (the middle of a free window
    wider than 0.15 eV, at random), else a random energy among them."""
    both = np.concatenate([grid, path])
    lo_band, hi_band = drawn["core"], grid.shape[1] - drawn["high"]
    ranges = np.stack([both.min(0), both.max(0)], 1)[lo_band:hi_band]
    span = (ranges[:, 0].min() + 1.0, min(ranges[:, 1].max() - 1.0, ranges[:, 0].min() + 6.0))
    ranges = ranges[np.argsort(ranges[:, 0])]
    free, reach = [], ranges[0, 1]
    for lo, hi in ranges[1:]:
        if lo - reach > 0.15 and span[0] < (lo + reach) / 2 < span[1]:
            free.append((lo + reach) / 2)
        reach = max(reach, hi)
    if free:
        return float(rng.choice(free))
    return float(rng.uniform(*span)) if span[1] > span[0] else float(np.mean(ranges))


def _target(tb, k, dist, grid, path, drawn, rng) -> float | None:
    """The energy (eV) the intent puts E_F at: a flat band's, a touching's (None otherwise)."""
    if drawn["intent"] == "flat":
        bands = _flat_bands(grid, path, drawn)
        if len(bands):
            j = int(rng.choice(bands))
            return float(np.concatenate([grid, path])[:, j].mean())
    if drawn["intent"] == "dirac":
        cones = _cones(tb, k, path, dist, drawn)
        if cones:
            return float(cones[int(rng.integers(len(cones)))][0])
    return None


def _cones(tb, k, path, dist, drawn) -> list[tuple[float, int]]:
    """Linear touchings between partly fillable bands on the path, at any energy: (eV, lower band)."""
    segments = np.split(np.arange(len(dist)), np.flatnonzero(np.diff(dist) == 0) + 1)
    lo_band, hi_band = drawn["core"], path.shape[1] - drawn["high"]
    return [(e, j) for e, j in dirac_points(tb, k, path.T, segments=segments, efermi=0.0, near=np.inf) if lo_band <= j < hi_band - 1]


def _electrons(rng, tb, k, dist, grid, path, drawn, target) -> int:
    """The cell's electron count for the material's intent (anywhere when it has no candidate,
    which the intent column of physics.csv then says)."""
    nb = grid.shape[1]
    n_core, n_high = drawn["core"], drawn["high"]
    both = np.concatenate([grid, path])
    intent = drawn["intent"]
    lo_band, hi_band = n_core, nb - n_high                  # bands that may be partly filled
    choice = None
    if intent == "gap":
        m = np.arange(lo_band + 1, hi_band)
        gaps = both[:, m].min(0) - both[:, m - 1].max(0)
        ok = m[gaps > 0.02]
        if len(ok):
            choice = 2 * int(rng.choice(ok))
    elif intent == "flat" and target is not None:
        bands = _flat_bands(grid, path, drawn)
        if len(bands):
            j = int(bands[np.argmin(np.abs(both[:, bands].mean(0) - target))])
            choice = 2 * j + (1 if rng.random() < 0.85 else 2)
    elif intent == "dirac" and target is not None:
        cones = _cones(tb, k, path, dist, drawn)
        if cones:
            choice = 2 * (min(cones, key=lambda c: abs(c[0] - target))[1] + 1)
    if choice is None:
        drawn["intent"] = "random"
        choice = 2 * n_core + int(rng.integers(1, 2 * (hi_band - lo_band)))
    return int(choice)


# ---- sets and data roots --------------------------------------------------------------------------

def generate(n: int, *, seed: int = 0, family_set: str = "demo") -> list[Material]:
    """``n`` materials of a family set, the families in turn."""
    families = _families(family_set)
    return [make_material(i, family=families[i % len(families)], seed=seed, family_set=family_set) for i in range(n)]


def _families(family_set: str) -> tuple:
    if family_set not in FAMILY_SETS:
        raise ParameterError(f"family_set must be one of {tuple(FAMILY_SETS)}, got {family_set!r}")
    return FAMILY_SETS[family_set]


def map_materials(worker, tasks: list, *, jobs: int | None = None, progress=None, **info) -> tuple[list, list]:
    """Run ``worker(task)`` -> (labels, physics) over ``tasks`` in processes (``jobs``, default:
    every core), in order; ``progress(i, n, **info)`` after each. Returns the two lists."""
    labels, physics = [], []
    with ProcessPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        for i, (lab, phys) in enumerate(pool.map(worker, tasks, chunksize=8), 1):
            labels.append(lab)
            physics.append(phys)
            if progress:
                progress(i, len(tasks), **info)
    return labels, physics


def _write_one(args) -> tuple[dict, dict]:
    index, family, seed, family_set, root, windows = args
    m = make_material(index, family=family, seed=seed, family_set=family_set)
    write_material_outputs(m.band_data, root, windows=windows)
    return m.labels, m.physics


def build_dftlike_root(out, *, n: int = 600, seed: int = 0, family_set: str = "demo", windows=(1, 2, 3),
                       jobs: int | None = None, progress=None) -> dict:
    """Write a data root of ``n`` DFT-like materials into ``out`` (the catalog's layout):
    ``bands/*.npz``, ``images/train_{W}eV/*.png`` (224 px) and ``images/display_{W}eV/*.png``
    for each window W (eV), ``labels.csv`` and ``physics.csv``. No models are trained.
    ``progress(i, n)`` is called after each material."""
    families = _families(family_set)
    if n < len(families):
        raise ParameterError(f"n must be at least {len(families)} (one material per family), got {n}")
    windows = tuple(float(w) for w in windows)
    if not windows or min(windows) <= 0:
        raise ParameterError(f"windows must be positive energies (eV), got {windows}")
    out = Path(out)
    tasks = [(i, families[i % len(families)], seed, family_set, out, windows) for i in range(n)]
    labels, physics = map_materials(_write_one, tasks, jobs=jobs, progress=progress)
    write_csv_atomic(out / "labels.csv", pd.DataFrame(labels))
    write_csv_atomic(out / "physics.csv", pd.DataFrame(physics))
    return {"materials": n, "root": str(out)}
