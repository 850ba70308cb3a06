"""Fingerprints, UMAP embeddings, reconstruction grids and the unencoded baseline, written in the
catalog's layout (``embeddings/``, ``models/``)."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from backend.autoencoder.config import VIEW_RECIPES, view_parts
from backend.autoencoder.device import pick_device, to_input
from backend.autoencoder.images import load_image_folder
from backend.autoencoder.model import model_from_config
from backend.autoencoder.noise import localized_noise
from backend.autoencoder.objectives import VIEW_SETS, band_views
from backend.data.model_ids import (
    model_paths,
    part_model_id,
    path_in_root,
    resolve_in_root,
    unencoded_model_id,
)
from backend.errors import DataError
from backend.fileio import atomic_path, write_bytes_atomic, write_csv_atomic, write_json_atomic

#: the study's UMAP settings
UMAP_KWARGS = dict(n_neighbors=10, min_dist=0.1, metric="euclidean", random_state=42)


@torch.no_grad()
def encode_images(model, ink: torch.Tensor, device: torch.device, *, batch_size: int = 64) -> np.ndarray:
    """Fingerprints (n, latent * side^2) float32 of ink masks (n, 1, S, S), clean inputs, eval mode."""
    model.eval()
    out = []
    for start in range(0, len(ink), batch_size):
        z = model.encode(to_input(ink[start:start + batch_size], device))
        out.append(z.float().flatten(1).cpu())
    return torch.cat(out).numpy()


def fit_umap(X: np.ndarray):
    """The 2-D UMAP map (n, 2) float64 of the rows of X with the study's settings (n_neighbors
    capped for tiny sets), and the fitted reducer (its ``transform`` places new rows on it)."""
    import umap  # umap: ~3 s to import (numba); only where a map is made

    n = len(X)
    if n < 4:
        raise DataError(f"UMAP needs at least 4 materials, got {n}")
    kwargs = dict(UMAP_KWARGS, n_neighbors=min(UMAP_KWARGS["n_neighbors"], n - 1))
    if n <= kwargs["n_neighbors"] + 2:
        kwargs["init"] = "random"  # spectral init needs more points than neighbours
    reducer = umap.UMAP(n_components=2, **kwargs).fit(np.asarray(X, dtype=np.float32))
    return np.asarray(reducer.embedding_, dtype=np.float64), reducer


def umap_2d(X: np.ndarray) -> np.ndarray:
    """2-D UMAP of the rows of X with the study's settings (:func:`fit_umap`'s map)."""
    return fit_umap(X)[0]


@torch.no_grad()
def reconstruction_grid(model, ink: torch.Tensor, device: torch.device, *, cfg, n: int = 8) -> np.ndarray:
    """uint8 image of the first ``n`` images: rows input / noised input / reconstruction for a
    reconstruction model; input, then two views for each part of a contrastive one's
    fingerprint (the pairs the training learns to match)."""
    model.eval()
    x = to_input(ink[:n], device)
    g = torch.Generator().manual_seed(cfg.seed)
    if model.decoder is None:  # two rows of views for each part of the fingerprint
        rows = [x]
        for name in view_parts(cfg.views):
            views = dict(views=VIEW_SETS[name], window=cfg.window, noise=cfg.noise_prob)
            rows += [band_views(x, g, **views).clamp(0, 1), band_views(x, g, **views).clamp(0, 1)]
    else:
        noisy, _ = localized_noise(x, g, p=1.0 if cfg.noise_prob > 0 else 0.0)
        rows = [x, noisy.clamp(0, 1), torch.sigmoid(model(noisy).float())]
    tiles = [torch.cat([r[i, 0] for i in range(len(x))], dim=1) for r in rows]
    grid = torch.cat(tiles, dim=0).cpu().numpy()
    return (255 - 255 * grid).clip(0, 255).astype(np.uint8)  # lines black on white, as the inputs


def _png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def fingerprint_frame(names, X: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(np.asarray(X), columns=[f"z{i}" for i in range(np.asarray(X).shape[1])])
    frame.insert(0, "filename", [f"{n}.png" for n in names])
    return frame


def write_embeddings(root, model_id: str, names, *, X: np.ndarray | None, xy: np.ndarray, reducer=None) -> None:
    """Fingerprints (if any), the fitted UMAP reducer that made ``xy`` (if given: placing new
    materials transforms with it; a stale one goes), then the embedding, each atomically: the
    embedding file is what makes a model visible to the catalog, so it comes last."""
    paths = model_paths(root, model_id)
    if X is not None:
        write_csv_atomic(paths["fingerprints"], fingerprint_frame(names, X), float_format="%.7g")
    if reducer is not None:
        write_bytes_atomic(paths["reducer"], pickle.dumps(reducer))
    else:
        paths["reducer"].unlink(missing_ok=True)
    write_csv_atomic(paths["embedding"], fingerprint_frame(names, xy), float_format="%.7g")


def remove_part_maps(root, model_id: str) -> None:
    """Remove the part maps of ``model_id`` (backend.autoencoder.parts) before its fingerprint is
    rewritten, so none outlives the fingerprint it was cut from: each map's embedding first (it
    hides the map from the catalog), then its other files."""
    for part in {p for parts in VIEW_RECIPES.values() if len(parts) > 1 for p in parts}:
        paths = model_paths(root, part_model_id(model_id, part))
        for key in ("embedding", "fingerprints", "reducer", "metadata"):
            paths[key].unlink(missing_ok=True)


def write_model_outputs(root, model_id: str, model, *, meta: dict, names, X, xy, grid, reducer=None) -> None:
    """Weights, metadata, reconstruction grid, fingerprints, embedding; on failure remove what was
    written by this call, so no partial model stays behind."""
    paths = model_paths(root, model_id)
    remove_part_maps(root, model_id)
    written = []
    try:
        with atomic_path(paths["weights"]) as tmp:
            torch.save({"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                        "config": meta["config"]}, tmp)
        written.append(paths["weights"])
        write_json_atomic(paths["metadata"], meta)
        written.append(paths["metadata"])
        write_bytes_atomic(paths["recon"], _png_bytes(grid))
        written.append(paths["recon"])
        written += [paths["fingerprints"], paths["reducer"], paths["embedding"]]
        write_embeddings(root, model_id, names, X=X, xy=xy, reducer=reducer)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise


def load_model(root, model_id: str, device: torch.device | None = None):
    """The trained Autoencoder of ``model_id`` and its config dict."""
    path = model_paths(root, model_id)["weights"]
    if not path.is_file():
        raise DataError(f"no weights for model {model_id}: {path} is missing")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        cfg = state["config"]
    except Exception as exc:
        raise DataError(f"{path} is not a bandscape model file: {exc}") from None
    model = model_from_config(cfg)
    model.load_state_dict(state["state_dict"])
    return model.to(device or torch.device("cpu")), cfg


def training_images(root, model_id: str) -> Path:
    """The image folder a model was trained on, as its metadata records it (relative paths are
    under ``root``)."""
    meta_path = model_paths(root, model_id)["metadata"]
    try:
        recorded = json.loads(meta_path.read_text())["dataset"]["images"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{meta_path}: no training-image folder recorded ({type(exc).__name__}: {exc}); "
                        "pass --images") from None
    return resolve_in_root(root, recorded)


def encode_model(model_id: str, images_dir, out_root, *, progress=None, device: str = "auto") -> int:
    """Re-encode a folder of images (default: the one it was trained on) with a trained model and
    rewrite its fingerprints and UMAP embedding. Returns the number of materials."""
    dev = pick_device(device)
    model, cfg = load_model(out_root, model_id, dev)
    images_dir = images_dir or training_images(out_root, model_id)
    names, ink = load_image_folder(images_dir, cfg["image_size"])
    if progress:
        progress(0, 2, stage="encode")
    X = encode_images(model, ink, dev, batch_size=cfg.get("batch_size", 64))
    if progress:
        progress(1, 2, stage="umap")
    xy, reducer = fit_umap(X)
    remove_part_maps(out_root, model_id)
    write_embeddings(out_root, model_id, names, X=X, xy=xy, reducer=reducer)
    meta_path = model_paths(out_root, model_id)["metadata"]
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        meta["encoded_images"] = path_in_root(out_root, images_dir)
        write_json_atomic(meta_path, meta)
    if progress:
        progress(2, 2, stage="done")
    return len(names)


def write_unencoded_embedding(images_dir, out_root, window: float, *, line_width: float = 1, size: int = 224) -> str:
    """The baseline without autoencoder: UMAP of the flattened training images. Returns its id."""
    names, ink = load_image_folder(images_dir, size)
    model_id = unencoded_model_id(window, line_width)
    X = ink.reshape(len(ink), -1).numpy().astype(np.float32)
    write_embeddings(out_root, model_id, names, X=None, xy=umap_2d(X))
    return model_id
