"""Control panels of the explorer: model choice, clustering, advanced options, element filter."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from backend.autoencoder.config import DOWNSAMPLING
from backend.cluster.params import BOUNDS, Bound

#: hyperparameter fields of the model choice, in the order they are shown (and matched)
MODEL_FIELDS = (
    ("arch", "Architecture"),
    ("latent", "Latent channels"),
    ("epochs", "Epochs"),
    ("split", "Validation split"),
    ("window", "Window (±eV)"),
    ("line_width", "Line width"),
)
ARCH_LABELS = {"resnet18": "ResNet-18", "resnet50": "ResNet-50", "unencoded": "Unencoded"}


def field_id(name: str) -> str:
    return f"explore-field-{name}"


def field_options(models, arch: str, name: str) -> list[dict]:
    """Values of one hyperparameter among the models of an architecture (those that exist)."""
    if name == "arch":
        archs = sorted({m.arch for m in models}, key=lambda a: (a not in ARCH_LABELS, a))
        return [{"label": ARCH_LABELS.get(a, a), "value": a} for a in archs]
    mine = [m for m in models if m.arch == arch and getattr(m, name) is not None]
    values = sorted({getattr(m, name) for m in mine})
    # native selects carry strings; "None" stands for a field the architecture does not have
    return ([{"label": _fmt(v, name, mine), "value": str(v)} for v in values]
            or [{"label": "–", "value": "None"}])


def _fmt(value, name: str, models=()) -> str:
    if name == "latent":
        # the fingerprint is the encoder's (image side / DOWNSAMPLING)^2 x latent map: 7x7 at the
        # study's 224 px, 2x2 at the default 64; shown where every model of that latent agrees
        sides = {m.image_size // DOWNSAMPLING for m in models if m.latent == value and m.image_size}
        if len(sides) == 1:
            s = sides.pop()
            return f"{value} ({s}×{s}×{value} = {s * s * value})"
    return str(value)


def labelled(label: str, control, width: int | None = None) -> html.Div:
    return html.Div([dbc.Label(label, className="small mb-0"), control], className="mb-2",
                    style={"minWidth": f"{width}px"} if width else None)


def number_input(id_: str, value, bound: str | Bound, width: int = 90) -> dcc.Input:
    """A number input whose minimum and step are ``bound``'s: a clustering parameter's name (its
    limit in :data:`backend.cluster.params.BOUNDS`) or a :class:`~backend.cluster.params.Bound`."""
    bound = BOUNDS[bound] if isinstance(bound, str) else bound
    return dcc.Input(id=id_, type="number", value=value, min=bound.minimum, step=bound.step, debounce=False,
                     className="form-control form-control-sm", style={"width": f"{width}px"})
