"""Maps of one part of a two-part fingerprint: ``python -m backend part-maps --model ID``.

A ``physical`` model's fingerprint joins two encoders (:data:`backend.autoencoder.config.VIEW_RECIPES`):
the ``shape`` part, trained with views that move E_F (it keeps the bands' shapes and forgets the
filling), and the ``fermi`` part, trained with views that keep E_F (what sits at E_F). The whole
fingerprint groups fillings as much as lattices; to group by band shape alone, or by the Fermi
level's physics alone, each part gets a map of its own: a model of the data root named
``{id}_{part}-part``, with that part's columns as its fingerprint and its own UMAP, which the
explorer finds by id, and the evaluate page, ``quality`` and a consensus take where their filter
names ids (:func:`backend.evaluate.select.select_models`). It has no weights of its own
(placing materials uses the whole model's map), and training or re-encoding the whole model
removes its part maps, so none outlives the fingerprint it was cut from.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from backend.autoencoder.config import view_parts
from backend.autoencoder.encoding import fit_umap, write_embeddings
from backend.data.catalog import Catalog
from backend.data.model_ids import model_paths, part_model_id, part_parent
from backend.errors import DataError, ParameterError
from backend.fileio import write_json_atomic


def _recorded(root: Path, model_id: str) -> dict:
    path = model_paths(root, model_id)["metadata"]
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: no readable record of the model ({type(exc).__name__}: {exc}); "
                        "part maps need its views") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise DataError(f"{path}: not a trained model's record (no config); part maps need its views")
    return meta


def write_part_maps(root, model_id: str, *, progress=None) -> list[str]:
    """One model per part of ``model_id``'s fingerprint (see the module doc); returns their ids.
    A one-part model, or a part model, is refused with the reason."""
    root = Path(root)
    catalog = Catalog(root)
    info = catalog.get(model_id)
    if info.is_unencoded:
        raise ParameterError(f"{model_id} is an unencoded map: it has no fingerprint to split")
    if info.is_part:
        raise ParameterError(f"{model_id} is already one part of {part_parent(model_id)}")
    meta = _recorded(root, model_id)
    config = meta["config"]
    parts = view_parts(config.get("views"), config.get("objective", "reconstruction"))
    if len(parts) < 2:
        raise ParameterError(f"{model_id} has a one-part fingerprint (views {config.get('views')!r}, objective "
                             f"{config.get('objective')!r}): nothing to split")
    data = catalog.load(model_id)
    X = np.asarray(data.X)
    if X.shape[1] % len(parts):
        raise DataError(f"{info.fingerprint_path}: {X.shape[1]} numbers a material do not split into "
                        f"{len(parts)} equal parts")
    size = X.shape[1] // len(parts)
    written = []
    for i, part in enumerate(parts):
        if progress:
            progress(i, len(parts), stage=f"{part} part")
        Xp = X[:, i * size:(i + 1) * size]
        xy, _ = fit_umap(Xp)
        part_id = part_model_id(model_id, part)
        part_meta = {
            "model_id": part_id, "part_of": model_id, "part": part, "part_index": i,
            "config": dict(config, views=part),
            "dataset": meta.get("dataset"), "fingerprint_size": int(size),
            "note": f"columns {i * size}-{(i + 1) * size - 1} of {model_id}'s fingerprint (its {part} encoder), "
                    "with a UMAP of their own; no weights (`part-maps` rewrites it)",
        }
        write_json_atomic(model_paths(root, part_id)["metadata"], part_meta)
        write_embeddings(root, part_id, data.names, X=Xp, xy=xy)  # no reducer: nothing encodes onto it
        written.append(part_id)
    if progress:
        progress(len(parts), len(parts), stage="done")
    return written
