"""The fingerprint-quality chart stays readable at any number of models: reference lines named
without overlapping labels, models named by what tells them apart (never taller than the plot),
the full id on hover."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backend.autoencoder.config import STUDY_RECIPE, paper_grid
from components.quality_panels import CHAR_PX, LABEL_GAP, MAX_TICK_CHARS, model_labels, quality_figure

STUDY_IDS = [c.model_id for c in paper_grid(**STUDY_RECIPE)]  # the study's 216 ids


def report(model_ids, windows=(1,)) -> pd.DataFrame:
    """A report table of the models with crowded references: eight baselines within a few
    hundredths of each other, chance levels and a ceiling, per window."""
    rng = np.random.default_rng(0)
    rows = [{"feature_set": m, "kind": "model", "window": float(m.split("window")[1].split("eV")[0]),
             "objective": "reconstruction", "probe_acc": rng.uniform(0.6, 0.9)} for m in model_ids]
    for w in windows:
        untrained = [(a, z) for a in (18, 50) for z in (1, 2, 3)]
        rows += [{"feature_set": f"untrained resnet{a} latent{z} 224px", "kind": "baseline", "window": float(w),
                  "probe_acc": 0.70 + 0.004 * i} for i, (a, z) in enumerate(untrained)]
        rows += [{"feature_set": "pixels (PCA-50)", "kind": "baseline", "window": float(w), "probe_acc": 0.71},
                 {"feature_set": "unencoded UMAP (2-D)", "kind": "baseline", "window": float(w), "probe_acc": 0.705},
                 {"feature_set": "majority class", "kind": "chance", "window": float(w), "probe_acc": 0.25},
                 {"feature_set": "random class", "kind": "chance", "window": float(w), "probe_acc": 0.26},
                 {"feature_set": "supervised CNN (ceiling)", "kind": "ceiling", "window": float(w), "probe_acc": 0.95}]
    return pd.DataFrame(rows).assign(objective=lambda t: t.objective.fillna(""))


def plot_height(fig) -> float:
    return fig.layout.height - fig.layout.margin.t - fig.layout.margin.b


@pytest.mark.parametrize("n", [1, 3, 72, 216])
def test_reference_labels_never_overlap(n):
    windows = (1, 2, 3) if n == 216 else (1,)
    ids = [m for m in STUDY_IDS if n == 216 or "window1eV" in m][:n]
    fig = quality_figure(report(ids, windows), "probe_acc")
    lo, hi = fig.layout.yaxis.range
    h = plot_height(fig)
    labels = sorted((a.y - lo) / (hi - lo) * h - a.ay for a in fig.layout.annotations)
    assert len(labels) == 11 * len(windows)
    assert min(np.diff(labels)) >= LABEL_GAP - 1e-6
    assert min(labels) >= -1e-6 and max(labels) <= h + 1e-6  # all beside the plot


@pytest.mark.parametrize("n", [1, 3, 72, 216])
def test_model_names_are_short_never_taller_than_the_plot_and_whole_on_hover(n):
    ids = [m for m in STUDY_IDS if n == 216 or "window1eV" in m][:n]
    fig = quality_figure(report(ids, (1, 2, 3) if n == 216 else (1,)), "probe_acc")
    ticks = [x for trace in fig.data for x in trace.x]
    assert len(set(ticks)) == n  # one name per model
    hover = {c[0] for trace in fig.data for c in trace.customdata}
    assert hover == set(ids)  # the full id on hover
    if fig.layout.xaxis.tickangle == 0:  # lying flat, across the plot's width
        assert n <= 3
    else:
        assert max(map(len, ticks)) <= MAX_TICK_CHARS
        assert max(map(len, ticks)) * CHAR_PX < plot_height(fig) / 2
        assert fig.layout.margin.b < plot_height(fig)


def test_labels_keep_what_tells_models_apart_and_say_what_they_share():
    three = ["resnet50_latent3_window1eV_steps30_split1.0_width1", "resnet50_latent3_window1eV_steps90_split1.0_width1",
             "resnet50_latent3_window1eV_steps120_split1.0_width1"]
    labels, shared, key = model_labels(three, long=True)
    assert list(labels.values()) == ["30 epochs", "90 epochs", "120 epochs"]
    assert shared == "ResNet-50, latent 3, window 1 eV, validation split 0.1, line width 1"
    labels, shared, key = model_labels([m for m in STUDY_IDS if "window1eV" in m])
    assert labels["resnet18_latent2_window1eV_steps60_split5.0_width1"] == "R18 L2 60ep v0.5"
    assert shared == "window 1 eV, line width 1" and "R: ResNet depth" in key and "v: validation split" in key
    one, _, _ = model_labels(three[:1], long=True)
    assert one[three[0]] == "ResNet-50, latent 3, window 1 eV, 90 epochs, validation split 0.1, line width 1".replace(
        "90", "30")
    fig = quality_figure(report(three), "probe_acc")
    assert fig.layout.xaxis.title.text.startswith("3 models, all ResNet-50, latent 3, window 1 eV")
