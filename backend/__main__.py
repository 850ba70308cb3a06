"""The ``python -m backend`` command line.

Each module in :mod:`backend.commands` adds its sub-commands through ``register(subparsers)``;
a sub-command's handler takes the parsed arguments and returns an exit code. Errors the user can
fix (:class:`backend.errors.BandscapeError`) are printed as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from backend import commands
from backend.commands import check_data_arg
from backend.errors import BandscapeError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m backend",
        description="bandscape: band structures -> autoencoder fingerprints -> clusters.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{mod.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_data_arg(parser, args)
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
