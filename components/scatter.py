"""The cluster scatter: one WebGL trace of all materials plus three small overlay traces.

Trace order is fixed so callbacks can patch by index: halos (double clustering), the points,
outlines of reclustered noise, rings of element-filter matches.
"""

from __future__ import annotations

import numpy as np
from plotly.colors import qualitative

HALO, POINTS, OUTLINE, HIGHLIGHT = range(4)
TRACE_TYPE = "scattergl"  # WebGL: stays fluid with 10^5 points
NOISE_COLOUR = "#000000"
PALETTE = tuple(qualitative.Plotly + qualitative.D3 + qualitative.Set3)
HALO_PALETTE = tuple(qualitative.Pastel1 + qualitative.Pastel2)


def label_colours(labels: np.ndarray) -> list[str]:
    """Stable colours: cluster ``k`` always gets ``PALETTE[k % len]``; noise is black."""
    pal = np.asarray(PALETTE)
    labels = np.asarray(labels)
    out = pal[np.mod(labels, len(pal))]
    out[labels < 0] = NOISE_COLOUR
    return out.tolist()


def cluster_marker(labels: np.ndarray) -> dict:
    """Marker colours as cluster numbers with a stepped colour scale (noise -1 black): a
    recluster then sends one small integer per point instead of a colour string."""
    labels = np.asarray(labels, dtype=int)
    top = max(int(labels.max()), 0)
    pal = [NOISE_COLOUR] + [PALETTE[k % len(PALETTE)] for k in range(top + 1)]
    span = len(pal) - 1 or 1
    scale = [[j / span, c] for j, c in enumerate(pal)] if len(pal) > 1 else [[0, pal[0]], [1, pal[0]]]
    return {"color": labels.tolist(), "colorscale": scale, "cmin": -1, "cmax": -1 + span, "showscale": False}


def visible_mask(noise: np.ndarray, hide_noise: bool, hide_nonnoise: bool) -> np.ndarray:
    keep = np.ones(len(noise), dtype=bool)
    if hide_noise:
        keep &= ~noise
    if hide_nonnoise:
        keep &= noise
    return keep


def _overlay_xy(xy: np.ndarray, mask: np.ndarray) -> dict:
    return {"x": xy[mask, 0].tolist(), "y": xy[mask, 1].tolist()}


def overlay_updates(xy, result, highlight, keep) -> dict:
    """Data of the three overlay traces, as dicts of trace properties by trace index."""
    halo = (result.halo >= 0) & keep
    return {
        HALO: {**_overlay_xy(xy, halo),
               "marker.color": [HALO_PALETTE[k % len(HALO_PALETTE)] for k in result.halo[halo]]},
        OUTLINE: _overlay_xy(xy, result.reclustered & keep),
        HIGHLIGHT: _overlay_xy(xy, highlight & keep),
    }


def scatter_figure(xy: np.ndarray, names: np.ndarray, result, highlight: np.ndarray,
                   hide_noise: bool = False, hide_nonnoise: bool = False,
                   colours: list[str] | None = None, hover_labels=None, uirevision=None) -> dict:
    """The whole figure, as a plain dict (building ``go.Figure`` objects costs tens of ms of
    validation per redraw). ``xy`` (n, 2) UMAP coordinates; ``result`` a ClusterResult;
    ``highlight`` (n,) bool element-filter matches; ``colours``/``hover_labels`` override the
    cluster colouring (colour by a known label)."""
    keep = visible_mask(result.noise, hide_noise, hide_nonnoise)
    overlays = overlay_updates(xy, result, highlight, keep)
    traces = [None] * 4
    traces[HALO] = {"type": TRACE_TYPE, "mode": "markers", "hoverinfo": "skip", "showlegend": False, "name": "halos",
                    "x": overlays[HALO]["x"], "y": overlays[HALO]["y"],
                    "marker": {"size": 24, "opacity": 0.35, "line": {"width": 0},
                               "color": overlays[HALO]["marker.color"]}}
    traces[POINTS] = {"type": TRACE_TYPE, "mode": "markers", "name": "materials", "showlegend": False,
                      "x": xy[keep, 0].tolist(), "y": xy[keep, 1].tolist(), "text": names[keep].tolist()}
    if colours is None:
        traces[POINTS]["marker"] = {"size": 8, "line": {"width": 0}, **cluster_marker(result.labels[keep])}
        traces[POINTS]["hovertemplate"] = "<b>%{text}</b><br>cluster %{marker.color} (-1 = noise)<extra></extra>"
    else:
        traces[POINTS]["marker"] = {"size": 8, "line": {"width": 0}, "color": np.asarray(colours)[keep].tolist()}
        traces[POINTS]["customdata"] = np.asarray(hover_labels)[keep].tolist()
        traces[POINTS]["hovertemplate"] = "<b>%{text}</b><br>%{customdata}<extra></extra>"
    traces[OUTLINE] = {"type": TRACE_TYPE, "mode": "markers", "hoverinfo": "skip", "showlegend": False,
                       "name": "reclustered", **overlays[OUTLINE],
                       "marker": {"size": 12, "color": "rgba(0,0,0,0)", "line": {"color": "black", "width": 1.5}}}
    traces[HIGHLIGHT] = {"type": TRACE_TYPE, "mode": "markers", "hoverinfo": "skip", "showlegend": False,
                         "name": "matches", **overlays[HIGHLIGHT],
                         "marker": {"size": 14, "color": "rgba(0,0,0,0)", "line": {"color": "gold", "width": 2.5}}}
    layout = {"margin": {"l": 0, "r": 0, "t": 10, "b": 0}, "xaxis": {"visible": False},
              "yaxis": {"visible": False}, "plot_bgcolor": "white", "hovermode": "closest", "dragmode": "pan",
              "uirevision": uirevision, "hoverlabel": {"bgcolor": "white"}}
    return {"data": traces, "layout": layout}
