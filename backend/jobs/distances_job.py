"""The ``distances`` kind: the distance matrices of a root's models, computed into the shared
cache folder (:func:`backend.cluster.model_distances`) at the lowest CPU priority, so that the
first switch to a model does not wait for its matrix. Matrices stay on disk across restarts:
the app submits this job only when some are missing."""

from __future__ import annotations

from backend.cluster.models import distances_cached, prewarm_distances
from backend.cluster.params import default_model, uses_graph
from backend.data.catalog import Catalog
from backend.jobs.execute import JobContext
from backend.jobs.kinds import JobKind, register

register(JobKind("distances", run="backend.jobs.distances_job:run_distances", lane="compute", nice=19,
                 title="distance matrices"))


def prewarm_order(catalog) -> list[str]:
    """Encoded models, the default model's window and architecture first."""
    models = [m for m in catalog.models.values() if not m.is_unencoded]
    if not models:
        return []
    first = catalog.get(default_model(catalog))
    return [m.model_id for m in sorted(models, key=lambda m: (m.window != first.window, m.arch != first.arch,
                                                               m.model_id != first.model_id, m.model_id))]


def missing_distances(catalog, metric: str, p: float) -> list[str]:
    out = []
    for mid in prewarm_order(catalog):
        try:
            # a model on the graph path needs no matrix (its graph is a ``graph`` job)
            if not uses_graph(len(catalog.load(mid).names)) and not distances_cached(catalog, mid, metric=metric, p=p):
                out.append(mid)
        except Exception:  # a broken model is reported when it is opened
            continue
    return out


def submit_prewarm(runner, catalog, *, metric: str = "minkowski", p: float = 0.2) -> dict | None:
    """Queue the matrices that are not cached yet (None when all are, or the metric needs none)."""
    if metric == "euclidean" or p == 2:
        return None
    missing = missing_distances(catalog, metric, p)
    if not missing:
        return None
    return runner.submit_job("distances", f"{metric}:{p:g}", reuse_done=False, models=missing, metric=metric, p=p)


def run_distances(ctx: JobContext) -> dict:
    rec = ctx.record
    n = prewarm_distances(Catalog(ctx.root), rec["models"], metric=rec["metric"], p=rec["p"],
                          progress=lambda done, total, **info: ctx.progress(done, total, stage="distances"))
    ctx.log(f"{n} distance matrices cached")
    return {"models": n}
