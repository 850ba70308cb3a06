"""The ``quality`` kind: the fingerprint-quality report (:func:`backend.quality.quality_report`)
as a job, so that the evaluate page never imports torch or spends its cores on it.

A report is identified by :func:`quality_key` (root, models with their files' signatures, the
labels file's signature, the settings). Its table and warnings are written into
``<jobs dir>/results/quality-{key}/`` in one rename when it completes; the rows themselves are
also cached by content (:mod:`backend.quality.report`), so a second report over a subset is quick.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from backend.cache import file_signature
from backend.data.catalog import Catalog
from backend.fileio import json_digest
from backend.jobs.execute import JobContext
from backend.jobs.kinds import JobKind, register
from backend.jobs.store import JobStore
from backend.quality import QualitySpec, quality_report

register(JobKind("quality", run="backend.jobs.quality_job:run_quality", lane="compute", nice=10,
                 title="fingerprint quality"))


def quality_key(catalog, model_ids, spec) -> str:
    files = []
    for mid in model_ids:
        info = catalog.get(mid)
        files.append([file_signature(p) for p in (info.fingerprint_path, info.embedding_path) if p is not None])
    labels = catalog.labels_path()
    return json_digest({"v": 1, "root": str(catalog.root), "models": list(model_ids), "spec": spec.validate().key(),
                    "files": files, "labels": file_signature(labels) if labels and spec.labels else None})


def result_dir(store: JobStore, key: str) -> Path:
    return store.dir / "results" / f"quality-{key}"


def submit_quality(runner, catalog, model_ids, *, spec) -> dict:
    """Queue the report unless the same one is queued, running or done (result still on disk)."""
    key = quality_key(catalog, model_ids, spec)
    fields = dict(models=list(model_ids), spec=spec.key())
    rec = runner.submit_job("quality", key, **fields)
    if rec["state"] == "done" and not result_dir(runner.store, key).is_dir():
        rec = runner.submit_job("quality", key, reuse_done=False, **fields)
    return rec


def find_quality(store: JobStore, catalog, model_ids, *, spec) -> dict | None:
    """The newest job of this report (any state), or None: looking never starts one."""
    return store.find("quality", quality_key(catalog, model_ids, spec))


def load_quality_result(store: JobStore, rec: dict | None):
    """``(table, warnings)`` of a done report, or None when it is not (or no longer) on disk."""
    if rec is None or rec.get("state") != "done":
        return None
    folder = result_dir(store, rec["key"])
    try:
        table = pd.read_csv(folder / "quality.csv")
        warnings = json.loads((folder / "warnings.json").read_text())
    except (OSError, ValueError):
        return None
    return table, warnings


def run_quality(ctx: JobContext) -> dict:
    rec = ctx.record
    spec = QualitySpec(**rec["spec"])
    result = quality_report(Catalog(ctx.root), rec["models"], spec, progress=ctx.progress)
    with ctx.publish_dir(result_dir(ctx.store, rec["key"])) as tmp:
        result.table.to_csv(tmp / "quality.csv", index=False)
        (tmp / "warnings.json").write_text(json.dumps(result.warnings))
    ctx.log(f"{len(result.table)} rows in {result.timings['total_s']:.1f} s "
            f"({result.timings['cached_rows']} from the cache)")
    return {"rows": len(result.table), "total_s": result.timings["total_s"]}
