"""The explorer's component ids (pages/explore.py), one named constant each, and which control
holds each field of the view (:class:`backend.discover.explorer_view.ExplorerView`).

The page's layout, its callbacks, the layout pieces in ``components/`` and the browser side
(``assets/explore.js``, told the ids it needs through the page's client-config store) all name
components by these constants.
"""

from __future__ import annotations

from backend.discover.explorer_view import URL_FORMAT

# ---- controls of the view -------------------------------------------------------------------
MODEL = "explore-model"
ALGO = "explore-algo"
MCS, MS, SEL, METRIC, P, K = ("explore-mcs", "explore-ms", "explore-selection", "explore-metric",
                              "explore-p", "explore-k")
HDBSCAN_BOX, KCLUSTER_BOX, P_BOX = "explore-hdbscan-box", "explore-k-box", "explore-p-box"
DC, DC_EPS, DC_MS = "explore-dc", "explore-dc-eps", "explore-dc-ms"
RC, RC_MCS, RC_MS = "explore-rc", "explore-rc-mcs", "explore-rc-ms"
HIDE_NOISE, HIDE_NONNOISE = "explore-hide-noise", "explore-hide-nonnoise"
ELEMENTS, ELEMENT_MODE, MATCHES = "explore-elements", "explore-element-mode", "explore-matches"
COLOUR_BY, SCORES = "explore-colour-by", "explore-scores"
ADV_COLLAPSE, ADV_BTN = "explore-adv", "explore-adv-btn"
MODEL_LIST, MODEL_IDS, MODEL_LIST_SINK = "explore-model-list", "explore-model-ids", "explore-model-list-sink"
CONS_MODELS = "explore-consensus-models"

# ---- the map and what the browser draws on it -----------------------------------------------
SIZES, SIZES_BOX, SIZES_SINK = "explore-sizes", "explore-sizes-box", "explore-sizes-sink"
STYLE, STYLE_SINK = "explore-style", "explore-style-sink"
GRAPH, SUMMARY, ALERT, DRAWN, VIEW = ("explore-graph", "explore-summary", "explore-alert",
                                      "explore-drawn", "explore-view")
HOVER_IMG, HOVER_NAME, HOVER_TIP, CLICKED = ("explore-hover-img", "explore-hover-name", "explore-hover-tip",
                                             "explore-clicked")
PINNED, PIN_PANEL = "explore-pinned", "explore-pin-panel"
EXPORT_BTN, DOWNLOAD = "explore-export", "explore-download"
FIGURE_PNG, FIGURE_SVG, FIGURE_SINK = "explore-figure-png", "explore-figure-svg", "explore-figure-sink"
URL_SINK, URL_FORMAT_STORE, NOTES = "explore-url-sink", "explore-url-format", "explore-notes"
CLIENT_CONFIG, HOVER_SINK = "explore-client-config", "explore-hover-sink"
COMPARE = "explore-compare"
NAMES, NAMES_SINK, GRAPH_POLL = "explore-names", "explore-names-sink", "explore-graph-poll"
HELP, HELP_OPEN, HELP_CLOSE, HELP_SEEN = "explore-help", "explore-help-open", "explore-help-close", "explore-help-seen"

# ---- discovery: selection and gallery, neighbours, consensus, cards, subsets -----------------
TOOL, TOOL_SINK = "explore-tool", "explore-tool-sink"
SELECTION, SELECT_NAMES, SELECT_SINK = "explore-selection-names", "explore-select-names", "explore-select-sink"
GALLERY_BOX, GALLERY_INFO, GALLERY, GALLERY_CLEAR = ("explore-gallery-box", "explore-gallery-info", "explore-gallery",
                                                     "explore-gallery-clear")
EXPORT_SEL, DOWNLOAD_SEL, SEL_MSG = "explore-export-selection", "explore-download-selection", "explore-selection-msg"
NB_K, NB_PANEL = "explore-nb-k", "explore-neighbours"
SUBSET_N, SUBSET_BTN, SUBSET_EXPORT, SUBSET_REPORT = ("explore-subset-n", "explore-subset-choose", "explore-subset-export",
                                                      "explore-subset-report")
SUBSET_NAMES, DOWNLOAD_SUBSET = "explore-subset-names", "explore-download-subset"
PLACE_UPLOAD, PLACE_FERMI, PLACE_STATUS, PLACED_LIST = ("explore-place-upload", "explore-place-fermi",
                                                        "explore-place-status", "explore-placed-list")
#: the remove button of a placed material: {"type": PLACE_REMOVE, "name": its name}
PLACE_REMOVE = "explore-place-remove"
SKETCH_BOX, SKETCH_CANVAS, SKETCH_FIND, SKETCH_CLEAR = ("explore-sketch-box", "explore-sketch-canvas",
                                                       "explore-sketch-find", "explore-sketch-clear")
#: the drawn sketch (a PNG data URL, written by assets/sketch.js) and its nearest materials
SKETCH, SKETCH_RESULT = "explore-sketch", "explore-sketch-result"
#: materials of the root that the map lacks, to place by name, and the button that places them
PLACE_PICK, PLACE_PICK_BTN = "explore-place-pick", "explore-place-pick-btn"
#: how many placed materials the map shows now (stars drawn)
PLACED_SHOWN = "explore-placed-shown"
CARDS_BTN, CARDS_COLLAPSE, CARDS = "explore-cards-btn", "explore-cards-collapse", "explore-cards"
# what the server callbacks of the neighbours and the cards listen to: set in the browser only
# when there is something to show (a recluster or a model switch asks the server nothing more)
NB_TRIGGER, CARDS_TRIGGER = "explore-nb-trigger", "explore-cards-trigger"

#: the control of each view field (backend/discover/explorer_view.py names the fields and their URL keys)
CONTROLS = {
    "model": MODEL, "algo": ALGO, "min_cluster_size": MCS, "min_samples": MS, "selection": SEL,
    "metric": METRIC, "p": P, "n_clusters": K, "double_cluster": DC, "dc_eps": DC_EPS,
    "dc_min_samples": DC_MS, "recluster_noise": RC, "rc_min_cluster_size": RC_MCS, "rc_min_samples": RC_MS,
    "hide_noise": HIDE_NOISE, "hide_nonnoise": HIDE_NONNOISE, "elements": ELEMENTS,
    "element_mode": ELEMENT_MODE, "colour_by": COLOUR_BY, "consensus_models": CONS_MODELS, "selected": SELECTION,
}
assert set(CONTROLS) == set(URL_FORMAT), "every field of the view has a control"
#: the property that holds each control's value (the selection is a store the browser writes)
PROPS = {"selected": "data"}
#: the fields that decide what the map shows (the selection is drawn in the browser)
VIEW_FIELDS = tuple(name for name in CONTROLS if name != "selected")


def control_prop(name: str) -> str:
    """The property of the control of view field ``name`` that holds its value."""
    return PROPS.get(name, "value")


def field_controls(kind, fields=VIEW_FIELDS) -> dict:
    """``{field: kind(component, property)}`` for Dash's ``Input`` or ``State``: callbacks
    receive the view by field name."""
    return {name: kind(CONTROLS[name], control_prop(name)) for name in fields}
