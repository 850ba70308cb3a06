"""Data roots: which models exist, their hyperparameters, and where their files are.

Two layouts are read, side by side in one root:

* ours (written by ``python -m backend train`` and ``demo``)::

      embeddings/{model_id}.csv              fingerprints: filename,z0..z{n-1}
      embeddings/{model_id}_embedding.csv    2-D UMAP: filename,z0,z1
      models/{model_id}.json                 metadata; its "config" holds the hyperparameters
      models/{model_id}.pt                   weights
      images/display_{W}eV/{material}.png    display plots (also assets/images/display_{W}eV)
      images/train_{W}eV/{material}.png      224x224 training images
      bands/{material}.npz                   band data (see backend.data.bands)
      labels.csv                             optional known labels: material,<label columns>

* the published Heuslerene explorer's (``../shared/data/heuslerene``)::

      fingerprints/{model_id}_.csv, fingerprints/{model_id}_embedding.csv
      fingerprints/unencoded/unencoded_window{W}eV_width{LW}_embedding.csv
      images/bands_10width_{W}eV/{material}.png

Hyperparameters come from the model's metadata when it has one, else from its id
(:mod:`backend.data.model_ids`); the tables are read and checked by :mod:`backend.data.tables`.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from backend.autoencoder.config import FULL_WIDTH, PRETRAINED_TAG, VIEW_RECIPES, view_parts
from backend.cache import file_signature
from backend.data.image_cache import display_png
from backend.data.model_ids import parse_model_id, part_parent, plain_number
from backend.data.tables import ModelData, load_model_data
from backend.errors import DataError, UnknownModelError

#: folders (relative to the root) scanned for ``*_embedding.csv`` files
EMBEDDING_DIRS = ("embeddings", "embeddings/unencoded", "fingerprints", "fingerprints/unencoded")
#: materials placed on a root's maps, laid out as a data root of their own (backend.discover.additions)
ADDITIONS_DIR = "additions"
#: folders (relative to the root, ``{w}`` = window in eV) where display images are looked for
DISPLAY_IMAGE_DIRS = ("images/display_{w}eV", "assets/images/display_{w}eV", "images/bands_10width_{w}eV")
#: folders with the training images of a window
TRAIN_IMAGE_DIRS = ("images/train_{w}eV", "assets/images/train_{w}eV")
BAND_DATA_DIRS = ("bands", "assets/bands")
LABELS_FILE = "labels.csv"
#: :meth:`Catalog.display_image` for a prefetch whose image is still being drawn
PENDING = b""


@dataclass(frozen=True)
class ModelInfo:
    """One model of a data root: its hyperparameters and files."""

    model_id: str
    arch: str                      # resnet18 | resnet50 | unencoded | other
    latent: int | None             # z channels of the 7x7 latent map (fingerprint = 49 * latent)
    window: float | None           # energy window, +-eV around E_F
    epochs: int | None
    split: float | None            # validation fraction, 0..1
    line_width: float | None       # line width of the training images, pt
    embedding_path: Path
    fingerprint_path: Path | None  # None for unencoded models (they cluster their 2-D embedding)
    meta_path: Path | None = None
    tag: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_unencoded(self) -> bool:
        return self.fingerprint_path is None

    @property
    def is_pretrained(self) -> bool:
        """Encoded by the shipped encoder (``encode --pretrained``), not trained on these images."""
        return self.tag.split("_")[-1] == PRETRAINED_TAG

    @property
    def is_part(self) -> bool:
        """The map of one part of a two-part model's fingerprint (``part-maps``: ``..._shape-part``)."""
        return part_parent(self.model_id) is not None

    @property
    def image_size(self) -> int | None:
        """Training-image side in pixels: from the model's JSON, else the id's ``size64`` suffix,
        else the study's 224."""
        if self.arch not in ("resnet18", "resnet50"):
            return None
        return self._recorded("image_size", "size", 224)

    @property
    def channels(self) -> int:
        """The trunk's base width: from the model's JSON, else the id's ``ch32`` suffix, else
        torchvision's 64 (the study's, and every model's before the width was a choice)."""
        return self._recorded("channels", "ch", FULL_WIDTH)

    def _recorded(self, key: str, prefix: str, default: int) -> int:
        """An integer setting from the model's JSON, else the id's ``{prefix}N`` suffix, else ``default``."""
        if isinstance(self.extra.get(key), int):
            return self.extra[key]
        for part in self.tag.split("_"):
            if part.startswith(prefix) and part[len(prefix):].isdigit():
                return int(part[len(prefix):])
        return default

    @property
    def parts(self) -> int:
        """How many encoders the fingerprint joins (2 for the two-part ``physical`` views): from the
        model's JSON, else the id's ``contrastive_{views}`` suffix."""
        views, objective = self.extra.get("views"), self.extra.get("objective")
        if objective is None:
            tags = self.tag.split("_")
            if "contrastive" not in tags:
                return 1
            objective, after = "contrastive", tags[tags.index("contrastive") + 1:]
            views = after[0] if after and after[0] in VIEW_RECIPES else "lattice"
        return len(view_parts(views, objective))

    def hyperparameters(self) -> dict:
        return {"arch": self.arch, "latent": self.latent, "window": self.window, "epochs": self.epochs,
                "split": self.split, "line_width": self.line_width, "tag": self.tag}


class Catalog:
    """The models under a data root. Rescans when a scanned folder changes (models appear and
    disappear while the app runs)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise DataError(f"data root {self.root} does not exist or is not a folder")
        self._scan_key = None
        self._models: dict[str, ModelInfo] = {}

    @classmethod
    def at(cls, root: str | os.PathLike) -> "Catalog":
        """The process's shared catalog of ``root``: memoised computations that receive a root
        (not a catalog) use it instead of scanning the folders again for each call."""
        return _shared_catalog(str(root))

    # ---- scanning -------------------------------------------------------------------------
    def _dir_key(self):
        key = []
        for rel in EMBEDDING_DIRS + ("models",):
            d = self.root / rel
            try:
                st = d.stat()
                key.append((rel, st.st_mtime_ns, st.st_ino))
            except FileNotFoundError:
                key.append((rel, None, None))
        return tuple(key)

    @property
    def models(self) -> dict[str, ModelInfo]:
        """All models, by id, sorted by id."""
        key = self._dir_key()
        if key != self._scan_key:
            self._models = self._scan()
            self._scan_key = key
        return self._models

    def _scan(self) -> dict[str, ModelInfo]:
        found: dict[str, ModelInfo] = {}
        for rel in EMBEDDING_DIRS:
            d = self.root / rel
            if not d.is_dir():
                continue
            for entry in os.scandir(d):
                name = entry.name
                if not name.endswith("_embedding.csv") or name.startswith("."):
                    continue
                stem = name[: -len("_embedding.csv")]
                model_id = stem.rstrip("_")
                if model_id in found:
                    continue
                fp = None
                for cand in (d / f"{stem}_.csv", d / f"{stem}.csv"):
                    if cand.is_file():
                        fp = cand
                        break
                meta = self.root / "models" / f"{model_id}.json"
                found[model_id] = _model_info(model_id, Path(entry.path), fp,
                                              meta if meta.is_file() else None)
        return dict(sorted(found.items()))

    def get(self, model_id: str) -> ModelInfo:
        try:
            return self.models[model_id]
        except KeyError:
            raise UnknownModelError(
                f"unknown model id {model_id!r} under {self.root} "
                f"({len(self.models)} models; list them with `python -m backend models --data {self.root}`)"
            ) from None

    def __contains__(self, model_id: str) -> bool:
        return model_id in self.models

    def __len__(self) -> int:
        return len(self.models)

    # ---- data -----------------------------------------------------------------------------
    def load(self, model_id: str) -> ModelData:
        """Fingerprints and embedding of a model, validated and aligned by material name."""
        info = self.get(model_id)
        try:
            emb_sig = file_signature(info.embedding_path)
            fp_sig = file_signature(info.fingerprint_path) if info.fingerprint_path else None
        except FileNotFoundError as exc:
            raise DataError(f"model {model_id!r}: file {exc.filename} has disappeared") from None
        return load_model_data(model_id, emb_sig, fp_sig)

    # ---- images and band data ---------------------------------------------------------------
    def display_image_dir(self, window: float | None) -> Path | None:
        return _first_dir(self.root, DISPLAY_IMAGE_DIRS, window)

    def display_image(self, material: str, window: float, wait: bool = True) -> Path | bytes | None:
        """The display plot of a material for a window: its PNG file under the root, else a PNG
        rendered from its band data (bytes, cached; :mod:`backend.data.image_cache`), else None.
        ``wait=False`` (a prefetch): :data:`PENDING` while the drawing is queued. ``material``
        cannot name a file outside the root."""
        if not material or "/" in material or "\\" in material or material.startswith("."):
            return None
        d = self.display_image_dir(window)
        if d is not None:
            path = self.resolve_file(str((d / f"{material}.png").relative_to(self.root)))
            if path is not None:
                return path
        band_dir = self.band_data_dir()
        if band_dir is not None:
            band_file = self.resolve_file(str((band_dir / f"{material}.npz").relative_to(self.root)))
            if band_file is not None:
                png = display_png(file_signature(band_file), float(window), wait=wait)
                return PENDING if png is None and not wait else png
        extra = self.root / ADDITIONS_DIR
        if self.root.name != ADDITIONS_DIR and extra.is_dir():  # a material placed on a map
            return Catalog.at(extra).display_image(material, window, wait)
        return None

    def train_image_dir(self, window: float | None) -> Path | None:
        return _first_dir(self.root, TRAIN_IMAGE_DIRS, window)

    def train_image_dirs(self) -> dict[float, Path]:
        """The training-image folder of every window that has one (window in eV -> folder)."""
        found: dict[float, Path] = {}
        for pat in TRAIN_IMAGE_DIRS:
            head, tail = pat.split("{w}")
            for d in sorted((self.root / head).parent.glob(Path(head).name + "*" + tail)):
                w = d.name[len(Path(head).name):-len(tail)] if tail else d.name[len(Path(head).name):]
                try:
                    window = plain_number(w)
                except ValueError:
                    continue
                if d.is_dir() and window > 0:
                    found.setdefault(window, d)
        return dict(sorted(found.items()))

    def band_data_dir(self) -> Path | None:
        for rel in BAND_DATA_DIRS:
            if (self.root / rel).is_dir():
                return self.root / rel
        return None

    def labels_path(self) -> Path | None:
        p = self.root / LABELS_FILE
        return p if p.is_file() else None

    def resolve_file(self, rel: str) -> Path | None:
        """``root / rel`` if that names an existing file inside the root, else None. ``..`` cannot
        walk out; links the owner of the root put inside it (e.g. to a shared read-only dataset)
        are followed. The app's file routes serve only what this returns."""
        if not rel or "\x00" in rel:
            return None
        path = Path(os.path.normpath(self.root / rel))
        if not path.is_relative_to(self.root):
            return None
        return path if path.is_file() else None

    def windows(self) -> list[float]:
        return sorted({m.window for m in self.models.values() if m.window is not None})

    def summary(self) -> pd.DataFrame:
        """One row per model: id, hyperparameters, file names (for ``models --json`` and tables)."""
        rows = []
        for m in self.models.values():
            row = {"model_id": m.model_id, **m.hyperparameters(),
                   "fingerprints": str(m.fingerprint_path.relative_to(self.root)) if m.fingerprint_path else None,
                   "embedding": str(m.embedding_path.relative_to(self.root)),
                   "metadata": str(m.meta_path.relative_to(self.root)) if m.meta_path else None}
            rows.append(row)
        return pd.DataFrame(rows, columns=["model_id", "arch", "latent", "window", "epochs", "split",
                                           "line_width", "tag", "fingerprints", "embedding", "metadata"])


def _first_dir(root: Path, patterns, window) -> Path | None:
    if window is None:
        return None
    for pat in patterns:
        d = root / pat.format(w=plain_number(str(window)))
        if d.is_dir():
            return d
    return None


def _model_info(model_id: str, emb: Path, fp: Path | None, meta: Path | None) -> ModelInfo:
    hp = parse_model_id(model_id)
    extra = {}
    if meta is not None:
        try:
            doc = json.loads(meta.read_text())
            config = doc.get("config", {}) if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            config = {}  # a broken metadata file must not hide the model; the id still tells
        for key in ("arch", "latent", "window", "epochs", "split", "line_width", "tag"):
            if config.get(key) not in (None, ""):
                value = config[key]
                # a whole number written as 3.0 is the 3 of an id: one spelling per value in the pickers
                hp[key] = int(value) if isinstance(value, float) and value.is_integer() else value
        extra = {k: v for k, v in config.items() if k not in hp}
    if not hp:
        hp = {"arch": "unencoded" if fp is None else "other"}
    if fp is None:
        hp["arch"] = "unencoded"
    return ModelInfo(
        model_id=model_id, arch=hp.get("arch", "other"), latent=hp.get("latent"),
        window=hp.get("window"), epochs=hp.get("epochs"), split=hp.get("split"),
        line_width=hp.get("line_width"), embedding_path=emb, fingerprint_path=fp,
        meta_path=meta, tag=hp.get("tag") or "", extra=extra,
    )


@functools.lru_cache(maxsize=16)
def _shared_catalog(root: str) -> Catalog:
    return Catalog(root)
