"""Training objectives beyond reconstruction, and the augmentations they rest on.

**Contrastive** (SimCLR's NT-Xent): two random views of each image should have the nearest
fingerprints in the batch. The views differ by what does *not* make two band structures
different, so the fingerprint learns to ignore it:

- a vertical shift: where the Fermi level happens to sit (doping, a different E_F);
- a vertical stretch: the overall hopping scale (bandwidth) of the same lattice;
- an energy inversion (E -> -E): the sign of the hopping (a flat band above or below a cone);
- thicker lines, and the study's localized noise (a box of Gaussian noise).

All of them act on the image alone (no band data needed), so they apply to any training images.

**Clustering-friendly fine-tuning**, after pre-training, with k centroids in fingerprint space:

- ``wcss``: the within-cluster sum of squares of the fingerprints to their nearest centroid, added
  to the pre-training loss; centroids re-estimated by K-Means every epoch (the
  convolutional-autoencoder notebook's joint recipe);
- ``dec``: Student-t soft assignments q, a sharpened target p = q^2/f normalised, KL(p || q)
  alone (Xie et al. 2016), centroids trained with the encoder;
- ``idec``: DEC's KL plus the pre-training loss, which keeps the fingerprint from distorting
  (Guo et al. 2017).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backend.autoencoder.noise import localized_noise

# ---- augmentations ------------------------------------------------------------------------------

def band_views(x: torch.Tensor, generator: torch.Generator, *, shift: float = 0.33, stretch: float = 1.6,
               flip: float = 0.5, thicken: float = 0.3, noise: float = 0.5) -> torch.Tensor:
    """A random view of each ink mask in ``x`` (B, 1, S, S) float {0, 1}.

    ``shift``: the largest vertical shift, as a fraction of the image height; ``stretch``: the
    largest vertical zoom factor (and its inverse); ``flip``: probability of E -> -E; ``thicken``:
    probability of 3x3 dilated lines; ``noise``: probability of the study's localized noise box.
    """
    b = x.shape[0]
    zoom = torch.exp(torch.empty(b).uniform_(-math.log(stretch), math.log(stretch), generator=generator))
    sign = torch.where(torch.rand(b, generator=generator) < flip, -1.0, 1.0)
    offset = torch.empty(b).uniform_(-2 * shift, 2 * shift, generator=generator)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = sign / zoom           # output row -> input row: stretch and invert about the centre...
    theta[:, 1, 2] = offset                # ...then shift (grid units: the image spans [-1, 1])
    theta = theta.to(x.device, x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # a stretched 1-px line is resampled to grey: keep what a line would keep at the study's 0.8
    # threshold on the grey scale (ink >= 0.25), so views stay binary like the inputs
    view = (F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False) > 0.25).to(x.dtype)
    thick = (torch.rand(b, generator=generator) < thicken).to(x.device)
    if thick.any():
        view = torch.where(thick.view(b, 1, 1, 1), F.max_pool2d(view, 3, 1, 1), view)
    view, _ = localized_noise(view, generator, noise)
    return view


# ---- contrastive --------------------------------------------------------------------------------

class ProjectionHead(nn.Module):
    """SimCLR's projection: fingerprint -> hidden (BatchNorm, ReLU) -> out. The loss is applied
    here; the fingerprint is the layer before it."""

    def __init__(self, d_in: int, hidden: int = 512, d_out: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, d_out))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """NT-Xent: each view's positive is the other view of its image, the other 2B - 2 views of the
    batch are its negatives; cosine similarity over ``temperature``."""
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    n = len(z1)
    sim = z @ z.t() / temperature
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


# ---- clustering losses --------------------------------------------------------------------------

def student_t_assignments(z: torch.Tensor, centroids: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """DEC's soft assignments q (B, k): Student-t kernel of the distances to the centroids."""
    d2 = torch.cdist(z.float(), centroids.float()).pow(2)
    q = (1.0 + d2 / alpha).pow(-(alpha + 1) / 2)
    return q / q.sum(1, keepdim=True)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """DEC's sharpened target p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j'), f_j = sum_i q_ij."""
    w = q.pow(2) / q.sum(0)
    return (w.t() / w.sum(1)).t()


def dec_loss(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """KL(p || q), batch mean."""
    return F.kl_div(q.clamp_min(1e-12).log(), p, reduction="batchmean")


def wcss_loss(z: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of each fingerprint to its nearest centroid (the K-Means objective)."""
    d2 = torch.cdist(z.float(), centroids.float()).pow(2)
    return d2.min(1).values.mean()


def kmeans_centroids(z, k: int, seed: int) -> torch.Tensor:
    """K-Means (10 restarts, fixed seed) centroids of fingerprints ``z`` (n, d) -> (k, d) float32."""
    from sklearn.cluster import KMeans  # sklearn: ~2 s to import; only cluster fine-tuning needs it

    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(np.asarray(z, dtype=np.float64))
    return torch.as_tensor(km.cluster_centers_, dtype=torch.float32)
