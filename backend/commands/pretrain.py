"""``pretrain``: rebuild the pretrained band encoder shipped with bandscape (corpus + training).

``python -m backend pretrain --out backend/autoencoder/weights`` builds the corpus of DFT-like band
structures (:mod:`backend.data.corpus`) and trains the encoder on it
(:mod:`backend.autoencoder.pretrained`); about 15 minutes on 2 idle CPU cores with bf16, the defaults.
Progress goes out as plain lines (the run is long and usually logged to a file).
"""

from __future__ import annotations

import sys
import time

from backend.autoencoder.config import CHANNELS, PRETRAINED_DIR, VIEWS
from backend.commands import add_command
from backend.data.corpus import CORPUS_SEED


def register(sub) -> None:
    p = add_command(sub, "pretrain", "rebuild the pretrained band encoder (DFT-like corpus + contrastive training)",
                    description="Build a corpus of DFT-like band structures (demo lattices, 1/2/3 eV windows) and "
                                "train the pretrained band encoder on it; writes band_encoder.pt (fp16) and "
                                "band_encoder.json into --out.")
    p.add_argument("--out", default=str(PRETRAINED_DIR), metavar="DIR", help="folder to write the encoder into")
    p.add_argument("--n", type=int, default=None, help="materials in the corpus (default: the shipped recipe's, 20000)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the shipped recipe's)")
    p.add_argument("--seed", type=int, default=CORPUS_SEED, help="corpus seed (>= 1000: the demo is seed 0)")
    p.add_argument("--channels", type=int, choices=CHANNELS, default=None,
                   help="base width of the ResNet-18 trunk (default: the shipped recipe's, 16)")
    p.add_argument("--image-size", type=int, default=None,
                   help="pixels of the corpus's images and the encoder's input (default: the shipped recipe's)")
    p.add_argument("--views", choices=VIEWS, default=None,
                   help="contrastive views (default: the shipped recipe's, physical: train's two-part default; a "
                        "one-part set costs half the compute)")
    p.add_argument("--jobs", type=int, default=None, help="processes building the corpus (default: every core)")
    p.set_defaults(handler=cmd_pretrain)


class _Lines:
    """Progress as plain lines: the corpus every tenth, training every epoch."""

    def __init__(self):
        self.t0 = time.monotonic()

    def __call__(self, done, total, stage="", **info):
        stamp = f"[{time.monotonic() - self.t0:7.0f} s]"
        if stage == "corpus" and (done == total or done % max(1, total // 10) == 0):
            print(f"{stamp} corpus {done}/{total}", flush=True)
        elif stage == "train":
            print(f"{stamp} epoch {done}/{total}: train loss {info.get('train_loss', float('nan')):.4f}, "
                  f"val loss {info.get('val_loss', float('nan')):.4f}, {info.get('images_per_s', 0):.0f} images/s",
                  flush=True)


def cmd_pretrain(args) -> int:
    from backend.autoencoder.pretrained import PRETRAIN_N, pretrain_encoder  # torch: in the handler

    extra = {k: v for k, v in (("channels", args.channels), ("views", args.views),
                                            ("image_size", args.image_size)) if v is not None}
    meta = pretrain_encoder(args.out, n=args.n or PRETRAIN_N, epochs=args.epochs, seed=args.seed, jobs=args.jobs,
                            progress=_Lines(), **extra)
    t = meta["timing"]
    print(f"pretrain: {meta['corpus']['n']} materials in {t['corpus_build_s']:.0f} s, trained in {t['train_s']:.0f} s "
          f"({t['images_per_s']} images/s); {meta['weights_bytes'] / 1e6:.1f} MB written to {args.out}",
          file=sys.stdout)
    return 0
