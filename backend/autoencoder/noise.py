"""The study's "localized noise": random erasing of one box per image, filled with Gaussian noise.

Box area 20-30 % of the image, aspect ratio 0.3-3.3, applied with probability 0.5, to the inputs
only (the reconstruction target stays clean). The published code reseeds Python's RNG inside its
transform, so every batch got the same box; this reproduces the intent (a fresh box per image),
drawn from a seeded torch generator so runs are repeatable.
"""

from __future__ import annotations

import math

import torch

AREA = (0.2, 0.3)
ASPECT = (0.3, 3.3)


def noise_boxes(n: int, size: int, generator: torch.Generator, *, area=AREA, aspect=ASPECT) -> torch.Tensor:
    """(n, 4) int boxes (top, left, height, width) inside a size x size image."""
    a = torch.empty(n).uniform_(area[0], area[1], generator=generator) * size * size
    log_r = torch.empty(n).uniform_(math.log(aspect[0]), math.log(aspect[1]), generator=generator)
    r = torch.exp(log_r)
    h = torch.sqrt(a * r).round().clamp(1, size).long()
    w = torch.sqrt(a / r).round().clamp(1, size).long()
    top = (torch.rand(n, generator=generator) * (size - h + 1)).floor().long()
    left = (torch.rand(n, generator=generator) * (size - w + 1)).floor().long()
    return torch.stack([top, left, h, w], 1)


def localized_noise(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Noised copy of a float batch (B, C, S, S) and the bool mask (B, 1, S, S) of replaced pixels.

    Aspect ratios that cannot fit are clamped to the image, which keeps the area close to the
    requested fraction for all but the most extreme boxes.
    """
    b, _, s, _ = x.shape
    apply = torch.rand(b, generator=generator) < p
    boxes = noise_boxes(b, s, generator)
    rows = torch.arange(s).view(1, s, 1)
    cols = torch.arange(s).view(1, 1, s)
    top, left, h, w = (boxes[:, i].view(b, 1, 1) for i in range(4))
    mask = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w) & apply.view(b, 1, 1)
    mask = mask.unsqueeze(1).to(x.device)
    noise = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
    return torch.where(mask, noise, x), mask
