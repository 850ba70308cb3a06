"""``neighbours``, ``place``, ``consensus`` and ``subset``: finding and comparing materials from the command line."""

from __future__ import annotations

import json
import sys
import time

from backend.commands import add_command, add_data_arg
from backend.commands.explore import add_cluster_args, add_metric_args, params_from_args
from backend.cluster.params import default_model
from backend.data.catalog import Catalog
from backend.data.importing import read_paths
from backend.discover.additions import keep_placements
from backend.discover.consensus import STABLE, model_consensus
from backend.discover.neighbours import model_neighbours
from backend.discover.place import place_materials
from backend.discover.subset import model_subset
from backend.evaluate.select import select_models
from backend.fileio import write_csv_atomic


def register(sub) -> None:
    p = add_command(sub, "neighbours", "the k nearest materials of one material in a model's fingerprint space")
    add_data_arg(p)
    p.add_argument("--model", required=True, help="model id (see `models`)")
    p.add_argument("--material", required=True, help="material name, e.g. Ac2HgGe")
    p.add_argument("--k", type=int, default=10, help="how many neighbours")
    add_metric_args(p)
    p.add_argument("--out", help="also write the table as CSV here (default: print only)")
    p.set_defaults(handler=cmd_neighbours)

    p = add_command(sub, "place", "new materials on a model's map: nearest materials, cluster, position",
                    description="Place new materials (VASP, QE or pymatgen band files, band plots) on a model's "
                                "map: their nearest materials in fingerprint space, a cluster by their vote, a map "
                                "position from them.")
    add_data_arg(p)
    p.add_argument("--model", default=None, help="model id (see `models`; default: the root's default model)")
    p.add_argument("files", nargs="+", metavar="FILES",
                   help="EIGENVAL (+ KPOINTS, E_F file/OUTCAR/DOSCAR beside it), vasprun.xml, QE bands, pymatgen "
                        "BandStructure JSON, band-plot images, folders or zips of them")
    p.add_argument("--fermi", type=float, default=None,
                   help="E_F in eV for inputs that do not carry one (default: from each input or the files beside it)")
    p.add_argument("--k", type=int, default=10, help="neighbours listed (and voting on the cluster)")
    add_cluster_args(p)
    p.add_argument("--keep", action="store_true",
                   help="keep the placed materials in the root's additions/ (the explorer draws them)")
    p.add_argument("--on-conflict", choices=("fail", "replace", "keep-both"), default="fail",
                   help="with --keep, a name placed on the model before")
    p.add_argument("--json", action="store_true", help="print the placements as JSON")
    p.set_defaults(handler=cmd_place)

    p = add_command(sub, "consensus", "consensus clusters and per-material stability across models, one HDBSCAN cell")
    add_data_arg(p)
    p.add_argument("--models", default="window=1",
                   help="model filter as for `evaluate` (window=1 | window=1,arch=50 | latent=2|3 | id=resnet50_*)")
    add_cluster_args(p, hdbscan_only=True)
    p.add_argument("--out", help="write material, consensus_cluster, stability, stable, noise_share as CSV here "
                                 "(default: print the summary only)")
    p.set_defaults(handler=cmd_consensus)

    p = add_command(sub, "subset", "a representative subset: N materials covering the clusters in proportion")
    add_data_arg(p)
    p.add_argument("--model", required=True, help="model id (see `models`)")
    p.add_argument("--size", type=int, required=True, help="how many materials (N)")
    add_cluster_args(p)
    p.add_argument("--out", help="write the chosen materials as CSV here (default: print only)")
    p.add_argument("--balance-out", help="write the cluster balance before/after as CSV here (default: print only)")
    p.set_defaults(handler=cmd_subset)


def cmd_neighbours(args) -> int:
    table = model_neighbours(Catalog(args.data), args.model, args.material, k=args.k, metric=args.metric, p=args.p)
    metric = f"Minkowski p={args.p:g}" if args.metric == "minkowski" else "Euclidean"
    print(f"{args.k} nearest of {args.material} in {args.model} ({metric}):")
    print(table[["rank", "material", "distance"]].to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    if args.out:
        print(f"written to {write_csv_atomic(args.out, table.drop(columns='index'))}", file=sys.stderr)
    return 0


def cmd_place(args) -> int:
    cat = Catalog(args.data)
    model_id = args.model or default_model(cat)
    items, problems = read_paths(args.files, fermi=args.fermi)
    problems = [(pr.source, pr.message) for pr in problems]
    if items:
        placed, more = place_materials(cat.root, model_id, items, params=params_from_args(args), k=args.k)
        problems += more
    else:
        placed = []
    if args.keep and placed:
        keep_placements(cat.root, model_id, [(p.item, p) for p in placed], map_names=cat.load(model_id).names,
                        on_conflict=args.on_conflict)
    if args.json:
        print(json.dumps({"model_id": model_id, "placed": [p.as_dict() for p in placed],
                          "problems": [{"source": s, "message": m} for s, m in problems]}, indent=1))
    else:
        for p in placed:
            cl = "noise" if p.cluster < 0 else f"cluster {p.cluster}"
            print(f"{p.name} ({p.source}): {cl}, confidence {p.confidence:.0%} ({p.cluster_rule}); "
                  f"map position ({p.xy[0]:.3f}, {p.xy[1]:.3f}), {p.position_rule}")
            for n in p.neighbours:
                print(f"  {n['rank']:>3}  {n['material']:<24} distance {n['distance']:.6g}  "
                      f"(closest {n['percentile']:.2g}% of the model's pairs)  cluster {n['cluster']}")
        print(f"{len(placed)} of {len(placed) + len(problems)} inputs placed on {model_id}"
              + (" and kept in additions/" if args.keep and placed else ""))
    for source, message in problems:
        print(f"skipped: {message}" if message.startswith(source) else f"skipped {source}: {message}", file=sys.stderr)
    return 0 if placed else 1


def cmd_consensus(args) -> int:
    cat = Catalog(args.data)
    ids = select_models(cat, args.models)
    params = params_from_args(args)
    t0 = time.perf_counter()
    res = model_consensus(cat, ids, params)
    c = res.counts()
    print(f"consensus of {len(ids)} models ({args.models}) at {params.validate().relevant()}: "
          f"{res.n_clusters} clusters, {res.n_noise} noise of {c['materials']} materials; "
          f"{c['stable']} stable (stability >= {STABLE}): {c['stable_in_cluster']} in a cluster, "
          f"{c['stable_noise']} consistently noise ({time.perf_counter() - t0:.2f} s)")
    if args.out:
        print(f"written to {write_csv_atomic(args.out, res.table())}", file=sys.stderr)
    return 0


def cmd_subset(args) -> int:
    table, sub = model_subset(Catalog(args.data), args.model, params_from_args(args), size=args.size)
    b = sub.balance
    print(f"{len(table)} materials of {int(b['size'].sum())} from {len(b)} groups "
          f"({int((b.chosen > 0).sum())} covered); coverage {sub.coverage:.1%} of the materials within the "
          f"median nearest-neighbour distance ({sub.radius:.4g}) of a chosen one")
    for w in sub.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(table[["rank", "material", "cluster", "role"]].to_string(index=False))
    print("balance (cluster -1 = noise): share of the set -> share of the subset")
    print(b.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.out:
        print(f"written to {write_csv_atomic(args.out, table)}", file=sys.stderr)
    if args.balance_out:
        print(f"balance written to {write_csv_atomic(args.balance_out, b)}", file=sys.stderr)
    return 0
