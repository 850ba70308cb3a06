"""The grid search as a job (backend.jobs.search_job) on real models: run once, progress, result on
disk read by another process, cancel leaves nothing, a bad model named at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from backend.data.catalog import Catalog
from backend.errors import UnknownModelError
from backend.evaluate.grid import GridSpec, grid_search
from backend.evaluate.tables import load_result, save_result
from backend.jobs import JobStore, LocalRunner
from backend.jobs.search_job import find_search, load_search_result, result_dir, submit_search
from tests.conftest import PAPER_MODEL, PROJECT, copy_models

pytestmark = pytest.mark.shared_data  # real models of the published data

MODELS = (PAPER_MODEL, "resnet18_latent2_window1eV_steps60_split0_width1",
          "resnet50_latent1_window1eV_steps30_split5.0_width1")
SPEC = GridSpec(min_samples=(2,), min_cluster_size=(3, 4))


@pytest.fixture()
def root(tmp_path, shared_root, monkeypatch):
    monkeypatch.setenv("BANDSCAPE_CACHE", str(tmp_path / "cache"))  # the job processes inherit it
    return copy_models(shared_root, tmp_path / "root", MODELS)


def wait_state(store, job_id, states, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        rec = store.load(job_id)
        if rec["state"] in states:
            return rec
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {store.load(job_id)['state']} after {timeout} s")


def assert_same_tables(a, b):
    for name in ("per_model", "cells", "ranking"):
        pd.testing.assert_frame_equal(getattr(a, name).reset_index(drop=True), getattr(b, name).reset_index(drop=True),
                                      check_dtype=False)
    assert (a.labels == b.labels).all() and list(a.models) == list(b.models)


def test_result_round_trips_through_disk(root, tmp_path):
    r = grid_search(Catalog(root), list(MODELS), GridSpec(min_samples=(2, 3), min_cluster_size=(3, 300)),
                    cache_dir=tmp_path / "c")
    assert r.cells.best_dbcv_model.eq("").any()  # a cell with no two-cluster clustering: empty names
    back = load_result(save_result(r, tmp_path / "saved"))
    assert_same_tables(r, back)
    assert back.spec == r.spec and back.warnings == r.warnings
    assert back.cells.best_dbcv_model.tolist() == r.cells.best_dbcv_model.tolist()


def test_search_job_runs_once_and_reports(root):
    cat = Catalog(root)
    runner = LocalRunner(root, poll_s=0.1).start()
    try:
        assert find_search(runner.store, cat, list(MODELS), spec=SPEC) is None  # looking starts nothing
        rec = submit_search(runner, cat, list(MODELS), spec=SPEC)
        assert submit_search(runner, cat, list(MODELS), spec=SPEC)["job_id"] == rec["job_id"]  # not twice
        done = wait_state(runner.store, rec["job_id"], ("done", "failed"))
        assert done["state"] == "done", runner.store.log_tail(rec["job_id"])
        assert done["worker"]["job_pid"] != os.getpid()  # in its own process
        p = done["progress"]
        assert p["done"] == p["total"] == 3 + 2 and p["fraction"] == 1.0
        result = load_search_result(runner.store, done)
        assert_same_tables(result, grid_search(cat, list(MODELS), SPEC, cache_dir=root.parent / "check"))
        assert load_search_result(runner.store, done) is result  # read once per process
        # done: asking again returns the finished job, at once
        assert submit_search(runner, cat, list(MODELS), spec=SPEC)["job_id"] == rec["job_id"]
        with pytest.raises(UnknownModelError, match="resnet99_nope"):
            submit_search(runner, cat, [MODELS[0], "resnet99_nope"], spec=SPEC)
        # only training jobs on the train page
        assert runner.jobs("train") == [] and len(runner.jobs("search")) == 1
    finally:
        runner.stop()


READER = """
import json, sys
from backend.data.catalog import Catalog
from backend.jobs import JobStore
from backend.jobs.search_job import find_search, load_search_result
from backend.evaluate.grid import GridSpec
root, models = sys.argv[1], sys.argv[2].split(",")
spec = GridSpec(min_samples=(2,), min_cluster_size=(3, 4))
store = JobStore(root)
rec = find_search(store, Catalog(root), models, spec=spec)
r = load_search_result(store, rec)
print(json.dumps({"job": rec["job_id"], "state": rec["state"], "dbcv": r.per_model.dbcv.round(12).tolist()}))
"""


def test_two_processes_see_one_search(root):
    """One process runs a search (its runner: the app's web worker that holds the lane); another,
    as a second web worker, finds and reads it by what it is, not by a job id it was given."""
    runner = LocalRunner(root, poll_s=0.1).start()
    try:
        rec = submit_search(runner, Catalog(root), list(MODELS), spec=SPEC)
        wait_state(runner.store, rec["job_id"], ("done",))
    finally:
        runner.stop()
    out = subprocess.run([sys.executable, "-c", READER, str(root), ",".join(MODELS)], cwd=PROJECT,
                         capture_output=True, text=True, timeout=120, env=os.environ)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["job"] == rec["job_id"] and seen["state"] == "done"
    mine = load_search_result(JobStore(root), JobStore(root).load(rec["job_id"]))
    assert seen["dbcv"] == mine.per_model.dbcv.round(12).tolist()


def test_cancelled_search_leaves_no_result(root, shared_root, tmp_path):
    many = [m.model_id for m in Catalog(shared_root).models.values() if m.window == 1 and not m.is_unencoded][:24]
    big = copy_models(shared_root, tmp_path / "big", many)
    cat = Catalog(big)
    runner = LocalRunner(big, poll_s=0.1).start()
    try:
        rec = submit_search(runner, cat, many, spec=GridSpec())
        wait_state(runner.store, rec["job_id"], ("running",))
        deadline = time.time() + 120
        while (runner.store.load(rec["job_id"])["progress"].get("done") or 0) < 2 and time.time() < deadline:
            time.sleep(0.05)
        assert runner.store.load(rec["job_id"])["state"] == "running"  # stopped mid-way, not after
        runner.cancel(rec["job_id"])
        final = wait_state(runner.store, rec["job_id"], ("cancelled", "done", "failed"), timeout=60)
        assert final["state"] == "cancelled"
        assert not result_dir(runner.store, rec["key"]).exists()
        assert not list((runner.store.dir / "results").glob(".*")) if (runner.store.dir / "results").exists() else True
        assert load_search_result(runner.store, final) is None
        assert find_search(runner.store, cat, many, spec=GridSpec())["state"] == "cancelled"
    finally:
        runner.stop()


# ---- spread over two Celery workers ---------------------------------------------------------------

@pytest.fixture()
def two_celery_workers(redis_url, tmp_path):
    from tests.conftest import wait_for

    procs, logs = [], []
    env = {**os.environ, "REDIS_URL": redis_url}
    env.pop("BANDSCAPE_DATA", None)
    try:
        for i in (1, 2):
            log = tmp_path / f"celery-worker-{i}.log"
            logs.append(log)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "backend.jobs", "worker", "--pool=solo", "-c", "1", "-n",
                 f"w{i}@%h", "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=PROJECT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT))
        for proc, log in zip(procs, logs):
            wait_for(lambda: b"ready" in log.read_bytes() or proc.poll() is not None, 60, "a celery worker to start")
            assert proc.poll() is None, log.read_text()
        yield procs, logs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_search_split_over_two_celery_workers_equals_one_process(root, tmp_path, redis_url, two_celery_workers,
                                                                 monkeypatch):
    """On Celery the search queues one part per model; both workers compute models (each model
    once: the parts skip what another holds), the search then computes the AMI and the tables,
    and the result is the single-process one."""
    from backend.jobs import make_runner

    procs, logs = two_celery_workers
    monkeypatch.setenv("REDIS_URL", redis_url)
    cat = Catalog(root)
    runner = make_runner(root, redis_url)
    assert runner.kind == "celery"
    spec = GridSpec(min_samples=(2, 3), min_cluster_size=(3, 4, 5))
    rec = submit_search(runner, cat, list(MODELS), spec=spec)
    store = JobStore(root)
    done = wait_state(store, rec["job_id"], {"done", "failed"}, timeout=300)
    assert done["state"] == "done", store.log_tail(rec["job_id"]) + "".join(log.read_text()[-2000:] for log in logs)
    assert done["result"]["parts"] == len(MODELS) - 1
    parts = [r for r in store.all("search_part") if r["key"].startswith(rec["key"] + ":")]
    assert len(parts) == len(MODELS) - 1
    parts = [wait_state(store, r["job_id"], {"done", "failed"}) for r in parts]
    assert all(r["state"] == "done" for r in parts)
    # every model computed exactly once, by the two workers together
    assert sum(r["result"]["computed"] for r in parts) + done["result"]["computed_here"] == len(MODELS)
    assert {r["worker"]["pid"] for r in parts + [done]} == {p.pid for p in procs}
    single = grid_search(cat, list(MODELS), spec, cache_dir=tmp_path / "single", n_jobs=1)
    assert_same_tables(load_search_result(store, done), single)
