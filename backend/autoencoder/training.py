"""One readable training loop for the band-structure autoencoder, its config, and its outputs.

    cfg = TrainConfig(arch="resnet18", latent=3, window=1, epochs=30, split=0.1)
    result = train_model(cfg, "images/train_1eV", "my_root")

Everything a run needs is in its config, and the config is recorded next to the outputs
(``models/{id}.json``). Outputs are written only after training succeeded, each atomically, the
embedding CSV (which makes the model visible to the catalog) last; a failure while writing
removes what this run wrote. A progress callback raising :class:`backend.progress.Cancelled`
stops training with nothing written.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

# the config lives in a torch-free module (the web app validates jobs without importing torch)
from backend.autoencoder.config import DEVICES, PAPER_GRID, TrainConfig, paper_grid  # noqa: F401
from backend.autoencoder.images import folder_fingerprint, load_image_folder
from backend.autoencoder.model import Autoencoder
from backend.autoencoder.noise import localized_noise
from backend.catalog import path_in_root
from backend.errors import BandscapeError, ParameterError
from backend.progress import ProgressFn, null_progress

@dataclass
class TrainResult:
    model_id: str
    paths: dict
    history: list = field(default_factory=list)
    wall_time_s: float = 0.0
    device: str = ""


# ---- devices ------------------------------------------------------------------------------------

def pick_device(preference: str = "auto") -> torch.device:
    if preference == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device 'cuda' was asked for but no CUDA GPU is available")
    if preference == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ParameterError("device 'mps' was asked for but Apple MPS is not available")
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_has_bf16() -> bool:
    """True on CPUs with native bf16 matrix instructions (AVX512-BF16, AMX), where bf16 autocast pays."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return None


def keep_freed_memory() -> None:
    """Stop glibc from returning the large activation buffers to the OS after every step (and
    page-faulting them back in on the next): measured here, it cut the kernel time of a CPU
    training step from ~20 % to ~1 %. A no-op where glibc's mallopt is not available."""
    if platform.system() != "Linux":
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: serve big blocks from the heap
        libc.mallopt(-1, 1 << 31)  # M_TRIM_THRESHOLD: keep freed heap memory
    except (OSError, AttributeError):
        pass


def set_seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def split_indices(n: int, split: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation) indices: a fixed-seed permutation, the first ``round(split*n)`` validate."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(split * n))
    if split > 0 and n - n_val < 2:
        raise ParameterError(f"split={split} leaves fewer than 2 of the {n} images for training")
    return perm[n_val:], perm[:n_val]


# ---- the loop -----------------------------------------------------------------------------------

def build_model(cfg: TrainConfig, device: torch.device) -> nn.Module:
    model = Autoencoder(cfg.arch, cfg.latent, cfg.image_size).to(device)
    if device.type in ("cuda", "cpu"):
        model = model.to(memory_format=torch.channels_last)
    return model


def compiled_for_training(model: nn.Module, device: torch.device, total_steps: int) -> nn.Module:
    """torch.compile on CUDA for runs long enough to repay the compile time (~1 min). On the CPU
    it was measured slower here (5.3 vs 5.8 img/s, ResNet-18 at 224 px), so it is not used."""
    if device.type != "cuda" or total_steps < 500:
        return model
    try:
        return torch.compile(model)
    except Exception:  # a missing compiler toolchain must not stop training
        return model


def _batches(idx: torch.Tensor, batch_size: int, generator: torch.Generator | None):
    order = idx[torch.randperm(len(idx), generator=generator)] if generator is not None else idx
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        if generator is not None and len(chunk) < 2:
            continue  # BatchNorm needs two samples in training mode
        yield chunk


def _to_input(ink: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = ink.to(device, non_blocking=True).float()
    return x.contiguous(memory_format=torch.channels_last) if device.type != "mps" else x


def fit(model: nn.Module, ink: torch.Tensor, cfg: TrainConfig, device: torch.device,
        progress: ProgressFn = null_progress) -> list[dict]:
    """Train ``model`` on ink masks (n, 1, S, S) uint8; returns the per-epoch history.

    Reports ``progress(epochs_done, epochs, stage="batch", batch=, batches=, batch_loss=,
    images_per_s=)`` after every batch and ``stage="train"`` with the epoch's train/val loss,
    images/s and ETA after every epoch.
    """
    train_idx, val_idx = split_indices(len(ink), cfg.split, cfg.seed)
    steps = max(1, sum(1 for c in range(0, len(train_idx), cfg.batch_size) if len(train_idx[c:c + cfg.batch_size]) >= 2))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.max_lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.max_lr, total_steps=cfg.epochs * steps)
    loss_fn = nn.BCEWithLogitsLoss()
    amp = autocast_dtype(device)
    train_step_model = compiled_for_training(model, device, cfg.epochs * steps)
    g_order = torch.Generator().manual_seed(cfg.seed + 1)
    g_noise = torch.Generator().manual_seed(cfg.seed + 2)
    history: list[dict] = []
    t_start = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        t0, seen, total = time.perf_counter(), 0, 0.0
        for batch, chunk in enumerate(_batches(train_idx, cfg.batch_size, g_order), 1):
            x = _to_input(ink[chunk], device)
            noisy, _ = localized_noise(x, g_noise, cfg.noise_prob)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                logits = train_step_model(noisy)
            loss = loss_fn(logits.float(), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched.last_epoch < sched.total_steps - 1:
                sched.step()
            seen += len(chunk)
            batch_loss = loss.item()
            total += batch_loss * len(chunk)
            # between epochs too: a CPU epoch can take minutes, and a job's cancel is checked here
            progress(epoch, cfg.epochs, stage="batch", batch=batch, batches=steps, batch_loss=batch_loss,
                     images_per_s=seen / max(time.perf_counter() - t0, 1e-9))
        elapsed = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "train_loss": total / max(seen, 1), "images_per_s": seen / max(elapsed, 1e-9),
               "val_loss": evaluate_loss(model, ink, val_idx, cfg.batch_size, device) if len(val_idx) else None}
        history.append(row)
        done_time = time.perf_counter() - t_start
        progress(epoch + 1, cfg.epochs, stage="train", train_loss=row["train_loss"],
                 val_loss=row["val_loss"] if row["val_loss"] is not None else float("nan"),
                 images_per_s=row["images_per_s"], eta_s=done_time / (epoch + 1) * (cfg.epochs - epoch - 1))
    return history


@torch.no_grad()
def evaluate_loss(model: nn.Module, ink: torch.Tensor, idx: torch.Tensor, batch_size: int,
                  device: torch.device) -> float:
    """Mean BCE of clean reconstructions of ``ink[idx]`` (model in eval mode)."""
    model.eval()
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    amp = autocast_dtype(device)
    total = 0.0
    for chunk in _batches(idx, batch_size, None):
        x = _to_input(ink[chunk], device)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            logits = model(x)
        total += loss_fn(logits.float(), x).item() / x[0].numel()
    return total / len(idx)


def _clear_cuda_oom(cfg: TrainConfig):
    return BandscapeError(f"out of GPU memory at batch size {cfg.batch_size}: try --batch-size "
                          f"{max(2, cfg.batch_size // 2)} (or a smaller --image-size)")


def train_model(cfg: TrainConfig, images_dir: str | os.PathLike, out_root: str | os.PathLike,
                progress: ProgressFn | None = None, overwrite: bool = False) -> TrainResult:
    """Train one autoencoder on a folder of training images and write the model, its metadata,
    fingerprints, UMAP embedding and reconstruction grid under ``out_root`` (see module doc)."""
    from backend.autoencoder.encoding import encode_images, model_paths, reconstruction_grid, umap_2d, write_model_outputs

    progress = progress or null_progress
    cfg = cfg.validate()
    out_root = Path(out_root)
    paths = model_paths(out_root, cfg.model_id)
    if not overwrite and (paths["embedding"].exists() or paths["weights"].exists()):
        raise ParameterError(f"model {cfg.model_id} already exists under {out_root} (pass --overwrite to replace it)")
    device = pick_device(cfg.device)
    names, ink = load_image_folder(images_dir, cfg.image_size)
    if len(names) < 3:
        raise ParameterError(f"image folder {images_dir} has {len(names)} images; training needs at least 3")
    if device.type == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        keep_freed_memory()
    set_seed(cfg.seed)
    t0 = time.perf_counter()
    model = build_model(cfg, device)
    try:
        history = fit(model, ink, cfg, device, progress)
        progress(cfg.epochs, cfg.epochs, stage="encode")
        X = encode_images(model, ink, device, cfg.batch_size)
        progress(cfg.epochs, cfg.epochs, stage="umap")
        xy = umap_2d(X)
        grid = reconstruction_grid(model, ink, device, cfg.noise_prob, cfg.seed)
    except torch.cuda.OutOfMemoryError:
        raise _clear_cuda_oom(cfg) from None
    wall = time.perf_counter() - t0
    meta = {
        "model_id": cfg.model_id,
        "config": cfg.as_dict(),
        # relative to the root when the images are inside it: no path of this machine in the file
        "dataset": {"images": path_in_root(out_root, images_dir), "n_images": len(names),
                    "image_folder_sha256": folder_fingerprint(images_dir),
                    "n_train": len(names) - int(round(cfg.split * len(names))),
                    "n_val": int(round(cfg.split * len(names)))},
        "history": history,
        "fingerprint_size": int(X.shape[1]),
        "wall_time_s": round(wall, 3),
        "device": str(device),
        "autocast": str(autocast_dtype(device)),
        "versions": {"torch": torch.__version__, "python": platform.python_version(),
                     "numpy": np.__version__},
        "input_encoding": "ink mask: 1 = band line (grey/255 < 0.8), 0 = background",
        "noise": "random erasing, one box per image, area 0.2-0.3, aspect 0.3-3.3, Gaussian fill, "
                 f"p={cfg.noise_prob}, inputs only, a fresh box per image",
    }
    write_model_outputs(out_root, cfg.model_id, model, meta, names, X, xy, grid)
    progress(cfg.epochs, cfg.epochs, stage="done")
    return TrainResult(cfg.model_id, {k: str(v) for k, v in paths.items()}, history, wall, str(device))
