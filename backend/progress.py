"""One progress signature for every long operation, used by the CLI (tqdm) and the app alike.

A long operation takes ``progress: ProgressFn | None`` and calls it as
``progress(done, total, **info)``: ``done`` and ``total`` count units of work (epochs, files,
grid cells); ``info`` carries what the unit produced (``loss=0.12``, ``stage="umap"``...).
A callback may raise :class:`Cancelled` to stop the operation cleanly.
"""

from __future__ import annotations

from typing import Any, Protocol


class ProgressFn(Protocol):
    def __call__(self, done: int, total: int, **info: Any) -> None: ...


class Cancelled(Exception):
    """Raised (by a progress callback) to stop a long operation; nothing partial is kept."""


def null_progress(done: int, total: int, **info: Any) -> None:
    return None


class TqdmProgress:
    """A progress callback that drives one tqdm bar; ``info`` is shown as the bar's postfix."""

    def __init__(self, desc: str = "", unit: str = "it", **tqdm_kwargs):
        self._kwargs = dict(desc=desc, unit=unit, **tqdm_kwargs)
        self._bar = None  # opened on the first report, so a run refused up front prints no bar

    def __call__(self, done: int, total: int, **info: Any) -> None:
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, **self._kwargs)
        if self._bar.total != total:
            self._bar.total = total
        self._bar.n = done
        shown = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in info.items()
                 if isinstance(v, (int, float, str))}
        if shown:
            self._bar.set_postfix(shown, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
