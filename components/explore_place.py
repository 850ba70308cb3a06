"""The explorer's "Your materials": files uploaded on the page are placed on the map on screen
(read and encoded in the placing worker, app_state.in_place_worker: the web process never loads
torch), kept in the root's additions/, drawn as stars, listed with their neighbours and cluster,
measured again at every new view, and removable. The layout pieces are
:mod:`components.place_panel`; the computation is :mod:`backend.discover.place`."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging

import dash
import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
from plotly.io.json import to_json_plotly
from dash import ALL, ClientsideFunction, Input, Output, Patch, State, callback, clientside_callback, html, no_update

from app_state import get_catalog, in_place_worker
from backend.cluster.models import clustering_ready
from backend.data.model_ids import part_parent
from backend.discover.additions import placed_on, remove_placed
from backend.discover.explorer_view import CLUSTER_FIELDS, ExplorerView, explorer_url
from backend.discover.place import (
    encoder_available,
    place_uploads,
    placeable_alternative,
    place_root_materials,
    placed_at_cell,
    sketch_neighbours,
    unplaced_materials,
)
from backend.errors import BandscapeError, ParameterError
from components import explore_ids as ids
from components.explore_ids import field_controls
from components.explore_view import assign_paths
from components.map_colouring import model_window
from components.discover_panels import metric_text, neighbour_list
from components.place_panel import (
    cannot_place_note,
    pick_box,
    place_panel,
    place_problems,
    placed_list,
    sketch_box,
    uploaded_files,
)
from components.scatter import PLACED, placed_points

log = logging.getLogger(__name__)

def placed_records(catalog, v: ExplorerView) -> list[dict]:
    """The materials placed on the view's model, measured at its clustering cell."""
    try:
        records = placed_on(catalog.root, v.model)
        if not records or not clustering_ready(catalog, v.model, v.params().validate()):
            return []  # (shown once the map is clustered: its neighbour graph is built by a job)
        return placed_at_cell(catalog, v.model, records, params=v.params())
    except BandscapeError as exc:
        log.warning("placed materials not shown: %s", exc)
        return []


def draw_placed(catalog, v: ExplorerView, figure) -> list[dict]:
    """The materials placed on the view's model, drawn into the page's first figure."""
    records = placed_records(catalog, v)
    if records and isinstance(figure, dict) and figure.get("data"):
        figure["data"][PLACED].update(placed_points(records))
    return records


def placed_neighbours(catalog, v: ExplorerView, data, name: str, k):
    """A placed material's ``k`` nearest at the view's cell, as the neighbour panel shows a
    map material's: (table, map positions with the placed one's appended, its index there).
    Not placed on this model: a ParameterError naming it."""
    records = [r for r in placed_on(catalog.root, v.model) if r["name"] == name]
    if not records:
        raise ParameterError(f"{name} is neither a material of {v.model} nor placed on it")
    rec = placed_at_cell(catalog, v.model, records, params=v.params(), k=int(k or 10))[0]
    xy = np.vstack([data.xy, [[rec["x"], rec["y"]]]])
    return pd.DataFrame(rec["neighbours"]), xy, len(data.xy)


def with_placed_rows(table: pd.DataFrame, records: list[dict]) -> pd.DataFrame:
    """The labels export with the materials placed on the map appended (``placed`` True, their
    predicted cluster and its confidence)."""
    if not records:
        return table
    extra = pd.DataFrame({"material": [r["name"] for r in records], "cluster": [r["cluster"] for r in records],
                          "noise": [r["cluster"] < 0 for r in records], "x": [r["x"] for r in records],
                          "y": [r["y"] for r in records], "model_id": table["model_id"].iloc[0] if len(table) else "",
                          "placed": True, "placed_confidence": [r["confidence"] for r in records]})
    return pd.concat([table.assign(placed=False), extra], ignore_index=True)


@callback(
    output=dict(listing=Output(ids.PLACED_LIST, "children"), status=Output(ids.PLACE_STATUS, "children"),
                figure=Output(ids.GRAPH, "figure", allow_duplicate=True), shown=Output(ids.PLACED_SHOWN, "data")),
    inputs=dict(contents=Input(ids.PLACE_UPLOAD, "contents"),
                remove=Input({"type": ids.PLACE_REMOVE, "name": ALL}, "n_clicks"),
                drawn=Input(ids.DRAWN, "data"), pick=Input({"type": ids.PLACE_PICK_BTN, "n": ALL}, "n_clicks")),
    state=dict(filenames=State(ids.PLACE_UPLOAD, "filename"), fermi=State(ids.PLACE_FERMI, "value"),
               controls=field_controls(State, ("model", *CLUSTER_FIELDS)), shown=State(ids.PLACED_SHOWN, "data"),
               listed=State(ids.PLACED_LIST, "children"),
               picked=State({"type": ids.PLACE_PICK, "n": ALL}, "value")),
    prevent_initial_call=True,
)
def placed_materials(contents, remove, drawn, pick, filenames, fermi, controls: dict, shown, picked, listed):
    """Uploaded files are read, encoded by the model on screen and placed (in the placing
    worker: the web process never loads torch), kept in the root's additions/; a remove button
    takes one away; a new view (recluster, model switch) measures the placed ones again."""
    catalog = get_catalog()
    v = ExplorerView.from_values(controls)
    trigger = dash.ctx.triggered_id
    status = no_update
    if trigger == ids.DRAWN and not drawn:
        raise dash.exceptions.PreventUpdate  # no map drawn yet (a large root's graph is being built)
    by_name = isinstance(trigger, dict) and trigger.get("type") == ids.PLACE_PICK_BTN
    if trigger == ids.PLACE_UPLOAD or by_name:
        names = [n for chosen in (picked or []) for n in (chosen or [])]
        if (by_name and not (any(pick or []) and names)) or (not by_name and not contents):
            raise dash.exceptions.PreventUpdate
        filenames = names if by_name else filenames
        try:
            params = dataclasses.asdict(v.params().validate())
            if by_name:
                result = in_place_worker(place_root_materials, str(catalog.root), v.model, names, params=params,
                                         timeout=600)
            else:
                result = in_place_worker(place_uploads, str(catalog.root), v.model,
                                         uploaded_files(contents, filenames), fermi=fermi, params=params,
                                         on_conflict="keep-both", timeout=600)
        except BandscapeError as exc:
            result = {"placed": [], "problems": [{"source": ", ".join(filenames or []), "message": str(exc)}]}
        n = len(result["placed"])
        renamed = [f"{r['original_name']} is kept as {r['name']} (the name was taken)"
                   for r in result["placed"] if r["name"] != r["original_name"]]
        status = [html.Div(f"{n} of {n + len(result['problems'])} placed on {v.model}", className="small"),
                  *[html.Div(line, className="small text-muted") for line in renamed],
                  *place_problems(result["problems"])]
    elif isinstance(trigger, dict) and trigger.get("type") == ids.PLACE_REMOVE:
        if not any(remove or []):
            raise dash.exceptions.PreventUpdate
        remove_placed(catalog.root, trigger["name"], v.model)
        status = html.Div(f"{trigger['name']} removed", className="small text-muted")
    records = placed_records(catalog, v)
    listing = placed_listing(catalog, v, records)
    if trigger == ids.DRAWN and not records and not shown and same_layout(as_json(listing), listed):
        raise dash.exceptions.PreventUpdate  # a new view of a map without stars: nothing here changes
    patch = no_update
    if records or shown:  # (a map without stars, before and after, is left alone)
        patch = Patch()
        assign_paths(patch["data"][PLACED], placed_points(records))
    return {"listing": listing, "status": status, "figure": patch, "shown": len(records)}


def as_json(component):
    """A layout as the browser holds it (dicts of type, namespace and props)."""
    return json.loads(to_json_plotly(component))


def same_layout(ours, theirs) -> bool:
    """Whether the browser's copy of a layout (``theirs``) shows what ``ours`` says: the same
    components with the same values of every prop ours sets (the browser adds props of its own,
    such as a button's click count)."""
    if isinstance(ours, dict) and "props" in ours:
        return (isinstance(theirs, dict) and ours.get("type") == theirs.get("type")
                and all(same_layout(value, (theirs.get("props") or {}).get(key)) for key, value in ours["props"].items()))
    if isinstance(ours, list):
        return isinstance(theirs, list) and len(ours) == len(theirs) and all(map(same_layout, ours, theirs))
    return ours == theirs


def panel(catalog, v: ExplorerView, records: list[dict]):
    """The "Your materials" card of the page's first view."""
    try:
        unplaced = unplaced_materials(catalog, v.model)
    except BandscapeError:
        unplaced = []
    return place_panel(ids.PLACE_UPLOAD, ids.PLACE_FERMI, ids.PLACE_STATUS, ids.PLACED_LIST,
                       placed_listing(catalog, v, records), shown_id=ids.PLACED_SHOWN, shown=len(records),
                       sketch=sketch_box(ids), pick=pick_box(ids.PLACE_PICK, ids.PLACE_PICK_BTN, unplaced))


def placed_listing(catalog, v: ExplorerView, records: list[dict]) -> list:
    """The placed materials of the view's model; before them, when the model cannot encode new
    materials here, a note that says so and links to a model that can."""
    out = placed_list(records, model_window(catalog, v.model), ids.PLACE_REMOVE)
    if v.model in catalog and not catalog.get(v.model).is_unencoded and not encoder_available(catalog.root, v.model):
        parent = part_parent(v.model)
        alt = placeable_alternative(catalog, v.model)
        how = (f"a map of one part of {parent} has no encoder of its own" if parent else
               "`python -m backend demo` rebuilds the demo's" if (catalog.root / "labels.csv").is_file()
               else "retrain it, or copy its models/*.pt")
        link = explorer_url(**dict(dataclasses.asdict(v), model=alt, selected=())) if alt else None
        said = {"alternative_is": "The whole fingerprint's map"} if alt is not None and alt == parent else {}
        out.insert(0, cannot_place_note(v.model, alt, link, how, **said))
    return out


# ---- search by sketch ---------------------------------------------------------------------------

clientside_callback(
    ClientsideFunction("sketch", "find"),
    Output(ids.SKETCH, "data"),
    Input(ids.SKETCH_FIND, "n_clicks"), Input(ids.SKETCH_CLEAR, "n_clicks"), State(ids.SKETCH_CANVAS, "id"),
)


@callback(
    Output(ids.SKETCH_RESULT, "children"),
    inputs=dict(sketch=Input(ids.SKETCH, "data")),
    state=dict(controls=field_controls(State, ("model", *CLUSTER_FIELDS))),
    prevent_initial_call=True,
)
def sketch_search(sketch, controls: dict):
    """The drawn sketch's nearest materials on the model on screen (encoded in the placing
    worker, like an uploaded plot; nothing is kept): thumbnails, click one to pin it."""
    if sketch is None:
        return []
    if isinstance(sketch, dict) or not str(sketch).startswith("data:image/png;base64,"):
        return dbc.Alert("the sketch is empty: draw at least one band line", color="warning", className="py-1 small")
    catalog = get_catalog()
    v = ExplorerView.from_values(controls)
    try:
        params = dataclasses.asdict(v.params().validate())
        png = base64.b64decode(sketch.split(",", 1)[1])
        rec = in_place_worker(sketch_neighbours, str(catalog.root), v.model, png, params=params, timeout=300)
    except BandscapeError as exc:
        return dbc.Alert(str(exc), color="warning", className="py-1 small")
    cluster = "noise" if rec["cluster"] < 0 else f"cluster {rec['cluster']}"
    return [html.Div(f"Your sketch: {cluster} ({rec['confidence']:.0%} of its {len(rec['neighbours'])} nearest)",
                     id="explore-sketch-cluster"),
            *neighbour_list("your sketch", pd.DataFrame(rec["neighbours"]), model_window(catalog, v.model),
                            metric_text(v.metric, v.p))]
