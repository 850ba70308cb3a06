"""``quality``: what each model's fingerprints know, next to baselines from the same images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from backend.commands import add_command, add_data_arg
from backend.data.catalog import Catalog
from backend.evaluate.select import select_models
from backend.errors import ParameterError
from backend.fileio import write_csv_atomic
from backend.progress import TqdmProgress
from backend.quality import QualitySpec, quality_report

#: the printed table's columns: (column, header, format)
LABELLED = (("probe_acc", "probe", "{:.3f}"), ("probe_std", "±", "{:.3f}"), ("probe_nmi", "pr NMI", "{:.3f}"),
            ("train_acc", "train", "{:.3f}"),
            ("kmeans_nmi", "KM NMI", "{:.3f}"),
            ("kmeans_ari", "KM ARI", "{:.3f}"), ("kmeans_acc", "KM acc", "{:.3f}"), ("hdbscan_nmi", "HDB NMI", "{:.3f}"),
            ("hdbscan_clusters", "HDB k", "{:.0f}"), ("knn_agreement", "kNN", "{:.3f}"))
UNLABELLED = (("trustworthiness", "trust", "{:.3f}"), ("effective_dim", "eff.dim", "{:.1f}"),
              ("distinct", "distinct", "{:.2f}"), ("recon_loss", "recon", "{:.4f}"))


def register(sub) -> None:
    d = QualitySpec()
    p = add_command(
        sub, "quality", "fingerprint quality: what each model's fingerprints know, against baselines",
        description="Score what each model's fingerprints know. With --labels (a column of the root's labels.csv): "
                    "5-fold stratified linear-probe accuracy, K-Means(k = classes) and HDBSCAN NMI/ARI/accuracy, "
                    "k-nearest-neighbour label agreement; always: trustworthiness of the 2-D map, effective "
                    "dimension, held-out reconstruction loss. Every model is read against PCA of the raw pixels, the "
                    "model's own network untrained (its architecture, size, width and parts; random weights), the "
                    "unencoded UMAP, majority/random classifiers and (with labels) "
                    "a small CNN trained with the labels on the same folds (as many epochs as the models, learning rate "
                    "picked on an inner split; its training accuracy shown next to its held-out one). The physics "
                    "section (on by default) scores every feature set against physics descriptors read from the root's "
                    "band data (else its display plots) by 5-fold 10-NN regression R^2, and against every label "
                    "column of labels.csv by linear-probe accuracy, with the majority class and the ceiling. Rows are "
                    "cached on disk, keyed by their inputs and the code that computes them.")
    add_data_arg(p)
    p.add_argument("--models", default="", help="filter as for evaluate, e.g. 'window=1' or 'id=*contrastive*' "
                                                "(default: every encoded model)")
    p.add_argument("--labels", metavar="COLUMN",
                   help="a column of the root's labels.csv, e.g. family (default: none; the label-free scores only)")
    p.add_argument("--folds", type=int, default=d.n_folds, help="stratified folds of the probe and the ceiling")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the folds and the baselines")
    p.add_argument("--no-ceiling", action="store_true", help="skip the supervised CNN (the slowest baseline)")
    p.add_argument("--no-baselines", action="store_true", help="models only")
    p.add_argument("--physics", action=argparse.BooleanOptionalAction, default=True,
                   help="the physics section: descriptors' R^2 and every label column's accuracy (default: on)")
    p.add_argument("--cache", default=None, help="cache folder (default: $BANDSCAPE_CACHE, else ~/.cache/bandscape)")
    p.add_argument("--no-cache", action="store_true", help="recompute every row")
    p.add_argument("--out", help="write quality.csv (and physics.csv) into this folder (default: print only)")
    p.set_defaults(handler=cmd_quality)


def fit_name(name, width: int) -> str:
    """A feature set's name in ``width`` characters: a long model id keeps its start and its end
    (the suffixes that tell models of one setting apart: ``..._pretrained-tuned_shape-part``)."""
    name = str(name)
    if len(name) <= width:
        return name
    tail = min(32, width // 2)
    return name[:width - tail - 1] + "…" + name[-tail:]


def format_table(table, labelled: bool) -> str:
    """The report as aligned text: one line per feature set, grouped by window."""
    cols = (LABELLED if labelled else ()) + UNLABELLED
    cols = tuple(c for c in cols if c[0] in table.columns and table[c[0]].notna().any())
    name_w = max(12, min(64, int(table.feature_set.str.len().max())))
    head = f"{'feature set':<{name_w}}  {'kind':<8} {'dim':>4} " + " ".join(f"{h:>8}" for _, h, _ in cols)
    lines = []
    for window, group in table.groupby("window", sort=True, dropna=False):
        lines += ["", f"window {window} eV", head, "-" * len(head)]
        for _, r in group.iterrows():
            cells = []
            for c, _, fmt in cols:
                v = r[c]
                cells.append(f"{fmt.format(v):>8}" if v is not None and not (isinstance(v, float) and np.isnan(v))
                             else f"{'–':>8}")
            dim = "" if r["dim"] is None or np.isnan(r["dim"]) else f"{int(r['dim'])}"
            lines.append(f"{fit_name(r.feature_set, name_w):<{name_w}}  {r.kind:<8} {dim:>4} " + " ".join(cells))
    return "\n".join(lines[1:])


def format_meta(meta: dict) -> str:
    """What the rows were computed with: the HDBSCAN cell and each ceiling's training."""
    cell = ", ".join(f"{k}={v}" for k, v in meta.get("hdbscan_cell", {}).items())
    lines = [f"\nHDBSCAN at the explorer's opening cell: {cell}"]
    for where, c in meta.get("ceiling", {}).items():
        scores = ", ".join(f"{lr}: {acc:.3f}" for lr, acc in c["lr_scores"].items())
        lines.append(f"ceiling, {where}: {c['epochs']} epochs, lr {c['lr']:g} (inner split: {scores}), "
                     f"{c['seconds']:.0f} s to train")
    return "\n".join(lines)


def _cells(values, width: int = 8) -> str:
    return " ".join(f"{v:>{width}.3f}" if v is not None and np.isfinite(v) else f"{'–':>{width}}" for v in values)


def format_physics(physics) -> str:
    """The physics section as text: per window, the descriptors' R^2 and the label columns'
    accuracy, one line per feature set (the ceiling's training accuracy on a line of its own)."""
    lines = ["physics: 5-fold 10-NN regression R^2 of each descriptor (standardised features); "
             "linear-probe accuracy of each label column"]
    for window, w in physics.groupby("window", sort=True, dropna=False):
        for score, title in (("r2", "descriptor R^2"), ("accuracy", "label accuracy")):
            part = w[w.score == score]
            if part.empty:
                continue
            targets = list(dict.fromkeys(part.target))
            name_w = max(24, min(64, int(part.feature_set.str.len().max())))
            cell_w = max(8, max(len(t) for t in targets))
            head = f"{'feature set':<{name_w}} " + " ".join(f"{t:>{cell_w}}" for t in targets)
            lines += ["", f"window {window} eV: {title}", head, "-" * len(head)]
            for name, r in part.groupby("feature_set", sort=False):
                by = r.set_index("target")
                lines.append(f"{fit_name(name, name_w):<{name_w}} " + _cells([by.value.get(t) for t in targets], cell_w))
                if r.train_acc.notna().any():
                    lines.append(f"{'  its training accuracy':<{name_w}} " + _cells([by.train_acc.get(t) for t in targets], cell_w))
    return "\n".join(lines)


def cmd_quality(args) -> int:
    cat = Catalog(args.data)
    spec = QualitySpec(labels=args.labels, n_folds=args.folds, seed=args.seed, ceiling=not args.no_ceiling,
                       baselines=not args.no_baselines, physics=args.physics).validate()
    model_ids, windows = [], []
    if args.models or any(not m.is_unencoded for m in cat.models.values()):
        model_ids = select_models(cat, args.models)
    else:  # a root with images and no models yet: what the baselines know, window by window
        windows = list(cat.train_image_dirs())
        if not windows:
            raise ParameterError(f"no models and no training images (images/train_{{W}}eV) under {cat.root}")
        print(f"no models under {cat.root}: the baselines of windows {', '.join(f'{w:g}' for w in windows)} eV",
              file=sys.stderr)
    print(f"{len(model_ids)} models" + (f", labels: {args.labels}" if args.labels else ", no labels"), file=sys.stderr)
    with TqdmProgress(desc="quality", unit="step") as bar:
        result = quality_report(cat, model_ids, spec, cache_dir=args.cache, progress=bar, use_cache=not args.no_cache,
                                windows=windows)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(format_table(result.table, labelled=bool(args.labels)))
    print(format_meta(result.meta))
    if result.physics is not None:
        print("\n" + format_physics(result.physics))
    if args.out:
        outputs = [("quality.csv", result.table)] + ([("physics.csv", result.physics)] if result.physics is not None else [])
        for name, frame in outputs:
            write_csv_atomic(Path(args.out) / name, frame)
            print(f"written {Path(args.out) / name}", file=sys.stderr)
    print(f"{len(result.table)} rows in {result.timings['total_s']:.1f} s ({result.timings['cached_rows']} from the cache)",
          file=sys.stderr)
    return 0
