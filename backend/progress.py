"""One progress signature for every long operation, used by the CLI (tqdm) and the app alike.

A long operation takes ``progress: ProgressFn | None`` and calls it as
``progress(done, total, **info)``: ``done`` and ``total`` count units of work (epochs, files,
grid cells); ``info`` carries what the unit produced (``loss=0.12``, ``stage="umap"``...).
A callback may raise :class:`Cancelled` to stop the operation cleanly.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol


class ProgressFn(Protocol):
    def __call__(self, done: int, total: int, **info: Any) -> None: ...


class Cancelled(Exception):
    """Raised (by a progress callback) to stop a long operation; nothing partial is kept."""


def null_progress(done: int, total: int, **info: Any) -> None:
    return None


class TqdmProgress:
    """A progress callback for the command line: one tqdm bar where it goes to a terminal (or a
    notebook); where it goes to a file or pipe (job logs, CI, ``cmd > log 2>&1``), a plain line at
    the first report and at each quarter of the work (and at most every ``log_every_s`` in
    between), never one per unit. ``info`` is shown as the bar's postfix, or at the line's end."""

    QUARTERS = 4

    def __init__(self, desc: str = "", unit: str = "it", log_every_s: float = 300.0, **tqdm_kwargs):
        self._kwargs = dict(desc=desc, unit=unit, **tqdm_kwargs)
        self._log_every_s = log_every_s
        self._bar = None  # opened on the first report, so a run refused up front prints no bar
        self._stream = None  # instead of a bar, when the output is no terminal
        self._t0 = time.monotonic()  # lines time the whole run, start-up included
        self._latest = None  # (done, total, shown) of the last report
        self._printed = (None, -1, self._t0)  # done, quarter and time of the last line

    def __call__(self, done: int, total: int, **info: Any) -> None:
        shown = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in info.items()
                 if isinstance(v, (int, float, str))}
        if self._bar is None and self._stream is None:
            self._open(total)
        if self._stream is not None:
            self._latest = (done, total, shown)
            last_done, last_quarter, last_t = self._printed
            quarter = done * self.QUARTERS // total if total else 0
            if done != last_done and (quarter > last_quarter or time.monotonic() - last_t >= self._log_every_s):
                self._write_line()
            return
        if self._bar.total != total:
            self._bar.total = total
        self._bar.n = done
        if shown:
            self._bar.set_postfix(shown, refresh=False)
        self._bar.refresh()

    def _open(self, total: int) -> None:
        from tqdm.auto import tqdm  # tqdm: only when something reports progress

        stream = self._kwargs.get("file") or sys.stderr
        notebook = any(c.__module__ == "tqdm.notebook" for c in tqdm.__mro__)
        if notebook or _is_terminal(stream):
            self._bar = tqdm(total=total, **self._kwargs)
        else:
            self._stream = stream

    def _write_line(self) -> None:
        from tqdm import tqdm  # tqdm: only when something reports progress

        done, total, shown = self._latest
        now = time.monotonic()
        desc = self._kwargs.get("desc") or ""
        postfix = ", ".join(f"{k}={v}" for k, v in shown.items())
        line = tqdm.format_meter(done, total, now - self._t0, prefix=f"{desc}: " if desc else "",
                                 unit=self._kwargs.get("unit", "it"), postfix=postfix or None,
                                 bar_format=_LINE_FORMAT if total else _LINE_FORMAT_NO_TOTAL)
        print(line, file=self._stream, flush=True)
        self._printed = (done, done * self.QUARTERS // total if total else 0, now)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._latest is not None and self._latest[0] != self._printed[0]:
            self._write_line()  # where it stopped (a cancel, an error)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_LINE_FORMAT = "{desc}{percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
_LINE_FORMAT_NO_TOTAL = "{desc}{n_fmt} [{elapsed}, {rate_fmt}{postfix}]"


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
