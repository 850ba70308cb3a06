"""Published band plots as pixels: reading a labelled matplotlib plot and finding its axes frame.

The published data has only display plots (640x480 PNGs: black band lines, a red dashed line at
E_F, grey vertical lines at the high-symmetry points, E - E_F on the y axis over ±W eV). Two
readers build on these helpers: the training-image import (:func:`import_plot`, used by
``import-plots`` and ``import``) and the physics descriptors of a plot
(:mod:`backend.quality.descriptors`). No torch here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from backend.errors import DataError

#: a pixel is ink (a line) when its grey value / 255 is below this, as in the study
BINARY_THRESHOLD = 0.8


def read_plot_rgb(path: str | os.PathLike) -> np.ndarray:
    """The plot as uint8 RGB (H, W, 3); a DataError naming ``path`` when it is not a readable image."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path} is not a readable image: {exc}") from None


def find_axes_frame(rgb: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pixel rows/columns of the plot frame (the axes' spines): the
    dark lines spanning most of the image. Raises DataError when there is none."""
    r, g, b = (rgb[..., c].astype(np.uint16) for c in range(3))  # channel planes: fast, no last-axis reduce
    dark = (r + g + b) < 3 * 80
    h, w = dark.shape
    cols = np.flatnonzero(dark.sum(0) > 0.5 * h)
    rows = np.flatnonzero(dark.sum(1) > 0.5 * w)
    if len(cols) < 2 or len(rows) < 2 or cols[-1] - cols[0] < w // 4 or rows[-1] - rows[0] < h // 4:
        raise DataError("no axes frame found (expected a matplotlib plot with a box around the axes)")
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


@dataclass(frozen=True)
class PlotArea:
    """The inside of a plot's axes frame: ``frame`` (top, bottom, left, right) are the spines'
    pixel rows and columns in the whole image (``width`` pixels wide); ``r``, ``g``, ``b`` (int16),
    ``grey`` (their mean) and ``saturation`` (max - min) are (rows, columns) arrays strictly
    inside the spines."""

    frame: tuple[int, int, int, int]
    width: int
    r: np.ndarray
    g: np.ndarray
    b: np.ndarray
    grey: np.ndarray
    saturation: np.ndarray


def read_plot_area(path: str | os.PathLike) -> PlotArea:
    """The pixels inside the axes frame of the plot at ``path``; an error naming the file when it
    is no image or has no frame."""
    path = Path(path)
    rgb = read_plot_rgb(path)
    try:
        top, bottom, left, right = find_axes_frame(rgb)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    r, g, b = (rgb[top + 1:bottom, left + 1:right, c].astype(np.int16) for c in range(3))
    saturation = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    return PlotArea(frame=(top, bottom, left, right), width=rgb.shape[1], r=r, g=g, b=b,
                    grey=(r + g + b) / 3.0, saturation=saturation)


def import_plot(path: str | os.PathLike, size: int = 224) -> np.ndarray:
    """A training image (uint8 (size, size), 0 = line, 255 = white) from a labelled band plot.

    Crops inside the axes frame (dropping ticks, labels and title), keeps only dark unsaturated
    pixels (the black band lines; the red Fermi line and light-grey high-symmetry lines go), then
    box-resamples to ``size`` and binarises at 0.8.
    """
    area = read_plot_area(path)
    grey, saturation = area.grey, area.saturation
    keep_line = (saturation < 60) & (grey < 200)   # black/dark grey anti-aliased band lines
    clean = np.where(keep_line, grey, 255.0).astype(np.uint8)
    for edge in range(3):  # spines drawn over 2-3 px leave dark border rows/columns: blank them
        for sl in (np.s_[edge, :], np.s_[-1 - edge, :], np.s_[:, edge], np.s_[:, -1 - edge]):
            if (clean[sl] < 128).mean() > 0.9:
                clean[sl] = 255
    small = np.asarray(Image.fromarray(clean).resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    return np.where(small / 255.0 < BINARY_THRESHOLD, 0, 255).astype(np.uint8)
