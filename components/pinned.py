"""The explorer's pinned materials: their interactive band structures where band data exists
(``components.band_viewer``), else their band-structure images."""

from __future__ import annotations

from dash import dcc, html

from components.material_image import material_image_url


def pinned_panel(catalog, pinned: list[str], window, mode: str = "overlay") -> list:
    """Pinned materials: interactive band viewers where band data exists, else their images."""
    children = [html.Div("Pinned", className="small text-muted")]
    band_data = _band_data(catalog, pinned)
    if band_data:
        # plotly.graph_objects loads on the first pin, not with the app
        from components.band_viewer import band_figure

        fig = band_figure(band_data, window, mode=mode)
        children.append(dcc.Graph(id="explore-band-viewer", figure=fig, style={"height": "420px"},
                                  config={"displaylogo": False}))
    else:
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
