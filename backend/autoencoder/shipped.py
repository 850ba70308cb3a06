"""Where the pretrained band encoder shipped with bandscape lives, and loading it checked.

``backend/autoencoder/weights/band_encoder.pt`` holds its weights in fp16,
``band_encoder.json`` its record (corpus, recipe, training time and machine, git commit, the
command that rebuilt it, the weights' sha256). Made by :mod:`backend.autoencoder.pretrained`;
read here, where training (``--init-from pretrained``) and encoding both find it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import torch

from backend.autoencoder.config import PRETRAINED_DIR, RECORD_NAME, WEIGHTS_NAME, TrainConfig
from backend.autoencoder.model import model_from_config
from backend.errors import DataError

SHIPPED_DIR = PRETRAINED_DIR
REBUILD_COMMAND = "python -m backend pretrain --out backend/autoencoder/weights"


def shipped_paths(folder: str | os.PathLike | None = None) -> tuple[Path, Path]:
    folder = Path(folder) if folder is not None else SHIPPED_DIR
    return folder / WEIGHTS_NAME, folder / RECORD_NAME


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _broken(path: Path, why: str) -> DataError:
    return DataError(f"pretrained encoder {path} {why}; rebuild it with `{REBUILD_COMMAND}` "
                     "(under an hour on 2 CPU cores) or restore it from git")


def load_pretrained_encoder(folder: str | os.PathLike | None = None, device: torch.device | None = None):
    """The shipped encoder (an :class:`Autoencoder` in fp32, eval mode) and its record (dict).
    Missing or corrupt files raise :class:`DataError` naming the file and the rebuild command."""
    weights, record = shipped_paths(folder)
    for path in (weights, record):
        if not path.is_file():
            raise _broken(path, "is missing")
    try:
        meta = json.loads(record.read_text())
        cfg = meta["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _broken(record, f"is not a pretrained-encoder record ({type(exc).__name__}: {exc})") from None
    if meta.get("weights_sha256") and meta["weights_sha256"] != sha256_of(weights):
        raise _broken(weights, f"does not match its record {record.name} (sha256 differs: corrupt or replaced)")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model = model_from_config(cfg)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state["state_dict"].items()})
    except Exception as exc:  # any unreadable or mismatched file: the same clear message
        raise _broken(weights, f"is not readable ({type(exc).__name__}: {exc})") from None
    return model.to(device or torch.device("cpu")).eval(), meta


def pretrained_config(meta: dict, **override) -> TrainConfig:
    """The shipped encoder's config (its fields a TrainConfig knows), with ``override``."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    fields = {k: v for k, v in meta["config"].items() if k in known}
    return TrainConfig(**dict(fields, **override)).validate()


def shipped_summary(folder: str | os.PathLike | None = None) -> dict:
    """What a model made from the shipped encoder records of it: the record's corpus, timing,
    machine, commit, rebuild command and weights' sha256 (``{}`` when the record is unreadable)."""
    _, record = shipped_paths(folder)
    try:
        meta = json.loads(record.read_text())
    except (OSError, ValueError):
        return {}
    keep = ("name", "corpus", "timing", "machine", "git_commit", "rebuild", "weights_sha256")
    return dict({k: meta.get(k) for k in keep}, record=f"backend/autoencoder/weights/{RECORD_NAME}")
