"""Training jobs on real images: the local runner (spawned processes), Celery through a real
redis-server and worker, dedupe, bounds, cancel, the CLI, and a web process free of torch."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.autoencoder.config import TrainConfig
from backend.data.catalog import Catalog
from backend.data.model_ids import model_paths
from backend.errors import ParameterError
from backend.jobs import JobStore, LocalRunner, make_runner
from tests.conftest import PROJECT, copy_demo_images, free_port, wait_for

TINY = dict(arch="resnet18", latent=1, epochs=2, split=0.25, image_size=64, batch_size=4)
LONG = dict(TINY, epochs=400)  # long enough to be cancelled mid-training (~0.1 s an epoch here)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return copy_demo_images(tmp_path_factory.mktemp("images") / "train_1eV")


def state(store: JobStore, job_id: str) -> str:
    return store.load(job_id)["state"]


def model_files(root: Path, model_id: str) -> list[Path]:
    return [p for p in model_paths(root, model_id).values() if p.exists()]


def leftovers(root: Path) -> list[Path]:
    """Temporary files of atomic writes that were never renamed."""
    return [p for d in ("models", "embeddings") for p in (root / d).glob(".*.tmp")]


# ---- submitting -----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, field", [
    ({"latent": 4}, "latent"), ({"split": 1.0}, "split"), ({"image_size": 50}, "image_size"),
    ({"epochs": 0}, "epochs"), ({"arch": "vgg16"}, "arch"), ({"epochs": "2"}, "epochs"), ({"window": -1}, "window"),
])
def test_out_of_bounds_parameters_are_refused(tmp_path, images, bad, field):
    runner = LocalRunner(tmp_path)  # not started: nothing would run anyway
    with pytest.raises(ParameterError, match=field):
        runner.submit([TrainConfig(**TINY), TrainConfig(**{**TINY, **bad})], images)
    assert runner.jobs() == []  # one bad config in a grid queues none of it


def test_same_model_runs_once(tmp_path, images):
    runner = LocalRunner(tmp_path)
    first = runner.submit([TrainConfig(**TINY)], images)[0]
    assert first.status == "queued"
    again = runner.submit([TrainConfig(**TINY), TrainConfig(**{**TINY, "seed": 1})], images)
    assert (again[0].status, again[0].job_id) == ("duplicate", first.job_id)
    # the seed is not part of a model id: another seed is the same model, not queued twice
    assert (again[1].status, again[1].job_id) == ("duplicate", first.job_id)
    assert len(runner.jobs()) == 1

    # a finished job's model is not trained again; the same id returns the finished job
    store = runner.store
    store.update(first.job_id, state="done")
    for p in model_paths(tmp_path, first.model_id).values():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    assert runner.submit([TrainConfig(**TINY)], images)[0].job_id == first.job_id

    # a model that exists without a job is left alone, unless overwrite
    other = TrainConfig(**{**TINY, "latent": 2})
    model_paths(tmp_path, other.model_id)["embedding"].write_text("x")
    assert runner.submit([other], images)[0].status == "exists"
    assert runner.submit([other], images, overwrite=True)[0].status == "queued"

    # a cancelled job can be submitted again: a new job
    third = runner.submit([TrainConfig(**{**TINY, "latent": 3})], images)[0]
    assert runner.cancel(third.job_id)["state"] == "cancelled"
    retry = runner.submit([TrainConfig(**{**TINY, "latent": 3})], images)[0]
    assert retry.status == "queued" and retry.job_id != third.job_id

    with pytest.raises(ParameterError, match="images"):
        runner.submit([TrainConfig(**TINY)], tmp_path / "no-such-folder")


# ---- the local runner -------------------------------------------------------------------------------

def test_local_runner_queues_trains_and_cancels(tmp_path, images):
    runner = LocalRunner(tmp_path, poll_s=0.2).start()
    store = runner.store
    try:
        a, b, c = runner.submit([TrainConfig(**TINY), TrainConfig(**LONG), TrainConfig(**{**LONG, "latent": 2})], images)
        wait_for(lambda: state(store, a.job_id) == "running", 30, "the first job to start")
        assert state(store, b.job_id) == "queued"  # one job at a time: the second waits
        wait_for(lambda: state(store, a.job_id) in ("done", "failed"), 150, "the first job to finish")
        rec = store.load(a.job_id)
        assert rec["state"] == "done", store.log_tail(a.job_id)

        # progress reached the record: per-epoch history, batch losses, final position
        assert [h["epoch"] for h in rec["history"]] == [1, 2]
        assert all(h["train_loss"] > 0 and h["val_loss"] > 0 for h in rec["history"])
        assert rec["batch_losses"] and rec["progress"]["fraction"] == 1.0
        assert rec["worker"]["job_pid"] != os.getpid() and rec["result"]["device"] == "cpu"
        assert len(model_files(tmp_path, a.model_id)) == len(model_paths(tmp_path, a.model_id))  # every file
        assert Catalog(tmp_path).get(a.model_id).epochs == 2

        # the second job starts after the first; cancelled mid-training it leaves no model
        wait_for(lambda: (r := store.load(b.job_id))["state"] == "running" and r["progress"].get("epoch", 0) >= 2,
                 90, "the second job to train")
        runner.cancel(b.job_id)
        wait_for(lambda: state(store, b.job_id) != "running", 40, "the cancel")
        assert state(store, b.job_id) == "cancelled"
        assert model_files(tmp_path, b.model_id) == [] and leftovers(tmp_path) == []
        assert "cancel" in store.log_tail(b.job_id)
        assert b.model_id not in Catalog(tmp_path)

        # a job whose process dies (here: killed as by the out-of-memory killer) fails, leaving no model
        wait_for(lambda: (r := store.load(c.job_id))["state"] == "running" and r["progress"].get("epoch", 0) >= 2,
                 120, "the third job to train")
        os.kill(store.load(c.job_id)["worker"]["job_pid"], signal.SIGKILL)
        wait_for(lambda: state(store, c.job_id) != "running", 30, "the runner to notice")
        rec = store.load(c.job_id)
        assert rec["state"] == "failed" and "SIGKILL" in rec["error"]
        assert model_files(tmp_path, c.model_id) == [] and leftovers(tmp_path) == []
        assert "epoch 2/400" in store.log_tail(c.job_id)  # the log of the failure, for the page
    finally:
        runner.stop()


def test_restart_requeues_a_job_whose_process_is_gone(tmp_path, images):
    runner = LocalRunner(tmp_path)
    job = runner.submit([TrainConfig(**TINY)], images)[0]
    # as the app leaves it when killed mid-run: running, on this host, its processes gone
    runner.store.claim_next("local", {"host": socket.gethostname(), "pid": 2 ** 22 + 1, "runner_pid": 2 ** 22 + 1,
                                      "job_pid": 2 ** 22 + 1})
    assert state(runner.store, job.job_id) == "running"
    assert runner.recover() == [job.job_id]
    assert state(runner.store, job.job_id) == "queued"


# ---- Celery through a real Redis ------------------------------------------------------------------

@pytest.fixture()
def celery_worker(redis_url, tmp_path):
    log = open(tmp_path / "celery-worker.log", "wb")
    env = {**os.environ, "REDIS_URL": redis_url}
    env.pop("BANDSCAPE_DATA", None)
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "backend.jobs", "worker", "--pool=solo", "-c", "1",
                             "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                            cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: b"ready" in (tmp_path / "celery-worker.log").read_bytes() or proc.poll() is not None, 60,
                 "the celery worker to start")
        assert proc.poll() is None, (tmp_path / "celery-worker.log").read_text()
        yield proc
    finally:
        proc.terminate()  # warm shutdown; no task is running by now
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_celery_worker_trains_and_cancels(tmp_path, images, redis_url, celery_worker):
    root = tmp_path / "root"
    root.mkdir()
    runner = make_runner(root, redis_url)
    assert runner.kind == "celery"
    store = runner.store
    a, b = runner.submit([TrainConfig(**TINY), TrainConfig(**LONG)], images)
    wait_for(lambda: state(store, a.job_id) in ("done", "failed"), 150, "the Celery job to finish")
    rec = store.load(a.job_id)
    assert rec["state"] == "done", store.log_tail(a.job_id) + (tmp_path / "celery-worker.log").read_text()[-3000:]
    assert rec["executor"] == "celery" and rec["worker"]["pid"] == celery_worker.pid  # ran in the worker
    assert [h["epoch"] for h in rec["history"]] == [1, 2] and rec["batch_losses"]
    assert len(model_files(root, a.model_id)) == len(model_paths(root, a.model_id)) and a.model_id in Catalog(root)

    # cancel through the record's flag: the worker's progress callback stops the run
    wait_for(lambda: (r := store.load(b.job_id))["state"] == "running" and r["progress"].get("epoch", 0) >= 2,
             60, "the second Celery job to train")
    runner.cancel(b.job_id)
    wait_for(lambda: state(store, b.job_id) != "running", 30, "the worker to act on the cancel")
    assert state(store, b.job_id) == "cancelled"
    assert model_files(root, b.model_id) == [] and leftovers(root) == []
    assert celery_worker.poll() is None  # the worker lives on for the next job


def test_celery_without_a_broker_fails_the_job_clearly(tmp_path, images):
    runner = make_runner(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    from backend.errors import BandscapeError

    with pytest.raises(BandscapeError, match="could not reach the broker"):
        runner.submit([TrainConfig(**TINY)], images)
    (rec,) = runner.jobs()
    assert rec["state"] == "failed" and "broker" in rec["error"]


# ---- CLI and the web process ------------------------------------------------------------------------

def cli(*args, check=True):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    proc = subprocess.run([sys.executable, "-m", "backend", "jobs", *map(str, args)], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=240)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_cli_submit_list_cancel_wait(tmp_path, images):
    flags = ["--images", images, "--out", tmp_path, "--image-size", 64, "--batch-size", 4, "--latent", 1,
             "--epochs", 2, "--split", 0.25]
    job_id, model_id, status = cli("submit", *flags).stdout.split()
    assert status == "queued" and model_id == TrainConfig(**TINY).model_id
    assert cli("submit", *flags).stdout.split()[:3] == [job_id, model_id, "already"]

    bad = cli("submit", *flags[:4], "--image-size", 50, check=False)
    assert bad.returncode == 2 and "image_size must be a multiple of 32" in bad.stderr

    # a sub-grid of the paper's: window taken from the folder's name (train_1eV)
    grid = cli("submit", "--images", images, "--out", tmp_path, "--image-size", 64, "--grid", "paper",
               "--arch", "resnet18", "--latent", 1, "--epochs", 30).stdout.splitlines()
    assert len(grid) == 3 and all("window1eV_steps30" in line for line in grid)
    for line in grid:
        assert "cancelled" in cli("cancel", line.split()[0], "--out", tmp_path).stdout

    listed = cli("list", "--out", tmp_path).stdout.splitlines()
    assert [line.split()[:3] for line in listed][0] == [job_id, model_id, "queued"]
    assert sum(" cancelled " in line for line in listed) == 3

    # --wait runs the local queue in the foreground until the job is done
    done = cli("submit", *flags, "--wait")
    assert f"{job_id}  {model_id}  done" in done.stdout
    assert model_id in Catalog(tmp_path)
    records = json.loads(cli("list", "--out", tmp_path, "--json").stdout)
    assert {r["job_id"]: r["state"] for r in records}[job_id] == "done"
    assert "done in" in cli("log", job_id, "--out", tmp_path).stdout


def test_web_process_never_imports_torch(tmp_path, images):
    """The app validates and queues jobs, and its runner starts their processes, without torch
    (a CUDA context in the web server would not survive the job processes it starts). The job is
    a long one: a short one may finish before the app stops, and the test is of the stop."""
    root = tmp_path / "root"
    shutil.copytree(images, root / "images" / "train_1eV")
    emb = root / "embeddings"
    emb.mkdir()
    (emb / "unencoded_window1eV_width1_embedding.csv").write_text(
        "filename,z0,z1\n" + "".join(f"{p.name},{i},{i % 3}\n" for i, p in enumerate(sorted(images.glob("*.png")))))
    code = f"""
import sys, app, app_state
from backend.autoencoder.config import TrainConfig
app.create_app({str(root)!r})
runner = app_state.get_job_runner()
runner.submit([TrainConfig(**{LONG!r})], {str(root / 'images' / 'train_1eV')!r})
import time
deadline = time.time() + 60
while runner.jobs()[0]["state"] == "queued" and time.time() < deadline:
    time.sleep(0.2)
print(runner.jobs()[0]["state"], sorted({{m.split('.')[0] for m in sys.modules}} & {{'torch', 'torchvision', 'umap'}}))
runner.stop()
"""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env={**env, "BANDSCAPE_PREWARM": "0"},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(None, 1) == ["running", "[]\n"]
    # stopping the app put the running job back in the queue, with nothing written
    assert state(JobStore(root), json.loads(next(JobStore(root).dir.glob("*.json")).read_text())["job_id"]) == "queued"
    assert not (root / "models").exists() or list((root / "models").iterdir()) == []


def test_estimate_uses_the_measured_cpu_throughput():
    from backend.jobs import estimate_seconds, format_duration

    r18 = TrainConfig(arch="resnet18", epochs=30, split=0.0, image_size=224, channels=64)  # the study's
    # 546 images x 30 epochs at 6.2 images/s, plus encoding and UMAP
    assert 546 * 30 / 6.2 < estimate_seconds(r18, 546) < 546 * 30 / 6.2 + 60
    assert estimate_seconds(TrainConfig(arch="resnet50", epochs=30, split=0.0, image_size=224, channels=64),
                            546) > 2 * estimate_seconds(r18, 546)
    small = TrainConfig(arch="resnet18", epochs=30, split=0.0, image_size=112, channels=64)
    assert estimate_seconds(small, 546) < estimate_seconds(r18, 546) / 3.5  # a quarter of the pixels
    narrow = TrainConfig(arch="resnet18", epochs=30, split=0.0, image_size=224, channels=32)
    assert estimate_seconds(narrow, 546) < estimate_seconds(r18, 546) / 3.5  # a quarter of the width^2
    assert format_duration(3725) == "1 h 02 min" and format_duration(42) == "42 s"


def test_every_command_takes_the_data_root_as_data(tmp_path, capsys, monkeypatch):
    from backend.__main__ import main

    monkeypatch.delenv("BANDSCAPE_DATA", raising=False)
    assert main(["jobs", "list", "--data", str(tmp_path)]) == 0
    assert "no jobs under" in capsys.readouterr().out
    assert main(["jobs", "list", "--out", str(tmp_path)]) == 0  # the old flag still works, with a note
    assert "--out is deprecated here; the data root is --data" in capsys.readouterr().err
    # without --data a command reads the app's root, the demo (tests/test_cli.py); those that make
    # a new root ask for one
    for command in (["preprocess", "--eigenvals", "x"], ["synth"]):
        with pytest.raises(SystemExit):
            main(command)
        assert "--data" in capsys.readouterr().err, command


def test_a_readonly_root_runs_jobs_and_stays_untouched(tmp_path, monkeypatch):
    """Job records live in the state folder, not in the data root: a root nobody may write to (a
    lab's shared dataset, a published one) runs a job, and its files are exactly what they were."""
    import stat

    from backend.cluster.models import distances_cached
    from backend.jobs.distances_job import submit_prewarm
    from tests.conftest import copy_models, demo_model

    monkeypatch.setenv("BANDSCAPE_CACHE", str(tmp_path / "state"))
    root = copy_models(PROJECT, tmp_path / "root", [demo_model(1), demo_model(3)])
    for path in sorted(root.rglob("*"), reverse=True) + [root]:
        path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH | (stat.S_IXUSR if path.is_dir() else 0))
    before = sorted((str(p), p.stat().st_mtime_ns) for p in root.rglob("*"))
    runner = LocalRunner(root).start()
    try:
        rec = submit_prewarm(runner, Catalog(root))
        assert rec is not None and JobStore(root).dir.is_relative_to(tmp_path / "state")
        wait_for(lambda: runner.store.load(rec["job_id"])["state"] in ("done", "failed"), 120, "the distances job")
        assert runner.store.load(rec["job_id"])["state"] == "done", runner.store.log_tail(rec["job_id"])
    finally:
        runner.stop()
    assert all(distances_cached(Catalog(root), m) for m in (demo_model(1), demo_model(3)))
    assert sorted((str(p), p.stat().st_mtime_ns) for p in root.rglob("*")) == before
