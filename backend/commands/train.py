"""``train``, ``sweep`` and ``encode``: the autoencoder from the command line (``encode
--pretrained`` and ``train --init-from pretrained``: the encoder shipped with bandscape).

Every flag's default is :class:`~backend.autoencoder.config.TrainConfig`'s (one source of truth),
except the window: by default the images' own (their folder's ``images.json`` or its name
``train_{W}eV``, :mod:`backend.data.image_window`); a window that disagrees with the images' is
refused, and where theirs is not known ``--window`` must say it.
"""

from __future__ import annotations

import sys
import time

from backend.autoencoder.config import (
    ARCH_NAMES,
    AUTO,
    CHANNELS,
    CLUSTER_LOSSES,
    DEVICES,
    LATENTS,
    OBJECTIVES,
    PRETRAINED,
    SCRATCH_CHANNELS,
    STUDY_RECIPE,
    TRUNK_FIELDS,
    VIEWS,
    TrainConfig,
    describe_trunk,
    paper_grid,
    trunk_mismatch,
)
from backend.commands import add_command, add_data_arg
from backend.data.image_window import check_window, images_window
from backend.data.model_ids import model_paths
from backend.errors import ParameterError
from backend.progress import Cancelled, TqdmProgress

WINDOW_HELP = ("energy window of the images, ±eV (default: the images' own, from their folder's images.json or a "
               "folder name train_{W}eV; required when neither says it); another than the images' is refused")


def add_train_args(p, grid: bool = False) -> None:
    """The flags of one training run (shared by ``train``, ``sweep`` and ``jobs submit``); with
    ``grid`` the caller adds the repeatable grid flags (arch, latent, epochs, split, window)."""
    d = TrainConfig()
    p.add_argument("--images", required=True,
                   help="folder of training images (square PNGs, black band lines on white, e.g. "
                        "ROOT/images/train_1eV; resized to --image-size)")
    add_data_arg(p, old_out=True, help="data root to write the model into")
    if not grid:
        p.add_argument("--arch", choices=ARCH_NAMES, default=d.arch, help="encoder architecture")
        p.add_argument("--latent", type=int, choices=LATENTS, default=d.latent,
                       help="latent channels (the fingerprint is (image size/32)^2 x latent numbers)")
        p.add_argument("--epochs", type=int, default=d.epochs, help="pre-training epochs")
        p.add_argument("--split", type=float, default=d.split, help="validation fraction in [0, 1)")
        p.add_argument("--window", type=float, default=None, help=WINDOW_HELP)
    p.add_argument("--image-size", type=int, default=d.image_size,
                   help=f"pixels, a multiple of 32 (the study used {STUDY_RECIPE['image_size']})")
    p.add_argument("--channels", type=int, choices=CHANNELS, default=None,
                   help="the trunk's base width (torchvision's ResNets: 64; half of it costs a quarter) (default: "
                        f"the shipped encoder's when the run starts from it, else {SCRATCH_CHANNELS})")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (split, order, noise, weights)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="images per batch")
    p.add_argument("--line-width", type=float, default=d.line_width, help="line width of the images, pt (recorded)")
    p.add_argument("--device", choices=DEVICES, default=d.device,
                   help="where to train (auto: CUDA, else MPS, else CPU)")
    p.add_argument("--max-lr", type=float, default=d.max_lr, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--objective", choices=OBJECTIVES, default=d.objective,
                   help="contrastive: two views of each image (--views) should match (NT-Xent); reconstruction: "
                        "the study's denoising autoencoder (BCE)")
    p.add_argument("--temperature", type=float, default=d.temperature, help="NT-Xent temperature (contrastive)")
    p.add_argument("--views", choices=VIEWS, default=d.views,
                   help="what two contrastive views may differ by: lattice (the demo generator's factors: large "
                        "Fermi-level shift, bandwidth stretch, E->-E) or physical (for E_F-referenced DFT plots: "
                        "E_F known to 0.03 eV, k-path reversed and its segments stretched)")
    p.add_argument("--cluster-loss", choices=CLUSTER_LOSSES, default=d.cluster_loss,
                   help="clustering fine-tuning after pre-training: wcss (joint K-Means loss), dec, idec")
    p.add_argument("--clusters", type=int, default=d.clusters,
                   help="k for --cluster-loss (default: none; required by it)")
    p.add_argument("--cluster-epochs", type=int, default=d.cluster_epochs, help="fine-tuning epochs")
    p.add_argument("--cluster-weight", type=float, default=d.cluster_weight,
                   help="weight of the clustering term next to the pre-training loss (wcss, idec)")
    p.add_argument("--init-from", default=AUTO, metavar="MODEL_ID",
                   help="'pretrained': train --epochs on the images from the encoder shipped with bandscape (its "
                        f"trunk: {describe_trunk()}); 'none': from "
                        "scratch; or a trained model of the data root to fine-tune with --cluster-loss. Default "
                        "'auto': 'pretrained' when the other flags ask for its trunk, else 'none'"
                        + (" (a grid: 'none', its models compare like with like)" if grid else ""))
    p.add_argument("--overwrite", action="store_true", help="replace an existing model of the same id")


def images_windows(args, asked: list[float] | None) -> list[float]:
    """The window(s) to train: those asked (each checked against the images'), else the images'
    own. Prints a note when the images' window is not known; refuses to guess one."""
    found = images_window(args.images)
    if not asked:
        if not found.known:
            raise ParameterError(f"window: the window of the images in {args.images} is not known ({found.source}): "
                                 "pass --window W (the ±W eV the images were drawn for)")
        return [found.window]
    note = check_window(args.images, asked, shown=str(args.images))
    if note:
        print(f"note: {note}", file=sys.stderr)
    return asked


def init_from_arg(args, grid: bool = False) -> str:
    """``--init-from`` as a TrainConfig field: 'none' is '' (from scratch), and a grid's 'auto' too."""
    value = getattr(args, "init_from", AUTO)
    return "" if value == "none" or (grid and value == AUTO) else value


def init_note(args, cfg: TrainConfig) -> str | None:
    """What ``--init-from auto`` chose, for the user (None when the flag named a choice)."""
    if getattr(args, "init_from", AUTO) != AUTO:
        return None
    if cfg.init_from == PRETRAINED:
        return "starting from the encoder shipped with bandscape (--init-from none trains from scratch)"
    why = trunk_mismatch({k: getattr(args, k, None) for k in TRUNK_FIELDS})
    return f"training from scratch: the shipped encoder's trunk differs in {'; '.join(why)}"


def config_from_args(args, grid: bool = False, **override):
    fields = dict(image_size=args.image_size, channels=args.channels, seed=args.seed, batch_size=args.batch_size,
                  line_width=args.line_width, device=args.device, max_lr=args.max_lr, objective=args.objective,
                  temperature=args.temperature, views=args.views, cluster_loss=args.cluster_loss,
                  clusters=args.clusters,
                  cluster_epochs=args.cluster_epochs, cluster_weight=args.cluster_weight,
                  init_from=init_from_arg(args, grid))
    for name in ("arch", "latent", "epochs", "split", "window"):
        value = getattr(args, name, None)
        if value is not None and not isinstance(value, list):  # sweep's repeatable flags are its grid
            fields[name] = value
    fields.update(override)
    return TrainConfig(**fields).validate()


def register(sub) -> None:
    p = add_command(sub, "train", "train one autoencoder and write its fingerprints and UMAP")
    add_train_args(p)
    p.set_defaults(handler=cmd_train)

    p = add_command(sub, "sweep", "train a grid of models (resumable: finished models are skipped)")
    add_train_args(p, grid=True)
    p.add_argument("--grid", default="paper", choices=("paper",), help="the study's 216 configurations")
    p.add_argument("--window", type=float, action="append",
                   help="restrict to this window (repeatable; the images show one, so at most one) "
                        "(default: the images' own, as for train)")
    p.add_argument("--arch", action="append", choices=ARCH_NAMES, help="restrict (repeatable) (default: every one)")
    p.add_argument("--latent", type=int, action="append", choices=LATENTS,
                   help="restrict (repeatable) (default: every one)")
    p.add_argument("--epochs", type=int, action="append", help="restrict (repeatable) (default: every one of the grid)")
    p.add_argument("--split", type=float, action="append",
                   help="restrict (repeatable) (default: every one of the grid)")
    p.set_defaults(handler=cmd_sweep)

    p = add_command(sub, "encode", "re-encode images with a trained model, or the pretrained encoder (fingerprints + UMAP)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="model id (see `models`)")
    which.add_argument("--pretrained", action="store_true",
                       help="the pretrained band encoder shipped with bandscape: no training; writes a model "
                            "tagged 'pretrained' into the data root (needs --images)")
    p.add_argument("--images", help="folder of training images (default: the one the model was trained on)")
    p.add_argument("--window", type=float, default=None, help=WINDOW_HELP + " (--pretrained)")
    add_data_arg(p, old_out=True, help="data root holding models/{id}.pt")
    p.add_argument("--device", choices=DEVICES, default="auto", help="where to encode")
    p.set_defaults(handler=cmd_encode)

    p = add_command(sub, "part-maps", "a map of each part of a two-part fingerprint (band shapes; what sits at E_F)",
                    description="Writes a model {ID}_shape-part and {ID}_fermi-part: the columns of one encoder of a "
                                "two-part (physical views) model's fingerprint, with a UMAP of their own. The shape "
                                "part groups band shapes whatever the filling, the fermi part what sits at E_F. The "
                                "explorer finds them by id; evaluate and quality take them where --models names ids "
                                "('id=*-part'). Training or re-encoding the model removes them.")
    p.add_argument("--model", required=True, help="model id of a two-part model (see `models`)")
    add_data_arg(p, old_out=True, help="data root holding the model")
    p.set_defaults(handler=cmd_part_maps)


def _bar(desc, unit):
    return TqdmProgress(desc=desc, unit=unit)


def cmd_train(args) -> int:
    from backend.autoencoder.training import train_model  # torch: in the handler, so --help stays fast

    (window,) = images_windows(args, [args.window] if args.window is not None else None)
    cfg = config_from_args(args, window=window)
    note = init_note(args, cfg)
    if note:
        print(f"note: {note}", file=sys.stderr)
    with _bar(cfg.model_id, "epoch") as bar:
        result = train_model(cfg, args.images, args.data, progress=bar, overwrite=args.overwrite)
    last = result.history[-1]
    print(f"{result.model_id}: {len(result.history)} epochs in {result.wall_time_s:.1f} s on {result.device}; "
          f"train loss {last['train_loss']:.4f}" + (f", val loss {last['val_loss']:.4f}" if last["val_loss"] is not None else ""))
    print(f"written under {args.data}: {', '.join(sorted(result.paths))}")
    return 0


def cmd_encode(args) -> int:
    from backend.autoencoder.encoding import encode_model  # torch: in the handler

    if args.pretrained:
        return _encode_pretrained(args)
    with _bar(f"encode {args.model}", "step") as bar:
        n = encode_model(args.model, args.images, args.data, progress=bar, device=args.device)
    print(f"{args.model}: {n} materials encoded; fingerprints and embedding rewritten under {args.data}")
    return 0


def cmd_part_maps(args) -> int:
    from backend.autoencoder.parts import write_part_maps  # umap: in the handler

    with _bar(f"part maps of {args.model}", "part") as bar:
        ids = write_part_maps(args.data, args.model, progress=bar)
    print(f"written under {args.data}: {', '.join(ids)}")
    return 0


def _encode_pretrained(args) -> int:
    from backend.autoencoder.pretrained import encode_pretrained  # torch: in the handler

    if not args.images:
        raise ParameterError("encode --pretrained needs --images FOLDER (the training images to encode)")
    with _bar("encode pretrained", "step") as bar:
        model_id = encode_pretrained(args.images, args.data, window=args.window, device=args.device, progress=bar)
    print(f"{model_id}: the pretrained encoder's fingerprints and embedding written under {args.data}")
    return 0


def cmd_sweep(args) -> int:
    from backend.autoencoder.training import train_model  # torch: in the handler

    args.window = images_windows(args, args.window)
    restrict = {k: getattr(args, k) for k in ("arch", "latent", "window", "epochs", "split") if getattr(args, k)}
    base = config_from_args(args, grid=True)
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
