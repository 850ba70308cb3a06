"""Training time per recipe per epoch on this CPU, through the real training loop.

    python bench/train_recipes.py [--images assets/images/train_3eV] [--image-size 128] [--channels 32] [--epochs 2]

Each recipe (the study's reconstruction, contrastive, and the three clustering fine-tunings on
top of a pre-training) runs ``--epochs`` epochs of its phase on the folder's images with
``fit``, in this process, one after the other; the time per epoch is the median of those epochs.
The fine-tunings are timed on their own phase (their pre-training is the recipe above them).
Prints one JSON line, with the time a demo model costs (the demo's epochs) per recipe.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RECIPES = {
    "reconstruction": dict(objective="reconstruction"),
    "contrastive": dict(objective="contrastive"),
    "reconstruction+wcss": dict(objective="reconstruction", cluster_loss="wcss"),
    "reconstruction+idec": dict(objective="reconstruction", cluster_loss="idec"),
    "contrastive+dec": dict(objective="contrastive", cluster_loss="dec"),
    "contrastive+idec": dict(objective="contrastive", cluster_loss="idec"),
}


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default=str(root / "assets" / "images" / "train_3eV"))
    ap.add_argument("--epochs", type=int, default=2)
    from backend.autoencoder.config import TrainConfig

    defaults = TrainConfig()
    ap.add_argument("--image-size", type=int, default=defaults.image_size, help="default: train's")
    ap.add_argument("--channels", type=int, default=defaults.channels, help="the trunk's width; default: train's")
    ap.add_argument("--batch-size", type=int, default=defaults.batch_size, help="default: train's")
    args = ap.parse_args()

    import torch

    from backend.autoencoder.device import cpu_has_bf16, keep_freed_memory, pick_device
    from backend.autoencoder.images import load_image_folder
    from backend.autoencoder.training import build_model, fit

    torch.set_num_threads(os.cpu_count() or 1)
    keep_freed_memory()
    device = pick_device("cpu")
    names, ink = load_image_folder(args.images, args.image_size)
    out = {}
    for name, recipe in RECIPES.items():
        fine = "cluster_loss" in recipe
        cfg = TrainConfig(image_size=args.image_size, channels=args.channels, batch_size=args.batch_size, split=0.1, epochs=args.epochs,
                          cluster_epochs=args.epochs, clusters=4 if fine else None, **recipe).validate()
        torch.manual_seed(0)
        model = build_model(cfg, device)
        t0 = time.perf_counter()
        history = fit(model, ink, cfg, device=device)
        wall = time.perf_counter() - t0
        phase = "finetune" if fine else "pretrain"
        rows = [h for h in history if h["phase"] == phase]
        per_epoch = statistics.median(len(ink) * (1 - cfg.split) / h["images_per_s"] for h in rows)
        out[name] = {"s_per_epoch": round(per_epoch, 2), "images_per_s": round(statistics.median(
            h["images_per_s"] for h in rows), 1), "wall_s": round(wall, 1)}
    # the demo's models are trained with train's defaults
    demo = {k: getattr(defaults, k) for k in ("objective", "image_size", "channels", "epochs", "batch_size", "max_lr", "split",
                                               "cluster_loss", "cluster_epochs")}
    pre = "contrastive" if demo["objective"] == "contrastive" else "reconstruction"
    demo_s = out[pre]["s_per_epoch"] * demo["epochs"]
    if demo.get("cluster_loss", "none") != "none":
        demo_s += out[f"{pre}+{demo['cluster_loss']}"]["s_per_epoch"] * demo["cluster_epochs"]
    print(json.dumps({
        "bench": "train_recipes", "images": len(ink), "image_size": args.image_size, "channels": args.channels,
        "batch_size": args.batch_size,
        "epochs_timed": args.epochs, "recipes": out, "demo_recipe": demo, "demo_model_training_s": round(demo_s, 1),
        "target_demo_model_s": 600, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "cpu_bf16": cpu_has_bf16(), "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
