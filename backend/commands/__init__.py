"""Sub-commands of ``python -m backend``: one module per area, each with ``register(subparsers)``.

A module's handlers are set with ``parser.set_defaults(handler=fn)``; ``fn(args)`` returns an exit
code. Import heavy libraries (torch, umap) inside the handler, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys


class _DeprecatedOut(argparse.Action):
    """``--out`` where it used to name the data root: still accepted, with a note."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"note: {option_string} is deprecated here; the data root is --data", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_data_arg(parser, default: str | None = None, old_out: bool = False, help: str | None = None) -> None:
    """``--data DIR``, the data root of every command (default ``$BANDSCAPE_DATA``, else
    ``default``; required when neither is set). ``old_out``: also accept the old ``--out``."""
    default = os.environ.get("BANDSCAPE_DATA") or default
    parser.add_argument("--data", default=default, metavar="DIR",
                        help=help or "data root (default: $BANDSCAPE_DATA)")
    if old_out:
        parser.add_argument("--out", dest="data", action=_DeprecatedOut, help=argparse.SUPPRESS)
    if default is None:
        parser.set_defaults(data_required=True)


def check_data_arg(parser, args) -> None:
    if getattr(args, "data_required", False) and not getattr(args, "data", None):
        parser.error("--data DIR is required (or set BANDSCAPE_DATA)")
