"""What a set of fingerprints knows: scores of an (n, d) feature array, with or without labels.

Arrays in, numbers out. Every labelled score uses folds made once by :func:`make_folds` and
passed in, so all feature sets of a report are scored on exactly the same splits.

- :func:`linear_probe`: mean k-fold accuracy of a standardised multinomial logistic regression
  (the linear-probe protocol of representation learning; the crystal-classifier study compares
  such a probe against a random and a majority-class classifier, :func:`chance_accuracy`);
  :func:`probe_predictions` gives its held-out predictions, whose NMI bounds what a clustering of
  the same features can be expected to score.
- clusterings are scored against labels by :func:`backend.cluster.validation.external_scores` (NMI, ARI,
  Hungarian accuracy), as the explorer and the evaluate page do.
- :func:`knn_agreement`: share of each material's k nearest neighbours that carry its label.
- :func:`map_trustworthiness`: how well a 2-D map keeps fingerprint neighbours
  (scikit-learn's ``trustworthiness``; needs no labels).
"""

from __future__ import annotations

import warnings

import numpy as np

from backend.errors import ParameterError

N_FOLDS = 5
SEED = 0


def check_labels(y, n_folds: int = N_FOLDS, where: str = "labels") -> np.ndarray:
    """``y`` as a 1-D string array, refused when a labelled score would mean nothing: a single
    class, or fewer materials than folds. ``where`` names the source in the message."""
    y = np.asarray(y).astype(str)
    if y.ndim != 1:
        raise ParameterError(f"{where}: labels must be one value per material, got shape {y.shape}")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ParameterError(f"{where}: a single class ({classes[0] if len(classes) else 'none'!r}) "
                             "leaves nothing to predict; labelled scores need two or more")
    if len(y) < n_folds:
        raise ParameterError(f"{where}: {len(y)} labelled materials are fewer than the {n_folds} folds")
    if counts.min() < 2:
        raise ParameterError(f"{where}: class {classes[counts.argmin()]!r} has a single material; "
                             "every class needs at least two for a held-out score")
    return y


def make_folds(y, n_folds: int = N_FOLDS, seed: int = SEED) -> np.ndarray:
    """(n,) fold index of every material: stratified, shuffled with a fixed seed. Classes with
    fewer members than folds are spread as far as they go (scikit-learn warns; we do not)."""
    from sklearn.model_selection import StratifiedKFold  # sklearn: ~2 s to import; not in a web process

    y = np.asarray(y)
    fold = np.empty(len(y), dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        for i, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
            fold[test] = i
    return fold


def _check_xy(X, y, folds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) != len(y) or len(folds) != len(y):
        raise ParameterError(f"features {X.shape}, labels ({len(y)},) and folds ({len(folds)},) must agree")
    return X, np.asarray(y), np.asarray(folds)


def fold_splits(folds: np.ndarray):
    for f in np.unique(folds):
        yield np.flatnonzero(folds != f), np.flatnonzero(folds == f)


def linear_probe(X, y, folds, *, C: float = 1.0) -> tuple[float, float]:
    """(mean, std) held-out accuracy over the folds of a logistic regression on standardised
    features. Constant features are harmless (the scaler leaves them at zero)."""
    accs, _ = probe_predictions(X, y, folds, C=C)
    return float(np.mean(accs)), float(np.std(accs))


def probe_predictions(X, y, folds, *, C: float = 1.0) -> tuple[list[float], np.ndarray]:
    """The linear probe of :func:`linear_probe` fold by fold: (each fold's held-out accuracy, the
    held-out prediction of every row). The predictions' NMI against ``y`` is what a clustering that
    grouped the rows as well as a supervised reader of the features would score."""
    # sklearn: ~2 s to import; not in a web process
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, folds = _check_xy(X, y, folds)
    accs, pred = [], np.empty(len(y), dtype=y.dtype)
    for train, test in fold_splits(folds):
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings on degenerate (collapsed) features
            probe.fit(X[train], y[train])
        pred[test] = probe.predict(X[test])
        accs.append(float((pred[test] == y[test]).mean()))
    return accs, pred


def heldout_nmi(y, pred) -> float:
    """NMI of held-out predictions ``pred`` against the labels ``y`` (sklearn's, arithmetic mean,
    as :func:`backend.cluster.validation.external_scores`)."""
    from sklearn.metrics import normalized_mutual_info_score  # sklearn: not in a web process

    return float(normalized_mutual_info_score(np.asarray(y).astype(str), np.asarray(pred).astype(str)))


def chance_accuracy(y, folds, strategy: str, *, seed: int = SEED) -> float:
    """Held-out accuracy of a classifier that ignores the features: ``"majority"`` predicts the
    training folds' most frequent class, ``"random"`` guesses uniformly (seeded)."""
    y, folds = np.asarray(y), np.asarray(folds)
    rng = np.random.default_rng(seed)
    accs = []
    for train, test in fold_splits(folds):
        classes, counts = np.unique(y[train], return_counts=True)
        if strategy == "majority":
            pred = np.full(len(test), classes[counts.argmax()])
        elif strategy == "random":
            pred = classes[rng.integers(0, len(classes), len(test))]
        else:
            raise ParameterError(f"strategy must be 'majority' or 'random', got {strategy!r}")
        accs.append(float((pred == y[test]).mean()))
    return float(np.mean(accs))


def kmeans_labels(X, k: int, seed: int = SEED) -> np.ndarray:
    """K-Means (k clusters, 10 restarts, fixed seed) on the features as they are."""
    from sklearn.cluster import KMeans  # sklearn: ~2 s to import; not in a web process

    X = np.asarray(X, dtype=np.float64)
    if k < 2 or k > len(X):
        raise ParameterError(f"k must be in 2..{len(X)}, got {k}")
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(X)


def knn_agreement(X, y, k: int = 10) -> float:
    """Mean share of each material's ``k`` nearest neighbours (Euclidean, itself excluded) that
    carry its label."""
    from sklearn.neighbors import NearestNeighbors  # sklearn: ~2 s to import; not in a web process

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    k = min(k, len(X) - 1)
    if k < 1:
        raise ParameterError("k-nearest-neighbour agreement needs at least two materials")
    idx = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X, return_distance=False)
    # drop the point itself (first unless duplicates tie with it)
    own = idx == np.arange(len(X))[:, None]
    keep = np.where(own.any(1, keepdims=True), ~own, np.arange(k + 1)[None] < k)
    neigh = idx[keep].reshape(len(X), k)
    return float((y[neigh] == y[:, None]).mean())


def map_trustworthiness(X, xy, k: int = 10) -> float:
    """scikit-learn's trustworthiness of the 2-D map ``xy`` of ``X`` (1 = every map neighbour
    is a fingerprint neighbour). ``k`` is capped below n / 2, as the function requires."""
    from sklearn.manifold import trustworthiness  # sklearn: ~2 s to import; not in a web process

    X = np.asarray(X, dtype=np.float64)
    k = min(k, (len(X) - 1) // 2)
    if k < 1:
        raise ParameterError("trustworthiness needs at least four materials")
    return float(trustworthiness(X, np.asarray(xy, dtype=np.float64), n_neighbors=k))
