"""The explorer's view and URL format (one definition), and the map's typed-array encoding,
on the demo model's real clustering."""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest

from backend.cluster.models import cluster_model
from backend.cluster.params import ClusterParams, default_model
from backend.data.catalog import Catalog
from backend.discover.explorer_view import SELECTION_URL_MAX, URL_FORMAT, ExplorerView, explorer_url
from backend.evaluate.grid import GridSpec
from components.scatter import (
    NOISE_COLOUR,
    PALETTE,
    POINTS,
    SCALE_COLOURS,
    colour_codes,
    overlay_updates,
    point_style,
    positions,
    scatter_figure,
    visible_mask,
)
from tests.conftest import PROJECT, demo_model


def query_of(url: str) -> dict:
    return dict(parse_qsl(urlsplit(url).query))


def test_every_field_round_trips_through_the_url():
    view = ExplorerView(model="m1", algo="kmeans", min_cluster_size=7, min_samples=4, selection="eom",
                        metric="euclidean", p=0.7, n_clusters=9, double_cluster=True, dc_eps=1.5, dc_min_samples=3,
                        recluster_noise=True, rc_min_cluster_size=4, rc_min_samples=2, hide_noise=True,
                        hide_nonnoise=True, elements=("Fe", "Co"), element_mode="exclusive", colour_by="family",
                        consensus_models="window=1,arch=50", selected=("Ac2HgGe", "Ti2FeIr"))
    assert {f for f in URL_FORMAT if getattr(view, f) != getattr(ExplorerView(), f)} == set(URL_FORMAT)
    parsed, notes = ExplorerView.from_query(query_of(explorer_url(**vars(view))))
    assert parsed == view and notes == []
    assert ExplorerView.from_query(view.query()) == (view, [])


def test_a_large_selection_stays_out_of_the_url():
    small = tuple(f"m{i}" for i in range(SELECTION_URL_MAX))
    assert ExplorerView(selected=small).query()["pts"] == ",".join(small)
    assert "pts" not in ExplorerView(selected=small + ("one more",)).query()


def test_bad_values_keep_the_default_with_a_note_naming_key_and_value():
    view, notes = ExplorerView.from_query({"mcs": "abc", "p": "x", "ms": "4", "unknown": "1"})
    assert view.min_cluster_size == ExplorerView().min_cluster_size and view.p == ExplorerView().p
    assert view.min_samples == 4
    assert notes == ["URL parameter mcs='abc' is not valid; using the default",
                     "URL parameter p='x' is not valid; using the default"]
    with pytest.raises(TypeError, match="unknown explorer view fields"):
        explorer_url(mcs=3)


def test_evaluate_links_open_the_cell_they_name():
    spec = GridSpec(min_samples=(2, 3), min_cluster_size=(3, 4)).validate()
    view, notes = ExplorerView.from_query(query_of(spec.explorer_query("resnet18_x", 3, 4)))
    assert notes == []
    assert view.model == "resnet18_x"
    assert view.params() == ClusterParams(min_cluster_size=4, min_samples=3, selection=spec.selection,
                                          metric=spec.metric, p=spec.p)
    assert explorer_url(model="a b") == "/?model=a+b"


def decode(spec) -> np.ndarray:
    return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype("<" + spec["dtype"]))


@pytest.fixture(scope="module")
def demo():
    cat = Catalog(PROJECT)
    model = default_model(cat)
    data = cat.load(model)
    return data, cluster_model(cat, model, ClusterParams(recluster_noise=True, double_cluster=True))


def test_point_style_encodes_clusters_labels_and_hidden_points(demo):
    data, result = demo
    keep = visible_mask(result.noise, hide_noise=True, hide_nonnoise=False)
    style = point_style(result, keep)
    codes = decode(style["marker.color"])
    colourscale = scatter_figure(data.xy, {POINTS: {**style, **positions(data.xy)}})[
        "data"][POINTS]["marker"]["colorscale"]
    stops = [c for _, c in colourscale]
    assert stops == list(SCALE_COLOURS)
    for label, code in zip(result.labels, codes):
        assert stops[code] == (NOISE_COLOUR if label < 0 else PALETTE[label % len(PALETTE)])
    np.testing.assert_array_equal(decode(style["customdata"]).astype(int) - 1, result.labels)
    np.testing.assert_array_equal(decode(style["marker.opacity"]), ~result.noise)
    assert point_style(result, np.ones(len(keep), dtype=bool))["marker.opacity"] == 1
    np.testing.assert_array_equal(colour_codes(np.array([-1, 0, len(PALETTE)])), [0, 1, 1])


def test_figure_holds_every_material_in_order_and_overlays_of_shown_points(demo):
    data, result = demo
    keep = visible_mask(result.noise, hide_noise=False, hide_nonnoise=True)
    highlight = np.zeros(len(data.names), dtype=bool)
    highlight[:5] = True
    overlays = overlay_updates(data.xy, result, highlight, keep)
    fig = scatter_figure(data.xy, {**overlays, POINTS: {**point_style(result, keep), **positions(data.xy)}})
    points = fig["data"][POINTS]
    assert "text" not in points  # the names travel apart, once per set of materials
    np.testing.assert_array_equal(decode(points["x"]), data.xy[:, 0].astype(np.float32))
    np.testing.assert_array_equal(decode(points["y"]), data.xy[:, 1].astype(np.float32))
    assert (result.reclustered & keep).any()
    outline = fig["data"][2]
    np.testing.assert_array_equal(decode(outline["x"]), data.xy[result.reclustered & keep, 0].astype(np.float32))
    assert len(decode(fig["data"][3]["x"])) == int((highlight & keep).sum())
    assert fig["layout"]["hovermode"] is False and fig["layout"]["hoverdistance"] > 0


def test_a_model_switch_sends_only_the_fields_that_change():
    """Switching between two models of one architecture re-sends only the dropdown values that
    differ (each component update costs the page a render pass); from an unknown model, all."""
    from dash import no_update

    from components.explore_controls import changed_fields, model_fields

    cat = Catalog(PROJECT)
    one, two = demo_model(1), demo_model(2)
    full = model_fields(cat, two)
    sent = changed_fields(cat, two, shown=one)
    assert sent["value"]["window"] == full["value"]["window"] == "2"
    assert {n for n, v in sent["value"].items() if v is not no_update} == {"window"}
    assert all(v is no_update for prop in ("options", "disabled") for v in sent[prop].values())
    assert changed_fields(cat, two, shown="no_such_model") == full
