"""Feature sets every fingerprint is read against, computed from the same images.

- :func:`pixel_pca`: PCA of the raw (ink-mask) pixels;
- :func:`untrained_fingerprints`: the same encoder with random weights (fixed seed): what the
  architecture gives before any training;
- :func:`supervised_ceiling`: a small CNN trained *with* the labels on the same folds (the best a
  representation of these images can be expected to do).

The unencoded UMAP map and the majority/random classifiers come from the catalog and
:mod:`backend.quality.metrics`. This module imports torch: the report imports it only where a
report runs, never in a web process.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from torch import nn

from backend.autoencoder.config import check_arch
from backend.autoencoder.device import autocast_dtype
from backend.autoencoder.model import Encoder
from backend.quality.metrics import SEED, fold_splits

PCA_COMPONENTS = 50
CEILING_SIZE = 64          # px: the ceiling CNN's input size
CEILING_EPOCHS = 20


def pixel_pca(ink: np.ndarray, n_components: int = PCA_COMPONENTS, seed: int = SEED) -> np.ndarray:
    """(n, c) PCA scores of the flattened images ``ink`` (n, 1, S, S) {0, 1}; c = min(50, n - 1)."""
    X = np.asarray(ink, dtype=np.float32).reshape(len(ink), -1)
    c = max(1, min(n_components, len(X) - 1, X.shape[1]))
    return PCA(n_components=c, random_state=seed, svd_solver="randomized").fit_transform(X).astype(np.float64)


def untrained_fingerprints(ink, arch: str, latents, *, image_size: int, seed: int = SEED,
                           batch_size: int = 32) -> dict[int, np.ndarray]:
    """Fingerprints of ``ink`` (n, 1, S, S) from randomly initialised encoders of ``arch`` with
    each of ``latents`` channels (seeded; eval mode: BatchNorm at its initial identity statistics).

    Seeded the same way, the encoders of different latents share their trunk (it is drawn before
    the last 1x1 convolution), so the trunk runs once and only that convolution per latent. On
    CPUs with native bf16 (AVX512-BF16, AMX) the trunk runs under bf16 autocast, as training does
    there (2.5-3x faster for a ResNet-50 at 224 px; random features do not need fp32)."""
    amp = untrained_precision()
    latents = sorted(set(int(z) for z in latents))
    encoders = {}
    for z in latents:
        check_arch(arch, z, image_size)
        torch.manual_seed(seed)
        encoders[z] = Encoder(arch, z).eval()
    trunk = encoders[latents[0]]
    x_all = _as_size(torch.as_tensor(np.asarray(ink)), image_size)
    out = {z: [] for z in latents}
    with torch.inference_mode():
        for start in range(0, len(x_all), batch_size):
            x = x_all[start:start + batch_size].float().contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=amp or torch.bfloat16, enabled=amp is not None):
                h = trunk.stages(trunk.stem(x))
                for z in latents:
                    out[z].append(encoders[z].to_latent(h).flatten(1).float())
    return {z: torch.cat(v).numpy().astype(np.float64) for z, v in out.items()}


def untrained_precision():
    """The autocast dtype of the untrained-network baseline here (None: fp32)."""
    return autocast_dtype(torch.device("cpu"))


def _as_size(ink, size: int):
    """uint8 ink (n, 1, S, S) -> (n, 1, size, size), box-averaged and re-binarised when S differs."""
    if ink.shape[-1] == size:
        return ink
    x = F.interpolate(ink.float(), size=(size, size), mode="area")
    return (x > 0.2).to(torch.uint8)  # a 1-px line averaged over up to 3.5 px keeps >= 0.28


def small_cnn(n_classes: int):
    """Four strided conv blocks, global average and max pooling side by side, a linear layer."""
    class AvgMaxPool(nn.Module):
        def forward(self, h):
            return torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)

    layers = []
    for cin, cout, k in ((1, 16, 5), (16, 32, 3), (32, 64, 3), (64, 64, 3)):
        layers += [nn.Conv2d(cin, cout, k, stride=2, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                   nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, AvgMaxPool(), nn.Linear(128, n_classes))


def supervised_ceiling(ink, y, folds, *, epochs: int = CEILING_EPOCHS, size: int = CEILING_SIZE,
                       seed: int = SEED, progress=None) -> tuple[float, float]:
    """(mean, std) held-out accuracy of a small CNN trained with the labels, fold by fold (the
    same folds as the probes). Inputs at ``size`` px; training adds vertical shifts (where the
    Fermi level sits is not what a class is)."""
    y = np.asarray(y)
    classes, target = np.unique(y, return_inverse=True)
    target = torch.as_tensor(target)
    x_all = _as_size(torch.as_tensor(np.asarray(ink)), size).float()
    accs = []
    splits = list(fold_splits(np.asarray(folds)))
    for f, (train, test) in enumerate(splits):
        torch.manual_seed(seed + f)
        net = small_cnn(len(classes))
        opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
        batch = 64
        steps = epochs * max(1, int(np.ceil(len(train) / batch)))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
        g = torch.Generator().manual_seed(seed + 100 + f)
        train_t = torch.as_tensor(train)
        for _ in range(epochs):
            net.train()
            order = train_t[torch.randperm(len(train_t), generator=g)]
            for start in range(0, len(order), batch):
                idx = order[start:start + batch]
                if len(idx) < 2:
                    continue
                shift = int(torch.randint(-size // 4, size // 4 + 1, (1,), generator=g))
                xb = torch.roll(x_all[idx], shifts=shift, dims=2)
                loss = F.cross_entropy(net(xb), target[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched.last_epoch < sched.total_steps - 1:
                    sched.step()
        net.eval()
        with torch.inference_mode():
            pred = torch.cat([net(x_all[torch.as_tensor(test[s:s + 256])]).argmax(1)
                              for s in range(0, len(test), 256)])
        accs.append(float((pred == target[torch.as_tensor(test)]).float().mean()))
        if progress:
            progress(f + 1, len(splits), stage="ceiling")
    return float(np.mean(accs)), float(np.std(accs))
