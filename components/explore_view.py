"""What the explorer shows for a view: the map (a whole figure, a Patch of the one on screen, or
the new per-point style that the browser applies in place), the summary line and the legend,
the scores of a colouring, the element matches and the hover's view info.

:func:`render_view` is called by the page's layout (the first figure comes with the page) and by
its view callback; it returns the outputs by name (:data:`VIEW_OUTPUTS`). ``drawn`` is the key of
the figure on screen (what :func:`render_view` returned as ``drawn`` last time): with the same
materials on screen only what changed is sent, as typed arrays.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass

import dash_bootstrap_components as dbc
import numpy as np
from dash import Patch, html, no_update

from backend.cluster.models import cluster_model, distinct_fingerprints, graph_cached
from backend.cluster.params import BOUNDS, default_model, uses_graph
from backend.data.elements import element_mask, elements_present
from backend.autoencoder.config import PART_MEANINGS
from backend.data.labels import label_columns
from backend.data.model_ids import part_name, part_parent
from backend.discover.explorer_view import CONSENSUS_COLOURINGS, ExplorerView, opening_view
from backend.errors import BandscapeError
from components.discover_panels import metric_text
from components.map_colouring import colouring, consensus_placeholder, point_labels
from components.material_image import material_image_template
from components.scatter import (
    POINTS,
    UNSELECTED_CODE,
    overlay_updates,
    point_style,
    positions,
    scatter_figure,
    trace_type,
    typed_array,
    visible_mask,
)

log = logging.getLogger(__name__)

#: the outputs of a view, by name (the page wires each to its component's property)
VIEW_OUTPUTS = ("figure", "drawn", "summary", "legend", "scores", "style", "alert", "matches", "view", "names",
                "poll", "consensus_default")
#: up to this many materials a recluster also sends each material's cluster label (hover text)
LABELS_INLINE_MAX = 20_000
#: what the numbers' error message calls each numeric field (its limit from BOUNDS)
_FIELD_NAMES = {"min_cluster_size": "min cluster size", "min_samples": "min samples", "p": "p",
                "n_clusters": "number of clusters", "dc_eps": "double-cluster eps",
                "dc_min_samples": "double-cluster min samples", "rc_min_cluster_size": "recluster min cluster size",
                "rc_min_samples": "recluster min samples"}
_NUMBER_FIELDS = {name: f"{label} (>= {BOUNDS[name].minimum})" if BOUNDS[name].integer else f"{label} (> 0)"
                  for name, label in _FIELD_NAMES.items()}


@dataclass(frozen=True)
class _Map:
    """A clustered view, ready to be drawn: the model's data and clustering, the points shown
    (``keep``), the overlays and the points' style, the hover's meta, and the drawn-figure key."""

    data: object
    result: object
    highlight: np.ndarray
    keep: np.ndarray
    overlays: dict
    style: dict
    meta: dict
    scores: dict | None
    legend: dict
    key: dict


def render_view(catalog, v: ExplorerView, *, drawn: dict | None, job_runner) -> dict:
    """The outputs of a view, by name (:data:`VIEW_OUTPUTS`; ``no_update`` for those that stay):
    the figure, or a Patch of the one on screen (``drawn`` says what it shows), the drawn-figure
    key, the summary, an alert, the element-match count and the hover's view info (model, image
    window). ``job_runner``: returns the app's job runner (asked only when a neighbour graph
    must be built first)."""
    out = dict.fromkeys(VIEW_OUTPUTS, no_update)
    try:
        _check_numbers(v)
        data = catalog.load(v.model)
        building = _graph_in_progress(catalog, v, len(data.names), job_runner=job_runner)
        if building is not None:
            return {**out, **_grey_map(catalog, v, data, drawn), "alert": building, "poll": False}
        m = _clustered_map(catalog, v, data)
    except BandscapeError as exc:
        return {**out, "alert": dbc.Alert(str(exc), color="danger")}
    except Exception as exc:  # never a stack trace in the browser, never a dead app
        log.exception("clustering failed")
        return {**out, "alert": dbc.Alert(f"internal error while clustering {v.model}: {exc}", color="danger")}

    out.update(_texts(v, m), drawn=m.key, poll=True)
    out["alert"] = caveats(catalog, v, m.result, len(data.names))
    out.update(_map_update(v, m, drawn), **_page_lacks(catalog, v, data, drawn, m.key["names"]))
    return out


def _page_lacks(catalog, v: ExplorerView, data, drawn: dict | None, names_key: str) -> dict:
    """What the page does not hold yet for the map on screen (``drawn``): the names, once per set
    of materials, as one string (the browser splits it), and the model's hover info."""
    out = {}
    if not drawn or drawn.get("names") != names_key:
        out["names"] = {"key": names_key, "names": "\n".join(map(str, data.names))}
    if not drawn or drawn.get("model") != v.model:
        out.update(_model_info(catalog, v, data))
    return out


def view_from_url(catalog, query: dict) -> tuple[ExplorerView, list[str]]:
    """The view the URL's query asks for, and notes on what of it was not valid (invalid
    entries and an unknown model fall back to defaults). Choices the model's data cannot take
    (elements it lacks, unknown label columns) are dropped, so that the first figure is drawn
    for exactly the values the controls show. An address that names no view opens the root's
    opening view (:mod:`backend.data.opening`), if it declares one."""
    if query:
        view, notes = ExplorerView.from_query(query)
    else:
        view, notes = opening_view(catalog)
    if view.model is None:
        view = view.replace(model=default_model(catalog))
    elif view.model not in catalog:
        notes.append(f"unknown model {view.model!r} in the URL; showing {default_model(catalog)}")
        view = view.replace(model=default_model(catalog))
    try:
        present = set(elements_present(catalog.load(view.model).names))
        colours = (*CONSENSUS_COLOURINGS, *label_columns(catalog))
    except BandscapeError:
        return view, notes  # the figure's alert says what is wrong with the model's data
    return view.replace(elements=tuple(e for e in view.elements if e in present),
                        colour_by=view.colour_by if view.colour_by in colours else "cluster"), notes


def _check_numbers(v: ExplorerView) -> None:
    empty = [label for name, label in _NUMBER_FIELDS.items() if getattr(v, name) is None]
    if empty:
        raise BandscapeError(f"{', '.join(empty)}: the field is empty or out of range")


def _clustered_map(catalog, v: ExplorerView, data) -> _Map:
    """Cluster the view and compute everything the map draws of it."""
    result = cluster_model(catalog, v.model, v.params())
    highlight = element_mask(data.names, list(v.elements), v.element_mode)
    codes, texts, scores, legend = colouring(catalog, data, result, v)
    n = len(data.names)
    keep = visible_mask(result.noise, v.hide_noise, v.hide_nonnoise)
    overlays = overlay_updates(data.xy, result, highlight, keep)
    style = point_style(result, keep, codes, with_labels=labels_inline(n))
    colour_key = v.colour_by if v.colour_by not in CONSENSUS_COLOURINGS else f"{v.colour_by}|{scores['filter']}"
    key = {"model": v.model, "names": _names_key(data.names), "colour": colour_key, "type": trace_type(n),
           "overlays": {str(idx): _digest(props) for idx, props in overlays.items()}}
    meta = {"label": None if v.colour_by == "cluster" else v.colour_by, "point_labels": texts}
    if v.colour_by in CONSENSUS_COLOURINGS:
        meta["label"] = "consensus"
    return _Map(data=data, result=result, highlight=highlight, keep=keep, overlays=overlays, style=style,
                meta=meta, scores=scores, legend=legend, key=key)


def _texts(v: ExplorerView, m: _Map) -> dict:
    """The summary line, the legend (with the figure's caption and file name), colouring
    scores, element matches; no alert."""
    n = len(m.data.names)
    head = _summary(m.result, n)
    legend = {**m.legend, **figure_caption(v, m.result)}
    return {"summary": head, "legend": legend, "scores": m.scores["text"] if m.scores else None, "alert": None,
            "matches": f"{int(m.highlight.sum())} of {n} materials match" if v.elements else ""}


def caveats(catalog, v: ExplorerView, result, n: int):
    """A warning where the view cannot mean much: a collapsed model (the evaluate page's
    definition, :func:`backend.evaluate.spec.is_collapsed`), a clustering that is all noise or
    one cluster; None when there is nothing to say."""
    from backend.evaluate.spec import COLLAPSED_FRACTION, is_collapsed

    notes = []
    distinct = distinct_fingerprints(catalog, v.model)
    if is_collapsed(distinct, n):
        notes.append(html.Div([html.B("This model has collapsed: "),
                               f"its {n} materials have only {distinct} distinct fingerprint"
                               f"{'s' if distinct != 1 else ''} (fewer than {COLLAPSED_FRACTION:.0%}). Its clusters "
                               "are groups of identical fingerprints, not similar band structures; the evaluate "
                               "page leaves it out of its rankings. Choose another model."],
                              id="explore-collapsed"))
    if result.n_clusters == 0:
        notes.append(html.Div([html.B("Every material is noise: "),
                               "this clustering found no cluster. Try a smaller min cluster size or min samples."],
                              id="explore-all-noise"))
    elif result.n_clusters == 1:
        notes.append(html.Div([html.B("One cluster: "),
                               f"this clustering puts all {n - result.n_noise} non-noise materials together"
                               f"{f' ({result.n_noise} noise)' if result.n_noise else ''}, so it separates nothing."],
                              id="explore-one-cluster"))
    if notes:
        return dbc.Alert(notes, color="warning", className="py-2 small", id="explore-caveats")
    return part_map_note(v.model)


def part_map_note(model_id: str):
    """What a part map shows (None for any other model): which part of whose fingerprint, what it
    groups, and that the whole fingerprint's map is another model of the root."""
    part = part_name(model_id)
    if not part:
        return None
    meaning = PART_MEANINGS.get(part, f"what its '{part}' views keep")
    suffix = model_id[len(part_parent(model_id)):]
    return html.Div([html.B(f"The {part} part of a fingerprint: "),
                     f"this map keeps one of the model's two encoders and groups {meaning}. The whole "
                     f"fingerprint's map, the same id without {suffix}, holds both."],
                    className="small text-muted mb-1", id="explore-part-map")


def _summary(result, n: int) -> html.Span:
    """The summary line (the legend, drawn by the browser, follows it)."""
    return html.Span([html.B(f"{result.n_clusters} clusters"), f" · {result.n_noise} noise · {n} materials · "],
                     id="explore-summary-text")


def cell_text(v: ExplorerView) -> str:
    """The clustering's parameters as a figure caption says them."""
    if v.algo in ("kmeans", "gmm"):
        return f"{'K-Means' if v.algo == 'kmeans' else 'GMM'}, k = {v.n_clusters}"
    metric = metric_text(v.metric, v.p)
    return (f"HDBSCAN, min cluster size {v.min_cluster_size}, min samples {v.min_samples}, {v.selection}, "
            f"{metric}")


def cell_slug(v: ExplorerView) -> str:
    """The clustering's parameters in a file name: ``hdbscan_mcs3_ms2_leaf_minkowski0.2``."""
    if v.algo in ("kmeans", "gmm"):
        return f"{v.algo}_k{v.n_clusters}"
    metric = f"minkowski{v.p:g}" if v.metric == "minkowski" else "euclidean"
    return f"hdbscan_mcs{v.min_cluster_size}_ms{v.min_samples}_{v.selection}_{metric}"


def figure_caption(v: ExplorerView, result) -> dict:
    """What a downloaded map says of itself: a caption (its lines: the model, the clustering
    and its counts) and a file name (model id, clustering, colouring)."""
    colour = "" if v.colour_by == "cluster" else f"_{v.colour_by}"
    counts = f"{result.n_clusters} clusters, {result.n_noise} noise"
    return {"caption": [v.model, f"{cell_text(v)} · {counts}"
                        + ("" if v.colour_by == "cluster" else f" · coloured by {v.colour_by}")],
            "filename": f"{v.model}_{cell_slug(v)}{colour}"}


def _map_update(v: ExplorerView, m: _Map, drawn: dict | None) -> dict:
    """``figure`` (a whole figure, a Patch, or no_update) and, for a change of colours, cluster
    labels or visibility only, ``style``: what the browser applies in place."""
    same_points = bool(drawn) and all(drawn.get(k) == m.key[k] for k in ("names", "type"))
    if not same_points:
        figure = scatter_figure(m.data.xy, {**m.overlays, POINTS: {**m.style, **positions(m.data.xy)}},
                                meta=m.meta, uirevision=v.model)
        return {"figure": figure}
    # the same materials on screen: send only what changed, as typed arrays
    patch, points = Patch(), {}
    changed = [idx for idx in m.overlays if drawn.get("overlays", {}).get(str(idx)) != m.key["overlays"][str(idx)]]
    for idx in changed:
        assign_paths(patch["data"][idx], m.overlays[idx])
    if drawn.get("model") != v.model:
        points.update(positions(m.data.xy))
    if drawn.get("colour") != m.key["colour"]:
        points["meta"] = m.meta
    out = {}
    if points:
        # the points trace changes anyway: its colours go with it
        assign_paths(patch["data"][POINTS], {**points, **m.style})
        patch["layout"]["uirevision"] = v.model
    else:
        # colours, cluster labels and visibility only: recoloured in place in the browser
        out["style"] = m.style
    out["figure"] = patch if changed or points else no_update
    return out


def _model_info(catalog, v: ExplorerView, data) -> dict:
    """What changes with the model: the hover's view (image window; the images' address, with
    the name to fill in, for assets/explore.js; the known labels for the gallery's captions: on
    small maps only, like the hover's clusters) and the consensus filter's placeholder."""
    window = catalog.get(v.model).window
    labels = point_labels(catalog, data.names) if labels_inline(len(data.names)) else None
    return {"view": {"window": window, "image_url": material_image_template(window), "model": v.model,
                     "labels": labels},
            "consensus_default": consensus_placeholder(catalog, v.model)}


def _grey_map(catalog, v: ExplorerView, data, drawn: dict | None) -> dict:
    """While a large model's neighbour graph is built: its map at once, every point grey (the
    positions are known; the clusters are not), hoverable; the clustering colours it when ready
    (``drawn`` marks it grey, so that view sends the colours as a Patch)."""
    key = {"names": _names_key(data.names), "type": trace_type(len(data.names)), "model": v.model, "grey": True}
    if drawn and all(drawn.get(k) == key[k] for k in key):
        return {}  # drawn already (a poll while the job runs)
    grey = {"marker.color": typed_array(np.full(len(data.names), UNSELECTED_CODE), "u1"), "marker.opacity": 1}
    return {"figure": scatter_figure(data.xy, {POINTS: {**grey, **positions(data.xy)}}, uirevision=v.model),
            "drawn": key, "summary": html.Span(f"{len(data.names):,} materials · clustering…",
                                               id="explore-summary-waiting"),
            **_page_lacks(catalog, v, data, drawn, key["names"])}


def _graph_in_progress(catalog, v: ExplorerView, n: int, *, job_runner):
    """None when the view can be clustered now; else (a large model whose neighbour graph is
    not built yet) the graph job is queued if it was not, and the alert shows its progress."""
    params = v.params()
    if params.algo != "hdbscan" or not uses_graph(n) or graph_cached(catalog, v.model, metric=params.metric, p=params.p,
                                                                      min_samples=params.min_samples):
        return None
    from backend.jobs.formatting import format_duration
    from backend.jobs.graph_job import submit_graph

    rec = submit_graph(job_runner(), catalog, v.model, metric=params.metric, p=params.p, min_samples=params.min_samples)
    if rec["state"] == "failed":
        return dbc.Alert(f"building the neighbour graph of {v.model} failed: {rec.get('error')}", color="danger")
    prog = rec.get("progress") or {}
    started = rec.get("started_at")
    elapsed = f", {format_duration(time.time() - started)} so far" if started else ""
    stage = prog.get("stage") or rec["state"]
    fraction = float(prog.get("fraction") or 0.0)
    return dbc.Alert([
        html.Div(f"Building the neighbour graph of {v.model} ({n:,} materials, {params.metric}"
                 f"{f' p={params.p:g}' if params.metric == 'minkowski' else ''}) for HDBSCAN: {stage}{elapsed}. "
                 "It is built once and kept; the map, grey until then, is coloured when it is done.",
                 id="explore-graph-progress"),
        dbc.Progress(value=round(100 * fraction), striped=True, animated=True, className="mt-1"),
    ], color="info")


def labels_inline(n: int) -> bool:
    """Whether the map carries every material's cluster for the hover (small maps); above, the
    page asks the server for the hovered material's (``/explore-point``), so that a recluster
    sends one byte per material: the colour codes."""
    return n <= LABELS_INLINE_MAX


def assign_paths(node, props: dict) -> None:
    """Set properties given by dotted paths (``marker.color``) on a Patch location."""
    for path, value in props.items():
        *parents, leaf = path.split(".")
        target = node
        for part in parents:
            target = target[part]
        target[leaf] = value


def _names_key(names) -> str:
    return hashlib.blake2b("\n".join(map(str, names)).encode(), digest_size=12).hexdigest()


def _digest(props: dict) -> str:
    return hashlib.blake2b(json.dumps(props, sort_keys=True).encode(), digest_size=8).hexdigest()
