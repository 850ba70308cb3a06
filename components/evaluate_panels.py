"""Layout pieces of the evaluate page: the search form, what to do before a search, and the
ranking table."""

from __future__ import annotations

import dash_bootstrap_components as dbc
import numpy as np
from dash import dash_table, dcc, html

from components.explore_controls import labelled

#: ranking table columns: (id, header, format) — numbers rounded for reading, sortable as numbers
RANK_COLUMNS = (
    ("rank", "#", None), ("model", "model (opens the explorer)", "markdown"), ("arch", "arch", None),
    ("latent", "latent", None), ("epochs", "epochs", None), ("split", "split", None),
    ("n_clusters", "clusters", None), ("n_noise", "noise", None), ("dbcv", "DBCV", 4), ("s_dbw", "S_Dbw", 4),
    ("mean_ami", "mean AMI", 4), ("mean_ami_no_noise", "mean AMI (no noise)", 4),
    ("cells_won_dbcv", "cells won (DBCV)", None), ("best_dbcv", "best DBCV (grid)", 4),
    ("best_dbcv_cell", "at", None),
)
EXTERNAL_COLUMNS = (("accuracy", "accuracy", 4), ("nmi", "NMI", 4), ("ari", "ARI", 4),
                    ("accuracy_no_noise", "accuracy (no noise)", 4), ("nmi_no_noise", "NMI (no noise)", 4),
                    ("ari_no_noise", "ARI (no noise)", 4))


def search_form(ids: dict, values: dict, label_columns: list[str]) -> html.Div:
    """The grid's parameters. ``ids``: component id by field; ``values``: initial values."""
    range_slider = lambda id_, lo, hi, value: dcc.RangeSlider(  # noqa: E731
        id=id_, min=lo, max=hi, step=1, value=value, marks={i: str(i) for i in range(lo, hi + 1, 2)},
        allowCross=False, tooltip={"placement": "bottom"})
    return html.Div([
        labelled("Models (filter)", dcc.Input(
            id=ids["models"], value=values["models"], type="text", debounce=True,
            placeholder="e.g. window=1,arch=50 (empty: all encoded)", className="form-control form-control-sm")),
        html.Div(id=ids["model_count"], className="small text-muted mb-2"),
        labelled("min_samples", range_slider(ids["ms"], 1, 20, values["ms"])),
        labelled("min_cluster_size", range_slider(ids["mcs"], 2, 20, values["mcs"])),
        html.Div([
            labelled("Selection", dbc.Select(id=ids["sel"], value=values["sel"], size="sm",
                                             options=[{"label": s, "value": s} for s in ("leaf", "eom")]), 90),
            labelled("Metric", dbc.Select(id=ids["metric"], value=values["metric"], size="sm",
                                          options=[{"label": "Minkowski", "value": "minkowski"},
                                                   {"label": "Euclidean", "value": "euclidean"}]), 120),
            labelled("p", dcc.Input(id=ids["p"], value=values["p"], type="number", min=0.01, step="any",
                                    className="form-control form-control-sm", style={"width": "70px"}), 70),
        ], className="d-flex gap-2"),
        labelled("Known labels (external scores)", dbc.Select(
            id=ids["label"], value=values.get("label") or "", size="sm",
            options=[{"label": "none", "value": ""}] + [{"label": c, "value": c} for c in label_columns],
            disabled=not label_columns)),
        dbc.Button("Run grid search", id=ids["run"], color="primary", size="sm", className="me-2"),
        dbc.Button("Cancel", id=ids["cancel"], color="danger", size="sm", outline=True, className="me-2",
                   disabled=not values.get("running"), title="stop the running search (nothing of it is kept)"),
        dbc.Button("Download tables", id=ids["download-btn"], color="secondary", size="sm", outline=True,
                   title="per_model.csv, cells.csv and ranking.csv of the search shown, zipped"),
        dcc.Download(id=ids["download"]),
        html.Div([dbc.Progress(id=ids["progress"], value=0, striped=True, animated=True, className="mt-2",
                               style={"height": "14px"}),
                  html.Div(values.get("status", ""), id=ids["status"], className="small text-muted")]),
    ])


def search_instructions(id_: str, style: dict | None = None) -> html.Div:
    """What stands where the search's figures will be, until there is a search to show."""
    return html.Div([
        html.Div("No grid search for these settings yet.", className="fw-bold mb-1"),
        html.Div(["Choose the models (the filter) and the ", html.Code("min_samples"), " and ",
                  html.Code("min_cluster_size"), " ranges on the left, then ", html.B("Run grid search"),
                  ". Every model is clustered with HDBSCAN in every cell of the grid and each clustering scored: "
                  "DBCV and S_Dbw (how well its clusters stand apart), mean AMI (how much the models agree)."]),
        html.Div("Here then: the best score of every cell (click one), one model over the grid, and the models of "
                 "the chosen cell ranked, each a link that opens it in the explorer with that cell's parameters.",
                 className="mt-1"),
    ], id=id_, style=style, className="border rounded p-3 mb-3 small text-muted bg-light")


def _fmt(value, digits):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return None
    return round(float(value), digits) if digits else value


def ranking_rows(frame, explorer_link, extra_columns=()) -> list[dict]:
    """DataTable rows from a cell's per-model table merged with the grid ranking."""
    rows = []
    digits = {c: d for c, _, d in RANK_COLUMNS + tuple(extra_columns) if isinstance(d, int)}
    for rec in frame.to_dict("records"):
        row = {c: _fmt(rec.get(c), digits.get(c)) for c, _, _ in RANK_COLUMNS + tuple(extra_columns) if c != "model"}
        flag = " (collapsed)" if rec.get("collapsed") else ""
        row["model"] = f"[{rec['model_id']}]({explorer_link(rec['model_id'])}){flag}"
        row["model_id"] = rec["model_id"]
        rows.append(row)
    return rows


def ranking_table(id_: str, with_external: bool) -> dash_table.DataTable:
    cols = RANK_COLUMNS + (EXTERNAL_COLUMNS if with_external else ())
    return dash_table.DataTable(
        id=id_, data=[], sort_action="native", filter_action="native", page_size=25,
        columns=[{"name": name, "id": c, "presentation": "markdown"} if fmt == "markdown"
                 else {"name": name, "id": c, "type": "numeric" if fmt is not None or c not in ("arch", "best_dbcv_cell") else "text"}
                 for c, name, fmt in cols],
        style_table={"overflowX": "auto"}, style_cell={"fontSize": "12px", "padding": "2px 6px", "textAlign": "right"},
        style_cell_conditional=[{"if": {"column_id": "model"}, "textAlign": "left"}],
        markdown_options={"link_target": "_self"},
        css=[{"selector": "p", "rule": "margin: 0"}],
    )
