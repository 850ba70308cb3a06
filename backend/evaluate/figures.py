"""Figures and files of a grid search (:mod:`backend.evaluate.grid`): the Plotly figures the
evaluate page shows, and the CSV / PNG / HTML report the ``evaluate`` command writes.

Grids are drawn as heat maps with min_cluster_size across and min_samples up, as in the study.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from backend.fileio import atomic_path, write_csv_atomic, write_text_atomic

#: the cell maxima: column of ``GridResult.cells`` -> title
CELL_PANELS = (("best_dbcv", "best DBCV"), ("best_mean_ami", "best mean AMI (noise as a cluster)"),
               ("best_mean_ami_no_noise", "best mean AMI (noise removed)"))
#: the per-model grid: column of ``GridResult.per_model`` -> title
MODEL_PANELS = (("n_noise", "noise points"), ("n_clusters", "clusters"), ("dbcv", "DBCV"),
                ("s_dbw", "S_Dbw (lower is better)"))


def _matrix(frame: pd.DataFrame, spec, column: str) -> np.ndarray:
    z = np.full((len(spec.min_samples), len(spec.min_cluster_size)), np.nan, dtype=object)
    ms_pos = {v: i for i, v in enumerate(spec.min_samples)}
    mcs_pos = {v: j for j, v in enumerate(spec.min_cluster_size)}
    for ms, mcs, value in zip(frame.min_samples, frame.min_cluster_size, frame[column]):
        z[ms_pos[ms], mcs_pos[mcs]] = value
    return z


def _finite(z: np.ndarray) -> np.ndarray:
    out = np.array(z, dtype=float)
    out[~np.isfinite(out)] = np.nan  # S_Dbw's inf (undefined) shows as an empty cell
    return out


def cell_maxima_figure(result, selected: tuple[int, int] | None = None):
    """Three heat maps of the cell maxima; hovering a cell names the model that reaches it."""
    # plotly: only for the page's figures (the CLI's search draws none)
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    spec = result.spec
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, t in CELL_PANELS], horizontal_spacing=0.09)
    for k, (col, title) in enumerate(CELL_PANELS, start=1):
        z = _finite(_matrix(result.cells, spec, col))
        models = _matrix(result.cells, spec, f"{col}_model")
        fig.add_trace(go.Heatmap(
            z=z, x=list(spec.min_cluster_size), y=list(spec.min_samples), customdata=models,
            colorscale="Viridis", colorbar=dict(x=0.285 + 0.36 * (k - 1), len=0.9, thickness=10),
            hovertemplate=f"{title}: %{{z:.4f}}<br>min_samples=%{{y}}, min_cluster_size=%{{x}}"
                          "<br>%{customdata}<extra></extra>", name=title), row=1, col=k)
        fig.update_xaxes(title_text="min_cluster_size", dtick=1, row=1, col=k)
        fig.update_yaxes(title_text="min_samples" if k == 1 else None, dtick=1, row=1, col=k)
    if selected is not None:
        for k in range(1, 4):
            fig.add_shape(type="rect", x0=selected[1] - 0.5, x1=selected[1] + 0.5, y0=selected[0] - 0.5,
                          y1=selected[0] + 0.5, line=dict(color="red", width=2), row=1, col=k)
    fig.update_layout(height=360, margin=dict(l=50, r=20, t=40, b=40), clickmode="event")
    return fig


def model_grid_figure(result, model_id: str):
    """Noise, clusters, DBCV and S_Dbw of one model over the grid (four heat maps)."""
    # plotly: only for the page's figures (the CLI's search draws none)
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    spec = result.spec
    rows = result.per_model[result.per_model.model_id == model_id]
    fig = make_subplots(rows=1, cols=4, subplot_titles=[t for _, t in MODEL_PANELS], horizontal_spacing=0.06)
    for k, (col, title) in enumerate(MODEL_PANELS, start=1):
        z = _finite(_matrix(rows, spec, col))
        fmt = ".0f" if col.startswith("n_") else ".4f"
        fig.add_trace(go.Heatmap(
            z=z, x=list(spec.min_cluster_size), y=list(spec.min_samples),
            colorscale="Viridis_r" if col == "s_dbw" else "Viridis",
            colorbar=dict(x=0.205 + 0.265 * (k - 1), len=0.9, thickness=8),
            texttemplate=f"%{{z:{fmt}}}" if col.startswith("n_") else None, textfont=dict(size=9),
            hovertemplate=f"{title}: %{{z:{fmt}}}<br>min_samples=%{{y}}, min_cluster_size=%{{x}}<extra></extra>",
            name=title), row=1, col=k)
        fig.update_xaxes(title_text="min_cluster_size", dtick=1, row=1, col=k)
        fig.update_yaxes(title_text="min_samples" if k == 1 else None, dtick=1, row=1, col=k)
    fig.update_layout(height=330, margin=dict(l=50, r=20, t=40, b=40))
    return fig


def _png(result, path: Path, panels, frame: pd.DataFrame, title: str) -> None:
    # matplotlib: ~0.5 s to import; only where a report is written (its file backend, no display)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # (after the backend is chosen)

    spec = result.spec
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), constrained_layout=True)
    for ax, (col, sub) in zip(np.atleast_1d(axes), panels):
        z = _finite(_matrix(frame, spec, col))
        im = ax.imshow(z, origin="lower", cmap="viridis_r" if col == "s_dbw" else "viridis", aspect="auto")
        ax.set_xticks(range(len(spec.min_cluster_size)), spec.min_cluster_size)
        ax.set_yticks(range(len(spec.min_samples)), spec.min_samples)
        ax.set_xlabel("min_cluster_size")
        ax.set_ylabel("min_samples")
        ax.set_title(sub, fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.85)
    fig.suptitle(title, fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def write_report(result, out_dir: str | os.PathLike, *, external: pd.DataFrame | None = None,
                 model_id: str | None = None) -> list[Path]:
    """Write the tables (``per_model.csv``, ``cells.csv``, ``ranking.csv``, and
    ``external.csv`` when given) and the figures (``cells.png``/``.html``, and the per-model
    grid of ``model_id``, default the top-ranked model, as ``model_grid.png``/``.html``).
    Every file is written atomically. Returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [write_csv_atomic(out / "per_model.csv", result.per_model),
               write_csv_atomic(out / "cells.csv", result.cells),
               write_csv_atomic(out / "ranking.csv", result.ranking)]
    if external is not None:
        written.append(write_csv_atomic(out / "external.csv", external))
    model_id = model_id or result.ranking.model_id.iloc[0]
    spec = result.spec
    subtitle = (f"{len(result.models)} models, {spec.selection}, {spec.metric}"
                + (f" p={spec.p:g}" if spec.metric == "minkowski" else ""))
    _png(result, out / "cells.png", CELL_PANELS, result.cells, f"cell maxima: {subtitle}")
    rows = result.per_model[result.per_model.model_id == model_id]
    _png(result, out / "model_grid.png", MODEL_PANELS, rows, model_id)
    written += [out / "cells.png", out / "model_grid.png"]
    # self-contained HTML (plotly.js inlined): opens offline
    for name, fig in (("cells.html", cell_maxima_figure(result)), ("model_grid.html", model_grid_figure(result, model_id))):
        written.append(write_text_atomic(out / name, fig.to_html(include_plotlyjs=True, full_html=True)))
    return written
