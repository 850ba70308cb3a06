"""The cluster explorer (home page): choose a model, recluster live, hover to see band structures.

All computation is in ``backend`` (cached there); fingerprints never leave the server. A
recluster or a filter sends only per-point typed arrays (colour codes, cluster labels, opacity)
as a ``Patch`` that plotly.js applies as a restyle; a model switch adds the positions. The
hovered material is found in the browser (``assets/explore.js``), which sets its image at once.
The view (:class:`backend.discover.explorer_view.ExplorerView`) is the URL's query string.

Discovery: box and lasso selection (drawn in the browser on the hover's point index) and a
click on a cluster open a gallery of the selected materials; a pinned material's nearest
neighbours are listed and drawn on the map; the map can be coloured by the consensus of several
models (and each material's stability); cluster cards and a representative subset summarise
the clustering (all computed in ``backend``: neighbours, consensus, cluster_cards, subset).
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.parse

import dash
import dash_bootstrap_components as dbc
import numpy as np
from dash import ClientsideFunction, Input, Output, Patch, State, callback, clientside_callback, dcc, html, no_update

from app_state import get_catalog, is_shared_server
from backend.cluster.models import cluster_model, graph_cached, labels_table, selection_table
from backend.cluster.params import BOUNDS, clustering_metric, default_model, uses_graph
from backend.data.elements import element_mask, elements_present
from backend.discover.explorer_view import (
    CLUSTER_FIELDS,
    CONSENSUS_COLOURINGS,
    SELECTION_URL_MAX,
    URL_FORMAT,
    ExplorerView,
)
from backend.errors import BandscapeError
from components.discover_panels import (
    GALLERY_PAGE,
    cluster_cards_view,
    consensus_panel,
    gallery_box,
    map_tools,
    neighbour_controls,
    neighbour_list,
    subset_panel,
    subset_report,
)
from components.explore_controls import MODEL_FIELDS, field_id, field_options, labelled, number_input
from components.help import help_modal
from components.scatter import (
    NEIGHBOURS,
    PALETTE,
    POINTS,
    PREFETCH_ALL_MAX,
    PREFETCH_AROUND,
    PREFETCH_RADIUS_PX,
    SCALE_COLOURS,
    UNSELECTED_CODE,
    colour_codes,
    neighbour_lines,
    overlay_updates,
    point_style,
    positions,
    scatter_figure,
    stability_codes,
    trace_type,
    visible_mask,
)

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
SIZES, SIZES_BOX, SIZES_SINK = "explore-sizes", "explore-sizes-box", "explore-sizes-sink"
STYLE, STYLE_SINK = "explore-style", "explore-style-sink"
GRAPH, SUMMARY, ALERT, DRAWN, VIEW = ("explore-graph", "explore-summary", "explore-alert",
                                      "explore-drawn", "explore-view")
HOVER_IMG, HOVER_NAME, HOVER_TIP, CLICKED = ("explore-hover-img", "explore-hover-name", "explore-hover-tip",
                                             "explore-clicked")
PINNED, PIN_PANEL = "explore-pinned", "explore-pin-panel"
EXPORT_BTN, DOWNLOAD = "explore-export", "explore-download"
ADV_COLLAPSE, ADV_BTN = "explore-adv", "explore-adv-btn"
URL_SINK, URL_FORMAT_STORE, NOTES = "explore-url-sink", "explore-url-format", "explore-notes"
CLIENT_CONFIG, HOVER_SINK = "explore-client-config", "explore-hover-sink"
COMPARE = "explore-compare"
MODEL_LIST, MODEL_IDS, MODEL_LIST_SINK = "explore-model-list", "explore-model-ids", "explore-model-list-sink"
NAMES, NAMES_SINK, GRAPH_POLL = "explore-names", "explore-names-sink", "explore-graph-poll"
#: up to this many materials a recluster also sends each material's cluster label (hover text)
LABELS_INLINE_MAX = 20_000
HELP, HELP_OPEN, HELP_CLOSE, HELP_SEEN = "explore-help", "explore-help-open", "explore-help-close", "explore-help-seen"
TOOL, TOOL_SINK = "explore-tool", "explore-tool-sink"
SELECTION, SELECT_NAMES, SELECT_SINK = "explore-selection-names", "explore-select-names", "explore-select-sink"
GALLERY_BOX, GALLERY_INFO, GALLERY, GALLERY_CLEAR = ("explore-gallery-box", "explore-gallery-info", "explore-gallery",
                                                     "explore-gallery-clear")
EXPORT_SEL, DOWNLOAD_SEL, SEL_MSG = "explore-export-selection", "explore-download-selection", "explore-selection-msg"
NB_K, NB_PANEL = "explore-nb-k", "explore-neighbours"
CONS_MODELS = "explore-consensus-models"
SUBSET_N, SUBSET_BTN, SUBSET_EXPORT, SUBSET_REPORT = ("explore-subset-n", "explore-subset-choose", "explore-subset-export",
                                                      "explore-subset-report")
SUBSET_NAMES, DOWNLOAD_SUBSET = "explore-subset-names", "explore-download-subset"
CARDS_BTN, CARDS_COLLAPSE, CARDS = "explore-cards-btn", "explore-cards-collapse", "explore-cards"
# what the server callbacks of the neighbours and the cards listen to: set in the browser only
# when there is something to show (a recluster or a model switch asks the server nothing more)
NB_TRIGGER, CARDS_TRIGGER = "explore-nb-trigger", "explore-cards-trigger"

#: the control of each view field (backend/explorer_view.py names the fields and their URL keys)
CONTROLS = {
    "model": MODEL, "algo": ALGO, "min_cluster_size": MCS, "min_samples": MS, "selection": SEL,
    "metric": METRIC, "p": P, "n_clusters": K, "double_cluster": DC, "dc_eps": DC_EPS,
    "dc_min_samples": DC_MS, "recluster_noise": RC, "rc_min_cluster_size": RC_MCS, "rc_min_samples": RC_MS,
    "hide_noise": HIDE_NOISE, "hide_nonnoise": HIDE_NONNOISE, "elements": ELEMENTS,
    "element_mode": ELEMENT_MODE, "colour_by": COLOUR_BY, "consensus_models": CONS_MODELS, "selected": SELECTION,
}
assert set(CONTROLS) == set(URL_FORMAT), "every field of the view has a control"
#: the property that holds each control's value (the selection is a store the browser writes)
_PROPS = {"selected": "data"}
#: the fields that decide what the map shows (the selection is drawn in the browser)
VIEW_FIELDS = tuple(name for name in CONTROLS if name != "selected")
#: what the numbers' error message calls each numeric field (its limit from BOUNDS)
_FIELD_NAMES = {"min_cluster_size": "min cluster size", "min_samples": "min samples", "p": "p",
                "n_clusters": "number of clusters", "dc_eps": "double-cluster eps",
                "dc_min_samples": "double-cluster min samples", "rc_min_cluster_size": "recluster min cluster size",
                "rc_min_samples": "recluster min samples"}
_NUMBER_FIELDS = {name: f"{label} (>= {BOUNDS[name].minimum})" if BOUNDS[name].integer else f"{label} (> 0)"
                  for name, label in _FIELD_NAMES.items()}


def _controls(kind, fields=VIEW_FIELDS) -> dict:
    """``{field: Input/State(component, "value")}``: callbacks receive the view by field name."""
    return {name: kind(CONTROLS[name], _PROPS.get(name, "value")) for name in fields}


def _initial_view(query: dict, catalog) -> tuple[ExplorerView, list[str]]:
    """The view the URL asks for (invalid entries fall back to defaults, with a note)."""
    view, notes = ExplorerView.from_query(query)
    if view.model is None:
        view = view.replace(model=default_model(catalog))
    elif view.model not in catalog:
        notes.append(f"unknown model {view.model!r} in the URL; showing {default_model(catalog)}")
        view = view.replace(model=default_model(catalog))
    return view, notes


def _model_panel(catalog, model_id: str) -> dbc.Card:
    f = _model_fields(catalog, model_id)
    fields = [labelled(label, dbc.Select(id=field_id(name), options=f["options"][name], value=f["value"][name],
                                         size="sm", disabled=f["disabled"][name]))
              for name, label in MODEL_FIELDS]
    return dbc.Card([
        dbc.CardHeader("Autoencoder model"),
        dbc.CardBody([
            *fields,
            # a native input with a datalist, which the browser builds from the ids (one Dash
            # component per option would slow every update of the page)
            labelled("Search by model id", dcc.Input(
                id=MODEL, value=model_id, list=MODEL_LIST, debounce=True, type="text",
                className="form-control form-control-sm", spellCheck=False)),
            dcc.Store(id=MODEL_IDS, data=list(catalog.models)),
        ]),
    ], className="mb-2")


def _cluster_panel(v: ExplorerView) -> dbc.Card:
    return dbc.Card([
        dbc.CardHeader("Clustering"),
        dbc.CardBody([
            dbc.RadioItems(id=ALGO, value=v.algo, inline=True, className="mb-2",
                           options=[{"label": "HDBSCAN", "value": "hdbscan"},
                                    {"label": "K-Means", "value": "kmeans"},
                                    {"label": "GMM", "value": "gmm"}]),
            html.Div(id=HDBSCAN_BOX, children=[
                html.Div([labelled("Min cluster size", number_input(MCS, v.min_cluster_size, "min_cluster_size")),
                          labelled("Min samples", number_input(MS, v.min_samples, "min_samples"))], className="d-flex gap-2"),
                labelled("Cluster selection", dbc.RadioItems(
                    id=SEL, value=v.selection, inline=True,
                    options=[{"label": "leaf", "value": "leaf"}, {"label": "eom", "value": "eom"}])),
                html.Div([
                    labelled("Metric", dbc.Select(id=METRIC, value=v.metric, size="sm",
                                                  options=[{"label": "Minkowski", "value": "minkowski"},
                                                           {"label": "Euclidean", "value": "euclidean"}]), 120),
                    html.Div(labelled("p", number_input(P, v.p, "p", 80)), id=P_BOX),
                ], className="d-flex gap-2"),
            ]),
            html.Div(id=KCLUSTER_BOX, children=[labelled("Number of clusters", number_input(K, v.n_clusters, "n_clusters"))]),
            dbc.Button("Advanced options", id=ADV_BTN, color="link", size="sm", className="p-0"),
            dbc.Collapse(id=ADV_COLLAPSE, is_open=bool(v.double_cluster or v.recluster_noise or v.hide_noise
                                                       or v.hide_nonnoise), children=[
                dbc.Switch(id=DC, label="Double cluster (DBSCAN halos on the UMAP)", value=v.double_cluster),
                html.Div([labelled("eps", number_input(DC_EPS, v.dc_eps, "dc_eps", 80)),
                          labelled("min samples", number_input(DC_MS, v.dc_min_samples, "dc_min_samples"))],
                         className="d-flex gap-2 ms-4"),
                dbc.Switch(id=RC, label="Recluster noise (HDBSCAN on noise points)", value=v.recluster_noise),
                html.Div([labelled("min cluster size", number_input(RC_MCS, v.rc_min_cluster_size, "rc_min_cluster_size")),
                          labelled("min samples", number_input(RC_MS, v.rc_min_samples, "rc_min_samples"))],
                         className="d-flex gap-2 ms-4"),
                dbc.Switch(id=HIDE_NOISE, label="Hide noise", value=v.hide_noise),
                dbc.Switch(id=HIDE_NONNOISE, label="Hide non-noise", value=v.hide_nonnoise),
            ]),
        ]),
    ], className="mb-2")


def _filter_panel(catalog, v: ExplorerView, matches=None) -> dbc.Card:
    names = catalog.load(v.model).names
    present = elements_present(names)
    label_cols = _label_columns(catalog)
    colour = labelled("Colour by", dbc.Select(
        id=COLOUR_BY, value=v.colour_by, size="sm",
        options=[{"label": "cluster", "value": "cluster"},
                 {"label": "consensus cluster (across models)", "value": "consensus"},
                 {"label": "stability across models", "value": "stability"}]
        + [{"label": f"label: {c}", "value": c} for c in label_cols]))
    return dbc.Card([
        dbc.CardHeader("Elements and labels"),
        dbc.CardBody([
            dcc.Dropdown(id=ELEMENTS, options=present, value=list(v.elements), multi=True,
                         placeholder="Filter by element…" if present else "no chemical formulas in this dataset",
                         disabled=not present),
            dbc.RadioItems(id=ELEMENT_MODE, value=v.element_mode, inline=True, className="small",
                           options=[{"label": "any selected (inclusive)", "value": "inclusive"},
                                    {"label": "all selected (exclusive)", "value": "exclusive"}]),
            html.Div(matches, id=MATCHES, className="small text-muted mb-2"),
            colour,
        ]),
    ], className="mb-2")


def _label_columns(catalog) -> list[str]:
    from backend.data.labels import label_columns

    return label_columns(catalog)


def _fit_to_data(v: ExplorerView, catalog) -> ExplorerView:
    """Drop URL choices the model's data cannot take (elements it lacks, unknown label columns),
    so that the first figure is drawn for exactly the values the controls show."""
    present = set(elements_present(catalog.load(v.model).names))
    colours = (*CONSENSUS_COLOURINGS, *_label_columns(catalog))
    return v.replace(elements=tuple(e for e in v.elements if e in present),
                     colour_by=v.colour_by if v.colour_by in colours else "cluster")


def layout(**query):
    catalog = get_catalog()
    v, notes = _initial_view(query, catalog)
    try:
        v = _fit_to_data(v, catalog)
    except BandscapeError:
        pass  # the figure's alert says what is wrong with the model's data
    out = render_view(v, None)
    first = lambda key, default: default if out[key] is no_update else out[key]  # noqa: E731
    side = html.Div([
        _model_panel(catalog, v.model),
        _cluster_panel(v),
        _filter_panel(catalog, v, first("matches", None)),
        consensus_panel(CONS_MODELS, v.consensus_models, first("consensus_default", None)),
        subset_panel(SUBSET_N, SUBSET_BTN, SUBSET_EXPORT, SUBSET_REPORT),
        html.Div([
            dbc.Button("Export labels (CSV)", id=EXPORT_BTN, size="sm", color="secondary", className="me-2"),
            dbc.Button("Help", id=HELP_OPEN, size="sm", color="info", outline=True),
        ], className="mb-2"),
        *[dcc.Download(id=d) for d in (DOWNLOAD, DOWNLOAD_SEL, DOWNLOAD_SUBSET)],
    ], style={"width": "330px", "flex": "0 0 330px"}, className="pe-2")
    main = html.Div([
        html.Div([dbc.Alert(n, color="warning", dismissable=True) for n in notes], id=NOTES),
        html.Div(first("alert", None), id=ALERT),
        html.Div([html.Span(first("summary", None), id=SUMMARY), html.Span(id=SIZES_BOX),
                  html.Div(first("scores", None), id=SCORES, className="text-muted")], className="small mb-1"),
        map_tools(TOOL),
        html.Div([
            dcc.Loading(dcc.Graph(id=GRAPH, figure=first("figure", {}), style={"height": "72vh"},
                                  config={"scrollZoom": True, "displaylogo": False}),
                        delay_show=400, type="dot"),
            html.Div(id=HOVER_TIP, className="explore-tip"),
        ], className="position-relative"),
        gallery_box(GALLERY_BOX, GALLERY_INFO, GALLERY, EXPORT_SEL),
        html.Div(id=SEL_MSG, className="small"),
        dbc.Button("Cluster cards", id=CARDS_BTN, color="link", size="sm", className="p-0 mt-2"),
        dbc.Collapse(dcc.Loading(html.Div(id=CARDS), delay_show=300, type="dot"), id=CARDS_COLLAPSE, is_open=False),
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
        neighbour_controls(NB_K),
        html.Div(id=NB_PANEL, className="mt-1"),
        dcc.Store(id=PINNED, data=[]),
        dcc.Store(id=CLICKED),
    ], style={"width": "380px", "flex": "0 0 380px"}, className="ps-2")
    return html.Div([
        dcc.Store(id=DRAWN, data=first("drawn", None)),
        dcc.Store(id=VIEW, data=first("view", None)),
        dcc.Store(id=SIZES, data=first("sizes", None)),
        dcc.Store(id=NAMES, data=first("names", None)),
        # polls while a neighbour graph is being built (large models), then stops
        dcc.Interval(id=GRAPH_POLL, interval=1500, disabled=first("poll", True)),
        dcc.Store(id=STYLE),
        # what assets/explore.js needs to know once: ids, the points' trace, the colours
        dcc.Store(id=CLIENT_CONFIG, data={
            "graph": GRAPH, "img": HOVER_IMG, "name": HOVER_NAME, "tip": HOVER_TIP, "click": CLICKED,
            "points": POINTS, "prefetch_around": PREFETCH_AROUND, "prefetch_radius": PREFETCH_RADIUS_PX,
            # a local app has one user: all of a small map's images; a shared server, around the cursor
            "prefetch_all": 0 if is_shared_server() else PREFETCH_ALL_MAX,
            "sizes_box": SIZES_BOX,
            "palette": list(PALETTE), "colours": list(SCALE_COLOURS), "unselected_code": UNSELECTED_CODE,
            "model_list": MODEL_LIST, "selection": SELECTION, "gallery_box": GALLERY_BOX, "gallery": GALLERY,
            "gallery_info": GALLERY_INFO, "gallery_clear": GALLERY_CLEAR, "page_size": GALLERY_PAGE}),
        dcc.Store(id=URL_FORMAT_STORE, data={
            CONTROLS[name]: [*spec, SELECTION_URL_MAX] if name == "selected" else list(spec)
            for name, spec in URL_FORMAT.items()}),
        # the selection (names): written by the browser; the one in the URL is selected at load
        dcc.Store(id=SELECTION, data=list(v.selected) or None),
        dcc.Store(id=SELECT_NAMES, data=list(v.selected) or None),
        dcc.Store(id=SUBSET_NAMES),
        dcc.Store(id=NB_TRIGGER),
        dcc.Store(id=CARDS_TRIGGER),
        # outputs of the clientside functions that act on the page rather than return a value
        *[dcc.Store(id=sink) for sink in (HOVER_SINK, MODEL_LIST_SINK, SIZES_SINK, STYLE_SINK, URL_SINK, TOOL_SINK,
                                          SELECT_SINK, NAMES_SINK)],
        dcc.Store(id=HELP_SEEN, storage_type="local"),
        help_modal(HELP, HELP_CLOSE),
        html.Div([side, main, viewer], className="d-flex"),
    ], className="px-3")


# ---- model choice -------------------------------------------------------------------------

_FIELD_PRIORITY = {"arch": 6, "latent": 5, "window": 4, "epochs": 3, "split": 2, "line_width": 1}
_FIELD_OUTPUTS = {prop: {n: Output(field_id(n), prop) for n, _ in MODEL_FIELDS}
                  for prop in ("value", "options", "disabled")}


def _model_fields(catalog, model_id: str) -> dict:
    """The hyperparameter dropdowns for a model: ``{"value"|"options"|"disabled": {field: …}}``
    (only values that exist among the models of its architecture)."""
    models = list(catalog.models.values())
    current = catalog.get(model_id)
    options = {n: field_options(models, current.arch, n) for n, _ in MODEL_FIELDS}
    return {"value": {n: str(getattr(current, n)) for n, _ in MODEL_FIELDS},
            "options": options,
            "disabled": {n: not o or (current.is_unencoded and n in ("latent", "epochs", "split"))
                         for n, o in options.items()}}


def _model_for_field(catalog, chosen: dict, changed: str) -> str:
    """The existing model with the changed field's new value that keeps most of the other
    choices (same architecture first)."""
    models = list(catalog.models.values())
    pool = [m for m in models if str(getattr(m, changed)) == chosen[changed]]
    if changed != "arch":
        pool = [m for m in pool if m.arch == chosen["arch"]] or pool
    if not pool:
        raise dash.exceptions.PreventUpdate
    return max(pool, key=lambda m: sum(w for n, w in _FIELD_PRIORITY.items()
                                       if n != changed and str(getattr(m, n)) == chosen.get(n))).model_id


# ---- the figure ---------------------------------------------------------------------------

def _summary(result, n: int) -> tuple[html.Span, dict]:
    """The summary line, and the cluster sizes (largest 40) that the browser draws as badges in
    the clusters' colours."""
    sizes = sorted(result.cluster_sizes().items(), key=lambda kv: -kv[1])
    head = html.Span([html.B(f"{result.n_clusters} clusters"), f" · {result.n_noise} noise · {n} materials · sizes: "],
                     id="explore-summary-text")
    return head, {"sizes": sizes[:40], "more": max(len(sizes) - 40, 0)}


_OUTPUTS = dict(figure=Output(GRAPH, "figure"), drawn=Output(DRAWN, "data"), summary=Output(SUMMARY, "children"),
                sizes=Output(SIZES, "data"), scores=Output(SCORES, "children"), style=Output(STYLE, "data"),
                alert=Output(ALERT, "children"), matches=Output(MATCHES, "children"), view=Output(VIEW, "data"),
                names=Output(NAMES, "data"), poll=Output(GRAPH_POLL, "disabled"),
                consensus_default=Output(CONS_MODELS, "placeholder"))


@callback(
    output=dict(view=_OUTPUTS, fields=_FIELD_OUTPUTS, model=Output(MODEL, "value")),
    inputs=dict(controls=_controls(Input), chosen={n: Input(field_id(n), "value") for n, _ in MODEL_FIELDS},
                poll=Input(GRAPH_POLL, "n_intervals")),
    state=dict(drawn=State(DRAWN, "data")),
    # the first figure comes with the page (see layout): one round trip less before the map shows
    prevent_initial_call=True,
)
def update_view(controls: dict, chosen: dict, poll, drawn):
    """The view follows its controls. A changed hyperparameter field first picks the model
    (:func:`_model_for_field`), and a new model, by field or by id, sets every field: one
    callback, so that a model switch is one round trip."""
    catalog = get_catalog()
    trigger = dash.ctx.triggered_id
    changed = next((n for n, _ in MODEL_FIELDS if field_id(n) == trigger), None)
    fields = {prop: dict.fromkeys(outputs, no_update) for prop, outputs in _FIELD_OUTPUTS.items()}
    model = no_update
    if changed is not None:
        model = _model_for_field(catalog, chosen, changed)
        if model == controls["model"]:
            raise dash.exceptions.PreventUpdate
        controls = {**controls, "model": model}
    if (changed is not None or trigger == MODEL) and controls["model"] in catalog:
        fields = _model_fields(catalog, controls["model"])
    return {"view": render_view(ExplorerView.from_values(controls), drawn), "fields": fields, "model": model}


def _names_key(names) -> str:
    return hashlib.blake2b("\n".join(map(str, names)).encode(), digest_size=12).hexdigest()


def render_view(v: ExplorerView, drawn: dict | None) -> dict:
    """The outputs of a view, by name (those of ``_OUTPUTS``): the figure, or a Patch of the one
    on screen (``drawn`` says what it shows), the drawn-figure key, the summary, an alert, the
    element-match count and the hover's view info (model, image window)."""
    out = dict.fromkeys(_OUTPUTS, no_update)
    catalog = get_catalog()
    try:
        empty = [label for name, label in _NUMBER_FIELDS.items() if getattr(v, name) is None]
        if empty:
            raise BandscapeError(f"{', '.join(empty)}: the field is empty or out of range")
        data = catalog.load(v.model)
        building = _graph_in_progress(catalog, v, len(data.names))
        if building is not None:
            return {**out, "alert": building, "poll": False}
        result = cluster_model(catalog, v.model, v.params())
        highlight = element_mask(data.names, list(v.elements), v.element_mode)
        colour_codes_, point_labels, scores = _colouring(catalog, data, result, v)
    except BandscapeError as exc:
        return {**out, "alert": dbc.Alert(str(exc), color="danger")}
    except Exception as exc:  # never a stack trace in the browser, never a dead app
        log.exception("clustering failed")
        return {**out, "alert": dbc.Alert(f"internal error while clustering {v.model}: {exc}", color="danger")}

    n = len(data.names)
    keep = visible_mask(result.noise, v.hide_noise, v.hide_nonnoise)
    overlays = overlay_updates(data.xy, result, highlight, keep)
    style = point_style(result, keep, colour_codes_, with_labels=labels_inline(n))
    colour_key = v.colour_by if v.colour_by not in CONSENSUS_COLOURINGS else f"{v.colour_by}|{scores['filter']}"
    key = {"model": v.model, "names": _names_key(data.names), "colour": colour_key, "type": trace_type(n),
           "overlays": {str(idx): _digest(props) for idx, props in overlays.items()}}
    meta = {"label": None if v.colour_by == "cluster" else v.colour_by, "point_labels": point_labels}
    if v.colour_by in CONSENSUS_COLOURINGS:
        meta["label"] = "consensus"
    info = catalog.get(v.model)
    head, sizes = _summary(result, n)
    out.update(
        summary=head,
        sizes=sizes,
        scores=scores["text"] if scores else None,
        alert=None,
        matches=f"{int(highlight.sum())} of {n} materials match" if v.elements else "",
        drawn=key,
        poll=True,
    )
    if not drawn or drawn.get("names") != key["names"]:
        # the names go once per set of materials, as one string (the browser splits it)
        out["names"] = {"key": key["names"], "names": "\n".join(map(str, data.names))}
    same_points = bool(drawn) and all(drawn.get(k) == key[k] for k in ("names", "type"))
    if not same_points:
        out["figure"] = scatter_figure(data.xy, {**overlays, POINTS: {**style, **positions(data.xy)}},
                                       meta=meta, uirevision=v.model)
    else:
        # the same materials on screen: send only what changed, as typed arrays
        patch, points = Patch(), {}
        changed = [idx for idx in overlays if drawn.get("overlays", {}).get(str(idx)) != key["overlays"][str(idx)]]
        for idx in changed:
            _assign(patch["data"][idx], overlays[idx])
        if drawn.get("model") != v.model:
            points.update(positions(data.xy))
        if drawn.get("colour") != colour_key:
            points["meta"] = meta
        if points:
            # the points trace changes anyway: its colours go with it
            _assign(patch["data"][POINTS], {**points, **style})
            patch["layout"]["uirevision"] = v.model
        else:
            # colours, cluster labels and visibility only: recoloured in place in the browser
            out["style"] = style
        out["figure"] = patch if changed or points else no_update
    if drawn is None or drawn.get("model") != v.model:
        # the known labels for the gallery's captions: on small maps only (like the hover's clusters)
        out["view"] = {"window": info.window, "model": v.model,
                       "labels": _point_labels(catalog, data.names) if labels_inline(n) else None}
        out["consensus_default"] = _consensus_placeholder(catalog, v.model)
    return out


def _graph_in_progress(catalog, v: ExplorerView, n: int):
    """None when the view can be clustered now; else (a large model whose neighbour graph is
    not built yet) the graph job is queued if it was not, and the alert shows its progress."""
    params = v.params()
    if params.algo != "hdbscan" or not uses_graph(n) or graph_cached(catalog, v.model, params.metric, params.p,
                                                                      params.min_samples):
        return None
    from app_state import get_job_runner
    from backend.jobs.formatting import format_duration
    from backend.jobs.graph_job import submit_graph

    rec = submit_graph(get_job_runner(), catalog, v.model, params.metric, params.p, params.min_samples)
    if rec["state"] == "failed":
        return dbc.Alert(f"building the neighbour graph of {v.model} failed: {rec.get('error')}", color="danger")
    prog = rec.get("progress") or {}
    import time

    started = rec.get("started_at")
    elapsed = f", {format_duration(time.time() - started)} so far" if started else ""
    stage = prog.get("stage") or rec["state"]
    fraction = float(prog.get("fraction") or 0.0)
    return dbc.Alert([
        html.Div(f"Building the neighbour graph of {v.model} ({n:,} materials, {params.metric}"
                 f"{f' p={params.p:g}' if params.metric == 'minkowski' else ''}) for HDBSCAN: {stage}{elapsed}. "
                 "It is built once and kept; the map appears when it is done.", id="explore-graph-progress"),
        dbc.Progress(value=round(100 * fraction), striped=True, animated=True, className="mt-1"),
    ], color="info")


def labels_inline(n: int) -> bool:
    """Whether the map carries every material's cluster for the hover (small maps); above, the
    page asks the server for the hovered material's (``/explore-point``), so that a recluster
    sends one byte per material: the colour codes."""
    return n <= LABELS_INLINE_MAX


def _digest(props: dict) -> str:
    return hashlib.blake2b(json.dumps(props, sort_keys=True).encode(), digest_size=8).hexdigest()


def _assign(node, props: dict) -> None:
    """Set properties given by dotted paths (``marker.color``) on a Patch location."""
    for path, value in props.items():
        *parents, leaf = path.split(".")
        target = node
        for part in parents:
            target = target[part]
        target[leaf] = value


def _colouring(catalog, data, result, v: ExplorerView):
    """Colour codes, per-point texts for the hover and a summary (``{"text": …}``) when the map
    is coloured by a known label or by the consensus across models; all None for the clusters."""
    if v.colour_by == "cluster":
        return None, None, None
    if v.colour_by in CONSENSUS_COLOURINGS:
        return _consensus_colouring(catalog, data, v)
    from backend.cluster.validation import external_scores
    from backend.data.labels import load_labels

    colour_by = v.colour_by
    truth = load_labels(catalog, colour_by, data.names)
    cats, codes = np.unique(truth, return_inverse=True)
    s = external_scores(truth, result.labels)
    text = (f"vs label '{colour_by}' ({len(cats)} classes): accuracy {s['accuracy']:.3f}, NMI {s['nmi']:.3f}, "
            f"ARI {s['ari']:.3f} (noise as a cluster); without noise: accuracy {s['accuracy_no_noise']:.3f}, "
            f"NMI {s['nmi_no_noise']:.3f}, ARI {s['ari_no_noise']:.3f}")
    return colour_codes(codes), [str(t) for t in truth], {"text": text, **s}


def _consensus_colouring(catalog, data, v: ExplorerView):
    """The consensus of the filter's models in the view's cell, on this model's materials."""
    import pandas as pd

    from backend.discover.consensus import STABLE, consensus_models, model_consensus

    flt, ids = consensus_models(catalog, v.consensus_models, _window(catalog, v.model))
    cons = model_consensus(catalog, ids, v.params())
    at = pd.Index(cons.materials).get_indexer(data.names)
    found = at >= 0
    labels = np.where(found, cons.labels[np.maximum(at, 0)], -1)
    stab = np.where(found, cons.stability[np.maximum(at, 0)], np.nan)
    codes = colour_codes(labels) if v.colour_by == "consensus" else stability_codes(stab)
    texts = [("missing from some models" if not f else f"{'noise' if c < 0 else f'cluster {c}'} · stability {s:.2f}")
             for f, c, s in zip(found, labels, stab)]
    c = cons.counts()
    text = html.Span([
        html.B(f"{c['stable']} of {len(data.names)} materials stable"),
        f" (stability ≥ {STABLE}: {c['stable_in_cluster']} in a consensus cluster, {c['stable_noise']} consistently "
        f"noise) · consensus of {len(ids)} models ({flt or 'all autoencoders'}) at this cell: {cons.n_clusters} clusters, {cons.n_noise} noise"
        + (f"; {int((~found).sum())} materials are missing from some models" if not found.all() else "")
        + (" · colours: red unstable → blue stable" if v.colour_by == "stability" else ""),
    ], id="explore-consensus-summary")
    return codes, texts, {"text": text, "filter": flt}


def _consensus_placeholder(catalog, model_id) -> str:
    """What the consensus combines when its filter is empty (the field's placeholder)."""
    from backend.discover.consensus import consensus_models

    try:
        flt, ids = consensus_models(catalog, None, _window(catalog, model_id))
    except BandscapeError:
        return ""
    return f"{flt or 'all autoencoders'} ({len(ids)} models)"


def _window(catalog, model_id):
    return catalog.get(model_id).window if model_id in catalog else None


def _point_labels(catalog, names) -> dict | None:
    """Every label column of labels.csv, per material (for the gallery's captions)."""
    from backend.data.labels import load_labels

    cols = _label_columns(catalog)
    return {c: load_labels(catalog, c, names).tolist() for c in cols} or None


# ---- hover, pin, export, URL, help (the browser side is assets/explore.js) -------------------

clientside_callback(
    ClientsideFunction("explore", "hoverView"),
    Output(HOVER_SINK, "data"),  # nothing is written: the function installs the hover
    Input(VIEW, "data"), State(CLIENT_CONFIG, "data"),
)

clientside_callback(
    ClientsideFunction("explore", "names"),
    Output(NAMES_SINK, "data"),  # nothing is written: the function keeps the names for the hover
    Input(NAMES, "data"),
)

clientside_callback(
    ClientsideFunction("explore", "restyle"),
    Output(STYLE_SINK, "data"),  # nothing is written: the function recolours the map in place
    Input(STYLE, "data"), State(CLIENT_CONFIG, "data"),
    prevent_initial_call=True,
)

clientside_callback(
    ClientsideFunction("explore", "sizes"),
    Output(SIZES_SINK, "data"),  # nothing is written: the function draws the badges
    Input(SIZES, "data"), State(CLIENT_CONFIG, "data"),
)

clientside_callback(
    ClientsideFunction("explore", "modelList"),
    Output(MODEL_LIST_SINK, "data"),
    Input(MODEL_IDS, "data"), State(CLIENT_CONFIG, "data"),
)

clientside_callback(
    ClientsideFunction("explore", "boxes"),
    Output(HDBSCAN_BOX, "style"), Output(KCLUSTER_BOX, "style"), Output(P_BOX, "style"),
    Input(ALGO, "value"), Input(METRIC, "value"),
)

clientside_callback(
    ClientsideFunction("explore", "toggle"),
    Output(ADV_COLLAPSE, "is_open"), Input(ADV_BTN, "n_clicks"), State(ADV_COLLAPSE, "is_open"),
    prevent_initial_call=True,
)

clientside_callback(
    ClientsideFunction("explore", "writeUrl"),
    Output(URL_SINK, "data"),  # nothing is written: the callback only edits the address
    [Input(CONTROLS[name], _PROPS.get(name, "value")) for name in CONTROLS], State(URL_FORMAT_STORE, "data"),
    prevent_initial_call=True,
)

# The help opens by itself on the first visit (remembered in the browser), once the map is
# drawn, and on the Help button.
clientside_callback(
    ClientsideFunction("explore", "help"),
    Output(HELP, "is_open"), Output(HELP_SEEN, "data"),
    Input(HELP_OPEN, "n_clicks"), Input(HELP_CLOSE, "n_clicks"), State(HELP_SEEN, "data"),
)


@callback(
    output=dict(pinned=Output(PINNED, "data"), panel=Output(PIN_PANEL, "children")),
    inputs=dict(clicked=Input(CLICKED, "data"), mode=Input(COMPARE, "value")),
    state=dict(pinned=State(PINNED, "data"), view=State(VIEW, "data")),
    prevent_initial_call=True,
)
def pin_material(clicked, mode, pinned, view):
    """A click (found in the browser: the material the hover shows) pins it; two pinned
    materials are shown together for comparison."""
    pinned = list(pinned or [])
    if dash.ctx.triggered_id == CLICKED:
        if not clicked or not clicked.get("name"):
            raise dash.exceptions.PreventUpdate
        name = clicked["name"]
        pinned = [p for p in pinned if p != name][-1:] + [name]
    if not pinned:
        raise dash.exceptions.PreventUpdate
    try:
        return {"pinned": pinned, "panel": pinned_panel(pinned, (view or {}).get("window"), mode or "overlay")}
    except BandscapeError as exc:
        return {"pinned": pinned, "panel": dbc.Alert(str(exc), color="danger")}


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
    from backend.data.bands import load_band_data

    out = []
    for name in names:
        path = catalog.resolve_file(str((band_dir / f"{name}.npz").relative_to(catalog.root)))
        if path is not None:
            out.append(load_band_data(path))
    return out


@callback(
    Output(DOWNLOAD, "data"),
    inputs=dict(_=Input(EXPORT_BTN, "n_clicks")),
    state=dict(controls=_controls(State, ("model", *CLUSTER_FIELDS))),
    prevent_initial_call=True,
)
def export_labels(_, controls: dict):
    catalog = get_catalog()
    view = ExplorerView.from_values(controls)
    params = view.params().validate()
    data = catalog.load(view.model)
    table = labels_table(data, cluster_model(catalog, view.model, params), params)
    return dcc.send_data_frame(table.to_csv, f"{view.model}_{params.algo}_labels.csv", index=False)


# ---- discovery: selection and gallery, neighbours, consensus, cluster cards, subsets ---------

clientside_callback(
    ClientsideFunction("explore", "tool"),
    Output(TOOL_SINK, "data"), Input(TOOL, "value"),
)

# a selection given by names: the URL's at load, a representative subset when chosen
clientside_callback(
    ClientsideFunction("explore", "selectFromInputs"),
    Output(SELECT_SINK, "data"),
    Input(SELECT_NAMES, "data"), Input(SUBSET_NAMES, "data"), State(CLIENT_CONFIG, "data"),
)


@callback(
    output=dict(download=Output(DOWNLOAD_SEL, "data"), message=Output(SEL_MSG, "children")),
    inputs=dict(_=Input(EXPORT_SEL, "n_clicks")),
    state=dict(names=State(SELECTION, "data"), controls=_controls(State, ("model", *CLUSTER_FIELDS))),
    prevent_initial_call=True,
)
def export_selection(_, names, controls: dict):
    """The selected materials with their cluster and map coordinates, as CSV."""
    catalog = get_catalog()
    view = ExplorerView.from_values(controls)
    try:
        params = view.params().validate()
        data = catalog.load(view.model)
        table = selection_table(data, cluster_model(catalog, view.model, params), names)
    except BandscapeError as exc:
        return {"download": no_update, "message": dbc.Alert(str(exc), color="warning", className="py-1")}
    return {"download": dcc.send_data_frame(table.to_csv, f"{view.model}_selection.csv", index=False),
            "message": None}


clientside_callback(
    ClientsideFunction("explore", "stampWhen"),
    Output(NB_TRIGGER, "data"), Input(PINNED, "data"), Input(NB_K, "value"), Input(VIEW, "data"),
    prevent_initial_call=True,
)


@callback(
    output=dict(panel=Output(NB_PANEL, "children"), figure=Output(GRAPH, "figure", allow_duplicate=True)),
    inputs=dict(_=Input(NB_TRIGGER, "data")),
    state=dict(pinned=State(PINNED, "data"), k=State(NB_K, "value"),
               controls=_controls(State, ("model", *CLUSTER_FIELDS))),
    prevent_initial_call=True,
)
def show_neighbours(_, pinned, k, controls: dict):
    """The last pinned material's k nearest materials in fingerprint space (the clustering's
    metric): thumbnails and distances beside the map, lines to them on it."""
    from backend.discover.neighbours import model_neighbours

    patch = Patch()
    if not pinned:
        raise dash.exceptions.PreventUpdate
    catalog = get_catalog()
    v = ExplorerView.from_values(controls)
    material = pinned[-1]
    try:
        metric, p = clustering_metric(v.params())
        table = model_neighbours(catalog, v.model, material, k, metric, p)
        data = catalog.load(v.model)
    except BandscapeError as exc:
        _assign(patch["data"][NEIGHBOURS], neighbour_lines(None, None))
        return {"panel": dbc.Alert(str(exc), color="warning", className="py-1 small"), "figure": patch}
    centre = int(np.flatnonzero(data.names == material)[0])
    _assign(patch["data"][NEIGHBOURS], neighbour_lines(data.xy, centre, table["index"].to_numpy()))
    metric_text = f"Minkowski p = {p:g}" if metric == "minkowski" else "Euclidean"
    return {"panel": neighbour_list(material, table, _window(catalog, v.model), metric_text), "figure": patch}


@callback(
    output=dict(report=Output(SUBSET_REPORT, "children"), names=Output(SUBSET_NAMES, "data"),
                download=Output(DOWNLOAD_SUBSET, "data")),
    inputs=dict(_choose=Input(SUBSET_BTN, "n_clicks"), _export=Input(SUBSET_EXPORT, "n_clicks")),
    state=dict(size=State(SUBSET_N, "value"), controls=_controls(State, ("model", *CLUSTER_FIELDS))),
    prevent_initial_call=True,
)
def representative_subset(_choose, _export, size, controls: dict):
    """N representative materials of the clustering on screen: *Choose* reports them and selects
    them on the map; *Export* writes them as CSV."""
    from backend.discover.subset import model_subset

    out = dict(report=no_update, names=no_update, download=no_update)
    catalog = get_catalog()
    v = ExplorerView.from_values(controls)
    try:
        if size is None:
            raise BandscapeError("subset size: the field is empty or not a whole number >= 1")
        table, sub = model_subset(catalog, v.model, v.params(), size)
    except BandscapeError as exc:
        return {**out, "report": dbc.Alert(str(exc), color="warning", className="py-1")}
    if dash.ctx.triggered_id == SUBSET_EXPORT:
        return {**out, "download": dcc.send_data_frame(table.to_csv, f"{v.model}_subset_{len(table)}.csv", index=False)}
    return {**out, "report": subset_report(sub, len(catalog.load(v.model).names)), "names": table["material"].tolist()}


clientside_callback(
    ClientsideFunction("explore", "toggle"),
    Output(CARDS_COLLAPSE, "is_open"), Input(CARDS_BTN, "n_clicks"), State(CARDS_COLLAPSE, "is_open"),
    prevent_initial_call=True,
)


clientside_callback(
    ClientsideFunction("explore", "stampWhen"),
    Output(CARDS_TRIGGER, "data"), Input(CARDS_COLLAPSE, "is_open"), Input(DRAWN, "data"),
    prevent_initial_call=True,
)


@callback(
    Output(CARDS, "children"),
    inputs=dict(_=Input(CARDS_TRIGGER, "data")),
    state=dict(controls=_controls(State, ("model", "colour_by", *CLUSTER_FIELDS))),
    prevent_initial_call=True,
)
def show_cluster_cards(_, controls: dict):
    """Per cluster: size, medoid's band structure, over-represented elements, label mix."""
    from backend.discover.cards import model_cluster_cards

    catalog = get_catalog()
    v = ExplorerView.from_values(controls)
    cols = _label_columns(catalog)
    column = v.colour_by if v.colour_by in cols else (cols[0] if cols else None)
    try:
        cards = model_cluster_cards(catalog, v.model, v.params(), column)
    except BandscapeError as exc:
        return dbc.Alert(str(exc), color="warning", className="py-1")
    return cluster_cards_view(cards, _window(catalog, v.model))
