"""``demo``: build the project's labelled tight-binding demo dataset."""

from __future__ import annotations

from pathlib import Path

from backend.commands import add_data_arg
from backend.data.demo import build_demo
from backend.errors import ParameterError
from backend.progress import TqdmProgress

PROJECT = Path(__file__).resolve().parents[2]


def register(sub) -> None:
    p = sub.add_parser("demo", help="build the labelled tight-binding demo dataset (the app's default)")
    add_data_arg(p, default=str(PROJECT), old_out=True,
                 help="data root (default: $BANDSCAPE_DATA, else the project, which `python app.py` opens)")
    p.add_argument("--n", type=int, default=600, help="number of materials")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="pre-training epochs (default: the demo recipe's)")
    p.add_argument("--image-size", type=int, default=None, help="pixels (default: the demo recipe's, 64)")
    p.add_argument("--windows", default="1,2,3")
    p.add_argument("--families", choices=("demo", "holdout"), default="demo",
                   help="demo: triangular, honeycomb, kagome, dice; holdout: square, Lieb, checkerboard and gapped "
                        "honeycomb lattices the demo does not contain (to check a recipe is not tuned to the demo)")
    p.add_argument("--no-models", action="store_true", help="materials, labels and unencoded maps only")
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args) -> int:
    if args.n < 8:
        raise ParameterError(f"--n must be at least 8 (two materials per family), got {args.n}")
    windows = [int(w) for w in args.windows.split(",")]
    with TqdmProgress(desc="demo", unit="step") as bar:
        report = build_demo(args.data, args.n, args.seed, windows, args.epochs, args.image_size, progress=bar,
                            families=args.families, models=not args.no_models)
    print(f"demo: {report['materials']} materials and {len(report['models'])} models written to {args.data}")
    return 0
