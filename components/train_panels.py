"""Layout pieces of the Train page: the job form, the jobs table, a job's detail and loss curve.

Functions here only build components and figures from plain values and job records (dicts, as
:mod:`backend.jobs` writes them); the page holds the callbacks.
"""

from __future__ import annotations

import time
import urllib.parse

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html

from backend.autoencoder.config import (
    CHANNELS,
    CLUSTER_LOSSES,
    OBJECTIVES,
    PRETRAINED,
    STUDY_RECIPE,
    TrainConfig,
    loss_name,
)
from backend.discover.explorer_view import explorer_url
from backend.jobs import format_duration, format_progress
from components.explore_controls import ARCH_LABELS, labelled

# ids of read-only pieces (no callback reads them; tests and users' scripts find them)
PROGRESS_LINE, OPEN_EXPLORER, RECON_IMG, LOG_TAIL = ("train-detail-progress", "train-open-explorer",
                                                    "train-recon-img", "train-log-tail")
STATE_COLOURS = {"queued": "secondary", "running": "primary", "done": "success", "failed": "danger",
                 "cancelled": "warning"}
IMAGE_SIZES = (32, 64, 96, 128, 160, 192, 224, 256)
OBJECTIVE_LABELS = {"contrastive": "contrastive (default)", "reconstruction": "reconstruction (the study)"}
CLUSTER_LOSS_LABELS = {"none": "none", "wcss": "WCSS (K-Means)", "dec": "DEC", "idec": "IDEC"}


def state_badge(state: str) -> dbc.Badge:
    return dbc.Badge(state, color=STATE_COLOURS.get(state, "light"), className="job-state")


def folder_options(folders: dict, counts: dict) -> list[dict]:
    """``folders``: window -> folder relative to the root; ``counts``: folder -> number of images."""
    return [{"label": f"{rel}  ({counts.get(rel, 0)} images, ±{w} eV)", "value": rel} for w, rel in folders.items()]


def job_form(ids: dict, folders: list[dict], default_folder: str | None, defaults) -> dbc.Card:
    """One model: image folder, architecture, latent, epochs, split, window, image size, seed.
    ``ids`` maps field names to component ids; ``defaults`` is a TrainConfig."""
    def num(name, value, min_, step, width=90):
        return dcc.Input(id=ids[name], type="number", value=value, min=min_, step=step, debounce=False,
                         className="form-control form-control-sm", style={"width": f"{width}px"})

    return dbc.Card([
        dbc.CardHeader("Train a model"),
        dbc.CardBody([
            labelled("Image folder", dbc.Select(id=ids["folder"], options=folders, value=default_folder, size="sm",
                                                disabled=not folders)),
            html.Div([
                labelled("Architecture", dbc.Select(
                    id=ids["arch"], value=defaults.arch, size="sm",
                    options=[{"label": ARCH_LABELS[a], "value": a} for a in ("resnet18", "resnet50")]), 130),
                labelled("Latent channels", dbc.Select(
                    id=ids["latent"], value=str(defaults.latent), size="sm",
                    # the fingerprint is (size/32)^2 x z numbers: 7x7xz at 224 px, 4x4xz at 128
                    options=[{"label": f"{z}", "value": str(z)} for z in (1, 2, 3)]), 120),
            ], className="d-flex gap-2"),
            html.Div([
                labelled("Epochs", num("epochs", defaults.epochs, 1, 1, 80)),
                labelled("Validation split", num("split", defaults.split, 0, "any", 90)),
                labelled("Window (±eV)", num("window", defaults.window, 0, "any", 80)),
            ], className="d-flex gap-2"),
            html.Div([
                labelled("Image size (px)", dbc.Select(
                    id=ids["image_size"], value=str(defaults.image_size), size="sm",
                    options=[{"label": f"{s}" + (" (the study)" if s == 224 else " (default)"
                                                 if s == defaults.image_size else ""), "value": str(s)}
                             for s in IMAGE_SIZES]), 145),
                labelled("Trunk width", dbc.Select(
                    id=ids["channels"], value=str(defaults.channels), size="sm",
                    options=[{"label": f"{c}" + (" (the study)" if c == STUDY_RECIPE["channels"] else " (default)" if c == defaults.channels
                                                 else ""), "value": str(c)} for c in CHANNELS]), 150),
                labelled("Seed", num("seed", defaults.seed, 0, 1, 60)),
            ], className="d-flex gap-2"),
            html.Div([
                labelled("Objective", dbc.Select(
                    id=ids["objective"], value=defaults.objective, size="sm",
                    options=[{"label": OBJECTIVE_LABELS[o], "value": o} for o in OBJECTIVES]), 170),
                labelled("Cluster fine-tuning", dbc.Select(
                    id=ids["cluster_loss"], value=defaults.cluster_loss, size="sm",
                    options=[{"label": CLUSTER_LOSS_LABELS[c], "value": c} for c in CLUSTER_LOSSES]), 140),
                labelled("k", num("clusters", defaults.clusters, 2, 1, 60)),
            ], className="d-flex gap-2"),
            html.Div([
                dbc.Button("Train this model", id=ids["submit"], color="primary", size="sm", disabled=not folders,
                           className="flex-shrink-0"),  # a long message beside it does not squeeze it
                html.Span(id=ids["estimate"], className="small text-muted ms-2"),
            ], className="d-flex align-items-center"),
        ]),
    ], className="mb-2")


def grid_form(ids: dict, grid: dict) -> dbc.Card:
    """The study's grid (or a sub-grid) at the form's folder, window, image size and seed."""
    def multi(name, values, fmt=str):
        return dcc.Dropdown(id=ids[name], options=[{"label": fmt(v), "value": v} for v in values],
                            value=list(values), multi=True, clearable=True, className="small")

    return dbc.Card([
        dbc.CardHeader("Train a grid"),
        dbc.CardBody([
            html.Div("The study's 216 models are 2 architectures × 3 latents × 3 windows × 4 epochs × "
                     "3 splits; here at the folder's window, the image size and seed above.",
                     className="small text-muted mb-2"),
            labelled("Architectures", multi("arch", grid["arch"], lambda a: ARCH_LABELS.get(a, a))),
            labelled("Latent channels", multi("latent", grid["latent"])),
            labelled("Epochs", multi("epochs", grid["epochs"])),
            labelled("Validation splits", multi("split", grid["split"])),
            html.Div(id=ids["count"], className="small mb-2"),
            dbc.Button("Submit grid", id=ids["submit"], color="secondary", size="sm"),
        ]),
    ], className="mb-2")


def jobs_table(records: list[dict], selected: str | None, row_type: str) -> html.Div:
    """Newest first; a row is clickable (pattern id ``{"type": row_type, "index": job_id}``)."""
    if not records:
        return html.Div("No training jobs yet.", className="text-muted small")
    rows = []
    for rec in reversed(records):
        p = rec.get("progress") or {}
        fraction = p.get("fraction") or (1.0 if rec["state"] == "done" else 0.0)
        bar = dbc.Progress(value=round(100 * fraction), style={"height": "6px"},
                           color=STATE_COLOURS.get(rec["state"], "secondary"),
                           striped=rec["state"] == "running", animated=rec["state"] == "running")
        rows.append(html.Tr([
            html.Td(html.Code(rec["model_id"], className="small")),
            html.Td(state_badge(rec["state"])),
            html.Td([html.Div(format_progress(rec), className="small job-progress"), bar], style={"minWidth": "260px"}),
            html.Td(time.strftime("%m-%d %H:%M", time.localtime(rec.get("created_at") or 0)), className="small text-muted"),
        ], id={"type": row_type, "index": rec["job_id"]}, n_clicks=0,
            className="job-row" + (" table-active" if rec["job_id"] == selected else ""),
            style={"cursor": "pointer"}, **{"data-job": rec["job_id"], "data-state": rec["state"]}))
    return dbc.Table([
        html.Thead(html.Tr([html.Th("Model"), html.Th("State"), html.Th("Progress"), html.Th("Submitted")])),
        html.Tbody(rows),
    ], hover=True, size="sm", className="mb-0")


def job_header(rec: dict, explorer_href: str) -> list:
    """Title, state, progress line, and for a finished job the link to the explorer."""
    cfg = rec.get("config", {})
    worker = rec.get("worker") or {}
    facts = [f"job {rec['job_id']}", f"{rec.get('n_images', '?')} images from {rec.get('images')}",
             f"image size {cfg.get('image_size')}", f"seed {cfg.get('seed')}", f"runs on {rec.get('executor')}"]
    if worker.get("host"):
        facts.append(f"worker {worker['host']}")
    if rec.get("result"):
        facts.append(f"device {rec['result'].get('device')}")
    out = [
        html.Div([html.Code(rec["model_id"], className="me-2"), state_badge(rec["state"])], className="mb-1"),
        html.Div(" · ".join(facts), className="small text-muted mb-1"),
        html.Div(format_progress(rec), id=PROGRESS_LINE, className="small mb-1"),
    ]
    if rec["state"] == "queued":
        out.append(html.Div(f"estimated {format_duration(rec.get('estimate_s'))} of training on this CPU "
                            f"(ResNet-18 6.2, ResNet-50 2.8 images/s at 224 px)", className="small text-muted"))
    if rec["state"] == "done":
        out.append(dbc.Button("Open in explorer", id=OPEN_EXPLORER, href=explorer_href, color="success",
                              size="sm", className="mt-1"))
    if rec["state"] == "failed" and rec.get("error"):
        out.append(dbc.Alert(rec["error"], color="danger", className="small py-1 mt-1 mb-0"))
    return out


def explorer_href(model_id: str) -> str:
    return explorer_url(model=model_id)


def loss_axis_title(config: dict) -> str:
    """The loss chart's y axis: the objective's loss by name (NT-Xent, BCE), and with a clustering
    fine-tuning what its epochs minimise too (validation stays on the objective's loss)."""
    d = TrainConfig()
    objective = config.get("objective") or d.objective
    pretrain = loss_name(objective)
    cluster_loss = config.get("cluster_loss") or "none"
    if cluster_loss == "none":
        return f"{pretrain} loss"
    tuned = loss_name(objective, cluster_loss, config.get("cluster_weight", d.cluster_weight))
    return f"loss: {pretrain}, fine-tuning {tuned}"


def loss_figure(rec: dict | None) -> go.Figure:
    """Per-batch training loss (thin), per-epoch train and validation loss, against epochs; the y
    axis names the job's loss, and a clustering fine-tuning's first epoch is marked."""
    fig = go.Figure()
    if rec:
        batches = [b for b in rec.get("batch_losses") or [] if b[1] is not None]
        if batches:
            fig.add_trace(go.Scatter(x=[b[0] for b in batches], y=[b[1] for b in batches], mode="lines",
                                     name="batch", line={"width": 1, "color": "rgba(31,119,180,0.35)"}))
        hist = rec.get("history") or []
        if hist:
            fig.add_trace(go.Scatter(x=[h["epoch"] for h in hist], y=[h["train_loss"] for h in hist],
                                     mode="lines+markers", name="train", line={"color": "#1f77b4"}))
            val = [h for h in hist if h.get("val_loss") is not None]
            if val:
                fig.add_trace(go.Scatter(x=[h["epoch"] for h in val], y=[h["val_loss"] for h in val],
                                         mode="lines+markers", name="validation", line={"color": "#d62728"}))
    config = (rec or {}).get("config") or {}
    epochs = config.get("epochs") or 1
    finetune = (config.get("cluster_loss") or "none") != "none"
    total = epochs + ((config.get("cluster_epochs") or 0) if finetune else 0)
    if finetune and config.get("init_from") in (None, "", PRETRAINED):  # its pre-training epochs come first
        fig.add_vline(x=epochs, line={"color": "#888", "dash": "dot", "width": 1},
                      annotation_text="fine-tuning", annotation_position="top right",
                      annotation_font={"size": 10, "color": "#666"})
    fig.update_layout(
        margin={"l": 50, "r": 10, "t": 10, "b": 40}, height=260, template="plotly_white",
        xaxis={"title": "epoch", "range": [0, total]},
        yaxis={"title": loss_axis_title(config) if rec else "loss", "rangemode": "tozero"},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        uirevision=(rec or {}).get("job_id"),
    )
    if not fig.data:
        fig.add_annotation(text="the loss curve appears after the first batch" if rec else
                           "select a job in the table: its loss curve appears here", showarrow=False,
                           xref="paper", yref="paper", x=0.5, y=0.5, font={"color": "#888"})
    return fig


def recon_panel(rec: dict) -> list:
    """The reconstruction grid of a finished model (input / noised input / reconstruction)."""
    if rec.get("state") != "done":
        return []
    src = f"/data-file/models/{urllib.parse.quote(rec['model_id'])}_recon.png?v={int(rec.get('finished_at') or 0)}"
    return [html.Div("Reconstructions (rows: input, noised input, reconstruction)", className="small text-muted"),
            html.Img(src=src, id=RECON_IMG, alt=f"reconstructions of {rec['model_id']}",
                     style={"maxWidth": "100%", "imageRendering": "pixelated"})]


def log_panel(rec: dict, tail: str) -> list:
    """The end of the log, open for failed jobs, folded away otherwise."""
    if not tail:
        return []
    return [html.Details([html.Summary("Log (last lines)", className="small"),
                          html.Pre(tail, className="small bg-light p-2 mb-0", id=LOG_TAIL,
                                   style={"maxHeight": "300px", "overflow": "auto", "whiteSpace": "pre-wrap"})],
                         open=rec.get("state") == "failed")]


def import_card(ids: dict) -> dbc.Card:
    """Step one: the user's own band structures into the data root (``import``'s formats), as
    band data, display plots and training images of 1, 2 and 3 eV, ready to train on below."""
    return dbc.Card([
        dbc.CardHeader("1. Add your materials"),
        dbc.CardBody([
            dcc.Upload(id=ids["upload"], multiple=True, className="small text-center p-2 mb-1",
                       style={"border": "1px dashed #999", "borderRadius": "4px", "cursor": "pointer"},
                       children=html.Div(["Drop VASP (EIGENVAL + E_F file/OUTCAR/DOSCAR, vasprun.xml), Quantum "
                                          "ESPRESSO, Materials Project JSON, band plots or a zip here, or ",
                                          html.A("choose files", href="#")])),
            dbc.InputGroup([dbc.InputGroupText("E_F (eV)"),
                            dbc.Input(id=ids["fermi"], type="number", placeholder="if the files carry none")],
                           size="sm", className="mb-1"),
            dbc.InputGroup([dbc.InputGroupText("plots' window (±eV)"),
                            dbc.Input(id=ids["plot_window"], type="number", min=0, placeholder="for band plots")],
                           size="sm", className="mb-1"),
            dcc.Loading(html.Div(id=ids["status"], className="small"), type="dot", delay_show=200),
        ]),
    ], className="mb-2")
