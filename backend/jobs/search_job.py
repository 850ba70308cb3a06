"""The ``search`` kind: the evaluate page's grid search (:func:`backend.evaluate.grid.grid_search`)
as a job, its result on disk where every web worker reads it.

A search is identified by :func:`~backend.evaluate.spec.search_key` (root, models and their
files' signatures, grid). Its result is written into ``<jobs dir>/results/search-{key}/`` in one
rename when the search completes (:meth:`~backend.jobs.execute.JobContext.publish_dir`), so a
cancelled or failed search leaves nothing visible. The same search asked for again returns the
job that is queued, running or done for it.
"""

from __future__ import annotations

import os
from pathlib import Path

from backend.cache import memoize_array
from backend.data.catalog import Catalog
from backend.evaluate.grid import _prepare, evaluate_models_into_cache, grid_search
from backend.evaluate.spec import search_key, spec_from_key
from backend.evaluate.tables import load_result, save_result
from backend.fileio import file_lock
from backend.jobs.choose import make_runner
from backend.jobs.execute import JobContext
from backend.jobs.kinds import JobKind, register
from backend.jobs.store import JobStore

register(JobKind("search", run="backend.jobs.search_job:run_search", lane="compute", nice=10, title="grid search"))
register(JobKind("search_part", run="backend.jobs.search_job:run_search_part", lane="compute", nice=10,
                 title="grid search (models)"))


def result_dir(store: JobStore, key: str) -> Path:
    return store.dir / "results" / f"search-{key}"


def submit_search(runner, catalog, model_ids, *, spec) -> dict:
    """Queue the grid search of ``model_ids`` over ``spec`` unless it is queued, running or done
    (with its result still on disk); returns its record."""
    spec = spec.validate()
    key = search_key(catalog, model_ids, spec)
    fields = dict(models=list(model_ids), spec=spec.key())
    rec = runner.submit_job("search", key, **fields)
    if rec["state"] == "done" and not result_dir(runner.store, key).is_dir():  # its result was removed
        rec = runner.submit_job("search", key, reuse_done=False, **fields)
    return rec


def find_search(store: JobStore, catalog, model_ids, *, spec) -> dict | None:
    """The newest job of this search (any state), or None: looking never starts one."""
    return store.find("search", search_key(catalog, model_ids, spec))


def load_search_result(store: JobStore, rec: dict):
    """The :class:`~backend.evaluate.grid.GridResult` of a done search job, or None when its
    result is not (or no longer) on disk. Read once per process and result (then the same object)."""
    if rec is None or rec.get("state") != "done":
        return None
    folder = result_dir(store, rec["key"])
    try:
        return _load(str(folder), folder.stat().st_mtime_ns)
    except (OSError, ValueError, KeyError):
        return None


@memoize_array
def _load(folder: str, mtime_ns: int):
    return load_result(folder)


def split_over_workers() -> bool:
    """Whether a search is spread over workers: on Celery (``REDIS_URL``), where workers on
    several machines share the cache folder; a local runner's search uses the machine's cores
    (joblib) instead."""
    return bool(os.environ.get("REDIS_URL"))


def submit_parts(runner, rec: dict) -> list[dict]:
    """One ``search_part`` job per model of the search ``rec`` but the first (the search itself
    starts there), each starting at its own model."""
    return [runner.submit_job("search_part", f"{rec['key']}:{i}", reuse_done=False, models=rec["models"],
                              spec=rec["spec"], start=i)
            for i in range(1, len(rec["models"]))]


def run_search_part(ctx: JobContext) -> dict:
    rec = ctx.record
    out = evaluate_models_into_cache(Catalog(ctx.root), rec["models"], spec_from_key(rec["spec"]), start=rec["start"],
                                     progress=ctx.progress)
    ctx.log(f"computed {len(out['computed'])} models: {', '.join(out['computed'])}")
    return {"computed": len(out["computed"]), "skipped": len(out["skipped"])}


def run_search(ctx: JobContext) -> dict:
    """The search: on Celery, first its parts (one job per model; this job takes part too, then
    waits for the models others still hold), then the cross-model AMI and the tables here."""
    rec = ctx.record
    catalog, spec = Catalog(ctx.root), spec_from_key(rec["spec"])
    parts, own = [], {"computed": []}
    if split_over_workers() and len(rec["models"]) > 1:
        parts = submit_parts(make_runner(ctx.root), rec)
        ctx.log(f"{len(parts)} part jobs queued: {', '.join(p['job_id'] for p in parts)}")
        own = evaluate_models_into_cache(catalog, rec["models"], spec, start=0, progress=ctx.progress)
        _wait_for_models(catalog, rec["models"], spec, own["skipped"])
    result = grid_search(catalog, rec["models"], spec, progress=ctx.progress)
    with ctx.publish_dir(result_dir(ctx.store, rec["key"])) as tmp:
        save_result(result, tmp)
    t = result.timings
    ctx.log(f"{len(result.models)} models x {len(result.cells)} cells in {t['total_s']:.1f} s")
    return {"models": len(result.models), "cells": len(result.cells), "total_s": t["total_s"],
            "models_computed": t["models_computed"], "ami_cached": t["ami_cached"], "parts": len(parts),
            "computed_here": len(own["computed"]) + t["models_computed"]}


def _wait_for_models(catalog, model_ids, spec, held) -> None:
    """Until the parts that hold these models' locks let go (done, or gone: a crashed part's
    model is then computed by :func:`grid_search` here)."""
    if not held:
        return
    _, _, _, keys, cache, _ = _prepare(catalog, model_ids, spec, None)
    for mid in held:
        with file_lock(cache / f"{mid}-{keys[mid]}.lock"):
            pass
