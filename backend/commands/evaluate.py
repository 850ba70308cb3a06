"""``evaluate``: the grid search of model selection from the command line."""

from __future__ import annotations

import sys

from backend.cluster.distances import METRICS
from backend.cluster.params import SELECTIONS
from backend.commands import add_command, add_data_arg
from backend.data.catalog import Catalog
from backend.errors import ParameterError
from backend.evaluate.figures import write_report
from backend.evaluate.grid import GridSpec, grid_search
from backend.evaluate.select import select_models
from backend.evaluate.spec import parse_range
from backend.evaluate.tables import external_table
from backend.progress import TqdmProgress


def register(sub) -> None:
    d = GridSpec()
    p = add_command(
        sub, "evaluate", "grid search: DBCV, S_Dbw and mean AMI of every model in every HDBSCAN cell",
        description="Cluster every chosen model for every (min_samples, min_cluster_size) cell, score "
                    "each clustering (DBCV, S_Dbw, mean AMI with the other models) and write the tables "
                    "(CSV) and figures (PNG, self-contained HTML). Results are cached on disk.")
    add_data_arg(p)
    p.add_argument("--models", default="", help="filter, e.g. 'window=1' or 'window=1,arch=50' or 'latent=2|3' "
                                                "(default: every encoded model)")
    p.add_argument("--min-samples", default=_range(d.min_samples), help="range: 2:10 (inclusive), 2:10:2 or 3,5,8")
    p.add_argument("--min-cluster-size", default=_range(d.min_cluster_size), help="range, as --min-samples")
    p.add_argument("--selection", choices=SELECTIONS, default=d.selection, help="HDBSCAN cluster selection")
    p.add_argument("--metric", choices=METRICS, default=d.metric, help="distance between fingerprints")
    p.add_argument("--p", type=float, default=d.p, help="Minkowski exponent (the paper's)")
    p.add_argument("--labels", metavar="COLUMN",
                   help="also score against this column of the root's labels.csv (default: none)")
    p.add_argument("--model", help="model whose per-cell grid is drawn (default: the top-ranked)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--cache", default=None, help="cache folder (default: $BANDSCAPE_CACHE, else ~/.cache/bandscape)")
    p.add_argument("--no-cache", action="store_true", help="recompute everything")
    p.add_argument("--out", required=True, help="folder for the tables and figures")
    p.set_defaults(handler=cmd_evaluate)


def _range(values) -> str:
    """A contiguous range as the flags write it (2:10); else its values (3,5,8)."""
    values = list(values)
    if values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}:{values[-1]}"
    return ",".join(map(str, values))


def cmd_evaluate(args) -> int:
    cat = Catalog(args.data)
    spec = GridSpec(min_samples=parse_range(args.min_samples, "--min-samples"),
                    min_cluster_size=parse_range(args.min_cluster_size, "--min-cluster-size"),
                    selection=args.selection, metric=args.metric, p=args.p).validate()
    if args.jobs is not None and args.jobs < 1:
        raise ParameterError(f"--jobs must be >= 1, got {args.jobs}")
    model_ids = select_models(cat, args.models)
    if args.model and args.model not in model_ids:
        raise ParameterError(f"--model {args.model!r} is not among the {len(model_ids)} models the filter chose")
    print(f"{len(model_ids)} models x {len(spec.min_samples) * len(spec.min_cluster_size)} cells, "
          f"{spec.selection}, {spec.metric}" + (f" p={spec.p:g}" if spec.metric == "minkowski" else ""),
          file=sys.stderr)
    with TqdmProgress(desc="evaluate", unit="step") as bar:
        result = grid_search(cat, model_ids, spec, cache_dir=args.cache, n_jobs=args.jobs, progress=bar,
                             use_cache=not args.no_cache)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    external = external_table(result, cat, args.labels) if args.labels else None
    written = write_report(result, args.out, external=external, model_id=args.model)
    if result.cells.best_dbcv.notna().any():
        best = result.cells.loc[result.cells.best_dbcv.idxmax()]
        print(f"best DBCV {best.best_dbcv:.4f}: {best.best_dbcv_model} at min_samples={best.min_samples}, "
              f"min_cluster_size={best.min_cluster_size}")
    else:
        print("no cell has a clustering with two or more clusters: nothing to choose (see cells.csv)")
    top = result.ranking.iloc[0]
    print(f"top-ranked model (most cells won by DBCV): {top.model_id} ({top.cells_won_dbcv} cells)")
    print(f"{len(written)} files written to {args.out} in {result.timings['total_s']:.1f} s", file=sys.stderr)
    return 0
