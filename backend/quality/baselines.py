"""Feature sets every fingerprint is read against, computed from the same images.

- :func:`pixel_pca`: PCA of the raw (ink-mask) pixels;
- :func:`untrained_fingerprints`: the same encoder with random weights (fixed seed): what the
  architecture gives before any training;
- :func:`supervised_ceiling`: a small CNN trained *with* the labels on the same folds (the best a
  representation of these images can be expected to do), trained as long as the models and on
  views of the same kind, its learning rate picked on an inner split; it reports its training
  accuracy too, so an under-trained ceiling (train accuracy near held-out, both low) shows.

The unencoded UMAP map and the majority/random classifiers come from the catalog and
:mod:`backend.quality.metrics`. This module imports torch: the report imports it only where a
report runs, never in a web process.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from torch import nn

from backend.autoencoder.config import FULL_WIDTH, TrainConfig, check_arch
from backend.autoencoder.device import autocast_dtype
from backend.autoencoder.model import Encoder
from backend.autoencoder.objectives import ViewSet, band_views
from backend.quality.metrics import SEED, fold_splits, heldout_nmi, make_folds

PCA_COMPONENTS = 50
#: px: the ceiling CNN's input size. 64, not the default models' 128: on the demo's 3 eV images the
#: same CNN at 128 px fits its training folds as well (0.997) and generalises worse (family 0.61
#: against 0.75 at 64 px), at three to four times the cost (docs/findings.md)
CEILING_SIZE = 64
#: the ceiling's epochs when the evaluated models do not say theirs: TrainConfig's
CEILING_EPOCHS = TrainConfig.epochs
#: the ceiling's candidate peak learning rates, one picked per (window, label) on an inner split
CEILING_LRS = (1e-3, 3e-3, 1e-2)
#: the inner split of the learning-rate pick: one of this many stratified parts is held out
INNER_FOLDS = 5
#: px at CEILING_SIZE: the largest vertical shift of the ceiling's training views. A few pixels
#: only: where E_F sits relative to the bands is physics, and the models' big shifts (a third of
#: the height, in the demo's "lattice" views) would teach the labeller to ignore it
CEILING_SHIFT_PX = 2
#: the ceiling's training views, the kind the models are trained on where it keeps the physics: a
#: small vertical shift, thicker lines (another plotting style) and, with CEILING_NOISE, the
#: study's localized noise; no E -> -E flip (no symmetry of a material with a Fermi level)
#: and no vertical stretch beyond 1 (the band widths are what the labels may be about)
CEILING_VIEWS = ViewSet(shift=CEILING_SHIFT_PX / CEILING_SIZE, stretch=1.0, flip=0.0)
CEILING_NOISE = TrainConfig.noise_prob


def pixel_pca(ink: np.ndarray, n_components: int = PCA_COMPONENTS, seed: int = SEED) -> np.ndarray:
    """(n, c) PCA scores of the flattened images ``ink`` (n, 1, S, S) {0, 1}; c = min(50, n - 1)."""
    X = np.asarray(ink, dtype=np.float32).reshape(len(ink), -1)
    c = max(1, min(n_components, len(X) - 1, X.shape[1]))
    return PCA(n_components=c, random_state=seed, svd_solver="randomized").fit_transform(X).astype(np.float64)


def untrained_fingerprints(ink, arch: str, latents, *, image_size: int, channels: int = FULL_WIDTH, parts: int = 1,
                           seed: int = SEED, batch_size: int = 32) -> dict[int, np.ndarray]:
    """Fingerprints of ``ink`` (n, 1, S, S) from randomly initialised encoders of ``arch`` at trunk
    width ``channels`` with each of ``latents`` channels (seeded; eval mode: BatchNorm at its
    initial identity statistics): the model's own network before training. A fingerprint of
    ``parts`` > 1 joins that many encoders (part i seeded ``seed + i``), part 1's numbers first, as
    a trained two-part model's does.

    Seeded the same way, the encoders of different latents share their trunk (it is drawn before
    the last 1x1 convolution), so the trunk runs once and only that convolution per latent. On
    CPUs with native bf16 (AVX512-BF16, AMX) the trunk runs under bf16 autocast, as training does
    there (2.5-3x faster for a ResNet-50 at 224 px; random features do not need fp32)."""
    amp = untrained_precision()
    latents = sorted(set(int(z) for z in latents))
    for z in latents:
        check_arch(arch, z, image_size)
    x_all = _as_size(torch.as_tensor(np.asarray(ink)), image_size)
    out = {z: [] for z in latents}
    for part in range(parts):
        encoders = {}
        for z in latents:
            torch.manual_seed(seed + part)
            encoders[z] = Encoder(arch, z, channels).eval()
        trunk = encoders[latents[0]]
        chunks = {z: [] for z in latents}
        with torch.inference_mode():
            for start in range(0, len(x_all), batch_size):
                x = x_all[start:start + batch_size].float().contiguous(memory_format=torch.channels_last)
                with torch.autocast("cpu", dtype=amp or torch.bfloat16, enabled=amp is not None):
                    h = trunk.stages(trunk.stem(x))
                    for z in latents:
                        chunks[z].append(encoders[z].to_latent(h).flatten(1).float())
        for z in latents:
            out[z].append(torch.cat(chunks[z]))
    return {z: torch.cat(v, dim=1).numpy().astype(np.float64) for z, v in out.items()}


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
                       lrs=CEILING_LRS, seed: int = SEED, progress=None) -> dict:
    """A small CNN trained with the labels, fold by fold (the same folds as the probes), trained
    as the models are: ``epochs`` one-cycle epochs on :data:`CEILING_VIEWS` of the images at
    ``size`` px, the peak learning rate picked from ``lrs`` on an inner split of the first fold's
    training part (:func:`pick_lr`). Returns ``probe_acc`` / ``probe_std`` (held-out accuracy over
    the folds), ``probe_nmi`` (NMI of the held-out predictions against the labels: what a
    clustering that grouped the images as well as a network trained with the labels would score), ``train_acc`` (accuracy on the training folds, clean images), ``lr``, ``epochs``,
    ``lr_scores`` (inner-split accuracy of each candidate) and ``seconds``."""
    t0 = time.perf_counter()
    y = np.asarray(y)
    classes, target = np.unique(y, return_inverse=True)
    target = torch.as_tensor(target)
    x_all = _as_size(torch.as_tensor(np.asarray(ink)), size).float()
    splits = list(fold_splits(np.asarray(folds)))
    lr, lr_scores = pick_lr(x_all, target, splits[0][0], n_classes=len(classes), epochs=epochs, lrs=lrs, seed=seed)
    accs, train_accs, pred = [], [], np.zeros(len(target), dtype=np.int64)
    for f, (train, test) in enumerate(splits):
        net = train_cnn(x_all, target, train, n_classes=len(classes), epochs=epochs, lr=lr, seed=seed + f)
        pred[test] = _predict(net, x_all, test)
        accs.append(float((pred[test] == target.numpy()[test]).mean()))
        train_accs.append(_accuracy(net, x_all, target, train))
        if progress:
            progress(f + 1, len(splits), stage="ceiling")
    return {"probe_acc": float(np.mean(accs)), "probe_std": float(np.std(accs)),
            "probe_nmi": heldout_nmi(target.numpy(), pred),
            "train_acc": float(np.mean(train_accs)), "lr": float(lr), "epochs": int(epochs),
            "lr_scores": {f"{c:g}": s for c, s in lr_scores.items()}, "seconds": time.perf_counter() - t0}


def pick_lr(x_all, target, train, *, n_classes: int, epochs: int, lrs=CEILING_LRS, seed: int = SEED):
    """The candidate of ``lrs`` whose CNN scores best on a stratified inner split (a fifth held
    out) of the training indices ``train``, and every candidate's score (ties: the first)."""
    inner = make_folds(np.asarray(target)[train], INNER_FOLDS, seed)
    fit, held = train[inner != 0], train[inner == 0]
    if len(lrs) == 1 or len(held) == 0 or len(fit) < 2:
        return float(lrs[0]), {}                      # nothing to choose, or too few to choose on
    scores = {}
    for lr in lrs:
        net = train_cnn(x_all, target, fit, n_classes=n_classes, epochs=epochs, lr=lr, seed=seed)
        scores[float(lr)] = _accuracy(net, x_all, target, held)
    return max(scores, key=scores.get), scores


def train_cnn(x_all, target, train, *, n_classes: int, epochs: int, lr: float, seed: int = SEED):
    """:func:`small_cnn` trained on ``x_all[train]`` (float {0, 1} (n, 1, S, S)) for ``target``:
    AdamW, one-cycle to ``lr``, batches of 64, a fresh :data:`CEILING_VIEWS` view of each image
    each step (seeded)."""
    torch.manual_seed(seed)
    net = small_cnn(n_classes)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    batch = 64
    steps = epochs * max(1, int(np.ceil(len(train) / batch)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    g = torch.Generator().manual_seed(seed + 100)
    train_t = torch.as_tensor(np.asarray(train))
    net.train()
    for _ in range(epochs):
        order = train_t[torch.randperm(len(train_t), generator=g)]
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            if len(idx) < 2:
                continue
            xb = band_views(x_all[idx], g, views=CEILING_VIEWS, noise=CEILING_NOISE)
            loss = F.cross_entropy(net(xb), target[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched.last_epoch < sched.total_steps - 1:
                sched.step()
    return net.eval()


def _predict(net, x_all, idx) -> np.ndarray:
    """The class ``net`` (eval mode) gives each of the clean images ``x_all[idx]``."""
    idx = torch.as_tensor(np.asarray(idx))
    with torch.inference_mode():
        return torch.cat([net(x_all[idx[s:s + 256]]).argmax(1) for s in range(0, len(idx), 256)]).numpy()


def _accuracy(net, x_all, target, idx) -> float:
    """Accuracy of ``net`` (eval mode) on the clean images ``x_all[idx]``."""
    return float((_predict(net, x_all, idx) == np.asarray(target)[np.asarray(idx)]).mean())
