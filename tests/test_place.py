"""Placing new materials on a map: neighbours equal a brute-force search, a demo material placed
from its band data finds its own point, the additions store, and the messages for what cannot
be placed."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from backend.cluster.distances import distance_matrix, distances_to
from backend.cluster.params import ClusterParams
from backend.data.bands import load_band_data
from backend.data.catalog import Catalog
from backend.discover.additions import keep_placements, placed_on, read_placed, remove_placed
from backend.discover.place import (
    encoder_available,
    place_fingerprints,
    place_materials,
    placed_at_cell,
    position_from_neighbours,
    vote_cluster,
)
from backend.errors import DataError, ParameterError
from tests.conftest import DEMO_BANDS, PROJECT, copy_models, demo_model


def band_item(name: str, root=PROJECT):
    bd = load_band_data(DEMO_BANDS / f"{name}.npz")
    return SimpleNamespace(name=name, source=f"{name}.npz", bands=bd, plot=None, window=None, notes=[])


@pytest.mark.parametrize("metric", ["minkowski", "euclidean"])
def test_distances_to_new_points_are_the_matrix_formula(metric):
    X = np.random.default_rng(1).normal(size=(40, 24))
    D = distance_matrix(X, metric, 0.2)
    assert np.array_equal(distances_to(X, X[5:9], metric=metric, p=0.2), D[5:9])
    with pytest.raises(ParameterError, match="23 numbers"):
        distances_to(X, X[:1, :23], metric=metric)


def test_the_vote_and_the_position_follow_the_nearest():
    assert vote_cluster([2, 3, 3, 2, -1]) == (2, 0.4)  # a tie goes to the nearer neighbour's
    assert vote_cluster([-1, -1, 4]) == (-1, pytest.approx(2 / 3))
    xy = np.array([[0.0, 0.0], [10.0, 10.0], [1.0, 0.0], [50.0, 50.0]])
    # only the neighbours of the predicted cluster place it: not in the sea between islands
    x, y = position_from_neighbours(xy, np.array([1, 2, 1, 2]), np.array([0.1, 0.2, 0.3, 0.4]), cluster=1)
    assert (x, y) == pytest.approx(((0 * 1 + 1 * 1 / 3) / (1 + 1 / 3), 0.0))
    assert position_from_neighbours(xy, np.array([1, 2, 1, 2]), np.array([0.0, 0.2, 0.3, 0.4]), cluster=2) == (0, 0)


def test_neighbours_of_a_new_fingerprint_equal_a_brute_force_search(tmp_path):
    mid = demo_model(3)
    root = copy_models(PROJECT, tmp_path, [mid])
    cat = Catalog(root)
    data = cat.load(mid)
    rng = np.random.default_rng(0)
    Z = data.X[[7, 300]] + rng.normal(scale=0.05, size=(2, data.X.shape[1]))
    params = ClusterParams(algo="kmeans", n_clusters=5)
    labels = __import__("backend.cluster.models", fromlist=["cluster_model"]).cluster_model(cat, mid, params).labels
    out = place_fingerprints(cat, mid, Z, params=params, k=8)
    for z, placed in zip(Z, out):
        brute = np.array([((np.abs(x - z) ** 0.2).sum()) ** 5 for x in data.X])
        order = np.argsort(brute, kind="stable")[:8]
        assert [n["index"] for n in placed["neighbours"]] == order.tolist()
        assert [n["distance"] for n in placed["neighbours"]] == pytest.approx(brute[order].tolist(), rel=1e-9)
        assert placed["cluster"] == vote_cluster(labels[order])[0]
        assert all(0 <= n["percentile"] <= 100 for n in placed["neighbours"])
    with pytest.raises(ParameterError, match="do not fit"):
        place_fingerprints(cat, mid, Z[:, :5])


@pytest.fixture(scope="module")
def pretrained_root(tmp_path_factory):
    """A data root with the demo's 3 eV images and the model the shipped encoder makes of them."""
    from backend.autoencoder.pretrained import encode_pretrained

    root = tmp_path_factory.mktemp("placeroot")
    shutil.copytree(PROJECT / "assets" / "images" / "train_3eV", root / "images" / "train_3eV")
    mid = encode_pretrained(root / "images" / "train_3eV", root, window=3)
    return root, mid


def test_a_demo_material_placed_from_its_band_data_finds_its_own_point(pretrained_root):
    root, mid = pretrained_root
    data = Catalog(root).load(mid)
    names = ["kagome_0002", "honeycomb_0001", "square_0003"]
    names = [n if n in set(data.names) else str(data.names[i * 50]) for i, n in enumerate(names)]
    placed, problems = place_materials(root, mid, [band_item(n) for n in names])
    assert problems == []
    for name, p in zip(names, placed):
        first = p.neighbours[0]
        # the same image; the fingerprints differ in the last bits only (a batch of 3, not 64)
        assert first["material"] == name and first["rank"] == 1 and first["percentile"] == 0
        i = list(data.names).index(name)
        assert p.xy == pytest.approx(tuple(data.xy[i]))  # closer than any two of the map: on its point


def test_a_model_without_weights_says_how_to_get_them(tmp_path):
    """The demo's models are trained from the shipped encoder (their records say so), but their
    weights are their own: without them nothing is encoded with the shipped weights instead."""
    mid = demo_model(3)
    root = copy_models(PROJECT, tmp_path, [mid])
    (root / "models").mkdir()
    shutil.copy(PROJECT / "models" / f"{mid}.json", root / "models")
    assert json.loads((root / "models" / f"{mid}.json").read_text())["pretrained"]
    assert not encoder_available(root, mid)
    with pytest.raises(DataError, match=r"no weights.*\.pt is missing.*encode --pretrained"):
        place_materials(root, mid, [band_item(str(Catalog(root).load(mid).names[0]))])


def test_band_data_without_bands_in_the_window_is_a_problem_not_a_crash(pretrained_root):
    root, mid = pretrained_root
    item = band_item(str(Catalog(root).load(mid).names[0]))
    item.bands.energies = item.bands.energies + 100.0  # every band far above E_F
    placed, problems = place_materials(root, mid, [item])
    assert placed == [] and "no band within ±3 eV" in problems[0][1]


def test_kept_placements_are_drawn_from_additions_and_removed_whole(pretrained_root):
    root, mid = pretrained_root
    cat = Catalog(root)
    name = str(cat.load(mid).names[3])
    item = band_item(name)
    placed, _ = place_materials(root, mid, [item])
    recs = keep_placements(root, mid, [(item, placed[0])], map_names=cat.load(mid).names)
    # the same name as a map material: kept apart under a new name
    assert recs[0]["name"] == f"{name}_new" and recs[0]["original_name"] == name
    assert (root / "additions" / "bands" / f"{name}_new.npz").is_file()
    assert cat.display_image(f"{name}_new", 3) is not None  # the hover image is served
    with pytest.raises(ParameterError, match="placed on .* already"):
        keep_placements(root, mid, [(item, placed[0])], map_names=cat.load(mid).names, on_conflict="fail")
    both = keep_placements(root, mid, [(item, placed[0])], map_names=cat.load(mid).names, on_conflict="keep-both")
    assert both[0]["name"] == f"{name}_new2"
    assert [r["name"] for r in placed_on(root, mid)] == [f"{name}_new", f"{name}_new2"]
    # measured again at another cell: same neighbours, the cluster of that cell
    again = placed_at_cell(cat, mid, placed_on(root, mid), params=ClusterParams(algo="kmeans", n_clusters=3))
    assert again[0]["neighbours"][0]["material"] == name and again[0]["cluster"] in (0, 1, 2)
    assert remove_placed(root, f"{name}_new", mid) == 1
    assert not (root / "additions" / "bands" / f"{name}_new.npz").exists()
    assert remove_placed(root, f"{name}_new2") == 1 and read_placed(root) == {}
    assert remove_placed(root, "nothing-of-that-name") == 0


def test_a_broken_additions_file_is_named(tmp_path):
    (tmp_path / "additions").mkdir()
    (tmp_path / "additions" / "placed.json").write_text("{not json")
    with pytest.raises(DataError, match="placed.json is not readable"):
        read_placed(tmp_path)


def test_a_sketch_is_searched_like_a_plot_and_an_empty_one_is_refused(pretrained_root):
    """A training image passed as a sketch finds that material first; a blank canvas is refused."""
    import io

    from PIL import Image

    from backend.discover.place import sketch_neighbours

    root, mid = pretrained_root
    name = str(Catalog(root).load(mid).names[10])
    buf = io.BytesIO()
    Image.open(root / "images" / "train_3eV" / f"{name}.png").save(buf, format="PNG")
    found = sketch_neighbours(str(root), mid, buf.getvalue())
    assert found["neighbours"][0]["material"] == name and found["neighbours"][0]["percentile"] == 0
    blank = io.BytesIO()
    Image.new("L", (224, 224), 255).save(blank, format="PNG")
    with pytest.raises(ParameterError, match="sketch is empty"):
        sketch_neighbours(str(root), mid, blank.getvalue())
    with pytest.raises(DataError, match="not a readable image"):
        sketch_neighbours(str(root), mid, b"not a png")


def test_a_new_material_is_moved_onto_the_map_by_the_kept_reducer(pretrained_root, tmp_path):
    """encode --pretrained (like train) keeps the fitted UMAP reducer: a material that is not on
    the map is placed by its transform; without the reducer, from its neighbours (approximate)."""
    import pickle

    from PIL import Image

    from backend.data.model_ids import model_paths
    from backend.discover.place import POSITION_RULE, SAME_RULE, TRANSFORM_RULE

    root, mid = pretrained_root
    paths = model_paths(root, mid)
    assert paths["reducer"].is_file()
    name = str(Catalog(root).load(mid).names[20])
    img = np.asarray(Image.open(root / "images" / "train_3eV" / f"{name}.png").convert("L")).copy()
    img[:, :112] = 255  # half of the plot erased: another material
    item = SimpleNamespace(name="half", source="half.png", bands=None, plot=img, window=None, notes=[])
    (placed,), _ = place_materials(root, mid, [item])
    reducer = pickle.loads(paths["reducer"].read_bytes())
    assert placed.position_rule == TRANSFORM_RULE
    assert placed.xy == pytest.approx(tuple(reducer.transform(placed.fingerprint[None].astype(np.float32))[0]))
    (same,), _ = place_materials(root, mid, [band_item(name)])
    assert same.position_rule == SAME_RULE
    # a model without a reducer (trained before it was kept): from the neighbours, marked approximate
    moved = tmp_path / "reducer.pkl"
    shutil.move(paths["reducer"], moved)
    try:
        (approx,), _ = place_materials(root, mid, [item])
        assert approx.position_rule == POSITION_RULE and "approximate" in approx.position_rule
    finally:
        shutil.move(moved, paths["reducer"])
