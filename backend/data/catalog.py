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

Model ids follow the study's naming: ``resnet50_latent3_window1eV_steps90_split1.0_width1``
(split written times ten) and ``unencoded_window1eV_width1``. Hyperparameters come from the
model's metadata when it has one, else from its id: one parse, here.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from backend.cache import default_cache_dir, file_signature, memoize_array
from backend.data.image_cache import display_png
from backend.errors import DataError, UnknownModelError
from backend.fileio import file_lock, write_npy_atomic

#: folders (relative to the root) scanned for ``*_embedding.csv`` files
EMBEDDING_DIRS = ("embeddings", "embeddings/unencoded", "fingerprints", "fingerprints/unencoded")
#: folders (relative to the root, ``{w}`` = window in eV) where display images are looked for
DISPLAY_IMAGE_DIRS = ("images/display_{w}eV", "assets/images/display_{w}eV", "images/bands_10width_{w}eV")
#: folders with the training images of a window
TRAIN_IMAGE_DIRS = ("images/train_{w}eV", "assets/images/train_{w}eV")
BAND_DATA_DIRS = ("bands", "assets/bands")
LABELS_FILE = "labels.csv"
#: :meth:`Catalog.display_image` for a prefetch whose image is still being drawn
PENDING = b""

ARCHS = ("resnet18", "resnet50", "unencoded")
_RESNET_ID = re.compile(
    r"^(?P<arch>resnet\d+)_latent(?P<latent>\d+)_window(?P<window>\d+(?:\.\d+)?)eV"
    r"_steps(?P<epochs>\d+)_split(?P<split>\d+(?:\.\d+)?)_width(?P<width>\d+(?:\.\d+)?)(?P<tag>_.*)?$"
)
_UNENCODED_ID = re.compile(r"^unencoded_window(?P<window>\d+(?:\.\d+)?)eV_width(?P<width>\d+(?:\.\d+)?)(?P<tag>_.*)?$")


def _num(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() else value


def format_split(split: float) -> str:
    """The study writes the validation fraction times ten: 0 -> '0', 0.1 -> '1.0', 0.5 -> '5.0'."""
    return "0" if split == 0 else f"{split * 10:.1f}"


def make_model_id(arch: str, latent: int, window: float, epochs: int, split: float,
                  line_width: float = 1, tag: str = "") -> str:
    """The id of a trained model, in the study's naming (``tag`` is appended for non-paper runs)."""
    w = _num(str(window))
    lw = _num(str(line_width))
    mid = f"{arch}_latent{latent}_window{w}eV_steps{epochs}_split{format_split(split)}_width{lw}"
    return f"{mid}_{tag}" if tag else mid


def unencoded_model_id(window: float, line_width: float = 1) -> str:
    return f"unencoded_window{_num(str(window))}eV_width{_num(str(line_width))}"


def parse_model_id(model_id: str) -> dict:
    """Hyperparameters encoded in a model id; ``{}`` when the id is not in the study's naming."""
    m = _RESNET_ID.match(model_id)
    if m:
        return {
            "arch": m["arch"], "latent": int(m["latent"]), "window": _num(m["window"]),
            "epochs": int(m["epochs"]), "split": _num(str(round(float(m["split"]) / 10, 4))),
            "line_width": _num(m["width"]), "tag": (m["tag"] or "").lstrip("_"),
        }
    m = _UNENCODED_ID.match(model_id)
    if m:
        return {"arch": "unencoded", "latent": None, "window": _num(m["window"]), "epochs": None,
                "split": None, "line_width": _num(m["width"]), "tag": (m["tag"] or "").lstrip("_")}
    return {}


def model_paths(root: str | os.PathLike, model_id: str) -> dict[str, Path]:
    """The files ``train`` writes for a model under a data root (ours layout); the embedding, written
    last, is what makes the model visible."""
    root = Path(root)
    return {
        "weights": root / "models" / f"{model_id}.pt",
        "metadata": root / "models" / f"{model_id}.json",
        "recon": root / "models" / f"{model_id}_recon.png",
        "fingerprints": root / "embeddings" / f"{model_id}.csv",
        "embedding": root / "embeddings" / f"{model_id}_embedding.csv",
    }


def path_in_root(root: str | os.PathLike, path: str | os.PathLike) -> str:
    """How a data root's own files (model metadata, job records) name ``path``: relative to the
    root (POSIX separators) when it lies inside it, so the root can be moved, cloned or mounted
    elsewhere; else absolute. A relative ``path`` is taken from the current directory."""
    root, path = Path(root).expanduser(), Path(path).expanduser()
    # first as written (a folder linked into the root stays inside it), then with links resolved
    for r, p in ((Path(os.path.abspath(root)), Path(os.path.abspath(path))), (root.resolve(), path.resolve())):
        if p.is_relative_to(r):
            return p.relative_to(r).as_posix()
    return str(path.resolve())


def resolve_in_root(root: str | os.PathLike, recorded: str | os.PathLike) -> Path:
    """The path that :func:`path_in_root` recorded: a relative one is under ``root``."""
    p = Path(recorded).expanduser()
    return p if p.is_absolute() else Path(root) / p


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
    def image_size(self) -> int | None:
        """Training-image side in pixels: from the model's JSON, else the id's ``size64`` suffix,
        else the study's 224."""
        if self.arch not in ("resnet18", "resnet50"):
            return None
        if isinstance(self.extra.get("image_size"), int):
            return self.extra["image_size"]
        for part in self.tag.split("_"):
            if part.startswith("size") and part[4:].isdigit():
                return int(part[4:])
        return 224

    def hyperparameters(self) -> dict:
        return {"arch": self.arch, "latent": self.latent, "window": self.window, "epochs": self.epochs,
                "split": self.split, "line_width": self.line_width, "tag": self.tag}


@dataclass(frozen=True)
class ModelData:
    """The arrays of one model, rows aligned by material.

    ``names``: (n,) material names (file name without extension); ``images``: (n,) image file
    names as in the CSV; ``X``: (n, d) float64 fingerprints (the 2-D embedding for unencoded
    models); ``xy``: (n, 2) float64 UMAP coordinates.
    """

    model_id: str
    names: np.ndarray
    images: np.ndarray
    X: np.ndarray
    xy: np.ndarray


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
        return _load_model_data(model_id, emb_sig, fp_sig)

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
                    window = _num(w)
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
        d = root / pat.format(w=_num(str(window)))
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
                hp[key] = config[key]
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


#: parsing a CSV table takes about this many times its float64 size at its peak (pandas'
#: tokens and columns, then the array)
PARSE_MEMORY_FACTOR = 3


def _memory_available() -> int | None:
    """Bytes of memory available to a new allocation (Linux: MemAvailable), None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_memory(path: Path, kind: str) -> None:
    """A table too large for this machine's memory is refused before parsing, saying what it
    needs (its cells estimated from the file's first lines)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(1 << 16).splitlines()[:50]
    except OSError:
        return  # (a missing file is reported by the parser)
    if len(head) < 2:
        return
    cells = size / (sum(len(line) + 1 for line in head) / len(head)) * (head[0].count(b",") + 1)
    need, available = PARSE_MEMORY_FACTOR * 8 * cells, _memory_available()
    if available is not None and need > available:
        gb = 1024 ** 3
        raise DataError(f"{kind} file {path} is too large for this machine's memory: about {cells:,.0f} numbers, "
                        f"whose reading needs about {need / gb:.1f} GB, and {available / gb:.1f} GB are available; "
                        "free memory or use a machine with more (once read, the table is kept memory-mapped "
                        "in the cache folder and needs far less)")


def _read_table(path: Path, kind: str) -> pd.DataFrame:
    _check_memory(path, kind)
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{kind} file {path} is missing") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{kind} file {path} is not a readable CSV: {exc}") from None
    if "filename" not in df.columns:
        raise DataError(f"{kind} file {path} has no 'filename' column (columns: {list(df.columns)[:5]}...)")
    if len(df) == 0:
        raise DataError(f"{kind} file {path} has no rows")
    dup = df["filename"][df["filename"].duplicated()]
    if len(dup):
        raise DataError(f"{kind} file {path}: duplicate filename {dup.iloc[0]!r} ({len(dup)} duplicates)")
    values = df.drop(columns="filename")
    if values.shape[1] == 0:
        raise DataError(f"{kind} file {path} has no value columns")
    # columns the CSV reader already parsed as numbers are taken as they are (converting each of
    # 147 columns again was most of reading a fingerprint file); the others converted, text -> NaN
    parsed = all(pd.api.types.is_float_dtype(t) or pd.api.types.is_integer_dtype(t) for t in values.dtypes)
    numeric = values if parsed else values.apply(pd.to_numeric, errors="coerce")
    arr = numeric.to_numpy(dtype=float)
    bad = ~np.isfinite(arr)  # NaN (missing, or not a number) and infinities
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(
            f"{kind} file {path}: non-numeric or missing value {values.iat[r, c]!r} in column "
            f"{values.columns[c]!r} of row {r + 2} ({df['filename'].iat[r]}); {int(bad.sum())} bad cells"
        )
    return pd.DataFrame(arr, index=pd.Index(df["filename"].astype(str), name="filename"), columns=values.columns)


#: tables with more cells than this are kept parsed in the cache folder (.npy, memory-mapped):
#: parsing 10^5 x 147 numbers from CSV takes seconds, mapping the parsed array milliseconds
PARSED_CACHE_CELLS = 2_000_000


def _read_table_cached(sig: tuple, kind: str) -> pd.DataFrame:
    """:func:`_read_table` of the file ``sig`` names; a large one parsed once per file version
    and host (written atomically into the cache folder, memory-mapped from there)."""
    path = Path(sig[0])
    if sig[1] < 20 * PARSED_CACHE_CELLS // 2:  # bytes: a small file parses faster than any look-up
        return _read_table(path, kind)
    stem = default_cache_dir() / "tables" / hashlib.sha1(repr((sig, kind)).encode()).hexdigest()
    names_path, values_path = stem.with_suffix(".names.npy"), stem.with_suffix(".values.npy")

    def mapped():
        try:
            names = np.load(names_path, allow_pickle=False)
            values = np.load(values_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        return pd.DataFrame(values, index=pd.Index(names, name="filename"), copy=False)

    frame = mapped()
    if frame is None:
        with file_lock(stem.with_suffix(".lock")):
            frame = mapped()
            if frame is None:
                table = _read_table(path, kind)
                write_npy_atomic(names_path, table.index.to_numpy().astype(str))
                write_npy_atomic(values_path, table.to_numpy(dtype=np.float64))  # written last: complete
                frame = mapped()
    return frame


@memoize_array
def _load_model_data(model_id: str, emb_sig: tuple, fp_sig: tuple | None) -> ModelData:
    emb_path = Path(emb_sig[0])
    emb = _read_table_cached(emb_sig, "embedding")
    if emb.shape[1] < 2:
        raise DataError(f"embedding file {emb_path} needs two coordinate columns, found {emb.shape[1]}")
    if fp_sig is None:
        files = emb.index.to_numpy()
        X = emb.iloc[:, :2].to_numpy()
        xy = X
    else:
        fp_path = Path(fp_sig[0])
        fp = _read_table_cached(fp_sig, "fingerprint")
        files = fp.index.to_numpy()
        missing = fp.index.difference(emb.index)
        if len(missing) or len(fp) != len(emb):
            extra = emb.index.difference(fp.index)
            raise DataError(
                f"row counts differ: fingerprint file {fp_path} has {len(fp)} materials, embedding file "
                f"{emb_path} has {len(emb)}"
                + (f"; the embedding lacks {len(missing)} of the {len(fp)} materials of {fp_path.name}, e.g. "
                   f"{', '.join(map(str, missing[:3]))}" if len(missing) else "")
                + (f"; it has {len(extra)} the fingerprints lack, e.g. {', '.join(map(str, extra[:3]))}" if len(extra) else "")
            )
        X = fp.to_numpy()
        same_order = len(emb) == len(fp) and (emb.index == fp.index).all()
        xy = (emb if same_order else emb.loc[fp.index]).iloc[:, :2].to_numpy()
    files = np.asarray(files).astype(str)
    names = np.array([os.path.splitext(f)[0] for f in files])
    for arr in (X, xy):
        arr.setflags(write=False)
    return ModelData(model_id=model_id, names=names, images=np.asarray(files), X=X, xy=xy)


@functools.lru_cache(maxsize=16)
def _shared_catalog(root: str) -> Catalog:
    return Catalog(root)
