"""The ``python -m backend`` command line as a whole: commands in workflow order, each with a
one-line help and its defaults in ``--help``, the app's data root (the demo) as every command's
default, one meaning per flag name, integers printed as integers."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

import pytest

from backend.__main__ import build_parser, main
from backend.autoencoder.config import TrainConfig
from backend.data.roots import PROJECT_ROOT
from tests.conftest import PROJECT, demo_model

WORKFLOW = ["preprocess", "import-plots", "import", "train", "sweep", "encode", "part-maps", "pretrain", "models", "cluster", "neighbours", "place", "consensus",
            "subset", "evaluate", "quality", "jobs", "demo", "synth"]


def commands(parser: argparse.ArgumentParser, prefix=()):
    """(path, parser, one-line help) of every sub-command, nested ones (``jobs submit``) too."""
    for action in parser._actions:  # argparse has no public walk over sub-parsers
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield prefix + (name,), sub, helps[name]
                yield from commands(sub, prefix + (name,))


def help_of(*path) -> str:
    return next(sub for p, sub, _ in commands(build_parser()) if p == path).format_help()


def option_blocks(help_text: str) -> dict[str, str]:
    """``--flag`` -> its whole entry in a ``--help`` text (wrapped lines joined)."""
    blocks, current = {}, None
    for line in help_text.split("options:", 1)[1].splitlines():
        m = re.match(r"^  (-\S+)", line)
        if m:
            current = m.group(1).rstrip(",")
            blocks[current] = line
        elif current and line.startswith("    "):
            blocks[current] += " " + line.strip()
        else:
            current = None
    return {k: re.sub(r"\s+", " ", v) for k, v in blocks.items()}


def test_commands_are_listed_in_workflow_order_with_one_line_each():
    top = [path[0] for path, _, _ in commands(build_parser()) if len(path) == 1]
    assert top == WORKFLOW
    for path, _, one_line in commands(build_parser()):
        assert one_line and "\n" not in one_line and len(one_line) <= 90, path


def test_every_help_shows_the_defaults():
    """Walk every sub-command: each option that has a default says it in its --help (off switches
    and required options have none to say)."""
    checked = 0
    for path, sub, _ in commands(build_parser()):
        text = sub.format_help()
        blocks = option_blocks(text)
        required_groups = [g._group_actions for g in sub._mutually_exclusive_groups if g.required]
        for action in sub._actions:
            required = action.required or any(action in group for group in required_groups)
            if not action.option_strings or action.help == argparse.SUPPRESS or required \
                    or isinstance(action, (argparse._HelpAction, argparse._StoreTrueAction)):
                continue
            block = blocks[action.option_strings[0]]
            assert "default" in block, (" ".join(path), block)
            assert "(default: None)" not in block, (" ".join(path), block)
            checked += 1
    assert checked > 100


def test_train_help_reads_its_defaults_from_the_config():
    text = re.sub(r"\s+", " ", help_of("train"))
    d = TrainConfig()
    assert "224x224" not in text
    assert f"--image-size IMAGE_SIZE pixels, a multiple of 32 (the study used 224) (default: {d.image_size})" in text
    assert f"(default: {d.epochs})" in text and f"(default: {d.arch})" in text


def cli(*args, cwd, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "BANDSCAPE_DATA"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "backend", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=240, env={**env, "PYTHONPATH": str(PROJECT)})


def test_the_demo_is_the_default_root_of_every_command(tmp_path):
    """As ``python app.py`` without --data: run from anywhere, a command without --data reads the
    project's demo; ``$BANDSCAPE_DATA`` replaces it for both."""
    assert PROJECT_ROOT == PROJECT
    out = cli("models", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(f"models under {PROJECT}")
    assert demo_model(1) in out.stdout
    out = cli("cluster", "--model", demo_model(1), cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith(f"{demo_model(1)}: "), out.stderr
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    out = cli("models", cwd=tmp_path, env_extra={"BANDSCAPE_DATA": str(empty)})
    assert out.returncode == 1 and f"no models under {empty}" in out.stdout


def test_commands_that_make_a_new_root_never_default_to_the_demo(capsys, monkeypatch):
    monkeypatch.delenv("BANDSCAPE_DATA", raising=False)
    for command in (["preprocess", "--eigenvals", "x"], ["import", "x"], ["synth"]):
        with pytest.raises(SystemExit):
            main(command)
        assert "--data" in capsys.readouterr().err, command


def test_models_prints_integers_as_integers():
    """A column with a missing value (an unencoded map has no latent or epochs) is read as floats;
    the table still prints 3 and 60, and the JSON has integers."""
    import json

    out = cli("models", "--data", PROJECT, cwd=PROJECT)
    assert out.returncode == 0, out.stderr
    header, *rows = [line.strip() for line in out.stdout.splitlines()[:-1]]
    row = dict(zip(header.split(), next(r for r in rows if r.startswith(demo_model(1))).split()))
    assert (row["latent"], row["epochs"], row["window"]) == ("3", str(TrainConfig().epochs), "1")
    assert not re.search(r"\b\d+\.0\b(?!\.)", out.stdout.replace("split1.0", ""))  # no 3.0 / 60.0 cells
    unencoded = dict(zip(header.split(), next(r for r in rows if r.startswith("unencoded_window1eV")).split()))
    assert unencoded["latent"] == "-" and unencoded["epochs"] == "-"
    records = {r["model_id"]: r for r in json.loads(cli("models", "--json", cwd=PROJECT).stdout)}
    assert isinstance(records[demo_model(1)]["latent"], int) and isinstance(records[demo_model(1)]["epochs"], int)
    assert records["unencoded_window1eV_width1"]["latent"] is None


def test_kpath_labels_has_its_own_name_and_the_old_one_still_works(capsys):
    parser = build_parser()
    args = parser.parse_args(["preprocess", "--eigenvals", "x", "--data", "y", "--kpath-labels", "G,M,K,G"])
    assert args.kpath_labels == "G,M,K,G"
    args = parser.parse_args(["preprocess", "--eigenvals", "x", "--data", "y", "--labels", "G,K"])
    assert args.kpath_labels == "G,K"
    assert "--labels is deprecated here; the k-path labels are --kpath-labels" in capsys.readouterr().err
    assert "--labels" not in help_of("preprocess")


def test_the_old_out_spelling_still_names_a_new_root(tmp_path):
    """``synth --out`` (before --data was every command's root) still writes the root, with a note."""
    out = subprocess.run([sys.executable, "-m", "backend", "synth", "--n", "200", "--clusters", "5", "--models", "1",
                          "--no-bands", "--out", str(tmp_path / "root")], cwd=PROJECT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "--out is deprecated" in out.stderr
    assert list((tmp_path / "root" / "embeddings").glob("*.csv"))
