"""Training images: 224x224 PNGs of black band lines on white, no axes.

In memory they are one uint8 tensor (n, 1, S, S) of *ink*: 1 where a line is, 0 elsewhere,
binarised at 0.8 as the study (a pixel is ink when its grey value / 255 < 0.8). Ink as the
positive class keeps the BCE target sparse and meaningful.

``import_plots`` turns a folder of published matplotlib band plots (labelled axes, red dashed Fermi
line, grey high-symmetry lines) into such training images, so the real 546-material set can be
trained on; one plot is read by :func:`backend.data.plots.import_plot` (torch-free: the web app
reads uploaded plots with it).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from backend.data.image_window import write_images_meta
from backend.data.plots import BINARY_THRESHOLD, import_plot
from backend.errors import DataError
from backend.fileio import atomic_path

IMAGE_SUFFIXES = (".png",)


def list_images(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise DataError(f"image folder {folder} has no PNG images")
    return files


def ink_from_grey(grey: np.ndarray) -> np.ndarray:
    """uint8 grey (H, W), 255 = white -> uint8 ink mask {0, 1}."""
    return (grey.astype(np.float32) / 255.0 < BINARY_THRESHOLD).astype(np.uint8)


def _read_grey(path: Path, size: int) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            grey = im.convert("L")
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path} is not a readable image: {exc}") from None
    return resize_grey(np.asarray(grey), size)


def resize_grey(grey: np.ndarray, size: int) -> np.ndarray:
    """uint8 grey (H, W) at ``size``² pixels (box filter, as every training image is resized)."""
    if grey.shape != (size, size):
        grey = np.asarray(Image.fromarray(grey).resize((size, size), Image.Resampling.BOX))
    return grey


def load_image_folder(folder: str | os.PathLike, size: int = 224) -> tuple[list[str], torch.Tensor]:
    """Material names (file stems) and their ink masks as one uint8 tensor (n, 1, size, size).

    All images of a folder must share one size (a mixed folder is refused: it is almost always two
    datasets mixed by mistake); they are resized to ``size`` if needed.
    """
    files = list_images(folder)
    sizes = {}
    for f in files:
        try:
            with Image.open(f) as im:
                sizes.setdefault(im.size, f)
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{f} is not a readable image: {exc}") from None
    if len(sizes) > 1:
        (s1, f1), (s2, f2) = list(sizes.items())[:2]
        raise DataError(f"image folder {folder} mixes image sizes: {f1.name} is {s1[0]}x{s1[1]}, "
                        f"{f2.name} is {s2[0]}x{s2[1]}")
    arr = np.stack([ink_from_grey(_read_grey(f, size)) for f in files])[:, None]
    return [f.stem for f in files], torch.from_numpy(arr)


def folder_fingerprint(folder: str | os.PathLike) -> str:
    """sha256 over the names and contents of a folder's images (recorded with each model)."""
    h = hashlib.sha256()
    for f in list_images(folder):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


# ---- import-plots: published matplotlib plots -> training images ------------------------------

def _import_one(args) -> tuple[str, str | None]:
    src, dst, size = args
    try:
        img = import_plot(src, size)

        with atomic_path(dst) as tmp:
            Image.fromarray(img).save(tmp, format="PNG")
        return str(src), None
    except DataError as exc:
        return str(src), str(exc)


def import_plots(plots: str | os.PathLike, out: str | os.PathLike, *, size: int = 224, jobs: int | None = None,
                 progress=None, window: float | None = None) -> dict:
    """Convert every PNG plot in ``plots`` into a training image in ``out`` (same file name).
    Returns ``{"written": n, "skipped": {file: reason}}``; a bad file does not stop the others.
    ``window``: the plots' energy window (±eV), recorded in ``out``'s ``images.json`` for training
    to check (:mod:`backend.data.image_window`)."""
    files = list_images(plots)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [(f, out / f.name, size) for f in files]
    skipped = {}
    jobs = jobs or min(4, os.cpu_count() or 1)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for i, (src, err) in enumerate(pool.map(_import_one, tasks, chunksize=16), 1):
            if err:
                skipped[src] = err
            if progress:
                progress(i, len(tasks), skipped=len(skipped))
    if window is not None and len(skipped) < len(tasks):
        write_images_meta(out, window=window, image_size=size, source="import-plots")
    return {"written": len(tasks) - len(skipped), "skipped": skipped}
