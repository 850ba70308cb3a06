"""Nearest neighbours of a material in fingerprint space, under the clustering's own metric.

Arrays in, arrays out (:func:`nearest_neighbours`), and the catalog-level entry point the app and
the CLI call (:func:`model_neighbours`). Distances are those of
:func:`backend.cluster.distance_matrix` (Minkowski with any p > 0, or Euclidean), so a
neighbour here is a neighbour for HDBSCAN too.
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from backend.cluster.distances import check_metric, distances_from
from backend.errors import ParameterError, check_count


def check_k(k, n_others: int, what: str = "the data") -> int:
    """``k`` as an int in 1..n_others, else a ParameterError that says the allowed range."""
    return check_count(k, "k", n_others, f"k={{value}} is larger than the {n_others} other materials of {what}")


def material_index(names, material: str, what: str = "the data") -> int:
    """Position of ``material`` in ``names``; an unknown name raises with close matches."""
    names = [str(n) for n in names]
    try:
        return names.index(str(material))
    except ValueError:
        close = difflib.get_close_matches(str(material), names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ParameterError(f"material {material!r} is not in {what} ({len(names)} materials){hint}") from None


def nearest_neighbours(X: np.ndarray, index: int, k: int = 10, metric: str = "minkowski",
                       p: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``X`` (n, d) nearest row ``index`` (itself excluded, duplicates of it
    included at distance 0): their indices (k,) and distances (k,), nearest first (ties: the
    lower index first)."""
    metric, p = check_metric(metric, p)
    X = np.asarray(X, dtype=np.float64)
    if not 0 <= int(index) < len(X):
        raise ParameterError(f"index {index} is outside 0..{len(X) - 1}")
    k = check_k(k, len(X) - 1)
    d = distances_from(X, int(index), metric, p)
    d[int(index)] = np.inf
    # argpartition finds the k smallest in O(n); the boundary ties are then settled by index
    cand = np.argpartition(d, k - 1)[:k]
    kth = d[cand].max()
    cand = np.flatnonzero(d <= kth)
    order = cand[np.lexsort((cand, d[cand]))][:k]
    return order, d[order]


def model_neighbours(catalog, model_id: str, material: str, k: int = 10, metric: str = "minkowski",
                     p: float = 0.2) -> pd.DataFrame:
    """The ``k`` nearest materials of ``material`` in a catalog model's fingerprints: a table of
    rank, material, distance and UMAP x/y, nearest first (unencoded models: their 2-D embedding,
    as the clustering uses)."""
    data = catalog.load(model_id)
    i = material_index(data.names, material, f"model {model_id}")
    k = check_k(k, len(data.names) - 1, f"model {model_id}")
    idx, dist = nearest_neighbours(data.X, i, k, metric, p)
    return pd.DataFrame({"rank": np.arange(1, len(idx) + 1), "material": data.names[idx], "distance": dist,
                         "x": data.xy[idx, 0], "y": data.xy[idx, 1], "index": idx})
