"""Figures of ``hgc sweep``: effective time (or speed-up) against one swept key, one line per scheme."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hgc.plotting.style import Styles, coincident, integer_ticks, integer_valued, new_figure, param_label
from hgc.plotting.tables import effective_halfwidths, effective_times, labels, speedups

FIRST_SUMMARY_COLUMN = "scheme"
REQUIRED = ("scheme", "mean_time", "sem_time", "failure_rate")
NUMERIC = ("mean_time", "sem_time", "failure_rate", "effective_time", "speedup", "trials")


def swept_keys(table: pd.DataFrame) -> list[str]:
    """The swept-key columns of a ``sweep.csv`` table: every column before ``scheme``."""
    columns = list(table.columns)
    return columns[:columns.index(FIRST_SUMMARY_COLUMN)] if FIRST_SUMMARY_COLUMN in columns else []


def _determined_by(table: pd.DataFrame, x: str, other: str) -> bool:
    """Whether ``other`` takes one value per value of ``x`` (zipped keys move together)."""
    return bool((table.groupby(x, sort=False, dropna=False)[other].nunique(dropna=False) <= 1).all())


def plotted_keys(table: pd.DataFrame, keys: Sequence[str]) -> dict[str, list[str]]:
    """The swept keys that get their own figures, each with the keys zipped to it: a key with fewer than
    two values is skipped, and so is one that moves in lockstep with an earlier key (a ``zip:`` pair
    would otherwise give two copies of the same figure)."""
    out: dict[str, list[str]] = {}
    for key in keys:
        if table[key].nunique(dropna=False) < 2:
            continue
        twin = next((k for k in out if _determined_by(table, k, key) and _determined_by(table, key, k)), None)
        if twin is None:
            out[key] = []
        else:
            out[twin].append(key)
    return out


def with_derived(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """``table`` plus ``_label``, ``_effective``, ``_half`` (95 % half-width) and ``_speedup`` columns;
    speed-ups are taken against the uncoded row of the same sweep point."""
    out = table.copy()
    out["_label"] = labels(table, stable=True)
    out["_effective"] = effective_times(table)
    out["_half"] = effective_halfwidths(table)
    out["_speedup"] = np.nan
    groups = out.groupby(list(keys), sort=False, dropna=False).groups.values() if keys else [out.index]
    for index in groups:
        rows = out.loc[index]
        out.loc[index, "_speedup"] = speedups(table.loc[index], rows["_effective"].to_numpy(float))
    return out


def _has_values(data: pd.DataFrame, y: str) -> bool:
    column = "_effective" if y == "effective_time" else "_speedup"
    return bool(np.isfinite(data[column].to_numpy(float)).any())


def has_values(table: pd.DataFrame, *, y: str = "effective_time", keys: Sequence[str] | None = None) -> bool:
    """Whether :func:`sweep_figure` has anything to draw for ``y`` (it returns ``None`` otherwise)."""
    return _has_values(with_derived(table, list(keys) if keys is not None else swept_keys(table)), y)


def sweep_figure(table: pd.DataFrame, x: str, *, y: str = "effective_time", styles: Styles | None = None,
                 keys: Sequence[str] | None = None, zipped: Sequence[str] = (), title: str = "") -> Figure | None:
    """``y`` (``effective_time`` with 95 % intervals, or ``speedup`` over uncoded) against the swept key
    ``x``, one line per scheme; one panel per combination of the other swept keys that vary independently
    of ``x``, all panels on one y-scale; ``zipped`` keys (moving with ``x``) are named under the x-axis.
    Effective-time figures get a strip of failure rates under each panel when some iterations fail.
    Curves that coincide are named in the legend (everywhere) or in the panel (there only). ``None`` when
    there is nothing to draw (no speed-ups known)."""
    keys = list(keys) if keys is not None else swept_keys(table)
    data = with_derived(table, keys)
    if not _has_values(data, y):
        return None
    column = "_effective" if y == "effective_time" else "_speedup"
    styles = styles or Styles(data["_label"])
    panels_by = [k for k in keys if k != x and data[k].nunique(dropna=False) > 1 and not _determined_by(data, x, k)]
    numeric = pd.to_numeric(data[x], errors="coerce")
    categorical = bool(numeric.isna().any())
    if categorical:
        order = list(dict.fromkeys(data[x].astype(str)))
        xs_all = data[x].astype(str).map({v: i for i, v in enumerate(order)}).astype(float)
    else:
        xs_all = numeric.astype(float)
    groups: list[tuple[Any, pd.DataFrame]] = (list(data.groupby(panels_by, sort=False, dropna=False))
                                              if panels_by else [((), data)])
    failures = y == "effective_time" and bool((data["failure_rate"].fillna(0) > 0).any())
    ncols = min(3, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    fig = new_figure(4.9 * ncols + 2.6, (4.6 if failures else 3.8) * nrows + 0.7)
    grid = fig.add_gridspec(nrows * (2 if failures else 1), ncols,
                            height_ratios=([3.2, 1.0] * nrows) if failures else None)
    main_axes: list[Axes] = []
    strip_axes: list[Axes] = []
    series_points: dict[str, list[np.ndarray]] = {}
    panel_curves: list[tuple[Axes, dict[str, tuple[np.ndarray, np.ndarray]]]] = []
    handles: dict[str, Any] = {}
    for g, (values, rows) in enumerate(groups):
        r, c = divmod(g, ncols)
        ax = fig.add_subplot(grid[r * 2 if failures else r, c], sharey=main_axes[0] if main_axes else None)
        main_axes.append(ax)
        strip = None
        if failures:
            strip = fig.add_subplot(grid[r * 2 + 1, c], sharex=ax, sharey=strip_axes[0] if strip_axes else None)
            strip_axes.append(strip)
        curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        panel_curves.append((ax, curves))
        for label, series in rows.groupby("_label", sort=False):
            xs = xs_all.loc[series.index].to_numpy(float)
            order_idx = np.argsort(xs, kind="stable")
            xs = xs[order_idx]
            ys = series[column].to_numpy(float)[order_idx]
            style = styles[str(label)]
            series_points.setdefault(str(label), []).append(np.concatenate([xs, ys]))
            curves[str(label)] = (xs, ys)
            if y == "effective_time":
                err = series["_half"].to_numpy(float)[order_idx]
                bars = ax.errorbar(xs, ys, yerr=np.where(np.isfinite(err), err, np.nan), capsize=3,
                                   linewidth=1.5, markersize=6, label=str(label), **style.line())
                bars.lines[0].set_label(str(label))
                line: Any = bars
            else:
                line = ax.plot(xs, ys, linewidth=1.5, markersize=6, label=str(label), **style.line())[0]
            handles.setdefault(str(label), line)
            if strip is not None:
                strip.plot(xs, series["failure_rate"].to_numpy(float)[order_idx], linewidth=1.2, markersize=4,
                           **style.line())
        if panels_by:
            shown = values if isinstance(values, tuple) else (values,)
            ax.set_title(", ".join(f"{k} = {v}" for k, v in zip(panels_by, shown)), fontsize=9)
        bottom = strip if strip is not None else ax
        if categorical:
            bottom.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
        elif integer_valued(xs_all.to_numpy()):
            integer_ticks(bottom, xs_all.to_numpy())
        bottom.set_xlabel(param_label(x) + (f"\n(with {', '.join(zipped)} zipped to it)" if zipped else ""))
        if strip is not None:
            ax.tick_params(labelbottom=False)
            strip.set_ylabel("undecodable\n(fraction)", fontsize=8)
            strip.grid(alpha=0.3)
        ax.set_ylabel("effective time per successful\niteration (s)" if y == "effective_time"
                      else "speed-up over uncoded (×)")
        if y == "speedup":
            ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        ax.grid(alpha=0.3)
    if failures and strip_axes:
        strip_axes[0].set_ylim(bottom=0)
    same = coincident({k: (np.zeros(1), np.concatenate(v)) for k, v in series_points.items()})
    names = [k + (f" (= {same[k]})" if k in same else "") for k in handles]
    for ax, curves in panel_curves:   # curves that coincide in one panel only: said in that panel
        here = {k: v for k, v in coincident(curves).items() if k not in same}
        if here:
            ax.text(0.01, 0.99, "\n".join(f"{k} = {v} here" for k, v in here.items()), transform=ax.transAxes,
                    va="top", ha="left", fontsize=7, color="#444444")
    fig.legend(list(handles.values()), names, title="scheme", loc="outside right center", fontsize=9)
    what = "Effective time per successful iteration" if y == "effective_time" else "Speed-up over uncoded"
    fig.suptitle(title or f"{what} vs {x}", fontsize=11)
    return fig
