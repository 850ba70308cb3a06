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

This module holds the page's layout and the wiring of its callbacks; the pieces are in
``components/``: the component ids (``explore_ids``), the control panels and the model choice
(``explore_controls``), what the browser side is told once (``explore_client``), what a view
shows (``explore_view``: the figure, its Patch or in-place style, the summary; ``map_colouring``:
label, consensus and stability colours), the pinned materials (``pinned``) and the discovery
panels (``discover_panels``).
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
import numpy as np
from dash import (
    ClientsideFunction,
    Input,
    Output,
    Patch,
    State,
    callback,
    clientside_callback,
    dcc,
    html,
    no_update,
)

from app_state import get_catalog, get_job_runner
from backend.cluster.models import cluster_model, labels_table, selection_table
from backend.cluster.params import clustering_metric
from backend.data.labels import label_columns
from backend.discover.explorer_view import (
    CLUSTER_FIELDS,
    SELECTION_URL_MAX,
    URL_FORMAT,
    ExplorerView,
)
from backend.errors import BandscapeError
from components import explore_ids as ids
from components.discover_panels import (
    cluster_cards_view,
    consensus_panel,
    gallery_box,
    map_tools,
    metric_text,
    neighbour_controls,
    neighbour_list,
    subset_panel,
    subset_report,
)
from components.explore_client import client_config
from components.explore_controls import (
    MODEL_FIELDS,
    cluster_panel,
    field_id,
    filter_panel,
    changed_fields,
    model_for_field,
    model_panel,
)
from components.explore_ids import control_prop, field_controls
from components.explore_view import (
    VIEW_OUTPUTS,
    assign_paths,
    render_view,
    view_from_url,
)
from components.help import help_modal
from components.map_colouring import model_window
from components.pinned import NEEDS_BAND_DATA, has_band_data, pinned_panel
from components import explore_place
from components.scatter import (
    MAP_CONFIG,
    NEIGHBOURS,
    neighbour_lines,
)

dash.register_page(__name__, path="/", name="Explore", title="bandscape · explore", order=0)


def layout(**query):
    catalog = get_catalog()
    v, notes = view_from_url(catalog, query)
    out = render_view(catalog, v, drawn=None, job_runner=get_job_runner)
    # the first view's outputs (those a view leaves as they are keep the components' defaults)
    first = {key: value for key, value in out.items() if value is not no_update}
    first["placed"] = explore_place.draw_placed(catalog, v, first.get("figure"))
    return html.Div([
        *_stores(v, first),
        help_modal(ids.HELP, ids.HELP_CLOSE),
        html.Div([_side(catalog, v, first), _main(notes, first), _viewer(catalog)], className="d-flex"),
    ], className="px-3")


def _side(catalog, v: ExplorerView, first: dict) -> html.Div:
    return html.Div([
        model_panel(catalog, v.model),
        cluster_panel(v),
        filter_panel(catalog, v, first.get("matches")),
        explore_place.panel(catalog, v, first.get("placed") or []),
        consensus_panel(ids.CONS_MODELS, v.consensus_models, first.get("consensus_default")),
        subset_panel(ids.SUBSET_N, ids.SUBSET_BTN, ids.SUBSET_EXPORT, ids.SUBSET_REPORT),
        html.Div([
            dbc.Button("Export labels (CSV)", id=ids.EXPORT_BTN, size="sm", color="secondary", className="me-2"),
            dbc.Button("Help", id=ids.HELP_OPEN, size="sm", color="info", outline=True),
        ], className="mb-2"),
        *[dcc.Download(id=d) for d in (ids.DOWNLOAD, ids.DOWNLOAD_SEL, ids.DOWNLOAD_SUBSET)],
    ], style={"width": "330px", "flex": "0 0 330px"}, className="pe-2")


def _main(notes: list[str], first: dict) -> html.Div:
    return html.Div([
        html.Div([dbc.Alert(n, color="warning", dismissable=True) for n in notes], id=ids.NOTES),
        html.Div(first.get("alert"), id=ids.ALERT),
        html.Div([html.Span(first.get("summary"), id=ids.SUMMARY), html.Span(id=ids.SIZES_BOX),
                  html.Div(first.get("scores"), id=ids.SCORES, className="text-muted")], className="small mb-1"),
        html.Div([map_tools(ids.TOOL), _figure_download()], className="d-flex justify-content-between"),
        html.Div([
            dcc.Loading(dcc.Graph(id=ids.GRAPH, figure=first.get("figure", {}), style={"height": "72vh"},
                                  config=MAP_CONFIG),
                        delay_show=400, type="dot"),
            html.Div(id=ids.HOVER_TIP, className="explore-tip"),
        ], className="position-relative"),
        gallery_box(ids.GALLERY_BOX, ids.GALLERY_INFO, ids.GALLERY, ids.EXPORT_SEL),
        html.Div(id=ids.SEL_MSG, className="small"),
        dbc.Button("Cluster cards", id=ids.CARDS_BTN, color="link", size="sm", className="p-0 mt-2"),
        dbc.Collapse(dcc.Loading(html.Div(id=ids.CARDS), delay_show=300, type="dot"), id=ids.CARDS_COLLAPSE,
                     is_open=False),
    ], style={"flex": "1 1 auto", "minWidth": "0"})


def _figure_download() -> html.Div:
    """Buttons that download the map as a figure for a paper (assets/explore.js builds it)."""
    button = dict(size="sm", color="secondary", outline=True, className="py-0 ms-1")
    return html.Div([
        html.Span("Download map:", className="text-muted"),
        dbc.Button("PNG", id=ids.FIGURE_PNG, title="the map with axis titles, legend and caption, as PNG", **button),
        dbc.Button("SVG", id=ids.FIGURE_SVG, title="the map with axis titles, legend and caption, as SVG (vector)",
                   **button),
    ], className="small mb-1 text-nowrap")


def _viewer(catalog) -> html.Div:
    bands = has_band_data(catalog)
    return html.Div([
        html.Div("Hover a point to see its band structure; click to pin it (two pinned ones are compared).",
                 className="small text-muted"),
        html.Div(id=ids.HOVER_NAME, className="fw-bold small mt-1"),
        html.Img(id=ids.HOVER_IMG, alt="", style={"width": "100%", "minHeight": "120px"}),
        html.Hr(),
        dbc.RadioItems(id=ids.COMPARE, value="overlay", inline=True, className="small",
                       options=[{"label": "overlay", "value": "overlay", "disabled": not bands},
                                {"label": "side by side", "value": "side", "disabled": not bands}]),
        None if bands else html.Div(NEEDS_BAND_DATA, className="small text-muted", id="explore-needs-bands"),
        html.Div(id=ids.PIN_PANEL),
        neighbour_controls(ids.NB_K),
        html.Div(id=ids.NB_PANEL, className="mt-1"),
        dcc.Store(id=ids.PINNED, data=[]),
        dcc.Store(id=ids.CLICKED),
    ], style={"width": "380px", "flex": "0 0 380px"}, className="ps-2")


def _stores(v: ExplorerView, first: dict) -> list:
    return [
        dcc.Store(id=ids.DRAWN, data=first.get("drawn")),
        dcc.Store(id=ids.VIEW, data=first.get("view")),
        dcc.Store(id=ids.SIZES, data=first.get("legend")),
        dcc.Store(id=ids.NAMES, data=first.get("names")),
        # polls while a neighbour graph is being built (large models), then stops
        dcc.Interval(id=ids.GRAPH_POLL, interval=1500, disabled=first.get("poll", True)),
        dcc.Store(id=ids.STYLE),
        dcc.Store(id=ids.CLIENT_CONFIG, data=client_config()),
        dcc.Store(id=ids.URL_FORMAT_STORE, data={
            ids.CONTROLS[name]: [*spec, SELECTION_URL_MAX] if name == "selected" else list(spec)
            for name, spec in URL_FORMAT.items()}),
        # the selection (names): written by the browser; the one in the URL is selected at load
        dcc.Store(id=ids.SELECTION, data=list(v.selected) or None),
        dcc.Store(id=ids.SELECT_NAMES, data=list(v.selected) or None),
        dcc.Store(id=ids.SUBSET_NAMES),
        dcc.Store(id=ids.NB_TRIGGER),
        dcc.Store(id=ids.CARDS_TRIGGER),
        # outputs of the clientside functions that act on the page rather than return a value
        *[dcc.Store(id=sink) for sink in (ids.HOVER_SINK, ids.MODEL_LIST_SINK, ids.SIZES_SINK, ids.STYLE_SINK,
                                          ids.URL_SINK, ids.TOOL_SINK, ids.SELECT_SINK, ids.NAMES_SINK,
                                          ids.FIGURE_SINK)],
        dcc.Store(id=ids.HELP_SEEN, storage_type="local"),
    ]


# ---- the view: model choice, clustering, the map (computed in components/explore_view.py) ----

_FIELD_OUTPUTS = {prop: {n: Output(field_id(n), prop) for n, _ in MODEL_FIELDS}
                  for prop in ("value", "options", "disabled")}
_OUTPUTS = dict(figure=Output(ids.GRAPH, "figure"), drawn=Output(ids.DRAWN, "data"),
                summary=Output(ids.SUMMARY, "children"), legend=Output(ids.SIZES, "data"),
                scores=Output(ids.SCORES, "children"), style=Output(ids.STYLE, "data"),
                alert=Output(ids.ALERT, "children"), matches=Output(ids.MATCHES, "children"),
                view=Output(ids.VIEW, "data"), names=Output(ids.NAMES, "data"),
                poll=Output(ids.GRAPH_POLL, "disabled"), consensus_default=Output(ids.CONS_MODELS, "placeholder"))
assert tuple(_OUTPUTS) == VIEW_OUTPUTS, "every output of a view is wired"


@callback(
    output=dict(view=_OUTPUTS, fields=_FIELD_OUTPUTS, model=Output(ids.MODEL, "value")),
    inputs=dict(controls=field_controls(Input), chosen={n: Input(field_id(n), "value") for n, _ in MODEL_FIELDS},
                poll=Input(ids.GRAPH_POLL, "n_intervals")),
    state=dict(drawn=State(ids.DRAWN, "data")),
    # the first figure comes with the page (see layout): one round trip less before the map shows
    prevent_initial_call=True,
)
def update_view(controls: dict, chosen: dict, poll, drawn):
    """The view follows its controls. A changed hyperparameter field first picks the model
    (:func:`~components.explore_controls.model_for_field`), and a new model, by field or by id,
    sets every field: one callback, so that a model switch is one round trip."""
    catalog = get_catalog()
    trigger = dash.ctx.triggered_id
    changed = next((n for n, _ in MODEL_FIELDS if field_id(n) == trigger), None)
    fields = {prop: dict.fromkeys(outputs, no_update) for prop, outputs in _FIELD_OUTPUTS.items()}
    model = no_update
    if changed is not None:
        model = model_for_field(catalog, chosen, changed)
        if model is None or model == controls["model"]:
            raise dash.exceptions.PreventUpdate
        controls = {**controls, "model": model}
    if (changed is not None or trigger == ids.MODEL) and controls["model"] in catalog:
        fields = changed_fields(catalog, controls["model"], shown=(drawn or {}).get("model"))
    view = render_view(catalog, ExplorerView.from_values(controls), drawn=drawn, job_runner=get_job_runner)
    return {"view": view, "fields": fields, "model": model}


# ---- hover, pin, export, URL, help (the browser side is assets/explore.js) -------------------

clientside_callback(
    ClientsideFunction("explore", "hoverView"),
    Output(ids.HOVER_SINK, "data"),  # nothing is written: the function installs the hover
    Input(ids.VIEW, "data"), State(ids.CLIENT_CONFIG, "data"),
)

clientside_callback(
    ClientsideFunction("explore", "names"),
    Output(ids.NAMES_SINK, "data"),  # nothing is written: the function keeps the names for the hover
    Input(ids.NAMES, "data"),
)

clientside_callback(
    ClientsideFunction("explore", "restyle"),
    Output(ids.STYLE_SINK, "data"),  # nothing is written: the function recolours the map in place
    Input(ids.STYLE, "data"), State(ids.CLIENT_CONFIG, "data"),
    prevent_initial_call=True,
)

clientside_callback(
    ClientsideFunction("explore", "legend"),
    Output(ids.SIZES_SINK, "data"),  # nothing is written: the function draws the legend
    Input(ids.SIZES, "data"), State(ids.CLIENT_CONFIG, "data"),
)

clientside_callback(
    ClientsideFunction("explore", "modelList"),
    Output(ids.MODEL_LIST_SINK, "data"),
    Input(ids.MODEL_IDS, "data"), State(ids.CLIENT_CONFIG, "data"),
)

clientside_callback(
    ClientsideFunction("explore", "boxes"),
    Output(ids.HDBSCAN_BOX, "style"), Output(ids.KCLUSTER_BOX, "style"), Output(ids.P_BOX, "style"),
    Input(ids.ALGO, "value"), Input(ids.METRIC, "value"),
)

clientside_callback(
    ClientsideFunction("explore", "toggle"),
    Output(ids.ADV_COLLAPSE, "is_open"), Input(ids.ADV_BTN, "n_clicks"), State(ids.ADV_COLLAPSE, "is_open"),
    prevent_initial_call=True,
)

clientside_callback(
    ClientsideFunction("explore", "writeUrl"),
    Output(ids.URL_SINK, "data"),  # nothing is written: the callback only edits the address
    [Input(ids.CONTROLS[name], control_prop(name)) for name in ids.CONTROLS], State(ids.URL_FORMAT_STORE, "data"),
    prevent_initial_call=True,
)

# The help opens by itself on the first visit (remembered in the browser), once the map is
# drawn, and on the Help button.
clientside_callback(
    ClientsideFunction("explore", "help"),
    Output(ids.HELP, "is_open"), Output(ids.HELP_SEEN, "data"),
    Input(ids.HELP_OPEN, "n_clicks"), Input(ids.HELP_CLOSE, "n_clicks"), State(ids.HELP_SEEN, "data"),
)


@callback(
    output=dict(pinned=Output(ids.PINNED, "data"), panel=Output(ids.PIN_PANEL, "children"),
                neighbours=Output(ids.NB_PANEL, "children", allow_duplicate=True),
                figure=Output(ids.GRAPH, "figure", allow_duplicate=True)),
    inputs=dict(clicked=Input(ids.CLICKED, "data"), mode=Input(ids.COMPARE, "value")),
    state=dict(pinned=State(ids.PINNED, "data"), view=State(ids.VIEW, "data")),
    prevent_initial_call=True,
)
def pin_material(clicked, mode, pinned, view):
    """A click (found in the browser: the material the hover shows) pins it; two pinned
    materials are shown together for comparison. A pinned material's close button unpins it;
    with none left, its neighbours go from the panel and the map."""
    pinned = list(pinned or [])
    out = {"neighbours": no_update, "figure": no_update}
    if dash.ctx.triggered_id == ids.CLICKED:
        if not clicked or not clicked.get("name"):
            raise dash.exceptions.PreventUpdate
        name = clicked["name"]
        if clicked.get("unpin"):
            pinned = [p for p in pinned if p != name]
            if not pinned:
                patch = Patch()
                assign_paths(patch["data"][NEIGHBOURS], neighbour_lines(None, None))
                return {**out, "pinned": [], "panel": [], "neighbours": [], "figure": patch}
        else:
            pinned = [p for p in pinned if p != name][-1:] + [name]
    if not pinned:
        raise dash.exceptions.PreventUpdate
    try:
        panel = pinned_panel(get_catalog(), pinned, (view or {}).get("window"), mode or "overlay")
        return {**out, "pinned": pinned, "panel": panel}
    except BandscapeError as exc:
        return {**out, "pinned": pinned, "panel": dbc.Alert(str(exc), color="danger")}


@callback(
    Output(ids.DOWNLOAD, "data"),
    inputs=dict(_=Input(ids.EXPORT_BTN, "n_clicks")),
    state=dict(controls=field_controls(State, ("model", *CLUSTER_FIELDS))),
    prevent_initial_call=True,
)
def export_labels(_, controls: dict):
    catalog = get_catalog()
    view = ExplorerView.from_values(controls)
    params = view.params().validate()
    data = catalog.load(view.model)
    table = labels_table(data, cluster_model(catalog, view.model, params), params)
    table = explore_place.with_placed_rows(table, explore_place.placed_records(catalog, view))
    return dcc.send_data_frame(table.to_csv, f"{view.model}_{params.algo}_labels.csv", index=False)


clientside_callback(
    ClientsideFunction("explore", "downloadMap"),
    Output(ids.FIGURE_SINK, "data"),  # nothing is written: the browser saves the figure
    Input(ids.FIGURE_PNG, "n_clicks"), Input(ids.FIGURE_SVG, "n_clicks"),
    prevent_initial_call=True,
)


# ---- discovery: selection and gallery, neighbours, consensus, cluster cards, subsets ---------

clientside_callback(
    ClientsideFunction("explore", "tool"),
    Output(ids.TOOL_SINK, "data"), Input(ids.TOOL, "value"),
)

# a selection given by names: the URL's at load, a representative subset when chosen
clientside_callback(
    ClientsideFunction("explore", "selectFromInputs"),
    Output(ids.SELECT_SINK, "data"),
    Input(ids.SELECT_NAMES, "data"), Input(ids.SUBSET_NAMES, "data"), State(ids.CLIENT_CONFIG, "data"),
)


@callback(
    output=dict(download=Output(ids.DOWNLOAD_SEL, "data"), message=Output(ids.SEL_MSG, "children")),
    inputs=dict(_=Input(ids.EXPORT_SEL, "n_clicks")),
    state=dict(names=State(ids.SELECTION, "data"), controls=field_controls(State, ("model", *CLUSTER_FIELDS))),
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
    Output(ids.NB_TRIGGER, "data"), Input(ids.PINNED, "data"), Input(ids.NB_K, "value"), Input(ids.VIEW, "data"),
    prevent_initial_call=True,
)


@callback(
    output=dict(panel=Output(ids.NB_PANEL, "children"), figure=Output(ids.GRAPH, "figure", allow_duplicate=True)),
    inputs=dict(_=Input(ids.NB_TRIGGER, "data")),
    state=dict(pinned=State(ids.PINNED, "data"), k=State(ids.NB_K, "value"),
               controls=field_controls(State, ("model", *CLUSTER_FIELDS))),
    prevent_initial_call=True,
)
def show_neighbours(_, pinned, k, controls: dict):
    """The last pinned material's k nearest materials in fingerprint space (the clustering's
    metric): thumbnails and distances beside the map, lines to them on it."""
    from backend.discover.neighbours import distance_ranks, model_neighbours

    patch = Patch()
    if not pinned:
        raise dash.exceptions.PreventUpdate
    catalog = get_catalog()
    v = ExplorerView.from_values(controls)
    material = pinned[-1]
    try:
        metric, p = clustering_metric(v.params())
        data = catalog.load(v.model)
        if material in set(data.names):
            table = model_neighbours(catalog, v.model, material, k=k, metric=metric, p=p)
            table = table.join(distance_ranks(catalog, v.model, table["distance"], metric=metric, p=p))
            xy, centre = data.xy, int(np.flatnonzero(data.names == material)[0])
        else:  # a material placed on the map
            table, xy, centre = explore_place.placed_neighbours(catalog, v, data, material, k)
    except BandscapeError as exc:
        assign_paths(patch["data"][NEIGHBOURS], neighbour_lines(None, None))
        return {"panel": dbc.Alert(str(exc), color="warning", className="py-1 small"), "figure": patch}
    assign_paths(patch["data"][NEIGHBOURS], neighbour_lines(xy, centre, table["index"].to_numpy()))
    return {"panel": neighbour_list(material, table, model_window(catalog, v.model), metric_text(metric, p)),
            "figure": patch}


@callback(
    output=dict(report=Output(ids.SUBSET_REPORT, "children"), names=Output(ids.SUBSET_NAMES, "data"),
                download=Output(ids.DOWNLOAD_SUBSET, "data")),
    inputs=dict(_choose=Input(ids.SUBSET_BTN, "n_clicks"), _export=Input(ids.SUBSET_EXPORT, "n_clicks")),
    state=dict(size=State(ids.SUBSET_N, "value"), controls=field_controls(State, ("model", *CLUSTER_FIELDS))),
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
        table, sub = model_subset(catalog, v.model, v.params(), size=size)
    except BandscapeError as exc:
        return {**out, "report": dbc.Alert(str(exc), color="warning", className="py-1")}
    if dash.ctx.triggered_id == ids.SUBSET_EXPORT:
        return {**out, "download": dcc.send_data_frame(table.to_csv, f"{v.model}_subset_{len(table)}.csv", index=False)}
    return {**out, "report": subset_report(sub, len(catalog.load(v.model).names)), "names": table["material"].tolist()}


clientside_callback(
    ClientsideFunction("explore", "toggle"),
    Output(ids.CARDS_COLLAPSE, "is_open"), Input(ids.CARDS_BTN, "n_clicks"), State(ids.CARDS_COLLAPSE, "is_open"),
    prevent_initial_call=True,
)


clientside_callback(
    ClientsideFunction("explore", "stampWhen"),
    Output(ids.CARDS_TRIGGER, "data"), Input(ids.CARDS_COLLAPSE, "is_open"), Input(ids.DRAWN, "data"),
    prevent_initial_call=True,
)


@callback(
    Output(ids.CARDS, "children"),
    inputs=dict(_=Input(ids.CARDS_TRIGGER, "data")),
    state=dict(controls=field_controls(State, ("model", "colour_by", *CLUSTER_FIELDS))),
    prevent_initial_call=True,
)
def show_cluster_cards(_, controls: dict):
    """Per cluster: size, medoid's band structure, over-represented elements, label mix."""
    from backend.discover.cards import model_cluster_cards

    catalog = get_catalog()
    v = ExplorerView.from_values(controls)
    cols = label_columns(catalog)
    column = v.colour_by if v.colour_by in cols else (cols[0] if cols else None)
    try:
        cards = model_cluster_cards(catalog, v.model, v.params(), label_column=column)
    except BandscapeError as exc:
        return dbc.Alert(str(exc), color="warning", className="py-1")
    return cluster_cards_view(cards, model_window(catalog, v.model))
