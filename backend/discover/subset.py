"""Representative subsets: N materials that cover the clusters in proportion.

The groups are the clusters, and the noise points as one group of their own. Every group first
gets its **medoid** (largest groups first, while N lasts); the rest of N is shared among the
groups in proportion to their sizes (largest remainders; a group never gets more than it
has), and each group is filled with the member **farthest from all materials chosen so far**
(farthest-first traversal under the clustering's own distances), so the subset spreads over
each group instead of piling up at its centre.

The **coverage** reached is the share of all materials within the median nearest-neighbour
distance of a chosen one; the **balance** is each group's share of the whole set next to its
share of the subset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from backend.cluster.models import cluster_model, model_matrix
from backend.discover.cards import medoid
from backend.errors import check_count

NOISE_GROUP = -1


@dataclass(frozen=True)
class SubsetResult:
    """``indices`` (N,) the chosen rows in the order chosen; ``roles`` (N,) 'medoid' or
    'farthest'; ``gaps`` (N,) each one's distance to the nearest material chosen before it (inf
    for the first); ``coverage`` share of materials within ``radius`` (the median
    nearest-neighbour distance) of a chosen one; ``balance`` one row per group (cluster, -1 the
    noise): size, share, chosen, chosen_share; ``warnings`` what the user should know."""

    indices: np.ndarray
    roles: np.ndarray
    gaps: np.ndarray
    coverage: float
    radius: float
    balance: pd.DataFrame
    warnings: list = field(default_factory=list)


def _check_size(size, n: int) -> int:
    return check_count(size, "subset size", n,
                       too_many=f"subset size {{value}} is larger than the data ({n} materials)")


def allocate(sizes: np.ndarray, total: int) -> np.ndarray:
    """Share ``total`` among groups of ``sizes`` in proportion to them (largest remainders, ties
    to the larger group, then the earlier one), never more than a group's size."""
    sizes = np.asarray(sizes, dtype=np.int64)
    out = np.zeros(len(sizes), dtype=np.int64)
    left = int(total)
    while left > 0:
        room = sizes - out
        open_ = room > 0
        if not open_.any():
            break
        quota = left * sizes * open_ / sizes[open_].sum()
        add = np.minimum(np.floor(quota).astype(np.int64), room)
        if add.sum() == 0:
            # the remainders: one each to the largest fractions
            frac = np.where(open_, quota - np.floor(quota), -1.0)
            order = np.lexsort((np.arange(len(sizes)), -sizes, -frac))
            for g in order[:left]:
                if room[g] > 0:
                    add[g] += 1
        out += add
        left = int(total) - int(out.sum())
    return out


def coverage(D: np.ndarray, chosen: np.ndarray) -> tuple[float, float]:
    """(share of the materials within the median nearest-neighbour distance of a chosen one,
    that radius)."""
    Dn = np.array(D, dtype=float)
    np.fill_diagonal(Dn, np.inf)
    radius = float(np.median(Dn.min(axis=1)))
    reach = np.asarray(D)[:, np.asarray(chosen)].min(axis=1)
    return float((reach <= radius).mean()), radius


def representative_subset(D: np.ndarray, labels, size: int) -> SubsetResult:
    """Choose ``size`` rows of the distance matrix ``D`` (n, n) given cluster ``labels`` (n,)
    (-1 noise, one group); see the module's docstring."""
    D = np.asarray(D)
    labels = np.asarray(labels)
    n = len(labels)
    size = _check_size(size, n)
    groups = np.where(labels < 0, NOISE_GROUP, labels)
    ids, sizes = np.unique(groups, return_counts=True)
    order = np.lexsort((ids, -sizes))  # largest group first
    ids, sizes = ids[order], sizes[order]
    warnings = []
    n_med = min(size, len(ids))
    if n_med < len(ids):
        warnings.append(f"{size} materials cannot cover {len(ids)} groups: the {len(ids) - n_med} smallest "
                        "groups have no member in the subset")
    quota = np.zeros(len(ids), dtype=np.int64)
    quota[:n_med] = 1
    quota += allocate(np.where(np.arange(len(ids)) < n_med, sizes - 1, 0), size - n_med)

    chosen, roles, gaps = [], [], []
    nearest = np.full(n, np.inf)  # distance of every material to the nearest chosen one
    for g in range(n_med):
        members = np.flatnonzero(groups == ids[g])
        m = medoid(D, members)
        chosen.append(m), roles.append("medoid"), gaps.append(nearest[m])
        nearest = np.minimum(nearest, D[m])
    for g in range(len(ids)):
        members = np.flatnonzero(groups == ids[g])
        for _ in range(int(quota[g]) - (1 if g < n_med else 0)):
            pick = members[np.lexsort((members, -nearest[members]))[0]]
            chosen.append(int(pick)), roles.append("farthest"), gaps.append(nearest[pick])
            nearest = np.minimum(nearest, D[pick])
    chosen = np.array(chosen, dtype=np.int64)
    cov, radius = coverage(D, chosen)
    got = pd.Series(groups[chosen]).value_counts()
    balance = pd.DataFrame({"cluster": ids, "size": sizes, "share": sizes / n,
                            "chosen": [int(got.get(g, 0)) for g in ids]})
    balance["chosen_share"] = balance["chosen"] / size
    return SubsetResult(indices=chosen, roles=np.array(roles), gaps=np.array(gaps, dtype=float), coverage=cov,
                        radius=radius, balance=balance, warnings=warnings)


def model_subset(catalog, model_id: str, params, *, size: int) -> tuple[pd.DataFrame, SubsetResult]:
    """A representative subset of a catalog model clustered with ``params``: (the table of the
    chosen materials: rank, material, cluster, role, gap, x, y; the result)."""
    data = catalog.load(model_id)
    size = _check_size(size, len(data.names))
    result = cluster_model(catalog, model_id, params)
    sub = representative_subset(model_matrix(catalog, model_id, params), result.labels, size)
    return subset_table(data, result.labels, sub, model_id=model_id), sub


def subset_table(data, labels, sub: SubsetResult, *, model_id: str) -> pd.DataFrame:
    i = sub.indices
    return pd.DataFrame({"rank": np.arange(1, len(i) + 1), "material": data.names[i], "cluster": np.asarray(labels)[i],
                         "role": sub.roles, "distance_to_chosen": sub.gaps, "x": data.xy[i, 0], "y": data.xy[i, 1],
                         "model_id": model_id})
