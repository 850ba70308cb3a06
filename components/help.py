"""The explorer's help: a short tour of five steps (what a first visit opens, and the Help
button), with the full reference of every control and the paper's recommended settings one click
away under it. ``assets/explore.js`` steps through the tour (``data-tour`` buttons)."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

#: the tour: (title, a few sentences); one step on screen at a time
TOUR = (
    ("The map", "Each point is a material, placed by the 2-D UMAP of its autoencoder *fingerprint*: "
                "materials with similar band structures lie close. Colours are the clusters of the "
                "**Clustering** panel (black: noise) or, where *Colour by* names one, a known label "
                "(the demo opens on its lattice families), named in the legend above the map. "
                "**Hover** a point to see its band structure on the right; **click** to pin it."),
    ("Cluster and colour", "Change the clustering live on the left: HDBSCAN's *min cluster size*, or "
                           "*K-Means* with a number of clusters. **Colour by → label** paints what is "
                           "known (on the demo: the lattice family, metal or not, a flat band at E_F) "
                           "and scores the clustering against it."),
    ("Find and compare", "Choose *box* or *lasso select* above the map and draw: a gallery of the "
                         "selection opens below it (Escape clears). A pinned material's **nearest "
                         "neighbours** in fingerprint space are listed on the right and joined to it "
                         "on the map."),
    ("Your materials", "Drop your own band structures on the **Your materials** card (VASP EIGENVAL "
                       "or vasprun.xml, Quantum ESPRESSO, Materials Project JSON, plots): each is "
                       "placed on the map as a star with its nearest materials and a cluster. Or "
                       "**search by sketch**: draw bands and find the materials that look like them."),
    ("Judge and train", "The **Evaluate** page ranks models and clustering cells (DBCV, S_Dbw, "
                        "agreement across models, and against known labels); **Train** trains new "
                        "models in the background. The address bar holds the whole view: a link "
                        "reopens it."),
)

HELP_TEXT = """
**bandscape** clusters band structures by their autoencoder *fingerprints*: a residual
convolutional network turns each band-structure image into a small map of z = 1, 2 or 3 latent
channels: 7×7×z numbers (49, 98, 147) for the study's 224×224 images; bandscape's default
128×128 training makes two such maps of 4×4×z (96 numbers for z = 3), one trained to keep the
bands' shapes wherever the Fermi level sits, one to keep what lies at the Fermi level (the
*Latent channels* choice says how many numbers). The fingerprints are clustered here, live,
and drawn on their 2-D UMAP projection. **Hover** a point to see its band structure; **click** to pin
it (pin two to compare them; × unpins). The **legend** above the map names what each colour means
(clusters, label values, consensus clusters, stability), in the colours drawn; a yellow box warns
where a view cannot mean much (a collapsed model, all noise, one cluster). *Download map* saves
the map as a PNG or SVG figure with axis titles, legend and a caption naming model and clustering.

**Autoencoder model** — pick the architecture (ResNet-18/50, or *Unencoded*: UMAP of the raw
pixels), latent channels, training epochs, validation split, energy window (±eV around E_F) and
line width; only combinations that exist are offered. Or search a model by its id.

**Clustering** — *HDBSCAN* (density-based; points in no dense group are *noise*, black):
*min cluster size*, *min samples*, *leaf* (many small, homogeneous clusters) or *eom* (fewer,
larger ones), and the distance: *Minkowski* with exponent *p* (p = 0.2, as the paper, really
applied here through a precomputed distance matrix) or *Euclidean*. *K-Means* and *GMM* take a
number of clusters and a fixed seed (same settings, same picture). Unencoded models are clustered
on their 2-D UMAP coordinates.

**Advanced** — *double cluster*: DBSCAN (eps, min samples) on the UMAP of the non-noise points,
drawn as translucent halos; *recluster noise*: HDBSCAN on the noise points only (reclustered points
are outlined); *hide* noise or non-noise points.

**Elements** — highlight materials containing *any* (inclusive) or *all* (exclusive) of the chosen
elements. Where the dataset has labels (`labels.csv`), colour by a label and read the accuracy,
NMI and ARI of the clustering against it.

**Find and compare** — choose *box select* or *lasso select* above the map and draw around a
region (or click a cluster's or label value's legend entry, or a cluster card): a gallery of the selected materials'
band structures opens below the map (a page at a time; click one to pin it); the other points
turn grey; Escape clears the selection. *Export selection* writes them as CSV; a small selection is kept in the address. A
pinned material's **nearest neighbours** in fingerprint space (under the clustering's metric)
are listed on the right and joined to it by lines on the map, each distance also placed among all
pairs of the model ("closest 2% of pairs"): a Minkowski distance has no unit. **Consensus across models**: pick
models with a filter as on the evaluate page (default: the autoencoders of this window, or all
autoencoders where the window has one), then colour
by *consensus cluster* (the groups most of them agree on, for the HDBSCAN cell above) or by
*stability* (how consistently a material's cluster-mates stay with it: red unstable, blue
stable). **Cluster cards** show each cluster's size, its medoid's band structure, its
over-represented elements (and on labelled data its label mix). **Representative subset**: N
materials covering the clusters in proportion (medoids first, then those farthest from the ones
chosen; noise is a group of its own), with the coverage reached and the balance, as CSV.

**Export** writes the labels with every parameter; the address bar holds the whole view, so a link
reopens it.

**Recommended settings (the paper)** — ResNet-50, latent 3, 90 epochs, split 0.1, window 1 eV,
line width 1; HDBSCAN min cluster size 3, min samples 2, *leaf*, Minkowski p = 0.2.
"""


def tour_steps() -> list:
    """The tour's steps, the first shown (the browser shows one at a time)."""
    n = len(TOUR)
    return [html.Div([html.Div(f"{i + 1} of {n}", className="small text-muted"), html.H5(title),
                      dcc.Markdown(text)],
                     className="explore-tour-step", style=None if i == 0 else {"display": "none"},
                     **{"data-step": str(i)})
            for i, (title, text) in enumerate(TOUR)]


def help_modal(modal_id: str, close_id: str) -> dbc.Modal:
    button = dict(className="btn btn-sm btn-outline-secondary me-1")
    return dbc.Modal([
        dbc.ModalHeader(dbc.ModalTitle("A short tour of the explorer"), close_button=False),
        dbc.ModalBody([
            html.Div(tour_steps(), id=f"{modal_id}-tour"),
            html.Details([html.Summary("Every control, in full", className="small"), dcc.Markdown(HELP_TEXT)],
                         className="mt-3", id=f"{modal_id}-reference"),
        ]),
        dbc.ModalFooter([
            html.Button("Back", **button, **{"data-tour": "-1"}, id=f"{modal_id}-back"),
            html.Button("Next", **button, **{"data-tour": "1"}, id=f"{modal_id}-next"),
            dbc.Button("Close", id=close_id, color="primary", size="sm"),
        ]),
    ], id=modal_id, is_open=False, size="lg", scrollable=True)
