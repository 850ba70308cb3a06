"""Placing new materials onto an existing map: where does *my* compound go?

A new material (band data read from VASP/QE/pymatgen files, or a band-plot image) is drawn as
the model's training images are drawn, encoded by the model's own encoder, and measured against
the model's fingerprints under the explorer's metric. What a placement reports:

- its ``k`` nearest materials in fingerprint space (never in the 2-D map: UMAP distorts
  distances), each with its distance's percentile among all pairs of the model;
- a predicted cluster at the explorer's clustering cell, by a vote of those neighbours
  (``confidence`` = the winning cluster's share of them; -1 = noise). HDBSCAN's
  ``approximate_predict`` does not apply: the explorer clusters precomputed Minkowski distances
  or a kNN graph, and K-Means/GMM labels are re-fitted per cell, so one rule serves every
  algorithm;
- a map position: on its nearest's point when the two are closer than any two materials of the
  map (the same material); else UMAP's ``transform`` by the model's fitted reducer, which
  ``train`` and ``encode`` keep (``models/{id}_umap.pkl``); else (an older model, a reducer that
  does not load) placed from its nearest neighbours (an inverse-rank weighted mean of those of
  the predicted cluster among the 5 nearest) and marked approximate.

The numeric part (:func:`place_fingerprints`) needs no torch; :func:`place_materials` encodes
(torch, imported in the function) and places.
"""

from __future__ import annotations

import functools
import io
import json
import os
import pickle
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
from PIL import Image, UnidentifiedImageError

from backend.autoencoder.config import PRETRAINED
from backend.cluster.distances import check_metric, distances_to
from backend.cluster.models import _data_key, cluster_model
from backend.cluster.params import ClusterParams
from backend.data.bands import load_band_data, render_training_image
from backend.data.catalog import Catalog
from backend.data.importing import read_uploads
from backend.data.model_ids import model_paths, part_parent
from backend.discover.additions import keep_placements
from backend.discover.neighbours import check_k, distance_ranks
from backend.errors import DataError, ParameterError

#: neighbours listed (and voting) per placed material
PLACE_K = 10
#: neighbours a map position is placed from
POSITION_K = 5
#: how the predicted cluster and the position are found (shown beside them)
CLUSTER_RULE = "vote of the {k} nearest materials in fingerprint space"
POSITION_RULE = "approximate: weighted mean of its nearest neighbours' map positions"
TRANSFORM_RULE = "UMAP transform by the model's fitted reducer"
SAME_RULE = "on its nearest's point (closer than any two materials of the map)"


@dataclass
class Placement:
    """One placed material. ``neighbours``: dicts of rank, material, index, distance,
    percentile (share of the model's pairs closer, %), pair_rank and pairs (as
    :func:`backend.discover.neighbours.distance_ranks`), cluster, x, y; nearest first."""

    name: str
    source: str
    model_id: str
    fingerprint: np.ndarray
    neighbours: list[dict]
    cluster: int
    confidence: float
    xy: tuple[float, float]
    window: float | None = None
    notes: list[str] = field(default_factory=list)
    cluster_rule: str = ""
    position_rule: str = POSITION_RULE
    #: the imported material it was made from (its band data or plot: what additions/ keeps)
    item: object = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        """JSON-able (what the additions file, the CLI's --json and the page hold)."""
        return {"name": self.name, "source": self.source, "model_id": self.model_id,
                "fingerprint": [float(v) for v in self.fingerprint], "neighbours": self.neighbours,
                "cluster": int(self.cluster), "confidence": round(float(self.confidence), 4),
                "x": float(self.xy[0]), "y": float(self.xy[1]), "window": self.window, "notes": list(self.notes),
                "cluster_rule": self.cluster_rule, "position_rule": self.position_rule}


def vote_cluster(neighbour_labels: np.ndarray) -> tuple[int, float]:
    """The most common label among neighbours (nearest first; a tie goes to the label of the
    nearer neighbour) and its share of them."""
    labels = np.asarray(neighbour_labels, dtype=int)
    if labels.size == 0:
        raise ParameterError("a vote needs at least one neighbour")
    values, first, counts = np.unique(labels, return_index=True, return_counts=True)
    best = np.lexsort((first, -counts))[0]
    return int(values[best]), float(counts[best] / labels.size)


def position_from_neighbours(xy: np.ndarray, labels: np.ndarray, distances: np.ndarray, *, cluster: int,
                             k: int = POSITION_K, same_as_first: bool = False) -> tuple[float, float]:
    """A map position from the neighbours' positions ``xy`` (k, 2), nearest first: that of the
    nearest when it is the same material (distance 0, or ``same_as_first``: closer than any two
    materials of the map are), else the 1/rank weighted mean of those of the ``k`` nearest that
    share ``cluster`` (all ``k`` when none does, or the cluster is noise), so that a material
    between two islands is not put in the sea between them."""
    xy = np.asarray(xy, dtype=np.float64)
    if len(xy) == 0:
        raise ParameterError("a position needs at least one neighbour")
    if distances[0] == 0 or same_as_first:
        return float(xy[0, 0]), float(xy[0, 1])
    near = np.arange(min(k, len(xy)))
    same = near[np.asarray(labels)[near] == cluster] if cluster >= 0 else near
    use = same if len(same) else near
    w = 1.0 / (use + 1.0)
    x, y = (xy[use] * w[:, None]).sum(axis=0) / w.sum()
    return float(x), float(y)


def place_fingerprints(catalog: Catalog, model_id: str, Z: np.ndarray, *, params: ClusterParams | None = None,
                       k: int = PLACE_K) -> list[dict]:
    """Neighbours, predicted cluster and map position of new fingerprints ``Z`` (m, d) on a
    catalog model, at the clustering cell ``params`` (default: the explorer's opening cell).
    One dict per row: ``neighbours``, ``cluster``, ``confidence``, ``x``, ``y``."""
    data = catalog.load(model_id)
    if catalog.get(model_id).is_unencoded:
        raise ParameterError(f"model {model_id} is the unencoded map: it has no encoder to place a material by")
    params = (params or ClusterParams()).validate(len(data.names))
    metric, p = check_metric(params.metric, params.p)
    Z = np.atleast_2d(np.asarray(Z, dtype=np.float64))
    if Z.shape[1] != data.X.shape[1]:
        raise ParameterError(f"fingerprints of {Z.shape[1]} numbers do not fit model {model_id} "
                             f"({data.X.shape[1]} numbers per material)")
    k = check_k(k, len(data.names), f"model {model_id}")
    labels = cluster_model(catalog, model_id, params).labels
    D = distances_to(data.X, Z, metric=metric, p=p)
    cand = np.argpartition(D, k - 1, axis=1)[:, :k]
    # nearest first, ties by index (as nearest_neighbours orders them)
    idx = np.array([c[np.lexsort((c, row[c]))] for c, row in zip(cand, D)])
    dist = np.take_along_axis(D, idx, axis=1)
    ranks = distance_ranks(catalog, model_id, dist.ravel(), metric=metric, p=p)
    pct, pair_rank = ranks["percentile"].to_numpy().reshape(dist.shape), ranks["pair_rank"].to_numpy().reshape(dist.shape)
    pairs = int(ranks["pairs"].iloc[0])
    out = []
    for row_idx, row_d, row_pct, row_pr in zip(idx, dist, pct, pair_rank):
        cluster, confidence = vote_cluster(labels[row_idx])
        same = bool(row_pr[0] == 1)  # closer to its nearest than any two materials of the map
        x, y = position_from_neighbours(data.xy[row_idx], labels[row_idx], row_d, cluster=cluster, same_as_first=same)
        neighbours = [{"rank": r + 1, "material": str(data.names[i]), "index": int(i), "distance": float(d),
                       "percentile": round(float(pc), 3), "pair_rank": int(pr), "pairs": pairs,
                       "cluster": int(labels[i]), "x": float(data.xy[i, 0]), "y": float(data.xy[i, 1])}
                      for r, (i, d, pc, pr) in enumerate(zip(row_idx, row_d, row_pct, row_pr))]
        out.append({"neighbours": neighbours, "cluster": cluster, "confidence": confidence, "x": x, "y": y,
                    "same_as_nearest": same})
    return out


def model_encoder(root: str | os.PathLike, model_id: str, device=None):
    """The encoder of a catalog model and its config dict: the model's weights file, or for a
    model made from the shipped pretrained encoder (``encode --pretrained``), that encoder.
    A model without weights raises a :class:`DataError` that says how to get them."""
    from backend.autoencoder.encoding import load_model  # torch: only where a material is encoded

    paths = model_paths(root, model_id)
    if paths["weights"].is_file():
        return load_model(root, model_id, device)
    meta = _metadata(paths["metadata"])
    if is_shipped_map(meta):
        # torch: only where a material is encoded
        from backend.autoencoder.shipped import load_pretrained_encoder

        # (the loader checked the shipped weights against their own record's sha256)
        model, record = load_pretrained_encoder(device=device)
        recorded = meta["pretrained"].get("weights_sha256")
        if recorded and recorded != record.get("weights_sha256"):
            raise DataError(f"model {model_id} was encoded by another version of the pretrained encoder than the one "
                            f"shipped now; re-encode it: python -m backend encode --pretrained --data {root} "
                            f"--images {meta.get('dataset', {}).get('images', 'FOLDER')}")
        return model, meta["config"]
    demo = (paths["metadata"].parent.parent / "labels.csv").is_file()
    how = (f"rebuild the demo with `python -m backend demo --data {root}`" if demo
           else f"retrain it with `python -m backend train --data {root} ...`")
    raise DataError(f"model {model_id} has no weights ({paths['weights']} is missing), so new materials cannot be "
                    f"encoded with it: {how}, or place onto a model made by `python -m backend encode --pretrained`")


def _metadata(path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def query_inks(items, *, window: float, image_size: int, line_width: float = 1.0):
    """Ink masks (m, 1, S, S) uint8 of imported materials as the model's training images are
    made: band data drawn at the model's window, a band plot as imported (its window must be the
    model's). Returns (the items kept, the masks, problems [(source, message)])."""
    # torch (the images module's tensors): only where a material is encoded
    from backend.autoencoder.images import ink_from_grey, resize_grey

    kept, masks, problems = [], [], []
    for item in items:
        if item.bands is not None:
            if item.bands.bands_in_window(window) == 0:
                problems.append((item.source, f"no band within ±{window:g} eV of E_F: nothing to place by"))
                continue
            grey = render_training_image(item.bands, window, 224, line_width=line_width)
        elif item.plot is not None:
            if item.window is not None and abs(float(item.window) - float(window)) > 1e-9:
                problems.append((item.source, f"a plot of ±{item.window:g} eV cannot be placed on a model of "
                                              f"±{window:g} eV images"))
                continue
            grey = item.plot
        else:
            problems.append((item.source, "neither band data nor a band plot"))
            continue
        kept.append(item)
        masks.append(ink_from_grey(resize_grey(np.asarray(grey, dtype=np.uint8), image_size)))
    shape = (0, 1, image_size, image_size)
    return kept, (np.stack(masks)[:, None] if masks else np.zeros(shape, np.uint8)), problems


def place_materials(root: str | os.PathLike, model_id: str, items, *, params: ClusterParams | None = None,
                    k: int = PLACE_K, device: str = "auto") -> tuple[list[Placement], list[tuple[str, str]]]:
    """Encode imported materials (:class:`backend.data.importing.Imported`) with a model of the
    data root and place them (:func:`place_fingerprints`). Returns the placements and the
    problems [(source, message)] of items that could not be placed."""
    # torch: only where a material is encoded
    import torch

    from backend.autoencoder.device import pick_device
    from backend.autoencoder.encoding import encode_images

    catalog = Catalog.at(str(root))
    info = catalog.get(model_id)
    dev = pick_device(device)
    model, cfg = _cached_encoder(str(root), model_id, str(dev))
    window = float(cfg.get("window") or info.window)
    kept, ink, problems = query_inks(items, window=window, image_size=int(cfg["image_size"]),
                                     line_width=float(cfg.get("line_width", 1.0)))
    if not kept:
        return [], problems
    Z = encode_images(model, torch.from_numpy(ink), dev)
    params = params or ClusterParams()
    rule = CLUSTER_RULE.format(k=k)
    found = place_fingerprints(catalog, model_id, Z, params=params, k=k)
    reducer = _cached_reducer(str(root), model_id)
    moved = reducer.transform(np.asarray(Z, dtype=np.float32)) if reducer is not None else None
    placed = []
    for j, (item, z, r) in enumerate(zip(kept, Z, found)):
        xy, how = (r["x"], r["y"]), POSITION_RULE
        if r["same_as_nearest"]:
            how = SAME_RULE
        elif moved is not None:
            xy, how = (float(moved[j, 0]), float(moved[j, 1])), TRANSFORM_RULE
        placed.append(Placement(name=item.name, source=item.source, model_id=model_id, fingerprint=z,
                                neighbours=r["neighbours"], cluster=r["cluster"], confidence=r["confidence"],
                                xy=xy, window=window, notes=list(getattr(item, "notes", []) or []),
                                cluster_rule=rule, position_rule=how, item=item))
    return placed, problems


_REDUCERS: dict = {}


def _cached_reducer(root: str, model_id: str):
    """The model's fitted UMAP reducer (kept by ``train`` and ``encode``), or None when it has
    none or it does not load (another umap-learn version): then positions come from neighbours."""
    path = model_paths(root, model_id)["reducer"]
    if not path.is_file():
        return None
    key = (root, model_id, path.stat().st_mtime_ns)
    if key not in _REDUCERS:
        _REDUCERS.clear()
        try:
            import umap  # noqa: F401  umap (numba, ~3 s): the pickle's classes, only where a material is placed

            _REDUCERS[key] = pickle.loads(path.read_bytes())
        except Exception:  # an unreadable or incompatible reducer: placed from neighbours instead
            _REDUCERS[key] = None
    return _REDUCERS[key]


_ENCODERS: dict = {}


def _cached_encoder(root: str, model_id: str, device: str):
    """The encoder of a model, kept while its weights file is unchanged (placing one material
    warm: no reload)."""
    w = model_paths(root, model_id)["weights"]
    key = (root, model_id, device, w.stat().st_mtime_ns if w.is_file() else None)
    if key not in _ENCODERS:
        import torch  # torch: only where a material is encoded

        _ENCODERS.clear()
        _ENCODERS[key] = model_encoder(root, model_id, torch.device(device))
    return _ENCODERS[key]


def place_uploads(root: str, model_id: str, files: list[tuple[str, bytes]], *, fermi: float | None = None,
                  params: dict | None = None, on_conflict: str = "keep-both", k: int = PLACE_K) -> dict:
    """The browser's path: uploaded files (name, content) read, placed on a model and kept in
    the root's ``additions/``. Returns ``{"placed": [records], "problems": [{"source", "message"}]}``
    (JSON-able: it crosses from the worker process that holds torch to the web process)."""
    items, problems = read_uploads(files, fermi=fermi)
    return place_and_keep(root, model_id, items, problems=[(p.source, p.message) for p in problems], params=params,
                          k=k, on_conflict=on_conflict)


def place_and_keep(root: str, model_id: str, items, *, problems: list[tuple[str, str]], params: dict | None = None,
                   k: int = PLACE_K, on_conflict: str = "keep-both") -> dict:
    """Place ``items`` on a model and keep them in ``additions/``; ``problems``: those of
    reading them. ``{"placed": [records], "problems": [{"source", "message"}]}``, JSON-able."""
    records = []
    if items:
        placed, more = place_materials(root, model_id, items, params=ClusterParams(**(params or {})), k=k)
        problems = problems + more
        if placed:
            records = keep_placements(root, model_id, [(p.item, p) for p in placed],
                                      map_names=Catalog.at(root).load(model_id).names, on_conflict=on_conflict)
    return {"placed": records, "problems": [{"source": s, "message": m} for s, m in problems]}


def placed_at_cell(catalog: Catalog, model_id: str, records: list[dict], *, params: ClusterParams | None = None,
                   k: int = PLACE_K) -> list[dict]:
    """Placement records (kept fingerprints) measured again at another clustering cell: their
    neighbours, predicted cluster and position follow the view on screen (no encoding: the
    fingerprint was kept)."""
    if not records:
        return []
    Z = np.array([r["fingerprint"] for r in records], dtype=np.float64)
    fresh = place_fingerprints(catalog, model_id, Z, params=params, k=k)
    rule = CLUSTER_RULE.format(k=k)
    # a position from neighbours follows the cell's cluster; a transformed one stays
    return [dict(r, neighbours=f["neighbours"], cluster=f["cluster"], confidence=round(f["confidence"], 4),
                 cluster_rule=rule, **({} if r.get("position_rule") == TRANSFORM_RULE else {"x": f["x"], "y": f["y"]}))
            for r, f in zip(records, fresh)]


def encoder_available(root: str | os.PathLike, model_id: str) -> bool:
    """Whether new materials can be encoded with a model here (its weights file, or the shipped
    encoder for a model made from it); no torch."""
    paths = model_paths(root, model_id)
    return paths["weights"].is_file() or is_shipped_map(_metadata(paths["metadata"]))


def is_shipped_map(meta: dict) -> bool:
    """Whether a model's record says it is the shipped encoder's map (``encode --pretrained``),
    whose encoder is the shipped one. A model trained from it (``train``'s default) records the
    encoder it started from too, but its weights are its own: without them it cannot encode."""
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    return bool(meta.get("pretrained")) and config.get("init_from") != PRETRAINED


def placeable_alternative(catalog: Catalog, model_id: str) -> str | None:
    """A model that can place materials when ``model_id`` cannot: for the map of one part of a
    fingerprint its whole model, else one of the same window (the shipped encoder's map first),
    else None."""
    parent = part_parent(model_id)
    if parent in catalog and encoder_available(catalog.root, parent):
        return parent
    window = catalog.get(model_id).window
    same = [m for m in catalog.models.values()
            if not m.is_unencoded and m.window == window and m.model_id != model_id]
    for m in sorted(same, key=lambda m: not m.is_pretrained):
        if encoder_available(catalog.root, m.model_id):
            return m.model_id
    return None


def sketch_neighbours(root: str, model_id: str, png: bytes, *, params: dict | None = None, k: int = PLACE_K) -> dict:
    """The nearest materials of a drawn sketch: a PNG of band lines, black on white, E against k
    with E_F at mid-height and the model's window from bottom to top, encoded like a training
    image (nothing is kept). Returns the placement as a dict."""
    from backend.autoencoder.images import ink_from_grey, resize_grey  # torch: the sketch is encoded below

    try:
        with Image.open(io.BytesIO(png)) as im:
            grey = resize_grey(np.asarray(im.convert("L")), 224)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"the sketch is not a readable image ({exc})") from None
    ink = ink_from_grey(grey).astype(bool)
    if ink.mean() < 0.001:
        raise ParameterError("the sketch is empty: draw at least one band line")
    sketch = SimpleNamespace(name="sketch", source="your sketch", bands=None, window=None, notes=[],
                             plot=np.where(ink, 0, 255).astype(np.uint8))
    placed, problems = place_materials(root, model_id, [sketch], params=ClusterParams(**(params or {})), k=k)
    if not placed:
        raise DataError(problems[0][1] if problems else "the sketch could not be encoded")
    return placed[0].as_dict()


def unplaced_materials(catalog: Catalog, model_id: str, limit: int = 5000) -> list[str]:
    """Materials with band data in the root that the model's map does not hold (imported after
    it was trained, say): what can be placed on it by name. At most ``limit``, sorted. Asked at
    every explorer page load: kept while the band-data folder and the model's files are unchanged
    (a listing of 100,000 files is a fifth of a second)."""
    band_dir = catalog.band_data_dir()
    if band_dir is None:
        return []
    return list(_unplaced(str(catalog.root), model_id, str(band_dir), band_dir.stat().st_mtime_ns,
                          _data_key(catalog, model_id)))[:limit]


@functools.lru_cache(maxsize=8)
def _unplaced(root: str, model_id: str, band_dir: str, band_dir_mtime: int, data_key: tuple) -> tuple[str, ...]:
    on_map = set(map(str, Catalog.at(root).load(model_id).names))
    return tuple(sorted(stem for stem in (f[:-4] for f in os.listdir(band_dir) if f.endswith(".npz"))
                        if stem not in on_map))


def place_root_materials(root: str, model_id: str, names: list[str], *, params: dict | None = None,
                         k: int = PLACE_K) -> dict:
    """Materials of the data root (by name, from its band data) placed on a model and kept, as
    :func:`place_uploads` does for uploaded files; the same result."""
    catalog = Catalog.at(root)
    band_dir = catalog.band_data_dir()
    items, problems = [], []
    for name in names:
        path = band_dir / f"{name}.npz" if band_dir is not None else None
        if path is None or not path.is_file() or "/" in name:
            problems.append((name, f"{name}: no band data in this root"))
            continue
        items.append(SimpleNamespace(name=name, source=f"bands/{name}.npz", bands=load_band_data(path), plot=None,
                                     window=None, notes=[]))
    return place_and_keep(root, model_id, items, problems=problems, params=params, k=k, on_conflict="replace")
