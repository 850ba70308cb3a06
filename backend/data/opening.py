"""What a data root opens with: ``explorer.json`` in the root, optional.

    {"default_model": "<model id>", "opening_view": "algo=kmeans&k=5&color=family"}

``default_model`` is the model a view opens with and the commands default to
(:func:`backend.cluster.params.default_model`); ``opening_view`` is an explorer URL query (the keys
of :data:`backend.discover.explorer_view.URL_FORMAT`) for a visit whose address names no view.
Either may be left out. Without the file a root opens on its default model in the study's
HDBSCAN cell, coloured by cluster. The demo ships one (``python -m backend demo`` writes it) so
that its first screen shows what its labels are about; a lab writes its own with
:func:`write_opening` or by hand.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from urllib.parse import parse_qsl

from backend.cache import file_signature
from backend.errors import ParameterError
from backend.fileio import write_json_atomic

OPENING_FILE = "explorer.json"
_KEYS = ("default_model", "opening_view")


def read_opening(root) -> tuple[dict, str | None]:
    """The root's ``explorer.json`` as ``{"default_model": str | None, "opening_view": {key: value}}``
    and a note naming the file when it cannot be used (then both are empty: the defaults). Read
    once per version of the file: every page load and :func:`default_model` asks."""
    path = Path(root) / OPENING_FILE
    try:
        signature = file_signature(path)
    except FileNotFoundError:
        return {"default_model": None, "opening_view": {}}, None
    model, query, problem = _parse_opening(signature)
    return {"default_model": model, "opening_view": dict(query)}, problem


@functools.lru_cache(maxsize=16)
def _parse_opening(signature: tuple) -> tuple[str | None, tuple, str | None]:
    path = Path(signature[0])
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, (), f"{path} is not readable JSON ({type(exc).__name__}: {exc}); opening on the defaults"
    problem = _problem(raw)
    if problem:
        return None, (), f"{path}: {problem}; opening on the defaults"
    return raw.get("default_model") or None, tuple(parse_qsl((raw.get("opening_view") or "").lstrip("?"))), None


def _problem(raw) -> str | None:
    if not isinstance(raw, dict):
        return f"expected an object with {' and/or '.join(_KEYS)}, got {type(raw).__name__}"
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        return f"unknown field(s) {', '.join(unknown)} (known: {', '.join(_KEYS)})"
    wrong = [k for k in _KEYS if raw.get(k) is not None and not isinstance(raw[k], str)]
    if wrong:
        return f"{', '.join(wrong)} must be a string"
    return None


def opening_model(root) -> str | None:
    """The root's declared default model (None: none declared, or the file unusable)."""
    return read_opening(root)[0]["default_model"]


def write_opening(root, *, default_model: str | None = None, opening_view: str | None = None) -> Path:
    """Write the root's ``explorer.json`` (atomically; fields given as None are left out)."""
    record = {k: v for k, v in (("default_model", default_model), ("opening_view", opening_view)) if v}
    problem = _problem(record)
    if problem:
        raise ParameterError(f"{OPENING_FILE}: {problem}")
    return write_json_atomic(Path(root) / OPENING_FILE, record)
