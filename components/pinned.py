"""The explorer's pinned materials: their interactive band structures where band data exists
(``components.band_viewer``), else their band-structure images; each with a close button
(``data-unpin``: the browser unpins it, ``assets/explore.js``)."""

from __future__ import annotations

from dash import dcc, html

from components.material_image import material_image_url

#: what the comparison modes need, said where they cannot work (a root with band plots only)
NEEDS_BAND_DATA = ("Overlay and side by side need band data (bands/<material>.npz, see docs/data.md); "
                   "this data root has band-structure plots only, so pinned materials are shown as their plots.")


def has_band_data(catalog) -> bool:
    """Whether the data root has a band-data folder (what overlay and side by side draw from)."""
    return catalog.band_data_dir() is not None


def unpin_button(name: str) -> html.Button:
    return html.Button("×", className="btn btn-sm btn-outline-secondary py-0 px-1 ms-1 explore-unpin",
                       title=f"unpin {name}", **{"data-unpin": name, "aria-label": f"unpin {name}"})


def band_config(pinned: list[str]) -> dict:
    """The band viewer's Plotly config: its camera button saves an SVG named after the
    materials; no selection tools (nothing to select in a band structure)."""
    return {"displaylogo": False,
            "modeBarButtonsToRemove": ["select2d", "lasso2d", "toggleSpikelines", "sendChartToCloud"],
            "toImageButtonOptions": {"format": "svg", "filename": "bands_" + "_".join(pinned)}}


def pinned_panel(catalog, pinned: list[str], window, mode: str = "overlay") -> list:
    """Pinned materials: interactive band viewers where band data exists, else their images."""
    children = [html.Div(["Pinned: ", *[html.Span([name, unpin_button(name)], className="me-2 pinned-tag")
                                         for name in pinned]], className="small text-muted")]
    band_data = _band_data(catalog, pinned)
    if band_data:
        # plotly.graph_objects loads on the first pin, not with the app
        from components.band_viewer import band_figure

        fig = band_figure(band_data, window, mode=mode)
        children.append(dcc.Graph(id="explore-band-viewer", figure=fig, style={"height": "420px"},
                                  config=band_config(pinned)))
    else:
        if len(pinned) > 1:
            children.append(html.Div(NEEDS_BAND_DATA if not has_band_data(catalog) else
                                     "no band data for these materials: shown as their plots",
                                     className="small text-muted explore-needs-bands"))
        for name in pinned:
            src = material_image_url(window, name) or ""
            children += [html.Div(name, className="fw-bold small pinned-name"),
                         html.Img(src=src, alt=name, style={"width": "100%"})]
    return children


def _band_data(catalog, names: list[str]):
    """The band data of those of ``names`` that have a file in the root's band-data folder."""
    band_dir = catalog.band_data_dir()
    if band_dir is None:
        return []
    from backend.data.bands import load_band_data

    out = []
    for name in names:
        path = catalog.resolve_file(str((band_dir / f"{name}.npz").relative_to(catalog.root)))
        if path is not None:
            out.append(load_band_data(path))
    return out
