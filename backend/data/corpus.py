"""A pre-training corpus: many DFT-like band structures as small training images, in memory.

    corpus = build_corpus(20000, seed=1000, jobs=2)
    corpus.ink        # (n, 1, 64, 64) uint8 ink masks, as load_image_folder gives them
    corpus.windows    # (n,) the energy window of each image (1, 2 or 3 eV)

The materials come from :mod:`backend.data.dftlike` (family set ``demo``, seeds from 1000 on, so
none of the demo's seed-0 materials is in it; never the ``holdout`` set, which is the check on data
a recipe was not designed from). Each material is drawn in one window picked at random from
``windows`` (deterministic in seed and index), so one encoder sees every window.

An image is made exactly as a user's goes into training, without the files: the 224 px study
image (:func:`backend.data.bands.render_training_image`), box-resampled to ``size`` and binarised
at 0.8 (:func:`backend.autoencoder.images.load_image_folder` on a folder of such PNGs). The
drawing keeps one Matplotlib figure per worker process and reads its pixels from the canvas
instead of a PNG round trip (the same pixels; tests/test_pretrained.py), about twice as fast.
Torch-free: the web app may import it.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

# the bands drawn by the one function render_training_image draws them with
from backend.data.bands import BandData, _plot_bands
from backend.data.dftlike import FAMILY_SETS, make_material
from backend.errors import ParameterError

#: the seeds of a corpus start here: the demo roots are seed 0 (and small seeds in tests)
CORPUS_SEED = 1000
CORPUS_WINDOWS = (1.0, 2.0, 3.0)
STUDY_SIZE = 224
BINARY_THRESHOLD = 0.8


@dataclass
class Corpus:
    """``n`` training images of DFT-like materials and what each one is."""

    names: list
    windows: np.ndarray       # (n,) eV
    ink: np.ndarray           # (n, 1, size, size) uint8 {0, 1}
    labels: pd.DataFrame      # the generator's labels, one row per image, plus ``window``


class _Canvas:
    """One 224 px figure of a worker process, redrawn for every material."""

    def __init__(self, size: int = STUDY_SIZE):
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # matplotlib: only where images are drawn
        from matplotlib.figure import Figure  # (same reason)

        self.fig = Figure(figsize=(size / 100, size / 100), dpi=100)
        self.canvas = FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_axis_off()

    def grey(self, bd: BandData, window: float, line_width: float = 1.0) -> np.ndarray:
        """The training image of ``bd`` as :func:`render_training_image` draws it, before binarising."""
        for line in list(self.ax.lines):
            line.remove()
        _plot_bands(self.ax, bd, window, "black", line_width)
        self.canvas.draw()
        rgba = np.asarray(self.canvas.buffer_rgba())
        return np.asarray(Image.fromarray(rgba[..., :3].copy()).convert("L"))


_canvas = None


def training_ink(bd: BandData, window: float, size: int = 64) -> np.ndarray:
    """(size, size) uint8 ink mask {0, 1} of ``bd`` in ±``window`` eV: the study's 224 px image,
    box-resampled and binarised as a folder of them is loaded for training."""
    global _canvas
    if _canvas is None:
        _canvas = _Canvas()
    white = np.where(_canvas.grey(bd, window) / 255.0 < BINARY_THRESHOLD, 0, 255).astype(np.uint8)
    if size != STUDY_SIZE:
        white = np.asarray(Image.fromarray(white).resize((size, size), Image.Resampling.BOX))
    return (white.astype(np.float32) / 255.0 < BINARY_THRESHOLD).astype(np.uint8)


def corpus_window(seed: int, index: int, windows=CORPUS_WINDOWS) -> float:
    """The window of material ``index`` of a corpus: one of ``windows``, at random, reproducibly."""
    return float(windows[int(np.random.default_rng([seed, index, 64]).integers(len(windows)))])


def _one(args) -> tuple[np.ndarray, dict]:
    index, family, seed, windows, size = args
    m = make_material(index, family=family, seed=seed, family_set="demo")
    window = corpus_window(seed, index, windows)
    return training_ink(m.band_data, window, size), dict(m.labels, window=window)


def build_corpus(n: int, *, seed: int = CORPUS_SEED, windows=CORPUS_WINDOWS, size: int = 64,
                 jobs: int | None = None, progress=None) -> Corpus:
    """``n`` materials of the ``demo`` family set (the families in turn, as :func:`dftlike.generate`),
    each drawn in a random one of ``windows`` at ``size`` px, in ``jobs`` processes (default: all
    cores). ``progress(i, n)`` after each material."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 10:
        raise ParameterError(f"n must be an integer >= 10 (materials in the corpus), got {n!r}")
    if seed < CORPUS_SEED:
        raise ParameterError(f"seed must be >= {CORPUS_SEED}: smaller seeds make the demo's and the tests' materials")
    windows = tuple(float(w) for w in windows)
    if not windows or min(windows) <= 0:
        raise ParameterError(f"windows must be positive energies (eV), got {windows}")
    families = FAMILY_SETS["demo"]
    tasks = [(i, families[i % len(families)], seed, windows, size) for i in range(n)]
    ink = np.zeros((n, 1, size, size), dtype=np.uint8)
    rows = []
    with ProcessPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        for i, (img, labels) in enumerate(pool.map(_one, tasks, chunksize=64)):
            ink[i, 0] = img
            rows.append(labels)
            if progress:
                progress(i + 1, n)
    labels = pd.DataFrame(rows)
    return Corpus(names=list(labels["material"]), windows=labels["window"].to_numpy(float), ink=ink, labels=labels)
