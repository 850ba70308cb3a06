"""Which models a grid search or report covers: filters like ``window=1,arch=50`` or ``id=resnet50_*``."""

from __future__ import annotations

import fnmatch

from backend.cluster.params import PAPER_MODEL
from backend.errors import ParameterError

#: model fields a filter may name, and the catalog attribute each reads
FILTER_KEYS = {"arch": "arch", "latent": "latent", "window": "window", "epochs": "epochs", "steps": "epochs",
               "split": "split", "width": "line_width", "line_width": "line_width", "id": "model_id"}


def parse_filter(text: str | None) -> dict:
    """``'window=1,arch=50'`` -> {'window': ['1'], 'arch': ['50']}; ``|`` separates alternatives
    (``latent=2|3``); ``id=`` takes a glob."""
    terms: dict[str, list[str]] = {}
    for term in (text or "").replace(";", ",").split(","):
        term = term.strip()
        if not term:
            continue
        key, sep, value = term.partition("=")
        key = key.strip().lower()
        if not sep or not value.strip():
            raise ParameterError(f"model filter term {term!r} is not key=value (e.g. window=1,arch=50)")
        if key not in FILTER_KEYS:
            raise ParameterError(f"model filter key {key!r} is not one of {sorted(set(FILTER_KEYS))}")
        terms.setdefault(key, []).extend(v.strip() for v in value.split("|"))
    return terms


def _matches(info, key: str, wanted: list[str]) -> bool:
    value = getattr(info, FILTER_KEYS[key])
    for w in wanted:
        if key == "id":
            if fnmatch.fnmatch(info.model_id, w):
                return True
        elif key == "arch":
            w = w.lower()
            if value == w or value == f"resnet{w}":
                return True
        elif value is not None:
            try:
                if float(value) == float(w):
                    return True
            except ValueError:
                raise ParameterError(f"model filter {key}={w!r}: expected a number") from None
    return False


def select_models(catalog, filter_text: str | None = None) -> list[str]:
    """The ids of the catalog's models that match ``filter_text`` (see :func:`parse_filter`).
    Unencoded baselines are left out unless the filter asks for ``arch=unencoded``; maps of the
    shipped pretrained encoder (not trained on the root) and maps of one part of a fingerprint
    (``part-maps``: with their whole model they would count one encoder twice) unless it names ids
    (``id=*pretrained``, ``id=*-part``)."""
    terms = parse_filter(filter_text)
    wants_unencoded = "unencoded" in [w.lower() for w in terms.get("arch", [])]
    chosen = []
    for mid, info in catalog.models.items():
        if (info.is_unencoded and not wants_unencoded) or ((info.is_pretrained or info.is_part) and "id" not in terms):
            continue
        if all(_matches(info, k, v) for k, v in terms.items()):
            chosen.append(mid)
    if not chosen:
        windows = sorted({i.window for i in catalog.models.values() if i.window is not None})
        raise ParameterError(
            f"model filter {filter_text!r} matches none of the {len(catalog.models)} models under "
            f"{catalog.root} (windows there: {windows}; keys: arch, latent, window, epochs, split, width, id)")
    return chosen


def default_filter(catalog) -> str:
    """The filter the evaluate page opens with: the paper's search (one window: the paper model's,
    else the first model's) when that window holds at least two of the models a search selects
    (no unencoded baselines, no maps of the shipped encoder), else every model ("")."""
    models = [catalog.models[m] for m in select_models(catalog, "")]
    paper = catalog.models.get(PAPER_MODEL)
    window = paper.window if paper else (models[0].window if models else None)
    if window is not None and sum(m.window == window for m in models) >= 2:
        return f"window={window:g}"
    return ""
