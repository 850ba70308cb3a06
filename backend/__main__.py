"""The ``python -m backend`` command line.

Each module in :mod:`backend.commands` adds its sub-commands through ``register(subparsers)``, in
the workflow order of :data:`backend.commands.MODULES`; a sub-command's handler takes the parsed
arguments and returns an exit code. Errors the user can fix
(:class:`backend.errors.BandscapeError`) are printed as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from backend import commands
from backend.data.roots import default_data_root
from backend.errors import BandscapeError

DESCRIPTION = """bandscape: band structures -> autoencoder fingerprints -> clusters.

The commands, in the order of a study: data in (preprocess, import-plots, import) -> training
(train, sweep, encode, pretrain) -> exploring (models, cluster, neighbours, place, consensus,
subset) -> judging (evaluate, quality) -> background jobs (jobs) -> made-up data (demo, synth).
Every command works on a data root, --data DIR; without it, the app's: {root}.
`python -m backend COMMAND --help` lists a command's options and their defaults."""


def command_modules() -> list[str]:
    """The modules of :mod:`backend.commands`: those of ``MODULES`` in its order, then any other."""
    found = {m.name for m in pkgutil.iter_modules(commands.__path__)}
    return [m for m in commands.MODULES if m in found] + sorted(found - set(commands.MODULES))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m backend", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION.format(root=default_data_root()),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in command_modules():
        importlib.import_module(f"{commands.__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except BandscapeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
