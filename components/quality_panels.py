"""Layout pieces of the fingerprint-quality section (evaluate page): the table of a report and
its chart (one metric per model, the baselines, the chance levels and the ceiling as lines).

Functions here take the report's table (a DataFrame with :data:`backend.quality.COLUMNS`) and
return components and figures; the page holds the callbacks.
"""

from __future__ import annotations

import math
import re

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dash_table, dcc, html

from backend.data.model_ids import parse_model_id

#: metric column -> label, for the chart's metric choice (labelled metrics first)
METRICS = {
    "probe_acc": "linear-probe accuracy (5-fold)",
    "probe_nmi": "NMI of the probe's held-out predictions (what a clustering could reach)",
    "kmeans_nmi": "K-Means NMI (k = classes)",
    "kmeans_ari": "K-Means ARI",
    "kmeans_acc": "K-Means accuracy (Hungarian)",
    "hdbscan_nmi": "HDBSCAN NMI (explorer's default cell)",
    "knn_agreement": "10-NN label agreement",
    "trustworthiness": "trustworthiness of the 2-D map",
    "effective_dim": "effective dimension",
    "recon_loss": "held-out reconstruction loss",
}
LABELLED = ("probe_acc", "probe_nmi", "kmeans_nmi", "kmeans_ari", "kmeans_acc", "hdbscan_nmi", "knn_agreement")
#: columns of the page's table: column -> (header, decimals)
TABLE_COLUMNS = {"feature_set": ("feature set", None), "kind": ("kind", None), "window": ("window (eV)", None),
                 "objective": ("objective", None), "dim": ("dim", 0), "probe_acc": ("probe", 3),
                 "probe_std": ("± (folds)", 3), "probe_nmi": ("probe NMI", 3), "kmeans_nmi": ("KM NMI", 3), "kmeans_ari": ("KM ARI", 3),
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


#: tokens of the study's model ids, shortened for tick labels (pattern, short form, key) and
#: spelled out where every model shares them (pattern, long form)
_ID_TOKENS = (
    (r"resnet(\d+)", r"R\1", "R: ResNet depth", r"ResNet-\1"),
    (r"latent(\d+)", r"L\1", "L: latent channels", r"latent \1"),
    (r"window(\d+(?:\.\d+)?)eV", r"\1eV", None, r"window \1 eV"),
    (r"steps(\d+)", r"\1ep", "ep: epochs", r"\1 epochs"),
    (r"split(\d+(?:\.\d+)?)", None, "v: validation split", None),  # written times ten by the study
    (r"width(\d+(?:\.\d+)?)", r"w\1", "w: line width", r"line width \1"),
    (r"size(\d+)", r"\1px", None, r"\1 px"),
)
#: the longest upright tick label (longer ones end in "…"; hover shows the full id)
MAX_TICK_CHARS = 28
PLOT_HEIGHT = 340        # px of the plotting area, whatever the labels around it take
LABEL_GAP = 13           # px between two reference labels
CHAR_PX = 6.2            # width of a character of the 10-11 px labels, roughly
UPRIGHT_PX = 700         # the plot's width on a laptop's page, about: labels across it lie flat
ALL_TICKS = 80           # up to this many models every one gets its tick label


def _token(token: str, long: bool) -> tuple[str, str | None]:
    """One id token, short (tick label) or long (the axis title), and its key entry if shortened."""
    for pattern, short, key, spelled in _ID_TOKENS:
        m = re.fullmatch(pattern, token)
        if not m:
            continue
        if pattern.startswith("split"):
            value = f"{float(m.group(1)) / 10:g}"
            return (f"validation split {value}", None) if long else (f"v{value}", key)
        return (m.expand(spelled), None) if long else (m.expand(short), key)
    return token, None


def _clip(label: str, long: bool) -> str:
    """Short labels stand upright: at most :data:`MAX_TICK_CHARS` (long ones lie flat, unclipped)."""
    return label if long or len(label) <= MAX_TICK_CHARS else label[:MAX_TICK_CHARS - 1] + "…"


def model_labels(model_ids, long: bool = False) -> tuple[dict[str, str], str, str]:
    """Tick labels for models: only what tells them apart (the tokens of their ids that not every
    one shares), in short forms (``resnet18_latent1_..._steps120_split1.0`` -> ``R18 L1 120ep
    v0.1``) or, with ``long``, spelled out (``ResNet-18, latent 1, 120 epochs, validation split
    0.1``). Returns (id -> label, what they all share spelled out, the key of the short forms).
    Falls back to the ids where shortening would make two labels alike."""
    ids = list(dict.fromkeys(model_ids))
    tokens = {mid: mid.split("_") for mid in ids}
    shared = set.intersection(*(set(t) for t in tokens.values())) if len(ids) > 1 else set()
    labels, keys = {}, []
    for mid in ids:
        parts = []
        for tok in tokens[mid]:
            if tok in shared or not tok:
                continue
            short, key = _token(tok, long=long)
            parts.append(short)
            if key and key not in keys:
                keys.append(key)
        labels[mid] = _clip((", " if long else " ").join(parts) or mid, long)
    if len(set(labels.values())) < len(labels):
        labels, keys = {mid: _clip(mid, long) for mid in ids}, []
    common = [_token(t, long=True)[0] for t in (ids[0].split("_") if ids else []) if t in shared]
    return labels, ", ".join(common), ", ".join(keys)


def _spread(positions: list[float], gap: float, top: float) -> list[float]:
    """Label heights (px from the bottom, sorted input) moved apart by at least ``gap``, kept
    within [0, top] when they fit, each as near its line as that allows."""
    out = []
    for p in positions:
        out.append(max(p, out[-1] + gap) if out else max(p, 0.0))
    overflow = out[-1] - top if out else 0
    if overflow > 0:
        out[-1] -= overflow
        for i in range(len(out) - 2, -1, -1):
            out[i] = min(out[i], out[i + 1] - gap)
    return out


def quality_figure(table, metric: str) -> go.Figure:
    """``metric`` of every model (markers, one trace per window), with each window's baselines,
    chance levels and ceiling as horizontal lines in that window's colour, named at their right
    end (labels spread apart so none overlap, a thin leader to their line). Models are labelled
    by what tells them apart (:func:`model_labels`; the full id on hover), sorted by their
    hyperparameters; the axis title says what they all share."""
    if metric not in table.columns or not table[metric].notna().any():
        return _no_metric_figure()
    fig = go.Figure()
    models = table[(table.kind == "model") & table[metric].notna()].copy()
    models["_order"] = [_sort_key(m) for m in models.feature_set]
    models = models.sort_values(["window", "_order"])
    names = _fitting_labels(models.feature_set)
    windows = sorted(table.window.dropna().unique())
    refs = table[(table.kind != "model") & table[metric].notna()]

    values = list(models[metric]) + list(refs[metric])
    lo, hi = float(min(values)), float(max(values))
    pad = (hi - lo) * 0.06 or abs(hi) * 0.05 or 0.05
    lo, hi = lo - pad, hi + pad

    # reference labels: as many as need room set the plot's height
    plot_h = max(PLOT_HEIGHT, LABEL_GAP * (len(refs) + 1))
    lines = _reference_lines(refs, windows, metric)
    _draw_reference_lines(fig, lines, lo=lo, to_px=plot_h / (hi - lo), plot_h=plot_h)
    _add_model_traces(fig, models, windows, metric=metric, labels=names["labels"])
    _lay_out(fig, models, names, metric=metric, y_range=(lo, hi), plot_h=plot_h, lines=lines)
    return fig


_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def _no_metric_figure() -> go.Figure:
    """A small empty figure saying the report has no value of the metric."""
    fig = go.Figure()
    fig.add_annotation(text="no value of this metric in the report", showarrow=False, xref="paper", yref="paper",
                       x=0.5, y=0.5, font=dict(color="#888"))
    fig.update_layout(height=200, template="plotly_white", xaxis=dict(visible=False), yaxis=dict(visible=False))
    return fig


def _fitting_labels(model_ids) -> dict:
    """The models' labels: spelled out when every label fits across the plot, else short (and
    turned upright). A dict of labels, common, key (:func:`model_labels`), upright, longest."""
    n = len(model_ids)
    labels, common, key = model_labels(model_ids, long=True)
    longest = max((len(v) for v in labels.values()), default=0)
    upright = n * (longest + 3) * CHAR_PX < UPRIGHT_PX
    if not upright:
        labels, common, key = model_labels(model_ids)
        longest = max((len(v) for v in labels.values()), default=0)
    return {"labels": labels, "common": common, "key": key, "upright": upright, "longest": longest}


def _reference_lines(refs, windows, metric: str) -> list[tuple]:
    """(value, label, colour, kind) of each reference line, in the order of their values."""
    lines = []
    for i, w in enumerate(windows):
        colour = _PALETTE[i % len(_PALETTE)]
        for _, r in refs[refs.window == w].iterrows():
            name = r.feature_set + (f", {w:g} eV" if len(windows) > 1 else "")
            lines.append((float(r[metric]), f"{name}: {float(r[metric]):.3g}", colour, r.kind))
    lines.sort(key=lambda line: line[0])
    return lines


def _draw_reference_lines(fig: go.Figure, lines: list[tuple], *, lo: float, to_px: float, plot_h: float) -> None:
    """The reference lines, each named at its right end (labels spread apart, a leader to the line)."""
    placed = _spread([(v - lo) * to_px for v, *_ in lines], LABEL_GAP, plot_h)
    for (value, text, colour, kind), at in zip(lines, placed):
        fig.add_hline(y=value, line=dict(color=colour, dash=LINE_STYLES.get(kind, "dot"), width=1))
        fig.add_annotation(x=1, xref="paper", y=value, yref="y", text=text, showarrow=True, arrowhead=0,
                           arrowwidth=0.7, arrowcolor=colour, ax=14, ay=-(at - (value - lo) * to_px),
                           xanchor="left", font=dict(size=10, color=colour), align="left")


def _add_model_traces(fig: go.Figure, models, windows, *, metric: str, labels: dict) -> None:
    """One trace of markers per window: the models' values, their full ids on hover."""
    for i, w in enumerate(windows):
        colour = _PALETTE[i % len(_PALETTE)]
        m = models[models.window == w]
        if len(m):
            fig.add_trace(go.Scatter(
                x=[labels[f] for f in m.feature_set], y=m[metric], mode="markers", name=f"models, {w:g} eV",
                marker=dict(size=8 if len(models) <= 40 else 6, color=colour),
                customdata=list(zip(m.feature_set, m.objective)),
                hovertemplate="%{customdata[0]}<br>%{customdata[1]}<br>" + METRICS.get(metric, metric)
                              + " = %{y:.3f}<extra></extra>"))


def _lay_out(fig: go.Figure, models, names: dict, *, metric: str, y_range: tuple, plot_h: float,
             lines: list[tuple]) -> None:
    """Margins and height (room for the reference labels at the right, the model names below),
    the axes (what the models share in the x title) and the legend."""
    n = len(models)
    labels, common, key = names["labels"], names["common"], names["key"]
    tick_px = 16 if names["upright"] else names["longest"] * CHAR_PX
    title = f"{n} model{'s' if n != 1 else ''}" + (f", all {common}" if common else "") \
        + (f" ({key})" if key else "") + " · hover a point for its id"
    right = 20 + CHAR_PX * max((len(t) for _, t, *_ in lines), default=0) + (14 if lines else 0)
    bottom = int(tick_px + 46)
    fig.update_layout(
        margin=dict(l=60, r=int(right), t=36, b=bottom), height=int(plot_h + 36 + bottom),
        template="plotly_white", title=None,
        yaxis=dict(title=METRICS.get(metric, metric), range=list(y_range), zeroline=False),
        xaxis=dict(title=dict(text=title, font=dict(size=11)), type="category", showgrid=n <= 40,
                   categoryorder="array", categoryarray=[labels[f] for f in models.feature_set],
                   tickangle=0 if names["upright"] else -90, tickfont=dict(size=10 if n <= 40 else 9),
                   automargin=False,
                   # every model named while a label has room (~10 px each), else plotly thins them
                   dtick=1 if n <= ALL_TICKS else None),
        legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0),
    )


def _sort_key(model_id: str) -> tuple:
    """Models in hyperparameter order (architecture, latent, epochs, split), others by id."""
    hp = parse_model_id(model_id)
    if not hp:
        return (1, model_id)
    return (0, hp["arch"], hp["latent"] or 0, hp["epochs"] or 0, hp["split"] or 0, hp.get("tag", ""), model_id)


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
                 "reads against PCA of the raw pixels, its own network untrained (random weights), the unencoded map, chance "
                 "and (with labels) a CNN trained with the labels on the same folds.", className="small text-muted"),
        dbc.Progress(id=ids["progress"], value=0, striped=True, animated=True, className="mt-1", style={"height": "10px"}),
        html.Div(status, id=ids["status"], className="small text-muted mb-1"),
        html.Div(id=ids["warnings"]),
        # until a report is there, what to do instead of an empty chart
        html.Div(["No report shown yet: ", html.B("Run quality report"), " scores the models of the filter (with the "
                  "known-label column chosen on the left, if any). One chart, one metric at a time, and the table of "
                  "every score appear here."], id=ids["empty"],
                 className="border rounded p-3 small text-muted bg-light"),
        html.Div([
            html.Div([
                html.Span("Metric", className="small me-2"),
                dcc.Dropdown(id=ids["metric"], value=metric, clearable=False,
                             style={"minWidth": "320px", "fontSize": "13px"},
                             options=[{"label": v, "value": k} for k, v in METRICS.items()]),
            ], className="d-flex align-items-center mb-1"),
            dcc.Graph(id=ids["graph"], config={"displaylogo": False}),
            html.Div(id=ids["table"]),
        ], id=ids["results"], style={"display": "none"}),
    ])
