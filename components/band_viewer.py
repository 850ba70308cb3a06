"""Interactive band structure (Plotly): energy on hover, zoom, k labels, E_F line, the model's
energy window shaded; two materials overlaid or side by side."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

COLOURS = ("#1f2d3d", "#d62728")
SPIN_DASH = ("solid", "dash")


def _band_traces(bd, colour: str, show_legend: bool, reach: float = 6.0) -> list[go.Scatter]:
    """One trace per spin: the bands within ±reach eV joined with gaps (None), E - E_F on hover."""
    rel = bd.relative()
    traces = []
    for s in range(bd.nspin):
        xs, ys = [], []
        for band in rel[s]:
            if band.max() < -reach or band.min() > reach:
                continue
            xs += bd.kdist.tolist() + [None]
            ys += np.round(band, 4).tolist() + [None]
        name = bd.material + (f" (spin {'up' if s == 0 else 'down'})" if bd.nspin == 2 else "")
        traces.append(go.Scatter(x=xs, y=ys, mode="lines", name=name, showlegend=show_legend,
                                 line=dict(color=colour, width=1.3, dash=SPIN_DASH[s]),
                                 hovertemplate=f"{bd.material}<br>E - E_F = %{{y:.3f}} eV<extra></extra>"))
    return traces


def _decorate(fig, bd, window, row=None, col=None):
    kw = dict(row=row, col=col) if row else {}
    for t in bd.ticks:
        fig.add_vline(x=float(t), line=dict(color="grey", width=0.8), opacity=0.6, **kw)
    fig.add_hline(y=0, line=dict(color="red", dash="dash", width=1), **kw)
    if window:
        fig.add_hrect(y0=-window, y1=window, fillcolor="gold", opacity=0.12, line_width=0, layer="below", **kw)
    fig.update_xaxes(tickvals=[float(t) for t in bd.ticks], ticktext=bd.tick_labels, showgrid=False,
                     range=[float(bd.kdist[0]), float(bd.kdist[-1])], **kw)


def band_figure(bands: list, window: float | None, mode: str = "overlay") -> go.Figure:
    """Figure of one or two :class:`backend.data.bands.BandData` (``mode`` 'overlay' or 'side')."""
    if not bands:
        return go.Figure()
    span = (window or 1) * 2
    if mode == "side" and len(bands) > 1:
        fig = make_subplots(rows=1, cols=len(bands), shared_yaxes=True, subplot_titles=[b.material for b in bands],
                            horizontal_spacing=0.04)
        for i, bd in enumerate(bands, 1):
            for tr in _band_traces(bd, COLOURS[0], False, 3 * span):
                fig.add_trace(tr, row=1, col=i)
            _decorate(fig, bd, window, 1, i)
    else:
        fig = go.Figure()
        for i, bd in enumerate(bands):
            for tr in _band_traces(bd, COLOURS[i % 2], len(bands) > 1 or bd.nspin == 2, 3 * span):
                fig.add_trace(tr)
        _decorate(fig, bands[0], window)
        if len(bands) == 1:
            fig.update_layout(title=dict(text=bands[0].material, x=0.5, font=dict(size=13)))
    fig.update_yaxes(title_text="E - E_F (eV)", range=[-span, span], zeroline=False)
    fig.update_xaxes(title_text="wave vector along the k path", title_font_size=11)
    fig.update_layout(margin=dict(l=50, r=10, t=30, b=30), plot_bgcolor="white", hovermode="closest",
                      legend=dict(orientation="h", y=-0.12), uirevision="bands")
    return fig
