"""Sub-commands of ``python -m backend``: one module per area, each with ``register(subparsers)``.

A module's handlers are set with ``parser.set_defaults(handler=fn)``; ``fn(args)`` returns an exit
code. Import heavy libraries (torch, umap) inside the handler, so ``--help`` stays fast.
"""
