"""Reading a model's CSV tables: checked cell by cell (errors name the file, row and column),
refused before parsing when too large for this machine's memory, and a large one kept parsed
in the cache folder (memory-mapped) so that it is parsed once per file version and host.

A fingerprint table is ``filename,z0..z{n-1}``, an embedding ``filename,z0,z1`` (see
:mod:`backend.data.catalog` for where they are); :func:`load_model_data` reads a model's pair
into one :class:`ModelData`, rows aligned by material.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backend.cache import default_cache_dir, memoize_array
from backend.errors import DataError
from backend.fileio import file_lock, write_npy_atomic


@dataclass(frozen=True)
class ModelData:
    """The arrays of one model, rows aligned by material.

    ``names``: (n,) material names (file name without extension); ``images``: (n,) image file
    names as in the CSV; ``X``: (n, d) float64 fingerprints (the 2-D embedding for unencoded
    models); ``xy``: (n, 2) float64 UMAP coordinates.
    """

    model_id: str
    names: np.ndarray
    images: np.ndarray
    X: np.ndarray
    xy: np.ndarray


#: parsing a CSV table takes about this many times its float64 size at its peak (pandas'
#: tokens and columns, then the array)
PARSE_MEMORY_FACTOR = 3


def _memory_available() -> int | None:
    """Bytes of memory available to a new allocation (Linux: MemAvailable), None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_memory(path: Path, kind: str) -> None:
    """A table too large for this machine's memory is refused before parsing, saying what it
    needs (its cells estimated from the file's first lines)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(1 << 16).splitlines()[:50]
    except OSError:
        return  # (a missing file is reported by the parser)
    if len(head) < 2:
        return
    cells = size / (sum(len(line) + 1 for line in head) / len(head)) * (head[0].count(b",") + 1)
    need, available = PARSE_MEMORY_FACTOR * 8 * cells, _memory_available()
    if available is not None and need > available:
        gb = 1024 ** 3
        raise DataError(f"{kind} file {path} is too large for this machine's memory: about {cells:,.0f} numbers, "
                        f"whose reading needs about {need / gb:.1f} GB, and {available / gb:.1f} GB are available; "
                        "free memory or use a machine with more (once read, the table is kept memory-mapped "
                        "in the cache folder and needs far less)")


def read_table(path: Path, kind: str) -> pd.DataFrame:
    _check_memory(path, kind)
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{kind} file {path} is missing") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{kind} file {path} is not a readable CSV: {exc}") from None
    if "filename" not in df.columns:
        raise DataError(f"{kind} file {path} has no 'filename' column (columns: {list(df.columns)[:5]}...)")
    if len(df) == 0:
        raise DataError(f"{kind} file {path} has no rows")
    dup = df["filename"][df["filename"].duplicated()]
    if len(dup):
        raise DataError(f"{kind} file {path}: duplicate filename {dup.iloc[0]!r} ({len(dup)} duplicates)")
    values = df.drop(columns="filename")
    if values.shape[1] == 0:
        raise DataError(f"{kind} file {path} has no value columns")
    # columns the CSV reader already parsed as numbers are taken as they are (converting each of
    # 147 columns again was most of reading a fingerprint file); the others converted, text -> NaN
    parsed = all(pd.api.types.is_float_dtype(t) or pd.api.types.is_integer_dtype(t) for t in values.dtypes)
    numeric = values if parsed else values.apply(pd.to_numeric, errors="coerce")
    arr = numeric.to_numpy(dtype=float)
    bad = ~np.isfinite(arr)  # NaN (missing, or not a number) and infinities
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(
            f"{kind} file {path}: non-numeric or missing value {values.iat[r, c]!r} in column "
            f"{values.columns[c]!r} of row {r + 2} ({df['filename'].iat[r]}); {int(bad.sum())} bad cells"
        )
    return pd.DataFrame(arr, index=pd.Index(df["filename"].astype(str), name="filename"), columns=values.columns)


#: tables with more cells than this are kept parsed in the cache folder (.npy, memory-mapped):
#: parsing 10^5 x 147 numbers from CSV takes seconds, mapping the parsed array milliseconds
PARSED_CACHE_CELLS = 2_000_000


def read_table_cached(sig: tuple, kind: str) -> pd.DataFrame:
    """:func:`read_table` of the file ``sig`` names; a large one parsed once per file version
    and host (written atomically into the cache folder, memory-mapped from there)."""
    path = Path(sig[0])
    if sig[1] < 20 * PARSED_CACHE_CELLS // 2:  # bytes: a small file parses faster than any look-up
        return read_table(path, kind)
    stem = default_cache_dir() / "tables" / hashlib.sha1(repr((sig, kind)).encode()).hexdigest()
    names_path, values_path = stem.with_suffix(".names.npy"), stem.with_suffix(".values.npy")

    def mapped():
        try:
            names = np.load(names_path, allow_pickle=False)
            values = np.load(values_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        return pd.DataFrame(values, index=pd.Index(names, name="filename"), copy=False)

    frame = mapped()
    if frame is None:
        with file_lock(stem.with_suffix(".lock")):
            frame = mapped()
            if frame is None:
                table = read_table(path, kind)
                write_npy_atomic(names_path, table.index.to_numpy().astype(str))
                write_npy_atomic(values_path, table.to_numpy(dtype=np.float64))  # written last: complete
                frame = mapped()
    return frame


@memoize_array
def load_model_data(model_id: str, emb_sig: tuple, fp_sig: tuple | None) -> ModelData:
    emb_path = Path(emb_sig[0])
    emb = read_table_cached(emb_sig, "embedding")
    if emb.shape[1] < 2:
        raise DataError(f"embedding file {emb_path} needs two coordinate columns, found {emb.shape[1]}")
    if fp_sig is None:
        files = emb.index.to_numpy()
        X = emb.iloc[:, :2].to_numpy()
        xy = X
    else:
        fp_path = Path(fp_sig[0])
        fp = read_table_cached(fp_sig, "fingerprint")
        files = fp.index.to_numpy()
        missing = fp.index.difference(emb.index)
        if len(missing) or len(fp) != len(emb):
            extra = emb.index.difference(fp.index)
            raise DataError(
                f"row counts differ: fingerprint file {fp_path} has {len(fp)} materials, embedding file "
                f"{emb_path} has {len(emb)}"
                + (f"; the embedding lacks {len(missing)} of the {len(fp)} materials of {fp_path.name}, e.g. "
                   f"{', '.join(map(str, missing[:3]))}" if len(missing) else "")
                + (f"; it has {len(extra)} the fingerprints lack, e.g. {', '.join(map(str, extra[:3]))}" if len(extra) else "")
            )
        X = fp.to_numpy()
        same_order = len(emb) == len(fp) and (emb.index == fp.index).all()
        xy = (emb if same_order else emb.loc[fp.index]).iloc[:, :2].to_numpy()
    files = np.asarray(files).astype(str)
    names = np.array([os.path.splitext(f)[0] for f in files])
    for arr in (X, xy):
        arr.setflags(write=False)
    return ModelData(model_id=model_id, names=names, images=np.asarray(files), X=X, xy=xy)
