"""What the quality report's rows of one energy window are computed from: the window's images at
any size (:func:`window_images`), and the labelled materials with their folds (:func:`labelled_folds`),
gathered in a :class:`WindowInputs`.

Images come from the root's training images (``images/train_{W}eV``), or, where a root has only
display plots (the published layout), from those plots turned into training images as
``import-plots`` does (cached). Folds are made once per (window, label column) and shared by every
row, so every feature set is scored on the same splits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backend.data.labels import labelled_materials, load_labels
from backend.errors import DataError, ParameterError
from backend.fileio import json_digest, load_npz, save_npz_atomic
from backend.progress import ProgressFn, null_progress
from backend.quality.metrics import check_labels, make_folds


def window_images(catalog, window, cache_dir: Path, *, size: int = 224, progress: ProgressFn = null_progress):
    """(names, ink uint8 (n, 1, size, size), key) of a window's training images; made from the
    display plots (and cached) when the root has no training images; (None, None, None) when it
    has neither."""
    # torch (the image helpers live with the autoencoder): only where a report runs, never in a web process
    from backend.autoencoder.images import (
        folder_fingerprint,
        import_plot,
        ink_from_grey,
        list_images,
        load_image_folder,
    )

    train_dir = catalog.train_image_dir(window)
    if train_dir is not None:
        key = json_digest({"train": folder_fingerprint(train_dir), "size": size})
        names, ink = load_image_folder(train_dir, size)
        return np.asarray(names), ink.numpy(), key
    display = catalog.display_image_dir(window)
    if display is None:
        return None, None, None
    files = list_images(display)
    key = json_digest({"display": folder_fingerprint(display), "size": size})
    path = Path(cache_dir) / f"images-{key}.npz"
    hit = load_npz(path)
    if hit is not None:
        return hit["names"], hit["ink"], key
    names, inks = [], []
    for i, f in enumerate(files, 1):
        try:
            inks.append(ink_from_grey(import_plot(f, size)))
            names.append(f.stem)
        except DataError:
            pass  # a plot without an axes frame cannot be imported; it simply has no baseline row
        progress(i, len(files), stage="import plots")
    ink = np.stack(inks)[:, None]
    save_npz_atomic(path, {"names": np.asarray(names), "ink": ink})
    return np.asarray(names), ink, key


@dataclass
class Labelled:
    """One label column over a window's materials: material -> label and material -> fold, and a
    digest of both (what a cached row that used them is keyed by)."""

    column: str
    labels: dict
    folds: dict
    key: str

    def arrays(self, names) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(keep mask over ``names``, labels, folds of the kept ones)."""
        names = np.asarray(names)
        keep = np.array([n in self.labels for n in names], dtype=bool)
        kept = names[keep]
        return keep, np.array([self.labels[n] for n in kept]), np.array([self.folds[n] for n in kept])


def labelled_folds(catalog, column: str, universe, *, n_folds: int, seed: int, where: str,
                   warnings: list) -> Labelled:
    """The materials of ``universe`` that ``labels.csv`` labels in ``column``, with stratified
    folds. Refused (ParameterError naming the file and the column) when the column labels none of
    them or its labels cannot be scored (one class, a class of one material, fewer than the
    folds); a partial overlap is a warning. ``where``: the window, for the messages."""
    path = catalog.labels_path()
    universe = np.asarray(universe)
    y = load_labels(catalog, column, universe)
    labelled = y != ""
    if not labelled.any():
        raise ParameterError(f"labels file {path}: column {column!r} labels none of the "
                             f"{len(universe)} materials of {where}")
    if not labelled.all():
        warnings.append(f"{path.name}: column {column!r} labels {int(labelled.sum())} of the "
                        f"{len(universe)} materials of {where}; the others are left out")
    unknown = sorted(set(labelled_materials(catalog, column)) - set(universe.tolist()))
    if unknown:
        warnings.append(f"{path.name}: {len(unknown)} labelled materials are not among the {len(universe)} of "
                        f"{where} (e.g. {', '.join(unknown[:3])}); the report uses the overlap")
    names, y = universe[labelled], y[labelled]
    y = check_labels(y, n_folds, where=f"labels file {path}, column {column!r}")
    fold = make_folds(y, n_folds, seed)
    return Labelled(column, dict(zip(names, y)), dict(zip(names, fold)),
                    json_digest({"names": names.tolist(), "y": y.tolist(), "folds": fold.tolist()}))


@dataclass
class WindowInputs:
    """What a window's rows are scored on: its images (at any size, read once each), and with a
    label column its labelled materials and folds."""

    catalog: object
    window: float | None
    cache_dir: Path
    enabled: bool                       # False: no image baselines (the images are not read)
    label: Labelled | None = None
    _images: dict = field(default_factory=dict)

    def images(self, size: int = 224):
        """(names, ink (n, 1, size, size) uint8, key), or (None, None, None) without images."""
        if not self.enabled:
            return None, None, None
        if size not in self._images:
            self._images[size] = window_images(self.catalog, self.window, self.cache_dir, size=size)
        return self._images[size]

    @property
    def names(self):
        return self.images()[0]

    @property
    def labels(self) -> dict | None:
        return None if self.label is None else self.label.labels

    @property
    def folds(self) -> dict | None:
        return None if self.label is None else self.label.folds

    @property
    def labels_key(self) -> str | None:
        return None if self.label is None else self.label.key

    def universe(self, model_ids) -> np.ndarray:
        """The window's materials: its images' names, else the first model's."""
        names = self.names
        return np.asarray(names if names is not None else self.catalog.load(model_ids[0]).names)
