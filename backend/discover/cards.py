"""Cluster cards: what a user needs to name a cluster.

Per cluster: its size, its **medoid** (the member with the smallest total distance to the other
members, under the clustering's own distances), the chemical elements that are
**over-represented** in it compared with the whole set (counts, shares and the hypergeometric
tail probability of seeing that many by chance), and, where the data root has known labels,
the **label mix**. Formulas are parsed as :mod:`backend.data.elements` does (pymatgen).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backend.cluster.models import cluster_model, model_matrix
from backend.data.elements import formula_elements
from backend.data.labels import load_labels

#: elements shown per card (most significant first), and the largest tail probability shown
TOP_ELEMENTS = 4
MAX_P_VALUE = 0.05


@dataclass(frozen=True)
class ClusterCard:
    """``cluster`` label; ``size``; ``medoid`` name and ``medoid_index`` (row in the model);
    ``elements``: [{element, count, share, overall_count, overall_share, p_value}], the
    over-represented ones, most significant first; ``labels``: {label: count} (largest first)
    or None without known labels."""

    cluster: int
    size: int
    medoid: str
    medoid_index: int
    elements: list = field(default_factory=list)
    labels: dict | None = None


def medoid(D: np.ndarray, members: np.ndarray) -> int:
    """The member (index into ``D`` (n, n)) nearest all the others: the smallest sum of
    distances to them (ties: the lower index)."""
    members = np.asarray(members)
    sums = D[np.ix_(members, members)].sum(axis=1)
    return int(members[int(np.argmin(sums))])


def enriched_elements(names, mask: np.ndarray, *, top: int = TOP_ELEMENTS, max_p: float = MAX_P_VALUE) -> list[dict]:
    """Elements more frequent among ``names[mask]`` than among all ``names``, with a
    hypergeometric tail probability <= ``max_p``, most significant first."""
    from scipy.stats import hypergeom  # scipy.stats: ~1 s to import; only when cards are made

    sets = [formula_elements(str(n)) for n in names]
    N, n = len(sets), int(mask.sum())
    overall: dict[str, int] = {}
    inside: dict[str, int] = {}
    for s, m in zip(sets, mask):
        for el in s:
            overall[el] = overall.get(el, 0) + 1
            if m:
                inside[el] = inside.get(el, 0) + 1
    rows = []
    for el, k in inside.items():
        K = overall[el]
        if k / n <= K / N:
            continue
        p_value = float(hypergeom.sf(k - 1, N, K, n))
        if p_value <= max_p:
            rows.append({"element": el, "count": k, "share": k / n, "overall_count": K, "overall_share": K / N,
                         "p_value": p_value})
    rows.sort(key=lambda r: (r["p_value"], -r["count"], r["element"]))
    return rows[:top]


def cluster_cards(names, labels, D: np.ndarray, *, known_labels=None) -> list[ClusterCard]:
    """One card per cluster (noise has none), largest first. ``names`` (n,), ``labels`` (n,),
    ``D`` (n, n) the clustering's distances; ``known_labels`` (n,) strings or None."""
    names = np.asarray(names)
    labels = np.asarray(labels)
    cards = []
    for k in np.unique(labels[labels >= 0]):
        mask = labels == k
        members = np.flatnonzero(mask)
        med = medoid(D, members)
        mix = None
        if known_labels is not None:
            values, counts = np.unique(np.asarray(known_labels)[members], return_counts=True)
            order = np.lexsort((values, -counts))
            mix = {str(values[i]): int(counts[i]) for i in order}
        cards.append(ClusterCard(cluster=int(k), size=len(members), medoid=str(names[med]), medoid_index=med,
                                 elements=enriched_elements(names, mask), labels=mix))
    cards.sort(key=lambda c: (-c.size, c.cluster))
    return cards


def model_cluster_cards(catalog, model_id: str, params, *, label_column: str | None = None) -> list[ClusterCard]:
    """The cards of a catalog model clustered with ``params`` (see :func:`cluster_cards`)."""
    data = catalog.load(model_id)
    result = cluster_model(catalog, model_id, params)
    known = None
    if label_column:
        known = load_labels(catalog, label_column, data.names)
    return cluster_cards(data.names, result.labels, model_matrix(catalog, model_id, params), known_labels=known)
