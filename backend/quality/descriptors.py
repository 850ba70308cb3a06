"""Physics descriptors of a band structure near the Fermi level, from its band data or from a plot.

What a fingerprint should keep is what a physicist reads off a band plot near E_F. These
numbers are that reading, computed from the band data (exact) or from a display plot's pixels
(approximate); never from a fingerprint. Energies are E - E_F in eV; k is the path length as a
fraction of the whole path (0 at the first point, 1 at the last, as the plot's x axis), so slopes
are in **eV per path** (the energy a line at that slope climbs over the plot's full width): a
plot does not say its lattice, so 1/Å cannot be read from it.

=====================  ==========================================  ===========================================
descriptor             from band data (exact)                      from a plot (approximate)
=====================  ==========================================  ===========================================
``n_fermi_crossings``  times a line goes from 5 meV below E_F to   ink components that cross E_F's row by
                       5 meV above or back, within each path       2 px each way, each counted by its separate
                       segment (a flat band at E_F does not        pieces at the edges; lines crossing within
                       cross it)                                   ~2 px of each other count once
``n_crossing_bands``   lines with energies on both sides (±5 meV)  ``ceil(n_fermi_crossings / 2)``: exact
                                                                   when each such line crosses twice, as on a
                                                                   closed path (Γ-M-K-Γ)
``metal``              1 if a line crosses E_F, else 0             1 if ``n_fermi_crossings`` > 0
``gap``                0 for a metal or a line within 5 meV of     the same from line centres (±½ px); NaN
                       E_F; else CBM - VBM (lowest energy above    when one side of E_F has no line inside
                       E_F minus highest below)                    the window (the gap is wider than it shows)
``vbm``, ``cbm``       those two energies (NaN when gap is 0)      the same, inside the window
``density_at_ef``      mean over k of the number of lines within   mean over columns of the line centres
                       ±0.1 eV (lines straight between k-points,   within ±0.1 eV; lines closer than ~2 px
                       as the plot draws them)                     count once
``flat_bandwidth``     smallest bandwidth (max - min along the     NaN: a plot cannot tell bands apart
                       path) of a line that comes within 0.1 eV    (``flat_strip`` is its reading)
                       of E_F; lines are energy-ordered bands as
                       in an EIGENVAL
``flat_strip``         the narrowest energy window that meets      the same over line centres, a line in 99 %
                       E_F ± 0.1 eV and holds a line at every k:   of the columns; NaN when no such window
                       a flat feature at E_F whichever bands make  fits inside the plot
                       it (<= ``flat_bandwidth``)
``max_slope``          largest |dE/dk| (eV/path) of a straight     the rise of line centres followed over ±3
                       piece between k-points within ±0.2 eV       columns (a line's height in its column for
                                                                   the known line width where it cannot be
                                                                   followed)
``line_density``       mean over k of the lines within ±window     mean number of line pieces per column
=====================  ==========================================  ===========================================

NaN means *undefined*, not zero: ``flat_bandwidth``, ``flat_strip`` and ``max_slope`` are NaN when
no line comes within 0.1 eV (0.2 eV) of E_F; ``gap``, ``vbm`` and ``cbm`` as the table says.
A line is one band of one spin channel: both channels of a spin-polarised run count, as the plot
draws both. The path's segments that do not meet (a repeated distance) add no length. Band data
lists bands by energy, so a Dirac point exactly at E_F is two bands touching (no crossing, gap 0:
a semimetal); its plot is an X, which pixels cannot tell from lines crossing E_F (a metal).

A plot's y axis is calibrated from its axes box: the spines' pixel rows are ±W eV (matplotlib
snaps the limits and horizontal lines to pixel centres, so within ½ px: 2.7 meV at W = 1 eV);
its x axis from the box's left and right spines. A pixel is a line's where the line covers its
centre (darker than mid-grey and not coloured); the grey high-symmetry lines are lighter and the
red Fermi line coloured, and where a band line runs under the red line it darkens it, which is
kept. The red line is checked against the calibration (``fermi_line_offset``, eV).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from backend.data.plots import read_plot_area
from backend.errors import ParameterError

#: eV: half-width of the band at E_F for ``density_at_ef`` and the reach of the flat descriptors
NEAR_EF = 0.1
#: eV: half-width of the band at E_F where ``max_slope`` is looked for
SLOPE_NEAR_EF = 0.2
#: eV: a line this close to E_F touches it (gap 0): below what a 1 eV plot resolves (5.4 meV/px)
TOUCH = 0.005
#: px: a line crossing E_F in a plot reaches this many rows above and below E_F's row (a line
#: touching E_F, ~2 px thick, does not)
CROSSING_STRIP_PX = 2
#: pt: the band lines' width in the published plots (the study's "width1") and ours
LINE_WIDTH_PT = 1.0
#: inches: the display plots' figure width (640 px at 100 dpi)
FIGURE_WIDTH_IN = 6.4
#: columns a line is followed each way to read its slope in a plot
SLOPE_SPAN = 3
#: fraction of a plot's columns a flat strip must hold a line in (a few columns are glitches)
FLAT_COVERAGE = 0.99

DESCRIPTORS = ("n_fermi_crossings", "n_crossing_bands", "metal", "gap", "vbm", "cbm", "density_at_ef",
               "flat_bandwidth", "flat_strip", "max_slope", "line_density")


# ---- band data --------------------------------------------------------------------------------

def band_descriptors(kdist: np.ndarray, energies: np.ndarray, *, window: float = 1.0) -> dict[str, float]:
    """The descriptors of band data (see the module's table).

    ``kdist`` (nk,): path length (any unit; segments that do not meet repeat a distance, as
    :func:`backend.data.bands.path_geometry` writes them); ``energies`` (nlines, nk) or
    (nspin, nbands, nk): E - E_F in eV; ``window`` (eV): the half-height for ``line_density``.
    """
    kdist = np.asarray(kdist, dtype=float)
    e = np.asarray(energies, dtype=float)
    e = e.reshape(-1, e.shape[-1])
    if kdist.ndim != 1 or len(kdist) < 2 or e.shape[1] != len(kdist):
        raise ParameterError(f"energies must be (nlines, nk) with nk = len(kdist) >= 2, got {e.shape} and {kdist.shape}")
    if not np.isfinite(e).all() or not np.isfinite(kdist).all():
        raise ParameterError("kdist and energies must be finite")
    length = kdist[-1] - kdist[0]
    if length <= 0:
        raise ParameterError(f"kdist must increase along the path, got {kdist[0]} .. {kdist[-1]}")
    x = (kdist - kdist[0]) / length
    dx = np.diff(x)
    step = dx > 0                                    # zero-length steps join segments that do not meet
    e0, e1 = e[:, :-1][:, step], e[:, 1:][:, step]   # (nlines, nsteps): the straight pieces drawn
    w = dx[step]

    above = e > 0
    crossings = _crossings(e, np.flatnonzero(~step) + 1)
    crossing = (e > TOUCH).any(1) & (e < -TOUCH).any(1)
    out = {"n_fermi_crossings": float(crossings), "n_crossing_bands": float(crossing.sum()),
           "metal": float(crossing.any())}
    if crossing.any() or (np.abs(e) < TOUCH).any():
        out.update(gap=0.0, vbm=math.nan, cbm=math.nan)
    else:
        vbm = e[~above].max() if (~above).any() else math.nan
        cbm = e[above].min() if above.any() else math.nan
        out.update(gap=float(cbm - vbm), vbm=float(vbm), cbm=float(cbm))
    out["density_at_ef"] = float((_fraction_within(e0, e1, NEAR_EF) * w).sum())
    out["line_density"] = float((_fraction_within(e0, e1, window) * w).sum())
    near = np.abs(e).min(1) <= NEAR_EF
    width = e.max(1) - e.min(1)
    out["flat_bandwidth"] = float(width[near].min()) if near.any() else math.nan
    out["flat_strip"] = _flat_strip_bands(e)
    piece_near = (np.minimum(e0, e1) <= SLOPE_NEAR_EF) & (np.maximum(e0, e1) >= -SLOPE_NEAR_EF)
    slopes = np.abs(e1 - e0) / w
    out["max_slope"] = float(slopes[piece_near].max()) if piece_near.any() else math.nan
    return out


def _crossings(e: np.ndarray, breaks: np.ndarray) -> int:
    """Times the lines go from below -TOUCH to above +TOUCH or back, within each path segment
    (a line wandering within ±TOUCH of E_F, as a flat band at E_F does, does not cross it)."""
    side = np.where(e > TOUCH, 1, np.where(e < -TOUCH, -1, 0))
    count = 0
    for seg in np.split(np.arange(e.shape[1]), breaks):
        for line in side[:, seg]:
            s = line[line != 0]
            count += int((s[1:] != s[:-1]).sum())
    return count


def band_data_descriptors(bd, *, window: float = 1.0) -> dict[str, float]:
    """:func:`band_descriptors` of a :class:`backend.data.bands.BandData` (all spin channels)."""
    return band_descriptors(bd.kdist, bd.relative(), window=window)


def _flat_strip_bands(e: np.ndarray) -> float:
    """The narrowest energy window that meets E_F ± NEAR_EF and holds a line at every k-point
    (a flat feature at E_F, whichever bands make it; at most the bandwidth of the flattest band
    that comes within NEAR_EF of E_F). NaN when no line comes within NEAR_EF of E_F."""
    if not (np.abs(e) <= NEAR_EF).any():
        return math.nan
    cols = np.sort(e, axis=0).T                       # (nk, nlines): each k-point's energies, ascending
    # the window [a, b]: at its narrowest, a is a line's energy (or E_F + NEAR_EF) and b the
    # highest over k of the lowest line at or above a, raised to E_F - NEAR_EF if below it
    a = np.append(np.unique(e[e <= NEAR_EF]), NEAR_EF)
    b = np.full(len(a), -np.inf)
    for k_energies in cols:
        i = np.searchsorted(k_energies, a)            # the lowest line at or above a at this k
        b = np.maximum(b, np.where(i < len(k_energies), k_energies[np.minimum(i, len(k_energies) - 1)], np.inf))
    h = np.maximum(b, -NEAR_EF) - a
    return float(h.min()) if np.isfinite(h).any() else math.nan


def _fraction_within(e0: np.ndarray, e1: np.ndarray, half: float) -> np.ndarray:
    """Fraction of each straight piece from ``e0`` to ``e1`` that lies within ±``half``."""
    lo, hi = np.minimum(e0, e1), np.maximum(e0, e1)
    span = hi - lo
    inside = np.clip(np.minimum(hi, half) - np.maximum(lo, -half), 0, None)
    flat = span <= 1e-12
    return np.where(flat, (np.abs(lo) <= half).astype(float), inside / np.where(flat, 1.0, span))


# ---- plots -------------------------------------------------------------------------------------

@dataclass
class PlotLines:
    """The band lines of a display plot, inside its axes box.

    ``ink`` (H, W) bool: band-line pixels (the red Fermi line and the grey high-symmetry lines
    removed; where a band line runs under the red line its pixels are kept); ``energy`` (H,):
    E - E_F (eV) at each row's centre; ``kfrac`` (W,): path fraction at each column's centre;
    ``thickness``: px, the lines' width (from the line width in points); ``measured_thickness``:
    px, the same read from the pixels (a check); ``fermi_line_offset``: eV, the red line's energy
    by the axis calibration (NaN without one).
    """

    ink: np.ndarray
    energy: np.ndarray
    kfrac: np.ndarray
    window: float
    thickness: float
    measured_thickness: float
    fermi_line_offset: float

    @property
    def ev_per_px(self) -> float:
        return float(self.energy[0] - self.energy[1])


def read_plot_lines(path: str | os.PathLike, *, window: float, line_width: float = LINE_WIDTH_PT) -> PlotLines:
    """The band lines of a display plot over E - E_F = ±``window`` eV (DataError naming ``path``
    when it is not a readable image or has no axes box). ``line_width``: the band lines' width in
    points; with the figure 6.4 inches wide (matplotlib's default, the published plots' and
    :func:`backend.data.bands.render_display_png`'s) it gives their thickness in pixels, which the
    slope reading needs (measured from the pixels it comes out 15-20 % thicker: run lengths are
    whole pixels)."""
    if not window > 0:
        raise ParameterError(f"window must be > 0 eV, got {window!r}")
    area = read_plot_area(path)
    (top, bottom, left, right), r, g, b = area.frame, area.r, area.g, area.b
    grey, saturation = area.grey, area.saturation
    # black band lines: darker than the grey high-symmetry lines (~180-215) and the red line
    ink = (saturation < 60) & (grey < 128)
    # a band line under the translucent red line leaves it dark red (~(180, 0, 0)); red over the
    # grey high-symmetry lines or over white keeps green and blue above 45. A line crossing it
    # shows as ink just above and below.
    red = (r - np.maximum(g, b)) > 60
    bridged = np.zeros_like(ink)
    bridged[1:-1] = ink[:-2] & ink[2:]
    ink |= red & (((np.maximum(g, b) < 45) & (r < 220)) | bridged)
    for edge in range(3):                # spines drawn over 2-3 px leave dark border rows/columns
        for sl in (np.s_[edge, :], np.s_[-1 - edge, :], np.s_[:, edge], np.s_[:, -1 - edge]):
            if ink[sl].mean() > 0.9:
                ink[sl] = False
    rows = np.arange(top + 1, bottom) + 0.5          # pixel centres, the spines' centres are the limits
    energy = window - (rows - (top + 0.5)) / (bottom - top) * 2 * window
    kfrac = (np.arange(left + 1, right) + 0.5 - (left + 0.5)) / (right - left)
    red_rows = np.flatnonzero(red.mean(1) > 0.25)
    offset = float(energy[red_rows].mean()) if len(red_rows) else math.nan
    # a check of line_width: a line of thickness t and slope s fills t·sqrt(1 + s²) rows of a column and t·sqrt(1 + 1/s²)
    # columns of a row (pixels whose centre it covers): so 1/t² = 1/n² + 1/u² at each pixel
    n, u = _run_length_map(ink, 0)[ink], _run_length_map(ink, 1)[ink]
    measured = float(np.median(1 / np.sqrt(1.0 / n ** 2 + 1.0 / u ** 2))) if len(n) else math.nan
    thickness = line_width / 72.0 * area.width / FIGURE_WIDTH_IN
    return PlotLines(ink=ink, energy=energy, kfrac=kfrac, window=float(window), thickness=thickness,
                     measured_thickness=measured, fermi_line_offset=offset)


def _runs(ink: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertical (axis 0) or horizontal (axis 1) runs of ink: (line, start, length), where
    ``line`` is the column (row) and ``start`` the first row (column) of each run."""
    m = ink.T if axis == 0 else ink
    pad = np.zeros((m.shape[0], 1), bool)
    d = np.diff(np.concatenate([pad, m, pad], axis=1).astype(np.int8), axis=1)
    line, start = np.nonzero(d == 1)
    _, end = np.nonzero(d == -1)
    return line, start, end - start


def _pieces_per_label(row: np.ndarray, n: int) -> np.ndarray:
    """(n,): how many separate runs of each label 1..n a row of a label image holds."""
    starts = row[(row > 0) & (np.concatenate([[0], row[:-1]]) != row)]
    return np.bincount(starts, minlength=n + 1)[1:]


def _run_length_map(ink: np.ndarray, axis: int) -> np.ndarray:
    """(H, W): at each ink pixel, the length of its vertical (axis 0) or horizontal run."""
    line, start, length = _runs(ink, axis)
    out = np.zeros(ink.shape if axis == 1 else ink.T.shape, np.int32)
    rows = np.repeat(line, length)
    cols = np.repeat(start, length) + (np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length))
    out[rows, cols] = np.repeat(length, length)
    return out if axis == 1 else out.T


def plot_descriptors(path: str | os.PathLike, *, window: float, line_width: float = LINE_WIDTH_PT) -> dict[str, float]:
    """The descriptors of a display plot over ±``window`` eV (see the module's table), with two
    checks of the reading: ``fermi_line_offset`` (eV) and ``measured_thickness`` (px)."""
    return plot_lines_descriptors(read_plot_lines(path, window=window, line_width=line_width))


def plot_lines_descriptors(lines: PlotLines) -> dict[str, float]:
    """:func:`plot_descriptors` of lines already read."""
    ink, energy = lines.ink, lines.energy
    h_px, w_px = ink.shape
    px = lines.ev_per_px
    # line pieces: each column's runs of ink. A pixel is ink where the line covers its centre, so a
    # piece is the line's chord through the column's centre and its middle is the line's centre
    col, start, length = _runs(ink)
    mid = start + length / 2.0 - 0.5                                       # row index (fractional)
    e_mid = np.interp(mid, np.arange(h_px), energy)

    out: dict[str, float] = {}
    # E_F's row: the red line's where it is drawn (within a pixel of the calibration), else the axis'
    zero_row = round(float(np.interp(0.0, energy[::-1], np.arange(h_px)[::-1])))
    if abs(lines.fermi_line_offset) <= px:
        zero_row = round(float(np.interp(lines.fermi_line_offset, energy[::-1], np.arange(h_px)[::-1])))
    lo, hi = zero_row - CROSSING_STRIP_PX, zero_row + CROSSING_STRIP_PX
    crossings = 0
    if 0 <= lo and hi < h_px:
        labels, n = ndimage.label(ink[lo:hi + 1], structure=np.ones((3, 3), bool))
        # a component reaching both edge rows crosses; it holds as many lines as it has separate
        # pieces in the edge rows (lines crossing each other or a flat line lying at E_F join it)
        top, bottom = _pieces_per_label(labels[0], n), _pieces_per_label(labels[-1], n)
        crossings = int(np.where((top > 0) & (bottom > 0), np.maximum(top, bottom), 0).sum())
    out["n_fermi_crossings"] = float(crossings)
    out["n_crossing_bands"] = float(math.ceil(crossings / 2))
    out["metal"] = float(crossings > 0)
    if crossings or (np.abs(e_mid) <= TOUCH + px / 2).any():
        out.update(gap=0.0, vbm=math.nan, cbm=math.nan)
    else:
        below, above = e_mid < 0, e_mid > 0
        vbm = float(e_mid[below].max()) if below.any() else math.nan
        cbm = float(e_mid[above].min()) if above.any() else math.nan
        out.update(gap=cbm - vbm, vbm=vbm, cbm=cbm)
    out["density_at_ef"] = float((np.abs(e_mid) <= NEAR_EF).sum() / w_px)
    out["line_density"] = float(len(col) / w_px)
    out["flat_bandwidth"] = math.nan                   # a plot cannot tell bands apart: see flat_strip
    out["flat_strip"] = _flat_strip(col, mid, energy, w_px)
    out["max_slope"] = _max_slope(lines, col, start, length, e_mid)
    out["fermi_line_offset"] = lines.fermi_line_offset
    out["measured_thickness"] = lines.measured_thickness
    return out


def _flat_strip(col, mid, energy, w_px) -> float:
    """:func:`_flat_strip_bands` read from line centres: the window's bottom is a row, its top the
    highest of each column's lowest line centre at or above it, over FLAT_COVERAGE of the columns;
    NaN when no such window fits inside the plot."""
    h_px = len(energy)
    centre = np.zeros((h_px, w_px), bool)
    centre[np.clip(np.round(mid).astype(int), 0, h_px - 1), col] = True
    # per column, the nearest centre row at or above each row (-1 where none): energy rises upwards
    prev = np.full((h_px + 1, w_px), -1, dtype=np.int32)
    for r in range(h_px):
        prev[r + 1] = np.where(centre[r], r, prev[r])
    prev = prev[1:]
    rows = np.arange(h_px)
    gap = np.where(prev >= 0, rows[:, None] - prev, h_px + 1)
    top = rows - np.quantile(gap, FLAT_COVERAGE, axis=1, method="higher")
    ok = (top >= 0) & (energy <= NEAR_EF)
    if not ok.any():
        return math.nan
    return float((np.maximum(energy[np.clip(top, 0, h_px - 1)], -NEAR_EF) - energy)[ok].min())


def _max_slope(lines: PlotLines, col, start, length, e_mid) -> float:
    """Largest |dE/dk| (eV/path) of a line piece whose centre reaches ±SLOPE_NEAR_EF.

    Each piece is followed along its line up to SLOPE_SPAN columns each way (to the touching piece
    of the next column whose middle is nearest where the line was heading) and the slope is the
    rise of the middles over the columns spanned: a column's middle is good to ½ px, so over 6
    columns to 1/6 px per column. A piece that cannot be followed two columns each way (a
    steep line leaving the plot) reads its slope from its height instead: a straight line of
    thickness t and s rows per column fills t·sqrt(1 + s²) rows of a column."""
    near = np.flatnonzero(np.abs(e_mid) <= SLOPE_NEAR_EF)
    if not len(near):
        return math.nan
    ink, t = lines.ink, lines.thickness
    end = start + length
    mid = start + length / 2.0
    order = np.lexsort((start, col))                      # runs sorted by column, then row
    bounds = np.searchsorted(col[order], np.arange(ink.shape[1] + 1))

    def step(i: int, side: int, heading: float) -> int | None:
        c = col[i] + side
        if not 0 <= c < ink.shape[1]:
            return None
        idx = order[bounds[c]:bounds[c + 1]]
        touching = idx[(start[idx] <= end[i]) & (end[idx] >= start[i])]
        if not len(touching):
            return None
        return int(touching[np.argmin(np.abs(mid[touching] - (mid[i] + heading)))])

    # pieces in order of an upper bound of their slope (a line fills at least t·sqrt(1 + s²) - 1
    # rows of a column, and a followed line rises by less than its pieces' heights): stop when
    # no piece left can beat the best
    bound = np.sqrt(np.clip(((length + 1) / t) ** 2 - 1, 0, None)) + 1
    best = 0.0
    for i in near[np.argsort(-bound[near], kind="stable")]:
        if bound[i] <= best:
            break
        ends = []
        for side in (-1, 1):
            j, heading, n = i, 0.0, 0
            while n < SLOPE_SPAN:
                nxt = step(j, side, heading)
                if nxt is None:
                    break
                heading = mid[nxt] - mid[j]
                j, n = nxt, n + 1
            ends.append((j, n))
        (a, na), (b, nb) = ends
        if na + nb >= 4:
            slope = abs(mid[b] - mid[a]) / (na + nb)
        else:
            slope = math.sqrt(max((length[i] / t) ** 2 - 1, 0.0))
        best = max(best, slope)
    return float(best * lines.ev_per_px * ink.shape[1])


def describe_plots(paths, *, window: float, line_width: float = LINE_WIDTH_PT, jobs: int = 1, progress=None):
    """:func:`plot_descriptors` of many plots as a DataFrame (one row per plot, ``material`` =
    the file's stem, in the given order). ``jobs`` > 1 reads them in that many processes;
    ``progress(i, n)`` after each. An unreadable plot raises a DataError naming it."""
    paths = [Path(p) for p in paths]
    tasks = [(p, window, line_width) for p in paths]
    rows = []
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = pool.map(_describe_one, tasks, chunksize=16)
            for i, row in enumerate(results, 1):
                rows.append(row)
                if progress:
                    progress(i, len(tasks))
    else:
        for i, task in enumerate(tasks, 1):
            rows.append(_describe_one(task))
            if progress:
                progress(i, len(tasks))
    return pd.DataFrame(rows, columns=["material", *DESCRIPTORS, "fermi_line_offset", "measured_thickness"])


def _describe_one(task) -> dict:
    path, window, line_width = task
    return {"material": path.stem, **plot_descriptors(path, window=window, line_width=line_width)}
