"""``demo``: build the project's labelled tight-binding demo dataset."""

from __future__ import annotations

from backend.autoencoder.config import TrainConfig
from backend.commands import add_command, add_data_arg
from backend.errors import ParameterError
from backend.progress import TqdmProgress


def register(sub) -> None:
    d = TrainConfig()
    p = add_command(sub, "demo", "build the labelled tight-binding demo dataset (the app's default data)")
    add_data_arg(p, old_out=True, help="data root to build it in")
    p.add_argument("--n", type=int, default=600, help="number of materials")
    p.add_argument("--seed", type=int, default=0, help="random seed (materials and models)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="pre-training epochs of its models (train's default)")
    p.add_argument("--image-size", type=int, default=d.image_size, help="pixels of its models (train's default)")
    p.add_argument("--windows", default="1,2,3", help="energy windows, ±eV, comma-separated")
    p.add_argument("--generator", choices=("dftlike", "lattice", "nfe"), default="dftlike",
                   help="dftlike: cells with an electron count, E_F from the filling, plots referenced to E_F "
                        "(labels family, metal, flat_band_at_ef, dirac_at_ef, filling, ...); lattice: the first "
                        "demo's single lattices with a random E_F (labels family, metal, flat_band); nfe: nearly "
                        "free electrons in a periodic potential, another construction of bands (only --families "
                        "holdout; labels family, metal, odd_electrons, electrons)")
    p.add_argument("--families", choices=("demo", "holdout"), default="demo",
                   help="demo: the generator's demo lattices; holdout: lattices (and, for dftlike, strain and "
                        "disorder) the demo does not contain, to check a recipe is not tuned to the demo")
    p.add_argument("--no-models", action="store_true", help="materials, labels and unencoded maps only")
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args) -> int:
    from backend.data.demo import build_demo, demo_families  # trains models: torch, imported by the handler only

    families = demo_families(args.generator, args.families)
    if args.n < 2 * len(families):
        raise ParameterError(f"--n must be at least {2 * len(families)} (two materials per family), got {args.n}")
    windows = [int(w) for w in args.windows.split(",")]
    with TqdmProgress(desc="demo", unit="step") as bar:
        report = build_demo(args.data, n=args.n, seed=args.seed, windows=windows, epochs=args.epochs,
                            image_size=args.image_size, progress=bar, families=args.families, models=not args.no_models,
                            generator=args.generator)
    print(f"demo: {report['materials']} materials and {len(report['models'])} models written to {args.data}")
    return 0
