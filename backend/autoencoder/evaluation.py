"""What a trained model's weights say about its fingerprints: the held-out reconstruction loss."""

from __future__ import annotations

from pathlib import Path

import torch

from backend.autoencoder.config import TrainConfig
from backend.autoencoder.encoding import load_model, model_paths, training_images
from backend.autoencoder.images import load_image_folder
from backend.autoencoder.training import evaluate_loss, split_indices
from backend.errors import BandscapeError, DataError


def model_images_dir(catalog, info) -> Path | None:
    """The folder a model was trained on when it is still there, else the root's training images
    of the model's window (None when neither exists)."""
    try:
        path = training_images(catalog.root, info.model_id)
        if path.is_dir():
            return path
    except DataError:
        pass
    return catalog.train_image_dir(info.window)


def heldout_reconstruction_loss(catalog, model_id: str) -> float | None:
    """Mean BCE of the clean reconstructions of the model's validation images (its own split and
    seed), or None when it cannot be measured: no weights, no decoder (contrastive models), no
    validation split, or no images."""
    info = catalog.get(model_id)
    if not model_paths(catalog.root, model_id)["weights"].is_file():
        return None
    images = model_images_dir(catalog, info)
    if images is None:
        return None
    try:
        model, cfg_dict = load_model(catalog.root, model_id)
    except BandscapeError:
        return None
    if model.decoder is None or not cfg_dict.get("split"):
        return None
    cfg = TrainConfig.from_record(cfg_dict)
    names, ink = load_image_folder(images, cfg.image_size)
    _, val_idx = split_indices(len(names), cfg.split, cfg.seed)
    if len(val_idx) == 0:
        return None
    cfg = TrainConfig(**{**cfg.as_dict(), "objective": "reconstruction"})
    with torch.inference_mode():
        return float(evaluate_loss(model, ink, val_idx, cfg=cfg, device=torch.device("cpu")))
