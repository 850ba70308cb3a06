"""A second construction of band structures: nearly free electrons in a periodic potential.

The demo's materials (:mod:`backend.data.dftlike`) are tight-binding cells: bands built from
localised orbitals and their hoppings. Here nothing is localised: an electron gas in a 2-D
crystal's potential, the opposite limit of band theory, solved in a plane-wave basis as a DFT
code does. So a recipe tuned on the tight-binding demo is checked on bands it was not made from.

**The crystal.** A Bravais lattice (lattice constant 2.6-3.8 Å) with one or two atoms per cell;
each atom is a Gaussian well (strength ``V0`` 0.3-2.5 eV, width 0.25-0.6 Å), so the potential's
Fourier components are ``V(G) = -Σ_atoms V0_j exp(-|G|²σ_j²/2) e^{-iG·τ_j}`` (gaps at the zone
boundary of up to a few eV, against a free-electron band width of ~4 eV). Families:

- ``square``, ``hexagonal``, ``rectangular`` (aspect 1.25-1.6): one atom per cell;
- ``honeycomb``: a hexagonal cell with two equal atoms at ±(1/3, 1/3) (its structure factor
  vanishes at K: Dirac points, as in graphene, where they are not gapped by a difference of
  the two wells);
- ``checkerboard``: a square cell with two unequal atoms at (0, 0) and (½, ½).

**The bands.** ``H_GG'(k) = ħ²/2m |k+G|² δ_GG' + V(G-G')`` on the reciprocal vectors with
|G| ≤ 3.2 |b1| (31-37 plane waves), its lowest 10 eigenvalues along the lattice's path and on a
Γ-centred 24 x 24 grid; 2 electrons per band state; 1-8 electrons per cell (half the time, where
the bands leave a gap over the whole zone, the count that fills up to it). E_F follows from the
count as in the demo (:func:`backend.data.tightbinding.fermi_level`: mid-gap in an insulator) and
every band structure is stored relative to it.

**Labels** (``labels.csv``): ``family``; ``metal`` (a band crosses E_F on the grid or the path,
or the count is odd); ``odd_electrons``; ``electrons`` (the count, 1-8). Deterministic in
(seed, index).
"""

from __future__ import annotations

import numpy as np

from backend.data.bands import BandData
from backend.data.tightbinding import TOL, cell_vectors, fermi_level, kpath, zone_grid
from backend.errors import ParameterError

#: ħ²/2m, eV·Å²
HBAR2_2M = 3.80998
#: the families and their cells: (Bravais lattice, atoms' fractional positions)
FAMILIES = {
    "square": ("square", ((0.0, 0.0),)),
    "hexagonal": ("hexagonal", ((0.0, 0.0),)),
    "rectangular": ("rectangular", ((0.0, 0.0),)),
    "honeycomb": ("hexagonal", ((1 / 3, 1 / 3), (-1 / 3, -1 / 3))),
    "checkerboard": ("square", ((0.0, 0.0), (0.5, 0.5))),
}
N_BANDS = 10
#: plane waves: every G with |G| <= this many |b1|
G_CUTOFF = 3.2


class PlaneWaveCrystal:
    """The Hamiltonian of one crystal in a plane-wave basis; :meth:`bands` at any k-points."""

    def __init__(self, cell: np.ndarray, atoms, depths, widths):
        self.cell = cell
        recip = self.reciprocal()
        reach = int(np.ceil(G_CUTOFF * 1.5)) + 1
        m = np.array([(i, j) for i in range(-reach, reach + 1) for j in range(-reach, reach + 1)])
        g = m @ recip
        keep = np.linalg.norm(g, axis=1) <= G_CUTOFF * np.linalg.norm(recip[0]) + 1e-9
        self.g = g[keep]
        dg = self.g[:, None, :] - self.g[None, :, :]                 # G - G'
        tau = np.asarray(atoms, float) @ cell                        # Cartesian atom positions
        v = np.zeros(dg.shape[:2], complex)
        for t, v0, s in zip(tau, depths, widths):
            v -= v0 * np.exp(-0.5 * s * s * (dg ** 2).sum(-1)) * np.exp(-1j * dg @ t)
        self.potential = v

    def bands(self, k: np.ndarray) -> np.ndarray:
        """The lowest :data:`N_BANDS` energies (eV) at each k-point (nk, 2): (nk, N_BANDS)."""
        out = np.empty((len(k), N_BANDS))
        for i, kk in enumerate(k):
            h = self.potential + np.diag(HBAR2_2M * ((kk + self.g) ** 2).sum(1))
            out[i] = np.linalg.eigvalsh(h)[:N_BANDS]
        return out

    def reciprocal(self) -> np.ndarray:
        """Reciprocal lattice vectors as rows (1/Å), as the tight-binding cells' (so the demo's
        k-path and zone grid apply)."""
        return 2 * np.pi * np.linalg.inv(self.cell).T


def make_material(index: int, *, family: str, seed: int) -> tuple[BandData, dict]:
    """One material of a family (deterministic in ``seed`` and ``index``): its band data
    (relative to E_F) and labels."""
    if family not in FAMILIES:
        raise ParameterError(f"family must be one of {tuple(FAMILIES)}, got {family!r}")
    rng = np.random.default_rng([seed, index, 77])
    bravais, atoms = FAMILIES[family]
    cell = cell_vectors(bravais, rng.uniform(2.6, 3.8), rng.uniform(1.25, 1.6))
    depths = rng.uniform(0.3, 2.5) * np.ones(len(atoms))
    if family == "checkerboard":
        depths[1] *= rng.uniform(0.2, 0.7)
    elif family == "honeycomb" and rng.random() < 0.5:
        depths[1] *= rng.uniform(0.75, 0.95)                        # unequal wells: the cones gap
    widths = rng.uniform(0.25, 0.6) * np.ones(len(atoms))
    crystal = PlaneWaveCrystal(cell, atoms, depths, widths)
    k, dist, corners, names = kpath(crystal, bravais)
    grid, path = crystal.bands(zone_grid(crystal)), crystal.bands(k)
    electrons = _electron_count(rng, np.concatenate([grid, path]))
    ef, gapped = fermi_level(grid, path, electrons)
    both = np.concatenate([grid, path]) - ef
    crossing = bool(((both.min(0) < -TOL) & (both.max(0) > TOL)).any())
    metal = crossing or electrons % 2 == 1 or not gapped
    name = f"nfe_{family}_{index:04d}"
    bd = BandData(material=name, kdist=dist, energies=(path - ef).T[None], efermi=0.0, ticks=dist[corners],
                  tick_labels=names, source=f"nearly free electrons, seed {seed}", kunits="1/Å")
    labels = {"material": name, "family": family, "metal": metal, "odd_electrons": bool(electrons % 2),
              "electrons": electrons}
    return bd, labels


def _electron_count(rng, bands: np.ndarray) -> int:
    """1-8 electrons; half the time, where the bands leave a gap over the whole sampled zone, the
    count that fills up to it (an insulator: blind counts would almost never be one)."""
    gaps = [2 * (m + 1) for m in range(4) if bands[:, m + 1].min() - bands[:, m].max() > 0.05]
    if gaps and rng.random() < 0.5:
        return int(rng.choice(gaps))
    return int(rng.integers(1, 9))
