"""The config of one training run, importable without torch.

The web app validates training jobs with the same :meth:`TrainConfig.validate` as the CLI, in a
process that must never import torch (CUDA belongs to the job workers); so the config, its
bounds and the study's grid live here, and :mod:`backend.autoencoder.training` re-exports them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from backend.catalog import make_model_id
from backend.errors import ParameterError

ARCH_NAMES = ("resnet18", "resnet50")
LATENTS = (1, 2, 3)
DOWNSAMPLING = 32             # stem (2) x max-pool (2) x three strided stages (8)
PAPER_GRID = {
    "arch": ("resnet18", "resnet50"), "latent": (1, 2, 3), "window": (1, 2, 3),
    "epochs": (30, 60, 90, 120), "split": (0.0, 0.1, 0.5),
}
DEVICES = ("auto", "cpu", "cuda", "mps")


def check_arch(arch: str, latent: int, image_size: int) -> None:
    if arch not in ARCH_NAMES:
        raise ParameterError(f"arch must be one of {ARCH_NAMES}, got {arch!r}")
    if isinstance(latent, bool) or not isinstance(latent, int) or latent not in LATENTS:
        raise ParameterError(f"latent must be one of {LATENTS}, got {latent!r}")
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < DOWNSAMPLING \
            or image_size % DOWNSAMPLING:
        raise ParameterError(f"image_size must be a multiple of {DOWNSAMPLING} (>= 32; 224 as the study), got {image_size!r}")


@dataclass
class TrainConfig:
    """Hyperparameters of one model (defaults: the study's)."""

    arch: str = "resnet18"
    latent: int = 3
    window: float = 1
    epochs: int = 30
    split: float = 0.1
    image_size: int = 224
    seed: int = 0
    batch_size: int = 64
    max_lr: float = 1e-3
    weight_decay: float = 0.01
    noise_prob: float = 0.5
    line_width: float = 1
    device: str = "auto"
    tag: str = ""

    def validate(self) -> "TrainConfig":
        check_arch(self.arch, self.latent, self.image_size)
        for name, low in (("epochs", 1), ("batch_size", 2), ("seed", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ParameterError(f"{name} must be an integer >= {low}, got {value!r}")
        if not isinstance(self.split, (int, float)) or not 0 <= self.split < 1:
            raise ParameterError(f"split must be in [0, 1), got {self.split!r}")
        if not isinstance(self.window, (int, float)) or not self.window > 0:
            raise ParameterError(f"window must be a positive number of eV, got {self.window!r}")
        for name in ("max_lr", "line_width"):
            if not getattr(self, name) > 0:
                raise ParameterError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not 0 <= self.weight_decay < 1 or not 0 <= self.noise_prob <= 1:
            raise ParameterError("weight_decay must be in [0, 1) and noise_prob in [0, 1]")
        if self.device not in DEVICES:
            raise ParameterError(f"device must be one of {DEVICES}, got {self.device!r}")
        if self.tag and not all(c.isalnum() or c in "-." for c in self.tag):
            raise ParameterError(f"tag may hold letters, digits, '-' and '.', got {self.tag!r}")
        return self

    @property
    def model_id(self) -> str:
        tag = self.tag or (f"size{self.image_size}" if self.image_size != 224 else "")
        return make_model_id(self.arch, self.latent, self.window, self.epochs, self.split, self.line_width, tag)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def paper_grid(**fixed) -> list[TrainConfig]:
    """The study's 216 configurations (or a sub-grid: fix or restrict any field, e.g.
    ``window=(1,)``); other TrainConfig fields (image_size, seed...) pass through."""
    grid = dict(PAPER_GRID)
    extra = {}
    for key, value in fixed.items():
        if key in grid:
            grid[key] = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        else:
            extra[key] = value
    configs = []
    for arch in grid["arch"]:
        for latent in grid["latent"]:
            for window in grid["window"]:
                for epochs in grid["epochs"]:
                    for split in grid["split"]:
                        configs.append(TrainConfig(arch=arch, latent=latent, window=window, epochs=epochs,
                                                   split=split, **extra))
    return configs
