"""A material's image address, written once (components/material_image.py), for names that need
quoting: the app's route resolves it to that material's image."""

from __future__ import annotations

import shutil

import flask
import pandas as pd
import pytest

import app
import app_state
from backend.data.catalog import Catalog
from components.material_image import NAME_SLOT, material_image_template, material_image_url, quote_name
from tests.conftest import DEMO_IMAGES, PROJECT, copy_models, demo_model

#: names a lab's files may have: spaces, '+', '#', '%', '?', quotes and brackets, non-ASCII
ODD_NAMES = ("Fe Co+Ni #2", "Ti₂FeIr (β)", "Mn%20Ga?x=1", "Ac2Hg'Ge*!~", "naïve_Ü")


def test_the_address_quotes_every_special_character():
    assert material_image_url(1.0, "Fe Co+Ni #2") == "/material-image/1/Fe%20Co%2BNi%20%232.png"
    assert material_image_url(1.5, "Ac2Hg'Ge*!~") == "/material-image/1.5/Ac2Hg%27Ge%2A%21~.png"
    assert material_image_url(3, "Ti₂FeIr (β)") == "/material-image/3/Ti%E2%82%82FeIr%20%28%CE%B2%29.png"
    assert material_image_url(None, "x") is None and material_image_template(None) is None
    assert material_image_template(2.0).replace(NAME_SLOT, quote_name("a/b")) == "/material-image/2/a%2Fb.png"


def odd_root(tmp_path, names=ODD_NAMES):
    """A data root with the 1 eV demo model whose first materials are renamed to ``names``, each
    with a display image (a copy of a demo image, each a different one). Returns the root, the
    model, and ``{name: image bytes}``."""
    model = demo_model(1)
    root = copy_models(PROJECT, tmp_path / "root", [model])
    info = Catalog(root).get(model)
    first = pd.read_csv(info.embedding_path)["filename"].tolist()
    renamed = {old: f"{new}.png" for old, new in zip(first, names)}
    for path in filter(None, (info.fingerprint_path, info.embedding_path)):
        frame = pd.read_csv(path)
        frame["filename"] = frame["filename"].replace(renamed)
        frame.to_csv(path, index=False)
    images = root / "images" / "display_1eV"
    images.mkdir(parents=True)
    expected = {}
    for old, new in renamed.items():
        shutil.copy(DEMO_IMAGES / old, images / new)
        expected[new[:-len(".png")]] = (images / new).read_bytes()
    assert len(set(expected.values())) == len(names), "each material has its own image"
    return root, model, expected


@pytest.fixture()
def image_server(tmp_path):
    root, model, expected = odd_root(tmp_path)
    app_state.init(root)
    server = flask.Flask(__name__)
    app.register_routes(server)
    with server.test_client() as client:
        yield client, expected
    app_state.init(app_state.default_data_root())


def test_the_route_resolves_each_address_to_its_material(image_server):
    client, expected = image_server
    for name, png in expected.items():
        r = client.get(material_image_url(1, name))
        assert r.status_code == 200, name
        assert "X-Bandscape-Missing" not in r.headers, name
        assert r.data == png, name
