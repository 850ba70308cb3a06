"""The demo dataset: the app's default data, built by ``python -m backend demo``.

By default its materials come from :mod:`backend.data.dftlike`: tight-binding cells whose Fermi
level follows from their electron count, every band structure referenced to E_F = 0 as VASP and
Quantum ESPRESSO plots are, with exact physics labels (``family``, ``metal``,
``flat_band_at_ef``, ``dirac_at_ef``, ``filling``, ...; ``physics.csv`` holds the numbers behind
them). ``generator="lattice"`` builds the first demo instead (:mod:`backend.data.random_lattices`:
a random Fermi level, labels ``family``, ``metal``, ``flat_band``), kept to reproduce what was
measured on it.

The layout is the project root's: band data under ``assets/bands``, training images under
``assets/images/train_{W}eV`` (display plots are rendered from the band data on demand),
``labels.csv`` beside ``models/`` and ``embeddings/``; one ResNet-18 (latent 3) per window is
trained with train's defaults, unless the generator's plots call for other views (the lattice
generator's models keep the views made for it).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image

from backend.data import dftlike, nfe, random_lattices
from backend.data.bands import BandData, render_training_image, save_band_data
from backend.data.image_window import write_images_meta
from backend.data.model_ids import part_model_id
from backend.data.opening import write_opening
from backend.errors import ParameterError
from backend.fileio import atomic_path, write_csv_atomic

#: the generators a demo can be built from, and their family sets
GENERATORS = {
    "dftlike": dftlike.FAMILY_SETS,
    "lattice": random_lattices.FAMILY_SETS,
    # another construction (plane waves in a periodic potential): only a held-out set
    "nfe": {"holdout": tuple(nfe.FAMILIES)},
}
#: the contrastive views each generator's models are trained with (None: train's default)
GENERATOR_VIEWS = {"dftlike": None, "lattice": "lattice", "nfe": None}


def demo_families(generator: str = "dftlike", families: str = "demo") -> tuple[str, ...]:
    """The lattice families of one generator's set ('demo' or 'holdout')."""
    if generator not in GENERATORS:
        raise ParameterError(f"generator must be one of {tuple(GENERATORS)}, got {generator!r}")
    sets = GENERATORS[generator]
    if families not in sets:
        raise ParameterError(f"families must be one of {tuple(sets)}, got {families!r}")
    return sets[families]


def _material(index: int, family: str, seed: int, *, generator: str, families: str) -> tuple[BandData, dict, dict | None]:
    if generator == "lattice":
        bd, labels = random_lattices.make_material(index, family, seed)
        return bd, labels, None
    if generator == "nfe":
        bd, labels = nfe.make_material(index, family=family, seed=seed)
        return bd, labels, None
    m = dftlike.make_material(index, family=family, seed=seed, family_set=families)
    return m.band_data, m.labels, m.physics


def _write_one(args) -> tuple[dict, dict | None]:
    index, family, seed, root, windows, generator, families = args
    bd, labels, physics = _material(index, family, seed, generator=generator, families=families)
    save_band_data(bd, root / "assets")
    for w in windows:
        with atomic_path(root / "assets" / "images" / f"train_{w}eV" / f"{bd.material}.png") as tmp:
            Image.fromarray(render_training_image(bd, w)).save(tmp, format="PNG", optimize=True)
    return labels, physics


def write_demo_materials(out, *, n: int = 600, seed: int = 0, windows=(1, 2, 3), jobs: int | None = None,
                         progress=None, generator: str = "dftlike", families: str = "demo") -> int:
    """Band data, training images, ``labels.csv`` (and ``physics.csv`` for the DFT-like generator)
    of ``n`` materials, the families in turn; ``progress(i, n, stage=)`` after each."""
    names = demo_families(generator, families)
    if n < 2 * len(names):
        raise ParameterError(f"n must be at least {2 * len(names)} (two materials per family), got {n}")
    out = Path(out)
    tasks = [(i, names[i % len(names)], seed, out, windows, generator, families) for i in range(n)]
    labels, physics = dftlike.map_materials(_write_one, tasks, jobs=jobs, progress=progress, stage="materials")
    write_csv_atomic(out / "labels.csv", pd.DataFrame(labels))
    if physics[0] is not None:
        write_csv_atomic(out / "physics.csv", pd.DataFrame(physics))
    for w in windows:  # what the images show, for training to check
        write_images_meta(out / "assets" / "images" / f"train_{w}eV", window=w, image_size=None, source=f"demo ({generator})")
    return n


def build_demo(out, *, n: int = 600, seed: int = 0, windows=(1, 2, 3), epochs: int | None = None,
               image_size: int | None = None, jobs: int | None = None, progress=None, families: str = "demo",
               models: bool = True, generator: str = "dftlike") -> dict:
    """Build the demo into ``out`` (the project root by default): its materials
    (:func:`write_demo_materials`), the unencoded baselines, one ResNet-18 (latent 3) per
    window trained here with train's defaults (``epochs`` and ``image_size`` override them) and
    the map the shipped pretrained encoder makes of each window's images.
    ``families="holdout"`` builds the generator's held-out lattices instead; ``models=False``
    only the materials and baselines."""
    # torch: only for the models (the materials, and synth's roots built from them, need none)
    from backend.autoencoder.encoding import write_unencoded_embedding
    from backend.autoencoder.pretrained import encode_pretrained
    from backend.autoencoder.training import TrainConfig, train_model

    out = Path(out)
    windows = tuple(int(w) for w in windows)
    steps = n + 2 * len(windows)
    bar = (lambda i, total, stage: progress(i, steps, stage=stage)) if progress else None
    write_demo_materials(out, n=n, seed=seed, windows=windows, jobs=jobs, progress=bar, generator=generator,
                         families=families)
    built, trained = [], {}
    # train's defaults are the recipe (a few minutes a model on 2 cores); only these two can be changed
    recipe = {k: v for k, v in (("epochs", epochs), ("image_size", image_size), ("views", GENERATOR_VIEWS[generator]))
              if v is not None}
    for j, w in enumerate(windows):
        images = out / "assets" / "images" / f"train_{w}eV"
        built.append(write_unencoded_embedding(images, out, w))
        if progress:
            progress(n + 2 * j + 1, steps, stage=f"unencoded {w} eV")
        if not models:
            continue
        cfg = TrainConfig(arch="resnet18", latent=3, window=w, seed=seed, **recipe)
        trained[w] = train_model(cfg, images, out, overwrite=True).model_id
        built.append(trained[w])
        # the map of the shipped encoder: its weights ship, so a fresh clone places new materials on it
        built.append(encode_pretrained(images, out, window=w))
        if progress:
            progress(n + 2 * j + 2, steps, stage=f"model {w} eV")
    if trained and generator == "dftlike" and families == "demo":
        built += open_on_families(out, trained[max(trained)])
    return {"materials": n, "models": built}


#: how the DFT-like demo opens (:mod:`backend.data.opening`): its families, coloured by the label
#: and K-Means with as many clusters, on the band-shape part of its widest window's model (the
#: whole fingerprint groups fillings first: docs/findings.md)
DEMO_OPENING_VIEW = f"algo=kmeans&k={len(dftlike.FAMILY_SETS['demo'])}&color=family"


def open_on_families(out, model_id: str) -> list[str]:
    """Make the demo open on the band-shape map of ``model_id`` (its widest window's trained
    model): write its part maps and the root's ``explorer.json``; returns the part maps' ids."""
    from backend.autoencoder.parts import write_part_maps  # needs umap (the fingerprints' map)

    parts = write_part_maps(out, model_id)
    write_opening(out, default_model=part_model_id(model_id, "shape"), opening_view=DEMO_OPENING_VIEW)
    return parts
