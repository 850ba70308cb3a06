"""The DFT-like generator and the physics descriptors: speed, label balance, plot-vs-band-data
agreement, and the descriptors of the published plots.

    python bench/physics_descriptors.py --data ../shared/data/heuslerene [--n 600] [--window 1]

1. generates the default ``demo`` and ``holdout`` sets (``--n`` materials each, seed 0) and times it;
2. renders a display plot of each demo material (as the published ones) and reads the
   descriptors back from its pixels: agreement with the band data's (exact match rates for the
   counts, Spearman for the continuous ones, median |difference|);
3. reads the descriptors of every published ``--window`` eV plot (one process) and summarises them.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

CONTINUOUS = ("gap", "density_at_ef", "flat_strip", "max_slope", "line_density")


def main() -> int:
    from scipy.stats import spearmanr

    from backend.data.bands import render_display_png
    from backend.data.dftlike import BINARY_LABELS, generate
    from backend.quality.descriptors import band_data_descriptors, describe_plots, plot_descriptors

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True)
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--window", type=float, default=1.0)
    args = ap.parse_args()
    out = {"bench": "physics_descriptors", "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "python": platform.python_version(), "n": args.n, "window_eV": args.window}

    sets = {}
    for name in ("demo", "holdout"):
        t0 = time.perf_counter()
        sets[name] = generate(args.n, seed=0, family_set=name)
        out[f"generate_{name}_s"] = round(time.perf_counter() - t0, 2)
        out[f"labels_{name}"] = {c: round(float(np.mean([m.labels[c] for m in sets[name]])), 3) for c in BINARY_LABELS}

    rows, t_render, t_read = [], 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for m in sets["demo"]:
            t0 = time.perf_counter()
            png = render_display_png(m.band_data, args.window)
            t_render += time.perf_counter() - t0
            path = Path(tmp) / "plot.png"
            path.write_bytes(png)
            t0 = time.perf_counter()
            p = plot_descriptors(path, window=args.window)
            t_read += time.perf_counter() - t0
            rows.append((band_data_descriptors(m.band_data, window=args.window), p, m.labels))
    agree = {"render_s": round(t_render, 1), "read_s": round(t_read, 1)}
    for key in ("metal", "n_fermi_crossings", "n_crossing_bands"):
        agree[f"{key}_exact"] = round(float(np.mean([a[key] == p[key] for a, p, _ in rows])), 3)
    plain = [(a, p) for a, p, lab in rows if not lab["dirac_at_ef"]]
    agree["metal_exact_without_dirac_at_ef"] = round(float(np.mean([a["metal"] == p["metal"] for a, p in plain])), 3)
    for key in CONTINUOUS:
        pairs = np.array([(a[key], p[key]) for a, p, _ in rows], float)
        both = ~np.isnan(pairs).any(1)
        agree[key] = {"both_defined": int(both.sum()),
                      "spearman": round(float(spearmanr(pairs[both, 0], pairs[both, 1]).statistic), 3),
                      "median_abs_diff": round(float(np.median(np.abs(pairs[both, 0] - pairs[both, 1]))), 4)}
    flat = np.array([(lab["flat_band_at_ef"], p["flat_strip"] < 0.1) for _, p, lab in rows])
    agree["flat_label_vs_plot_flat_strip_below_0.1"] = round(float((flat[:, 0] == flat[:, 1]).mean()), 3)
    out["plot_vs_band_data_demo"] = agree

    plots = sorted((Path(args.data) / "images" / f"bands_10width_{args.window:g}eV").glob("*.png"))
    t0 = time.perf_counter()
    df = describe_plots(plots, window=args.window)
    published = {"plots": len(df), "read_s": round(time.perf_counter() - t0, 2),
                 "metal": int(df["metal"].sum()), "gap_positive": int((df["gap"] > 0).sum()),
                 "gap_median_eV": round(float(df.loc[df["gap"] > 0, "gap"].median()), 3),
                 "ef_position_in_gap_mean": round(float((-df["vbm"] / df["gap"])[df["gap"] > 0].mean()), 3),
                 "n_fermi_crossings_median": float(df["n_fermi_crossings"].median()),
                 "density_at_ef_median": round(float(df["density_at_ef"].median()), 3),
                 "flat_strip_below_0.1": int((df["flat_strip"] < 0.1).sum()),
                 "flat_strip_below_0.2": int((df["flat_strip"] < 0.2).sum()),
                 "max_slope_median": round(float(df["max_slope"].median()), 2),
                 "line_density_median": round(float(df["line_density"].median()), 2),
                 "more_than_20_crossings": df.loc[df["n_fermi_crossings"] > 20, "material"].tolist(),
                 "fermi_line_offset_max_eV": round(float(df["fermi_line_offset"].abs().max()), 4)}
    out["published"] = published
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
