"""Consensus of several models' clusterings, and how stable each material's cluster is.

Given the clusterings of the same materials by m models (one HDBSCAN cell, e.g. the paper's 3/2
leaf), evidence accumulation (Fred & Jain 2005) combines them:

* the **co-association** of two materials is the share of models that put them in the same
  cluster (noise joins nobody);
* **consensus clusters**: average linkage on ``1 - co-association``, cut where groups are
  together in at least half of the models on average (:data:`THRESHOLD`); materials that are
  noise in more than half of the models, and consensus groups smaller than the cell's
  min_cluster_size, are consensus noise (-1);
* a material's **stability**: how consistently its cluster-mates stay with it across the models,
  i.e. its mean co-association with its consensus cluster-mates (1: every model puts all of
  them in its cluster; 0.5: each mate is with it in half of the models); for consensus noise,
  the share of models in which it is noise. A material is **stable** at >= :data:`STABLE`
  (three models in four agree).

Arrays in, arrays out (:func:`consensus`); :func:`model_consensus` clusters catalog models
exactly as the explorer does (cached matrices where there are; new ones computed in memory, in
forked worker processes outside the app) and caches its result on disk.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import sys
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from backend.cache import array_store, default_cache_dir, file_signature, make_read_only
from backend.cluster.models import cluster_model, cluster_model_transient, distances_cached, model_matrix_transient
from backend.cluster.params import LabelCounts, clustering_metric, takes_matrix
from backend.data.catalog import Catalog
from backend.errors import ParameterError
from backend.evaluate.select import select_models
from backend.fileio import write_bytes_atomic

THRESHOLD = 0.5
STABLE = 0.75
CACHE_VERSION = 1


@dataclass(frozen=True)
class ConsensusResult(LabelCounts):
    """``materials`` (n,); ``labels`` (n,) consensus clusters (-1 noise, 0 the largest);
    ``stability`` (n,) in [0, 1]; ``noise_share`` (n,): share of models where each is noise;
    ``model_ids`` the m models combined; ``params``: the cell (relevant clustering parameters)."""

    materials: np.ndarray
    labels: np.ndarray
    stability: np.ndarray
    noise_share: np.ndarray
    model_ids: tuple
    params: dict = field(default_factory=dict)


    def stable(self, threshold: float = STABLE) -> np.ndarray:
        return self.stability >= threshold

    def counts(self, threshold: float = STABLE) -> dict:
        """How many materials are stable, in a consensus cluster or as noise."""
        s = self.stable(threshold)
        return {"materials": len(self.labels), "stable": int(s.sum()),
                "stable_in_cluster": int((s & (self.labels >= 0)).sum()),
                "stable_noise": int((s & (self.labels < 0)).sum())}

    def table(self) -> pd.DataFrame:
        """One row per material: consensus cluster, stability, noise share, models, the cell."""
        frame = pd.DataFrame({"material": self.materials, "consensus_cluster": self.labels,
                              "stability": np.round(self.stability, 6), "stable": self.stable(),
                              "noise_share": np.round(self.noise_share, 6), "n_models": len(self.model_ids)})
        for key, value in self.params.items():
            frame[key] = value
        return frame


def _check_labelings(labelings) -> np.ndarray:
    L = np.asarray(labelings)
    if L.ndim != 2:
        raise ParameterError(f"labelings must be a 2-D array (n_models, n_materials), got shape {L.shape}")
    if L.shape[0] < 2:
        raise ParameterError(f"a consensus needs at least two clusterings, got {L.shape[0]}")
    if L.shape[1] < 2:
        raise ParameterError(f"a consensus needs at least two materials, got {L.shape[1]}")
    return L.astype(np.int64)


def coassociation(labelings) -> np.ndarray:
    """``labelings`` (m, n) -> (n, n): the share of the m clusterings in which two materials are
    in the same cluster (noise joins nobody; the diagonal is the share in which a material is
    not noise)."""
    from scipy import sparse  # scipy.sparse: ~0.3 s to import; only for a consensus

    L = _check_labelings(labelings)
    m, n = L.shape
    C = np.zeros((n, n))
    rows = np.arange(n)
    for labels in L:
        keep = labels >= 0
        if not keep.any():
            continue
        A = sparse.csr_matrix((np.ones(int(keep.sum())), (rows[keep], labels[keep])),
                              shape=(n, int(labels.max()) + 1))
        C += (A @ A.T).toarray()
    return C / m


def stability(C: np.ndarray, labels: np.ndarray, noise_share: np.ndarray) -> np.ndarray:
    """Per material (n,): for a member of a consensus cluster, the mean co-association (``C``,
    (n, n)) with its consensus cluster-mates, i.e. the share of models in which a mate is in its
    cluster, averaged over the mates; for consensus noise, the share of models in which it is
    noise (how consistently it is left alone)."""
    out = np.asarray(noise_share, dtype=float).copy()
    for k in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == k)
        block = C[np.ix_(members, members)]
        out[members] = (block.sum(axis=1) - np.diag(block)) / (len(members) - 1)
    return out


def consensus(labelings, min_cluster_size: int = 2, *, materials=None, model_ids=(), params=None) -> ConsensusResult:
    """Consensus clusters and stabilities of ``labelings`` (m, n) (see the module's docstring).
    ``min_cluster_size``: smaller consensus groups become noise."""
    # scipy.cluster and scipy.spatial: ~0.8 s to import; only for a consensus
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    L = _check_labelings(labelings)
    m, n = L.shape
    noise_share = (L < 0).mean(axis=0)
    C = coassociation(L)
    labels = np.full(n, -1, dtype=np.int64)
    core = np.flatnonzero(noise_share <= THRESHOLD)
    if len(core) >= 2:
        dist = 1.0 - C[np.ix_(core, core)]
        np.fill_diagonal(dist, 0.0)
        Z = linkage(squareform(np.clip(dist, 0.0, 1.0), checks=False), method="average")
        # groups whose members are together in at least half of the models, on average
        flat = fcluster(Z, t=THRESHOLD, criterion="distance")
        labels[core] = flat - 1
    elif len(core) == 1:
        labels[core] = 0
    # small groups are noise; the others numbered by size (0 the largest, ties by first member)
    values, first, counts = np.unique(labels, return_index=True, return_counts=True)
    keep = [(c, f, v) for v, f, c in zip(values, first, counts) if v >= 0 and c >= int(min_cluster_size)]
    order = sorted(keep, key=lambda t: (-t[0], t[1]))
    new = np.full(n, -1, dtype=np.int64)
    for rank, (_, _, v) in enumerate(order):
        new[labels == v] = rank
    materials = np.arange(n).astype(str) if materials is None else np.asarray(materials)
    return ConsensusResult(materials=materials, labels=new, stability=stability(C, new, noise_share),
                           noise_share=noise_share,
                           model_ids=tuple(model_ids), params=dict(params or {}))


# ---- catalog models --------------------------------------------------------------------------

def consensus_models(catalog, filter_text: str | None = None, window: float | None = None) -> tuple[str, list[str]]:
    """The models a consensus combines, and the filter that chose them: those of ``filter_text``
    (as on the evaluate page) when given; else the autoencoders of ``window`` (the 72 one-eV
    models on the published data), or every autoencoder model (filter ``""``) where that window
    has fewer than two (the demo has one per window) or no window is given. (Maps of one part of a
    fingerprint only where the filter names ids: :func:`backend.evaluate.select.select_models`.)"""
    if filter_text:
        return filter_text, select_models(catalog, filter_text)
    if window is not None:
        flt = f"window={window:g}"
        try:
            ids = select_models(catalog, flt)
        except ParameterError:  # only unencoded baselines at this window
            ids = []
        if len(ids) >= 2:
            return flt, ids
    return "", select_models(catalog, "")


def _cache_path(catalog, model_ids, params, cache_dir) -> Path:
    sigs = []
    for mid in model_ids:
        info = catalog.get(mid)
        sigs.append([mid, list(file_signature(info.embedding_path)),
                     list(file_signature(info.fingerprint_path)) if info.fingerprint_path else None])
    key = hashlib.sha256(json.dumps({"v": CACHE_VERSION, "models": sigs, "params": params.relevant()},
                                    sort_keys=True).encode()).hexdigest()[:24]
    return Path(cache_dir or default_cache_dir()) / "consensus" / f"{key}.npz"


def _model_labels(catalog, model_id: str, params) -> tuple[np.ndarray, np.ndarray]:
    return catalog.load(model_id).names, np.asarray(cluster_model_transient(catalog, model_id, params).labels)


def _model_work(root: str, model_id: str, params, spill: str | None = None) -> tuple:
    """In a worker process: the model's data and distance matrix (CSV parsing and NumPy, no
    hdbscan to import; None when the matrix is cached), or its labels when HDBSCAN takes no
    matrix (Euclidean, the graph path). With ``spill`` (a folder), the matrix is written to a
    file there and its path returned instead (see :func:`model_labelings`)."""
    cat = Catalog.at(root)
    data = cat.load(model_id)
    if not takes_matrix(params, len(data.names)):
        return data.names, np.asarray(cluster_model(cat, model_id, params).labels), None, None
    D = model_matrix_transient(cat, model_id, params)
    if spill is not None and D is not None:
        fd, path = tempfile.mkstemp(suffix=".f8", dir=spill)
        with os.fdopen(fd, "wb") as f:
            D.tofile(f)
        D = (path, D.shape)
    return data.names, None, data, D


def _unspill(D):
    """A matrix :func:`_model_work` wrote to a file: mapped (hdbscan copies it anyway), the file
    unlinked at once (the mapping keeps its pages until dropped)."""
    if not isinstance(D, tuple):
        return D
    path, shape = D
    try:
        return np.memmap(path, dtype=np.float64, mode="r", shape=shape)
    finally:
        os.unlink(path)


def _fork_is_safe() -> bool:
    """Whether worker processes may be forked from this one: on Linux, and only while no other
    thread runs (a fork beside a running thread can copy a lock it holds: the app's server threads,
    a job's progress thread)."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def model_labelings(catalog, model_ids, params, *, workers: int | None = None,
                    processes: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every model's clustering (exactly as the explorer shows it: ``cluster_model_transient``,
    from cached matrices where there are, without writing new ones) of the materials all of them have:
    (materials (n,), labels (m, n)), materials in the first model's order. ``workers``: how many
    models at a time (default: one per core); ``processes``: in forked processes rather than
    threads (default: when :func:`_fork_is_safe`, i.e. from the CLI, not inside the app). Threads
    share one GIL, which reading the CSVs and building hdbscan's trees hold: two threads kept two
    cores ~70 % busy on the 72 published models, two processes keep them busy (6.3 -> 5.0 s
    there, though each process imports hdbscan)."""
    params = params.validate()
    model_ids = list(model_ids)
    workers = max(1, min(workers or os.cpu_count() or 1, len(model_ids)))
    if processes is None:
        # with every matrix cached (the app's prewarm ran) there is little left to share out
        metric, p = clustering_metric(params)
        processes = (workers > 1 and _fork_is_safe()
                     and not all(distances_cached(catalog, mid, metric=metric, p=p) for mid in model_ids))
    if processes:
        names, labelings = [], []
        # the matrices come back as files in memory (tmpfs), not through the result pipe: a
        # worker's 2.4 MB result blocked it until this process, busy in hdbscan's tree code
        # with the GIL held, drained the pipe (0.7 s of each worker's 5 s on the published data)
        shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        with tempfile.TemporaryDirectory(prefix="bandscape-consensus-", dir=shm) as spill, \
                ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            # the workers read the CSVs and compute the matrices; this process imports hdbscan
            # meanwhile and turns each matrix into its tree and labels as it arrives
            done = pool.map(partial(_model_work, str(catalog.root), params=params, spill=spill), model_ids)
            for mid, (nm, labels, data, D) in zip(model_ids, done):
                if labels is None:
                    labels = np.asarray(cluster_model_transient(catalog, mid, params, data=data,
                                                                D=_unspill(D)).labels)
                names.append(nm)
                labelings.append(labels)
    else:
        # NumPy's parts (the matrix is n^2 d / 2 logs and exps; the core distances a partition)
        # release the GIL, so the models share the cores
        with ThreadPoolExecutor(workers) as pool:
            names, labelings = zip(*pool.map(partial(_model_labels, catalog, params=params), model_ids))
    common = set(names[0])
    for nm in names[1:]:
        common &= set(nm)
    materials = np.array([n for n in names[0] if n in common])
    if len(materials) < 2:
        raise ParameterError(f"the {len(model_ids)} models share only {len(materials)} materials")
    rows = [labels[pd.Index(nm).get_indexer(materials)] for labels, nm in zip(labelings, names)]
    return materials, np.stack(rows)


def model_consensus(catalog, model_ids, params, *, cache_dir=None, use_cache: bool = True) -> ConsensusResult:
    """The consensus of catalog models clustered with ``params`` (one cell), over the materials
    they all have, in the first model's order. Cached in the process and on disk
    (``$BANDSCAPE_CACHE/consensus``), keyed by the models' files and the parameters."""
    model_ids = list(dict.fromkeys(model_ids))
    if len(model_ids) < 2:
        raise ParameterError(f"a consensus needs at least two models; got {len(model_ids)} "
                             f"({', '.join(model_ids) or 'none'}): widen the model filter")
    params = params.validate()
    if params.algo != "hdbscan":
        raise ParameterError(f"the consensus combines HDBSCAN clusterings (one cell); algo is {params.algo!r}")
    path = _cache_path(catalog, model_ids, params, cache_dir)
    return _cached_consensus(str(path), tuple(model_ids), params, use_cache, catalog)


def _cached_consensus(path: str, model_ids: tuple, params, use_cache: bool, catalog) -> ConsensusResult:
    store_key = f"bandscape:consensus:{path}"
    if use_cache:
        hit = array_store().get(store_key)
        if hit is not None:
            return hit
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            result = ConsensusResult(materials=arrays["materials"], labels=arrays["consensus"],
                                     stability=arrays["stability"], noise_share=arrays["noise_share"],
                                     model_ids=model_ids, params=params.relevant())
            array_store().set(store_key, make_read_only(result))
            return result
        except (OSError, ValueError, EOFError, KeyError):
            pass
    materials, L = model_labelings(catalog, list(model_ids), params)
    result = consensus(L, params.min_cluster_size, materials=materials, model_ids=model_ids, params=params.relevant())
    buf = io.BytesIO()
    np.savez(buf, materials=materials, labels=L.astype(np.int32), consensus=result.labels,
             stability=result.stability, noise_share=result.noise_share)
    write_bytes_atomic(path, buf.getvalue())
    array_store().set(store_key, make_read_only(result))
    return result
