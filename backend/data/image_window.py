"""Which energy window a folder of training images shows, and the check that a training run's
window agrees with it.

A training image is drawn for one window (E - E_F within ±W eV); a model trained on it is a model
of that window whatever its config says. The window of a folder is known from, in this order:

1. ``images.json`` in the folder, written by whatever drew the images (``preprocess``, ``demo``,
   ``import-plots``): ``{"window": W, "image_size": S, "source": "preprocess"}``;
2. the folder's name, when it follows the catalog's layout (``train_{W}eV``, see
   :data:`backend.data.catalog.TRAIN_IMAGE_DIRS`).

Otherwise it is not known, and :func:`check_window` says so instead of guessing. Importable
without torch (the web process checks submissions with it).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from backend.data.catalog import DISPLAY_IMAGE_DIRS, TRAIN_IMAGE_DIRS
from backend.errors import DataError, ParameterError
from backend.fileio import write_json_atomic

#: the metadata file of a training-image folder
META_FILE = "images.json"


def _name_pattern(patterns) -> re.Pattern:
    """The folder names of ``patterns`` (``images/train_{w}eV`` -> ``train_(W)eV``) as one regex."""
    names = sorted({Path(p).name for p in patterns})
    alternatives = "|".join(re.escape(n).replace(re.escape("{w}"), r"(?P<w{}>\d+(?:\.\d+)?)".format(i))
                            for i, n in enumerate(names))
    return re.compile(f"^(?:{alternatives})$")


_TRAIN_NAME = _name_pattern(TRAIN_IMAGE_DIRS)
_DISPLAY_NAME = _name_pattern(DISPLAY_IMAGE_DIRS)


def _window_in_name(name: str, pattern: re.Pattern) -> float | None:
    m = pattern.match(name)
    if not m:
        return None
    value = float(next(v for v in m.groupdict().values() if v is not None))
    return value if value > 0 else None


@dataclass(frozen=True)
class ImagesWindow:
    """The window (±eV) of a folder's images, or None, and how it is known (for messages)."""

    window: float | None
    source: str

    @property
    def known(self) -> bool:
        return self.window is not None


def fmt_window(window: float) -> str:
    return f"±{float(window):g} eV"


def images_window(folder: str | os.PathLike) -> ImagesWindow:
    """What the folder says about its images' window: its ``images.json``, else its name."""
    folder = Path(folder)
    meta = folder / META_FILE
    if meta.is_file():
        try:
            doc = json.loads(meta.read_text())
            window = float(doc["window"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{meta}: expected a JSON object with a positive 'window' (eV): {exc}") from None
        if not window > 0:
            raise DataError(f"{meta}: 'window' must be a positive number of eV, got {doc['window']!r}")
        return ImagesWindow(window, f"its {META_FILE}")
    window = _window_in_name(folder.resolve().name if folder.exists() else folder.name, _TRAIN_NAME)
    if window is not None:
        return ImagesWindow(window, "its name")
    return ImagesWindow(None, f"no {META_FILE} and its name is not train_{{W}}eV")


def window_of_plots(folder: str | os.PathLike) -> float | None:
    """The window of a folder of display plots named as the catalog reads them
    (``display_{W}eV``, ``bands_10width_{W}eV``), else None."""
    folder = Path(folder)
    return _window_in_name(folder.resolve().name if folder.exists() else folder.name, _DISPLAY_NAME)


def check_window(folder: str | os.PathLike, windows, shown: str | None = None) -> str | None:
    """Refuse a training window other than the images'. ``windows``: the window(s) asked for (a
    number or several); ``shown``: how messages name the folder (default: its name). Raises
    ParameterError naming both windows when the folder's window is known and differs; returns a
    note (to show the user) when it cannot be known, else None."""
    asked = sorted({float(w) for w in (windows if isinstance(windows, (list, tuple, set)) else [windows])})
    found = images_window(folder)
    name = shown or Path(folder).name or str(folder)
    if found.known:
        wrong = [w for w in asked if w != found.window]
        if wrong:
            shown = ", ".join(fmt_window(w) for w in wrong)
            raise ParameterError(
                f"window: the images in {name} are drawn for {fmt_window(found.window)} (from {found.source}), "
                f"but the window asked is {shown}: a model of {shown} must be trained on images of that window "
                f"(e.g. a train_{float(wrong[0]):g}eV folder), or set the window to {float(found.window):g}")
        return None
    if len(asked) > 1:
        raise ParameterError(
            f"window: {len(asked)} windows asked ({', '.join(fmt_window(w) for w in asked)}) for one folder of images, "
            f"{name}, which shows one window; its window is not known ({found.source}): ask for one")
    return (f"the window of the images in {name} is not known ({found.source}); the model is recorded as "
            f"{fmt_window(asked[0])}, as asked. Write {{\"window\": W}} into {name}/{META_FILE} to have it checked.")


def write_images_meta(folder: str | os.PathLike, *, window: float, image_size: int | None, source: str) -> Path:
    """Record the window (and size and maker) of a folder of training images, atomically."""
    doc = {"window": float(window) if not float(window).is_integer() else int(window), "source": source}
    if image_size is not None:
        doc["image_size"] = int(image_size)
    return write_json_atomic(Path(folder) / META_FILE, doc)
