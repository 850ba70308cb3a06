"""Control panels of the explorer: model choice, clustering, advanced options, element filter
and colouring; and the model choice's rules (which fields a model sets, which model a changed
field picks)."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html, no_update

from backend.autoencoder.config import DOWNSAMPLING
from backend.cluster.params import BOUNDS, Bound
from backend.data.elements import elements_present
from backend.data.labels import label_columns
from backend.discover.explorer_view import ExplorerView
from components import explore_ids as ids

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
        # study's 224 px, 4x4 at the default 128 (times the parts of a two-part fingerprint); every
        # shape the models of that latent have
        shapes = sorted({(m.image_size // DOWNSAMPLING, m.parts) for m in models if m.latent == value and m.image_size})
        if len(shapes) == 1:
            (s, p), = shapes
            return f"{value} ({f'{p}×' if p > 1 else ''}{s}×{s}×{value} = {p * s * s * value})"
        if shapes:  # models of several input sizes: how many numbers each has, short enough for the select
            return f"{value} (" + " or ".join(str(p * s * s * value) for s, p in shapes) + " numbers)"
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


# ---- the model choice ---------------------------------------------------------------------

#: how much keeping each field's value weighs when a changed field picks another model
_FIELD_PRIORITY = {"arch": 6, "latent": 5, "window": 4, "epochs": 3, "split": 2, "line_width": 1}


def model_fields(catalog, model_id: str) -> dict:
    """The hyperparameter dropdowns for a model: ``{"value"|"options"|"disabled": {field: …}}``
    (only values that exist among the models of its architecture)."""
    models = list(catalog.models.values())
    current = catalog.get(model_id)
    options = {n: field_options(models, current.arch, n) for n, _ in MODEL_FIELDS}
    return {"value": {n: str(getattr(current, n)) for n, _ in MODEL_FIELDS},
            "options": options,
            "disabled": {n: not o or (current.is_unencoded and n in ("latent", "epochs", "split"))
                         for n, o in options.items()}}


def changed_fields(catalog, model_id: str, *, shown: str | None) -> dict:
    """:func:`model_fields` of ``model_id`` where they differ from those of the model ``shown``
    (the one on screen), ``no_update`` where they do not: a model switch re-renders only the
    dropdowns that change (each update of a component costs the page a render pass)."""
    new = model_fields(catalog, model_id)
    if shown not in catalog:
        return new
    old = model_fields(catalog, shown)
    return {prop: {n: value if value != old[prop][n] else no_update for n, value in values.items()}
            for prop, values in new.items()}


def model_for_field(catalog, chosen: dict, changed: str) -> str | None:
    """The existing model with the changed field's new value that keeps most of the other
    choices (same architecture first); None when no model has that value."""
    models = list(catalog.models.values())
    pool = [m for m in models if str(getattr(m, changed)) == chosen[changed]]
    if changed != "arch":
        pool = [m for m in pool if m.arch == chosen["arch"]] or pool
    if not pool:
        return None
    return max(pool, key=lambda m: sum(w for n, w in _FIELD_PRIORITY.items()
                                       if n != changed and str(getattr(m, n)) == chosen.get(n))).model_id


# ---- the panels -------------------------------------------------------------------------------

def model_panel(catalog, model_id: str) -> dbc.Card:
    f = model_fields(catalog, model_id)
    fields = [labelled(label, dbc.Select(id=field_id(name), options=f["options"][name], value=f["value"][name],
                                         size="sm", disabled=f["disabled"][name]))
              for name, label in MODEL_FIELDS]
    return dbc.Card([
        dbc.CardHeader("Autoencoder model"),
        dbc.CardBody([
            *fields,
            # a native input with a datalist, which the browser builds from the ids (one Dash
            # component per option would slow every update of the page)
            labelled("Search by model id", dcc.Input(
                id=ids.MODEL, value=model_id, list=ids.MODEL_LIST, debounce=True, type="text",
                className="form-control form-control-sm", spellCheck=False)),
            dcc.Store(id=ids.MODEL_IDS, data=list(catalog.models)),
        ]),
    ], className="mb-2")


def cluster_panel(v: ExplorerView) -> dbc.Card:
    return dbc.Card([
        dbc.CardHeader("Clustering"),
        dbc.CardBody([
            dbc.RadioItems(id=ids.ALGO, value=v.algo, inline=True, className="mb-2",
                           options=[{"label": "HDBSCAN", "value": "hdbscan"},
                                    {"label": "K-Means", "value": "kmeans"},
                                    {"label": "GMM", "value": "gmm"}]),
            html.Div(id=ids.HDBSCAN_BOX, children=_hdbscan_fields(v)),
            html.Div(id=ids.KCLUSTER_BOX,
                     children=[labelled("Number of clusters", number_input(ids.K, v.n_clusters, "n_clusters"))]),
            dbc.Button("Advanced options", id=ids.ADV_BTN, color="link", size="sm", className="p-0"),
            dbc.Collapse(id=ids.ADV_COLLAPSE, is_open=bool(v.double_cluster or v.recluster_noise or v.hide_noise
                                                           or v.hide_nonnoise), children=_advanced_fields(v)),
        ]),
    ], className="mb-2")


def _hdbscan_fields(v: ExplorerView) -> list:
    return [
        html.Div([labelled("Min cluster size", number_input(ids.MCS, v.min_cluster_size, "min_cluster_size")),
                  labelled("Min samples", number_input(ids.MS, v.min_samples, "min_samples"))],
                 className="d-flex gap-2"),
        labelled("Cluster selection", dbc.RadioItems(
            id=ids.SEL, value=v.selection, inline=True,
            options=[{"label": "leaf", "value": "leaf"}, {"label": "eom", "value": "eom"}])),
        html.Div([
            labelled("Metric", dbc.Select(id=ids.METRIC, value=v.metric, size="sm",
                                          options=[{"label": "Minkowski", "value": "minkowski"},
                                                   {"label": "Euclidean", "value": "euclidean"}]), 120),
            html.Div(labelled("p", number_input(ids.P, v.p, "p", 80)), id=ids.P_BOX),
        ], className="d-flex gap-2"),
    ]


def _advanced_fields(v: ExplorerView) -> list:
    return [
        dbc.Switch(id=ids.DC, label="Double cluster (DBSCAN halos on the UMAP)", value=v.double_cluster),
        html.Div([labelled("eps", number_input(ids.DC_EPS, v.dc_eps, "dc_eps", 80)),
                  labelled("min samples", number_input(ids.DC_MS, v.dc_min_samples, "dc_min_samples"))],
                 className="d-flex gap-2 ms-4"),
        dbc.Switch(id=ids.RC, label="Recluster noise (HDBSCAN on noise points)", value=v.recluster_noise),
        html.Div([labelled("min cluster size", number_input(ids.RC_MCS, v.rc_min_cluster_size, "rc_min_cluster_size")),
                  labelled("min samples", number_input(ids.RC_MS, v.rc_min_samples, "rc_min_samples"))],
                 className="d-flex gap-2 ms-4"),
        dbc.Switch(id=ids.HIDE_NOISE, label="Hide noise", value=v.hide_noise),
        dbc.Switch(id=ids.HIDE_NONNOISE, label="Hide non-noise", value=v.hide_nonnoise),
    ]


def filter_panel(catalog, v: ExplorerView, matches=None) -> dbc.Card:
    names = catalog.load(v.model).names
    present = elements_present(names)
    colour = labelled("Colour by", dbc.Select(
        id=ids.COLOUR_BY, value=v.colour_by, size="sm",
        options=[{"label": "cluster", "value": "cluster"},
                 {"label": "consensus cluster (across models)", "value": "consensus"},
                 {"label": "stability across models", "value": "stability"}]
        + [{"label": f"label: {c}", "value": c} for c in label_columns(catalog)]))
    return dbc.Card([
        dbc.CardHeader("Elements and labels"),
        dbc.CardBody([
            dcc.Dropdown(id=ids.ELEMENTS, options=present, value=list(v.elements), multi=True,
                         placeholder="Filter by element…" if present else "no chemical formulas in this dataset",
                         disabled=not present),
            dbc.RadioItems(id=ids.ELEMENT_MODE, value=v.element_mode, inline=True, className="small",
                           options=[{"label": "any selected (inclusive)", "value": "inclusive"},
                                    {"label": "all selected (exclusive)", "value": "exclusive"}]),
            html.Div(matches, id=ids.MATCHES, className="small text-muted mb-2"),
            colour,
        ]),
    ], className="mb-2")
