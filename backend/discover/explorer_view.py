"""What the explorer shows, and its URL: one definition of the query string ``/?model=…&mcs=3…``.

The explorer page reads its controls from the URL with :meth:`ExplorerView.from_query`, the
browser writes the URL back with the same keys (``url_format``), and other pages link into the
explorer with :func:`explorer_url`. Plain Python, no Dash: a notebook can build a shareable link.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from urllib.parse import urlencode

from backend.cluster.models import cluster_model, clustering_ready
from backend.cluster.params import ClusterParams, default_model
from backend.data.opening import OPENING_FILE, read_opening
from backend.errors import ParameterError

_D = ClusterParams()

#: field -> (URL key, kind); kinds: str, int, float, bool ("1" or absent), list (comma-joined)
URL_FORMAT: dict[str, tuple[str, str]] = {
    "model": ("model", "str"),
    "algo": ("algo", "str"),
    "min_cluster_size": ("mcs", "int"),
    "min_samples": ("ms", "int"),
    "selection": ("sel", "str"),
    "metric": ("metric", "str"),
    "p": ("p", "float"),
    "n_clusters": ("k", "int"),
    "double_cluster": ("dc", "bool"),
    "dc_eps": ("dc_eps", "float"),
    "dc_min_samples": ("dc_ms", "int"),
    "recluster_noise": ("rc", "bool"),
    "rc_min_cluster_size": ("rc_mcs", "int"),
    "rc_min_samples": ("rc_ms", "int"),
    "hide_noise": ("hn", "bool"),
    "hide_nonnoise": ("hnn", "bool"),
    "elements": ("el", "list"),
    "element_mode": ("mode", "str"),
    "colour_by": ("color", "str"),
    "consensus_models": ("cons", "str"),
    "selected": ("pts", "list"),
}
#: the selection is kept in the URL only up to this many materials (a longer one is not shared)
SELECTION_URL_MAX = 60
#: colourings besides "cluster" and the label columns of labels.csv
CONSENSUS_COLOURINGS = ("consensus", "stability")
_FIELD_OF_KEY = {key: name for name, (key, _) in URL_FORMAT.items()}
#: the fields that are clustering parameters (named as in ClusterParams)
CLUSTER_FIELDS = tuple(f.name for f in dataclasses.fields(ClusterParams))


@dataclass(frozen=True)
class ExplorerView:
    """One view of the explorer: the model, its clustering parameters and the display filters.

    ``model`` None means the data root's default model. Numbers may be None (an emptied input
    box); :meth:`params` then raises with the field named.
    """

    model: str | None = None
    algo: str = _D.algo
    min_cluster_size: int | None = _D.min_cluster_size
    min_samples: int | None = _D.min_samples
    selection: str = _D.selection
    metric: str = _D.metric
    p: float | None = _D.p
    n_clusters: int | None = _D.n_clusters
    double_cluster: bool = _D.double_cluster
    dc_eps: float | None = _D.dc_eps
    dc_min_samples: int | None = _D.dc_min_samples
    recluster_noise: bool = _D.recluster_noise
    rc_min_cluster_size: int | None = _D.rc_min_cluster_size
    rc_min_samples: int | None = _D.rc_min_samples
    hide_noise: bool = False
    hide_nonnoise: bool = False
    elements: tuple[str, ...] = field(default=())
    element_mode: str = "inclusive"
    colour_by: str = "cluster"
    #: the models of the consensus (a filter as on the evaluate page); None: the model's window
    consensus_models: str | None = None
    #: materials selected on the map (by name)
    selected: tuple[str, ...] = field(default=())

    @classmethod
    def from_values(cls, values: dict) -> "ExplorerView":
        """From control values by field name (what the page's callbacks receive)."""
        v = {k: values[k] for k in URL_FORMAT if k in values}
        for name, (_, kind) in URL_FORMAT.items():
            if name in v and kind == "bool":
                v[name] = bool(v[name])
        v["elements"] = tuple(v.get("elements") or ())
        v["selected"] = tuple(v.get("selected") or ())
        v["consensus_models"] = v.get("consensus_models") or None
        v["element_mode"] = v.get("element_mode") or "inclusive"
        v["colour_by"] = v.get("colour_by") or "cluster"
        return cls(**v)

    @classmethod
    def from_query(cls, query: dict) -> tuple["ExplorerView", list[str]]:
        """Parse a URL query (key -> string). Unknown keys are ignored; a value that does not
        parse keeps the default and gives a note naming the key and the value."""
        values, notes = {}, []
        for key, raw in query.items():
            name = _FIELD_OF_KEY.get(key)
            if name is None or raw in (None, ""):
                continue
            try:
                values[name] = _parse(URL_FORMAT[name][1], raw)
            except ValueError:
                notes.append(f"URL parameter {key}={raw!r} is not valid; using the default")
        return cls.from_values(values), notes

    def query(self) -> dict[str, str]:
        """The URL query of this view (the inverse of :meth:`from_query`)."""
        return encode_query(dataclasses.asdict(self))

    def params(self) -> ClusterParams:
        """The clustering parameters (unvalidated: ``cluster_model`` validates them)."""
        return ClusterParams(**{name: getattr(self, name) for name in CLUSTER_FIELDS})

    def replace(self, **changes) -> "ExplorerView":
        return dataclasses.replace(self, **changes)


def opening_view(catalog) -> tuple[ExplorerView, list[str]]:
    """The view the root opens with when an address names none: its ``explorer.json``'s opening
    view (:mod:`backend.data.opening`; the defaults without one), and notes naming the file for
    what of it cannot be used (the model is left None: the root's default model)."""
    opening, problem = read_opening(catalog.root)
    view, invalid = ExplorerView.from_query(opening["opening_view"])
    where = catalog.root / OPENING_FILE
    notes = ([problem] if problem else []) + [f"{where}: {note}" for note in invalid]
    declared = opening["default_model"]
    if declared and declared not in catalog:
        notes.append(f"{where} names the default model {declared!r}, which the root does not have; "
                     f"showing {default_model(catalog)}")
    return view, notes


def _parse(kind: str, raw: str):
    if kind == "bool":
        return raw in ("1", "true", "True")
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "list":
        return tuple(e for e in raw.split(",") if e)
    return raw


def encode_query(values: dict) -> dict[str, str]:
    """URL query of some view fields (by field name): false, empty and None values are left out.
    The browser writes the address bar by the same rules (``assets/explore.js``, ``writeUrl``)."""
    out = {}
    for name, value in values.items():
        key, kind = URL_FORMAT[name]
        if value is None or value is False or (kind == "list" and not value):
            continue
        if name == "selected" and len(value) > SELECTION_URL_MAX:
            continue
        if kind == "bool":
            out[key] = "1"
        elif kind == "list":
            out[key] = ",".join(value)
        else:
            out[key] = str(value)
    return out


def explorer_url(**fields) -> str:
    """Link to the explorer showing these view fields (others at their defaults), e.g.
    ``explorer_url(model="resnet18_…", min_cluster_size=4)`` -> ``/?model=resnet18_…&mcs=4``."""
    unknown = set(fields) - set(URL_FORMAT)
    if unknown:
        raise TypeError(f"unknown explorer view fields: {sorted(unknown)}; allowed: {list(URL_FORMAT)}")
    return "/?" + urlencode(encode_query(fields))


def point_info(catalog, query: dict, index: int) -> dict:
    """Name and cluster of one material in the view that ``query`` (a URL query) describes; the
    view's clustering is the cached one (the page asked for it first). A large model whose
    neighbour graph is not built yet is an error here, never a build."""
    view, _ = ExplorerView.from_query(query)
    model = view.model if view.model in catalog else default_model(catalog)
    data = catalog.load(model)
    if not 0 <= index < len(data.names):
        raise IndexError(index)
    params = view.params()
    if not clustering_ready(catalog, model, params):
        raise ParameterError(f"the neighbour graph of {model} is not built yet")
    result = cluster_model(catalog, model, params)
    return {"name": str(data.names[index]), "cluster": int(result.labels[index])}
