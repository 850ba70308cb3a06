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

import dataclasses
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

# the config lives in a torch-free module (the web app validates jobs without importing torch)
from backend.autoencoder.config import PRETRAINED, TRUNK_FIELDS, VIEW_RECIPES, TrainConfig
from backend.autoencoder.device import autocast_dtype, keep_freed_memory, pick_device, set_seed, to_input
from backend.autoencoder.encoding import (
    encode_images,
    load_model,
    model_paths,
    reconstruction_grid,
    fit_umap,
    write_model_outputs,
)
from backend.autoencoder.images import folder_fingerprint, load_image_folder
from backend.autoencoder.model import Autoencoder
from backend.autoencoder.noise import localized_noise
from backend.autoencoder.objectives import (
    VIEW_SETS,
    band_views,
    dec_loss,
    describe_views,
    kmeans_centroids,
    nt_xent,
    student_t_assignments,
    target_distribution,
    wcss_loss,
)
from backend.autoencoder.shipped import load_pretrained_encoder, pretrained_config, shipped_summary
from backend.data.image_window import check_window, images_window
from backend.data.model_ids import path_in_root
from backend.errors import BandscapeError, ParameterError
from backend.progress import ProgressFn, null_progress


@dataclass
class TrainResult:
    model_id: str
    paths: dict
    history: list = field(default_factory=list)
    wall_time_s: float = 0.0
    device: str = ""


# ---- the split ----------------------------------------------------------------------------------


def split_indices(n: int, split: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation) indices: a fixed-seed permutation, the first ``round(split*n)`` validate."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(split * n))
    if split > 0 and n - n_val < 2:
        raise ParameterError(f"split={split} leaves fewer than 2 of the {n} images for training")
    return perm[n_val:], perm[:n_val]


# ---- the loop -----------------------------------------------------------------------------------

def build_model(cfg: TrainConfig, device: torch.device) -> nn.Module:
    model = Autoencoder(cfg.arch, cfg.latent, cfg.image_size, cfg.objective, parts=cfg.parts,
                        channels=cfg.channels).to(device)
    if device.type in ("cuda", "cpu"):
        model = model.to(memory_format=torch.channels_last)
    return model


def compiled_for_training(fn, device: torch.device, total_steps: int):
    """torch.compile on CUDA for runs long enough to repay the compile time (~1 min). On the CPU
    it was measured slower here (5.3 vs 5.8 img/s, ResNet-18 at 224 px), so it is not used."""
    if device.type != "cuda" or total_steps < 500:
        return fn
    try:
        return torch.compile(fn)
    except Exception:  # a missing compiler toolchain must not stop training
        return fn


def _batches(idx: torch.Tensor, batch_size: int, generator: torch.Generator | None):
    order = idx[torch.randperm(len(idx), generator=generator)] if generator is not None else idx
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        if generator is not None and len(chunk) < 2:
            continue  # BatchNorm needs two samples in training mode
        yield chunk


def _n_batches(n: int, batch_size: int) -> int:
    return max(1, sum(1 for c in range(0, n, batch_size) if min(batch_size, n - c) >= 2))


class Objective:
    """The pre-training loss of a config on a clean batch ``x`` (B, 1, S, S): the study's
    denoising reconstruction, or NT-Xent between two band-structure views (see
    :mod:`backend.autoencoder.objectives`). ``generator`` draws the noise and the views."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, device: torch.device):
        self.model, self.cfg, self.amp = model, cfg, autocast_dtype(device)
        self.device = device
        self.bce = nn.BCEWithLogitsLoss()

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.cfg.objective == "reconstruction":
            noisy, _ = localized_noise(x, generator, self.cfg.noise_prob)
            with self._autocast():
                logits = self.model(noisy)
            return self.bce(logits.float(), x)
        parts = VIEW_RECIPES[self.cfg.views]
        loss = 0.0
        for part, name in enumerate(parts):  # each part of the fingerprint learns from its own views
            views = VIEW_SETS[name]
            v1 = band_views(x, generator, views=views, window=self.cfg.window, noise=self.cfg.noise_prob)
            v2 = band_views(x, generator, views=views, window=self.cfg.window, noise=self.cfg.noise_prob)
            both = torch.cat([v1, v2])
            with self._autocast():
                z = self.model.project(both.contiguous(memory_format=torch.channels_last)
                                       if self.device.type != "mps" else both, part=part)
            loss = loss + nt_xent(z[:len(x)], z[len(x):], self.cfg.temperature)
        return loss / len(parts)


def fit(model: nn.Module, ink: torch.Tensor, cfg: TrainConfig, *, device: torch.device,
        progress: ProgressFn = null_progress, pretrain: bool = True) -> list[dict]:
    """Train ``model`` on ink masks (n, 1, S, S) uint8: ``cfg.epochs`` of its objective (unless
    ``pretrain`` is False: a model that was pre-trained already), then ``cfg.cluster_epochs`` of
    clustering fine-tuning when ``cfg.cluster_loss`` is set. Returns the per-epoch history
    (``phase`` "pretrain" or "finetune", train and validation loss, images/s).

    Reports ``progress(epochs_done, epochs_total, stage="batch", batch=, batches=, batch_loss=,
    images_per_s=)`` after every batch and ``stage="train"`` with the epoch's train/val loss,
    images/s and ETA after every epoch.
    """
    train_idx, val_idx = split_indices(len(ink), cfg.split, cfg.seed)
    steps = _n_batches(len(train_idx), cfg.batch_size)
    finetune = cfg.cluster_loss != "none"
    objective = Objective(model, cfg, device)
    step_loss = compiled_for_training(objective, device, cfg.epochs * steps)
    g_order = torch.Generator().manual_seed(cfg.seed + 1)
    g_noise = torch.Generator().manual_seed(cfg.seed + 2)
    loop = _Loop(model, ink, cfg, device, train_idx, val_idx, g_order, progress, steps=steps,
                 total_epochs=cfg.epochs + (cfg.cluster_epochs if finetune else 0))
    if pretrain:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.max_lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.max_lr, total_steps=cfg.epochs * steps)
        loop.run(cfg.epochs, 0, "pretrain", loss_of=lambda x, _: step_loss(x, g_noise), optimizer=opt,
                 scheduler=sched)
    if finetune:
        tuner = ClusterFinetune(model, ink, train_idx, cfg, device, objective, g_noise)
        model.centroids = tuner.run(
            lambda loss_of, optimizer, before: loop.run(cfg.cluster_epochs, cfg.epochs, "finetune", loss_of=loss_of,
                                                        optimizer=optimizer, before_epoch=before))
        for row, confidence in zip([h for h in loop.history if h["phase"] == "finetune"], tuner.confidence[1:]):
            row["cluster_confidence"] = confidence
    return loop.history


@dataclass
class _Loop:
    """The epochs of one :func:`fit`: what they share (model, images, split, batch order,
    progress) and the history they add to."""

    model: nn.Module
    ink: torch.Tensor
    cfg: TrainConfig
    device: torch.device
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    g_order: torch.Generator
    progress: ProgressFn
    steps: int
    total_epochs: int
    history: list = field(default_factory=list)
    t_start: float = field(default_factory=time.perf_counter)

    def run(self, n_epochs: int, first: int, phase: str, *, loss_of, optimizer, scheduler=None,
            before_epoch=None) -> None:
        """Epochs ``first`` .. ``first + n_epochs - 1`` minimising ``loss_of(x, chunk)``; one
        history row and one ``stage="train"`` report per epoch."""
        for epoch in range(first, first + n_epochs):
            if before_epoch is not None:
                before_epoch()
            seen, total, elapsed = self._train_epoch(epoch, loss_of, optimizer, scheduler)
            row = {"epoch": epoch + 1, "phase": phase, "train_loss": total / max(seen, 1),
                   "images_per_s": seen / max(elapsed, 1e-9),
                   "val_loss": (evaluate_loss(self.model, self.ink, self.val_idx, cfg=self.cfg, device=self.device)
                                if len(self.val_idx) else None)}
            self.history.append(row)
            done_time = time.perf_counter() - self.t_start
            self.progress(epoch + 1, self.total_epochs, stage="train", train_loss=row["train_loss"],
                          val_loss=row["val_loss"] if row["val_loss"] is not None else float("nan"),
                          images_per_s=row["images_per_s"],
                          eta_s=done_time / (epoch + 1) * (self.total_epochs - epoch - 1))

    def _train_epoch(self, epoch: int, loss_of, optimizer, scheduler) -> tuple[int, float, float]:
        """One pass over the training images: (images seen, summed loss, seconds)."""
        self.model.train()
        t0, seen, total = time.perf_counter(), 0, 0.0
        for batch, chunk in enumerate(_batches(self.train_idx, self.cfg.batch_size, self.g_order), 1):
            x = to_input(self.ink[chunk], self.device)
            loss = loss_of(x, chunk)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None and scheduler.last_epoch < scheduler.total_steps - 1:
                scheduler.step()
            seen += len(chunk)
            batch_loss = loss.item()
            total += batch_loss * len(chunk)
            # between epochs too: a CPU epoch can take minutes, and a job's cancel is checked here
            self.progress(epoch, self.total_epochs, stage="batch", batch=batch, batches=self.steps,
                          batch_loss=batch_loss, images_per_s=seen / max(time.perf_counter() - t0, 1e-9))
        return seen, total, time.perf_counter() - t0


class ClusterFinetune:
    """Clustering fine-tuning (WCSS, DEC, IDEC) of a pre-trained model; see
    :mod:`backend.autoencoder.objectives`. Centroids start from K-Means on the pre-trained
    fingerprints of the training images."""

    def __init__(self, model, ink, train_idx, cfg: TrainConfig, device, objective: Objective, generator):
        self.model, self.ink, self.train_idx, self.cfg = model, ink, train_idx, cfg
        self.device, self.objective, self.generator = device, objective, generator

    def fingerprints(self) -> torch.Tensor:
        return torch.as_tensor(encode_images(self.model, self.ink[self.train_idx], self.device,
                                             batch_size=self.cfg.batch_size))

    def run(self, run_epochs) -> torch.Tensor:
        """Fine-tune; return the final centroids. ``self.confidence``: the mean largest Student-t
        assignment of the training images before each epoch and after the last (how decided the
        clustering is: 1/k for none, 1 for all)."""
        cfg = self.cfg
        self.confidence = []
        centroids = kmeans_centroids(self.fingerprints(), cfg.clusters, cfg.seed).to(self.device)
        position = {int(i): j for j, i in enumerate(self.train_idx)}
        state = {"target": None}
        # fine-tuning uses a tenth of the peak learning rate, constant (DEC/IDEC use plain SGD/Adam)
        lr = cfg.max_lr / 10
        if cfg.cluster_loss in ("dec", "idec"):
            centroids = nn.Parameter(centroids)
            params = list(self.model.parameters()) + [centroids]
        else:
            params = list(self.model.parameters())
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)

        def before_epoch():
            # WCSS: centroids re-estimated from the current fingerprints; DEC/IDEC: the sharpened
            # target distribution refreshed (once per epoch, as DEC's update interval)
            z = self.fingerprints().to(self.device)
            with torch.no_grad():
                self.confidence.append(float(student_t_assignments(z, centroids).max(1).values.mean()))
                if cfg.cluster_loss == "wcss":
                    centroids.copy_(kmeans_centroids(z.cpu(), cfg.clusters, cfg.seed).to(self.device))
                else:
                    state["target"] = target_distribution(student_t_assignments(z, centroids))

        def loss_of(x, chunk):
            z = self.model.encode(x).flatten(1).float()
            if cfg.cluster_loss == "wcss":
                return self.objective(x, self.generator) + cfg.cluster_weight * wcss_loss(z, centroids)
            rows = torch.as_tensor([position[int(i)] for i in chunk], device=self.device)
            kl = dec_loss(student_t_assignments(z, centroids), state["target"][rows])
            if cfg.cluster_loss == "dec":
                return kl
            return self.objective(x, self.generator) + cfg.cluster_weight * kl

        run_epochs(loss_of, optimizer, before_epoch)
        with torch.no_grad():
            z = self.fingerprints().to(self.device)
            self.confidence.append(float(student_t_assignments(z, centroids).max(1).values.mean()))
        return centroids.detach().cpu()


@torch.no_grad()
def evaluate_loss(model: nn.Module, ink: torch.Tensor, idx: torch.Tensor, *, cfg: TrainConfig,
                  device: torch.device) -> float:
    """The objective on ``ink[idx]`` (model in eval mode): mean BCE of clean reconstructions, or
    NT-Xent between views drawn from a fixed generator (the same views every epoch)."""
    model.eval()
    if cfg.objective == "contrastive":
        g = torch.Generator().manual_seed(cfg.seed + 3)
        objective = Objective(model, cfg, device)
        total, n = 0.0, 0
        for chunk in _batches(idx, max(cfg.batch_size, 2), None):
            if len(chunk) < 2:
                continue
            total += objective(to_input(ink[chunk], device), g).item() * len(chunk)
            n += len(chunk)
        return total / max(n, 1)
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    amp = autocast_dtype(device)
    total = 0.0
    for chunk in _batches(idx, cfg.batch_size, None):
        x = to_input(ink[chunk], device)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            logits = model(x)
        total += loss_fn(logits.float(), x).item() / x[0].numel()
    return total / len(idx)


def _clear_cuda_oom(cfg: TrainConfig):
    return BandscapeError(f"out of GPU memory at batch size {cfg.batch_size}: try --batch-size "
                          f"{max(2, cfg.batch_size // 2)} (or a smaller --image-size)")


def resolve_init(cfg: TrainConfig, root) -> TrainConfig:
    """``cfg`` with the architecture, objective and pre-training fields of the model it fine-tunes
    (``cfg.init_from``), so the new model's id and record describe what it really is."""
    if not cfg.init_from:
        return cfg
    if cfg.init_from == PRETRAINED:
        # the shipped encoder's trunk, objective and views; this run's epochs, split, lr and window
        _, meta = load_pretrained_encoder()
        own = [f.name for f in dataclasses.fields(cfg) if f.name not in TRUNK_FIELDS]
        return pretrained_config(meta, **{k: getattr(cfg, k) for k in own})
    meta = model_paths(root, cfg.init_from)["metadata"]
    try:
        base = json.loads(Path(meta).read_text())["config"]
    except (OSError, ValueError, KeyError):
        raise ParameterError(f"init_from: {cfg.init_from!r} is not a trained model under {root} "
                             f"({meta} is missing or unreadable)") from None
    if base.get("cluster_loss", "none") != "none":
        raise ParameterError(f"init_from: {cfg.init_from!r} is fine-tuned already; start from its pre-trained model")
    inherited = ("arch", "latent", "image_size", "window", "epochs", "split", "seed", "batch_size", "max_lr",
                 "line_width", "noise_prob", "objective", "temperature", "views")
    return dataclasses.replace(cfg, **{k: base[k] for k in inherited if k in base}).validate()


def load_pretrained(model: nn.Module, cfg: TrainConfig, root) -> list[dict]:
    """Load the weights of ``cfg.init_from`` (a model of ``root``, or the shipped pretrained
    encoder) into ``model``; return its training history."""
    if cfg.init_from == PRETRAINED:
        # its history is the corpus's, recorded in its own file (metadata "pretrained")
        model.load_state_dict(load_pretrained_encoder()[0].state_dict())
        return []
    base, _ = load_model(root, cfg.init_from)
    model.load_state_dict(base.state_dict())
    return json.loads(model_paths(root, cfg.init_from)["metadata"].read_text()).get("history", [])


def train_model(cfg: TrainConfig, images_dir: str | os.PathLike, out_root: str | os.PathLike,
                *, progress: ProgressFn | None = None, overwrite: bool = False) -> TrainResult:
    """Train one autoencoder on a folder of training images and write the model, its metadata,
    fingerprints, UMAP embedding and reconstruction grid under ``out_root`` (see module doc)."""
    progress = progress or null_progress
    out_root = Path(out_root)
    cfg = resolve_init(cfg.validate(), out_root)
    paths = model_paths(out_root, cfg.model_id)
    if not overwrite and (paths["embedding"].exists() or paths["weights"].exists()):
        raise ParameterError(f"model {cfg.model_id} already exists under {out_root} (pass --overwrite to replace it)")
    check_window(images_dir, cfg.window)  # a model of one window is never trained on images of another
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
    base_history = []
    if cfg.init_from:
        base_history = load_pretrained(model, cfg, out_root)
    total_epochs = cfg.epochs + (cfg.cluster_epochs if cfg.cluster_loss != "none" else 0)
    try:
        history = base_history + fit(model, ink, cfg, device=device, progress=progress, 
                                      pretrain=cfg.init_from in ("", PRETRAINED))
        progress(total_epochs, total_epochs, stage="encode")
        X = encode_images(model, ink, device, batch_size=cfg.batch_size)
        progress(total_epochs, total_epochs, stage="umap")
        xy, reducer = fit_umap(X)
        grid = reconstruction_grid(model, ink, device, cfg=cfg)
    except torch.cuda.OutOfMemoryError:
        raise _clear_cuda_oom(cfg) from None
    wall = time.perf_counter() - t0
    meta = _metadata(cfg, model, out_root=out_root, images_dir=images_dir, n_images=len(names), history=history,
                     fingerprint_size=X.shape[1], wall=wall, device=device)
    write_model_outputs(out_root, cfg.model_id, model, meta=meta, names=names, X=X, xy=xy, grid=grid,
                        reducer=reducer)
    progress(total_epochs, total_epochs, stage="done")
    return TrainResult(cfg.model_id, {k: str(v) for k, v in paths.items()}, history, wall, str(device))


def _metadata(cfg: TrainConfig, model: nn.Module, *, out_root: Path, images_dir, n_images: int, history: list,
              fingerprint_size: int, wall: float, device: torch.device) -> dict:
    """``models/{id}.json``: the config, the dataset, the history and how the run was made."""
    meta = {
        "model_id": cfg.model_id,
        "config": cfg.as_dict(),
        # relative to the root when the images are inside it: no path of this machine in the file
        "dataset": {"images": path_in_root(out_root, images_dir), "n_images": n_images,
                    "image_folder_sha256": folder_fingerprint(images_dir),
                    # the images' own window when the folder says it (None: not known, config's taken)
                    "images_window": images_window(images_dir).window,
                    "n_train": n_images - int(round(cfg.split * n_images)),
                    "n_val": int(round(cfg.split * n_images))},
        "history": history,
        "fingerprint_size": int(fingerprint_size),
        "wall_time_s": round(wall, 3),
        "device": str(device),
        "autocast": str(autocast_dtype(device)),
        "versions": {"torch": torch.__version__, "python": platform.python_version(),
                     "numpy": np.__version__},
        "input_encoding": "ink mask: 1 = band line (grey/255 < 0.8), 0 = background",
        "objective": cfg.recipe,
        "noise": "random erasing, one box per image, area 0.2-0.3, aspect 0.3-3.3, Gaussian fill, "
                 f"p={cfg.noise_prob}, inputs only, a fresh box per image",
    }
    if cfg.objective == "contrastive":
        meta["views"] = (f"two views per image ({cfg.views}) {describe_views(cfg.views, cfg.window)}, "
                         f"localized noise; NT-Xent at temperature {cfg.temperature} on a 512-128 projection head")
    if cfg.init_from == PRETRAINED:
        meta["pretrained"] = shipped_summary()
    centroids = getattr(model, "centroids", None)
    if centroids is not None:
        meta["centroids"] = np.asarray(centroids, dtype=float).round(6).tolist()
    return meta
