"""Nearest neighbours of a material in fingerprint space, under the clustering's own metric.

Arrays in, arrays out (:func:`nearest_neighbours`), and the catalog-level entry point the app and
the CLI call (:func:`model_neighbours`). A distance's meaning: its place among all pairwise
distances of the model (:func:`distance_ranks`), since raw Minkowski p < 1 distances of
high-dimensional fingerprints are huge numbers without a unit. Distances are those of
:func:`backend.cluster.distance_matrix` (Minkowski with any p > 0, or Euclidean), so a
neighbour here is a neighbour for HDBSCAN too.
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from backend.cache import memoize_array
from backend.cluster.distances import check_metric, distances_from
from backend.cluster.models import _data_key
from backend.cluster.params import EXACT_MAX
from backend.data.catalog import Catalog
from backend.errors import ParameterError, check_count

#: above EXACT_MAX materials, the pairwise distances are those of this many random materials to all
PAIR_SAMPLE_ROWS = 500


def check_k(k, n_others: int, what: str = "the data") -> int:
    """``k`` as an int in 1..n_others, else a ParameterError that says the allowed range."""
    return check_count(k, "k", n_others,
                       too_many=f"k={{value}} is larger than the {n_others} other materials of {what}")


def material_index(names, material: str, what: str = "the data") -> int:
    """Position of ``material`` in ``names``; an unknown name raises with close matches."""
    names = [str(n) for n in names]
    try:
        return names.index(str(material))
    except ValueError:
        close = difflib.get_close_matches(str(material), names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ParameterError(f"material {material!r} is not in {what} ({len(names)} materials){hint}") from None


def nearest_neighbours(X: np.ndarray, index: int, k: int = 10, *, metric: str = "minkowski",
                       p: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``X`` (n, d) nearest row ``index`` (itself excluded, duplicates of it
    included at distance 0): their indices (k,) and distances (k,), nearest first (ties: the
    lower index first)."""
    metric, p = check_metric(metric, p)
    X = np.asarray(X, dtype=np.float64)
    if not 0 <= int(index) < len(X):
        raise ParameterError(f"index {index} is outside 0..{len(X) - 1}")
    k = check_k(k, len(X) - 1)
    d = distances_from(X, int(index), metric=metric, p=p)
    d[int(index)] = np.inf
    # argpartition finds the k smallest in O(n); the boundary ties are then settled by index
    cand = np.argpartition(d, k - 1)[:k]
    kth = d[cand].max()
    cand = np.flatnonzero(d <= kth)
    order = cand[np.lexsort((cand, d[cand]))][:k]
    return order, d[order]


def model_neighbours(catalog, model_id: str, material: str, *, k: int = 10, metric: str = "minkowski",
                     p: float = 0.2) -> pd.DataFrame:
    """The ``k`` nearest materials of ``material`` in a catalog model's fingerprints: a table of
    rank, material, distance and UMAP x/y, nearest first (unencoded models: their 2-D embedding,
    as the clustering uses)."""
    data = catalog.load(model_id)
    i = material_index(data.names, material, f"model {model_id}")
    k = check_k(k, len(data.names) - 1, f"model {model_id}")
    idx, dist = nearest_neighbours(data.X, i, k, metric=metric, p=p)
    return pd.DataFrame({"rank": np.arange(1, len(idx) + 1), "material": data.names[idx], "distance": dist,
                         "x": data.xy[idx, 0], "y": data.xy[idx, 1], "index": idx})


def pair_distances(X: np.ndarray, *, metric: str = "minkowski", p: float = 0.2, seed: int = 0) -> np.ndarray:
    """The distances between all pairs of rows of ``X`` (n, d), sorted ascending (n (n - 1) / 2,);
    above :data:`~backend.cluster.params.EXACT_MAX` rows, those of :data:`PAIR_SAMPLE_ROWS` random
    rows (``seed``) to all others, a sample of the same distribution."""
    metric, p = check_metric(metric, p)
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    if n <= EXACT_MAX:
        rows = [distances_from(X, i, metric=metric, p=p)[i + 1:] for i in range(n - 1)]
    else:
        picked = np.random.default_rng(seed).choice(n, PAIR_SAMPLE_ROWS, replace=False)
        rows = [np.delete(distances_from(X, int(i), metric=metric, p=p), int(i)) for i in picked]
    return np.sort(np.concatenate(rows)) if rows else np.zeros(0)


@memoize_array
def _model_pair_distances(catalog_root: str, model_id: str, data_key: tuple, metric: str, p: float) -> np.ndarray:
    return pair_distances(Catalog.at(catalog_root).load(model_id).X, metric=metric, p=p)


def distance_ranks(catalog, model_id: str, distances, *, metric: str = "minkowski", p: float = 0.2) -> pd.DataFrame:
    """Where each of ``distances`` (of the model's fingerprints under ``metric``) lies among all
    pairwise distances of the model: ``pair_rank`` (1 = no pair is closer), ``pairs`` (how many
    there are) and ``percentile`` (share of all pairs closer, in %). Cached per model and metric."""
    metric, p = check_metric(metric, p)
    allpairs = _model_pair_distances(str(catalog.root), model_id, _data_key(catalog, model_id), metric, p)
    d = np.asarray(distances, dtype=np.float64)
    closer = np.searchsorted(allpairs, d, side="left")
    return pd.DataFrame({"pair_rank": closer + 1, "pairs": len(allpairs),
                         "percentile": 100.0 * closer / max(len(allpairs), 1)})
