"""Published band plots as pixels: reading a labelled matplotlib plot and finding its axes frame.

The published data has only display plots (640x480 PNGs: black band lines, a red dashed line at
E_F, grey vertical lines at the high-symmetry points, E - E_F on the y axis over ±W eV). Two
readers build on these helpers: the training-image import (:func:`backend.autoencoder.images.import_plot`)
and the physics descriptors of a plot (:mod:`backend.quality.descriptors`). No torch here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from backend.errors import DataError


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
