"""``models`` and ``cluster``: the explorer's computation from the command line."""

from __future__ import annotations

import dataclasses
import json
import sys

from backend.cluster.distances import METRICS
from backend.cluster.models import cluster_model, labels_table
from backend.cluster.params import ALGORITHMS, SELECTIONS, ClusterParams
from backend.commands import add_command, add_data_arg
from backend.data.catalog import Catalog
from backend.fileio import write_csv_atomic


def register(sub) -> None:
    p = add_command(sub, "models", "list the models of a data root with their hyperparameters")
    add_data_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON (one object per model)")
    p.set_defaults(handler=cmd_models)

    p = add_command(sub, "cluster", "cluster one model; print a summary, optionally write the labels CSV")
    add_data_arg(p)
    p.add_argument("--model", required=True, help="model id (see `models`)")
    add_cluster_args(p)
    p.add_argument("--out", help="write the labels CSV here, the columns of the page's export "
                                 "(default: print the summary only)")
    p.set_defaults(handler=cmd_cluster)


def add_cluster_args(p, hdbscan_only: bool = False) -> None:
    """The clustering parameters as flags (``cluster``, ``subset``, ``consensus``): read them back
    with :func:`params_from_args`."""
    defaults = ClusterParams()
    if not hdbscan_only:
        p.add_argument("--algo", choices=ALGORITHMS, default=defaults.algo, help="clustering algorithm")
    p.add_argument("--min-cluster-size", type=int, default=defaults.min_cluster_size, help="HDBSCAN min_cluster_size")
    p.add_argument("--min-samples", type=int, default=defaults.min_samples, help="HDBSCAN min_samples")
    p.add_argument("--selection", choices=SELECTIONS, default=defaults.selection, help="HDBSCAN cluster selection")
    add_metric_args(p)
    if hdbscan_only:
        return
    p.add_argument("--n-clusters", type=int, default=defaults.n_clusters, help="k of K-Means / GMM")
    p.add_argument("--double-cluster", action="store_true", help="DBSCAN halos on the UMAP of non-noise points")
    p.add_argument("--dc-eps", type=float, default=defaults.dc_eps, help="DBSCAN eps of --double-cluster (map units)")
    p.add_argument("--dc-min-samples", type=int, default=defaults.dc_min_samples,
                   help="DBSCAN min_samples of --double-cluster")
    p.add_argument("--recluster-noise", action="store_true", help="HDBSCAN on the noise points")
    p.add_argument("--rc-min-cluster-size", type=int, default=defaults.rc_min_cluster_size,
                   help="min_cluster_size of --recluster-noise")
    p.add_argument("--rc-min-samples", type=int, default=defaults.rc_min_samples,
                   help="min_samples of --recluster-noise")


def add_metric_args(p) -> None:
    defaults = ClusterParams()
    p.add_argument("--metric", choices=METRICS, default=defaults.metric, help="distance between fingerprints")
    p.add_argument("--p", type=float, default=defaults.p, help="Minkowski exponent (the paper's)")


def params_from_args(args) -> ClusterParams:
    """The :class:`ClusterParams` of the flags :func:`add_cluster_args` added (others default)."""
    return ClusterParams(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ClusterParams)
                            if hasattr(args, f.name)})


def whole_numbers(table):
    """``table`` with its numeric columns as integers where every value is whole (3, 60, not
    3.0, 60.0, which a column with a missing value would print), missing values kept."""
    out = table.copy()
    for col in out.columns:
        values = out[col]
        if values.dtype.kind == "f" and values.notna().any() and (values.dropna() % 1 == 0).all():
            out[col] = values.astype("Int64")
    return out


def cmd_models(args) -> int:
    cat = Catalog(args.data)
    table = whole_numbers(cat.summary())
    if args.json:
        print(table.to_json(orient="records", indent=1))
    elif len(table) == 0:
        print(f"no models under {cat.root} (expected embeddings/*_embedding.csv or fingerprints/*_embedding.csv)")
        return 1
    else:
        shown = table[["model_id", "arch", "latent", "window", "epochs", "split", "line_width"]].astype(object)
        print(shown.where(shown.notna(), "-").to_string(index=False))
        print(f"{len(table)} models under {cat.root}")
    return 0


def cmd_cluster(args) -> int:
    cat = Catalog(args.data)
    params = params_from_args(args)
    data = cat.load(args.model)
    result = cluster_model(cat, args.model, params)
    sizes = sorted(result.cluster_sizes().values(), reverse=True)
    print(f"{args.model}: {result.n_clusters} clusters, {result.n_noise} noise of {len(data.names)} "
          f"materials; largest clusters {sizes[:5]}; {json.dumps(params.validate().relevant())}")
    if args.out:
        path = write_csv_atomic(args.out, labels_table(data, result, params.validate()))
        print(f"labels written to {path}", file=sys.stderr)
    return 0
