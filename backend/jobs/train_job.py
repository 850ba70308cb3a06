"""The ``train`` kind: one autoencoder (a :class:`~backend.autoencoder.config.TrainConfig`) trained
on a folder of images into the data root.

The same model asked for twice runs once: while a job for a model id is queued or running, or has
finished and its model exists, submitting it again returns that job (:func:`submit_jobs`).
``train_model`` writes its outputs only at the end, each atomically, and removes them if it is
interrupted while writing; files a killed process may still have left are removed by
:func:`remove_partial_outputs`. So a cancelled or crashed job leaves no model.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from backend.autoencoder.config import FULL_WIDTH, TrainConfig
from backend.data.image_window import check_window
from backend.data.model_ids import model_paths, path_in_root, resolve_in_root
from backend.errors import ParameterError
from backend.jobs.execute import WRITE_EVERY_S, JobContext
from backend.jobs.kinds import JobKind, register
from backend.jobs.store import ACTIVE, EXECUTORS, JobStore, new_record
from backend.progress import Cancelled

MAX_BATCH_POINTS = 1000  # batch losses kept for the live curve (thinned beyond this)

#: training throughput at 224 px on this project's CPU (x86_64, 2 cores, AVX2, no bf16), from
#: ``bench/train_throughput.py``, at torchvision's width (64); scaled by (224 / image size)^2 for
#: other sizes and (64 / channels)^2 for a narrower trunk. Estimates only.
CPU_IMAGES_PER_S = {"resnet18": 6.2, "resnet50": 2.8}
UMAP_S = 10.0            # encoding aside, UMAP of a few hundred points, roughly

register(JobKind("train", run="backend.jobs.train_job:run_training", lane="train",
                 cleanup="backend.jobs.train_job:cleanup_training", title="training"))


@dataclass(frozen=True)
class Submission:
    """What became of one requested model: ``queued`` (a new job), ``duplicate`` (the job already
    queued, running or done for that model id) or ``exists`` (the model is there already and was
    not made by a job; nothing to do unless ``overwrite``)."""

    model_id: str
    status: str
    job_id: str | None


def _fmt(x) -> str:
    return "nan" if x is None else f"{x:.4f}"


def _finite(x):
    """JSON has no NaN: a missing loss (no validation split) is written as null."""
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def count_images(folder: str | os.PathLike) -> int:
    folder = Path(folder)
    return sum(1 for e in os.scandir(folder) if e.name.lower().endswith(".png") and not e.name.startswith(".")) \
        if folder.is_dir() else 0


def model_exists(root: str | os.PathLike, model_id: str) -> bool:
    paths = model_paths(root, model_id)
    return paths["embedding"].exists() or paths["weights"].exists()


def estimate_seconds(cfg: TrainConfig, n_images: int, images_per_s: float | None = None) -> float:
    """Rough wall time of one training run on this project's CPU (or at ``images_per_s``)."""
    ips = images_per_s or (CPU_IMAGES_PER_S.get(cfg.arch, CPU_IMAGES_PER_S["resnet50"])
                           * (224 / cfg.image_size) ** 2 * (FULL_WIDTH / cfg.channels) ** 2)
    n_val = int(round(cfg.split * n_images))
    n_train = n_images - n_val
    # a forward pass (validation, encoding) costs about a third of a training step
    per_epoch = n_train / ips + n_val / (3 * ips)
    return cfg.epochs * per_epoch + n_images / (3 * ips) + UMAP_S


def _check_images(root: Path, images: str | os.PathLike) -> tuple[Path, str]:
    """The folder, and how the record names it: relative to the root when inside it, so a
    worker that mounts the shared root elsewhere still finds it."""
    folder = Path(images).expanduser()
    folder = (folder if folder.is_absolute() else Path.cwd() / folder).resolve()
    if not folder.is_dir():
        raise ParameterError(f"images: folder {folder} does not exist")
    if count_images(folder) < 3:
        raise ParameterError(f"images: folder {folder} has {count_images(folder)} PNG images; training needs at least 3")
    return folder, path_in_root(root, folder)


def submit_jobs(store: JobStore, configs: Iterable[TrainConfig], images: str | os.PathLike,
                *, executor: str = "local", overwrite: bool = False) -> list[Submission]:
    """Validate every config (ParameterError names the field) and its window against the images'
    (:func:`~backend.data.image_window.check_window`), then queue a job per model id that is not
    already queued, running or done (see :class:`Submission`). Nothing is queued if any config is
    invalid."""
    if executor not in EXECUTORS:
        raise ParameterError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    configs = [c.validate() for c in configs]
    if not configs:
        raise ParameterError("nothing to train: the grid selection is empty")
    folder, stored_images = _check_images(store.root, images)
    check_window(folder, [c.window for c in configs], shown=stored_images)
    n_images = count_images(folder)
    out: list[Submission] = []
    with store.lock():
        records = store.all("train")
        active = {r["model_id"]: r for r in records if r.get("state") in ACTIVE}
        done = {r["model_id"]: r for r in records if r.get("state") == "done"}
        now = time.time()
        for i, cfg in enumerate(configs):
            mid = cfg.model_id
            exists = model_exists(store.root, mid)
            if mid in active:
                out.append(Submission(mid, "duplicate", active[mid]["job_id"]))
                continue
            if exists and not overwrite:
                job = done.get(mid)
                out.append(Submission(mid, "duplicate", job["job_id"]) if job else Submission(mid, "exists", None))
                continue
            rec = new_record(
                "train", mid, executor, created_at=now + i * 1e-6, model_id=mid, config=cfg.as_dict(),
                images=stored_images, n_images=n_images, overwrite=bool(overwrite),
                estimate_s=round(estimate_seconds(cfg, n_images), 1),
                progress={"stage": "queued", "epoch": 0, "epochs": cfg.epochs}, history=[], batch_losses=[])
            store._save(rec)
            active[mid] = rec
            out.append(Submission(mid, "queued", rec["job_id"]))
    return out


def started_training(rec: dict) -> bool:
    """Whether a job got as far as training (before that it wrote nothing, so it has nothing to
    clean up, and files of the same model id are someone else's)."""
    return (rec.get("progress") or {}).get("stage") not in (None, "queued")


def remove_partial_outputs(root: str | os.PathLike, model_id: str, since: float | None) -> list[Path]:
    """Remove a model's files written at or after ``since`` (a job's start): what a killed job may
    have left. Older files (a model being overwritten) are kept."""
    removed = []
    if since is None:
        return removed
    for path in model_paths(root, model_id).values():
        try:
            if path.stat().st_mtime >= since:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            pass
    return removed


def cleanup_training(root, rec: dict) -> None:
    if started_training(rec):
        remove_partial_outputs(root, rec["model_id"], rec.get("started_at"))


class JobProgress:
    """The progress callback of a running training job: keeps the record's progress, per-epoch
    history and batch losses up to date, and raises :class:`Cancelled` when the record asks."""

    def __init__(self, store: JobStore, job_id: str, log=None):
        self.store, self.job_id, self.log = store, job_id, log
        self.t_train = time.perf_counter()  # ETA counts loading and set-up as part of the run
        self.last_write = 0.0
        self.progress: dict = {}
        self.history: list[dict] = []
        self.batch_losses: list[list[float]] = []
        self._step, self._n_batches = 1, 0  # keep every n-th batch loss once there are many

    def __call__(self, done: int, total: int, **info) -> None:
        stage = info.get("stage", "train")
        now = time.perf_counter()
        p = self.progress
        p.update(stage=stage, epoch=done, epochs=total)
        if stage == "batch":
            batch, batches = info.get("batch", 0), max(info.get("batches", 1), 1)
            p.update(batch=batch, batches=batches, batch_loss=_finite(info.get("batch_loss")),
                     images_per_s=_finite(info.get("images_per_s")))
            fraction = (done + batch / batches) / max(total, 1)
            self._n_batches += 1
            if self._n_batches % self._step == 0:
                self.batch_losses.append([round(done + batch / batches, 4), _finite(info.get("batch_loss"))])
            if len(self.batch_losses) > MAX_BATCH_POINTS:
                self.batch_losses = self.batch_losses[::2]
                self._step *= 2
        elif stage == "train":
            row = {"epoch": done, "train_loss": _finite(info.get("train_loss")),
                   "val_loss": _finite(info.get("val_loss")), "images_per_s": _finite(info.get("images_per_s"))}
            self.history.append(row)
            p.update(train_loss=row["train_loss"], val_loss=row["val_loss"], images_per_s=row["images_per_s"],
                     batch=p.get("batches", 0))
            fraction = done / max(total, 1)
            self._log(f"epoch {done}/{total}: train loss {_fmt(row['train_loss'])}"
                      + (f", val loss {_fmt(row['val_loss'])}" if row["val_loss"] is not None else "")
                      + (f", {row['images_per_s']:.1f} images/s" if row["images_per_s"] else ""))
        else:  # encode, umap, done: training is over
            fraction = 1.0
            self._log(f"stage {stage}")
        elapsed = now - self.t_train
        p["fraction"] = round(min(fraction, 1.0), 4)
        p["eta_s"] = round(elapsed * (1 - fraction) / fraction, 1) if 0 < fraction < 1 else (0.0 if fraction >= 1 else None)
        if stage == "batch" and time.monotonic() - self.last_write < WRITE_EVERY_S:
            return
        self.last_write = time.monotonic()
        rec = self.store.update(self.job_id, progress=dict(p), history=list(self.history),
                                batch_losses=list(self.batch_losses), heartbeat_at=time.time())
        # once the outputs are written ("done") the model stays: a late cancel has nothing to stop
        if rec.get("cancel_requested") and stage != "done":
            self._log("cancel requested: stopping")
            raise Cancelled(f"job {self.job_id} cancelled")

    def _log(self, line: str) -> None:
        if self.log is not None:
            self.log(line)


def run_training(ctx: JobContext) -> dict:
    """Train the job's model (torch is imported here, in the job's process only)."""
    rec = ctx.record
    progress = JobProgress(ctx.store, ctx.job_id, ctx.log)
    images = resolve_in_root(ctx.root, rec["images"])
    # torch: imported in the job's own process only, never in a web process
    from backend.autoencoder.training import train_model

    result = train_model(TrainConfig.from_record(rec["config"]), images, ctx.root, progress=progress,
                         overwrite=rec.get("overwrite", False))
    ctx.log(f"done in {result.wall_time_s:.1f} s on {result.device}")
    return {"wall_time_s": round(result.wall_time_s, 2), "device": result.device}
