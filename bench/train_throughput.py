"""Training throughput: our loop vs the naive one, and what the full sweep costs on a GPU.

    python bench/train_throughput.py --images DIR [--steps 6] [--batch-size 16]

DIR is a folder of 224x224 training images (e.g. from ``python -m backend import-plots``).
Each variant runs in its own process (so its peak memory is its own): ``ours`` = images held in
memory as one uint8 tensor, channels_last, bf16 autocast where the CPU has bf16 instructions;
``naive`` = fp32, every image decoded from PNG by a DataLoader each step, as the published
notebook. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

H100_BF16_DENSE = 989e12   # FLOP/s, SXM, dense
UTILISATION = 0.40
N_MATERIALS = 546


def flops_per_image(arch: str, latent: int = 3, size: int = 224) -> float:
    """Forward FLOPs of one image (FlopCounterMode counts a multiply-add as 2 FLOPs)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from backend.autoencoder.model import Autoencoder

    model = Autoencoder(arch, latent, size).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 1, size, size))
    return float(counter.get_total_flops())


def run_variant(variant: str, arch: str, images: str, steps: int, batch: int) -> dict:
    import torch
    from PIL import Image
    from torch import nn

    from backend.autoencoder.device import autocast_dtype
    from backend.autoencoder.images import list_images, load_image_folder
    from backend.autoencoder.model import Autoencoder
    from backend.autoencoder.noise import localized_noise

    torch.manual_seed(0)
    device = torch.device("cpu")
    model = Autoencoder(arch, 3, 224)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    loss_fn = nn.BCEWithLogitsLoss()
    g = torch.Generator().manual_seed(0)
    if variant == "ours":
        from backend.autoencoder.device import keep_freed_memory

        keep_freed_memory()
        model = model.to(memory_format=torch.channels_last)
        _, ink = load_image_folder(images, 224)
        amp = autocast_dtype(device)

        def batches():
            while True:
                idx = torch.randperm(len(ink), generator=g)
                for s in range(0, len(idx) - batch + 1, batch):
                    yield ink[idx[s:s + batch]].float().contiguous(memory_format=torch.channels_last)
    else:
        files = list_images(images)
        amp = None

        class PNGDataset(torch.utils.data.Dataset):
            def __len__(self):
                return len(files)

            def __getitem__(self, i):
                with Image.open(files[i]) as im:
                    arr = torch.from_numpy(__import__("numpy").asarray(im.convert("L"), dtype="float32") / 255.0)
                return (arr < 0.8).float()[None]

        loader = torch.utils.data.DataLoader(PNGDataset(), batch_size=batch, shuffle=True, drop_last=True)

        def batches():
            while True:
                yield from loader

    it = batches()

    def step():
        x = next(it)
        noisy, _ = localized_noise(x, g, 0.5)
        with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
            logits = model(noisy)
        loss = loss_fn(logits.float(), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up: allocator, oneDNN kernels
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = time.perf_counter() - t0
    return {"images_per_s": round(steps * batch / elapsed, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "autocast": str(amp)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", required=True)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--arch", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.arch, args.images, args.steps, args.batch_size)))
        return 0

    import torch

    from backend.autoencoder.config import PAPER_GRID
    from backend.autoencoder.device import cpu_has_bf16

    out = {"bench": "train_throughput", "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "torch": torch.__version__, "cpu_bf16": cpu_has_bf16(), "batch_size": args.batch_size,
           "steps": args.steps}
    for arch in ("resnet18", "resnet50"):
        for variant in ("ours", "naive"):
            res = subprocess.run([sys.executable, __file__, "--images", args.images, "--steps", str(args.steps),
                                  "--batch-size", str(args.batch_size), "--variant", variant, "--arch", arch],
                                 capture_output=True, text=True, check=True)
            out[f"{arch}_{variant}"] = json.loads(res.stdout.strip().splitlines()[-1])
        out[f"{arch}_speedup"] = round(out[f"{arch}_ours"]["images_per_s"] / out[f"{arch}_naive"]["images_per_s"], 2)
        fwd = flops_per_image(arch)
        out[f"{arch}_gflop_per_image_forward"] = round(fwd / 1e9, 2)
    # the study's sweep: 216 models, each trained on 546 images for its epochs; one training step
    # of an image costs ~3x its forward pass (forward + backward)
    epochs_per_arch = (len(PAPER_GRID["latent"]) * len(PAPER_GRID["window"]) * len(PAPER_GRID["split"])
                       * sum(PAPER_GRID["epochs"]))
    total = sum(3 * out[f"{a}_gflop_per_image_forward"] * 1e9 * N_MATERIALS * epochs_per_arch
                for a in ("resnet18", "resnet50"))
    out["sweep_216_total_pflop"] = round(total / 1e15, 1)
    out["sweep_216_h100_minutes_at_40pct_bf16"] = round(total / (UTILISATION * H100_BF16_DENSE) / 60, 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
