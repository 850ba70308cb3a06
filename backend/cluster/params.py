"""The parameters of one clustering view and the shape of its result.

:class:`ClusterParams` holds every parameter (defaults: the paper's HDBSCAN cell) and validates
them once; :data:`BOUNDS` is the one table of their limits, read by the pages' inputs and the
messages alike. :class:`ClusterResult` holds the labels (-1 = noise) and the masks of noise
reclustering and double clustering.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from backend.cluster.distances import check_metric
from backend.data.opening import opening_model
from backend.errors import ParameterError

ALGORITHMS = ("hdbscan", "kmeans", "gmm")


SELECTIONS = ("leaf", "eom")


#: the paper's recommended settings (Hart et al., Heuslerene)
PAPER_MODEL = "resnet50_latent3_window1eV_steps90_split1.0_width1"


RANDOM_STATE = 0  # K-Means and GMM: same settings, same picture


#: up to this many materials HDBSCAN runs on the full distance matrix (exact); above, on a
#: k-nearest-neighbour graph (:mod:`backend.cluster.graph_hdbscan`), whose cost grows as n, not n^2
EXACT_MAX = 4_000


#: above this many materials GMM is fitted on a random sample of this size (then every
#: material is assigned): a full-covariance EM on 10^5 x 147 takes minutes
GMM_FIT_MAX = 3_000


#: above this many materials K-Means runs its k-means++ start once instead of 10 times
KMEANS_FULL_MAX = 5_000


def default_model(catalog) -> str:
    """The model a view opens with: the one the root's ``explorer.json`` names when it has it
    (:mod:`backend.data.opening`), else the paper's when the root has it, else the last one trained
    on the root's images (else the last encoded one, else the last model); a whole fingerprint,
    not the map of one of its parts, unless the root names one."""
    models = catalog.models
    declared = opening_model(catalog.root)
    if declared in models:
        return declared
    if PAPER_MODEL in models:
        return PAPER_MODEL
    encoded = [m for m in models.values() if not m.is_unencoded and not m.is_part]
    trained = [m for m in encoded if not m.is_pretrained]
    return (trained or encoded or list(models.values()))[-1].model_id


@dataclass(frozen=True)
class Bound:
    """The limit of one numeric parameter: ``minimum`` (inclusive for integers; for a real number
    the value must be above 0 and the page's input starts at ``minimum``) and whether it is an
    integer."""

    minimum: float
    integer: bool

    @property
    def step(self):
        """The ``step`` of an HTML number input for it."""
        return 1 if self.integer else "any"


#: every numeric parameter of :class:`ClusterParams` and its limit: read by :meth:`ClusterParams.validate`
#: and by the pages' inputs, so a bound is stated once
BOUNDS = {
    "min_cluster_size": Bound(2, True),
    "min_samples": Bound(1, True),
    "n_clusters": Bound(1, True),
    "dc_min_samples": Bound(1, True),
    "rc_min_cluster_size": Bound(2, True),
    "rc_min_samples": Bound(1, True),
    "p": Bound(0.01, False),
    "dc_eps": Bound(0.01, False),
}


@dataclass(frozen=True)
class ClusterParams:
    """Every parameter of one clustering view. Defaults: the paper's HDBSCAN settings."""

    algo: str = "hdbscan"
    min_cluster_size: int = 3
    min_samples: int = 2
    selection: str = "leaf"
    metric: str = "minkowski"
    p: float = 0.2
    n_clusters: int = 5                 # K-Means / GMM
    double_cluster: bool = False        # DBSCAN on the UMAP of the non-noise points
    dc_eps: float = 0.8
    dc_min_samples: int = 5
    recluster_noise: bool = False       # HDBSCAN on the noise points
    rc_min_cluster_size: int = 3
    rc_min_samples: int = 5

    def validate(self, n_samples: int | None = None) -> "ClusterParams":
        """Check every field; return a normalised copy (ints as ints, p as float)."""
        if self.algo not in ALGORITHMS:
            raise ParameterError(f"algo must be one of {ALGORITHMS}, got {self.algo!r}")
        if self.selection not in SELECTIONS:
            raise ParameterError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        metric, p = check_metric(self.metric, self.p)
        ints = {}
        for name, bound in BOUNDS.items():
            if not bound.integer:
                continue
            low = int(bound.minimum)
            value = getattr(self, name)
            try:
                ivalue = int(value)
            except (TypeError, ValueError):
                raise ParameterError(f"{name} must be an integer >= {low}, got {value!r}") from None
            if ivalue != value or ivalue < low:
                raise ParameterError(f"{name} must be an integer >= {low}, got {value!r}")
            ints[name] = ivalue
        try:
            eps = float(self.dc_eps)
        except (TypeError, ValueError):
            eps = -1.0
        if not eps > 0:
            raise ParameterError(f"dc_eps must be a positive number, got {self.dc_eps!r}")
        if n_samples is not None:
            if self.algo == "hdbscan" and ints["min_cluster_size"] > n_samples:
                raise ParameterError(f"min_cluster_size={ints['min_cluster_size']} exceeds the {n_samples} materials")
            if self.algo == "hdbscan" and ints["min_samples"] >= n_samples:
                raise ParameterError(f"min_samples must be below the number of materials ({n_samples})")
            if self.algo in ("kmeans", "gmm") and ints["n_clusters"] > n_samples:
                raise ParameterError(f"n_clusters={ints['n_clusters']} exceeds the {n_samples} materials")
        return dataclasses.replace(self, metric=metric, p=p, dc_eps=eps,
                                   double_cluster=bool(self.double_cluster),
                                   recluster_noise=bool(self.recluster_noise), **ints)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def relevant(self) -> dict:
        """Only the parameters that influence the result (for exports and summaries)."""
        d = {"algo": self.algo}
        if self.algo == "hdbscan":
            d.update(min_cluster_size=self.min_cluster_size, min_samples=self.min_samples,
                     selection=self.selection, metric=self.metric)
            if self.metric == "minkowski":
                d["p"] = self.p
            if self.recluster_noise:
                d.update(recluster_noise=True, rc_min_cluster_size=self.rc_min_cluster_size,
                         rc_min_samples=self.rc_min_samples)
        else:
            d["n_clusters"] = self.n_clusters
        if self.double_cluster:
            d.update(double_cluster=True, dc_eps=self.dc_eps, dc_min_samples=self.dc_min_samples)
        return d


class LabelCounts:
    """``n_clusters`` and ``n_noise`` of a result with ``labels`` (-1 = noise)."""

    @property
    def n_clusters(self) -> int:
        return int(len(np.unique(self.labels[self.labels >= 0])))

    @property
    def n_noise(self) -> int:
        return int((self.labels < 0).sum())


@dataclass(frozen=True)
class ClusterResult(LabelCounts):
    """``labels`` (n,): final labels (noise -1, reclustered noise gets labels after the others);
    ``noise`` (n,) bool: noise of the first clustering; ``reclustered`` (n,) bool: noise points
    that noise reclustering put into a cluster; ``halo`` (n,): DBSCAN labels of the double
    clustering (-1 where none or off)."""

    labels: np.ndarray
    noise: np.ndarray
    reclustered: np.ndarray
    halo: np.ndarray


    def cluster_sizes(self) -> dict[int, int]:
        values, counts = np.unique(self.labels[self.labels >= 0], return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}


def uses_graph(n_samples: int) -> bool:
    """Whether HDBSCAN on this many materials takes the neighbour-graph path (see :data:`EXACT_MAX`)."""
    return int(n_samples) > EXACT_MAX


def clustering_metric(params: ClusterParams) -> tuple[str, float]:
    """The distance a clustering works under: HDBSCAN's chosen metric; Euclidean for K-Means and
    GMM. Neighbours, medoids and subsets use it too."""
    if params.algo == "hdbscan":
        return check_metric(params.metric, params.p)
    return "euclidean", 2.0


def takes_matrix(params: ClusterParams, n_samples: int) -> bool:
    """Whether HDBSCAN runs on a full Minkowski distance matrix (not Euclidean, not the graph)."""
    return (params.algo == "hdbscan" and params.metric == "minkowski" and params.p != 2
            and not uses_graph(n_samples))
