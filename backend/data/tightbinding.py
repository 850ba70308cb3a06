"""Tight-binding lattices and their bands, for :mod:`backend.data.dftlike`: the 2-D lattices
(sites, which pairs bond), the Bloch Hamiltonian of a cell, the Brillouin-zone grid and the
high-symmetry path, and what the bands say near a Fermi level: E_F from an electron count,
bands followed by their character through crossings, Dirac touchings on the path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
from scipy.optimize import linear_sum_assignment

from backend.errors import ParameterError

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

    def add(self, i, j, d, *, t) -> None:
        """Add bonds: ``i``, ``j`` (orbital indices), ``d`` (m, 2) or (2,) and ``t`` (eV, by
        keyword) broadcast together."""
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


_RANGE_CACHE: dict = {}


def _unit_range(lattice: Lattice, cell: np.ndarray) -> tuple[float, float]:
    """Lowest and highest energy of the lattice's nearest-neighbour bands at hopping +1 eV."""
    key = (lattice.name, round(cell[0, 0] / cell[1, 1], 6))
    if key not in _RANGE_CACHE:
        tb = TightBinding(cell=cell, onsite=np.zeros(len(lattice.sites)))
        s, s2, d = site_bonds(lattice, cell)[0]
        tb.add(s, s2, d, t=_flux_signs(lattice, s, s2))
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

# ---- the bands near E_F -------------------------------------------------------------------------

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
