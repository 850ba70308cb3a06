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
from components.scatter import PALETTE, STABILITY_CODE, STABILITY_RAMP, category_codes, colour_codes, stability_codes

#: the legend lists at most this many categories (the largest; the rest are counted)
LEGEND_MAX = 40


def model_window(catalog, model_id: str) -> float | None:
    """The image window (eV) of a model, None for an unknown model."""
    return catalog.get(model_id).window if model_id in catalog else None


def legend(title: str, entries: list[dict]) -> dict:
    """The legend the browser draws above the map: ``title`` and ``entries`` (each ``{"text",
    "code": colour code, "count"}``, plus ``"cluster": k`` or ``"label": value`` when a click on
    it selects those materials); beyond :data:`LEGEND_MAX` entries, the last are counted in
    ``more`` (the entry of colour code 0, noise or unlabelled, is always shown)."""
    rest = [e for e in entries if e["code"] != 0]
    shown = rest[:LEGEND_MAX] + [e for e in entries if e["code"] == 0]
    return {"title": title, "entries": shown, "more": len(rest) - min(len(rest), LEGEND_MAX)}


def cluster_legend(labels: np.ndarray, title: str = "clusters", selectable: bool = True) -> dict:
    """Clusters, largest first (ties: lower number first), then noise, in their drawn colours;
    ``selectable``: a click on an entry selects its cluster (the map's clustering, not a
    consensus)."""
    labels = np.asarray(labels, dtype=int)
    ks, counts = np.unique(labels[labels >= 0], return_counts=True)
    order = np.lexsort((ks, -counts))
    codes = colour_codes(ks)
    if len(ks) and ks.max() >= len(PALETTE):
        title += f" (colours repeat every {len(PALETTE)})"
    entries = [{"text": str(int(ks[j])), "code": int(codes[j]), "count": int(counts[j]),
                **({"cluster": int(ks[j])} if selectable else {})} for j in order]
    n_noise = int((labels < 0).sum())
    if n_noise:
        entries.append({"text": "noise", "code": 0, "count": n_noise, **({"cluster": -1} if selectable else {})})
    return legend(title, entries)


def colouring(catalog, data, result, v: ExplorerView):
    """Colour codes, per-point texts for the hover, a summary (``{"text": …}``) and the legend
    (:func:`legend`); codes, texts and summary are None for the clusters' own colours."""
    if v.colour_by == "cluster":
        return None, None, None, cluster_legend(result.labels)
    if v.colour_by in CONSENSUS_COLOURINGS:
        return consensus_colouring(catalog, data, v)
    from backend.cluster.validation import external_scores
    from backend.data.labels import label_categories, load_labels

    colour_by = v.colour_by
    truth = load_labels(catalog, colour_by, data.names)
    cats = label_categories(catalog, colour_by)
    codes = category_codes(truth, cats)
    s = external_scores(truth, result.labels)
    present, counts = np.unique(truth, return_counts=True)
    count = dict(zip(present.tolist(), counts.tolist()))
    entries = [{"text": c, "code": int(code), "count": count[c], "label": c}
               for c, code in zip(cats, category_codes(cats, cats)) if c in count]
    if "" in count:
        entries.append({"text": "(no label)", "code": 0, "count": count[""], "label": ""})
    text = (f"vs label '{colour_by}' ({len(present)} classes): accuracy {s['accuracy']:.3f}, NMI {s['nmi']:.3f}, "
            f"ARI {s['ari']:.3f} (noise as a cluster); without noise: accuracy {s['accuracy_no_noise']:.3f}, "
            f"NMI {s['nmi_no_noise']:.3f}, ARI {s['ari_no_noise']:.3f}")
    return codes, [str(t) for t in truth], {"text": text, **s}, legend(f"label: {colour_by}", entries)


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
    if v.colour_by == "consensus":
        leg = cluster_legend(labels, "consensus clusters", selectable=False)
    else:
        key = np.where(found, np.rint(np.clip(np.nan_to_num(stab, nan=0.0), 0, 1) * 10), -1).astype(int)
        entries = [{"text": f"{j / 10:.1f}", "code": STABILITY_CODE + j, "count": int((key == j).sum())}
                   for j in range(len(STABILITY_RAMP))]
        if (key < 0).any():
            entries.append({"text": "missing", "code": 0, "count": int((key < 0).sum())})
        leg = legend("stability", entries)
    c = cons.counts()
    text = html.Span([
        html.B(f"{c['stable']} of {len(data.names)} materials stable"),
        f" (stability ≥ {STABLE}: {c['stable_in_cluster']} in a consensus cluster, {c['stable_noise']} consistently "
        f"noise) · consensus of {len(ids)} models ({flt or 'all autoencoders'}) at this cell: {cons.n_clusters} clusters, {cons.n_noise} noise"
        + (f"; {int((~found).sum())} materials are missing from some models" if not found.all() else "")
        + (" · colours: red unstable → blue stable" if v.colour_by == "stability" else ""),
    ], id="explore-consensus-summary")
    return codes, texts, {"text": text, "filter": flt}, leg


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
