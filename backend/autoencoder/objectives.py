"""Training objectives beyond reconstruction, and the augmentations they rest on.

**Contrastive** (SimCLR's NT-Xent): two random views of each image should have the nearest
fingerprints in the batch. The views differ by what does *not* make two band structures
different, so the fingerprint learns to ignore it. Which differences those are is a physical
statement, so the views come in named sets (:data:`VIEW_SETS`), and a recipe
(:data:`backend.autoencoder.config.VIEW_RECIPES`) trains one encoder per set and joins their
fingerprints:

- ``fermi``, for plots referenced to E_F (where E_F sits relative to the bands is the physics,
  and E -> -E is no symmetry of a real material): a vertical shift of at most
  :data:`EF_UNCERTAINTY_EV` (E_F from a finite k-mesh and smearing is known to a few hundredths
  of an eV); a vertical zoom about E_F of up to x1.3 (band widths differ between codes and
  functionals, and a window's crop with them; E_F stays where it is); the k-path reversed (the
  same bands traversed the other way), its segments stretched against each other (their lengths
  follow the lattice constants, not the bands) and a random half or more of it filling the width
  (a path through other high-symmetry points shows other parts of the same bands); the study's
  localized noise. What it keeps: what lies at E_F. No thicker lines: a 3x3 dilation closes two
  pixels (0.03 eV of a ±1 eV plot at 128 px), a fair share of a real gap at E_F (the published
  plots' 30 gaps: 0.02-0.18 eV, median 0.07), so two views of a semiconductor could differ by
  whether E_F lies in a gap; without it the Fermi crossings, the line count and the gap of the
  published plots gain (docs/findings.md, "Which views cost what on real plots").
- ``shape``: a vertical shift up to a third of the image and a stretch x1/1.6-1.6: the bands'
  shapes, wherever E_F sits in them and whatever their scale. What it keeps: the lattice.
- ``physical`` (the default recipe) is both, side by side: on labelled DFT-like data each part
  alone knows only half of what a materials scientist groups by (the shape part the lattice, the
  Fermi part the filling and what sits at E_F), the two together both (docs/findings.md).
- ``lattice``: the first demo's generator factors (``shape`` plus E -> -E, the sign of its
  hopping); ``narrow``: the first physical set (``fermi`` with a 5 % zoom and no crop), which
  lets two views differ so little that the network can tell images apart by pixel detail.

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
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backend.autoencoder.config import VIEW_RECIPES
from backend.autoencoder.noise import localized_noise

# ---- augmentations ------------------------------------------------------------------------------

#: how well E_F is known in a DFT plot (k-mesh and smearing), the largest shift of a physical view
EF_UNCERTAINTY_EV = 0.03


@dataclass(frozen=True)
class ViewSet:
    """What two views of one band plot may differ by (see the module docstring for why).

    ``shift_ev``: the largest vertical shift in eV (None: ``shift`` as a fraction of the image
    height, for data without an energy scale); ``stretch``: the largest vertical zoom about E_F
    (and its inverse); ``flip``: probability of E -> -E; ``k_reverse``: probability of the k-path
    reversed; ``k_warp``: how far the two inner knots of a piecewise-linear stretch of the k axis
    move, as a fraction of the width; ``k_crop``: the largest share of the k-path cut away (a
    random stretch of the path, at least ``1 - k_crop`` of it, fills the width); ``thicken``:
    probability of 3x3-dilated lines."""

    shift_ev: float | None = None
    shift: float = 0.0
    stretch: float = 1.0
    flip: float = 0.0
    k_reverse: float = 0.0
    k_warp: float = 0.0
    k_crop: float = 0.0
    thicken: float = 0.3

    def shift_fraction(self, window: float) -> float:
        """The largest shift as a fraction of the image height, for a plot of +-``window`` eV."""
        return self.shift if self.shift_ev is None else self.shift_ev / (2.0 * float(window))

    def describe(self, window: float) -> str:
        parts = [f"vertical shift up to {self.shift_fraction(window):.3g} of the height"
                 + (f" ({self.shift_ev:g} eV)" if self.shift_ev is not None else "")]
        if self.stretch != 1:
            parts.append(f"vertical zoom about E_F x1/{self.stretch:g}-{self.stretch:g}")
        if self.flip:
            parts.append(f"E -> -E with p={self.flip:g}")
        if self.k_reverse:
            parts.append(f"k-path reversed with p={self.k_reverse:g}")
        if self.k_warp:
            parts.append(f"k segments stretched (inner knots moved up to {self.k_warp:g} of the width)")
        if self.k_crop:
            parts.append(f"a stretch of at least {1 - self.k_crop:.3g} of the k-path filling the width")
        if self.thicken:
            parts.append(f"3x3-dilated lines with p={self.thicken:g}")
        return ", ".join(parts)


VIEW_SETS = {
    "lattice": ViewSet(shift=0.33, stretch=1.6, flip=0.5),
    "shape": ViewSet(shift=0.33, stretch=1.6),
    "fermi": ViewSet(shift_ev=EF_UNCERTAINTY_EV, stretch=1.3, k_reverse=0.5, k_warp=0.15, k_crop=0.5, thicken=0.0),
    "narrow": ViewSet(shift_ev=EF_UNCERTAINTY_EV, stretch=1.05, k_reverse=0.5, k_warp=0.15),
}


def describe_views(views: str, window: float) -> str:
    """What the views of a recipe (a key of VIEW_RECIPES) may differ by, part by part."""
    parts = VIEW_RECIPES[views]
    if len(parts) == 1:
        return f"{parts[0]}: {VIEW_SETS[parts[0]].describe(window)}"
    return "; ".join(f"part {i + 1} ({name}): {VIEW_SETS[name].describe(window)}" for i, name in enumerate(parts))


def _k_warp_grid(b: int, width: int, amount: float, generator: torch.Generator) -> torch.Tensor:
    """For each of ``b`` images, the input x (grid units, [-1, 1]) of every output column: a
    monotone piecewise-linear map with fixed ends and two inner knots (at -1/3 and 1/3, where a
    three-segment path such as Gamma-M-K-Gamma has its corners) moved by up to ``amount`` of the
    width (2 grid units), so the segments' lengths change against each other. (b, width)."""
    out_knots = torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0])
    move = torch.empty(b, 2).uniform_(-2 * amount, 2 * amount, generator=generator)
    in_knots = out_knots.repeat(b, 1)
    in_knots[:, 1:3] += move
    in_knots[:, 1] = in_knots[:, 1].clamp(-0.9, 0.2)
    in_knots[:, 2] = torch.maximum(in_knots[:, 2], in_knots[:, 1] + 0.1).clamp(max=0.9)
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2 - 1          # output column centres
    seg = torch.bucketize(xs, out_knots[1:-1])                                      # (width,) 0, 1, 2
    x0, x1 = out_knots[seg], out_knots[seg + 1]
    t = (xs - x0) / (x1 - x0)
    a, c = in_knots[:, seg], in_knots[:, seg + 1]
    return a + t * (c - a)


def band_views(x: torch.Tensor, generator: torch.Generator, *, views: ViewSet = VIEW_SETS["lattice"],
               window: float = 1.0, noise: float = 0.5) -> torch.Tensor:
    """A random view of each ink mask in ``x`` (B, 1, S, S) float {0, 1}: the image resampled
    under the :class:`ViewSet` ``views`` for plots of +-``window`` eV, then the study's localized
    noise box with probability ``noise``."""
    b, _, height, width = x.shape
    shift = views.shift_fraction(window)
    zoom = torch.exp(torch.empty(b).uniform_(-math.log(views.stretch), math.log(views.stretch), generator=generator))
    sign = torch.where(torch.rand(b, generator=generator) < views.flip, -1.0, 1.0)
    offset = torch.empty(b).uniform_(-2 * shift, 2 * shift, generator=generator)
    # (drawn only when used: the lattice views take the generator's numbers as they always did,
    # so a seed gives the same models as before the view sets)
    k_sign = (torch.where(torch.rand(b, generator=generator) < views.k_reverse, -1.0, 1.0) if views.k_reverse
              else torch.ones(b))
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = k_sign                # the k-path, or reversed
    theta[:, 1, 1] = sign / zoom           # output row -> input row: stretch and invert about the centre (E_F)...
    theta[:, 1, 2] = offset                # ...then shift (grid units: the image spans [-1, 1])
    grid = F.affine_grid(theta, [b, 1, height, width], align_corners=False)
    if views.k_warp:
        warped = _k_warp_grid(b, width, views.k_warp, generator)                    # (b, width)
        grid[..., 0] = warped[:, None, :] * k_sign.view(b, 1, 1)
    if views.k_crop:   # a random part of the path, at least 1 - k_crop of it, fills the width
        keep = torch.empty(b).uniform_(1 - views.k_crop, 1.0, generator=generator)
        centre = (torch.rand(b, generator=generator) * 2 - 1) * (1 - keep)
        grid[..., 0] = grid[..., 0] * keep.view(b, 1, 1) + centre.view(b, 1, 1)
    grid = grid.to(x.device, x.dtype)
    # a stretched 1-px line is resampled to grey: keep what a line would keep at the study's 0.8
    # threshold on the grey scale (ink >= 0.25), so views stay binary like the inputs
    view = (F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False) > 0.25).to(x.dtype)
    thick = (torch.rand(b, generator=generator) < views.thicken).to(x.device)
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
