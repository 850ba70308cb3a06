"""Layout pieces of the fingerprint-quality section (evaluate page): the table of a report and
its chart (one metric per model, the baselines, the chance levels and the ceiling as lines).

Functions here take the report's table (a DataFrame with :data:`backend.quality.COLUMNS`) and
return components and figures; the page holds the callbacks.
"""

from __future__ import annotations

import math

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dash_table, dcc, html

#: metric column -> label, for the chart's metric choice (labelled metrics first)
METRICS = {
    "probe_acc": "linear-probe accuracy (5-fold)",
    "kmeans_nmi": "K-Means NMI (k = classes)",
    "kmeans_ari": "K-Means ARI",
    "kmeans_acc": "K-Means accuracy (Hungarian)",
    "hdbscan_nmi": "HDBSCAN NMI (explorer's default cell)",
    "knn_agreement": "10-NN label agreement",
    "trustworthiness": "trustworthiness of the 2-D map",
    "effective_dim": "effective dimension",
    "recon_loss": "held-out reconstruction loss",
}
LABELLED = ("probe_acc", "kmeans_nmi", "kmeans_ari", "kmeans_acc", "hdbscan_nmi", "knn_agreement")
#: columns of the page's table: column -> (header, decimals)
TABLE_COLUMNS = {"feature_set": ("feature set", None), "kind": ("kind", None), "window": ("window (eV)", None),
                 "objective": ("objective", None), "dim": ("dim", 0), "probe_acc": ("probe", 3),
                 "probe_std": ("± (folds)", 3), "kmeans_nmi": ("KM NMI", 3), "kmeans_ari": ("KM ARI", 3),
                 "kmeans_acc": ("KM acc", 3), "hdbscan_nmi": ("HDBSCAN NMI", 3), "hdbscan_clusters": ("HDBSCAN k", 0),
                 "knn_agreement": ("kNN", 3), "trustworthiness": ("trust", 3), "effective_dim": ("eff. dim", 1),
                 "recon_loss": ("recon", 4)}
LINE_STYLES = {"baseline": "dot", "chance": "dash", "ceiling": "solid"}


def available_metrics(table) -> list[str]:
    return [m for m in METRICS if m in table.columns and table[m].notna().any()]


def _round(value, decimals):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), decimals) if decimals is not None else value


def quality_table(table, table_id: str) -> dash_table.DataTable:
    """Every row of the report; sortable; models first, then baselines, ceiling, chance."""
    cols = [c for c in TABLE_COLUMNS if c in table.columns and (c in ("feature_set", "kind") or table[c].notna().any())]
    order = {"model": 0, "baseline": 1, "ceiling": 2, "chance": 3}
    rows = table.assign(_o=table.kind.map(order)).sort_values(["window", "_o", "feature_set"]).drop(columns="_o")
    data = [{c: _round(r[c], TABLE_COLUMNS[c][1]) for c in cols} for _, r in rows.iterrows()]
    return dash_table.DataTable(
        id=table_id, data=data, sort_action="native", page_size=25,
        columns=[{"name": TABLE_COLUMNS[c][0], "id": c, "type": "numeric" if TABLE_COLUMNS[c][1] is not None else "text"}
                 for c in cols],
        style_table={"overflowX": "auto"}, style_cell={"fontSize": "12px", "padding": "2px 6px"},
        style_data_conditional=[{"if": {"filter_query": f'{{kind}} = "{k}"'}, "color": "#6c757d"}
                                for k in ("baseline", "chance")] +
                               [{"if": {"filter_query": '{kind} = "ceiling"'}, "fontStyle": "italic"}],
    )


def quality_figure(table, metric: str) -> go.Figure:
    """``metric`` of every model (markers, one trace per window) with each window's baselines,
    chance levels and ceiling drawn as horizontal lines in that window's colour."""
    fig = go.Figure()
    palette = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
    if metric not in table.columns:
        return fig
    models = table[(table.kind == "model") & table[metric].notna()]
    windows = sorted(table.window.dropna().unique())
    for i, w in enumerate(windows):
        colour = palette[i % len(palette)]
        m = models[models.window == w]
        if len(m):
            fig.add_trace(go.Scatter(
                x=m.feature_set, y=m[metric], mode="markers", name=f"models, {w:g} eV",
                marker=dict(size=9, color=colour), customdata=m.objective,
                hovertemplate="%{x}<br>%{customdata}<br>" + metric + " = %{y:.3f}<extra></extra>"))
        refs = table[(table.window == w) & (table.kind != "model") & table[metric].notna()]
        for _, r in refs.iterrows():
            fig.add_hline(y=float(r[metric]), line=dict(color=colour, dash=LINE_STYLES.get(r.kind, "dot"), width=1),
                          annotation_text=f"{r.feature_set} ({w:g} eV)", annotation_position="top left",
                          annotation_font=dict(size=10, color=colour))
    fig.update_layout(margin=dict(l=50, r=10, t=30, b=10), height=420, template="plotly_white",
                      yaxis_title=METRICS.get(metric, metric), xaxis=dict(showticklabels=len(models) <= 12),
                      legend=dict(orientation="h", y=1.08), title=None)
    return fig


def quality_notes(warnings: list[str]) -> html.Div:
    if not warnings:
        return html.Div()
    return dbc.Alert([html.Div(w) for w in warnings], color="warning", className="small py-1")


def quality_section(ids: dict, metric: str = "probe_acc", status: str = "") -> html.Div:
    """The section's frame: run/cancel, progress, the metric choice, the chart and the table
    (filled by the page's callbacks). ``ids``: component id by role."""
    return html.Div([
        html.Div([
            html.H6("Fingerprint quality: what each model's fingerprints know, against baselines", className="mb-0 me-3"),
            dbc.Button("Run quality report", id=ids["run"], color="primary", size="sm", className="me-2",
                       title="the models of the filter, the known-label column; in the background"),
            dbc.Button("Cancel", id=ids["cancel"], color="danger", size="sm", outline=True, disabled=True),
        ], className="d-flex align-items-center mt-3"),
        html.Div("Linear probe (5-fold), K-Means and HDBSCAN agreement and nearest-neighbour agreement with the "
                 "known labels; trustworthiness of the 2-D map and effective dimension without them. Every model "
                 "reads against PCA of the raw pixels, the same architecture untrained, the unencoded map, chance "
                 "and (with labels) a CNN trained with the labels on the same folds.", className="small text-muted"),
        dbc.Progress(id=ids["progress"], value=0, striped=True, animated=True, className="mt-1", style={"height": "10px"}),
        html.Div(status, id=ids["status"], className="small text-muted mb-1"),
        html.Div(id=ids["warnings"]),
        html.Div([
            html.Span("Metric", className="small me-2"),
            dcc.Dropdown(id=ids["metric"], value=metric, clearable=False, style={"minWidth": "320px", "fontSize": "13px"},
                         options=[{"label": v, "value": k} for k, v in METRICS.items()]),
        ], className="d-flex align-items-center mb-1"),
        dcc.Graph(id=ids["graph"], config={"displaylogo": False}, style={"height": "420px"}),
        html.Div(id=ids["table"]),
    ])
