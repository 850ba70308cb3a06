"""What the explorer's map is coloured by, besides its clusters: a known label's classes, the
consensus of several models, or each material's stability across them; and the per-material
captions the gallery shows. The numbers come from ``backend`` (labels, external scores,
consensus); here they become colour codes, hover texts and summary lines.
"""

from __future__ import annotations

import numpy as np
from dash import html

from backend.data.labels import label_columns
from backend.discover.explorer_view import CONSENSUS_COLOURINGS, ExplorerView
from backend.errors import BandscapeError
from components.scatter import colour_codes, stability_codes


def model_window(catalog, model_id: str) -> float | None:
    """The image window (eV) of a model, None for an unknown model."""
    return catalog.get(model_id).window if model_id in catalog else None


def colouring(catalog, data, result, v: ExplorerView):
    """Colour codes, per-point texts for the hover and a summary (``{"text": …}``) when the map
    is coloured by a known label or by the consensus across models; all None for the clusters."""
    if v.colour_by == "cluster":
        return None, None, None
    if v.colour_by in CONSENSUS_COLOURINGS:
        return consensus_colouring(catalog, data, v)
    from backend.cluster.validation import external_scores
    from backend.data.labels import load_labels

    colour_by = v.colour_by
    truth = load_labels(catalog, colour_by, data.names)
    cats, codes = np.unique(truth, return_inverse=True)
    s = external_scores(truth, result.labels)
    text = (f"vs label '{colour_by}' ({len(cats)} classes): accuracy {s['accuracy']:.3f}, NMI {s['nmi']:.3f}, "
            f"ARI {s['ari']:.3f} (noise as a cluster); without noise: accuracy {s['accuracy_no_noise']:.3f}, "
            f"NMI {s['nmi_no_noise']:.3f}, ARI {s['ari_no_noise']:.3f}")
    return colour_codes(codes), [str(t) for t in truth], {"text": text, **s}


def consensus_colouring(catalog, data, v: ExplorerView):
    """The consensus of the filter's models in the view's cell, on this model's materials."""
    import pandas as pd

    from backend.discover.consensus import STABLE, consensus_models, model_consensus

    flt, ids = consensus_models(catalog, v.consensus_models, model_window(catalog, v.model))
    cons = model_consensus(catalog, ids, v.params())
    at = pd.Index(cons.materials).get_indexer(data.names)
    found = at >= 0
    labels = np.where(found, cons.labels[np.maximum(at, 0)], -1)
    stab = np.where(found, cons.stability[np.maximum(at, 0)], np.nan)
    codes = colour_codes(labels) if v.colour_by == "consensus" else stability_codes(stab)
    texts = [("missing from some models" if not f else f"{'noise' if c < 0 else f'cluster {c}'} · stability {s:.2f}")
             for f, c, s in zip(found, labels, stab)]
    c = cons.counts()
    text = html.Span([
        html.B(f"{c['stable']} of {len(data.names)} materials stable"),
        f" (stability ≥ {STABLE}: {c['stable_in_cluster']} in a consensus cluster, {c['stable_noise']} consistently "
        f"noise) · consensus of {len(ids)} models ({flt or 'all autoencoders'}) at this cell: {cons.n_clusters} clusters, {cons.n_noise} noise"
        + (f"; {int((~found).sum())} materials are missing from some models" if not found.all() else "")
        + (" · colours: red unstable → blue stable" if v.colour_by == "stability" else ""),
    ], id="explore-consensus-summary")
    return codes, texts, {"text": text, "filter": flt}


def consensus_placeholder(catalog, model_id) -> str:
    """What the consensus combines when its filter is empty (the field's placeholder)."""
    from backend.discover.consensus import consensus_models

    try:
        flt, ids = consensus_models(catalog, None, model_window(catalog, model_id))
    except BandscapeError:
        return ""
    return f"{flt or 'all autoencoders'} ({len(ids)} models)"


def point_labels(catalog, names) -> dict | None:
    """Every label column of labels.csv, per material (for the gallery's captions)."""
    from backend.data.labels import load_labels

    cols = label_columns(catalog)
    return {c: load_labels(catalog, c, names).tolist() for c in cols} or None
