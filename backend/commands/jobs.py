"""``jobs submit|list|cancel|log|worker``: training jobs from the command line (see :mod:`backend.jobs`).

Where a submitted job runs: with ``REDIS_URL`` set, on the Celery workers; otherwise it waits in
``<root>/jobs/`` for a local runner: an app serving that data root, ``jobs worker`` in another
terminal, or ``submit --wait``, which runs the local queue in the foreground until its jobs end.
"""

from __future__ import annotations

import json
import os
import sys
import time

from backend.autoencoder.config import ARCH_NAMES, LATENTS, TrainConfig, paper_grid
from backend.commands import add_command, add_data_arg
from backend.commands.train import WINDOW_HELP, add_train_args, config_from_args, images_windows
from backend.errors import ParameterError
from backend.jobs import (
    FINAL,
    JobRunner,
    JobStore,
    LocalRunner,
    format_duration,
    format_progress,
    make_runner,
    redact,
    request_cancel,
)
from backend.progress import TqdmProgress


def register(sub) -> None:
    p = add_command(sub, "jobs", "queue training jobs, list and cancel them, run a local worker")
    jsub = p.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)

    d = TrainConfig()
    s = add_command(jsub, "submit", "queue one model (the flags of `train`) or a grid (--grid paper)",
                    description="Queue training jobs; prints one line per model: job id, model id, what "
                                "happened. Without --grid each hyperparameter flag is given at most once "
                                "(one model); with --grid paper they restrict the study's 216-model grid "
                                "(repeatable).")
    add_train_args(s, grid=True)
    s.add_argument("--arch", action="append", choices=ARCH_NAMES,
                   help=f"encoder architecture (default: {d.arch}; with --grid: every one)")
    s.add_argument("--latent", type=int, action="append", choices=LATENTS,
                   help=f"latent channels (default: {d.latent}; with --grid: every one)")
    s.add_argument("--epochs", type=int, action="append",
                   help=f"pre-training epochs (default: {d.epochs}; with --grid: every one of the grid)")
    s.add_argument("--split", type=float, action="append",
                   help=f"validation fraction in [0, 1) (default: {d.split:g}; with --grid: every one of the grid)")
    s.add_argument("--window", type=float, action="append", help=WINDOW_HELP)
    s.add_argument("--grid", choices=("paper",),
                   help="the study's grid, restricted by the flags above (default: one model)")
    s.add_argument("--wait", action="store_true",
                   help="run the local queue in the foreground (or follow the Celery workers) until these jobs end")
    s.set_defaults(handler=cmd_submit)

    s = add_command(jsub, "list", "one line per job: id, model id, state, progress")
    add_data_arg(s, old_out=True)
    s.add_argument("--json", action="store_true", help="the records as JSON")
    s.set_defaults(handler=cmd_list)

    s = add_command(jsub, "cancel", "cancel a queued or running job (no model is kept)")
    s.add_argument("job_id", help="the job's id (see `jobs list`)")
    add_data_arg(s, old_out=True)
    s.set_defaults(handler=cmd_cancel)

    s = add_command(jsub, "log", "the end of a job's log")
    s.add_argument("job_id", help="the job's id (see `jobs list`)")
    add_data_arg(s, old_out=True)
    s.add_argument("--lines", type=int, default=40, help="how many lines")
    s.set_defaults(handler=cmd_log)

    s = add_command(jsub, "worker", "run the data root's local queue in the foreground, one job at a time")
    add_data_arg(s, old_out=True)
    s.add_argument("--once", action="store_true", help="exit when the queue is empty")
    s.set_defaults(handler=cmd_worker)


def _one(args, name: str, default):
    values = getattr(args, name)
    if not values:
        return default
    if len(values) > 1:
        raise ParameterError(f"--{name} given {len(values)} times: give it once for one model, "
                             f"or add --grid paper to train a sub-grid")
    return values[0]


def _configs(args) -> list:
    window = images_windows(args, args.window)
    if args.grid:
        restrict = {k: getattr(args, k) for k in ("arch", "latent", "epochs", "split") if getattr(args, k)}
        restrict["window"] = window
        # every other flag (objective, fine-tuning, learning rate...) holds for the whole grid
        shared = {k: v for k, v in config_from_args(args, grid=True, window=window[0]).as_dict().items()
                  if k not in ("arch", "latent", "window", "epochs", "split")}
        return [c.validate() for c in paper_grid(**shared, **restrict)]
    d = TrainConfig()
    args.window = window
    return [config_from_args(args, **{name: _one(args, name, getattr(d, name))
                                      for name in ("arch", "latent", "epochs", "split", "window")})]


def cmd_submit(args) -> int:
    runner = make_runner(args.data)
    subs = runner.submit(_configs(args), args.images, overwrite=args.overwrite)
    total = 0.0
    for s in subs:
        if s.status == "queued":
            rec = runner.store.load(s.job_id)
            total += rec.get("estimate_s") or 0
            print(f"{s.job_id}  {s.model_id}  queued")
        elif s.status == "duplicate":
            state = runner.store.load(s.job_id)["state"]
            print(f"{s.job_id}  {s.model_id}  already {state} (not queued again)")
        else:
            print(f"-  {s.model_id}  exists under {runner.root} (not retrained; --overwrite to replace it)")
    new = [s.job_id for s in subs if s.status == "queued"]
    if new:
        where = (f"sent to the Celery workers (broker {redact(runner.broker_url)})" if runner.kind == "celery"
                 else f"queued under {runner.store.dir}")
        print(f"{len(new)} job(s) {where}; ≈ {format_duration(total)} of training on this machine's CPU",
              file=sys.stderr)
    if not args.wait:
        if new and runner.kind == "local":
            print(f"they run in an app serving this data root (python app.py --data {runner.root}), or: "
                  f"python -m backend jobs worker --data {runner.root}  (or submit with --wait)", file=sys.stderr)
        return 0
    wanted = [s.job_id for s in subs if s.job_id]
    watcher = _Watcher()
    if runner.kind == "local":
        runner.recover()
        runner.serve(until=lambda: True, on_poll=watcher.update)
    while True:
        records = [runner.store.load(j) for j in wanted]
        for rec in records:
            watcher.update(rec)
        if all(r["state"] in FINAL for r in records):
            break
        time.sleep(1.0)
    watcher.close()
    return 0 if all(r["state"] == "done" for r in records) else 1


class _Watcher:
    """One tqdm bar per running job, a summary line when it ends."""

    def __init__(self):
        self.bars, self.reported = {}, set()

    def update(self, rec: dict) -> None:
        job_id, p = rec["job_id"], rec.get("progress") or {}
        if rec["state"] == "running" and job_id not in self.reported:
            bar = self.bars.setdefault(job_id, TqdmProgress(desc=rec["model_id"], unit="epoch"))
            info = {k: p[k] for k in ("train_loss", "val_loss", "images_per_s") if p.get(k) is not None}
            bar(p.get("epoch", 0), p.get("epochs", 1), **info)
        elif rec["state"] in FINAL and job_id not in self.reported:
            self.reported.add(job_id)
            bar = self.bars.pop(job_id, None)
            if bar is not None:
                bar.close()
            print(f"{job_id}  {rec['model_id']}  {rec['state']}: {format_progress(rec)}")

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def cmd_list(args) -> int:
    runner = JobRunner(args.data)
    records = runner.jobs()
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    if not records:
        print(f"no jobs under {runner.store.dir}")
    for rec in records:
        what = rec.get("model_id") or f"{rec.get('kind')}:{rec.get('key', '')[:12]}"
        print(f"{rec['job_id']}  {what}  {rec['state']}  {format_progress(rec)}")
    return 0


def cmd_cancel(args) -> int:
    rec = request_cancel(JobStore(args.data), args.job_id)
    if rec["state"] == "running":
        print(f"{rec['job_id']}: cancel requested; the worker stops at its next progress report, keeping no model")
    else:
        print(f"{rec['job_id']}: {rec['state']}")
    return 0


def cmd_log(args) -> int:
    store = JobStore(args.data)
    store.load(args.job_id)  # an unknown id is an error, not an empty log
    print(store.log_tail(args.job_id, args.lines))
    return 0


def cmd_worker(args) -> int:
    runner = LocalRunner(args.data)
    requeued = runner.recover()
    if requeued:
        print(f"queued again (their process was gone): {', '.join(requeued)}", file=sys.stderr)
    print(f"bandscape worker (pid {os.getpid()}): running the local jobs of {runner.root}, one at a time per lane"
          + ("" if args.once else "; Ctrl-C to stop (a running job goes back to the queue)"), file=sys.stderr)
    watcher = _Watcher()
    try:
        served = runner.serve(until=(lambda: True) if args.once else None, on_poll=watcher.update)
        if not served:
            print(f"another runner on this host (an app or a worker) serves {runner.root}; nothing to do here",
                  file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        runner.stop()
        raise
    finally:
        watcher.close()
    return 0
