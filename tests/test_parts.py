"""Maps of one part of a two-part fingerprint (``part-maps``): what they hold, what they group on
the demo, the refusals, and that retraining the whole model removes them."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from backend.__main__ import main
from backend.autoencoder.config import TrainConfig
from backend.autoencoder.device import to_input
from backend.autoencoder.encoding import load_model
from backend.autoencoder.images import load_image_folder
from backend.autoencoder.parts import write_part_maps
from backend.autoencoder.training import train_model
from backend.cluster.params import default_model
from backend.data.catalog import Catalog
from backend.data.model_ids import model_paths, part_model_id
from backend.discover.consensus import consensus_models
from backend.discover.explorer_view import ExplorerView
from backend.errors import ParameterError
from backend.evaluate.select import select_models
from backend.quality.metrics import kmeans_labels
from tests.conftest import DEMO_IMAGES, PROJECT, copy_models, demo_model


def _nmi(y, labels) -> float:
    from sklearn.metrics import normalized_mutual_info_score  # sklearn: slow to import, one test

    return float(normalized_mutual_info_score(y, labels))


@pytest.fixture(scope="module")
def demo_parts(tmp_path_factory):
    """The committed demo's 3 eV model (a copy) and its part maps."""
    root = tmp_path_factory.mktemp("parts")
    model = demo_model(3)
    copy_models(PROJECT, root, [model])
    (root / "models").mkdir()
    shutil.copy(model_paths(PROJECT, model)["metadata"], model_paths(root, model)["metadata"])
    return root, model, write_part_maps(root, model)


def test_each_part_is_its_encoder_s_columns_with_a_map_of_its_own(demo_parts):
    root, model, ids = demo_parts
    assert ids == [part_model_id(model, "shape"), part_model_id(model, "fermi")]
    cat = Catalog(root)
    assert default_model(cat) == model  # the explorer still opens on the whole fingerprint
    whole = cat.load(model)
    half = whole.X.shape[1] // 2
    for i, pid in enumerate(ids):
        info, part = cat.get(pid), cat.load(pid)
        assert info.is_part and not info.is_pretrained and info.parts == 1
        assert info.window == 3 and info.channels == cat.get(model).channels
        assert (part.names == whole.names).all()
        np.testing.assert_allclose(part.X, whole.X[:, i * half:(i + 1) * half], rtol=1e-6)
        assert part.xy.shape == (len(whole.names), 2) and not np.allclose(part.xy, whole.xy)
        meta = json.loads(model_paths(root, pid)["metadata"].read_text())
        assert meta["part_of"] == model and meta["config"]["views"] == ("shape", "fermi")[i]
        assert not model_paths(root, pid)["reducer"].exists()  # nothing encodes onto it


def test_the_shape_part_groups_the_demo_families_the_whole_fingerprint_mixes(demo_parts):
    """The shape encoder learnt views that move E_F: K-Means on it finds the lattices far better
    than on the whole fingerprint, which groups fillings as much (docs/findings.md)."""
    root, model, (shape, fermi) = demo_parts
    cat = Catalog(root)
    labels = pd.read_csv(PROJECT / "labels.csv").set_index("material")
    scores = {}
    for mid in (model, shape, fermi):
        data = cat.load(mid)
        y = labels.loc[list(data.names), "family"].to_numpy()
        scores[mid] = _nmi(y, kmeans_labels(data.X, 5))
    assert scores[shape] > scores[model] + 0.15 and scores[shape] > scores[fermi] + 0.15, scores


def test_default_selections_leave_part_maps_out(demo_parts):
    """Rankings, cross-model AMI and a consensus would count the part's encoder twice with its
    whole model: a default selection has the whole only; a filter naming ids has the parts."""
    root, model, ids = demo_parts
    cat = Catalog(root)
    assert select_models(cat, "") == [model] and select_models(cat, "window=3") == [model]
    assert consensus_models(cat, window=3)[1] == [model]
    assert set(select_models(cat, "id=*-part")) == set(ids)
    assert set(consensus_models(cat, "id=*pretrained-tuned*")[1]) == {model, *ids}


def test_part_maps_are_refused_where_there_is_nothing_to_split(demo_parts, tmp_path):
    root, model, (shape, _) = demo_parts
    with pytest.raises(ParameterError, match="already one part of"):
        write_part_maps(root, shape)
    one = "unencoded_window3eV_width1"
    copy_models(PROJECT, tmp_path, [one])
    with pytest.raises(ParameterError, match="unencoded map"):
        write_part_maps(tmp_path, one)


def test_a_one_part_model_is_refused_and_retraining_removes_stale_part_maps(tmp_path, capsys):
    root = tmp_path / "root"
    images = root / "images" / "train_1eV"
    images.mkdir(parents=True)
    for p in sorted(DEMO_IMAGES.glob("*.png"))[:12]:
        shutil.copy(p, images / p.name)
    shutil.copy(DEMO_IMAGES / "images.json", images / "images.json")
    small = dict(epochs=1, split=0, batch_size=6, image_size=32, channels=16)
    lattice = train_model(TrainConfig(views="lattice", **small), images, root).model_id
    with pytest.raises(ParameterError, match="one-part fingerprint"):
        write_part_maps(root, lattice)
    cfg = TrainConfig(**small)
    model_id = train_model(cfg, images, root).model_id
    assert main(["part-maps", "--model", model_id, "--data", str(root)]) == 0
    assert part_model_id(model_id, "fermi") in capsys.readouterr().out
    # the shape part is the first encoder's output, flattened as the fingerprint is
    model = load_model(root, model_id)[0].eval()
    _, ink = load_image_folder(images, 32)
    with torch.no_grad():
        first = model.encoder(to_input(ink[:4], torch.device("cpu"))).float().flatten(1).numpy()
    np.testing.assert_allclose(Catalog(root).load(part_model_id(model_id, "shape")).X[:4], first, rtol=1e-4, atol=1e-5)
    # placing on a part map points to the whole fingerprint's map, whose encoder is here
    from components.explore_place import placed_listing  # the page's components: this test only

    note = str(placed_listing(Catalog(root), ExplorerView(model=part_model_id(model_id, "shape")), [])[0])
    assert "has no encoder of its own" in note and "The whole fingerprint's map" in note
    assert f"model={model_id}&" in note
    train_model(cfg, images, root, overwrite=True)
    cat = Catalog(root)
    assert model_id in cat and not any(cat.get(m).is_part for m in cat.models)
    assert not model_paths(root, part_model_id(model_id, "shape"))["metadata"].exists()
