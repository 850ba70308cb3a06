"""Placed materials kept in a data root, apart from the map's own: ``ROOT/additions/``.

    additions/placed.json                      {model_id: {name: placement}} (Placement.as_dict)
    additions/bands/{name}.npz                 band data of a placed material (when it had any)
    additions/images/display_{W}eV/{name}.png  its display plot (the hover image)

``additions/`` is laid out as a data root, so its plots are served like any material's (the
catalog looks there after the root's own folders). A placed material's name never equals a map
material's (``Ac2HgGe`` placed on a map that holds ``Ac2HgGe`` is ``Ac2HgGe_new``). Removing one
deletes its record and files. Every write is atomic; placed.json is rewritten whole.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from pathlib import Path

from PIL import Image

from backend.data.bands import render_display_png, save_band_data
from backend.data.catalog import ADDITIONS_DIR
from backend.errors import DataError, ParameterError
from backend.fileio import atomic_path, write_bytes_atomic, write_json_atomic

PLACED_FILE = "placed.json"
#: what ``on_conflict`` may say when a placed name exists already
CONFLICT_POLICIES = ("fail", "replace", "keep-both")
_LOCK = threading.Lock()


def additions_root(root: str | os.PathLike) -> Path:
    return Path(root) / ADDITIONS_DIR


def _placed_path(root) -> Path:
    return additions_root(root) / PLACED_FILE


def read_placed(root: str | os.PathLike) -> dict[str, dict[str, dict]]:
    """Every placement of the root: model id -> name -> placement dict ({} when none)."""
    path = _placed_path(root)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not readable ({exc}); move it away to start the additions afresh") from None
    if not isinstance(data, dict):
        raise DataError(f"{path} does not hold placements (model id -> name -> placement)")
    return data


def placed_on(root: str | os.PathLike, model_id: str) -> list[dict]:
    """The placements on one model, in the order they were added."""
    return list(read_placed(root).get(model_id, {}).values())


def free_name(name: str, taken) -> str:
    """``name``, or ``name_new``, ``name_new2``, ... : the first not in ``taken``."""
    taken = set(taken)
    if name not in taken:
        return name
    cand, i = f"{name}_new", 2
    while cand in taken:
        cand, i = f"{name}_new{i}", i + 1
    return cand


def keep_placements(root: str | os.PathLike, model_id: str, pairs, *, map_names,
                    on_conflict: str = "fail") -> list[dict]:
    """Write placed materials (their plot and band data, then their records) into
    ``additions/``. ``pairs``: (the imported material, its :class:`Placement`);
    ``map_names``: the model's materials (a placed name never equals one). A name placed
    before on this model: ``on_conflict`` "fail" (a ParameterError naming it), "replace", or
    "keep-both" (a new name). Returns the records written, with their final names."""
    if on_conflict not in CONFLICT_POLICIES:
        raise ParameterError(f"on_conflict must be one of {CONFLICT_POLICIES}, got {on_conflict!r}")
    add = additions_root(root)
    with _LOCK:
        placed = read_placed(root)
        on_model = placed.setdefault(model_id, {})
        taken_by_map = set(map(str, map_names))
        records = []
        for item, pl in pairs:
            name = free_name(pl.name, taken_by_map)
            if name in on_model:
                if on_conflict == "fail":
                    raise ParameterError(f"{name} is placed on {model_id} already: replace it, or keep both "
                                         "(--on-conflict replace|keep-both)")
                if on_conflict == "keep-both":
                    name = free_name(pl.name, taken_by_map | set(on_model) | {r["name"] for r in records})
            _write_material_files(add, name, item, pl.window)
            rec = dict(pl.as_dict(), name=name, original_name=pl.name)
            on_model[name] = rec
            records.append(rec)
        write_json_atomic(_placed_path(root), placed)
    return records


def _write_material_files(add: Path, name: str, item, window: float | None) -> None:
    w = f"{window:g}" if window is not None else None
    if item.bands is not None:
        bd = dataclasses.replace(item.bands, material=name)
        save_band_data(bd, add)
        if w is not None:
            write_bytes_atomic(add / "images" / f"display_{w}eV" / f"{name}.png", render_display_png(bd, window))
    elif item.plot is not None and w is not None:
        dest = add / "images" / f"display_{w}eV" / f"{name}.png"
        if getattr(item, "plot_png", None):  # the plot as the user gave it
            write_bytes_atomic(dest, item.plot_png)
        else:
            with atomic_path(dest) as tmp:
                Image.fromarray(item.plot).save(tmp, format="PNG")


def remove_placed(root: str | os.PathLike, name: str, model_id: str | None = None) -> int:
    """Remove a placed material (from one model, or from all); its files go when no model keeps
    it. Returns how many placements were removed (0: there was none of that name)."""
    with _LOCK:
        placed = read_placed(root)
        removed = 0
        for mid, on_model in placed.items():
            if (model_id is None or mid == model_id) and name in on_model:
                del on_model[name]
                removed += 1
        if not removed:
            return 0
        placed = {m: v for m, v in placed.items() if v}
        write_json_atomic(_placed_path(root), placed)
        if not any(name in v for v in placed.values()):
            add = additions_root(root)
            for f in [add / "bands" / f"{name}.npz", *add.glob(f"images/*/{name}.png")]:
                f.unlink(missing_ok=True)
    return removed
