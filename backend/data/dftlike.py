"""DFT-like band structures with exact physics labels: tight-binding materials whose Fermi level
follows from their electron count, as in a VASP or Quantum ESPRESSO run.

A second construction next to :mod:`backend.data.demo` (whose Fermi level is drawn at random): here a
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
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from backend.data.bands import BandData, write_material_outputs
from backend.errors import ParameterError
from backend.fileio import write_csv_atomic

#: eV: a band within this of E_F is "at E_F" (flat band, Dirac point)
NEAR_EF = 0.1
#: eV: an energy-ordered band narrower than this along the path is flat
FLAT_WIDTH = 0.1
#: eV: two bands closer than this at their closest point on the path touch
DIRAC_TOUCH = 0.01
#: eV: energies closer than this are equal (a touching, not a gap; on E_F, not across it)
TOL = 1e-4
#: Γ-centred grid of the Brillouin zone (divisible by 6: holds Γ, M, K, X, S)
GRID = 24
#: points per path segment (segment ends repeated, as VASP's line mode)
PER_SEGMENT = 100

#: how the electron count is drawn (the labels are computed afterwards, whatever it gives):
#: anywhere, in a gap, in a flat band, at a touching of two bands (weights before the family's)
INTENTS = {"random": 0.3, "gap": 0.2, "flat": 0.2, "dirac": 0.3}

FAMILY_SETS = {
    "demo": ("triangular", "honeycomb", "kagome", "square", "lieb"),
    "holdout": ("dice", "checkerboard", "breathing_kagome", "bilayer_honeycomb", "pi_flux"),
}
#: the yes/no labels (each class at least 15 % of a default set: tests/test_dftlike.py)
BINARY_LABELS = ("metal", "flat_band_at_ef", "dirac_at_ef", "odd_electrons")
#: lattices with a flat band (at nearest-neighbour hopping) and with Dirac cones on their path
FLAT_LATTICES = ("kagome", "lieb", "dice", "checkerboard", "breathing_kagome")
DIRAC_LATTICES = ("honeycomb", "kagome", "lieb", "dice", "pi_flux")

SQ3 = math.sqrt(3.0)


@dataclass(frozen=True)
class Lattice:
    """A 2-D lattice: Bravais type, sites (fractional coordinates), which site pairs bond."""

    name: str
    bravais: str                       # hexagonal | square | rectangular
    sites: tuple                       # fractional coordinates of the sites
    nn_pairs: tuple | None = None      # sublattice pairs that bond at the nearest distance (None: all)
    stagger: tuple | None = None       # sign of the staggered potential per site
    layers: tuple | None = None        # layer of each site (bonds only within a layer)
    soc: bool = True                   # the spin-orbit-like term is allowed (inversion-symmetric)


LATTICES = {
    "triangular": Lattice("triangular", "hexagonal", ((0, 0),), soc=False),
    "honeycomb": Lattice("honeycomb", "hexagonal", ((1 / 3, 1 / 3), (2 / 3, 2 / 3)), stagger=(1, -1)),
    "kagome": Lattice("kagome", "hexagonal", ((0, 0), (0.5, 0), (0, 0.5)), stagger=(1, -1, 0)),
    "square": Lattice("square", "square", ((0, 0),), soc=False),
    "lieb": Lattice("lieb", "square", ((0, 0), (0.5, 0), (0, 0.5)), stagger=(1, -1, -1)),
    # held out
    "dice": Lattice("dice", "hexagonal", ((0, 0), (1 / 3, 1 / 3), (2 / 3, 2 / 3)), nn_pairs=((0, 1), (0, 2)),
                    stagger=(0, 1, -1), soc=False),
    "checkerboard": Lattice("checkerboard", "square", ((0, 0), (0.5, 0.5)), stagger=(1, -1), soc=False),
    "breathing_kagome": Lattice("breathing_kagome", "hexagonal", ((0, 0), (0.5, 0), (0, 0.5)), soc=False),
    "bilayer_honeycomb": Lattice("bilayer_honeycomb", "hexagonal",
                                 ((1 / 3, 1 / 3), (2 / 3, 2 / 3), (2 / 3, 2 / 3), (0, 0)),
                                 nn_pairs=((0, 1), (2, 3)), stagger=(1, 1, -1, -1), layers=(0, 0, 1, 1), soc=False),
    # a square lattice with half a flux quantum per plaquette (y bonds change sign from column to
    # column): a cell of two columns, Dirac cones halfway along the path's X-S line
    "pi_flux": Lattice("pi_flux", "rectangular", ((0, 0), (0.5, 0)), stagger=(1, -1), soc=False),
}

_PATHS = {  # high-symmetry points in reduced coordinates of the reciprocal vectors
    "hexagonal": ((("Γ", (0, 0)), ("M", (0, 0.5)), ("K", (1 / 3, 2 / 3)), ("Γ", (0, 0)))),
    "square": ((("Γ", (0, 0)), ("X", (0.5, 0)), ("M", (0.5, 0.5)), ("Γ", (0, 0)))),
    "rectangular": ((("Γ", (0, 0)), ("X", (0.5, 0)), ("S", (0.5, 0.5)), ("Y", (0, 0.5)), ("Γ", (0, 0)))),
}


# ---- the Hamiltonian -----------------------------------------------------------------------------

@dataclass
class TightBinding:
    """A Bloch Hamiltonian H(k)_ij = onsite_i δ_ij + Σ_terms t e^{ik·d} + h.c.

    ``cell`` (2, 2): lattice vectors as rows (Å); ``onsite`` (n,): eV; each hopping term goes
    from orbital ``i`` to orbital ``j`` over the Cartesian displacement ``d`` (Å) with amplitude
    ``t`` (eV, complex), listed once per bond (its Hermitian conjugate is added).
    """

    cell: np.ndarray
    onsite: np.ndarray
    i: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    j: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    d: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    t: np.ndarray = field(default_factory=lambda: np.zeros(0, complex))

    @property
    def n(self) -> int:
        return len(self.onsite)

    def add(self, i, j, d, t) -> None:
        """Add bonds: ``i``, ``j`` (orbital indices), ``d`` (m, 2) or (2,) and ``t`` broadcast together."""
        i, j = np.atleast_1d(i).astype(int), np.atleast_1d(j).astype(int)
        d = np.asarray(d, float).reshape(-1, 2)
        t = np.atleast_1d(np.asarray(t, complex))
        m = max(len(i), len(j), len(d), len(t))
        self.i = np.concatenate([self.i, np.broadcast_to(i, (m,))])
        self.j = np.concatenate([self.j, np.broadcast_to(j, (m,))])
        self.d = np.concatenate([self.d, np.broadcast_to(d, (m, 2))])
        self.t = np.concatenate([self.t, np.broadcast_to(t, (m,))])

    def reciprocal(self) -> np.ndarray:
        """Reciprocal lattice vectors as rows (1/Å): b_i · a_j = 2π δ_ij."""
        return 2 * np.pi * np.linalg.inv(self.cell).T

    def hamiltonian(self, k: np.ndarray) -> np.ndarray:
        """H(k) (nk, n, n) at Cartesian ``k`` (nk, 2), 1/Å."""
        k = np.atleast_2d(np.asarray(k, float))
        n = self.n
        values = np.exp(1j * (k @ self.d.T)) * self.t                  # (nk, nterms)
        flat = self.i * n + self.j
        order = np.argsort(flat, kind="stable")
        idx, first = np.unique(flat[order], return_index=True)
        h = np.zeros((len(k), n * n), complex)
        if len(order):
            h[:, idx] = np.add.reduceat(values[:, order], first, axis=1)
        h = h.reshape(len(k), n, n)
        h = h + np.conj(np.swapaxes(h, 1, 2))
        h[:, np.arange(n), np.arange(n)] += self.onsite
        return h

    def bands(self, k: np.ndarray) -> np.ndarray:
        """Band energies (nk, n), ascending at each k (eV)."""
        return np.linalg.eigvalsh(self.hamiltonian(k))


def cell_vectors(bravais: str, a: float, aspect: float = 1.0) -> np.ndarray:
    """Lattice vectors as rows (Å) of lattice constant ``a``; a rectangular cell is ``aspect``
    times longer along x."""
    if bravais == "hexagonal":
        return a * np.array([[1.0, 0.0], [0.5, SQ3 / 2]])
    if bravais == "square":
        return a * np.eye(2)
    return a * np.array([[aspect, 0.0], [0.0, 1.0]])


def site_bonds(lattice: Lattice, cell: np.ndarray, shells: int = 2) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Bonds between sites by distance shell: for each of the first ``shells`` shells, arrays
    (s, s2, d): from site s to site s2's image at Cartesian displacement d (Å), once per bond.
    Nearest-neighbour bonds follow ``nn_pairs``; bonds join sites of one layer only."""
    f = np.array(lattice.sites, float)
    ns = len(f)
    rows = []
    for s in range(ns):
        for s2 in range(s, ns):
            if lattice.layers and lattice.layers[s] != lattice.layers[s2]:
                continue
            for rx in range(-2, 3):
                for ry in range(-2, 3):
                    if s == s2 and (rx, ry) <= (0, 0):
                        continue                        # each bond of a site to its own images once
                    d = (np.array([rx, ry]) + f[s2] - f[s]) @ cell
                    dist = float(np.hypot(*d))
                    if dist > 1e-9:
                        rows.append((round(dist, 6), s, s2, d))
    dists = sorted({r[0] for r in rows})
    out = []
    for shell, dist in enumerate(dists[:shells]):
        sel = [r for r in rows if r[0] == dist]
        if shell == 0 and lattice.nn_pairs is not None:
            sel = [r for r in sel if (r[1], r[2]) in lattice.nn_pairs]
        out.append((np.array([r[1] for r in sel]), np.array([r[2] for r in sel]), np.array([r[3] for r in sel]).reshape(-1, 2)))
    return out


def _soc_signs(nn, nnn) -> np.ndarray:
    """Kane-Mele ν_ij = ±1 of each second-neighbour bond: the turn (sign of the cross product)
    of the two nearest-neighbour bonds that join its ends; 0 where the paths' turns cancel."""
    s_nn, s2_nn, d_nn = nn
    # directed nearest-neighbour bonds both ways
    frm = np.concatenate([s_nn, s2_nn])
    to = np.concatenate([s2_nn, s_nn])
    dd = np.concatenate([d_nn, -d_nn])
    s, s2, d = nnn
    nu = np.zeros(len(s))
    for b in range(len(s)):
        total = 0.0
        for a1 in np.flatnonzero(frm == s[b]):
            rest = d[b] - dd[a1]
            for a2 in np.flatnonzero((frm == to[a1]) & (to == s2[b])):
                if np.allclose(dd[a2], rest, atol=1e-6):
                    total += np.sign(dd[a1][0] * dd[a2][1] - dd[a1][1] * dd[a2][0])
        nu[b] = np.sign(total)
    return nu


# ---- one material ---------------------------------------------------------------------------------

@dataclass
class Material:
    """A generated material: its band data (relative to E_F), labels and exact quantities."""

    band_data: BandData
    labels: dict
    physics: dict
    model: TightBinding


_RANGE_CACHE: dict = {}


def _unit_range(lattice: Lattice, cell: np.ndarray) -> tuple[float, float]:
    """Lowest and highest energy of the lattice's nearest-neighbour bands at hopping +1 eV."""
    key = (lattice.name, round(cell[0, 0] / cell[1, 1], 6))
    if key not in _RANGE_CACHE:
        tb = TightBinding(cell=cell, onsite=np.zeros(len(lattice.sites)))
        s, s2, d = site_bonds(lattice, cell)[0]
        tb.add(s, s2, d, _flux_signs(lattice, s, s2))
        e = tb.bands(zone_grid(tb))
        _RANGE_CACHE[key] = (float(e.min()), float(e.max()))
    return _RANGE_CACHE[key]


def _flux_signs(lattice: Lattice, s: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """Signs of the nearest-neighbour bonds: the π-flux lattice's second column has negative
    bonds to itself (its y bonds), which threads π through every plaquette; +1 elsewhere."""
    if lattice.name == "pi_flux":
        return np.where((s == 1) & (s2 == 1), -1.0, 1.0)
    return np.ones(len(s))


def _unit_width(lattice: Lattice, cell: np.ndarray) -> float:
    lo, hi = _unit_range(lattice, cell)
    return hi - lo


def zone_grid(tb: TightBinding, n: int = GRID) -> np.ndarray:
    """Γ-centred n x n grid of the Brillouin zone, Cartesian (n², 2), 1/Å."""
    u = np.arange(n) / n
    frac = np.stack(np.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2)
    return frac @ tb.reciprocal()


def kpath(tb: TightBinding, bravais: str, per_segment: int = PER_SEGMENT):
    """Cartesian k-points along the lattice's path (segment ends repeated), their path length
    (1/Å), the indices of the high-symmetry points and their labels."""
    points = _PATHS[bravais]
    corners_k = [np.array(p) @ tb.reciprocal() for _, p in points]
    t = np.linspace(0, 1, per_segment)[:, None]
    k = np.concatenate([a + t * (b - a) for a, b in pairwise(corners_k)])
    dist = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(k, axis=0), axis=1))])
    corners = np.array([0] + [(i + 1) * per_segment - 1 for i in range(len(points) - 1)])
    return k, dist, corners, [name for name, _ in points]


def _draw_intent(family: str, rng: np.random.Generator) -> str:
    """Where this material's E_F is meant to land (see :data:`INTENTS`)."""
    p = dict(INTENTS)
    if family not in DIRAC_LATTICES:
        p["dirac"] *= 0.3          # accidental touchings only
    if family in FLAT_LATTICES:
        p["flat"] *= 1.5
    names = list(p)
    w = np.array([p[k] for k in names])
    return str(rng.choice(names, p=w / w.sum()))


def _build(family: str, rng: np.random.Generator, *, holdout: bool, intent: str) -> tuple[TightBinding, dict]:
    """A random cell of ``family`` shaped by ``intent``: its Hamiltonian and what was drawn."""
    lat = LATTICES[family]
    a = rng.uniform(2.6, 4.2)
    cell = cell_vectors(lat.bravais, a, aspect=2.0)
    f = np.array(lat.sites, float)
    xy = f @ cell
    ns = len(f)
    n_orb = int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
    # orbitals: on-site energies 1-3.5 eV apart around a random centre; bandwidths 0.5-5 eV
    e_orb = np.cumsum(np.concatenate([[0.0], rng.uniform(1.0, 3.5, n_orb - 1)]))
    e_orb = e_orb - e_orb.mean() + rng.uniform(-1.5, 1.5)
    width = np.exp(rng.uniform(np.log(0.5), np.log(5.0), n_orb))
    t_orb = width / _unit_width(lat, cell) * rng.choice([-1, 1], n_orb)
    T = np.diag(t_orb)
    for o in range(n_orb):
        for o2 in range(o + 1, n_orb):
            T[o, o2] = T[o2, o] = rng.uniform(-0.3, 0.3) * math.sqrt(abs(t_orb[o] * t_orb[o2]))
    keep_flat = intent == "flat" and family in FLAT_LATTICES
    t2 = t_orb * rng.uniform(-0.12, 0.12, n_orb) if rng.random() < 0.5 and not keep_flat else np.zeros(n_orb)
    masses = ["none"] + (["staggered"] if lat.stagger else []) + (["soc"] if lat.soc else [])
    p_mass = {1: [1.0], 2: [0.55, 0.45], 3: [0.5, 0.25, 0.25]}[len(masses)]
    mass = str(rng.choice(masses, p=p_mass))
    if keep_flat and family != "lieb" or intent == "dirac":
        mass = "none"             # a mass bends the flat band (Lieb's corner potential does not), gaps the cone
    drawn = {"a": a, "orbitals": n_orb, "mass": mass, "localised": False, "family": family}

    n_bg, n_core, n_high = int(rng.integers(1, 4)), int(rng.integers(2, 6)), int(rng.integers(1, 4))
    n_act = ns * n_orb
    n = n_core + n_act + n_bg + n_high
    onsite = np.zeros(n)
    tb = TightBinding(cell=cell, onsite=onsite)
    act = n_core + np.arange(n_act).reshape(ns, n_orb)        # orbital index of (site, orbital)

    # active lattice: site potentials, nearest- and second-neighbour hoppings per orbital pair
    site_v = np.zeros(ns)
    if mass == "staggered":
        site_v = rng.uniform(0.03, 0.4) * np.array(lat.stagger, float)
    if holdout and not keep_flat:   # disorder the demo does not have: a random potential per sublattice
        site_v = site_v + rng.normal(0, 0.05, ns)
    onsite[act] = e_orb[None, :] + site_v[:, None]
    shells = site_bonds(lat, cell)
    strain = rng.uniform(0, 0.25) * rng.choice([-1, 1]) if holdout else 0.0
    (s, s2, d) = shells[0]
    w = 1 + strain * np.cos(2 * np.arctan2(d[:, 1], d[:, 0]))   # uniaxial strain along x
    if family == "breathing_kagome":   # up triangles (inside the cell) and down ones differ
        inside = np.isclose(d, xy[s2] - xy[s]).all(1)
        drawn["breathing"] = rng.uniform(0.3, 0.8)
        w = w * np.where(inside, 1.0, drawn["breathing"])
    w = w * _flux_signs(lat, s, s2)
    for o in range(n_orb):
        for o2 in range(n_orb):
            if T[o, o2] != 0:
                tb.add(act[s, o], act[s2, o2], d, T[o, o2] * w)
    if family == "checkerboard":   # crossed plaquettes: A along x, B along y, as strong as t
        for o in range(n_orb):
            tb.add(act[0, o], act[0, o], cell[0], T[o, o])
            tb.add(act[1, o], act[1, o], cell[1], T[o, o])
    if family == "bilayer_honeycomb":   # Bernal stacking: B1 above A2
        drawn["interlayer"] = rng.uniform(0.25, 0.45)
        for o in range(n_orb):
            tb.add(act[1, o], act[2, o], np.zeros(2), drawn["interlayer"])
    if (t2 != 0).any() and family not in ("checkerboard", "pi_flux"):
        s, s2, d = shells[1]
        for o in range(n_orb):
            tb.add(act[s, o], act[s2, o], d, t2[o])
    if mass == "soc":
        nu = _soc_signs(shells[0], shells[1])
        lam = rng.uniform(0.01, 0.12)
        drawn["soc"] = lam
        s, s2, d = shells[1]
        keep = nu != 0
        for o in range(n_orb):
            tb.add(act[s[keep], o], act[s2[keep], o], d[keep], 1j * lam * nu[keep] * (1 if o % 2 == 0 else -0.6))

    bravais = Lattice("bravais", lat.bravais, ((0, 0),))
    bonds = site_bonds(bravais, cell, shells=1)[0][2]      # the Bravais lattice's nearest neighbours
    bg_width = _unit_width(bravais, cell)
    # background bands on the Bravais lattice, hybridised with the active orbitals
    v_max = 0.1 if intent in ("flat", "dirac") else 0.25
    drawn["bg"] = []
    for b in range(n_bg):
        ob = n_core + n_act + b
        onsite[ob] = rng.uniform(-4, 4)
        t_b = rng.uniform(2.5, 6.0) / bg_width * rng.choice([-1, 1])
        tb.add(ob, ob, bonds, t_b)
        drawn["bg"].append((ob, t_b))
        _hybridise(tb, ob, act, f, cell, rng.uniform(0.03, v_max) * rng.uniform(0.5, 1.0, n_orb))
    # core (narrow, filled) and high (empty) bands, uncoupled
    onsite[:n_core] = np.sort(rng.uniform(-9, -4.5, n_core))
    for c in range(n_core):
        tb.add(c, c, bonds, rng.uniform(0.02, 0.1) / bg_width)
    for h in range(n_high):
        oh = n - n_high + h
        onsite[oh] = rng.uniform(4, 8)
        tb.add(oh, oh, bonds, rng.uniform(1.0, 4.0) / bg_width * rng.choice([-1, 1]))
    drawn.update(core=n_core, background=n_bg, high=n_high, intent=intent, act=act, bravais=bravais)
    return tb, drawn


def _add_localised(tb: TightBinding, drawn: dict, energy: float, rng: np.random.Generator) -> None:
    """A d/f-like orbital at the origin at ``energy`` (eV): a band narrower than 30 meV, weakly
    hybridised (5-40 meV) with the active orbitals. Appended after the others (bands are sorted
    by energy anyway)."""
    ol = tb.n
    tb.onsite = np.append(tb.onsite, energy)
    bravais = drawn["bravais"]
    bonds = site_bonds(bravais, tb.cell, shells=1)[0][2]
    tb.add(ol, ol, bonds, rng.uniform(-0.03, 0.03) / _unit_width(bravais, tb.cell))
    act = drawn["act"]
    sites = np.array(LATTICES[drawn["family"]].sites, float)
    _hybridise(tb, ol, act, sites, tb.cell, rng.uniform(0.005, 0.04) * np.ones(act.shape[1]))
    drawn["localised"] = True


def _clear_background(tb: TightBinding, drawn: dict, energy: float, rng: np.random.Generator, margin: float = 0.3) -> None:
    """Move the background bands whose range covers ``energy`` ± ``margin`` (eV) to either side
    of it (so that a flat band or a Dirac point there keeps E_F to itself)."""
    lo, hi = _unit_range(drawn["bravais"], tb.cell)
    for ob, t_b in drawn["bg"]:
        e_lo, e_hi = sorted((t_b * lo, t_b * hi))          # the band's range about its on-site energy
        c = tb.onsite[ob]
        if c + e_lo - margin < energy < c + e_hi + margin:
            gap = margin + rng.uniform(0, 0.5)
            tb.onsite[ob] = energy + gap - e_lo if rng.random() < 0.5 else energy - gap - e_hi


def _hybridise(tb: TightBinding, orbital: int, act: np.ndarray, f: np.ndarray, cell: np.ndarray, v: np.ndarray) -> None:
    """Real hoppings ``v`` (per active orbital type) from ``orbital`` at the origin to the nearest
    images of every active site: a set symmetric under inversion about the origin, as the
    lattices are, so the spin-orbit-like term keeps E(k) = E(-k)."""
    images = np.array([(rx, ry) for rx in range(-1, 2) for ry in range(-1, 2)], float)
    for site in range(len(f)):
        dd = (images + f[site]) @ cell
        r = np.linalg.norm(dd, axis=1)
        nearest = dd[np.isclose(r, r.min(), atol=1e-6)]
        for o in range(act.shape[1]):
            tb.add(orbital, act[site, o], nearest, v[o])


def fermi_level(grid_bands: np.ndarray, path_bands: np.ndarray, electrons: int) -> tuple[float, bool]:
    """E_F (eV) of ``electrons`` per cell, 2 per band state: halfway between the highest filled
    and the lowest empty state of the grid ``grid_bands`` (nk, nb); mid-gap when the filled
    bands lie below the empty ones on the grid and the path (nk', nb) too. Returns (E_F, gapped)."""
    nk, nb = grid_bands.shape
    if not 0 < electrons < 2 * nb or (electrons * nk) % 2:
        raise ParameterError(f"electrons must be in 1..{2 * nb - 1} (with an even count of grid states), got {electrons}")
    if electrons % 2 == 0:
        m = electrons // 2
        both = np.concatenate([grid_bands, path_bands])
        vbm, cbm = both[:, m - 1].max(), both[:, m].min()
        if cbm - vbm > TOL:
            return float((vbm + cbm) / 2), True
    states = np.sort(grid_bands, axis=None)
    m = electrons * nk // 2
    return float((states[m - 1] + states[m]) / 2), False


def tracked_bands(tb: TightBinding, k: np.ndarray) -> np.ndarray:
    """Band energies (nk, n) along the path ``k`` (nk, 2), each column one band followed by its
    character: from each k-point to the next, the eigenstates are matched by largest overlap
    (an assignment), so a band keeps its identity through crossings with weakly hybridised
    bands, where energy-ordered bands swap."""
    w, v = np.linalg.eigh(tb.hamiltonian(k))
    out = np.empty_like(w)
    out[0] = w[0]
    prev = v[0]
    for i in range(1, len(k)):
        overlap = np.abs(prev.conj().T @ v[i]) ** 2          # (followed band, eigenstate)
        perm = linear_sum_assignment(-overlap)[1]
        out[i] = w[i, perm]
        prev = v[i][:, perm]
    return out


def dirac_points(tb: TightBinding, k: np.ndarray, bands_rel: np.ndarray, *, segments: list[np.ndarray],
                 efermi: float, near: float = NEAR_EF) -> list[tuple[float, int]]:
    """Linear touchings of adjacent bands on the path within ``near`` (eV) of E_F: (energy
    relative to E_F, lower band index). ``bands_rel`` (nb, nk): the bands along the path ``k``
    (nk, 2), relative to ``efermi`` (eV, absolute).

    Each local minimum of a pair's gap along the sampled path (< 50 meV, or a V: no larger than
    its rise to the next sample) is refined on 81 points
    within ±2 path steps along the path's direction; it is a touching when the refined gap is below
    DIRAC_TOUCH, linear when on both sides the gap at twice the distance is 1.5-3 times the gap at
    the distance (a cone doubles; a quadratic touching quadruples) and grows by at least 0.3 eV·Å.
    """
    found = []
    nb = bands_rel.shape[0]
    for seg in segments:
        if len(seg) < 3:
            continue
        step = float(np.linalg.norm(k[seg[1]] - k[seg[0]]))
        for j in range(nb - 1):
            g = bands_rel[j + 1, seg] - bands_rel[j, seg]
            mid = (bands_rel[j + 1, seg] + bands_rel[j, seg]) / 2
            left = np.concatenate([[np.inf], g[:-1]])
            right = np.concatenate([g[1:], [np.inf]])
            # a touching between two samples leaves a V: the smallest gap no larger than its rise
            rise = np.maximum(np.where(np.isinf(left), right, left), np.where(np.isinf(right), left, right)) - g
            cand = np.flatnonzero((g <= left) & (g <= right) & ((g < 0.05) | (g <= rise)) & (np.abs(mid) < near + 0.05))
            for c in cand:
                i = seg[c]
                a, b = seg[max(c - 1, 0)], seg[min(c + 1, len(seg) - 1)]
                u = (k[b] - k[a]) / np.linalg.norm(k[b] - k[a])
                t = np.linspace(-2 * step, 2 * step, 81)
                e = tb.bands(k[i] + t[:, None] * u) - efermi
                gg = e[:, j + 1] - e[:, j]
                best = int(np.argmin(gg))
                if gg[best] >= DIRAC_TOUCH:
                    continue
                energy = float((e[best, j + 1] + e[best, j]) / 2)
                if abs(energy) > near:
                    continue
                h = 0.01   # 1/Å
                off = np.array([-2 * h, -h, h, 2 * h])
                eo = tb.bands(k[i] + (t[best] + off)[:, None] * u)
                go = eo[:, j + 1] - eo[:, j]
                ok = True
                for g1, g2 in ((go[1], go[0]), (go[2], go[3])):
                    rise = g1 - gg[best]
                    ok &= rise > 0.3 * h and 1.5 < (g2 - gg[best]) / max(rise, 1e-12) < 3.0
                if ok:
                    found.append((energy, j))
    return found


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
    labels, physics = [], []
    with ProcessPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        for i, (lab, phys) in enumerate(pool.map(_write_one, tasks, chunksize=8), 1):
            labels.append(lab)
            physics.append(phys)
            if progress:
                progress(i, n)
    write_csv_atomic(out / "labels.csv", pd.DataFrame(labels))
    write_csv_atomic(out / "physics.csv", pd.DataFrame(physics))
    return {"materials": n, "root": str(out)}
