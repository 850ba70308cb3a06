"""The cluster map: one trace of all materials plus three small overlay traces.

Trace order is fixed so callbacks can patch by index: halos (double clustering), the points,
outlines of reclustered noise, rings of element-filter matches, the lines from a pinned
material to its nearest neighbours, and the materials placed on the map (stars, named).

The points trace always holds every material, in the model's order, so point ``i`` is material
``i``: a recluster or a filter changes only per-point arrays of it (:func:`point_style`: colour
codes, cluster labels, opacity for hidden points), sent as typed arrays (plotly.js's
``{"dtype", "bdata"}`` form) and applied in place; a model switch changes ``x``/``y`` too. What a
hover shows (image, name, cluster) is found in the browser (``assets/explore.js``), so Plotly's
own hover is off.
"""

from __future__ import annotations

import base64

import numpy as np
from plotly.colors import qualitative

HALO, POINTS, OUTLINE, HIGHLIGHT, NEIGHBOURS, PLACED = range(6)
#: up to this many materials the map is SVG (no WebGL context to create: the first view draws
#: much sooner where WebGL is rendered in software, and a colour change is a restyle); above it,
#: WebGL, which stays fluid with 10^5 points
SVG_MAX_POINTS = 3000
NOISE_COLOUR = "#000000"
PALETTE = tuple(qualitative.Plotly + qualitative.D3 + qualitative.Set3)
HALO_PALETTE = tuple(qualitative.Pastel1 + qualitative.Pastel2)
#: points outside a selection (the browser gives them this colour code, see assets/explore.js)
UNSELECTED_COLOUR = "#d3d3d3"
#: stability 0, 0.1, …, 1 (colour codes STABILITY_CODE + round(10 s)): red through yellow to blue
STABILITY_RAMP = ("#a50026", "#d73027", "#f46d43", "#fdae61", "#fee090", "#ffffbf", "#e0f3f8", "#abd9e9",
                  "#74add1", "#4575b4", "#313695")
#: every colour a point can have, by colour code: noise, the clusters' palette, unselected, stability
SCALE_COLOURS = (NOISE_COLOUR, *PALETTE, UNSELECTED_COLOUR, *STABILITY_RAMP)
UNSELECTED_CODE = 1 + len(PALETTE)
STABILITY_CODE = UNSELECTED_CODE + 1
MARKER_SIZE = 8
#: a hover finds the nearest material within this many pixels of the cursor
HOVER_RADIUS_PX = 20
#: band images the page asks for ahead of the hover: the nearest this many points within
#: PREFETCH_RADIUS_PX of the cursor (assets/explore.js; bench/load.py replays it)
PREFETCH_AROUND = 12
PREFETCH_RADIUS_PX = 60
#: in the local app (one user), a map of at most this many materials has all its band images
#: loaded into the page once it is idle after drawing (kept referenced, so in the browser's
#: memory cache: a hover shows its image without a request); larger maps, and every map of a
#: shared server (twenty users' prefetches queue ahead of their hovers: bench/load.py), prefetch
#: around the cursor only
PREFETCH_ALL_MAX = 1000
#: of the fetched images, those of the nearest this many points to the cursor are decoded ahead
#: (a hover's image is then painted on the frame after the move without a decode), the last
#: DECODE_KEEP of them kept decoded
DECODE_AROUND, DECODE_KEEP = 6, 48


#: the map's Plotly config: wheel zoom; the mode bar keeps zoom, pan and reset only (no "Share
#: chart" upload to a cloud the app does not use): selection
#: is the page's Map tool (Plotly's own box and lasso do not fire with its hover off), and a
#: figure for a paper is the page's download (axis titles, legend, caption), not the bare map
MAP_CONFIG = {
    "scrollZoom": True, "displaylogo": False,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "toImage", "toggleSpikelines", "hoverClosestCartesian",
                               "hoverCompareCartesian", "sendDataToCloud", "sendChartToCloud", "editInChartStudio"],
}


def trace_type(n_points: int) -> str:
    return "scatter" if n_points <= SVG_MAX_POINTS else "scattergl"


def typed_array(values, dtype: str) -> dict:
    """A NumPy array as plotly.js's typed-array spec, ``dtype`` one of its codes (``i1``, ``i2``,
    ``i4``, ``u1``, ``f4``, ``f8``): base64 of the little-endian bytes, a quarter to a tenth of
    the bytes of a JSON list of numbers."""
    arr = np.ascontiguousarray(values, dtype=np.dtype("<" + dtype))
    return {"dtype": dtype, "bdata": base64.b64encode(arr.tobytes()).decode("ascii")}


def colour_codes(labels: np.ndarray) -> np.ndarray:
    """Marker colour values for the fixed colour scale: 0 for noise, ``1 + k % len(PALETTE)``
    for cluster ``k`` (uint8: small non-negative numbers, whose base64 has almost no ``/``, a
    character Dash's JSON writes as six)."""
    labels = np.asarray(labels, dtype=int)
    return np.where(labels < 0, 0, 1 + np.mod(labels, len(PALETTE))).astype(np.uint8)


def category_codes(values, categories) -> np.ndarray:
    """Colour codes of categorical values keyed to the value itself: ``categories`` is the sorted
    list of every value over the whole dataset (not only those on screen), value
    ``categories[j]`` gets code ``1 + j % len(PALETTE)`` in every model and view; a value not
    in it ('' for unlabelled) gets 0, the noise colour."""
    at = {c: j for j, c in enumerate(categories)}
    idx = np.array([at.get(str(v), -1) for v in values], dtype=int)
    return colour_codes(idx)


def stability_codes(stability: np.ndarray) -> np.ndarray:
    """Colour codes of stabilities in [0, 1] (NaN, a material the consensus lacks: noise)."""
    s = np.asarray(stability, dtype=float)
    codes = STABILITY_CODE + np.rint(np.clip(np.nan_to_num(s, nan=0.0), 0, 1) * 10)
    return np.where(np.isnan(s), 0, codes).astype(np.uint8)


def _colour_scale() -> dict:
    """One stepped colour scale for every view: code j is SCALE_COLOURS[j] (0 noise, black;
    1..len(PALETTE) the clusters; then grey for unselected points and the stability ramp). It
    never changes, so a recluster sends only the codes."""
    span = len(SCALE_COLOURS) - 1
    return {"colorscale": [[j / span, c] for j, c in enumerate(SCALE_COLOURS)], "cmin": 0, "cmax": span,
            "showscale": False}


def hover_labels(labels: np.ndarray) -> dict:
    """Cluster labels for the hover, shifted by one (0 = noise) for the same reason as the
    colour codes: ``customdata`` of the points trace."""
    shifted = np.asarray(labels, dtype=np.int64) + 1
    return typed_array(shifted, "u1" if shifted.max(initial=0) < 256 else "u4")


def visible_mask(noise: np.ndarray, hide_noise: bool, hide_nonnoise: bool) -> np.ndarray:
    keep = np.ones(len(noise), dtype=bool)
    if hide_noise:
        keep &= ~noise
    if hide_nonnoise:
        keep &= noise
    return keep


def point_style(result, keep: np.ndarray, codes: np.ndarray | None = None, with_labels: bool = True) -> dict:
    """Per-point properties of the points trace, by property path: colour codes (of the
    clusters, or ``codes`` when given: a known label's classes, consensus clusters, stability),
    cluster labels for the hover (``customdata``, label + 1; only ``with_labels``: on a large map
    the hover asks for the one material's) and opacity (0 = hidden). ``keep`` (n,) bool: the
    points shown."""
    codes = colour_codes(result.labels) if codes is None else codes
    return {
        "marker.color": typed_array(codes, "u1"),
        **({"customdata": hover_labels(result.labels)} if with_labels else {}),
        # a scalar when all are shown: the common case sends one number instead of n
        "marker.opacity": 1 if keep.all() else typed_array(keep, "u1"),
    }


def overlay_updates(xy, result, highlight, keep) -> dict:
    """Data of the three overlay traces, as dicts of trace properties by trace index."""
    halo = (result.halo >= 0) & keep
    return {
        HALO: {**_xy(xy, halo), "marker.color": [HALO_PALETTE[k % len(HALO_PALETTE)] for k in result.halo[halo]]},
        OUTLINE: _xy(xy, result.reclustered & keep),
        HIGHLIGHT: _xy(xy, highlight & keep),
    }


def neighbour_lines(xy: np.ndarray, centre: int | None, neighbours=()) -> dict:
    """Data of the neighbours trace: a line from the pinned material ``centre`` to each of its
    ``neighbours`` (indices), each ending in a ring; empty when ``centre`` is None."""
    if centre is None or not len(neighbours):
        return {"x": [], "y": []}
    x, y = [], []
    for j in neighbours:
        x += [float(xy[centre, 0]), float(xy[j, 0]), None]
        y += [float(xy[centre, 1]), float(xy[j, 1]), None]
    return {"x": x, "y": y}


def placed_points(records: list[dict]) -> dict:
    """Data of the placed trace: each placed material's map position and name
    (:mod:`backend.discover.additions`)."""
    return {"x": [r["x"] for r in records], "y": [r["y"] for r in records], "text": [r["name"] for r in records]}


def _xy(xy: np.ndarray, mask: np.ndarray | None = None) -> dict:
    sel = xy if mask is None else xy[mask]
    return {"x": typed_array(sel[:, 0], "f4"), "y": typed_array(sel[:, 1], "f4")}


def positions(xy: np.ndarray) -> dict:
    """``x``/``y`` of the points trace (what a model switch changes), as float32 typed arrays."""
    return _xy(xy)


def scatter_figure(xy: np.ndarray, updates: dict, meta: dict | None = None, uirevision=None) -> dict:
    """The whole figure, as a plain dict (building ``go.Figure`` objects costs tens of ms of
    validation per redraw). ``xy`` (n, 2) UMAP coordinates (the material names travel apart,
    once per set of materials: the page's names store); ``updates`` ``{trace index: {property path: value}}``: the overlays
    (:func:`overlay_updates`) and, for the points, :func:`point_style` and :func:`positions`;
    ``meta`` what the hover shows besides the cluster (``{"label": column, "point_labels": [...]}``
    when the colours are a known label's)."""
    kind = trace_type(len(xy))
    traces = [
        {"type": kind, "mode": "markers", "hoverinfo": "skip", "showlegend": False, "name": "halos",
         "marker": {"size": 24, "opacity": 0.35, "line": {"width": 0}}},
        {"type": kind, "mode": "markers", "name": "materials", "showlegend": False, "hoverinfo": "none",
         "meta": meta or {},
         "marker": {"size": MARKER_SIZE, "line": {"width": 0}, **_colour_scale()}},
        {"type": kind, "mode": "markers", "hoverinfo": "skip", "showlegend": False, "name": "reclustered",
         "marker": {"size": 12, "color": "rgba(0,0,0,0)", "line": {"color": "black", "width": 1.5}}},
        {"type": kind, "mode": "markers", "hoverinfo": "skip", "showlegend": False, "name": "matches",
         "marker": {"size": 14, "color": "rgba(0,0,0,0)", "line": {"color": "gold", "width": 2.5}}},
        {"type": "scatter", "mode": "lines+markers", "hoverinfo": "skip", "showlegend": False, "name": "neighbours",
         "x": [], "y": [], "line": {"color": "#e377c2", "width": 1.5},
         "marker": {"size": 13, "color": "rgba(0,0,0,0)", "line": {"color": "#e377c2", "width": 2}}},
        {"type": "scatter", "mode": "markers+text", "hoverinfo": "skip", "showlegend": False, "name": "placed",
         "x": [], "y": [], "text": [], "textposition": "top center", "textfont": {"size": 11},
         "marker": {"symbol": "star", "size": 17, "color": "#ffd700", "line": {"color": "black", "width": 1.5}}},
    ]
    for idx, props in updates.items():
        for path, value in props.items():
            *parents, leaf = path.split(".")
            node = traces[idx]
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value
    # Plotly's hover is off (the browser finds the hovered material itself); hovermode False
    # also spares Plotly's hover work on every mouse move
    layout = {"margin": {"l": 0, "r": 0, "t": 10, "b": 0}, "xaxis": {"visible": False},
              "yaxis": {"visible": False}, "plot_bgcolor": "white", "hovermode": False, "dragmode": "pan",
              "hoverdistance": HOVER_RADIUS_PX, "uirevision": uirevision}
    return {"data": traces, "layout": layout}
