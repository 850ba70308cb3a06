"""Sub-commands of ``python -m backend``: one module per area, each with ``register(subparsers)``.

:data:`MODULES` lists the modules in the order of a study, which is the order ``--help`` lists
their commands in: data in (``preprocess``, ``import-plots``, ``import``) -> training (``train``,
``sweep``, ``encode``, ``part-maps``, ``pretrain``) -> exploring (``models``, ``cluster``, ``neighbours``,
``place``, ``consensus``, ``subset``) -> judging (``evaluate``, ``quality``) -> background jobs
(``jobs``) -> made-up data (``demo``, ``synth``).

A module adds each command with :func:`add_command` (one-line help, defaults shown in its
``--help``) and sets its handler with ``parser.set_defaults(handler=fn)``; ``fn(args)`` returns an
exit code. Import heavy libraries (torch, umap) inside the handler, so ``--help`` stays fast.
Every command reads and writes the data root of :func:`add_data_arg`: ``--data``, by default the
app's (:func:`backend.data.roots.default_data_root`, the demo unless ``BANDSCAPE_DATA`` is set).
"""

from __future__ import annotations

import argparse
import os
import sys

from backend.data.roots import PROJECT_ROOT, default_data_root

#: the command modules, in workflow order (``python -m backend --help`` lists them so)
MODULES = ("bands", "train", "pretrain", "explore", "discover", "evaluate", "quality", "jobs", "demo", "synth")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, unless the help already names it or there is
    none to name (an off switch, a required option, a default of None)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.required or action.default is None or action.default is False \
                or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        default = ",".join(map(str, action.default)) if isinstance(action.default, (list, tuple)) else "%(default)s"
        return f"{text} (default: {default})" if text else f"(default: {default})"


def add_command(sub, name: str, help: str, *, description: str | None = None) -> argparse.ArgumentParser:
    """A sub-command: ``help`` is its one line in the list of commands (and, without a longer
    ``description``, the first line of its own ``--help``)."""
    return sub.add_parser(name, help=help, description=description or help, formatter_class=HelpFormatter)


class Deprecated(argparse.Action):
    """An old spelling of a flag: still accepted, with a note (``new``: what to use instead)."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        self.new = new
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"note: {option_string} is deprecated here; {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _root_default() -> str:
    root = default_data_root()
    where = "$BANDSCAPE_DATA" if root != PROJECT_ROOT else "the demo in the project folder, as `python app.py`"
    return f"(default: {where}: {root})"


def add_data_arg(parser, *, old_out: bool = False, help: str | None = None, required: bool = False) -> None:
    """``--data DIR``, the data root of every command: by default the app's
    (:func:`~backend.data.roots.default_data_root`). ``required``: not the demo (commands that
    make a new root: writing into the demo would mix other data into it), only
    ``$BANDSCAPE_DATA`` when set. ``old_out``: also accept the old ``--out``."""
    env = os.environ.get("BANDSCAPE_DATA")
    # the old --out in one group with --data, so that either satisfies a required root
    group = parser.add_mutually_exclusive_group(required=required and not env)
    if required:
        group.add_argument("--data", default=env, metavar="DIR",
                           help=(help or "data root") + (" (default: $BANDSCAPE_DATA)" if env else
                                                         " (required: never the demo's folder)"))
    else:
        group.add_argument("--data", default=str(default_data_root()), metavar="DIR",
                           help=f"{help or 'data root'} {_root_default()}")
    if old_out:
        group.add_argument("--out", dest="data", action=Deprecated, new="the data root is --data")
