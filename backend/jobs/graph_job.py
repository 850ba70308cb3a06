"""The ``graph`` kind: a model's k-nearest-neighbour graph (and its HDBSCAN tree at the default
min_samples) built into the shared cache folder, for models too large for the exact path
(:func:`backend.cluster.params.uses_graph`). The explorer submits it when it opens such a model
whose graph is not built yet, and shows this job's progress meanwhile; a web request never
builds a graph itself. Written atomically: a cancelled or killed build leaves nothing."""

from __future__ import annotations

import time

from backend.cluster.distances import check_metric
from backend.cluster.models import _data_key, cluster_model, graph_k, model_graph
from backend.cluster.params import ClusterParams
from backend.data.catalog import Catalog
from backend.jobs.execute import JobContext
from backend.jobs.kinds import JobKind, register

register(JobKind("graph", run="backend.jobs.graph_job:run_graph", lane="compute", nice=5, title="neighbour graph"))


def graph_key(catalog, model_id: str, *, metric: str, p: float, min_samples: int) -> str:
    metric, p = check_metric(metric, p)
    sig = _data_key(catalog, model_id)
    return f"{model_id}:{metric}:{p:g}:k{graph_k(min_samples)}:{sig[1][1] if sig[1] else sig[0][1]}:{sig[0][2]}"


def submit_graph(runner, catalog, model_id: str, *, metric: str = "minkowski", p: float = 0.2,
                 min_samples: int = 2) -> dict:
    """Queue the graph of ``model_id`` unless a job for it is queued or running; returns its record."""
    key = graph_key(catalog, model_id, metric=metric, p=p, min_samples=min_samples)
    return runner.submit_job("graph", key, reuse_done=False, model_id=model_id, metric=metric, p=p,
                             min_samples=int(min_samples))


def find_graph_job(store, catalog, model_id: str, *, metric: str, p: float, min_samples: int) -> dict | None:
    return store.find("graph", graph_key(catalog, model_id, metric=metric, p=p, min_samples=min_samples))


def run_graph(ctx: JobContext) -> dict:
    rec = ctx.record
    cat = Catalog(ctx.root)
    t0 = time.perf_counter()
    n = len(cat.load(rec["model_id"]).names)
    ctx.progress(0, 1, stage="loading", materials=n)
    graph = model_graph(cat, rec["model_id"], metric=rec["metric"], p=rec["p"], min_samples=rec["min_samples"],
                        progress=ctx.progress)
    t_graph = time.perf_counter() - t0
    # the tree of the view that opens first (the other min_samples follow in seconds, on demand)
    ctx.progress(0, 1, stage="spanning tree")
    cluster_model(cat, rec["model_id"], ClusterParams(metric=rec["metric"], p=rec["p"], min_samples=rec["min_samples"]))
    ctx.log(f"{rec['model_id']}: graph of {graph.shape[0]} x {graph.shape[1]} in {t_graph:.1f} s, "
            f"tree in {time.perf_counter() - t0 - t_graph:.1f} s")
    return {"materials": int(graph.shape[0]), "k": int(graph.shape[1]), "graph_s": round(t_graph, 1),
            "total_s": round(time.perf_counter() - t0, 1)}
