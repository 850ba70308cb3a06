"""The cluster explorer (home page): choose a model, recluster live, hover to see band structures.

All computation is in ``backend`` (cached there); fingerprints never leave the server. A
recluster or a filter sends only per-point typed arrays (colour codes, cluster labels, opacity)
as a ``Patch`` that plotly.js applies as a restyle; a model switch adds the positions. The
hovered material is found in the browser (``assets/explore.js``), which sets its image at once.
The view (:class:`backend.explorer_view.ExplorerView`) is the URL's query string.
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.parse

import dash
import dash_bootstrap_components as dbc
import numpy as np
from dash import (ClientsideFunction, Input, Output, Patch, State, callback, clientside_callback, dcc, html,
                  no_update)

from app_state import get_catalog
from backend.clustering import cluster_model, default_model, graph_cached, labels_table, uses_graph
from backend.elements import element_mask, elements_present
from backend.errors import BandscapeError
from backend.explorer_view import CLUSTER_FIELDS, URL_FORMAT, ExplorerView
from components.explore_controls import (MODEL_FIELDS, field_id, field_options, labelled,
                                         number_input)
from components.help import help_modal
from components.scatter import (NOISE_COLOUR, PALETTE, POINTS, PREFETCH_AROUND, PREFETCH_RADIUS_PX, overlay_updates,
                                point_style, positions, scatter_figure, trace_type, visible_mask)

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

#: the control of each view field (backend/explorer_view.py names the fields and their URL keys)
CONTROLS = {
    "model": MODEL, "algo": ALGO, "min_cluster_size": MCS, "min_samples": MS, "selection": SEL,
    "metric": METRIC, "p": P, "n_clusters": K, "double_cluster": DC, "dc_eps": DC_EPS,
    "dc_min_samples": DC_MS, "recluster_noise": RC, "rc_min_cluster_size": RC_MCS, "rc_min_samples": RC_MS,
    "hide_noise": HIDE_NOISE, "hide_nonnoise": HIDE_NONNOISE, "elements": ELEMENTS,
    "element_mode": ELEMENT_MODE, "colour_by": COLOUR_BY,
}
assert set(CONTROLS) == set(URL_FORMAT), "every field of the view has a control"
#: what the numbers' error message calls each numeric field
_NUMBER_FIELDS = {"min_cluster_size": "min cluster size (>= 2)", "min_samples": "min samples (>= 1)",
                  "p": "p (> 0)", "n_clusters": "number of clusters (>= 1)", "dc_eps": "double-cluster eps (> 0)",
                  "dc_min_samples": "double-cluster min samples (>= 1)",
                  "rc_min_cluster_size": "recluster min cluster size (>= 2)",
                  "rc_min_samples": "recluster min samples (>= 1)"}


def _controls(kind, fields=CONTROLS) -> dict:
    """``{field: Input/State(component, "value")}``: callbacks receive the view by field name."""
    return {name: kind(CONTROLS[name], "value") for name in fields}


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
                html.Div([labelled("Min cluster size", number_input(MCS, v.min_cluster_size, 2, 1)),
                          labelled("Min samples", number_input(MS, v.min_samples, 1, 1))], className="d-flex gap-2"),
                labelled("Cluster selection", dbc.RadioItems(
                    id=SEL, value=v.selection, inline=True,
                    options=[{"label": "leaf", "value": "leaf"}, {"label": "eom", "value": "eom"}])),
                html.Div([
                    labelled("Metric", dbc.Select(id=METRIC, value=v.metric, size="sm",
                                                  options=[{"label": "Minkowski", "value": "minkowski"},
                                                           {"label": "Euclidean", "value": "euclidean"}]), 120),
                    html.Div(labelled("p", number_input(P, v.p, 0.01, "any", 80)), id=P_BOX),
                ], className="d-flex gap-2"),
            ]),
            html.Div(id=KCLUSTER_BOX, children=[labelled("Number of clusters", number_input(K, v.n_clusters, 1, 1))]),
            dbc.Button("Advanced options", id=ADV_BTN, color="link", size="sm", className="p-0"),
            dbc.Collapse(id=ADV_COLLAPSE, is_open=bool(v.double_cluster or v.recluster_noise or v.hide_noise
                                                       or v.hide_nonnoise), children=[
                dbc.Switch(id=DC, label="Double cluster (DBSCAN halos on the UMAP)", value=v.double_cluster),
                html.Div([labelled("eps", number_input(DC_EPS, v.dc_eps, 0.01, "any", 80)),
                          labelled("min samples", number_input(DC_MS, v.dc_min_samples, 1, 1))],
                         className="d-flex gap-2 ms-4"),
                dbc.Switch(id=RC, label="Recluster noise (HDBSCAN on noise points)", value=v.recluster_noise),
                html.Div([labelled("min cluster size", number_input(RC_MCS, v.rc_min_cluster_size, 2, 1)),
                          labelled("min samples", number_input(RC_MS, v.rc_min_samples, 1, 1))],
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
    # always present (callbacks take its value); shown only when the dataset has labels
    colour = html.Div(labelled("Colour by", dbc.Select(
        id=COLOUR_BY, value=v.colour_by, size="sm",
        options=[{"label": "cluster", "value": "cluster"}] + [{"label": f"label: {c}", "value": c} for c in label_cols])),
        style=None if label_cols else {"display": "none"})
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
    from backend.labels import label_columns

    return label_columns(catalog)


def _fit_to_data(v: ExplorerView, catalog) -> ExplorerView:
    """Drop URL choices the model's data cannot take (elements it lacks, unknown label columns),
    so that the first figure is drawn for exactly the values the controls show."""
    present = set(elements_present(catalog.load(v.model).names))
    return v.replace(elements=tuple(e for e in v.elements if e in present),
                     colour_by=v.colour_by if v.colour_by in _label_columns(catalog) else "cluster")


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
        html.Div([
            dbc.Button("Export labels (CSV)", id=EXPORT_BTN, size="sm", color="secondary", className="me-2"),
            dbc.Button("Help", id=HELP_OPEN, size="sm", color="info", outline=True),
        ], className="mb-2"),
        dcc.Download(id=DOWNLOAD),
    ], style={"width": "330px", "flex": "0 0 330px"}, className="pe-2")
    main = html.Div([
        html.Div([dbc.Alert(n, color="warning", dismissable=True) for n in notes], id=NOTES),
        html.Div(first("alert", None), id=ALERT),
        html.Div([html.Span(first("summary", None), id=SUMMARY), html.Span(id=SIZES_BOX),
                  html.Div(first("scores", None), id=SCORES, className="text-muted")], className="small mb-1"),
        html.Div([
            dcc.Loading(dcc.Graph(id=GRAPH, figure=first("figure", {}), style={"height": "72vh"},
                                  config={"scrollZoom": True, "displaylogo": False}),
                        delay_show=400, type="dot"),
            html.Div(id=HOVER_TIP, className="explore-tip"),
        ], className="position-relative"),
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
            "sizes_box": SIZES_BOX,
            "palette": list(PALETTE), "noise": NOISE_COLOUR, "model_list": MODEL_LIST}),
        dcc.Store(id=URL_FORMAT_STORE, data={CONTROLS[name]: list(spec) for name, spec in URL_FORMAT.items()}),
        # outputs of the clientside functions that act on the page rather than return a value
        *[dcc.Store(id=sink) for sink in (HOVER_SINK, MODEL_LIST_SINK, SIZES_SINK, STYLE_SINK, URL_SINK, NAMES_SINK)],
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
                names=Output(NAMES, "data"), poll=Output(GRAPH_POLL, "disabled"))


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
        label_codes, point_labels, scores = _colouring(catalog, data, result, v.colour_by)
    except BandscapeError as exc:
        return {**out, "alert": dbc.Alert(str(exc), color="danger")}
    except Exception as exc:  # never a stack trace in the browser, never a dead app
        log.exception("clustering failed")
        return {**out, "alert": dbc.Alert(f"internal error while clustering {v.model}: {exc}", color="danger")}

    n = len(data.names)
    keep = visible_mask(result.noise, v.hide_noise, v.hide_nonnoise)
    overlays = overlay_updates(data.xy, result, highlight, keep)
    style = point_style(result, keep, label_codes, with_labels=labels_inline(n))
    key = {"model": v.model, "names": _names_key(data.names), "colour": v.colour_by, "type": trace_type(n),
           "overlays": {str(idx): _digest(props) for idx, props in overlays.items()}}
    meta = {"label": None if v.colour_by == "cluster" else v.colour_by, "point_labels": point_labels}
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
        if drawn.get("colour") != v.colour_by:
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
        out["view"] = {"window": info.window, "model": v.model}
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
    from backend.jobs.graphs import submit_graph

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


def _colouring(catalog, data, result, colour_by: str):
    """Colour codes, per-point label names (for the hover) and scores against a known label;
    all None when colouring by cluster."""
    if colour_by == "cluster":
        return None, None, None
    from backend.labels import load_labels
    from backend.validation import external_scores

    truth = load_labels(catalog, colour_by, data.names)
    cats, codes = np.unique(truth, return_inverse=True)
    s = external_scores(truth, result.labels)
    text = (f"vs label '{colour_by}' ({len(cats)} classes): accuracy {s['accuracy']:.3f}, NMI {s['nmi']:.3f}, "
            f"ARI {s['ari']:.3f} (noise as a cluster); without noise: accuracy {s['accuracy_no_noise']:.3f}, "
            f"NMI {s['nmi_no_noise']:.3f}, ARI {s['ari_no_noise']:.3f}")
    return codes, [str(t) for t in truth], {"text": text, **s}


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
    [Input(cid, "value") for cid in CONTROLS.values()], State(URL_FORMAT_STORE, "data"),
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
    from backend.bands import load_band_data

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
