"""The fingerprint-quality report: its metrics against scikit-learn, its folds, that it can fail
(separable data near 1, shuffled labels near chance), and the report on the committed demo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import trustworthiness
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from backend.errors import ParameterError
from backend.quality import metrics


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=200, centers=4, n_features=8, cluster_std=1.0, random_state=0)
    return X, np.array([f"c{v}" for v in y])


def test_probe_equals_sklearn_cross_validation(blobs):
    X, y = blobs
    folds = metrics.make_folds(y)
    # the same splits as StratifiedKFold(5, shuffle, seed 0) in scikit-learn's own cross-validation
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    ref = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)), X, y, cv=cv)
    mean, std = metrics.linear_probe(X, y, folds)
    assert mean == pytest.approx(ref.mean(), abs=1e-12) and std == pytest.approx(ref.std(), abs=1e-12)


def test_probe_predictions_are_the_probes_and_their_nmi_reads_as_a_clustering(blobs):
    X, y = blobs
    folds = metrics.make_folds(y)
    accs, pred = metrics.probe_predictions(X, y, folds)
    assert np.mean(accs) == metrics.linear_probe(X, y, folds)[0]
    assert (pred == y).mean() == pytest.approx(np.mean(accs), abs=0.01)  # equal folds: equal weights
    assert metrics.heldout_nmi(y, pred) == pytest.approx(normalized_mutual_info_score(y, pred))
    assert metrics.heldout_nmi(y, pred) > 0.9
    shuffled = np.random.default_rng(0).permutation(y)
    _, spred = metrics.probe_predictions(X, shuffled, metrics.make_folds(shuffled))
    assert metrics.heldout_nmi(shuffled, spred) < 0.1


def test_folds_are_stratified_and_fixed(blobs):
    _, y = blobs
    a, b = metrics.make_folds(y), metrics.make_folds(y)
    assert np.array_equal(a, b) and set(a) == set(range(5))
    for f in range(5):  # each fold holds a fifth of every class
        counts = pd.Series(y[a == f]).value_counts()
        assert counts.min() >= 9 and counts.max() <= 11
    assert not np.array_equal(a, metrics.make_folds(y, seed=1))


def test_separable_scores_near_one_and_shuffled_labels_near_chance(blobs):
    X, y = blobs
    folds = metrics.make_folds(y)
    assert metrics.linear_probe(X, y, folds)[0] > 0.97
    assert metrics.knn_agreement(X, y) > 0.95
    shuffled = np.random.default_rng(0).permutation(y)
    sfolds = metrics.make_folds(shuffled)
    acc = metrics.linear_probe(X, shuffled, sfolds)[0]
    assert abs(acc - 0.25) < 0.1, acc
    assert abs(metrics.knn_agreement(X, shuffled) - 0.25) < 0.06
    assert metrics.chance_accuracy(y, folds, "majority") == pytest.approx(0.25, abs=0.02)
    assert abs(metrics.chance_accuracy(y, folds, "random") - 0.25) < 0.1


def test_knn_agreement_and_trustworthiness_match_brute_force(blobs):
    X, y = blobs
    from scipy.spatial.distance import cdist

    D = cdist(X, X)
    np.fill_diagonal(D, np.inf)
    nearest = np.argsort(D, axis=1)[:, :10]
    assert metrics.knn_agreement(X, y, 10) == pytest.approx((y[nearest] == y[:, None]).mean())
    xy = X[:, :2]
    assert metrics.map_trustworthiness(X, xy, 10) == pytest.approx(trustworthiness(X, xy, n_neighbors=10))


def test_cluster_scores_match_sklearn(blobs):
    from backend.cluster.validation import external_scores

    X, y = blobs
    pred = metrics.kmeans_labels(X, 4)
    s = external_scores(y, pred)
    assert s["nmi"] == pytest.approx(normalized_mutual_info_score(y, pred))
    assert s["ari"] == pytest.approx(adjusted_rand_score(y, pred))
    assert s["nmi"] > 0.95


@pytest.mark.parametrize("y, message", [
    (["a"] * 10, "single class"),
    (["a", "b", "a"], "fewer than the 5 folds"),
    (["a"] * 9 + ["b"], "single material"),
])
def test_labels_that_cannot_be_scored_are_refused(y, message):
    with pytest.raises(ParameterError, match=message):
        metrics.check_labels(y, where="labels.csv column 'family'")


# ---- the report on real data --------------------------------------------------------------------

from tests.conftest import PROJECT, copy_models, demo_model  # noqa: E402


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    """The report of the committed demo's 3 eV model with labels (no ceiling: the slowest part)."""
    from backend.data.catalog import Catalog
    from backend.quality import QualitySpec, quality_report

    cache = tmp_path_factory.mktemp("cache")
    cat = Catalog(PROJECT)
    return quality_report(cat, [demo_model(3)], QualitySpec(labels="family", ceiling=False), cache_dir=cache), cache


def test_report_reads_every_model_against_its_baselines(demo_report):
    result, _ = demo_report
    t = result.table
    assert set(t.kind) == {"model", "baseline", "chance"}
    names = set(t.feature_set)
    assert {"unencoded UMAP (2-D)", "pixels 128px (PCA-50)", "pixels 224px (PCA-50)", "untrained resnet18 latent3 128px ch16 2 parts",
            "majority class",
            "random class"} <= names
    for col in ("probe_acc", "probe_nmi", "kmeans_nmi", "kmeans_acc", "knn_agreement"):
        assert t[col].dropna().between(0, 1).all()
    assert t.probe_nmi[t.kind != "chance"].notna().all()
    assert t.loc[t.feature_set == "majority class", "probe_nmi"].item() == 0
    assert (t.n[t.kind != "chance"] == 600).all()
    families = pd.read_csv(PROJECT / "labels.csv")["family"]  # as many materials in each
    assert t.loc[t.feature_set == "majority class", "probe_acc"].item() == pytest.approx(1 / families.nunique())
    model = t[t.kind == "model"].iloc[0]
    assert model.dim == 2 * 4 * 4 * 3 and 0 < model.trustworthiness <= 1 and model.distinct == 1.0
    # the untrained baseline is the model's own network: as many numbers, from as many parts
    assert t.loc[t.feature_set == "untrained resnet18 latent3 128px ch16 2 parts", "dim"].item() == model.dim
    # the baselines read as they should: pixels carry more than chance, a 2-D map less than 50 PCs
    pixels = t[t.feature_set == "pixels 128px (PCA-50)"].iloc[0]
    assert pixels.probe_acc > 1 / families.nunique() + 0.1 and pixels.probe_acc > t.loc[t.feature_set == "random class", "probe_acc"].item()


def test_report_rows_are_cached_and_equal(demo_report):
    from backend.data.catalog import Catalog
    from backend.quality import QualitySpec, quality_report

    result, cache = demo_report
    again = quality_report(Catalog(PROJECT), [demo_model(3)], QualitySpec(labels="family", ceiling=False),
                           cache_dir=cache)
    assert again.timings["cached_rows"] == len(again.table) - 2  # every row but the two chance rows
    pd.testing.assert_frame_equal(again.table, result.table)


def test_every_feature_set_uses_the_same_folds(monkeypatch, tmp_path):
    """The probe of every row sees one fold assignment per material."""
    from backend.data.catalog import Catalog
    from backend.quality import QualitySpec, quality_report
    from backend.quality import report as report_mod

    seen = []
    real = metrics.probe_predictions

    def spy(X, y, folds, **kw):
        seen.append(tuple(np.asarray(folds)))
        return real(X, y, folds, **kw)

    monkeypatch.setattr(report_mod, "probe_predictions", spy)
    quality_report(Catalog(PROJECT), [demo_model(3)], QualitySpec(labels="family", ceiling=False), cache_dir=tmp_path)
    # model, unencoded map, pixels at 64 and 224 px, untrained network
    assert len(seen) == 5 and len(set(seen)) == 1


def _labelled_root(tmp_path, labels: pd.DataFrame):
    root = copy_models(PROJECT, tmp_path / "root", [demo_model(3)])
    labels.to_csv(root / "labels.csv", index=False)
    return root


def test_labels_for_some_materials_use_the_overlap_and_say_so(tmp_path):
    from backend.data.catalog import Catalog
    from backend.quality import QualitySpec, quality_report

    labels = pd.read_csv(PROJECT / "labels.csv")
    part = pd.concat([labels.iloc[:500], pd.DataFrame({"material": ["not_in_the_model"], "family": ["kagome"]})])
    root = _labelled_root(tmp_path, part)
    result = quality_report(Catalog(root), [demo_model(3)], QualitySpec(labels="family", baselines=False),
                            cache_dir=tmp_path / "cache")
    assert result.table.n.tolist() == [500]
    assert any("labels 500 of the 600 materials" in w for w in result.warnings), result.warnings
    assert any("1 labelled materials are not among the 600" in w and "not_in_the_model" in w
               for w in result.warnings), result.warnings


def test_bad_label_columns_are_named(tmp_path):
    from backend.data.catalog import Catalog
    from backend.quality import QualitySpec, quality_report

    labels = pd.read_csv(PROJECT / "labels.csv")
    root = _labelled_root(tmp_path, labels.assign(single="x"))
    cat = Catalog(root)
    with pytest.raises(ParameterError, match=r"label column 'colour' not in .*labels.csv"):
        quality_report(cat, [demo_model(3)], QualitySpec(labels="colour", baselines=False), cache_dir=tmp_path)
    with pytest.raises(ParameterError, match=r"labels.csv, column 'single'.*single class"):
        quality_report(cat, [demo_model(3)], QualitySpec(labels="single", baselines=False), cache_dir=tmp_path)
    few = _labelled_root(tmp_path / "few", labels.iloc[:3])
    with pytest.raises(ParameterError, match="fewer than the 5 folds"):
        quality_report(Catalog(few), [demo_model(3)], QualitySpec(labels="family", baselines=False),
                       cache_dir=tmp_path)


def test_untrained_baseline_is_the_models_network_part_by_part():
    """A two-part fingerprint of random encoders at the model's width: part 1 is the one-part
    network's (same seed), part 2 another draw; the width changes the features, not their number."""
    from backend.quality.baselines import untrained_fingerprints

    ink = (np.random.default_rng(0).random((6, 1, 64, 64)) < 0.05).astype(np.uint8)
    one = untrained_fingerprints(ink, "resnet18", [1, 3], image_size=64, channels=16)
    two = untrained_fingerprints(ink, "resnet18", [1, 3], image_size=64, channels=16, parts=2)
    wide = untrained_fingerprints(ink, "resnet18", [3], image_size=64)
    for z in (1, 3):
        assert one[z].shape == (6, z * 2 * 2) and two[z].shape == (6, 2 * z * 2 * 2)
        np.testing.assert_array_equal(two[z][:, :z * 4], one[z])
        assert not np.allclose(two[z][:, z * 4:], one[z])
    assert wide[3].shape == one[3].shape and not np.allclose(wide[3], one[3])
