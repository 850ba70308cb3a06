"""Evaluate: the study's grid search to choose a model and HDBSCAN parameters.

Heat maps of the best DBCV and mean AMI of every (min_samples, min_cluster_size) cell (hover
names the model), the grid of one model (noise, clusters, DBCV, S_Dbw), and a sortable ranking of
the models in the chosen cell whose links open that model and cell in the explorer.

The search is a job (:mod:`backend.jobs.search_job`): it runs in its own process (local runner or
Celery), never in a web process; its progress and result are on disk, so any web worker shows
them, a reload finds them, and opening the page shows a finished search at once. Opening the page
never starts a search: the Run button does, and Cancel stops it (nothing of it is kept).
"""

from __future__ import annotations

import urllib.parse

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, clientside_callback, dcc, html, no_update

from app_state import get_catalog, get_job_runner
from backend.data.labels import label_columns
from backend.errors import BandscapeError
from backend.evaluate.figures import cell_maxima_figure, model_grid_figure
from backend.evaluate.grid import GridSpec
from backend.evaluate.select import default_filter, select_models
from backend.evaluate.spec import parse_range
from backend.evaluate.tables import cell_label, external_table
from backend.jobs import UnknownJobError
from backend.jobs.quality_job import find_quality, load_quality_result, submit_quality
from backend.jobs.search_job import find_search, load_search_result, submit_search
from components.evaluate_panels import EXTERNAL_COLUMNS, ranking_rows, ranking_table, search_form, search_instructions
from components.quality_panels import available_metrics, quality_figure, quality_notes, quality_section, quality_table

dash.register_page(__name__, path="/evaluate", name="Evaluate", title="bandscape · evaluate", order=1)

# ---- component ids -------------------------------------------------------------------------
IDS = {name: f"evaluate-{name}" for name in (
    "models", "model_count", "ms", "mcs", "sel", "metric", "p", "label", "run", "cancel", "progress", "status",
    "download-btn", "download")}
#: KEY: the id of the search job shown; RESULT: the same id once its result is there
KEY, RESULT, CELL, POLL = "evaluate-key", "evaluate-result", "evaluate-cell", "evaluate-poll"
ALERT, WARNINGS, CELLS_GRAPH, CELL_INFO = "evaluate-alert", "evaluate-warnings", "evaluate-cells", "evaluate-cell-info"
MODEL_PICK, MODEL_GRAPH, TABLE, URL_SINK = "evaluate-model", "evaluate-model-grid", "evaluate-table", "evaluate-url-sink"
#: what a search shows (RESULTS), and what stands in its place until there is one (EMPTY)
RESULTS, EMPTY = "evaluate-results", "evaluate-empty"
#: the fingerprint-quality section: its job id (Q_KEY) and the same once its result is there (Q_RESULT)
QUALITY = {name: f"quality-{name}" for name in ("run", "cancel", "progress", "status", "warnings", "metric", "graph",
                                                "table", "key", "result", "poll", "results", "empty")}
SHOWN, HIDDEN = {}, {"display": "none"}


def _spec_from(ms, mcs, sel, metric, p) -> GridSpec:
    return GridSpec(min_samples=tuple(range(int(ms[0]), int(ms[1]) + 1)),
                    min_cluster_size=tuple(range(int(mcs[0]), int(mcs[1]) + 1)),
                    selection=sel, metric=metric, p=p if p not in (None, "") else GridSpec.p).validate()


def _job(job_id: str | None) -> dict | None:
    if not job_id:
        return None
    try:
        return get_job_runner().store.load(job_id)
    except UnknownJobError:  # removed meanwhile
        return None


def _result(job_id: str | None):
    """The search's result (read once per web process), or None until it is done."""
    rec = _job(job_id)
    return load_search_result(get_job_runner().store, rec) if rec else None


def _done_status(r) -> str:
    t = r.timings
    return (f"{len(r.models)} models x {len(r.cells)} cells in {t['total_s']:.1f} s"
            + (" (from the cache)" if t["models_computed"] == 0 and t["ami_cached"] else ""))


def layout(**query):
    catalog = get_catalog()
    notes = []
    ranges = {}
    for key, name, default in (("ms", "min_samples", (2, 10)), ("mcs", "min_cluster_size", (2, 10))):
        try:
            r = parse_range(query[key], name) if key in query else default
            ranges[key] = [min(r), max(r)]
        except BandscapeError as exc:
            notes.append(f"URL: {exc}; using {default[0]}:{default[1]}")
            ranges[key] = list(default)
    values = {"models": query.get("models", default_filter(catalog)), "ms": ranges["ms"], "mcs": ranges["mcs"],
              "sel": query.get("sel", "leaf"), "metric": query.get("metric", "minkowski"),
              "p": query.get("p", 0.2), "label": query.get("label", "")}
    labels = label_columns(catalog)
    if values["label"] not in labels:
        values["label"] = labels[0] if labels and "label" not in query else ""
    job_id, result_id = None, None
    rec = None
    try:  # find (never start) the search the URL describes
        spec = _spec_from(values["ms"], values["mcs"], values["sel"], values["metric"], values["p"])
        rec = find_search(get_job_runner().store, catalog, select_models(catalog, values["models"]), spec=spec)
    except (BandscapeError, ValueError) as exc:
        notes.append(str(exc))
    if rec is not None and rec["state"] in ("queued", "running", "done"):
        job_id = rec["job_id"]
        done = load_search_result(get_job_runner().store, rec) if rec["state"] == "done" else None
        if done is not None:
            result_id = job_id
            values["status"] = _done_status(done)
        elif rec["state"] == "done":  # its result was removed: as if never run
            job_id = None
        values["running"] = rec["state"] in ("queued", "running")
    if job_id is None:
        values["status"] = ("not run yet" if rec is None or rec["state"] == "done" else f"the last run {rec['state']}") \
            + ": Run grid search computes it (in the background; the page can be left)"
    q_job, q_status = _find_quality(catalog, values["models"], values["label"])
    side = html.Div([search_form(IDS, values, labels)], style={"width": "300px", "flex": "0 0 300px"}, className="pe-3")
    main = html.Div([
        html.Div([dbc.Alert(n, color="warning", dismissable=True) for n in notes], id=ALERT),
        html.Div(id=WARNINGS),
        # no empty axes before a search: what to do instead, until there is something to show
        search_instructions(EMPTY, style=HIDDEN if result_id else SHOWN),
        html.Div([
            html.H6("Cell maxima: click a cell to rank the models there", className="mb-0"),
            dcc.Graph(id=CELLS_GRAPH, config={"displaylogo": False}, style={"height": "360px"}),
            html.Div(id=CELL_INFO, className="small mb-2"),
            html.Div([
                html.H6("One model over the grid", className="me-2 mb-0"),
                dcc.Dropdown(id=MODEL_PICK, clearable=False, style={"minWidth": "480px", "fontSize": "13px"}),
            ], className="d-flex align-items-center"),
            dcc.Graph(id=MODEL_GRAPH, config={"displaylogo": False}, style={"height": "330px"}),
            html.H6("Models in the chosen cell (sortable; the link opens the explorer)"),
            ranking_table(TABLE, with_external=bool(labels)),
        ], id=RESULTS, style=SHOWN if result_id else HIDDEN),
        quality_section(QUALITY, status=q_status),
    ], style={"flex": "1 1 auto", "minWidth": "0"})
    return html.Div([
        dcc.Store(id=KEY, data=job_id), dcc.Store(id=RESULT, data=result_id), dcc.Store(id=CELL),
        dcc.Store(id=URL_SINK),
        dcc.Interval(id=POLL, interval=700, disabled=job_id is None or result_id is not None),
        dcc.Store(id=QUALITY["key"], data=q_job), dcc.Store(id=QUALITY["result"]),
        dcc.Interval(id=QUALITY["poll"], interval=1000, disabled=q_job is None),
        html.Div([side, main], className="d-flex"),
    ], className="px-3")


@callback(Output(IDS["model_count"], "children"), Input(IDS["models"], "value"))
def count_models(filter_text):
    try:
        n = len(select_models(get_catalog(), filter_text))
    except BandscapeError as exc:
        return html.Span(str(exc), className="text-danger")
    return f"{n} models match" + (" (AMI needs two)" if n < 2 else "")


@callback(
    Output(KEY, "data"), Output(POLL, "disabled", allow_duplicate=True), Output(ALERT, "children"),
    Output(URL_SINK, "data"),
    Input(IDS["run"], "n_clicks"),
    State(IDS["models"], "value"), State(IDS["ms"], "value"), State(IDS["mcs"], "value"),
    State(IDS["sel"], "value"), State(IDS["metric"], "value"), State(IDS["p"], "value"),
    prevent_initial_call=True,
)
def run_search(_, filter_text, ms, mcs, sel, metric, p):
    catalog = get_catalog()
    try:
        rec = submit_search(get_job_runner(), catalog, select_models(catalog, filter_text),
                            spec=_spec_from(ms, mcs, sel, metric, p))
    except (BandscapeError, ValueError, TypeError) as exc:
        return no_update, no_update, dbc.Alert(str(exc), color="danger"), no_update
    query = {"models": filter_text or "", "ms": f"{ms[0]}:{ms[1]}", "mcs": f"{mcs[0]}:{mcs[1]}", "sel": sel,
             "metric": metric}
    if metric == "minkowski":
        query["p"] = p
    return rec["job_id"], False, [], "?" + urllib.parse.urlencode(query)


@callback(Output(IDS["cancel"], "disabled", allow_duplicate=True), Input(IDS["cancel"], "n_clicks"),
          State(KEY, "data"), prevent_initial_call=True)
def cancel_search(_, job_id):
    if job_id:
        get_job_runner().cancel(job_id)
    return True


clientside_callback(
    "function(q) { if (q) { window.history.replaceState(null, '', window.location.pathname + q); } return ''; }",
    Output(URL_SINK, "data", allow_duplicate=True), Input(URL_SINK, "data"), prevent_initial_call=True,
)


@callback(
    Output(IDS["progress"], "value"), Output(IDS["progress"], "label"), Output(IDS["status"], "children"),
    Output(POLL, "disabled"), Output(RESULT, "data"), Output(WARNINGS, "children"), Output(IDS["cancel"], "disabled"),
    Input(POLL, "n_intervals"), Input(KEY, "data"), State(RESULT, "data"),
)
def poll(_, job_id, shown):
    """The search job's progress, read from its record (any web worker can answer)."""
    rec = _job(job_id)
    if rec is None:
        return 0, "", no_update, True, no_update, no_update, True
    p = rec.get("progress") or {}
    if rec["state"] in ("queued", "running"):
        done, total = p.get("done", 0), max(p.get("total", 1), 1)
        pct = int(100 * done / total)
        stage = {"models": "clustering and scoring models", "ami": "comparing models (AMI)"}.get(p.get("stage"))
        text = (f"{stage}: {done} of {total} steps" if stage else
                "waiting for another search or job to finish" if rec["state"] == "queued" else "starting")
        return pct, f"{pct} %", text, False, no_update, no_update, False
    if rec["state"] == "done":
        r = _result(job_id)
        if r is None:
            return 0, "", "the search's result is gone; run it again", True, None, no_update, True
        warnings = [dbc.Alert(w, color="info", className="py-1 small mb-1") for w in r.warnings]
        # the layout already delivered a finished search: do not draw it twice
        result = no_update if shown == job_id else job_id
        return 100, "done", _done_status(r), True, result, warnings, True
    if rec["state"] == "cancelled":
        return 0, "", "cancelled: nothing of it was kept", True, None, no_update, True
    return 0, "", "", True, None, dbc.Alert(f"grid search failed: {rec.get('error')}", color="danger"), True


@callback(Output(CELL, "data"), Input(CELLS_GRAPH, "clickData"), prevent_initial_call=True)
def pick_cell(click):
    if not click or not click.get("points"):
        return no_update
    pt = click["points"][0]
    return [int(pt["y"]), int(pt["x"])]


def _selected_cell(r, cell) -> tuple[int, int]:
    if cell and cell[0] in r.spec.min_samples and cell[1] in r.spec.min_cluster_size:
        return int(cell[0]), int(cell[1])
    best = r.cells.loc[r.cells.best_dbcv.idxmax()] if r.cells.best_dbcv.notna().any() else r.cells.iloc[0]
    return int(best.min_samples), int(best.min_cluster_size)


@callback(
    Output(CELLS_GRAPH, "figure"), Output(CELL_INFO, "children"), Output(TABLE, "data"),
    Output(MODEL_PICK, "options"), Output(MODEL_PICK, "value"), Output(RESULTS, "style"), Output(EMPTY, "style"),
    Input(RESULT, "data"), Input(CELL, "data"), Input(IDS["label"], "value"),
    State(MODEL_PICK, "value"),
)
def render(job_id, cell, label, picked):
    r = _result(job_id)
    if r is None:
        return {}, "", [], [], None, HIDDEN, SHOWN
    ms, mcs = _selected_cell(r, cell)
    link = lambda mid: r.spec.explorer_query(mid, ms, mcs)  # noqa: E731
    row = r.cells[(r.cells.min_samples == ms) & (r.cells.min_cluster_size == mcs)].iloc[0]
    info = [html.Span(f"{cell_label(ms, mcs)}: ", className="fw-bold")]
    for col, name in (("best_dbcv", "best DBCV"), ("best_mean_ami", "best mean AMI"),
                      ("best_mean_ami_no_noise", "best mean AMI without noise")):
        if row[f"{col}_model"]:
            info += [f"{name} {row[col]:.4f} by ", html.A(row[f"{col}_model"], href=link(row[f"{col}_model"])), "; "]
    info += _paper_model_ranks(r.cell(ms, mcs))
    table = r.cell(ms, mcs).merge(r.ranking[["model_id", "cells_won_dbcv", "best_dbcv", "best_dbcv_cell"]],
                                  on="model_id")
    table = table.sort_values(["collapsed", "dbcv"], ascending=[True, False]).reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    extra = ()
    if label:
        try:
            ext = external_table(r, get_catalog(), label, min_samples=ms,
                                 min_cluster_size=mcs).drop(columns=["min_samples", "min_cluster_size"])
            table = table.merge(ext, on="model_id")
            extra = EXTERNAL_COLUMNS
        except BandscapeError as exc:
            info += [html.Span(str(exc), className="text-danger")]
    options = [{"label": m, "value": m} for m in r.ranking.model_id]
    value = picked if picked in r.models else row["best_dbcv_model"] or r.models[0]
    return (cell_maxima_figure(r, selected=(ms, mcs)), info, ranking_rows(table, link, extra), options, value, SHOWN,
            HIDDEN)


def _paper_model_ranks(cell: pd.DataFrame) -> list:
    """Where the study's chosen model stands in this cell (when it is among the models)."""
    from backend.cluster.params import PAPER_MODEL

    live = cell[~cell.collapsed]
    if PAPER_MODEL not in set(live.model_id):
        return []
    row = live.set_index("model_id").loc[PAPER_MODEL]
    ranks = []
    for col, name in (("dbcv", "DBCV"), ("mean_ami", "mean AMI"), ("mean_ami_no_noise", "mean AMI without noise")):
        if pd.notna(row[col]):
            ranks.append(f"{int((live[col] > row[col]).sum()) + 1} by {name} ({row[col]:.4f})")
    return [html.Br(), f"The paper's model ({PAPER_MODEL}) here, of {len(live)}: " + ", ".join(ranks) + "."]


@callback(Output(MODEL_GRAPH, "figure"), Input(MODEL_PICK, "value"), Input(RESULT, "data"))
def render_model(model_id, job_id):
    r = _result(job_id)
    if r is None or model_id not in (r.models if r else []):
        return {}
    return model_grid_figure(r, model_id)


@callback(Output(IDS["download"], "data"), Input(IDS["download-btn"], "n_clicks"), State(RESULT, "data"),
          prevent_initial_call=True)
def download_tables(_, job_id):
    """The search's tables as the CLI writes them, in one zip."""
    import io
    import zipfile

    r = _result(job_id)
    if r is None:
        return no_update
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, frame in (("per_model.csv", r.per_model), ("cells.csv", r.cells), ("ranking.csv", r.ranking)):
            z.writestr(name, frame.to_csv(index=False))
    return dcc.send_bytes(buf.getvalue(), f"bandscape-evaluate-{_job(job_id)['key'][:8]}.zip")


# ---- fingerprint quality --------------------------------------------------------------------

def _quality_spec(label):
    from backend.quality import QualitySpec

    return QualitySpec(labels=label or None)


def _find_quality(catalog, filter_text, label) -> tuple[str | None, str]:
    """The report of these models and label column if one was run (looking never starts one)."""
    try:
        rec = find_quality(get_job_runner().store, catalog, select_models(catalog, filter_text),
                           spec=_quality_spec(label))
    except BandscapeError:
        return None, ""
    if rec is None or rec["state"] in ("failed", "cancelled"):
        return None, "not run yet for these models" + (f" and the label {label!r}" if label else "")
    return rec["job_id"], ""


@callback(
    Output(QUALITY["key"], "data"), Output(QUALITY["poll"], "disabled", allow_duplicate=True),
    Output(QUALITY["status"], "children", allow_duplicate=True),
    inputs=dict(clicks=Input(QUALITY["run"], "n_clicks")),
    state=dict(filter_text=State(IDS["models"], "value"), label=State(IDS["label"], "value")),
    prevent_initial_call=True,
)
def run_quality(clicks, filter_text, label):
    catalog = get_catalog()
    try:
        rec = submit_quality(get_job_runner(), catalog, select_models(catalog, filter_text), spec=_quality_spec(label))
    except BandscapeError as exc:
        return no_update, no_update, html.Span(str(exc), className="text-danger")
    return rec["job_id"], False, "queued"


@callback(Output(QUALITY["cancel"], "disabled", allow_duplicate=True),
          inputs=dict(clicks=Input(QUALITY["cancel"], "n_clicks")), state=dict(job_id=State(QUALITY["key"], "data")),
          prevent_initial_call=True)
def cancel_quality(clicks, job_id):
    if job_id:
        get_job_runner().cancel(job_id)
    return True


@callback(
    output=dict(value=Output(QUALITY["progress"], "value"), status=Output(QUALITY["status"], "children"),
                stop=Output(QUALITY["poll"], "disabled"), result=Output(QUALITY["result"], "data"),
                cancel=Output(QUALITY["cancel"], "disabled")),
    inputs=dict(tick=Input(QUALITY["poll"], "n_intervals"), job_id=Input(QUALITY["key"], "data")),
    state=dict(shown=State(QUALITY["result"], "data")),
)
def poll_quality(tick, job_id, shown):
    """The report job's progress, from its record; its id goes to the result store when done."""
    rec = _job(job_id)
    if rec is None:
        return dict(value=0, status=no_update, stop=True, result=no_update, cancel=True)
    p = rec.get("progress") or {}
    if rec["state"] in ("queued", "running"):
        pct = int(100 * p.get("done", 0) / max(p.get("total", 1), 1))
        text = (f"{p.get('stage') or 'starting'}: {p.get('done', 0)} of {p.get('total', '?')} steps"
                if rec["state"] == "running" else "waiting for another job to finish")
        return dict(value=pct, status=text, stop=False, result=no_update, cancel=False)
    if rec["state"] == "done":
        res = (rec.get("result") or {})
        text = f"{res.get('rows', '?')} rows in {res.get('total_s', 0):.1f} s"
        return dict(value=100, status=text, stop=True, result=no_update if shown == job_id else job_id, cancel=True)
    text = "cancelled: nothing of it was kept" if rec["state"] == "cancelled" else f"failed: {rec.get('error')}"
    return dict(value=0, status=text, stop=True, result=None, cancel=True)


@callback(
    output=dict(figure=Output(QUALITY["graph"], "figure"), table=Output(QUALITY["table"], "children"),
                warnings=Output(QUALITY["warnings"], "children"), options=Output(QUALITY["metric"], "options"),
                shown=Output(QUALITY["results"], "style"), empty=Output(QUALITY["empty"], "style")),
    inputs=dict(job_id=Input(QUALITY["result"], "data"), metric=Input(QUALITY["metric"], "value")),
)
def render_quality(job_id, metric):
    from components.quality_panels import METRICS

    found = load_quality_result(get_job_runner().store, _job(job_id))
    if found is None:
        return dict(figure={}, table=[], warnings=[], options=no_update, shown=HIDDEN, empty=SHOWN)
    table, warnings = found
    metrics = available_metrics(table)
    options = [{"label": METRICS[m], "value": m} for m in metrics]
    if metric not in metrics and metrics:
        metric = metrics[0]
    return dict(figure=quality_figure(table, metric), table=quality_table(table, "quality-rows"),
                warnings=quality_notes(warnings), options=options, shown=SHOWN, empty=HIDDEN)
