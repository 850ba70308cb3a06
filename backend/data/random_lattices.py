"""Tight-binding band structures with a random Fermi level: the first demo's generator.

``python -m backend demo --generator lattice`` builds a data root from it (the app's demo before
the DFT-like one, :mod:`backend.data.dftlike`); :mod:`backend.data.synth` draws the hover bands of
its 10^5-material roots from it. Unlike a DFT run, its Fermi level is drawn anywhere between the
bands' 20th and 80th percentiles, so almost every material is a metal.

Four families along Γ-M-K-Γ of a triangular Bravais lattice (lattice constant 1):

- ``triangular``: one band, E = e0 - 2t Σ_i cos(k·δ_i) (Γ: e0 - 6t, M: e0 + 2t, K: e0 + 3t)
- ``honeycomb``: two bands e0 ± t|f(k)|, f = Σ_j exp(i k·d_j); a Dirac cone at K (|f(K)| = 0)
- ``kagome``: three bands; a flat band at e0 + 2t and a Dirac cone at K (at e0 - t)
- ``dice`` (T3): three bands 0, ±√2 t|f(k)| (+ e0); the flat band runs through the Dirac point

A material is a stack of one to three copies of its family's lattice with random hoppings and
on-site energies, coupled by weak random hybridisation, with a random Fermi level, so that its
images have several bands in the window like real band structures. Its family is its label; it also
gets derived properties: ``metal`` (a band crosses E_F) and ``flat_band`` (a band narrower than
50 meV within ±1 eV).

A second, **held-out** set of four families exists to check that a training recipe is not tuned
to the demo (``--families holdout``): lattices and features the demo does not contain, along
Γ-X-M-Γ of a square lattice or Γ-M-K-Γ:

- ``square``: one band, E = e0 - 2t (cos kx + cos ky)
- ``lieb``: three bands, a flat band through a Dirac-like cone at M (as dice, but on a square lattice)
- ``checkerboard``: two bands, a flat band touching a dispersive band quadratically at M
- ``gapped_honeycomb``: honeycomb with a staggered potential ±Δ (0.15-0.6 |t|): a gap at K
  where the demo's honeycomb has its Dirac cone
"""

from __future__ import annotations

import numpy as np

from backend.data.bands import BandData

FAMILIES = ("triangular", "honeycomb", "kagome", "dice")
HOLDOUT_FAMILIES = ("square", "lieb", "checkerboard", "gapped_honeycomb")
FAMILY_SETS = {"demo": FAMILIES, "holdout": HOLDOUT_FAMILIES}
SQUARE_FAMILIES = ("square", "lieb", "checkerboard")
SQ3 = np.sqrt(3.0)
A1, A2 = np.array([1.0, 0.0]), np.array([0.5, SQ3 / 2])
GAMMA, M, K = np.zeros(2), np.array([0.0, 2 * np.pi / SQ3]), np.array([2 * np.pi / 3, 2 * np.pi / SQ3])
DELTAS = np.array([A1, A2, A2 - A1])                       # triangular nearest neighbours
D_HONEY = np.array([[0, 1 / SQ3], [0.5, -0.5 / SQ3], [-0.5, -0.5 / SQ3]])  # honeycomb A->B bonds


SQ_X, SQ_M = np.array([np.pi, 0.0]), np.array([np.pi, np.pi])   # square lattice, constant 1


def kpath(n_per_segment: int = 100, lattice: str = "hexagonal") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cartesian k-points Γ-M-K-Γ (hexagonal) or Γ-X-M-Γ (square), segment ends repeated as
    VASP's line mode; their path length and the indices of the high-symmetry points."""
    corners_k = (GAMMA, M, K, GAMMA) if lattice == "hexagonal" else (GAMMA, SQ_X, SQ_M, GAMMA)
    pts = []
    for a, b in zip(corners_k[:-1], corners_k[1:]):
        t = np.linspace(0, 1, n_per_segment)[:, None]
        pts.append(a + t * (b - a))
    k = np.concatenate(pts)
    step = np.linalg.norm(np.diff(k, axis=0), axis=1)
    dist = np.concatenate([[0], np.cumsum(step)])
    corners = np.array([0, n_per_segment - 1, 2 * n_per_segment - 1, 3 * n_per_segment - 1])
    return k, dist, corners


def hamiltonian(family: str, k: np.ndarray, *, t: float = 1.0, e0: float = 0.0, gap: float = 0.0) -> np.ndarray:
    """Bloch Hamiltonians (nk, n, n) of one family (hopping -t for triangular/kagome, t for the
    bipartite ones, whose spectra are symmetric). ``gap``: the staggered potential ±gap of
    ``gapped_honeycomb``."""
    nk = len(k)
    if family == "square":
        e = e0 - 2 * t * (np.cos(k[:, 0]) + np.cos(k[:, 1]))
        return e.reshape(nk, 1, 1).astype(complex)
    if family == "lieb":  # corner site A, edge sites B (x) and C (y)
        h = np.zeros((nk, 3, 3), complex)
        h[:, 0, 1] = h[:, 1, 0] = -2 * t * np.cos(k[:, 0] / 2)
        h[:, 0, 2] = h[:, 2, 0] = -2 * t * np.cos(k[:, 1] / 2)
        return h + e0 * np.eye(3)
    if family == "checkerboard":  # the square lattice's line graph: flat band at e0 - 2t
        h = np.zeros((nk, 2, 2), complex)
        h[:, 0, 0], h[:, 1, 1] = 2 * t * np.cos(k[:, 0]), 2 * t * np.cos(k[:, 1])
        h[:, 0, 1] = h[:, 1, 0] = 4 * t * np.cos(k[:, 0] / 2) * np.cos(k[:, 1] / 2)
        return h + e0 * np.eye(2)
    if family == "gapped_honeycomb":
        h = hamiltonian("honeycomb", k, t=t, e0=e0)
        return h + np.diag([gap, -gap])[None]
    if family == "triangular":
        e = e0 - 2 * t * np.cos(k @ DELTAS.T).sum(1)
        return e.reshape(nk, 1, 1).astype(complex)
    if family in ("honeycomb", "dice"):
        f = np.exp(1j * (k @ D_HONEY.T)).sum(1)
        if family == "honeycomb":
            h = np.zeros((nk, 2, 2), complex)
            h[:, 0, 1], h[:, 1, 0] = t * f, t * np.conj(f)
        else:  # hub A bonded to rims B and C
            h = np.zeros((nk, 3, 3), complex)
            h[:, 0, 1], h[:, 1, 0] = t * f, t * np.conj(f)
            h[:, 0, 2], h[:, 2, 0] = t * np.conj(f), t * f
        return h + e0 * np.eye(h.shape[1])
    if family == "kagome":
        h = np.zeros((nk, 3, 3), complex)
        for (i, j), a in {(0, 1): A1 / 2, (0, 2): A2 / 2, (1, 2): (A2 - A1) / 2}.items():
            h[:, i, j] = h[:, j, i] = -2 * t * np.cos(k @ a)
        return h + e0 * np.eye(3)
    raise ValueError(f"family must be one of {FAMILIES + HOLDOUT_FAMILIES}, got {family!r}")


def bands_of(family: str, k: np.ndarray, *, t: float = 1.0, e0: float = 0.0) -> np.ndarray:
    """Band energies (nbands, nk), ascending."""
    return np.linalg.eigvalsh(hamiltonian(family, k, t=t, e0=e0)).T


def random_material(family: str, rng: np.random.Generator, k: np.ndarray) -> tuple[np.ndarray, float]:
    """Bands (nbands, nk) of a stack of 1-3 copies of ``family`` with random hoppings (0.3-1.2 eV),
    on-site energies and weak hybridisation (<= 0.1 eV), and a random Fermi level (eV)."""
    blocks = []
    for _ in range(rng.integers(1, 4)):
        t = rng.uniform(0.3, 1.2) * rng.choice([-1, 1])
        gap = rng.uniform(0.15, 0.6) * abs(t) if family == "gapped_honeycomb" else 0.0
        blocks.append(hamiltonian(family, k, t=t, e0=rng.uniform(-1.5, 1.5), gap=gap))
    n = sum(b.shape[1] for b in blocks)
    h = np.zeros((len(k), n, n), complex)
    i = 0
    for b in blocks:
        m = b.shape[1]
        h[:, i:i + m, i:i + m] = b
        i += m
    if len(blocks) > 1:
        v = rng.normal(0, 0.05, (n, n))  # weak hybridisation of all orbitals
        v = (v + v.T) / 2
        np.fill_diagonal(v, 0)
        h = h + v[None]
    bands = np.linalg.eigvalsh(h).T
    efermi = rng.uniform(np.percentile(bands, 20), np.percentile(bands, 80))
    return bands, float(efermi)


def make_material(index: int, family: str, seed: int) -> tuple[BandData, dict]:
    """One demo material (deterministic in ``seed`` and ``index``) and its labels."""
    rng = np.random.default_rng([seed, index])
    square = family in SQUARE_FAMILIES
    k, dist, corners = kpath(lattice="square" if square else "hexagonal")
    bands, ef = random_material(family, rng, k)
    name = f"{family}_{index:04d}"
    bd = BandData(material=name, kdist=dist, energies=bands[None], efermi=ef, ticks=dist[corners],
                  tick_labels=["Γ", "X", "M", "Γ"] if square else ["Γ", "M", "K", "Γ"], source=f"tight-binding demo, seed {seed}", kunits="1/Å")
    rel = bands - ef
    metal = bool(((rel.min(1) < 0) & (rel.max(1) > 0)).any())
    in_window = (rel.max(1) > -1) & (rel.min(1) < 1)
    flat = bool((((rel.max(1) - rel.min(1)) < 0.05) & in_window).any())
    return bd, {"material": name, "family": family, "metal": metal, "flat_band": flat}
