"""How the CLI and the pages show a job: durations and one line of progress."""

from __future__ import annotations

import math

from backend.jobs.store import kind_of


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600} h {rest % 3600 // 60:02d} min"
    return f"{days} d {text}" if days else text


def format_progress(rec: dict) -> str:
    """One line: where a job is (for training: epoch of total, losses, images/s, ETA) or how it ended."""
    p = rec.get("progress") or {}
    state = rec.get("state")
    if state == "failed":
        return f"failed: {rec.get('error') or 'see the log'}"
    if state == "cancelled":
        return "cancelled"
    if kind_of(rec) != "train":
        return _generic_progress(rec, p, state)
    if state == "queued":
        return f"waiting; ≈ {format_duration(rec.get('estimate_s'))} of training on this CPU"
    if state == "running" and p.get("stage") in (None, "queued"):
        return "starting (loading the images, building the model)"
    parts = [f"epoch {p.get('epoch', 0)}/{p.get('epochs', '?')}"]
    if state == "running" and p.get("stage") == "batch" and p.get("batches"):
        parts[0] += f" (batch {p.get('batch')}/{p.get('batches')})"
    elif state == "running" and p.get("stage") in ("encode", "umap"):
        parts.append("encoding" if p["stage"] == "encode" else "UMAP")
    if p.get("train_loss") is not None:
        parts.append(f"train {p['train_loss']:.4f}")
    if p.get("val_loss") is not None:
        parts.append(f"val {p['val_loss']:.4f}")
    if p.get("images_per_s"):
        parts.append(f"{p['images_per_s']:.1f} img/s")
    if state == "running":
        parts.append(f"ETA {format_duration(p.get('eta_s'))}")
    if state == "done" and rec.get("result"):
        parts.append(f"{format_duration(rec['result'].get('wall_time_s'))} on {rec['result'].get('device')}")
    return " · ".join(parts)


def _generic_progress(rec: dict, p: dict, state: str) -> str:
    if state == "queued":
        return "waiting"
    if state == "done":
        took = (rec.get("finished_at") or 0) - (rec.get("started_at") or 0)
        return f"done in {format_duration(took)}"
    if p.get("stage") in (None, "queued"):
        return "starting"
    return (f"{p.get('stage') or 'working'}: {p.get('done', 0)} of {p.get('total', '?')}"
            + (f" · ETA {format_duration(p.get('eta_s'))}" if p.get("eta_s") else ""))
