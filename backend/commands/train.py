"""``train``, ``encode``, ``sweep`` and ``import-plots``: the autoencoder from the command line."""

from __future__ import annotations

import sys
import time

from backend.autoencoder.config import CLUSTER_LOSSES, DEVICES, OBJECTIVES, TrainConfig, paper_grid
from backend.autoencoder.encoding import encode_model, model_paths
from backend.autoencoder.images import import_plots
from backend.autoencoder.training import train_model
from backend.commands import add_data_arg
from backend.progress import Cancelled, TqdmProgress


def add_train_args(p, grid: bool = False) -> None:
    """The flags of one training run (shared by ``train``, ``sweep`` and ``jobs submit``)."""
    d = TrainConfig()
    p.add_argument("--images", required=True, help="folder of training images (224x224 PNG, black lines on white)")
    add_data_arg(p, old_out=True, help="data root to write the model into (default: $BANDSCAPE_DATA)")
    if not grid:
        p.add_argument("--arch", choices=("resnet18", "resnet50"), default=d.arch)
        p.add_argument("--latent", type=int, choices=(1, 2, 3), default=d.latent)
        p.add_argument("--epochs", type=int, default=d.epochs)
        p.add_argument("--split", type=float, default=d.split, help="validation fraction in [0, 1)")
        p.add_argument("--window", type=float, default=d.window, help="energy window of the images, +-eV")
    p.add_argument("--image-size", type=int, default=d.image_size, help="pixels (multiple of 32; < 224 for quick CPU runs)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--line-width", type=float, default=d.line_width)
    p.add_argument("--device", choices=DEVICES, default=d.device)
    p.add_argument("--max-lr", type=float, default=d.max_lr, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--objective", choices=OBJECTIVES, default=d.objective,
                   help="contrastive (default: views differing by a Fermi-level shift, a bandwidth stretch, E->-E, "
                        "line width and noise should match) or reconstruction (the study's denoising autoencoder)")
    p.add_argument("--temperature", type=float, default=d.temperature, help="NT-Xent temperature (contrastive)")
    p.add_argument("--cluster-loss", choices=CLUSTER_LOSSES, default=d.cluster_loss,
                   help="clustering fine-tuning after pre-training: wcss (joint K-Means loss), dec, idec")
    p.add_argument("--clusters", type=int, default=None, help="k for --cluster-loss")
    p.add_argument("--cluster-epochs", type=int, default=d.cluster_epochs, help="fine-tuning epochs")
    p.add_argument("--cluster-weight", type=float, default=d.cluster_weight,
                   help="weight of the clustering term next to the pre-training loss (wcss, idec)")
    p.add_argument("--init-from", default="", metavar="MODEL_ID",
                   help="fine-tune this trained model of the data root (with --cluster-loss) instead of pre-training")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model of the same id")


def config_from_args(args, **override):
    fields = dict(image_size=args.image_size, seed=args.seed, batch_size=args.batch_size,
                  line_width=args.line_width, device=args.device, max_lr=args.max_lr, objective=args.objective,
                  temperature=args.temperature, cluster_loss=args.cluster_loss, clusters=args.clusters,
                  cluster_epochs=args.cluster_epochs, cluster_weight=args.cluster_weight,
                  init_from=getattr(args, "init_from", ""))
    for name in ("arch", "latent", "epochs", "split", "window"):
        value = getattr(args, name, None)
        if value is not None and not isinstance(value, list):  # sweep's repeatable flags are its grid
            fields[name] = value
    fields.update(override)
    return TrainConfig(**fields).validate()


def register(sub) -> None:
    p = sub.add_parser("train", help="train one autoencoder and write its fingerprints and UMAP")
    add_train_args(p)
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("encode", help="re-encode images with a trained model (fingerprints + UMAP)")
    p.add_argument("--model", required=True)
    p.add_argument("--images", help="folder of training images (default: the one the model was trained on)")
    add_data_arg(p, old_out=True, help="data root holding models/{id}.pt (default: $BANDSCAPE_DATA)")
    p.add_argument("--device", default="auto")
    p.set_defaults(handler=cmd_encode)

    p = sub.add_parser("sweep", help="train a grid of models (resumable: finished models are skipped)")
    add_train_args(p, grid=True)
    p.add_argument("--grid", default="paper", choices=("paper",), help="the study's 216 configurations")
    p.add_argument("--window", type=float, action="append",
                   help="restrict to these windows (repeatable); the images are of one window, so usually one")
    p.add_argument("--arch", action="append", choices=("resnet18", "resnet50"))
    p.add_argument("--latent", type=int, action="append", choices=(1, 2, 3))
    p.add_argument("--epochs", type=int, action="append")
    p.add_argument("--split", type=float, action="append")
    p.set_defaults(handler=cmd_sweep)

    p = sub.add_parser("import-plots", help="training images from published matplotlib band plots")
    p.add_argument("--plots", required=True, help="folder of labelled band-structure PNGs")
    p.add_argument("--out", required=True, help="folder for the 224x224 training images")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--jobs", type=int, default=None)
    p.set_defaults(handler=cmd_import_plots)


def _bar(desc, unit):
    return TqdmProgress(desc=desc, unit=unit)


def cmd_train(args) -> int:
    cfg = config_from_args(args)
    with _bar(cfg.model_id, "epoch") as bar:
        result = train_model(cfg, args.images, args.data, progress=bar, overwrite=args.overwrite)
    last = result.history[-1]
    print(f"{result.model_id}: {len(result.history)} epochs in {result.wall_time_s:.1f} s on {result.device}; "
          f"train loss {last['train_loss']:.4f}" + (f", val loss {last['val_loss']:.4f}" if last["val_loss"] is not None else ""))
    print(f"written under {args.data}: {', '.join(sorted(result.paths))}")
    return 0


def cmd_encode(args) -> int:
    with _bar(f"encode {args.model}", "step") as bar:
        n = encode_model(args.model, args.images, args.data, progress=bar, device=args.device)
    print(f"{args.model}: {n} materials encoded; fingerprints and embedding rewritten under {args.data}")
    return 0


def cmd_sweep(args) -> int:
    restrict = {k: getattr(args, k) for k in ("arch", "latent", "window", "epochs", "split") if getattr(args, k)}
    base = config_from_args(args)
    shared = {k: v for k, v in base.as_dict().items() if k not in restrict and k not in ("window", "epochs", "arch",
                                                                                            "latent", "split")}
    configs = [c.validate() for c in paper_grid(**shared, **restrict)]
    todo = [c for c in configs if args.overwrite or not model_paths(args.data, c.model_id)["embedding"].exists()]
    print(f"sweep: {len(configs)} configurations, {len(configs) - len(todo)} already done, {len(todo)} to train")
    total_epochs = sum(c.epochs for c in todo)
    done_epochs = 0
    t0 = time.perf_counter()
    with _bar("sweep", "epoch") as bar:
        for i, cfg in enumerate(todo, 1):
            def progress(done, total, **info):
                bar(done_epochs + done, total_epochs, model=f"{i}/{len(todo)}",
                    loss=info.get("train_loss", info.get("batch_loss", float("nan"))))
            try:
                train_model(cfg, args.images, args.data, progress=progress, overwrite=args.overwrite)
            except Cancelled:
                print("sweep cancelled", file=sys.stderr)
                return 130
            done_epochs += cfg.epochs
    print(f"sweep: {len(todo)} models trained in {time.perf_counter() - t0:.0f} s")
    return 0


def cmd_import_plots(args) -> int:
    with _bar("import-plots", "image") as bar:
        report = import_plots(args.plots, args.out, args.image_size, args.jobs, progress=bar)
    print(f"{report['written']} training images written to {args.out}")
    for path, reason in report["skipped"].items():
        print(f"skipped {path}: {reason}")
    return 0 if report["written"] else 1
