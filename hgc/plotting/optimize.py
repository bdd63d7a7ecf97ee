"""Figures of ``hgc optimize``: the strategies' effective times and the nodes each one uses."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hgc.plotting.style import Styles, new_figure, percent
from hgc.plotting.tables import effective_halfwidths, effective_times, speedups, tolerance_label

FIRST_COLUMN = "strategy"
EMPTY = "#EEEEEE"   # a worker that does not take part
REQUIRED = ("strategy", "scheme", "mc_mean_time", "mc_sem_time", "mc_failure_rate")
NUMERIC = ("s", "s_e", "s_w", "edges", "workers", "load", "expected_time", "decode_probability",
           "effective_time", "analytic_error", "mc_mean_time", "mc_sem_time", "mc_failure_rate",
           "mc_effective_time", "speedup", "analytic_speedup", "optimality_gap", "trials")


def leading_keys(table: pd.DataFrame) -> list[str]:
    """Swept-key columns in front of ``strategy`` (an ``optimize.csv`` written by ``hgc sweep``)."""
    columns = list(table.columns)
    return columns[:columns.index(FIRST_COLUMN)] if FIRST_COLUMN in columns else []


def strategy_labels(table: pd.DataFrame) -> list[str]:
    """``uncoded``, ``flat_gc(s=0)``, ``hgc(s_e=5,s_w=0)``, ``jncss_greedy: hgc(s_e=0,s_w=1)``: the
    scheme in the label style of the other tables, prefixed by the strategy when that says more."""
    out = []
    for i, (strategy, scheme) in enumerate(zip(table["strategy"].astype(str), table["scheme"].astype(str))):
        tolerances = [table[c].iloc[i] if c in table.columns else None for c in ("s", "s_e", "s_w")]
        label = tolerance_label(scheme, *tolerances)
        out.append(label if strategy == scheme else f"{strategy}: {label}")
    return out


def monte_carlo(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(effective time, 95 % half-width)`` of every strategy from its Monte Carlo columns (seconds)."""
    effective = effective_times(table, mean="mc_mean_time", failure="mc_failure_rate", column="mc_effective_time")
    half = effective_halfwidths(table, mean="mc_mean_time", sem="mc_sem_time", failure="mc_failure_rate")
    return effective, half


def as_sweep_table(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """An ``optimize.csv`` of a sweep in the shape of ``sweep.csv`` (one series per strategy, whatever
    tolerances it chose at each point; Monte Carlo times), so it can be drawn like one."""
    effective, _ = monte_carlo(table)
    out = table[keys].copy()
    out["scheme"] = table["strategy"].astype(str)
    out["label"] = table["strategy"].astype(str)   # the chosen tolerances change from point to point
    out["mean_time"] = table["mc_mean_time"]
    out["sem_time"] = table["mc_sem_time"]
    out["failure_rate"] = table["mc_failure_rate"]
    out["effective_time"] = effective
    if "trials" in table.columns:
        out["trials"] = table["trials"]
    return out


def _nodes(edge_ids: object, worker_ids: object) -> list[tuple[int, int]]:
    """``[(edge, worker position)]`` from the ``edge_ids`` (``0;1;2``) and ``worker_ids``
    (``0,1,2;0,1;...``, one group per listed edge) cells; empty when blank."""
    if not isinstance(edge_ids, str) or not isinstance(worker_ids, str) or not edge_ids.strip():
        return []
    edges = [int(e) for e in edge_ids.split(";")]
    groups = worker_ids.split(";")
    if len(groups) != len(edges):
        raise ValueError(f"{len(edges)} edges but {len(groups)} worker groups")
    return [(e, int(w)) for e, group in zip(edges, groups) for w in group.split(",") if group.strip()]


def node_matrix(table: pd.DataFrame) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``(participates, nodes)``: a boolean matrix (strategies × workers) over every worker that appears
    in some row (``uncoded`` uses all of them), workers ordered by edge then position."""
    from hgc.errors import ConfigError

    per_row = []
    for i in range(len(table)):
        try:
            per_row.append(_nodes(table["edge_ids"].iloc[i], table["worker_ids"].iloc[i]))
        except ValueError as err:
            raise ConfigError(f"line {i + 2}: cannot read the node lists: {err}", key="worker_ids") from None
    nodes = sorted({node for row in per_row for node in row})
    index = {node: j for j, node in enumerate(nodes)}
    matrix = np.zeros((len(table), len(nodes)), dtype=bool)
    for i, row in enumerate(per_row):
        matrix[i, [index[node] for node in row]] = True
    return matrix, nodes


def optimize_figure(table: pd.DataFrame, *, title: str = "", styles: Styles | None = None) -> Figure:
    """Left: every strategy's effective time per successful iteration from the Monte Carlo check (bars,
    95 % intervals) with the analytic value (diamond), the speed-up over uncoded, JNCSS's choice in bold.
    Right: the participating workers of each strategy, grouped by edge."""
    names = strategy_labels(table)
    styles = styles or Styles(names)
    effective, half = monte_carlo(table)
    analytic = (table["effective_time"].to_numpy(float) if "effective_time" in table.columns
                else np.full(len(table), np.nan))
    failure = table["mc_failure_rate"].to_numpy(float)
    speed = speedups(table.assign(scheme=table["strategy"]), effective)
    strategies = table["strategy"].astype(str).tolist()
    jncss = [i for i, s in enumerate(strategies) if s.startswith("jncss")]
    chosen = jncss[-1] if jncss else -1          # exhaustive (listed last) when present, else greedy
    has_nodes = "edge_ids" in table.columns and "worker_ids" in table.columns

    fig = new_figure(13.5 if has_nodes else 8.6, 0.55 * len(names) + 2.3)
    grid = fig.add_gridspec(1, 2 if has_nodes else 1, width_ratios=[1.35, 1.0] if has_nodes else None)
    ax = fig.add_subplot(grid[0, 0])
    y = np.arange(len(names))
    colours = [styles[n].colour for n in names]
    ax.barh(y, np.nan_to_num(effective), xerr=np.where(np.isfinite(half), half, 0.0), height=0.68, color=colours,
            alpha=0.8, capsize=3, ecolor="#333333")
    shown = np.isfinite(analytic)
    ax.scatter(analytic[shown], y[shown], marker="D", s=36, facecolor="white", edgecolor="black", zorder=3)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    if chosen >= 0:
        ax.get_yticklabels()[chosen].set_fontweight("bold")
    reach = float(np.nanmax(np.concatenate([effective + np.nan_to_num(half), analytic]))) if len(names) else 1.0
    for yi, (value, h, sp, f) in enumerate(zip(effective, half, speed, failure)):
        if not np.isfinite(value):
            ax.text(0.0, yi, " never decoded", va="center", fontsize=8.5)
            continue
        parts = [f"{value:.3g} s"]
        if strategies[yi] == "uncoded":
            parts.append("baseline")
        elif np.isfinite(sp):
            parts.append(f"{sp:.2f}×")
        if f > 0:
            parts.append(f"{percent(f)} undecodable")
        if yi == chosen:
            parts.append("JNCSS choice")
        ax.text(max(value + np.nan_to_num(h), analytic[yi] if shown[yi] else 0.0) + 0.015 * reach, yi,
                "  ·  ".join(parts), va="center", fontsize=8.5, fontweight="bold" if yi == chosen else "normal")
    ax.set_xlim(0, reach * 1.55)
    ax.set_xlabel("effective time per successful iteration (s);  ×: speed-up over uncoded", fontsize=9)
    ax.set_title("Monte Carlo (bars, 95 % CI) and analytic (◇) effective time", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend([Line2D([], [], marker="D", linestyle="none", markerfacecolor="white", markeredgecolor="black")],
              ["analytic evaluator"], loc="lower right", fontsize=8)

    if has_nodes:
        matrix, nodes = node_matrix(table)
        nodes_ax = fig.add_subplot(grid[0, 1])
        image = np.where(matrix[:, :, None], np.array([to_rgb(c) for c in colours])[:, None, :],
                         np.array(to_rgb(EMPTY)))
        nodes_ax.imshow(image, aspect="auto", interpolation="nearest",
                        extent=(-0.5, len(nodes) - 0.5, len(names) - 0.5, -0.5))
        edges = [e for e, _ in nodes]
        bounds = [j for j in range(1, len(nodes)) if edges[j] != edges[j - 1]]
        for j in range(1, len(nodes)):
            if len(nodes) <= 200 or j in bounds:
                nodes_ax.axvline(j - 0.5, color="white", linewidth=3.0 if j in bounds else 0.6)
        starts = [0] + bounds
        stops = bounds + [len(nodes)]
        nodes_ax.set_xticks([(a + b - 1) / 2 for a, b in zip(starts, stops)],
                            [f"{edges[a]}" for a in starts], fontsize=8)
        nodes_ax.set_xlabel("edge (its workers side by side); coloured = takes part", fontsize=9)
        nodes_ax.tick_params(axis="y", left=False, labelleft=False, right=True, labelright=True)
        right = []
        for i in range(len(names)):
            count = int(matrix[i].sum())
            n_edges = len({edges[j] for j in np.flatnonzero(matrix[i])})
            load = table["load"].iloc[i] if "load" in table.columns else np.nan
            right.append(f"{n_edges} edges, {count} workers" + (f", load {load:.3g}" if np.isfinite(load) else ""))
        nodes_ax.set_yticks(y, right, fontsize=8.5)
        nodes_ax.set_ylim(ax.get_ylim())
        nodes_ax.set_title("Participating nodes", fontsize=10)
    fig.suptitle(title or "Strategies compared by hgc optimize", fontsize=11)
    return fig
