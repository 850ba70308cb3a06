"""``synth``: a synthetic data root of any size with a known cluster structure (benchmarks)."""

from __future__ import annotations

from backend.commands import add_command, add_data_arg
from backend.data.synth import SynthSpec, write_synth
from backend.progress import TqdmProgress


def register(sub) -> None:
    d = SynthSpec()
    p = add_command(sub, "synth", "a synthetic data root with known clusters, of any size (benchmarks)",
                    description="Write a synthetic data root (fingerprints, 2-D map, labels, band data) with known "
                                "clusters, e.g. 100,000 materials for the scale benchmark.")
    add_data_arg(p, old_out=True, required=True, help="data root to write (created if missing)")
    p.add_argument("--n", type=int, default=d.n, help="number of materials")
    p.add_argument("--clusters", type=int, default=d.n_clusters, help="number of clusters")
    p.add_argument("--noise", type=float, default=d.noise, help="fraction of background points")
    p.add_argument("--models", type=int, default=d.n_models, help="models to write, 1 or 2")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")
    p.add_argument("--no-bands", action="store_true", help="no band data (then hover shows no images)")
    p.set_defaults(handler=cmd_synth)


def cmd_synth(args) -> int:
    spec = SynthSpec(n=args.n, n_clusters=args.clusters, noise=args.noise, seed=args.seed, n_models=args.models)
    with TqdmProgress(desc="synth", unit="step") as bar:
        report = write_synth(args.data, spec, bands=not args.no_bands, progress=bar)
    print(f"synth: {report['materials']} materials in {report['clusters']} clusters (+{report['noise']} background), "
          f"models {', '.join(report['models'])}{', band data' if report['bands'] else ''} written to {args.data}")
    return 0
