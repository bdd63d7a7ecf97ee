"""Figure of ``hgc verify``: worst relative decoding error against worst condition number κ, per code."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hgc.plotting.style import Styles, new_figure
from hgc.plotting.tables import tolerance_label

REQUIRED = ("scheme", "max_rel_error", "worst_cond")
NUMERIC = ("s", "s_e", "s_w", "K", "load", "patterns", "max_rel_error", "worst_cond", "undecodable", "failures")
UNIT_ROUNDOFF = 2.0 ** -53       # float64: relative rounding error of one operation
ACCEPT_RTOL = 1e-9               # hgc.codes.DEFAULT_RTOL: a decoded gradient further than this fails


def _short(kind: str, s: object, s_e: object, s_w: object) -> str:
    """The tolerances only: ``s=3``, ``1,1`` (s_e, s_w), or the scheme for uncoded."""
    label = tolerance_label(kind, s, s_e, s_w)
    if "(" not in label:
        return label
    inner = label[label.index("(") + 1:-1]
    return inner if kind == "flat_gc" else ",".join(part.split("=")[1] for part in inner.split(","))


def _label_points(ax: Axes, x: np.ndarray, y: np.ndarray, checked: np.ndarray, names: list[str]) -> int:
    """Label each distinct point with its codes' tolerances, skipping labels that would overlap one
    already placed (greedy, in display pixels); returns how many points went unlabelled."""
    points: dict[tuple[float, float], list[str]] = {}
    for i in np.flatnonzero(checked):
        points.setdefault((float(x[i]), float(y[i])), []).append(names[i])
    placed: list[tuple[float, float, float]] = []
    omitted = 0
    for (px, py), texts in points.items():
        text = "; ".join(dict.fromkeys(texts))
        dx, dy = ax.transData.transform((px, py))
        width = 5.0 * len(text) + 4
        if any(abs(dy - qy) < 9 and dx < qx + qw and qx < dx + width for qx, qy, qw in placed):
            omitted += 1
            continue
        placed.append((dx, dy, width))
        ax.annotate(text, (px, py), xytext=(4, 3), textcoords="offset points", fontsize=6.5, color="#333333")
    return omitted


def verify_figure(table: pd.DataFrame, *, title: str = "", styles: Styles | None = None) -> Figure:
    """Scatter of ``max_rel_error`` (y, log) against ``worst_cond`` κ (x, log), one point per checked code,
    one marker per scheme; each point is labelled with its tolerances (flat: ``s``; HGC: ``s_e,s_w``).
    Guides: ``κ · u`` (float64 unit roundoff ``u``), the size of error a backward-stable decoder may
    reach, and the acceptance tolerance above which a pattern counts as a failure. Exact decodings
    (error 0) sit on a floor line; codes with failures are crossed out in red; skipped codes are counted
    in the caption."""
    kinds = table["scheme"].astype(str).tolist()
    styles = styles or Styles(kinds)
    error = table["max_rel_error"].to_numpy(float)
    cond = table["worst_cond"].to_numpy(float)
    failures = table["failures"].to_numpy(float) if "failures" in table.columns else np.zeros(len(table))
    tol = [[table[c].iloc[i] if c in table.columns else None for c in ("s", "s_e", "s_w")] for i in range(len(table))]
    checked = np.isfinite(error) & np.isfinite(cond)
    positive = error[checked & (error > 0)]
    floor = float(positive.min()) / 8 if positive.size else UNIT_ROUNDOFF / 8
    shown_error = np.where(error > 0, error, floor)

    fig = new_figure(9.0, 5.8)
    ax = fig.add_subplot()
    ax.set_xscale("log")
    ax.set_yscale("log")
    for kind in dict.fromkeys(kinds):
        rows = np.flatnonzero(checked & (np.array(kinds) == kind))
        if rows.size:
            style = styles[kind]
            ax.scatter(cond[rows], shown_error[rows], marker=style.marker, s=46, facecolor="none",
                       edgecolor=style.colour, linewidths=1.4, label=kind, zorder=3)
    bad = np.flatnonzero(checked & (failures > 0))
    if bad.size:
        ax.scatter(cond[bad], shown_error[bad], marker="x", s=90, color="#D55E00", linewidths=2.2, zorder=4,
                   label="fails on some pattern")
    lo = max(1.0, float(np.nanmin(cond[checked]))) if checked.any() else 1.0
    hi = float(np.nanmax(cond[checked])) if checked.any() else 10.0
    xs = np.geomspace(lo / 1.5, max(hi * 3, lo * 10), 50)
    ax.plot(xs, xs * UNIT_ROUNDOFF, color="#777777", linestyle=":", linewidth=1.2, label="κ · u  (u = 2⁻⁵³)")
    ax.axhline(ACCEPT_RTOL, color="#D55E00", linestyle="--", linewidth=1.0,
               label=f"acceptance tolerance {ACCEPT_RTOL:g}")
    if np.any(checked & (error == 0)):
        ax.axhline(floor, color="#999999", linestyle="-", linewidth=0.6)
        ax.text(xs[-1], floor, "error exactly 0 ", ha="right", va="bottom", fontsize=7, color="#555555")
    top = max(float(np.nanmax(shown_error[checked])) if checked.any() else floor, ACCEPT_RTOL)
    ax.set_ylim(floor / 3, top * 20)
    ax.set_xlim(xs[0], xs[-1])
    omitted = _label_points(ax, cond, shown_error, checked, [_short(kinds[i], *tol[i]) for i in range(len(kinds))])
    ax.set_xlabel("worst condition number κ over the straggler patterns (error amplification of decoding)")
    ax.set_ylabel("worst relative gradient error ‖ĝ − g‖ / ‖g‖")
    skipped = int((~checked).sum())
    caption = f"{int(checked.sum())} codes checked" + (f"; {skipped} skipped (see the note column)" if skipped else "")
    caption += "; labels: flat s / HGC s_e,s_w" + (f" ({omitted} omitted where they would overlap)" if omitted else "")
    ax.set_title((title or "Decoding error vs condition number κ") + f"\n{caption}",
                 fontsize=10)
    ax.grid(alpha=0.3, which="major")
    ax.legend(fontsize=8, loc="upper left")
    return fig
