"""A training window that disagrees with the images' is refused on every path (the job queue the
page and ``jobs submit`` use, ``train``, ``sweep``, the training function itself), naming both
windows; where the images' window cannot be known, the commands ask for it instead of guessing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backend.autoencoder.config import TrainConfig
from backend.data.image_window import META_FILE, check_window, images_window, window_of_plots, write_images_meta
from backend.errors import ParameterError
from backend.jobs import LocalRunner
from tests.conftest import PROJECT, copy_demo_images

TINY = dict(arch="resnet18", latent=1, epochs=2, split=0.25, image_size=64, batch_size=4)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return copy_demo_images(tmp_path_factory.mktemp("root") / "images" / "train_1eV")


@pytest.fixture(scope="module")
def unnamed(tmp_path_factory) -> Path:
    """Images whose window nothing says."""
    return copy_demo_images(tmp_path_factory.mktemp("plain") / "my_images")


def test_the_window_comes_from_images_json_then_the_folder_name(tmp_path, images, unnamed):
    assert images_window(images).window == 1 and images_window(images).source == "its name"
    assert not images_window(unnamed).known
    for w in (1, 2, 3):  # the committed demo says it in both ways
        assert images_window(PROJECT / "assets" / "images" / f"train_{w}eV").window == w
        assert json.loads((PROJECT / "assets" / "images" / f"train_{w}eV" / META_FILE).read_text())["window"] == w
    other = tmp_path / "train_2eV"
    shutil.copytree(unnamed, other)
    write_images_meta(other, window=0.5, image_size=224, source="test")
    assert images_window(other).window == 0.5  # what drew the images, over the folder's name
    (other / META_FILE).write_text('{"window": -1}')
    with pytest.raises(Exception, match="positive"):
        images_window(other)
    assert window_of_plots("/x/images/bands_10width_2eV") == 2 and window_of_plots("/x/display_3eV") == 3
    assert window_of_plots("/x/plots") is None


def test_check_names_both_windows_or_says_it_cannot_know(images, unnamed):
    assert check_window(images, 1) is None
    with pytest.raises(ParameterError, match=r"drawn for ±1 eV .*window asked is ±3 eV"):
        check_window(images, 3)
    note = check_window(unnamed, 3)
    assert "not known" in note and "±3 eV, as asked" in note
    with pytest.raises(ParameterError, match="one window"):
        check_window(unnamed, [1, 2])


def test_the_job_queue_refuses_a_window_the_images_are_not(tmp_path, images):
    runner = LocalRunner(tmp_path)  # not started: nothing runs
    with pytest.raises(ParameterError) as err:
        runner.submit([TrainConfig(**TINY, window=3)], images)
    assert "±1 eV" in str(err.value) and "±3 eV" in str(err.value)
    with pytest.raises(ParameterError, match="±2 eV"):  # one config of a grid is enough to refuse it all
        runner.submit([TrainConfig(**TINY, window=1), TrainConfig(**TINY, window=2)], images)
    assert runner.jobs() == []
    assert runner.submit([TrainConfig(**TINY, window=1)], images)[0].status == "queued"


def test_the_training_function_refuses_it_too(tmp_path, images):
    from backend.autoencoder.training import train_model

    with pytest.raises(ParameterError, match=r"±1 eV .*±2 eV"):
        train_model(TrainConfig(**TINY, window=2), images, tmp_path)
    assert not (tmp_path / "models").exists()


def cli(*args):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "BANDSCAPE_DATA")}
    return subprocess.run([sys.executable, "-m", "backend", *map(str, args)], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=240)


@pytest.mark.parametrize("command", [["train"], ["sweep", "--arch", "resnet18", "--latent", "1", "--epochs", "30"],
                                     ["jobs", "submit"]])
def test_every_command_refuses_a_window_the_images_are_not(tmp_path, images, command):
    out = cli(*command, "--images", images, "--data", tmp_path, "--window", 3, "--image-size", 64)
    assert out.returncode == 2, out.stderr
    assert "drawn for ±1 eV" in out.stderr and "window asked is ±3 eV" in out.stderr
    assert not (tmp_path / "models").exists() and not list(tmp_path.rglob("*.json"))


def test_where_the_window_is_not_known_the_commands_ask_for_it(tmp_path, unnamed):
    out = cli("jobs", "submit", "--images", unnamed, "--data", tmp_path, "--image-size", 64)
    assert out.returncode == 2 and "is not known" in out.stderr and "pass --window" in out.stderr
    out = cli("jobs", "submit", "--images", unnamed, "--data", tmp_path, "--image-size", 64, "--window", 2)
    assert out.returncode == 0, out.stderr
    assert "window2eV" in out.stdout and "is not known" in out.stderr and "as asked" in out.stderr
