"""Validation of clusterings. (DBCV, S_Dbw, cross-model AMI and the grid search are the
[evaluate] issue's; this module so far holds the external scores against known labels.)"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def clustering_accuracy(true_labels, pred_labels) -> float:
    """Fraction of points whose cluster maps to their label under the best one-to-one mapping of
    clusters to labels (Hungarian algorithm); clusters left without a label count as wrong."""
    true = np.unique(np.asarray(true_labels).astype(str), return_inverse=True)[1]
    pred = np.unique(np.asarray(pred_labels), return_inverse=True)[1]
    if len(true) == 0:
        return float("nan")
    table = np.zeros((pred.max() + 1, true.max() + 1), dtype=np.int64)
    np.add.at(table, (pred, true), 1)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(true))


def external_scores(true_labels, pred_labels) -> dict:
    """Accuracy, NMI and ARI of a clustering against known labels, (n,) each.

    ``*``: noise (-1) counted as one more cluster; ``*_no_noise``: noise points left out (all
    three are NaN when every point is noise, and ``noise_fraction`` says so).
    """
    true = np.asarray(true_labels).astype(str)
    pred = np.asarray(pred_labels)
    if true.shape != pred.shape:
        from backend.errors import ParameterError

        raise ParameterError(f"labels and clustering differ in length: {true.shape} vs {pred.shape}")
    keep = pred >= 0
    out = {"accuracy": clustering_accuracy(true, pred), "nmi": float(normalized_mutual_info_score(true, pred)),
           "ari": float(adjusted_rand_score(true, pred)), "noise_fraction": float(1 - keep.mean()) if len(pred) else 0.0}
    if keep.any():
        out.update(accuracy_no_noise=clustering_accuracy(true[keep], pred[keep]),
                   nmi_no_noise=float(normalized_mutual_info_score(true[keep], pred[keep])),
                   ari_no_noise=float(adjusted_rand_score(true[keep], pred[keep])))
    else:
        out.update(accuracy_no_noise=float("nan"), nmi_no_noise=float("nan"), ari_no_noise=float("nan"))
    return out
