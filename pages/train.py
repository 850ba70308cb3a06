"""Train page: submit training jobs (one model or a grid), follow them live, cancel them.

Jobs never run in the web process: the app's job runner (:func:`app_state.get_job_runner`) runs
them in separate processes, or on Celery workers when ``REDIS_URL`` is set. This page only reads
and writes job records, polling them once a second. Every submitted value is checked here, on the
server, with the CLI's bounds (:meth:`TrainConfig.validate`) and the CLI's window check (a window
other than the images' is refused, :mod:`backend.data.image_window`), whatever the browser sent.
"""

from __future__ import annotations

import logging
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, clientside_callback, dcc, html, no_update

from app_state import get_catalog, get_job_runner, in_place_worker
from backend.autoencoder.config import PAPER_GRID, PRETRAINED, TrainConfig, describe_trunk, paper_grid
from backend.data.image_window import check_window
from backend.data.importing import import_uploads
from backend.errors import BandscapeError, ParameterError
from backend.jobs import ACTIVE, CPU_IMAGES_PER_S, count_images, estimate_seconds, format_duration
from components.place_panel import uploaded_files
from components.train_panels import (
    explorer_href,
    folder_options,
    grid_form,
    import_card,
    job_form,
    job_header,
    jobs_table,
    log_panel,
    loss_figure,
    recon_panel,
)

dash.register_page(__name__, path="/train", name="Train", title="bandscape · train", order=2)
log = logging.getLogger(__name__)

# ---- component ids -------------------------------------------------------------------------
FORM = {"folder": "train-folder", "arch": "train-arch", "latent": "train-latent", "epochs": "train-epochs",
        "split": "train-split", "window": "train-window", "image_size": "train-image-size", "seed": "train-seed",
        "channels": "train-channels",
        "objective": "train-objective", "cluster_loss": "train-cluster-loss", "clusters": "train-clusters",
        "submit": "train-submit", "estimate": "train-estimate"}
IMPORT = {"upload": "train-import-upload", "fermi": "train-import-fermi", "plot_window": "train-import-plot-window",
          "status": "train-import-status"}
GRID = {"arch": "train-grid-arch", "latent": "train-grid-latent", "epochs": "train-grid-epochs",
        "split": "train-grid-split", "count": "train-grid-count", "submit": "train-grid-submit"}
MESSAGE = "train-message"
POLL = "train-poll"
JOBS = "train-jobs"
ROW = "train-job-row"
SELECTED = "train-selected"
DETAIL_HEAD, DETAIL_CARD, LOSS, RECON, LOG = ("train-detail-head", "train-detail", "train-loss", "train-recon",
                                              "train-log")
CANCEL = "train-cancel"
SEEN = "train-seen"  # what the detail panel shows (job id + record time), to skip unchanged polls
TABLE_SEEN = "train-table-seen"
URL_SINK = "train-url-sink"

FORM_FIELDS = ("arch", "latent", "epochs", "split", "window", "image_size", "channels", "seed", "objective",
               "cluster_loss", "clusters")
GRID_FIELDS = ("arch", "latent", "epochs", "split")


def _form_values(kind=State) -> dict:
    """The form's fields as a callback argument group, by name."""
    return {f: kind(FORM[f], "value") for f in ("folder",) + FORM_FIELDS}


def _grid_values(kind=State) -> dict:
    return {f: kind(GRID[f], "value") for f in GRID_FIELDS}


def _folders(catalog) -> dict[float, str]:
    """Training-image folders the app knows (window -> folder relative to the data root)."""
    return {w: str(p.relative_to(catalog.root)) for w, p in catalog.train_image_dirs().items()}


def _runner_note(runner) -> str:
    if runner.kind == "celery":
        return ("Jobs go to the Celery workers through Redis (REDIS_URL); they write their progress into "
                f"{runner.store.dir}, which must be on storage the workers share.")
    return ("Jobs run on this machine, one at a time, each in its own process; further submissions wait "
            "in the queue. The queue survives page reloads and app restarts.")


def layout(job: str | None = None, **_):
    catalog = get_catalog()
    runner = get_job_runner()
    folders = _folders(catalog)
    counts = {rel: count_images(catalog.root / rel) for rel in folders.values()}
    options = folder_options(folders, counts)
    default_folder = options[0]["value"] if options else None
    d = TrainConfig(window=next(iter(folders), 1))
    notes = []
    if not options:
        notes.append(dbc.Alert(
            f"No training images under {catalog.root}: the app looks for images/train_{{W}}eV/ and "
            "assets/images/train_{W}eV/. Add your materials in step 1 (or with `python -m backend import`, "
            "`preprocess` or `import-plots`).", color="warning"))
    side = html.Div([
        import_card(IMPORT),
        job_form(FORM, options, default_folder, d),
        grid_form(GRID, PAPER_GRID),
        html.Div(id=MESSAGE),
    ], style={"width": "400px", "flex": "0 0 400px"}, className="pe-2")
    main = html.Div([
        *notes,
        html.Div(_runner_note(runner), className="small text-muted mb-2"),
        dbc.Card([dbc.CardHeader("Jobs"), dbc.CardBody(html.Div(id=JOBS), className="p-2",
                                                        style={"maxHeight": "38vh", "overflowY": "auto"})],
                 className="mb-2"),
        dbc.Card([
            dbc.CardHeader(html.Div([
                html.Span("Selected job"),
                dbc.Button("Cancel job", id=CANCEL, color="danger", outline=True, size="sm", disabled=True),
            ], className="d-flex justify-content-between align-items-center")),
            dbc.CardBody([
                html.Div(id=DETAIL_HEAD, children=html.Div("Select a job in the table.", className="text-muted small")),
                dcc.Graph(id=LOSS, figure=loss_figure(None), config={"displaylogo": False}, style={"height": "260px"}),
                html.Div(id=RECON),
                html.Div(id=LOG),
            ]),
        ], id=DETAIL_CARD),
    ], style={"flex": "1 1 auto", "minWidth": "0"})
    return html.Div([
        dcc.Interval(id=POLL, interval=1000),
        dcc.Store(id=SELECTED, data=job),
        dcc.Store(id=SEEN),
        dcc.Store(id=TABLE_SEEN),
        dcc.Store(id=URL_SINK),
        html.Div([side, main], className="d-flex"),
    ], className="px-3")


# ---- reading the form (server-side checks) ------------------------------------------------------

def _as_int(field: str, value) -> int:
    if value is None or value == "":
        raise ParameterError(f"{field}: the field is empty")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{field} must be a whole number, got {value!r}") from None
    if not number.is_integer():
        raise ParameterError(f"{field} must be a whole number, got {value!r}")
    return int(number)


def _as_float(field: str, value) -> float:
    if value is None or value == "":
        raise ParameterError(f"{field}: the field is empty")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{field} must be a number, got {value!r}") from None


def _folder(catalog, folder) -> Path:
    """Only the folders listed in the form: the browser cannot name another path."""
    known = set(_folders(catalog).values())
    if folder not in known:
        raise ParameterError(f"image folder must be one of {sorted(known) or 'the listed folders (none found)'}, "
                             f"got {folder!r}")
    return catalog.root / folder


def form_config(arch, latent, epochs, split, window, image_size, seed, objective=None, cluster_loss=None,
                clusters=None, channels=None, **_) -> TrainConfig:
    """The form's values as a validated config (ParameterError names the field). An empty
    objective, fine-tuning or width takes the default; k is read only when a fine-tuning needs it."""
    d = TrainConfig()
    cluster_loss = cluster_loss or d.cluster_loss
    return TrainConfig(arch=arch, latent=_as_int("latent", latent), epochs=_as_int("epochs", epochs),
                       split=_as_float("split", split), window=_as_float("window", window),
                       image_size=_as_int("image_size", image_size), seed=_as_int("seed", seed),
                       channels=_as_int("channels", channels) if channels not in (None, "") else None,
                       objective=objective or d.objective, cluster_loss=cluster_loss,
                       clusters=(_as_int("clusters (k)", clusters) if cluster_loss != "none" else None)).validate()


def grid_configs(form: dict, grid: dict) -> list[TrainConfig]:
    """The chosen sub-grid of the study's, with the form's window, image size, width, seed and recipe."""
    base = form_config(**{**form, "arch": "resnet18", "latent": 1, "epochs": 1, "split": 0.0})
    restrict = {}
    for name, cast in (("arch", str), ("latent", lambda v: _as_int("latent", v)),
                       ("epochs", lambda v: _as_int("epochs", v)), ("split", lambda v: _as_float("split", v))):
        restrict[name] = [cast(v) for v in (grid.get(name) or [])]
    if not all(restrict.values()):
        return []
    shared = dict(window=base.window, image_size=base.image_size, channels=base.channels, seed=base.seed,
                  objective=base.objective,
                  cluster_loss=base.cluster_loss, clusters=base.clusters)
    return [c.validate() for c in paper_grid(**shared, **restrict)]


def _message(subs, runner) -> dbc.Alert:
    queued = [s for s in subs if s.status == "queued"]
    dup = [s for s in subs if s.status == "duplicate"]
    exists = [s for s in subs if s.status == "exists"]
    lines = []
    if queued:
        lines.append(f"Queued {len(queued)} job(s)" + (f": {queued[0].model_id}" if len(queued) == 1 else "") + ".")
    if dup:
        states = {s.job_id: runner.store.load(s.job_id)["state"] for s in dup}
        lines.append(f"{len(dup)} already submitted (not queued again)" +
                     (f": job {dup[0].job_id} is {states[dup[0].job_id]}" if len(dup) == 1 else "") + ".")
    if exists:
        lines.append(f"{len(exists)} model(s) exist already and were not retrained" +
                     (f": {exists[0].model_id}" if len(exists) == 1 else "") + ".")
    return dbc.Alert(" ".join(lines), color="success" if queued else "info", dismissable=True, className="small",
                     id="train-submit-result")


# ---- callbacks ----------------------------------------------------------------------------------

@callback(Output(FORM["clusters"], "disabled"), Input(FORM["cluster_loss"], "value"))
def clusters_needed(cluster_loss):
    """k is asked for only by a clustering fine-tuning."""
    return (cluster_loss or "none") == "none"


@callback(Output(FORM["window"], "value"), Input(FORM["folder"], "value"), prevent_initial_call=True)
def window_of_folder(folder):
    """Images are drawn for one window: choosing a folder sets it."""
    for w, rel in _folders(get_catalog()).items():
        if rel == folder:
            return w
    return no_update


@callback(
    Output(FORM["estimate"], "children"), Output(GRID["count"], "children"),
    Output(GRID["submit"], "children"), Output(GRID["submit"], "disabled"),
    inputs=dict(form=_form_values(Input), grid=_grid_values(Input)),
)
def estimates(form, grid):
    """Time estimates from a fixed images/s per architecture (measured on this project's CPU),
    scaled by image area; shown before anything is submitted."""
    catalog = get_catalog()
    try:
        images = _folder(catalog, form["folder"])
        n = count_images(images)
    except ParameterError:
        images, n = None, 0
    basis = (f"CPU estimate from ResNet-18 {CPU_IMAGES_PER_S['resnet18']} and ResNet-50 "
             f"{CPU_IMAGES_PER_S['resnet50']} images/s at 224 px")
    try:
        cfg = form_config(**form)
        if images is not None:  # said here already; the server refuses it at submission
            check_window(images, cfg.window, shown=form["folder"])
        start = ("from the shipped encoder" if cfg.init_from == PRETRAINED else
                 f"from scratch (the shipped encoder is {describe_trunk()})")
        one = (f"≈ {format_duration(estimate_seconds(cfg, n))}, {start}" if n
               else "no training images to estimate from")
    except ParameterError as exc:
        one = html.Span(str(exc), className="text-danger", id="train-form-problem")
    try:
        configs = grid_configs(form, grid)
    except ParameterError as exc:
        return one, html.Span(str(exc), className="text-danger"), "Submit grid", True
    total = sum(estimate_seconds(c, n) for c in configs)
    timing = f" · ≈ {format_duration(total)} in all ({basis}; {n} images)" if n else " · no training images"
    count = html.Span([html.B(f"{len(configs)} models"), timing], id="train-grid-summary")
    return one, count, f"Submit grid ({len(configs)})", not configs


@callback(
    Output(MESSAGE, "children"), Output(SELECTED, "data", allow_duplicate=True),
    inputs=dict(n_one=Input(FORM["submit"], "n_clicks"), n_grid=Input(GRID["submit"], "n_clicks")),
    state=dict(form=_form_values(), grid=_grid_values()),
    prevent_initial_call=True,
)
def submit(n_one, n_grid, form, grid):
    """Queue one model or the chosen grid (duplicates return the existing job)."""
    catalog = get_catalog()
    runner = get_job_runner()
    try:
        images = _folder(catalog, form["folder"])
        if dash.ctx.triggered_id == GRID["submit"]:
            configs = grid_configs(form, grid)
        else:
            configs = [form_config(**form)]
        subs = runner.submit(configs, images)
    except BandscapeError as exc:
        return dbc.Alert(str(exc), color="danger", dismissable=True, className="small", id="train-submit-error"), no_update
    except Exception as exc:  # never a stack trace in the browser
        log.exception("submitting training jobs failed")
        return dbc.Alert(f"internal error while submitting: {exc}", color="danger", className="small"), no_update
    first = next((s.job_id for s in subs if s.job_id), None)
    return _message(subs, runner), first or no_update


@callback(
    Output(SELECTED, "data", allow_duplicate=True),
    Input({"type": ROW, "index": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def select_job(clicks):
    """A click on a row selects its job (re-drawn rows report no click and are ignored)."""
    trig = dash.ctx.triggered_id
    if not trig or not any(t.get("value") for t in dash.ctx.triggered):
        raise dash.exceptions.PreventUpdate
    return trig["index"]


@callback(
    Output(JOBS, "children"), Output(TABLE_SEEN, "data"),
    Input(POLL, "n_intervals"), Input(SELECTED, "data"), State(TABLE_SEEN, "data"),
)
def refresh_table(_, selected, seen):
    records = get_job_runner().jobs("train")
    key = [selected] + [[r["job_id"], r.get("updated_at")] for r in records]
    if key == seen:
        return no_update, no_update
    return jobs_table(records, selected, ROW), key


@callback(
    Output(DETAIL_HEAD, "children"), Output(LOSS, "figure"), Output(RECON, "children"), Output(LOG, "children"),
    Output(CANCEL, "disabled"), Output(SEEN, "data"),
    Input(POLL, "n_intervals"), Input(SELECTED, "data"), State(SEEN, "data"),
)
def refresh_detail(_, job_id, seen):
    """The selected job: progress, live loss curve, reconstructions when done, log of failures."""
    if not job_id:
        raise dash.exceptions.PreventUpdate
    runner = get_job_runner()
    try:
        rec = runner.store.load(job_id)
    except BandscapeError as exc:
        return dbc.Alert(str(exc), color="warning", className="small"), loss_figure(None), [], [], True, None
    key = [job_id, rec.get("updated_at")]
    if key == seen:
        return (no_update,) * 6
    tail = runner.store.log_tail(job_id) if rec["state"] in ("failed", "cancelled", "done") else ""
    return (job_header(rec, explorer_href(rec["model_id"])), loss_figure(rec), recon_panel(rec), log_panel(rec, tail),
            rec["state"] not in ACTIVE, key)


@callback(
    Output(MESSAGE, "children", allow_duplicate=True),
    Input(CANCEL, "n_clicks"), State(SELECTED, "data"),
    prevent_initial_call=True,
)
def cancel(n, job_id):
    if not n or not job_id:
        raise dash.exceptions.PreventUpdate
    try:
        rec = get_job_runner().cancel(job_id)
    except BandscapeError as exc:
        return dbc.Alert(str(exc), color="danger", className="small", dismissable=True)
    text = (f"Cancelling {rec['model_id']}: it stops at its next progress report, and no model is kept."
            if rec["state"] == "running" else f"Job {job_id} is {rec['state']}.")
    return dbc.Alert(text, color="warning", className="small", dismissable=True)


# The selected job lives in the address (/train?job=ID): a reload or a shared link shows it again.
clientside_callback(
    """
    function(job) {
        const url = window.location.pathname + (job ? "?job=" + encodeURIComponent(job) : "");
        if (window.location.pathname.endsWith("/train") && url !== window.location.pathname + window.location.search) {
            window.history.replaceState(window.history.state, "", url);
        }
        return window.dash_clientside.no_update;
    }
    """,
    Output(URL_SINK, "data"), Input(SELECTED, "data"),
    prevent_initial_call=True,
)


@callback(
    output=dict(status=Output(IMPORT["status"], "children"), folders=Output(FORM["folder"], "options")),
    inputs=dict(contents=Input(IMPORT["upload"], "contents")),
    state=dict(names=State(IMPORT["upload"], "filename"), fermi=State(IMPORT["fermi"], "value"),
               plot_window=State(IMPORT["plot_window"], "value")),
    prevent_initial_call=True,
)
def import_files(contents, names, fermi, plot_window):
    """Uploaded band structures written into the data root (read in the app's worker process:
    pymatgen and the drawing stay out of the web process); the training folders offered anew."""
    if not contents:
        raise dash.exceptions.PreventUpdate
    catalog = get_catalog()
    try:
        result = in_place_worker(import_uploads, str(catalog.root), uploaded_files(contents, names), fermi=fermi,
                                 plot_window=plot_window, timeout=1800)
    except BandscapeError as exc:
        result = {"written": [], "problems": [{"source": ", ".join(names), "message": str(exc)}], "renamed": {}}
    n = len(result["written"])
    lines = [html.Div(f"{n} of {n + len(result['problems'])} materials added to {catalog.root}: "
                      + ", ".join(result["written"][:12]) + (" …" if n > 12 else ""), id="train-import-summary")]
    lines += [html.Div(f"{old} was taken: kept as {name}", className="text-muted")
              for name, old in result["renamed"].items()]
    lines += [dbc.Alert([html.B(p["source"]), ": ", p["message"]], color="warning", className="py-1 px-2 mb-1")
              for p in result["problems"]]
    folders = _folders(catalog)
    options = folder_options(folders, {rel: count_images(catalog.root / rel) for rel in folders.values()})
    return {"status": lines, "folders": options}
