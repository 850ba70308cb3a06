"""Synthetic data roots of any size, with a known cluster structure: benchmarks at 10^5 materials.

``python -m backend synth --n 100000 --data ROOT`` writes, in the catalog's layout (ours)::

    embeddings/{model_id}.csv              fingerprints (n, 147): filename,z0..z146
    embeddings/{model_id}_embedding.csv    a 2-D map (n, 2) in which the clusters are blobs
    labels.csv                             material, cluster (c0..c{k-1} or noise), family
    bands/{material}.npz                   band data (unless --no-bands): hover images

The fingerprints are a mixture: ``n_clusters`` clusters of unequal sizes (a Dirichlet draw),
each a 5-dimensional Gaussian sheet of its own orientation and scale around its centre plus
isotropic noise in all 147 dimensions, and a fraction of background points spread over the
whole box (the truth calls them noise). Two models are written (the paper's id and a ResNet-18
one), the second a different random view of the same latent structure with more noise, so
model switches and cross-model agreement have something to show. Material names are Heusler-like
formulas (``2D_Ac2HgGe``), unique, so the element filter has real work to do; each cluster draws
its band structures from one of the first demo's lattice families (``backend.data.random_lattices``).

Deterministic in ``seed``; every file is written atomically.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backend.data.bands import BandData, save_band_data
from backend.data.random_lattices import FAMILIES, kpath, random_material
from backend.errors import ParameterError
from backend.fileio import write_csv_atomic

DIM = 147  # 7 x 7 x latent 3, as the study's fingerprints
SHEET_DIM = 5
#: element symbols the names are built from (common in Heusler compounds)
ELEMENTS = ("Li Na K Rb Cs Be Mg Ca Sr Ba Sc Y La Ti Zr Hf V Nb Ta Cr Mo W Mn Tc Re Fe Ru Os Co Rh Ir Ni "
            "Pd Pt Cu Ag Au Zn Cd Hg Al Ga In Tl Si Ge Sn Pb P As Sb Bi S Se Te Ac").split()
MODELS = ("resnet50_latent3_window1eV_steps90_split1.0_width1", "resnet18_latent3_window1eV_steps90_split1.0_width1")
WINDOW = 1


@dataclass(frozen=True)
class SynthSpec:
    """``n`` materials, ``n_clusters`` clusters, ``noise``: fraction of background points."""

    n: int = 100_000
    n_clusters: int = 50
    noise: float = 0.05
    seed: int = 0
    n_models: int = 2

    def validate(self) -> "SynthSpec":
        if not isinstance(self.n, (int, np.integer)) or self.n < 20:
            raise ParameterError(f"n must be an integer >= 20, got {self.n!r}")
        if self.n > max_materials():
            raise ParameterError(f"n={self.n} exceeds the {max_materials()} distinct names this generator makes")
        if not 1 <= self.n_clusters <= self.n // 10:
            raise ParameterError(f"n_clusters must be between 1 and n/10 = {self.n // 10}, got {self.n_clusters}")
        if not 0 <= self.noise < 0.5:
            raise ParameterError(f"noise must be a fraction in [0, 0.5), got {self.noise}")
        if not 1 <= self.n_models <= len(MODELS):
            raise ParameterError(f"n_models must be 1..{len(MODELS)}, got {self.n_models}")
        return self


def max_materials() -> int:
    m = len(ELEMENTS)
    return m * (m - 1) * (m - 2) * 3


def material_names(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct formula names ``2D_{X}{a}{Y}{Z}`` (X2YZ, XYZ or X3YZ), in random order."""
    m = len(ELEMENTS)
    codes = rng.choice(max_materials(), size=n, replace=False)
    stoich, rest = codes % 3, codes // 3
    x, rest = rest % m, rest // m
    y_rank, z_rank = rest % (m - 1), rest // (m - 1)
    y = y_rank + (y_rank >= x)                       # y != x
    lo, hi = np.minimum(x, y), np.maximum(x, y)
    z = z_rank + (z_rank >= lo)                       # z != x, y
    z = z + (z >= hi)
    count = np.array(["2", "", "3"])[stoich]
    el = np.array(ELEMENTS)
    return np.char.add(np.char.add(np.char.add(np.char.add("2D_", el[x]), count), el[y]), el[z])


def synth_truth(spec: SynthSpec) -> tuple[np.ndarray, np.ndarray]:
    """Cluster of each material (n,), -1 for background; and the cluster sizes (k,)."""
    rng = np.random.default_rng([spec.seed, 1])
    n_bg = int(round(spec.noise * spec.n))
    share = rng.dirichlet(np.full(spec.n_clusters, 2.0))
    sizes = np.maximum(5, np.floor(share * (spec.n - n_bg))).astype(int)
    sizes[np.argmax(sizes)] += spec.n - n_bg - sizes.sum()
    truth = np.concatenate([np.repeat(np.arange(spec.n_clusters), sizes), np.full(spec.n - sizes.sum(), -1)])
    return rng.permutation(truth), sizes


def synth_fingerprints(truth: np.ndarray, k: int, rng: np.random.Generator, *, spread: float = 1.0) -> np.ndarray:
    """(n, DIM) float32 fingerprints of the mixture described in the module docstring."""
    n = len(truth)
    centres = rng.normal(0, 4.0, (k, DIM))
    X = np.empty((n, DIM), dtype=np.float32)
    for c in range(k):
        idx = np.flatnonzero(truth == c)
        basis = rng.normal(0, rng.uniform(0.6, 1.6), (SHEET_DIM, DIM))
        X[idx] = centres[c] + rng.normal(size=(len(idx), SHEET_DIM)) @ basis + rng.normal(0, 0.35 * spread, (len(idx), DIM))
    bg = np.flatnonzero(truth < 0)
    lo, hi = centres.min(0) - 3, centres.max(0) + 3
    X[bg] = rng.uniform(lo, hi, (len(bg), DIM))
    return X


def synth_map(truth: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) coordinates: each cluster a blob (radius growing with its size) at a jittered grid
    position, background points spread over the whole map."""
    n = len(truth)
    side = int(np.ceil(np.sqrt(k)))
    cells = rng.permutation(side * side)[:k]
    centres = np.stack([cells % side, cells // side], 1) * 4.0 + rng.uniform(-0.8, 0.8, (k, 2))
    xy = np.empty((n, 2))
    for c in range(k):
        idx = np.flatnonzero(truth == c)
        r = 0.25 + 0.012 * np.sqrt(len(idx))
        xy[idx] = centres[c] + rng.normal(0, r, (len(idx), 2)) @ rng.normal(0, 0.5, (2, 2)) * 0.9 + rng.normal(0, r / 3, (len(idx), 2))
    bg = np.flatnonzero(truth < 0)
    xy[bg] = rng.uniform(centres.min(0) - 2, centres.max(0) + 2, (len(bg), 2))
    return xy


def write_synth(root: str | os.PathLike, spec: SynthSpec, *, bands: bool = True, progress=None) -> dict:
    """Write a synthetic data root (see the module docstring); returns what was written."""
    spec = spec.validate()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    truth, sizes = synth_truth(spec)
    names = material_names(spec.n, np.random.default_rng([spec.seed, 2]))
    files = np.char.add(names, ".png")
    steps = 2 * spec.n_models + (1 if not bands else 1 + spec.n)
    step = 0
    family_of_cluster = np.array(FAMILIES)[np.random.default_rng([spec.seed, 3]).integers(0, len(FAMILIES), spec.n_clusters)]
    family = np.where(truth >= 0, family_of_cluster[np.maximum(truth, 0)], np.array(FAMILIES)[np.arange(spec.n) % len(FAMILIES)])
    write_csv_atomic(root / "labels.csv", pd.DataFrame({
        "material": names, "cluster": np.where(truth >= 0, np.char.add("c", truth.astype(str)), "noise"),
        "family": family}))
    step += 1
    base = np.random.default_rng([spec.seed, 4])
    latent_seed = base.integers(2 ** 31)
    for j, model_id in enumerate(MODELS[: spec.n_models]):
        # the same clusters in every model (same latent draw), each model its own view of them
        rng = np.random.default_rng([spec.seed, 10 + j])
        X = synth_fingerprints(truth, spec.n_clusters, np.random.default_rng(latent_seed), spread=1.0 + 0.3 * j)
        X = X @ _rotation(rng) if j else X
        frame = pd.DataFrame(X, columns=[f"z{i}" for i in range(DIM)])
        frame.insert(0, "filename", files)
        write_csv_atomic(root / "embeddings" / f"{model_id}.csv", frame, float_format="%.6g")
        step += 1
        if progress:
            progress(step, steps, stage="fingerprints", model=model_id)
        xy = synth_map(truth, spec.n_clusters, np.random.default_rng([spec.seed, 20]))
        xy = xy + rng.normal(0, 0.05 * j, xy.shape)
        emb = pd.DataFrame({"filename": files, "z0": xy[:, 0], "z1": xy[:, 1]})
        write_csv_atomic(root / "embeddings" / f"{model_id}_embedding.csv", emb, float_format="%.6g")
        step += 1
        if progress:
            progress(step, steps, stage="map", model=model_id)
    if bands:
        write_band_data(root, names, family, seed=spec.seed, progress=progress, offset=step, total=steps)
    return {"materials": spec.n, "clusters": int(spec.n_clusters), "noise": int((truth < 0).sum()),
            "models": list(MODELS[: spec.n_models]), "bands": bool(bands)}


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(DIM, DIM)))
    return q.astype(np.float32)


def _band_chunk(args) -> int:
    root, names, families, seed, start = args
    k, dist, corners = kpath(60)
    for i, (name, fam) in enumerate(zip(names, families)):
        bands, ef = random_material(str(fam), np.random.default_rng([seed, 99, start + i]), k)
        save_band_data(BandData(material=str(name), kdist=dist, energies=bands[None], efermi=ef, ticks=dist[corners],
                                tick_labels=["Γ", "M", "K", "Γ"], source=f"synthetic, seed {seed}", kunits="1/Å"), root)
    return len(names)


def write_band_data(root: Path, names, families, *, seed: int, progress=None, offset: int = 0, total: int | None = None,
                    chunk: int = 500) -> None:
    """``bands/{material}.npz`` of every material (a random stack of its family's lattice), in
    worker processes."""
    tasks = [(root, names[s:s + chunk], families[s:s + chunk], seed, s) for s in range(0, len(names), chunk)]
    done = offset
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for count in pool.map(_band_chunk, tasks):
            done += count
            if progress:
                progress(done, total or done, stage="band data")
