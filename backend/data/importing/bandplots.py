"""Band-plot images for an import: a user's PNG or JPEG of a band structure (labelled axes in a
box, dark band lines on white) -> the training image :func:`backend.data.plots.import_plot`
makes of it, refused when the image does not look like a band plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.data.plots import import_plot, read_plot_area
from backend.errors import DataError

#: a band plot is mostly white paper inside its frame
MIN_WHITE = 0.6
#: ink of the training image: some lines, not a filled area
MIN_INK, MAX_INK = 0.002, 0.4


def read_band_plot(path: Path, size: int = 224) -> np.ndarray:
    """The training image (uint8 (size, size), 0 = line, 255 = white) of the band plot at
    ``path``; a DataError naming it when it has no axes frame (a photo, a blank image), is
    not mostly white inside the frame, or has no lines (or a filled area) there."""
    area = read_plot_area(path)
    white = float((area.grey > 200).mean())
    if white < MIN_WHITE:
        raise DataError(f"{path}: does not look like a band plot: {white:.0%} of the inside of its axes frame is white "
                        f"(a band plot's background is, ≥ {MIN_WHITE:.0%})")
    image = import_plot(path, size)
    ink = float((image == 0).mean())
    if ink < MIN_INK:
        raise DataError(f"{path}: does not look like a band plot: no dark band lines inside its axes frame")
    if ink > MAX_INK:
        raise DataError(f"{path}: does not look like a band plot: {ink:.0%} of the inside of its frame is dark "
                        "(band lines are thin)")
    return image
