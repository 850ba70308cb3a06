"""The kinds of background work: one entry per kind, each naming the function that does it.

A kind's function runs in a job's own process (a local runner's child, or a Celery worker), never
in a web process; it is named as ``"module:function"`` and imported only there, so the web
process does not import what the work needs (torch for training). It takes a
:class:`backend.jobs.execute.JobContext` and returns the record's ``result`` (a JSON-able dict).

Adding a kind (e.g. a fingerprint-quality report) is one :func:`register` call next to its
function, plus a way to submit it (:func:`backend.jobs.store.enqueue` with the kind's key)::

    register(JobKind("quality", run="backend.quality:run_quality_job", lane="compute"))

The kind's module must be imported where jobs are submitted and run: list it in
:data:`KIND_MODULES` (imported by :func:`get_kind`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from backend.errors import ParameterError

#: a local runner runs one job of a lane at a time; lanes run side by side (a grid search does
#: not wait for a training run of hours)
LANES = ("train", "compute")


@dataclass(frozen=True)
class JobKind:
    """``run``: ``"module:function"`` doing the work (``fn(ctx) -> dict``); ``cleanup``:
    ``"module:function"`` (``fn(root, rec)``) removing what a killed or cancelled job left, or
    None; ``lane``: one of :data:`LANES`; ``nice``: CPU priority of its process (web requests
    first); ``title``: how pages and the CLI name it."""

    name: str
    run: str
    lane: str = "compute"
    nice: int = 0
    cleanup: str | None = None
    title: str = ""

    def __post_init__(self):
        if self.lane not in LANES:
            raise ParameterError(f"job kind {self.name!r}: lane must be one of {LANES}, got {self.lane!r}")


KINDS: dict[str, JobKind] = {}

#: modules that register kinds (imported on first look-up)
KIND_MODULES = ("backend.jobs.train_job", "backend.jobs.search_job", "backend.jobs.distances_job", "backend.jobs.quality_job",
                "backend.jobs.graph_job")


def register(kind: JobKind) -> JobKind:
    KINDS[kind.name] = kind
    return kind


def _load_all() -> None:
    for module in KIND_MODULES:
        importlib.import_module(module)


def get_kind(name: str) -> JobKind:
    if name not in KINDS:
        _load_all()
    if name not in KINDS:
        raise ParameterError(f"unknown job kind {name!r} (known: {sorted(KINDS)})")
    return KINDS[name]


def kinds_in_lane(lane: str) -> list[str]:
    _load_all()
    return [k.name for k in KINDS.values() if k.lane == lane]


def resolve(target: str) -> Callable:
    """``"module:function"`` -> the function."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
