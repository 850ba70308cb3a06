"""Model ids and the files of a model under a data root.

Model ids follow the study's naming: ``resnet50_latent3_window1eV_steps90_split1.0_width1``
(split written times ten) and ``unencoded_window1eV_width1``. The catalog takes a model's
hyperparameters from its metadata when it has one, else from its id: :func:`parse_model_id`,
the one parse of an id.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ARCHS = ("resnet18", "resnet50", "unencoded")
_RESNET_ID = re.compile(
    r"^(?P<arch>resnet\d+)_latent(?P<latent>\d+)_window(?P<window>\d+(?:\.\d+)?)eV"
    r"_steps(?P<epochs>\d+)_split(?P<split>\d+(?:\.\d+)?)_width(?P<width>\d+(?:\.\d+)?)(?P<tag>_.*)?$"
)
_UNENCODED_ID = re.compile(r"^unencoded_window(?P<window>\d+(?:\.\d+)?)eV_width(?P<width>\d+(?:\.\d+)?)(?P<tag>_.*)?$")


def plain_number(text: str) -> float | int:
    """``text`` as a number, an int when it is whole (``"1.0"`` -> 1): how ids and folder names
    write windows and line widths."""
    value = float(text)
    return int(value) if value.is_integer() else value


def format_split(split: float) -> str:
    """The study writes the validation fraction times ten: 0 -> '0', 0.1 -> '1.0', 0.5 -> '5.0'."""
    return "0" if split == 0 else f"{split * 10:.1f}"


def make_model_id(arch: str, latent: int, window: float, *, epochs: int, split: float,
                  line_width: float = 1, tag: str = "") -> str:
    """The id of a trained model, in the study's naming (``tag`` is appended for non-paper runs)."""
    w = plain_number(str(window))
    lw = plain_number(str(line_width))
    mid = f"{arch}_latent{latent}_window{w}eV_steps{epochs}_split{format_split(split)}_width{lw}"
    return f"{mid}_{tag}" if tag else mid


def unencoded_model_id(window: float, line_width: float = 1) -> str:
    return f"unencoded_window{plain_number(str(window))}eV_width{plain_number(str(line_width))}"


def parse_model_id(model_id: str) -> dict:
    """Hyperparameters encoded in a model id; ``{}`` when the id is not in the study's naming."""
    m = _RESNET_ID.match(model_id)
    if m:
        return {
            "arch": m["arch"], "latent": int(m["latent"]), "window": plain_number(m["window"]),
            "epochs": int(m["epochs"]), "split": plain_number(str(round(float(m["split"]) / 10, 4))),
            "line_width": plain_number(m["width"]), "tag": (m["tag"] or "").lstrip("_"),
        }
    m = _UNENCODED_ID.match(model_id)
    if m:
        return {"arch": "unencoded", "latent": None, "window": plain_number(m["window"]), "epochs": None,
                "split": None, "line_width": plain_number(m["width"]), "tag": (m["tag"] or "").lstrip("_")}
    return {}


#: the end of the id of a map of one part of a two-part fingerprint (backend.autoencoder.parts)
PART_SUFFIX = "-part"


def part_model_id(model_id: str, part: str) -> str:
    """The id of the map of one part (a view set, e.g. ``shape``) of a two-part model's
    fingerprint: ``{model_id}_{part}-part``."""
    return f"{model_id}_{part}{PART_SUFFIX}"


def part_parent(model_id: str) -> str | None:
    """The model whose fingerprint a part map (``{model_id}_{part}-part``) was cut from, else None."""
    parent, _, last = model_id.rpartition("_")
    return parent if parent and last.endswith(PART_SUFFIX) else None


def part_name(model_id: str) -> str | None:
    """The part (view set, e.g. ``shape``) a part map's id names, else None."""
    return model_id.rpartition("_")[2].removesuffix(PART_SUFFIX) if part_parent(model_id) else None


def model_paths(root: str | os.PathLike, model_id: str) -> dict[str, Path]:
    """The files ``train`` writes for a model under a data root (ours layout); the embedding, written
    last, is what makes the model visible."""
    root = Path(root)
    return {
        "weights": root / "models" / f"{model_id}.pt",
        "metadata": root / "models" / f"{model_id}.json",
        "recon": root / "models" / f"{model_id}_recon.png",
        # the fitted UMAP reducer (a pickle: a data root's own files are trusted as its code is)
        "reducer": root / "models" / f"{model_id}_umap.pkl",
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
