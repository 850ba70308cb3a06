"""The explorer's "Your materials" card: upload files to place on the map, and the list of
materials placed on the model on screen (their plot, predicted cluster, nearest materials, a
remove button). Placing itself is :mod:`backend.discover.place`; this module only draws."""

from __future__ import annotations

import base64
import os

import dash_bootstrap_components as dbc
from dash import dcc, html

from components.material_image import material_image_url

#: the largest file the page uploads (bytes; $BANDSCAPE_UPLOAD_MAX_MB, default 200, the import's
#: limit per file, which the backend checks again)
UPLOAD_MAX_BYTES = int(float(os.environ.get("BANDSCAPE_UPLOAD_MAX_MB", "200")) * 1024 * 1024)
SUPPORTED = ("VASP EIGENVAL (+ KPOINTS, and E_F from an EF file, OUTCAR or DOSCAR, or the box below), "
             "vasprun.xml, Quantum ESPRESSO bands, pymatgen BandStructure JSON (Materials Project), "
             "band-plot images, or a zip of them")


def sketch_box(ids) -> html.Details:
    """Search by sketch: a canvas of the training image's square (E against k, E_F across the
    middle, the model's window from bottom to top) and its nearest materials
    (``assets/sketch.js`` draws; ``ids``: an object with SKETCH_* component ids)."""
    guide = {"position": "absolute", "left": 0, "right": 0, "top": "50%", "borderTop": "1px dashed #d62728"}
    return html.Details([
        html.Summary("Search by sketch", className="small"),
        html.Div("Draw band lines: k along the path left to right, energy up, E_F at the dashed line, "
                 "the model's window from the bottom edge to the top.", className="small text-muted"),
        html.Div([html.Div(style=guide),
                  html.Canvas(id=ids.SKETCH_CANVAS, width=224, height=224,
                              style={"position": "relative", "width": "100%", "aspectRatio": "1",
                                     "touchAction": "none", "cursor": "crosshair", "display": "block"})],
                 style={"position": "relative", "border": "1px solid #999", "background": "white"}),
        html.Div([dbc.Button("Find nearest", id=ids.SKETCH_FIND, size="sm", color="primary", className="me-1"),
                  dbc.Button("Clear", id=ids.SKETCH_CLEAR, size="sm", color="secondary", outline=True)],
                 className="my-1"),
        dcc.Store(id=ids.SKETCH),
        dcc.Loading(html.Div(id=ids.SKETCH_RESULT, className="small"), type="dot", delay_show=200),
    ], className="mt-2", id=ids.SKETCH_BOX)


def pick_box(pick_id: str, button_id: str, names: list[str]) -> html.Div | None:
    """Materials of the data root that the map lacks (band data imported after the model was
    trained): chosen by name and placed like uploaded files. Nothing when there are none (the
    ids are patterns, ``{"type": ..., "n": 0}``, so that the page's callback may miss them)."""
    if not names:
        return None
    return html.Div([
        dcc.Dropdown(id={"type": pick_id, "n": 0}, options=names, multi=True, placeholder=f"or {len(names)} of this root's materials "
                                                                          "not on the map…", className="small"),
        dbc.Button("Place them", id={"type": button_id, "n": 0}, size="sm", color="secondary", outline=True, className="mt-1"),
    ], className="mb-1")


def place_panel(upload_id: str, fermi_id: str, status_id: str, list_id: str, listing=None, *,
                shown_id: str, shown: int = 0, sketch=None, pick=None) -> dbc.Card:
    return dbc.Card([
        dbc.CardHeader("Your materials"),
        dbc.CardBody([
            dcc.Upload(
                id=upload_id, multiple=True, max_size=UPLOAD_MAX_BYTES,
                children=html.Div(["Drop band-structure files here or ", html.A("choose files", href="#"),
                                   html.Div("to place them on this map", className="text-muted")], title=SUPPORTED,
                                  # assets/place.js names a file over the limit (the component drops it silently)
                                  **{"data-max-bytes": str(UPLOAD_MAX_BYTES), "data-status": status_id}),
                className="explore-upload small text-center p-2 mb-1",
                style={"border": "1px dashed #999", "borderRadius": "4px", "cursor": "pointer"}),
            dbc.InputGroup([dbc.InputGroupText("E_F (eV)"),
                            dbc.Input(id=fermi_id, type="number", placeholder="if the files carry none",
                                      debounce=True)], size="sm", className="mb-1"),
            pick,
            dcc.Loading(html.Div(id=status_id, className="small"), type="dot", delay_show=200),
            html.Div(listing, id=list_id),
            dcc.Store(id=shown_id, data=shown),
            sketch,
        ]),
    ], className="mb-2")


def placed_list(records: list[dict], window, remove_type: str, *, shown: int = 3) -> list:
    """One entry per placed material: its plot, predicted cluster with its confidence, its
    nearest materials (distance placed among all pairs of the model's materials) and a
    remove button (pattern-matching id ``{"type": remove_type, "name": name}``)."""
    if not records:
        return []
    out = [html.Div(f"Placed on this map ({len(records)}): stars on the map, named", className="small text-muted")]
    for r in records:
        cluster = "noise" if r["cluster"] < 0 else f"cluster {r['cluster']}"
        k = len(r["neighbours"])
        near = [html.Li([html.Span(n["material"], className="fw-semibold"),
                         f" · closest {n['percentile']:.2g}% of pairs · "
                         + ("noise" if n["cluster"] < 0 else f"cluster {n['cluster']}")])
                for n in r["neighbours"][:shown]]
        src = material_image_url(window, r["name"])
        out.append(html.Div([
            html.Div([html.Span("★ ", style={"color": "#d4a017"}), html.B(r["name"]),
                      html.Button("remove", className="btn btn-sm btn-outline-secondary py-0 px-1 ms-2",
                                  id={"type": remove_type, "name": r["name"]}, title=f"remove {r['name']}")]),
            html.Div(f"{cluster}: {r['confidence']:.0%} of its {k} nearest materials",
                     className="small", title=r.get("cluster_rule", "")),
            html.Img(src=src, alt=r["name"], style={"width": "100%"}) if src else None,
            html.Div("nearest in fingerprint space:", className="small text-muted"),
            html.Ol(near, className="small mb-1 ps-3"),
            html.Div(f"from {r['source']}; map position {r.get('position_rule', 'approximate')}",
                     className="small text-muted"),
            *[html.Div(note, className="small text-warning") for note in r.get("notes", [])],
        ], className="placed-entry border-top pt-1 mt-1", **{"data-placed": r["name"]}))
    return out


def cannot_place_note(model_id: str, alternative: str | None, alternative_url: str | None, how: str,
                      alternative_is: str = "The pretrained encoder's map of the same window") -> dbc.Alert:
    """Said before any upload when the model on screen cannot encode new materials."""
    text = [f"Placing needs this model's encoder, and its weights are not here ({how}). "]
    if alternative_url:
        text += [f"{alternative_is} can take your materials now: ",
                 html.A("open it", href=alternative_url, id="explore-place-alternative"), "."]
    return dbc.Alert(text, color="info", className="py-1 px-2 mb-1 small explore-place-note")


def uploaded_files(contents, filenames) -> list[tuple[str, bytes]]:
    """A ``dcc.Upload``'s files (its base64 data URLs and names) as (name, content) pairs."""
    return [(str(name), base64.b64decode(content.split(",", 1)[1] if "," in content else content))
            for name, content in zip(filenames or [], contents or [])]


def place_problems(problems: list[dict]) -> list:
    """One line per file that could not be placed: which file, what is wrong."""
    return [dbc.Alert([html.B(p["source"]), ": ", p["message"]], color="warning", className="py-1 px-2 mb-1 small")
            for p in problems]
