"""Figures of ``hgc simulate``: effective time per scheme (``summary.csv``) and the CDF of the iteration
time (``quantiles.csv``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hgc.plotting.style import Styles, coincident, new_figure, percent
from hgc.plotting.tables import effective_halfwidths, effective_times, labels, speedups

SUMMARY_REQUIRED = ("scheme", "mean_time", "sem_time", "failure_rate")
SUMMARY_NUMERIC = ("mean_time", "sem_time", "failure_rate", "effective_time", "speedup", "trials",
                   "s", "s_e", "s_w", "load", "p50_time", "p95_time", "p99_time", "master_vectors")
QUANTILES_REQUIRED = ("quantile", "time")
QUANTILES_NUMERIC = ("quantile", "time")
CDF_TOP = 0.999  # the CDF's x-axis ends at the largest 99.9 % quantile


def effective_time_figure(summary: pd.DataFrame, *, title: str = "", styles: Styles | None = None) -> Figure:
    """Horizontal bars of the effective time (seconds per successful iteration) of every scheme with 95 %
    intervals, annotated with the speed-up over uncoded and the failure rate; a tick marks the mean over
    decoded iterations where some iterations fail, the fastest scheme is in bold, schemes that never
    decode have no bar."""
    names = labels(summary)
    styles = styles or Styles(names)
    effective = effective_times(summary)
    half = effective_halfwidths(summary)
    failure = summary["failure_rate"].to_numpy(float)
    means = summary["mean_time"].to_numpy(float)
    speed = speedups(summary, effective)
    best = int(np.nanargmin(effective)) if np.isfinite(effective).any() else -1

    fig = new_figure(8.4, 0.48 * len(names) + 1.9)
    ax = fig.add_subplot()
    y = np.arange(len(names))
    ax.barh(y, np.nan_to_num(effective), xerr=np.where(np.isfinite(half), half, 0.0), height=0.7,
            color=[styles[n].colour for n in names], alpha=0.8, capsize=3, ecolor="#333333",
            error_kw={"linewidth": 1.0}, label="_bars")
    failing = np.flatnonzero((failure > 0) & np.isfinite(means))
    if failing.size:
        ax.scatter(means[failing], y[failing], marker="D", s=34, facecolor="white", edgecolor="black",
                   linewidths=1.2, zorder=3, label="mean over decoded iterations only (mean_time)")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    if best >= 0:
        ax.get_yticklabels()[best].set_fontweight("bold")
    finite = effective[np.isfinite(effective)]
    reach = float(np.nanmax(np.where(np.isfinite(half), effective + half, effective))) if finite.size else 1.0
    for yi, (value, h, sp, f) in enumerate(zip(effective, half, speed, failure)):
        if np.isfinite(value):
            parts = [f"{value:.3g} s"]
            if summary["scheme"].iloc[yi] == "uncoded":
                parts.append("baseline")
            elif np.isfinite(sp):
                parts.append(f"{sp:.2f}× uncoded")
            if f > 0:
                parts.append(f"{percent(f)} undecodable")
            if yi == best:
                parts.append("fastest")
            x = value + (h if np.isfinite(h) else 0.0) + 0.015 * reach
            weight = "bold" if yi == best else "normal"
        else:
            parts = [f"never decoded ({percent(f)} undecodable)" if np.isfinite(f) else "no data"]
            x, weight = 0.0, "normal"
        ax.text(x, yi, "  ·  ".join(parts), va="center", fontsize=8.5, fontweight=weight)
    ax.set_xlim(0, reach * 1.95)
    ax.set_xlabel("effective time per successful iteration (s) = mean_time / (1 − failure_rate);  "
                  "whiskers: 95 % CI", fontsize=9)
    ax.set_title(title or "Effective iteration time per scheme")
    ax.grid(axis="x", alpha=0.3)
    if failing.size:
        fig.legend(loc="outside lower center", fontsize=8, frameon=False)
    return fig


def _failure_by_label(summary: pd.DataFrame | None) -> dict[str, float]:
    if summary is None or "failure_rate" not in summary.columns:
        return {}
    return {name: float(f) for name, f in zip(labels(summary), summary["failure_rate"].to_numpy(float))
            if np.isfinite(f)}


def time_cdf_figure(quantiles: pd.DataFrame, summary: pd.DataFrame | None = None, *, title: str = "",
                    styles: Styles | None = None) -> Figure:
    """CDF of the iteration time per scheme from ``quantiles.csv``, the x-axis ending at the largest 99.9 %
    quantile. With failure rates from ``summary.csv``, each curve is ``P(decoded and T <= t)``: it tops
    out at ``1 - failure_rate``, so an often-undecodable scheme does not look fast."""
    quantiles = quantiles.assign(_label=labels(quantiles))
    order = list(dict.fromkeys(quantiles["_label"]))
    styles = styles or Styles(order)
    failure = _failure_by_label(summary)
    with_failures = any(failure.get(name, 0.0) > 0 for name in order)
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    tops: list[float] = []
    for name in order:
        rows = quantiles[quantiles["_label"] == name].dropna(subset=["quantile", "time"]).sort_values("quantile")
        level = rows["quantile"].to_numpy(float)
        time = rows["time"].to_numpy(float)
        if not level.size:
            continue
        curves[name] = (time, level * (1.0 - failure.get(name, 0.0)))
        at_top = np.flatnonzero(np.isclose(level, CDF_TOP, rtol=0, atol=1e-9))
        tops.append(float(time[at_top[0]]) if at_top.size else float(time[-1]))
    same = coincident(curves)
    fig = new_figure(11.5 if len(curves) > 6 else 8.6, 5.0)
    ax = fig.add_subplot()
    for j, (name, (time, prob)) in enumerate(curves.items()):
        label = name
        if failure.get(name, 0.0) > 0:
            label += f" — {percent(failure[name])} undecodable"
        if name in same:
            label += f" (= {same[name]})"
        every = max(1, len(time) // 8)
        ax.plot(time, prob, label=label, linewidth=1.6,
                **styles[name].line(markevery=(j * every // max(1, len(curves)) % every, every), markersize=6))
    left = min(float(t.min()) for t, _ in curves.values()) if curves else 0.0
    right = max(tops) if tops else 1.0
    ax.set_xlim(left - 0.02 * (right - left), right)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("iteration time t (s)")
    ax.set_ylabel("P(decoded and T ≤ t)" if with_failures else "P(T ≤ t)")
    ax.set_title(title or "CDF of the iteration time", fontsize=11)
    ax.text(0.99, 0.01, "x-axis ends at the largest 99.9 % quantile", transform=ax.transAxes, ha="right",
            va="bottom", fontsize=7.5, color="#555555")
    ax.grid(alpha=0.3)
    if len(curves) > 6:
        fig.legend(loc="outside right upper", fontsize=8.5, title="scheme")
    else:
        ax.legend(loc="lower right", fontsize=8.5, title="scheme", bbox_to_anchor=(1.0, 0.05))
    return fig
