"""The pretrained band encoder shipped with bandscape: fingerprints without training.

It is two ResNet-18 trunks of base width 16 (:data:`PRETRAIN_RECIPE`), trained once with the
contrastive objective and train's two-part default views (``physical``: a ``shape`` part and a
``fermi`` part) on a corpus of DFT-like band structures in
1, 2 and 3 eV windows (:mod:`backend.data.corpus`), and shipped in fp16 in
``backend/autoencoder/weights/`` (:mod:`backend.autoencoder.shipped`, which loads it):
``band_encoder.pt`` and ``band_encoder.json`` (the corpus, the full recipe, the training time and
machine, the git commit and the command that rebuilt it).

- :func:`pretrain_encoder`: build the corpus and train (``python -m backend pretrain``);
- :func:`~backend.autoencoder.shipped.load_pretrained_encoder`: the shipped model, checked
  against its record;
- :func:`encode_pretrained`: fingerprints and UMAP of a user's images as a model of their data
  root (``python -m backend encode --pretrained``);
- ``train --init-from pretrained`` pre-trains further from these weights
  (:func:`backend.autoencoder.training.resolve_init`).
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from backend.autoencoder.config import PRETRAINED_TAG, TrainConfig
from backend.autoencoder.device import autocast_dtype, cpu_has_bf16, keep_freed_memory, pick_device, set_seed
from backend.autoencoder.encoding import encode_images, fit_umap, reconstruction_grid, write_model_outputs
from backend.autoencoder.images import folder_fingerprint, load_image_folder
from backend.autoencoder.shipped import (
    REBUILD_COMMAND,
    WEIGHTS_NAME,
    load_pretrained_encoder,
    pretrained_config,
    sha256_of,
    shipped_paths,
    shipped_summary,
)
from backend.autoencoder.training import build_model, fit
from backend.data.corpus import CORPUS_SEED, CORPUS_WINDOWS, build_corpus
from backend.data.image_window import check_window, images_window
from backend.data.model_ids import model_paths, path_in_root
from backend.errors import ParameterError
from backend.fileio import atomic_path, write_json_atomic
from backend.progress import ProgressFn, null_progress

#: the recipe of the shipped encoder (the rest is TrainConfig's defaults): train's 128 px input at a
#: quarter of torchvision's width (3.3 MB in fp16; 32 would be 11 MB); ``window`` only sets the
#: views' E_F shift (0.03 eV = 0.0075 of a 2 eV plot's height, under a pixel at 128 px for every
#: window), the corpus mixes 1, 2 and 3 eV
PRETRAIN_RECIPE = dict(arch="resnet18", latent=3, image_size=128, channels=16, objective="contrastive",
                       views="physical", window=2, epochs=10, split=0.02, batch_size=128, max_lr=2e-3, seed=0,
                       init_from="")
PRETRAIN_N = 20000


def _fp16_state(model: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()
            for k, v in model.state_dict().items()}


def git_commit() -> str:
    """The project's commit (with ``+dirty`` when tracked files differ from it), or 'unknown'."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=Path(__file__).parent,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict:
    """Where a run happens: cores, CPU model, bf16, torch threads and the load when it started."""
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": model or platform.processor(), "machine": platform.machine(),
            "cpu_bf16": cpu_has_bf16(), "torch_threads": torch.get_num_threads(),
            "load_avg_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "torch": torch.__version__, "python": platform.python_version()}


def pretrain_encoder(out: str | os.PathLike, *, n: int = PRETRAIN_N, epochs: int | None = None,
                     seed: int = CORPUS_SEED, jobs: int | None = None, progress: ProgressFn | None = None,
                     **recipe) -> dict:
    """Build a corpus of ``n`` DFT-like band structures and train the encoder on it; write
    ``band_encoder.pt`` (fp16) and ``band_encoder.json`` into ``out`` (nothing when it fails).
    ``recipe`` overrides :data:`PRETRAIN_RECIPE`. Returns the record."""
    progress = progress or null_progress
    fields = dict(PRETRAIN_RECIPE, **recipe)
    if epochs is not None:
        fields["epochs"] = epochs
    cfg = TrainConfig(**fields).validate()
    out = Path(out)
    commit = git_commit()  # the code the run starts from (the tree may change while it runs)
    t0 = time.perf_counter()
    corpus = build_corpus(n, seed=seed, jobs=jobs, size=cfg.image_size,
                          progress=lambda i, total: progress(i, total, stage="corpus"))
    corpus_s = time.perf_counter() - t0
    device = pick_device(cfg.device)
    if device.type == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        keep_freed_memory()
    host = machine()
    set_seed(cfg.seed)
    t1 = time.perf_counter()
    model = build_model(cfg, device)
    history = fit(model, torch.from_numpy(corpus.ink), cfg, device=device, progress=progress)
    train_s = time.perf_counter() - t1
    meta = _record(cfg, corpus, history=history, corpus_s=corpus_s, train_s=train_s, device=device,
                   host=host, seed=seed, commit=commit)
    _write_shipped(out, model, meta)
    return meta


def _record(cfg: TrainConfig, corpus, *, history, corpus_s, train_s, device, host, seed, commit) -> dict:
    n = len(corpus.names)
    n_train = n - int(round(cfg.split * n))
    seen = n_train * cfg.epochs
    windows = {f"{w:g}": int(c) for w, c in zip(*np.unique(corpus.windows, return_counts=True))}
    return {
        "name": "bandscape pretrained band encoder",
        "config": cfg.as_dict(),
        "corpus": {"generator": "backend.data.dftlike", "family_set": "demo",
                   "families": sorted(set(corpus.labels["family"])), "seed": seed,
                   "materials": f"index 0..{n - 1} of seed {seed}", "n": n,
                   "windows_eV": list(CORPUS_WINDOWS), "window_per_material": "one at random (seed, index)",
                   "window_counts": windows, "image_size": cfg.image_size,
                   "label_rates": {k: round(float(corpus.labels[k].mean()), 3)
                                   for k in ("metal", "flat_band_at_ef", "dirac_at_ef")}},
        "objective": cfg.recipe,
        "history": history,
        "timing": {"corpus_build_s": round(corpus_s, 1), "train_s": round(train_s, 1),
                   "images_per_s": round(seen / train_s, 1) if train_s else None,
                   "images_per_s_note": "training images (each two views) per second, validation included"},
        "device": str(device), "autocast": str(autocast_dtype(device)), "machine": host,
        "git_commit": commit,
        "rebuild": f"{REBUILD_COMMAND} --n {n} --epochs {cfg.epochs} --channels {cfg.channels} "
                   f"--image-size {cfg.image_size} --views {cfg.views} --seed {seed}",
        "weights": WEIGHTS_NAME, "weights_dtype": "float16",
    }


def _write_shipped(out: Path, model: torch.nn.Module, meta: dict) -> None:
    """Weights then record, each atomically; on failure neither stays."""
    weights, record = shipped_paths(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(weights) as tmp:
            torch.save({"state_dict": _fp16_state(model), "config": meta["config"]}, tmp)
        meta["weights_bytes"] = weights.stat().st_size
        meta["weights_sha256"] = sha256_of(weights)
        write_json_atomic(record, meta)
    except BaseException:
        weights.unlink(missing_ok=True)
        raise


def encode_pretrained(images_dir: str | os.PathLike, out_root: str | os.PathLike, *, window: float | None = None,
                      device: str = "auto", progress: ProgressFn | None = None, overwrite: bool = True) -> str:
    """Fingerprints and UMAP of a folder of training images with the shipped encoder, written
    under ``out_root`` as a model of its own (id tagged ``pretrained``; its metadata says what
    it is). ``window``: the images' (default: their folder's). Returns the model id."""
    progress = progress or null_progress
    found = images_window(images_dir)
    if window is None:
        if not found.known:
            raise ParameterError(f"window: the window of the images in {images_dir} is not known ({found.source}): "
                                 "pass --window W (the ±W eV the images were drawn for)")
        window = found.window
    check_window(images_dir, window)
    dev = pick_device(device)
    model, meta = load_pretrained_encoder(device=dev)
    cfg = pretrained_config(meta, window=window, tag=PRETRAINED_TAG, device=device)
    paths = model_paths(out_root, cfg.model_id)
    if not overwrite and paths["embedding"].exists():
        raise ParameterError(f"model {cfg.model_id} already exists under {out_root}")
    t0 = time.perf_counter()
    names, ink = load_image_folder(images_dir, cfg.image_size)
    progress(0, 2, stage="encode")
    X = encode_images(model, ink, dev, batch_size=cfg.batch_size)
    progress(1, 2, stage="umap")
    xy, reducer = fit_umap(X)
    grid = reconstruction_grid(model, ink, dev, cfg=cfg)
    out = {"model_id": cfg.model_id, "config": cfg.as_dict(), "pretrained": shipped_summary(),
           "description": "the pretrained band encoder shipped with bandscape, not trained on these images",
           "dataset": {"images": path_in_root(out_root, images_dir), "n_images": len(names),
                       "image_folder_sha256": folder_fingerprint(images_dir), "images_window": found.window},
           "history": meta.get("history", []), "fingerprint_size": int(X.shape[1]),
           "wall_time_s": round(time.perf_counter() - t0, 3), "device": str(dev), "objective": cfg.recipe}
    write_model_outputs(out_root, cfg.model_id, model, meta=out, names=names, X=X, xy=xy, grid=grid,
                        reducer=reducer)
    progress(2, 2, stage="done")
    return cfg.model_id
