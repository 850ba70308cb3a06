"""Known labels of materials (``labels.csv`` in a data root: ``material,<label columns>``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from backend.cache import file_signature, memoize
from backend.errors import DataError, ParameterError


@memoize
def _read_labels(sig: tuple) -> pd.DataFrame:
    path = sig[0]
    try:
        frame = pd.read_csv(path, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"labels file {path} is not a readable CSV: {exc}") from None
    if "material" not in frame.columns:
        raise DataError(f"labels file {path} has no 'material' column")
    if frame["material"].duplicated().any():
        raise DataError(f"labels file {path}: duplicate material {frame['material'][frame['material'].duplicated()].iloc[0]!r}")
    return frame.set_index("material")


def label_columns(catalog) -> list[str]:
    """Label columns of the data root's ``labels.csv`` ([] when there is none)."""
    path = catalog.labels_path()
    if path is None:
        return []
    return list(_read_labels(file_signature(path)).columns)


def _label_column(catalog, column: str) -> pd.Series:
    """The ``column`` of the data root's ``labels.csv``, '' where empty; names the file and field."""
    path = catalog.labels_path()
    if path is None:
        raise ParameterError(f"no labels.csv under {catalog.root}")
    frame = _read_labels(file_signature(path))
    if column not in frame.columns:
        raise ParameterError(f"label column {column!r} not in {path} (columns: {list(frame.columns)})")
    return frame[column].fillna("")


def load_labels(catalog, column: str, names) -> np.ndarray:
    """The ``column`` label of each material in ``names`` (n,) as strings; missing ones are ''."""
    return _label_column(catalog, column).reindex(list(names)).fillna("").to_numpy(dtype=str)


def label_categories(catalog, column: str) -> list[str]:
    """The distinct non-empty values of ``column`` over the whole ``labels.csv``, sorted: what a
    value's colour is keyed to, so that it keeps its colour in every model and view."""
    values = _label_column(catalog, column)
    return sorted(set(values[values != ""]))


def labelled_materials(catalog, column: str) -> list[str]:
    """The materials ``labels.csv`` gives a non-empty ``column`` value (the column must exist)."""
    values = _label_column(catalog, column)
    return values.index[values != ""].tolist()
