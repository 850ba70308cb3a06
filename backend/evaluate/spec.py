"""What a grid search covers and what it returns: :class:`GridSpec` (the cells, the metric,
the selection), :class:`GridResult` (the per-model, per-cell and ranking tables with every
model's labels), and the key that names a search in the cache and the jobs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from backend.cache import file_signature
from backend.cluster.distances import check_metric
from backend.cluster.params import SELECTIONS
from backend.discover.explorer_view import explorer_url
from backend.errors import ParameterError
from backend.fileio import json_digest

PAPER_RANGE = tuple(range(2, 11))


CACHE_VERSION = 3  # 3: DBCV takes hdbscan.validity's tree among equal-weight MSTs


#: a model whose distinct fingerprints number fewer than this fraction of its materials has
#: collapsed (its encoder maps almost everything to a few points; on the shared data one model
#: has 2 distinct fingerprints for 546 materials): its clusters of duplicates get DBCV = 1 in
#: every cell, so it is flagged and left out of the cell maxima
COLLAPSED_FRACTION = 0.1


def is_collapsed(n_distinct: int, n: int) -> bool:
    """Whether a model whose ``n`` materials have ``n_distinct`` distinct fingerprints has
    collapsed (:data:`COLLAPSED_FRACTION`): the one test the evaluate page and the explorer use."""
    return int(n_distinct) < COLLAPSED_FRACTION * int(n)


#: a clustering takes part in the cell maxima only with at least this many clusters
MIN_CLUSTERS = 2


@dataclass(frozen=True)
class GridSpec:
    """The HDBSCAN grid: every ``min_samples`` x every ``min_cluster_size``, one selection method
    and one metric (the paper's: 2..10 x 2..10, leaf, Minkowski p = 0.2)."""

    min_samples: tuple = PAPER_RANGE
    min_cluster_size: tuple = PAPER_RANGE
    selection: str = "leaf"
    metric: str = "minkowski"
    p: float = 0.2

    def validate(self, n_samples: int | None = None) -> "GridSpec":
        metric, p = check_metric(self.metric, self.p)
        if self.selection not in SELECTIONS:
            raise ParameterError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        ms = _int_tuple("min_samples", self.min_samples, 1)
        mcs = _int_tuple("min_cluster_size", self.min_cluster_size, 2)
        if n_samples is not None:
            if max(ms) >= n_samples:
                raise ParameterError(f"min_samples up to {max(ms)} needs more than {n_samples} materials")
            if max(mcs) > n_samples:
                raise ParameterError(f"min_cluster_size up to {max(mcs)} exceeds the {n_samples} materials")
        return dataclasses.replace(self, min_samples=ms, min_cluster_size=mcs, metric=metric, p=p)

    def key(self) -> dict:
        return {"min_samples": list(self.min_samples), "min_cluster_size": list(self.min_cluster_size),
                "selection": self.selection, "metric": self.metric, "p": self.p if self.metric == "minkowski" else None}

    def explorer_query(self, model_id: str, min_samples: int, min_cluster_size: int) -> str:
        """The explorer URL (query part) that opens ``model_id`` clustered as in this cell."""
        return explorer_url(model=model_id, algo="hdbscan", min_cluster_size=min_cluster_size,
                            min_samples=min_samples, selection=self.selection, metric=self.metric,
                            p=self.p if self.metric == "minkowski" else None)


def _int_tuple(name: str, values, low: int) -> tuple:
    try:
        out = tuple(sorted({int(v) for v in values}))
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be integers >= {low}, got {values!r}") from None
    if not out:
        raise ParameterError(f"{name}: the range is empty")
    if out[0] < low:
        raise ParameterError(f"{name} must be integers >= {low}, got {out[0]}")
    return out


def parse_range(text: str, name: str = "range") -> tuple:
    """``'2:10'`` (inclusive), ``'2:10:2'``, ``'3,5,8'`` or ``'4'`` -> a tuple of ints."""
    text = str(text).strip()
    try:
        if ":" in text:
            parts = [int(x) for x in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            step = parts[2] if len(parts) == 3 else 1
            if step < 1 or parts[1] < parts[0]:
                raise ValueError
            return tuple(range(parts[0], parts[1] + 1, step))
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ParameterError(f"{name}: {text!r} is not a range like 2:10, 2:10:2 or 3,5,8") from None


@dataclass
class GridResult:
    """The tables of one search.

    ``per_model``: one row per (model, min_samples, min_cluster_size): n_clusters, n_noise,
    dbcv, s_dbw, mean_ami, mean_ami_no_noise and the model's hyperparameters.
    ``cells``: one row per cell: the best DBCV, mean AMI and mean AMI without noise, and the
    model of each. ``ranking``: one row per model over the whole grid. ``labels``: (m, S, C, n)
    the clusterings, materials in the order of ``materials``. ``warnings``: what the user should
    know (e.g. AMI needs two models).
    """

    spec: GridSpec
    models: list
    materials: np.ndarray
    labels: np.ndarray
    per_model: pd.DataFrame
    cells: pd.DataFrame
    ranking: pd.DataFrame
    warnings: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    def cell(self, min_samples: int, min_cluster_size: int) -> pd.DataFrame:
        """The per-model rows of one cell."""
        t = self.per_model
        return t[(t.min_samples == min_samples) & (t.min_cluster_size == min_cluster_size)]

    def cell_labels(self, model_id: str, min_samples: int, min_cluster_size: int) -> np.ndarray:
        i = self.models.index(model_id)
        return self.labels[i, self.spec.min_samples.index(min_samples),
                           self.spec.min_cluster_size.index(min_cluster_size)].astype(np.int64)


def search_key(catalog, model_ids, spec: GridSpec) -> str:
    """What identifies a search's result: the root, the models (with their files' signatures, so
    that a rewritten file makes a new search) and the grid."""
    files = []
    for mid in model_ids:
        info = catalog.get(mid)
        files.append([file_signature(p) for p in (info.fingerprint_path, info.embedding_path) if p is not None])
    return json_digest({"v": CACHE_VERSION, "root": str(catalog.root), "models": list(model_ids),
                    "spec": spec.validate().key(), "files": files})


def spec_from_key(key: dict) -> GridSpec:
    """The inverse of :meth:`GridSpec.key`."""
    return GridSpec(min_samples=tuple(key["min_samples"]), min_cluster_size=tuple(key["min_cluster_size"]),
                    selection=key["selection"], metric=key["metric"],
                    p=key["p"] if key.get("p") is not None else GridSpec.p).validate()
