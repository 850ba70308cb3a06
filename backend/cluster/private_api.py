"""The private functions of hdbscan and scikit-learn that bandscape calls, in one place.

Why each is needed, and what the public API lacks:

* hdbscan's ``_hdbscan_generic`` and ``_tree_to_labels``: ``HDBSCAN(metric='precomputed')``
  builds the single-linkage tree and cuts it in one call; kept apart, one tree serves every
  ``min_cluster_size`` (the explorer's slider, the grid search's rows) and a cut costs
  milliseconds instead of a new tree.
* hdbscan's ``_hdbscan_linkage.label``: the single-linkage tree of a spanning tree that bandscape
  builds itself from a kNN graph (:mod:`backend.cluster.graph_hdbscan`).
* scikit-learn's ``expected_mutual_information``: the compiled kernel of
  ``adjusted_mutual_info_score``, called on a contingency table that is already counted (the
  cross-model AMI of a grid search computes thousands of them).

Every call passes its arguments by keyword, so an inserted parameter (hdbscan 0.8.44 added one
to ``_tree_to_labels``) cannot shift them. ``tests/test_private_api.py`` compares each wrapper with
the library's public result. A private name that is gone raises :class:`PrivateAPIError`, which
names the library, its installed version and the tested range in ``requirements.txt``.
"""

from __future__ import annotations

import importlib
from importlib import metadata

import numpy as np

from backend.errors import BandscapeError

#: the versions these wrappers are tested with (the bounds in requirements.txt)
TESTED = {"hdbscan": ">=0.8.40,<0.9", "scikit-learn": ">=1.5,<1.10"}


class PrivateAPIError(BandscapeError):
    """A private function bandscape wraps is not in the installed library."""


def _private(module: str, name: str, dist: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = "not installed"
        raise PrivateAPIError(
            f"{module}.{name} is missing from {dist} {version}: bandscape is tested with {dist}{TESTED[dist]} "
            f"(pip install '{dist}{TESTED[dist]}')") from exc


def hdbscan_single_linkage_tree(D: np.ndarray, *, min_samples: int) -> np.ndarray:
    """HDBSCAN's single-linkage tree (n - 1, 4) of the mutual-reachability graph of the distance
    matrix ``D`` (n, n); what ``HDBSCAN(metric='precomputed')`` builds. ``D`` is overwritten."""
    generic = _private("hdbscan.hdbscan_", "_hdbscan_generic", "hdbscan")
    tree, _ = generic(X=D, min_samples=int(min_samples), alpha=1.0, metric="precomputed")
    return tree


def hdbscan_tree_labels(tree: np.ndarray, *, min_cluster_size: int, selection: str) -> np.ndarray:
    """HDBSCAN's labels (n,) from a single-linkage tree, condensed at ``min_cluster_size`` and
    selected by ``selection`` ('leaf' or 'eom'): the labels ``fit_predict`` returns."""
    to_labels = _private("hdbscan.hdbscan_", "_tree_to_labels", "hdbscan")
    labels = to_labels(X=None, single_linkage_tree=tree, min_cluster_size=int(min_cluster_size),
                       cluster_selection_method=selection, allow_single_cluster=False,
                       match_reference_implementation=False, cluster_selection_epsilon=0.0)[0]
    return np.asarray(labels, dtype=np.int64)


def hdbscan_label_spanning_tree(mst: np.ndarray) -> np.ndarray:
    """The single-linkage tree (n - 1, 4) of a minimum spanning tree given as (n - 1, 3) edges
    ``a, b, weight`` sorted by weight."""
    label = _private("hdbscan._hdbscan_linkage", "label", "hdbscan")
    return label(L=mst)


def expected_mutual_information(contingency: np.ndarray, *, n_samples: int) -> float:
    """The expected mutual information of two labelings under the permutation model, from their
    contingency table (r, c) int64 (scikit-learn's kernel)."""
    emi = _private("sklearn.metrics.cluster._expected_mutual_info_fast", "expected_mutual_information",
                   "scikit-learn")
    return float(emi(contingency=contingency, n_samples=int(n_samples)))
