"""The cluster explorer (home page): choose a model, recluster live, hover to see band structures.

All computation is in ``backend`` (cached there); fingerprints never leave the server. A
recluster sends only the new colours and labels (a ``Patch``); hover images are set in the
browser from a URL, with no server round trip. The URL's query string holds the view.
"""

from __future__ import annotations

import logging
import urllib.parse

import dash
import dash_bootstrap_components as dbc
import numpy as np
from dash import Input, Output, Patch, State, callback, clientside_callback, dcc, html, no_update

from app_state import get_catalog
from backend.clustering import ClusterParams, cluster_model, default_model, labels_table
from backend.elements import element_mask, elements_present
from backend.errors import BandscapeError
from components.explore_controls import (MODEL_FIELDS, field_id, field_options, labelled,
                                         number_input)
from components.help import help_modal
from components.scatter import POINTS, cluster_marker, label_colours, overlay_updates, scatter_figure

dash.register_page(__name__, path="/", name="Explore", title="bandscape · explore", order=0)
log = logging.getLogger(__name__)

# ---- component ids -------------------------------------------------------------------------
MODEL = "explore-model"
ALGO = "explore-algo"
MCS, MS, SEL, METRIC, P, K = ("explore-mcs", "explore-ms", "explore-selection", "explore-metric",
                              "explore-p", "explore-k")
HDBSCAN_BOX, KCLUSTER_BOX, P_BOX = "explore-hdbscan-box", "explore-k-box", "explore-p-box"
DC, DC_EPS, DC_MS = "explore-dc", "explore-dc-eps", "explore-dc-ms"
RC, RC_MCS, RC_MS = "explore-rc", "explore-rc-mcs", "explore-rc-ms"
HIDE_NOISE, HIDE_NONNOISE = "explore-hide-noise", "explore-hide-nonnoise"
ELEMENTS, ELEMENT_MODE, MATCHES = "explore-elements", "explore-element-mode", "explore-matches"
COLOUR_BY, SCORES = "explore-colour-by", "explore-scores"
GRAPH, SUMMARY, ALERT, DRAWN, VIEW = ("explore-graph", "explore-summary", "explore-alert",
                                      "explore-drawn", "explore-view")
HOVER_IMG, HOVER_NAME, PINNED, PIN_PANEL = ("explore-hover-img", "explore-hover-name", "explore-pinned",
                                            "explore-pin-panel")
EXPORT_BTN, DOWNLOAD = "explore-export", "explore-download"
ADV_COLLAPSE, ADV_BTN = "explore-adv", "explore-adv-btn"
URL_SINK, NOTES, PREFETCH_SINK = "explore-url-sink", "explore-notes", "explore-prefetch-sink"
COMPARE = "explore-compare"
MODEL_LIST = "explore-model-list"
PREFETCH_MAX = 5000  # materials; beyond this, images are fetched on hover only
HELP, HELP_OPEN, HELP_CLOSE, HELP_SEEN = "explore-help", "explore-help-open", "explore-help-close", "explore-help-seen"

# URL query keys -> (component id, parser); one table for reading and writing the URL
DEFAULTS = ClusterParams()
URL_KEYS = {
    "model": MODEL, "algo": ALGO, "mcs": MCS, "ms": MS, "sel": SEL, "metric": METRIC, "p": P, "k": K,
    "dc": DC, "dc_eps": DC_EPS, "dc_ms": DC_MS, "rc": RC, "rc_mcs": RC_MCS, "rc_ms": RC_MS,
    "hn": HIDE_NOISE, "hnn": HIDE_NONNOISE, "el": ELEMENTS, "mode": ELEMENT_MODE, "color": COLOUR_BY,
}
STATE_INPUTS = [MODEL, ALGO, MCS, MS, SEL, METRIC, P, K, DC, DC_EPS, DC_MS, RC, RC_MCS, RC_MS,
                HIDE_NOISE, HIDE_NONNOISE, ELEMENTS, ELEMENT_MODE, COLOUR_BY]


def _parse_query(query: dict, catalog) -> tuple[dict, list[str]]:
    """Initial control values from the URL (invalid entries fall back to defaults, with a note)."""
    notes = []
    v = {
        MODEL: default_model(catalog), ALGO: DEFAULTS.algo, MCS: DEFAULTS.min_cluster_size,
        MS: DEFAULTS.min_samples, SEL: DEFAULTS.selection, METRIC: DEFAULTS.metric, P: DEFAULTS.p,
        K: DEFAULTS.n_clusters, DC: False, DC_EPS: DEFAULTS.dc_eps, DC_MS: DEFAULTS.dc_min_samples,
        RC: False, RC_MCS: DEFAULTS.rc_min_cluster_size, RC_MS: DEFAULTS.rc_min_samples,
        HIDE_NOISE: False, HIDE_NONNOISE: False, ELEMENTS: [], ELEMENT_MODE: "inclusive", COLOUR_BY: "cluster",
    }
    for key, raw in query.items():
        cid = URL_KEYS.get(key)
        if cid is None or raw in (None, ""):
            continue
        try:
            if cid in (DC, RC, HIDE_NOISE, HIDE_NONNOISE):
                v[cid] = raw in ("1", "true", "True")
            elif cid in (MCS, MS, K, DC_MS, RC_MCS, RC_MS):
                v[cid] = int(raw)
            elif cid in (P, DC_EPS):
                v[cid] = float(raw)
            elif cid == ELEMENTS:
                v[cid] = [e for e in raw.split(",") if e]
            else:
                v[cid] = raw
        except ValueError:
            notes.append(f"URL parameter {key}={raw!r} is not valid; using the default")
    if v[MODEL] not in catalog:
        notes.append(f"unknown model {v[MODEL]!r} in the URL; showing {default_model(catalog)}")
        v[MODEL] = default_model(catalog)
    return v, notes


def _model_panel(catalog, model_id: str) -> dbc.Card:
    models = list(catalog.models.values())
    current = catalog.get(model_id)
    fields = []
    for name, label in MODEL_FIELDS:
        opts = field_options(models, current.arch, name)
        fields.append(labelled(label, dbc.Select(
            id=field_id(name), options=opts, value=str(getattr(current, name)), size="sm",
            disabled=not opts or (current.is_unencoded and name in ("latent", "epochs", "split")))))
    return dbc.Card([
        dbc.CardHeader("Autoencoder model"),
        dbc.CardBody([
            *fields,
            # a native input with a datalist: cheap to render for thousands of model ids
            labelled("Search by model id", dcc.Input(
                id=MODEL, value=model_id, list=MODEL_LIST, debounce=True, type="text",
                className="form-control form-control-sm", spellCheck=False)),
            html.Datalist(id=MODEL_LIST, children=[html.Option(value=m) for m in catalog.models]),
        ]),
    ], className="mb-2")


def _cluster_panel(v: dict) -> dbc.Card:
    return dbc.Card([
        dbc.CardHeader("Clustering"),
        dbc.CardBody([
            dbc.RadioItems(id=ALGO, value=v[ALGO], inline=True, className="mb-2",
                           options=[{"label": "HDBSCAN", "value": "hdbscan"},
                                    {"label": "K-Means", "value": "kmeans"},
                                    {"label": "GMM", "value": "gmm"}]),
            html.Div(id=HDBSCAN_BOX, children=[
                html.Div([labelled("Min cluster size", number_input(MCS, v[MCS], 2, 1)),
                          labelled("Min samples", number_input(MS, v[MS], 1, 1))], className="d-flex gap-2"),
                labelled("Cluster selection", dbc.RadioItems(
                    id=SEL, value=v[SEL], inline=True,
                    options=[{"label": "leaf", "value": "leaf"}, {"label": "eom", "value": "eom"}])),
                html.Div([
                    labelled("Metric", dbc.Select(id=METRIC, value=v[METRIC], size="sm",
                                                  options=[{"label": "Minkowski", "value": "minkowski"},
                                                           {"label": "Euclidean", "value": "euclidean"}]), 120),
                    html.Div(labelled("p", number_input(P, v[P], 0.01, "any", 80)), id=P_BOX),
                ], className="d-flex gap-2"),
            ]),
            html.Div(id=KCLUSTER_BOX, children=[labelled("Number of clusters", number_input(K, v[K], 1, 1))]),
            dbc.Button("Advanced options", id=ADV_BTN, color="link", size="sm", className="p-0"),
            dbc.Collapse(id=ADV_COLLAPSE, is_open=bool(v[DC] or v[RC] or v[HIDE_NOISE] or v[HIDE_NONNOISE]), children=[
                dbc.Switch(id=DC, label="Double cluster (DBSCAN halos on the UMAP)", value=v[DC]),
                html.Div([labelled("eps", number_input(DC_EPS, v[DC_EPS], 0.01, "any", 80)),
                          labelled("min samples", number_input(DC_MS, v[DC_MS], 1, 1))], className="d-flex gap-2 ms-4"),
                dbc.Switch(id=RC, label="Recluster noise (HDBSCAN on noise points)", value=v[RC]),
                html.Div([labelled("min cluster size", number_input(RC_MCS, v[RC_MCS], 2, 1)),
                          labelled("min samples", number_input(RC_MS, v[RC_MS], 1, 1))], className="d-flex gap-2 ms-4"),
                dbc.Switch(id=HIDE_NOISE, label="Hide noise", value=v[HIDE_NOISE]),
                dbc.Switch(id=HIDE_NONNOISE, label="Hide non-noise", value=v[HIDE_NONNOISE]),
            ]),
        ]),
    ], className="mb-2")


def _filter_panel(catalog, model_id: str, v: dict, matches=None) -> dbc.Card:
    names = catalog.load(model_id).names
    present = elements_present(names)
    label_cols = _label_columns(catalog)
    # always present (callbacks take its value); shown only when the dataset has labels
    colour = html.Div(labelled("Colour by", dbc.Select(
        id=COLOUR_BY, value=v[COLOUR_BY], size="sm",
        options=[{"label": "cluster", "value": "cluster"}] + [{"label": f"label: {c}", "value": c} for c in label_cols])),
        style=None if label_cols else {"display": "none"})
    return dbc.Card([
        dbc.CardHeader("Elements and labels"),
        dbc.CardBody([
            dcc.Dropdown(id=ELEMENTS, options=present, value=v[ELEMENTS], multi=True,
                         placeholder="Filter by element…" if present else "no chemical formulas in this dataset",
                         disabled=not present),
            dbc.RadioItems(id=ELEMENT_MODE, value=v[ELEMENT_MODE], inline=True, className="small",
                           options=[{"label": "any selected (inclusive)", "value": "inclusive"},
                                    {"label": "all selected (exclusive)", "value": "exclusive"}]),
            html.Div(matches, id=MATCHES, className="small text-muted mb-2"),
            colour,
        ]),
    ], className="mb-2")


def _label_columns(catalog) -> list[str]:
    from backend.labels import label_columns

    return label_columns(catalog)


def _fit_to_data(v: dict, catalog) -> dict:
    """Drop URL choices the model's data cannot take (elements it lacks, unknown label columns),
    so that the first figure is drawn for exactly the values the controls show."""
    present = set(elements_present(catalog.load(v[MODEL]).names))
    return {**v, ELEMENTS: [e for e in v[ELEMENTS] if e in present],
            COLOUR_BY: v[COLOUR_BY] if v[COLOUR_BY] in _label_columns(catalog) else "cluster"}


def layout(**query):
    catalog = get_catalog()
    v, notes = _parse_query(query, catalog)
    try:
        v = _fit_to_data(v, catalog)
    except BandscapeError:
        pass  # the figure's alert says what is wrong with the model's data
    fig, drawn, summary, alert, matches, view = render_view(*[v[c] for c in STATE_INPUTS], None)
    first = lambda x, default: default if x is no_update else x  # noqa: E731
    side = html.Div([
        _model_panel(catalog, v[MODEL]),
        _cluster_panel(v),
        _filter_panel(catalog, v[MODEL], v, first(matches, None)),
        html.Div([
            dbc.Button("Export labels (CSV)", id=EXPORT_BTN, size="sm", color="secondary", className="me-2"),
            dbc.Button("Help", id=HELP_OPEN, size="sm", color="info", outline=True),
        ], className="mb-2"),
        dcc.Download(id=DOWNLOAD),
    ], style={"width": "330px", "flex": "0 0 330px"}, className="pe-2")
    main = html.Div([
        html.Div([dbc.Alert(n, color="warning", dismissable=True) for n in notes], id=NOTES),
        html.Div(first(alert, None), id=ALERT),
        html.Div(first(summary, None), id=SUMMARY, className="small mb-1"),
        dcc.Loading(dcc.Graph(id=GRAPH, figure=first(fig, {}), config={"scrollZoom": True, "displaylogo": False},
                              style={"height": "72vh"}, clear_on_unhover=False),
                    delay_show=400, type="dot"),
    ], style={"flex": "1 1 auto", "minWidth": "0"})
    viewer = html.Div([
        html.Div("Hover a point to see its band structure; click to pin it (two pinned ones are compared).",
                 className="small text-muted"),
        html.Div(id=HOVER_NAME, className="fw-bold small mt-1"),
        html.Img(id=HOVER_IMG, alt="", style={"width": "100%", "minHeight": "120px"}),
        html.Hr(),
        dbc.RadioItems(id=COMPARE, value="overlay", inline=True, className="small",
                       options=[{"label": "overlay", "value": "overlay"}, {"label": "side by side", "value": "side"}]),
        html.Div(id=PIN_PANEL),
        dcc.Store(id=PINNED, data=[]),
    ], style={"width": "380px", "flex": "0 0 380px"}, className="ps-2")
    return html.Div([
        dcc.Store(id=DRAWN, data=first(drawn, None)),
        dcc.Store(id=VIEW, data=first(view, None)),
        dcc.Store(id=URL_SINK),
        dcc.Store(id=PREFETCH_SINK),
        dcc.Store(id=HELP_SEEN, storage_type="local"),
        help_modal(HELP, HELP_CLOSE),
        html.Div([side, main, viewer], className="d-flex"),
    ], className="px-3")


# ---- model choice -------------------------------------------------------------------------

_FIELD_PRIORITY = {"arch": 6, "latent": 5, "window": 4, "epochs": 3, "split": 2, "line_width": 1}


@callback(
    [Output(field_id(n), "value") for n, _ in MODEL_FIELDS]
    + [Output(field_id(n), "options") for n, _ in MODEL_FIELDS]
    + [Output(field_id(n), "disabled") for n, _ in MODEL_FIELDS]
    + [Output(MODEL, "value")],
    [Input(field_id(n), "value") for n, _ in MODEL_FIELDS] + [Input(MODEL, "value")],
    prevent_initial_call=True,
)
def choose_model(*values):
    """Keep the hyperparameter dropdowns and the model id in step: a changed field picks the
    existing model that keeps most of the other choices; a searched id sets every field."""
    catalog = get_catalog()
    models = list(catalog.models.values())
    chosen = dict(zip([n for n, _ in MODEL_FIELDS], values[:-1]))
    model_id = values[-1]
    trigger = dash.ctx.triggered_id
    if trigger != MODEL:
        changed = next(n for n, _ in MODEL_FIELDS if field_id(n) == trigger)
        pool = [m for m in models if str(getattr(m, changed)) == chosen[changed]]
        if changed != "arch":
            pool = [m for m in pool if m.arch == chosen["arch"]] or pool
        if not pool:
            raise dash.exceptions.PreventUpdate
        best = max(pool, key=lambda m: sum(w for n, w in _FIELD_PRIORITY.items()
                                           if n != changed and str(getattr(m, n)) == chosen.get(n)))
        model_id = best.model_id
    if model_id not in catalog:
        raise dash.exceptions.PreventUpdate
    current = catalog.get(model_id)
    vals = [str(getattr(current, n)) for n, _ in MODEL_FIELDS]
    opts = [field_options(models, current.arch, n) for n, _ in MODEL_FIELDS]
    disabled = [not o or (current.is_unencoded and n in ("latent", "epochs", "split"))
                for (n, _), o in zip(MODEL_FIELDS, opts)]
    return vals + opts + disabled + [model_id]


# ---- the figure ---------------------------------------------------------------------------

def _params(algo, mcs, ms, sel, metric, p, k, dc, dc_eps, dc_ms, rc, rc_mcs, rc_ms) -> ClusterParams:
    return ClusterParams(algo=algo, min_cluster_size=mcs, min_samples=ms, selection=sel, metric=metric,
                         p=p, n_clusters=k, double_cluster=bool(dc), dc_eps=dc_eps, dc_min_samples=dc_ms,
                         recluster_noise=bool(rc), rc_min_cluster_size=rc_mcs, rc_min_samples=rc_ms)


def _summary(result, n: int, scores: dict | None) -> list:
    sizes = sorted(result.cluster_sizes().items(), key=lambda kv: -kv[1])
    colours = dict(zip([k for k, _ in sizes], label_colours(np.array([k for k, _ in sizes], dtype=int))))
    badges = [html.Span(str(size), className="badge me-1",
                        style={"backgroundColor": colours[k], "color": "black"}, title=f"cluster {k}")
              for k, size in sizes[:40]]
    more = [html.Span(f"+{len(sizes) - 40} more", className="text-muted")] if len(sizes) > 40 else []
    head = html.Span([html.B(f"{result.n_clusters} clusters"), f" · {result.n_noise} noise · {n} materials · sizes: "],
                     id="explore-summary-text")
    out = [head, *badges, *more]
    if scores:
        out.append(html.Div(scores["text"], className="text-muted", id=SCORES))
    return out


@callback(
    Output(GRAPH, "figure"), Output(DRAWN, "data"), Output(SUMMARY, "children"), Output(ALERT, "children"),
    Output(MATCHES, "children"), Output(VIEW, "data"),
    [Input(c, "value") for c in STATE_INPUTS],
    State(DRAWN, "data"),
    # the first figure comes with the page (see layout): one round trip less before the map shows
    prevent_initial_call=True,
)
def update_figure(*values):
    return render_view(*values)


def render_view(model_id, algo, mcs, ms, sel, metric, p, k, dc, dc_eps, dc_ms, rc, rc_mcs, rc_ms,
                hide_noise, hide_nonnoise, elements, mode, colour_by, drawn):
    """The figure (or a Patch of it when the same points are on screen), the drawn-view key, the
    summary, an alert, the element-match count and the view info, for these control values."""
    catalog = get_catalog()
    try:
        numbers = {"min cluster size (>= 2)": mcs, "min samples (>= 1)": ms, "p (> 0)": p,
                   "number of clusters (>= 1)": k, "double-cluster eps (> 0)": dc_eps,
                   "double-cluster min samples (>= 1)": dc_ms, "recluster min cluster size (>= 2)": rc_mcs,
                   "recluster min samples (>= 1)": rc_ms}
        empty = [name for name, value in numbers.items() if value is None]
        if empty:
            raise BandscapeError(f"{', '.join(empty)}: the field is empty or out of range")
        params = _params(algo, mcs, ms, sel, metric, p, k, dc, dc_eps, dc_ms, rc, rc_mcs, rc_ms)
        data = catalog.load(model_id)
        result = cluster_model(catalog, model_id, params)
        highlight = element_mask(data.names, elements, mode or "inclusive")
        colour_by = colour_by or "cluster"
        colours, hover, scores = _colouring(catalog, data, result, colour_by)
    except BandscapeError as exc:
        return no_update, no_update, no_update, dbc.Alert(str(exc), color="danger"), no_update, no_update
    except Exception as exc:  # never a stack trace in the browser, never a dead app
        log.exception("clustering failed")
        return (no_update, no_update, no_update,
                dbc.Alert(f"internal error while clustering {model_id}: {exc}", color="danger"), no_update, no_update)

    info = catalog.get(model_id)
    key = {"model": model_id, "hide": [bool(hide_noise), bool(hide_nonnoise)], "colour": colour_by,
           "n": int(len(data.names))}
    matches = (f"{int(highlight.sum())} of {len(data.names)} materials match" if elements else "")
    summary = _summary(result, len(data.names), scores)
    # prefetch hover images only where a folder of display plots exists (not rendered on demand)
    view = {"window": info.window, "model": model_id, "prefetch": catalog.display_image_dir(info.window) is not None}
    if drawn == key and not hide_noise and not hide_nonnoise:
        # same points as on screen: send only colours, hover labels and the small overlays
        patch = Patch()
        if colour_by == "cluster":
            patch["data"][POINTS]["marker"].update(cluster_marker(result.labels))
        else:
            patch["data"][POINTS]["marker"]["color"] = colours
            patch["data"][POINTS]["customdata"] = hover
        keep = np.ones(len(data.names), dtype=bool)
        for idx, props in overlay_updates(data.xy, result, highlight, keep).items():
            patch["data"][idx]["x"] = props["x"]
            patch["data"][idx]["y"] = props["y"]
            if "marker.color" in props:
                patch["data"][idx]["marker"]["color"] = props["marker.color"]
        return patch, no_update, summary, None, matches, no_update
    fig = scatter_figure(data.xy, data.names, result, highlight, bool(hide_noise), bool(hide_nonnoise),
                         colours=None if colour_by == "cluster" else colours, hover_labels=hover, uirevision=model_id)
    return fig, key, summary, None, matches, view


def _colouring(catalog, data, result, colour_by: str):
    """Marker colours and hover labels: by cluster, or by a known label with scores vs it."""
    if colour_by == "cluster":
        return None, None, None  # cluster colours travel as numbers with a colour scale
    from backend.labels import load_labels
    from backend.validation import external_scores

    truth = load_labels(catalog, colour_by, data.names)
    cats, codes = np.unique(truth, return_inverse=True)
    colours = label_colours(codes)
    s = external_scores(truth, result.labels)
    text = (f"vs label '{colour_by}' ({len(cats)} classes): accuracy {s['accuracy']:.3f}, NMI {s['nmi']:.3f}, "
            f"ARI {s['ari']:.3f} (noise as a cluster); without noise: accuracy {s['accuracy_no_noise']:.3f}, "
            f"NMI {s['nmi_no_noise']:.3f}, ARI {s['ari_no_noise']:.3f}")
    hover = [f"{lab} (cluster {c})" for lab, c in zip(truth, result.labels)]
    return colours, hover, {"text": text, **s}


# ---- hover, pin, export, URL, help ----------------------------------------------------------------

clientside_callback(
    """
    function(hover, view) {
        if (!hover || !hover.points || !hover.points.length || !view) {
            return [window.dash_clientside.no_update, window.dash_clientside.no_update];
        }
        const pt = hover.points[0];
        if (pt.curveNumber !== %d || pt.text === undefined) {
            return [window.dash_clientside.no_update, window.dash_clientside.no_update];
        }
        if (view.window === null || view.window === undefined) {
            return ["", pt.text + " (no images for this model)"];
        }
        return ["/material-image/" + view.window + "/" + encodeURIComponent(pt.text) + ".png", pt.text];
    }
    """ % POINTS,
    Output(HOVER_IMG, "src"), Output(HOVER_NAME, "children"),
    Input(GRAPH, "hoverData"), State(VIEW, "data"),
    prevent_initial_call=True,
)

# After a redraw, fetch the model's band images into the browser cache (four at a time), so a
# hover shows its image without waiting for the server. Skipped for very large datasets.
clientside_callback(
    """
    function(view, fig) {
        const nu = window.dash_clientside.no_update;
        if (!view || !view.prefetch || view.window === null || view.window === undefined || !fig || !fig.data) { return nu; }
        const names = (fig.data[%d] && fig.data[%d].text) || [];
        const base = "/material-image/" + view.window + "/";
        window.bandscapePrefetched = window.bandscapePrefetched || {};
        if (names.length > %d || window.bandscapePrefetched[base]) { return nu; }
        window.bandscapePrefetched[base] = true;
        let i = 0;
        const next = () => {
            if (i >= names.length) { return; }
            const img = new Image();
            img.onload = img.onerror = next;
            img.src = base + encodeURIComponent(names[i++]) + ".png";
        };
        setTimeout(() => { for (let k = 0; k < 4; k++) { next(); } }, 300);
        return nu;
    }
    """ % (POINTS, POINTS, PREFETCH_MAX),
    Output(PREFETCH_SINK, "data"),
    Input(VIEW, "data"), State(GRAPH, "figure"),
)

clientside_callback(
    """
    function(algo, metric) {
        const show = {}, hide = {display: "none"};
        return [algo === "hdbscan" ? show : hide, algo === "hdbscan" ? hide : show,
                metric === "minkowski" ? show : hide];
    }
    """,
    Output(HDBSCAN_BOX, "style"), Output(KCLUSTER_BOX, "style"), Output(P_BOX, "style"),
    Input(ALGO, "value"), Input(METRIC, "value"),
)

clientside_callback(
    """
    function(n, open) { return n ? !open : open; }
    """,
    Output(ADV_COLLAPSE, "is_open"), Input(ADV_BTN, "n_clicks"), State(ADV_COLLAPSE, "is_open"),
    prevent_initial_call=True,
)

# The view lives in the query string. history.replaceState changes the address without telling
# the page router, so the page is not rebuilt on every change, yet a reload or a shared link
# opens the same view.
clientside_callback(
    """
    function(...vals) {
        const keys = %s;
        const params = new URLSearchParams();
        keys.forEach((k, i) => {
            let v = vals[i];
            if (v === null || v === undefined || (typeof v === "number" && isNaN(v))) { return; }
            if (Array.isArray(v)) { if (!v.length) { return; } v = v.join(","); }
            if (v === true) { v = "1"; } else if (v === false) { return; }
            params.set(k, v);
        });
        const url = window.location.pathname + "?" + params.toString();
        if (url !== window.location.pathname + window.location.search) {
            window.history.replaceState(window.history.state, "", url);
        }
        return window.dash_clientside.no_update;
    }
    """ % list(URL_KEYS),
    Output(URL_SINK, "data"),  # nothing is written: the callback only edits the address
    [Input(URL_KEYS[k], "value") for k in URL_KEYS],
    prevent_initial_call=True,
)


@callback(
    Output(PINNED, "data"), Output(PIN_PANEL, "children"),
    Input(GRAPH, "clickData"), Input(COMPARE, "value"), State(PINNED, "data"), State(VIEW, "data"),
    prevent_initial_call=True,
)
def pin_material(click, mode, pinned, view):
    """Click pins a material; two pinned materials are shown together for comparison."""
    pinned = list(pinned or [])
    if dash.ctx.triggered_id == GRAPH:
        if not click or not click.get("points") or click["points"][0].get("curveNumber") != POINTS:
            raise dash.exceptions.PreventUpdate
        name = click["points"][0].get("text")
        pinned = [p for p in pinned if p != name][-1:] + [name]
    if not pinned:
        raise dash.exceptions.PreventUpdate
    try:
        return pinned, pinned_panel(pinned, (view or {}).get("window"), mode or "overlay")
    except BandscapeError as exc:
        return pinned, dbc.Alert(str(exc), color="danger")


def pinned_panel(pinned: list[str], window, mode: str = "overlay") -> list:
    """Pinned materials: interactive band viewers where band data exists, else their images."""
    catalog = get_catalog()
    children = [html.Div("Pinned", className="small text-muted")]
    band_data = _band_data(catalog, pinned)
    if band_data:
        from components.band_viewer import band_figure

        fig = band_figure(band_data, window, mode=mode)
        children.append(dcc.Graph(id="explore-band-viewer", figure=fig, style={"height": "420px"},
                                  config={"displaylogo": False}))
    else:
        for name in pinned:
            src = f"/material-image/{window}/{urllib.parse.quote(name)}.png" if window is not None else ""
            children += [html.Div(name, className="fw-bold small pinned-name"),
                         html.Img(src=src, alt=name, style={"width": "100%"})]
    return children


def _band_data(catalog, names: list[str]):
    band_dir = catalog.band_data_dir()
    if band_dir is None:
        return []
    from backend.bands import load_band_data

    out = []
    for name in names:
        path = catalog.resolve_file(str((band_dir / f"{name}.npz").relative_to(catalog.root)))
        if path is not None:
            out.append(load_band_data(path))
    return out


@callback(
    Output(DOWNLOAD, "data"),
    Input(EXPORT_BTN, "n_clicks"),
    [State(c, "value") for c in STATE_INPUTS[:14]],
    prevent_initial_call=True,
)
def export_labels(_, model_id, algo, mcs, ms, sel, metric, p, k, dc, dc_eps, dc_ms, rc, rc_mcs, rc_ms):
    catalog = get_catalog()
    params = _params(algo, mcs, ms, sel, metric, p, k, dc, dc_eps, dc_ms, rc, rc_mcs, rc_ms).validate()
    data = catalog.load(model_id)
    table = labels_table(data, cluster_model(catalog, model_id, params), params)
    return dcc.send_data_frame(table.to_csv, f"{model_id}_{params.algo}_labels.csv", index=False)


# The help opens by itself on the first visit (remembered in the browser), and on the Help button.
clientside_callback(
    """
    function(openClicks, closeClicks, seen) {
        const trig = window.dash_clientside.callback_context.triggered.map(t => t.prop_id)[0] || "";
        if (trig.startsWith("%s")) { return [true, true]; }
        if (trig.startsWith("%s")) { return [false, true]; }
        return [!seen, window.dash_clientside.no_update];
    }
    """ % (HELP_OPEN, HELP_CLOSE),
    Output(HELP, "is_open"), Output(HELP_SEEN, "data"),
    Input(HELP_OPEN, "n_clicks"), Input(HELP_CLOSE, "n_clicks"), State(HELP_SEEN, "data"),
)
