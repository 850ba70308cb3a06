"""Layout pieces of the explorer's discovery tools: the selection gallery's frame, nearest
neighbours, cluster cards, the consensus and representative-subset panels.

The gallery's thumbnails are drawn by the browser (``assets/explore.js``) from the points on the
map; everything else here is built from backend results (``backend.discover.neighbours``,
``backend.discover.cards``, ``backend.discover.consensus``, ``backend.discover.subset``).
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from backend.cluster.params import Bound
from components.explore_controls import labelled, number_input
from components.material_image import material_image_url

#: thumbnails per gallery page
GALLERY_PAGE = 48


def map_tools(tool_id: str) -> html.Div:
    return html.Div([
        html.Span("Map tool:", className="me-2"),
        dbc.RadioItems(id=tool_id, value="pan", inline=True, className="d-inline-block",
                       options=[{"label": "pan / zoom", "value": "pan"}, {"label": "box select", "value": "box"},
                                {"label": "lasso select", "value": "lasso"}]),
        html.Span("· click a legend entry to select it · Esc clears", className="text-muted"),
    ], className="small mb-1")


def gallery_box(box_id: str, info_id: str, grid_id: str, export_id: str) -> html.Div:
    """The selection's gallery: a header (count, pages, clear: drawn by the browser), an export
    button, and the grid of thumbnails (drawn by the browser). Hidden until something is selected."""
    return html.Div([
        html.Div([
            html.Span(id=info_id, className="small me-2"),
            dbc.Button("Export selection (CSV)", id=export_id, size="sm", color="secondary", outline=True,
                       className="py-0"),
        ], className="d-flex align-items-center flex-wrap mb-1"),
        html.Div(id=grid_id, className="explore-gallery"),
    ], id=box_id, className="border rounded p-2 mt-2", style={"display": "none"})


def neighbour_controls(k_id: str) -> html.Div:
    return html.Div([html.Span("Nearest neighbours of the last pinned material: k =", className="small me-1"),
                     number_input(k_id, 10, Bound(1, True), 70)], className="d-flex align-items-center mt-2")


def metric_text(metric: str, p) -> str:
    """The clustering's distance as a caption names it."""
    return f"Minkowski p = {p:g}" if metric == "minkowski" else "Euclidean"


def neighbour_list(material: str, table, window, metric_text: str) -> list:
    """The neighbours' thumbnails, names and distances (click one to pin it). With ``pair_rank``,
    ``pairs`` and ``percentile`` columns (:func:`backend.discover.neighbours.distance_ranks`),
    each distance also says where it lies among all pairwise distances of the model."""
    ranked = "percentile" in table.columns
    head = f"{len(table)} nearest of {material} ({metric_text} distance between fingerprints"
    if ranked and len(table):
        head += (f"; it has no unit, so each is also placed among all {int(table['pairs'].iloc[0]):,} pairs of "
                 "materials of this model: “closest 2%” means 98% of all pairs are farther apart")
    items = [html.Div(head + "):", className="small text-muted mb-1", id="explore-neighbours-head")]
    for row in table.itertuples():
        src = material_image_url(window, row.material)
        where = ([html.Br(), html.Span(f"closest {row.percentile:.2g}% of pairs (rank {int(row.pair_rank):,})",
                                       className="explore-pair-rank")] if ranked else [])
        items.append(html.Div([
            html.Img(src=src, alt=row.material) if src else None,
            html.Div([html.B(f"{row.rank}. {row.material}"), html.Br(), f"distance {row.distance:.4g}", *where]),
        ], className="explore-neighbour", title=f"click to pin {row.material}", **{"data-pin": row.material}))
    return items


def consensus_panel(models_id: str, value: str | None, placeholder: str) -> dbc.Card:
    return dbc.Card([
        dbc.CardHeader("Consensus across models"),
        dbc.CardBody([
            labelled("Models (filter as on the evaluate page)", dcc.Input(
                id=models_id, value=value, placeholder=placeholder, debounce=True, type="text",
                className="form-control form-control-sm", spellCheck=False)),
            html.Div("Colour by “consensus” or “stability” (below) to see it; the cell is the clustering's "
                     "(HDBSCAN parameters above).", className="small text-muted"),
        ]),
    ], className="mb-2")


def subset_panel(size_id: str, button_id: str, export_id: str, report_id: str) -> dbc.Card:
    return dbc.Card([
        dbc.CardHeader("Representative subset"),
        dbc.CardBody([
            html.Div([labelled("Size N", number_input(size_id, 50, Bound(1, True), 80)),
                      dbc.Button("Choose", id=button_id, size="sm", color="primary", className="ms-2 mt-3"),
                      dbc.Button("Export (CSV)", id=export_id, size="sm", color="secondary", outline=True,
                                 className="ms-2 mt-3")], className="d-flex align-items-start"),
            html.Div(id=report_id, className="small"),
        ]),
    ], className="mb-2")


def subset_report(sub, n_materials: int) -> list:
    """Coverage and the cluster balance before and after (the largest groups)."""
    b = sub.balance
    rows = [html.Tr([html.Td("noise" if r.cluster < 0 else f"cluster {r.cluster}"), html.Td(f"{r.size}"),
                     html.Td(f"{r.share:.1%}"), html.Td(f"{r.chosen}"), html.Td(f"{r.chosen_share:.1%}")])
            for r in b.head(8).itertuples()]
    return [
        html.Div([html.B(f"{len(sub.indices)} of {n_materials}"), f" chosen from {len(b)} groups "
                  f"({int((b.chosen > 0).sum())} covered); coverage ",
                  html.B(f"{sub.coverage:.1%}", id="explore-subset-coverage"),
                  " of the materials within the median nearest-neighbour distance of a chosen one. "
                  "They are selected on the map."], className="mb-1"),
        *[dbc.Alert(w, color="warning", className="py-1 mb-1") for w in sub.warnings],
        html.Table([html.Thead(html.Tr([html.Th(h) for h in ("group", "size", "share", "chosen", "share")])),
                    html.Tbody(rows)], className="table table-sm mb-0"),
        html.Div(f"(largest 8 of {len(b)} groups)" if len(b) > 8 else "", className="text-muted"),
    ]


def cluster_cards_view(cards, window, limit: int = 60) -> list:
    """One card per cluster, largest first: size, medoid's band structure, over-represented
    elements, label mix; a click selects the cluster (``data-cluster``)."""
    out = []
    for c in cards[:limit]:
        src = material_image_url(window, c.medoid)
        elements = ", ".join(f"{e['element']} {e['count']}/{c.size} (set {e['overall_share']:.0%})" for e in c.elements)
        mix = ", ".join(f"{k} {v}" for k, v in (c.labels or {}).items())
        out.append(html.Div([
            html.B(f"cluster {c.cluster}"), f" · {c.size} materials",
            html.Img(src=src, alt=c.medoid) if src else None,
            html.Div(["medoid ", html.B(c.medoid)]),
            html.Div(f"over-represented: {elements}" if elements else "no element over-represented",
                     className="text-muted"),
            html.Div(f"labels: {mix}") if mix else None,
        ], className="explore-card", title="click to select this cluster", **{"data-cluster": str(c.cluster)}))
    if len(cards) > limit:
        out.append(html.Div(f"+ {len(cards) - limit} smaller clusters", className="text-muted small"))
    return [html.Div(out, className="explore-cards")] if cards else [html.Div("no clusters", className="small")]
