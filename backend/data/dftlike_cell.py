"""One random DFT-like cell, for :mod:`backend.data.dftlike`: the intent a material is drawn
with, and the Hamiltonian of its cell: the active lattice (orbitals, nearest- and second-neighbour
hoppings, a mass term), the background bands hybridised with it, the core and the empty high
bands; a localised orbital added later, and background bands moved away from an energy.
"""

from __future__ import annotations

import math

import numpy as np

from backend.data.tightbinding import (
    LATTICES,
    Lattice,
    TightBinding,
    _flux_signs,
    _soc_signs,
    _unit_range,
    _unit_width,
    cell_vectors,
    site_bonds,
)

#: how the electron count is drawn (the labels are computed afterwards, whatever it gives):
#: anywhere, in a gap, in a flat band, at a touching of two bands (weights before the family's)
INTENTS = {"random": 0.3, "gap": 0.2, "flat": 0.2, "dirac": 0.3}

#: lattices with a flat band (at nearest-neighbour hopping) and with Dirac cones on their path
FLAT_LATTICES = ("kagome", "lieb", "dice", "checkerboard", "breathing_kagome")
DIRAC_LATTICES = ("honeycomb", "kagome", "lieb", "dice", "pi_flux")


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
    keep_flat = intent == "flat" and family in FLAT_LATTICES
    e_orb, T, t2 = _draw_orbitals(lat, cell, rng, keep_flat=keep_flat)
    mass = _draw_mass(lat, rng, keep_flat=keep_flat, intent=intent)
    n_orb = len(e_orb)
    drawn = {"a": a, "orbitals": n_orb, "mass": mass, "localised": False, "family": family}

    n_bg, n_core, n_high = int(rng.integers(1, 4)), int(rng.integers(2, 6)), int(rng.integers(1, 4))
    ns = len(lat.sites)
    n_act = ns * n_orb
    tb = TightBinding(cell=cell, onsite=np.zeros(n_core + n_act + n_bg + n_high))
    act = n_core + np.arange(n_act).reshape(ns, n_orb)        # orbital index of (site, orbital)
    _add_active(tb, lat, act, rng, orbitals=(e_orb, T, t2), drawn=drawn, holdout=holdout, keep_flat=keep_flat)
    bravais = _add_outer_bands(tb, lat, act, rng, counts=(n_core, n_bg, n_high), drawn=drawn, intent=intent)
    drawn.update(core=n_core, background=n_bg, high=n_high, intent=intent, act=act, bravais=bravais)
    return tb, drawn


def _draw_orbitals(lat: Lattice, cell: np.ndarray, rng: np.random.Generator, *,
                   keep_flat: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The orbitals of a site (1-3): their on-site energies (eV), the nearest-neighbour hopping
    matrix between orbital types (eV) and the second-neighbour hopping of each (eV, often 0)."""
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
    t2 = t_orb * rng.uniform(-0.12, 0.12, n_orb) if rng.random() < 0.5 and not keep_flat else np.zeros(n_orb)
    return e_orb, T, t2


def _draw_mass(lat: Lattice, rng: np.random.Generator, *, keep_flat: bool, intent: str) -> str:
    """The cell's mass term: none, staggered or soc (those the lattice allows)."""
    masses = ["none"] + (["staggered"] if lat.stagger else []) + (["soc"] if lat.soc else [])
    p_mass = {1: [1.0], 2: [0.55, 0.45], 3: [0.5, 0.25, 0.25]}[len(masses)]
    mass = str(rng.choice(masses, p=p_mass))
    if keep_flat and lat.name != "lieb" or intent == "dirac":
        mass = "none"             # a mass bends the flat band (Lieb's corner potential does not), gaps the cone
    return mass


def _add_active(tb: TightBinding, lat: Lattice, act: np.ndarray, rng: np.random.Generator, *,
                orbitals: tuple, drawn: dict, holdout: bool, keep_flat: bool) -> None:
    """The active lattice: site potentials, nearest- and second-neighbour hoppings per orbital
    pair, the mass term. ``orbitals``: (on-site energies, hopping matrix, second-neighbour hoppings)."""
    e_orb, T, t2 = orbitals
    ns = act.shape[0]
    site_v = np.zeros(ns)
    if drawn["mass"] == "staggered":
        site_v = rng.uniform(0.03, 0.4) * np.array(lat.stagger, float)
    if holdout and not keep_flat:   # disorder the demo does not have: a random potential per sublattice
        site_v = site_v + rng.normal(0, 0.05, ns)
    tb.onsite[act] = e_orb[None, :] + site_v[:, None]
    shells = site_bonds(lat, tb.cell)
    _add_nearest(tb, lat, act, rng, T=T, nn=shells[0], drawn=drawn, holdout=holdout)
    _add_second(tb, lat, act, rng, t2=t2, shells=shells, drawn=drawn)


def _add_nearest(tb: TightBinding, lat: Lattice, act: np.ndarray, rng: np.random.Generator, *,
                 T: np.ndarray, nn: tuple, drawn: dict, holdout: bool) -> None:
    """Nearest-neighbour hoppings ``T`` (strained in the holdout set) and the lattice's own bonds
    (breathing triangles, crossed plaquettes, Bernal interlayer bonds)."""
    cell = tb.cell
    n_orb = T.shape[0]
    strain = rng.uniform(0, 0.25) * rng.choice([-1, 1]) if holdout else 0.0
    (s, s2, d) = nn
    w = 1 + strain * np.cos(2 * np.arctan2(d[:, 1], d[:, 0]))   # uniaxial strain along x
    if lat.name == "breathing_kagome":   # up triangles (inside the cell) and down ones differ
        xy = np.array(lat.sites, float) @ cell
        inside = np.isclose(d, xy[s2] - xy[s]).all(1)
        drawn["breathing"] = rng.uniform(0.3, 0.8)
        w = w * np.where(inside, 1.0, drawn["breathing"])
    w = w * _flux_signs(lat, s, s2)
    for o in range(n_orb):
        for o2 in range(n_orb):
            if T[o, o2] != 0:
                tb.add(act[s, o], act[s2, o2], d, t=T[o, o2] * w)
    if lat.name == "checkerboard":   # crossed plaquettes: A along x, B along y, as strong as t
        for o in range(n_orb):
            tb.add(act[0, o], act[0, o], cell[0], t=T[o, o])
            tb.add(act[1, o], act[1, o], cell[1], t=T[o, o])
    if lat.name == "bilayer_honeycomb":   # Bernal stacking: B1 above A2
        drawn["interlayer"] = rng.uniform(0.25, 0.45)
        for o in range(n_orb):
            tb.add(act[1, o], act[2, o], np.zeros(2), t=drawn["interlayer"])


def _add_second(tb: TightBinding, lat: Lattice, act: np.ndarray, rng: np.random.Generator, *,
                t2: np.ndarray, shells: list, drawn: dict) -> None:
    """Second-neighbour hoppings ``t2`` and the spin-orbit-like mass term (Kane-Mele)."""
    n_orb = act.shape[1]
    if (t2 != 0).any() and lat.name not in ("checkerboard", "pi_flux"):
        s, s2, d = shells[1]
        for o in range(n_orb):
            tb.add(act[s, o], act[s2, o], d, t=t2[o])
    if drawn["mass"] == "soc":
        nu = _soc_signs(shells[0], shells[1])
        lam = rng.uniform(0.01, 0.12)
        drawn["soc"] = lam
        s, s2, d = shells[1]
        keep = nu != 0
        for o in range(n_orb):
            tb.add(act[s[keep], o], act[s2[keep], o], d[keep], t=1j * lam * nu[keep] * (1 if o % 2 == 0 else -0.6))


def _add_outer_bands(tb: TightBinding, lat: Lattice, act: np.ndarray, rng: np.random.Generator, *,
                     counts: tuple[int, int, int], drawn: dict, intent: str) -> Lattice:
    """The bands around the active ones, on the Bravais lattice: ``counts`` = (core, background,
    high). Background bands hybridised with the active orbitals; narrow filled core bands and
    empty high bands, uncoupled. Returns the Bravais lattice."""
    n_core, n_bg, n_high = counts
    cell, onsite, n = tb.cell, tb.onsite, tb.n
    n_act, n_orb = act.size, act.shape[1]
    f = np.array(lat.sites, float)
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
        tb.add(ob, ob, bonds, t=t_b)
        drawn["bg"].append((ob, t_b))
        _hybridise(tb, ob, act, f, cell, rng.uniform(0.03, v_max) * rng.uniform(0.5, 1.0, n_orb))
    # core (narrow, filled) and high (empty) bands, uncoupled
    onsite[:n_core] = np.sort(rng.uniform(-9, -4.5, n_core))
    for c in range(n_core):
        tb.add(c, c, bonds, t=rng.uniform(0.02, 0.1) / bg_width)
    for h in range(n_high):
        oh = n - n_high + h
        onsite[oh] = rng.uniform(4, 8)
        tb.add(oh, oh, bonds, t=rng.uniform(1.0, 4.0) / bg_width * rng.choice([-1, 1]))
    return bravais

def _add_localised(tb: TightBinding, drawn: dict, energy: float, rng: np.random.Generator) -> None:
    """A d/f-like orbital at the origin at ``energy`` (eV): a band narrower than 30 meV, weakly
    hybridised (5-40 meV) with the active orbitals. Appended after the others (bands are sorted
    by energy anyway)."""
    ol = tb.n
    tb.onsite = np.append(tb.onsite, energy)
    bravais = drawn["bravais"]
    bonds = site_bonds(bravais, tb.cell, shells=1)[0][2]
    tb.add(ol, ol, bonds, t=rng.uniform(-0.03, 0.03) / _unit_width(bravais, tb.cell))
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
            tb.add(orbital, act[site, o], nearest, t=v[o])
