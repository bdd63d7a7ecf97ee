"""Figure of ``hgc train``: training loss (and test accuracy) against simulated wall-clock time."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hgc.errors import ConfigError
from hgc.plotting.style import Styles, coincident, new_figure
from hgc.plotting.tables import labels, require_columns

REQUIRED = ("sim_time", "loss")
NUMERIC = ("iteration", "sim_time", "iteration_time", "loss", "train_accuracy", "test_accuracy", "test_loss",
           "grad_rel_error", "workers_used", "edges_used")
SUMMARY_REQUIRED = ("label",)
SUMMARY_NUMERIC = ("iterations", "sim_time_total", "time_to_target", "speedup_to_target", "target_loss",
                   "undecodable_iterations", "mean_iteration_time", "effective_time", "final_loss")
SETTLE = 0.1   # the accuracy axis starts at the lowest accuracy after the first 10 % of iterations


def target_from_metadata(path: Path) -> float | None:
    """``target_loss`` from a run's ``metadata.json`` (``None`` if there is no such file or value)."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("target_loss")
    except (ValueError, UnicodeDecodeError, AttributeError) as err:
        raise ConfigError(f"not a valid JSON object: {err}", source=path) from None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        raise ConfigError(f"expected a number, got {value!r}", key="target_loss", source=path) from None


def _undecodable(rows: pd.DataFrame) -> np.ndarray:
    if "decoded" not in rows.columns:
        return np.zeros(len(rows), dtype=bool)
    return (rows["decoded"].astype(str).str.strip().str.lower() == "false").to_numpy()


def _per_applied_iteration(summary: pd.DataFrame | None, label: str, rows: pd.DataFrame) -> float:
    """Simulated seconds per applied (decoded) iteration: the summary's ``effective_time`` when it has one,
    else total time / decoded iterations."""
    if summary is not None and "effective_time" in summary.columns:
        match = summary[summary["label"].astype(str) == label]
        if len(match):
            return float(match["effective_time"].iloc[0])
    applied = int(((rows["iteration"] > 0) if "iteration" in rows.columns else np.ones(len(rows), bool)).sum()
                  - _undecodable(rows).sum())
    total = float(rows["sim_time"].max())
    return total / applied if applied > 0 else math.nan


def _time_to_target(summary: pd.DataFrame | None, label: str, time: np.ndarray, loss: np.ndarray,
                    target: float) -> float:
    """Simulated seconds until the loss first reaches ``target``: the summary's ``time_to_target`` when it
    has the scheme (computed from full-precision losses), else the first history row at or below it."""
    if summary is not None and "time_to_target" in summary.columns:
        match = summary[summary["label"].astype(str) == label]
        if len(match):
            return float(match["time_to_target"].iloc[0])
    hit = np.flatnonzero(loss <= target)
    return float(time[hit[0]]) if hit.size else math.nan


def training_figure(history: pd.DataFrame, summary: pd.DataFrame | None = None, *, target: float | None = None,
                    title: str = "", styles: Styles | None = None) -> Figure:
    """Training loss per scheme against simulated time (seconds; log scale when positive), with the target
    loss as a dashed line and each scheme's first time at or below it marked on that line; undecodable
    iterations (not applied) are crossed. When the history has test accuracies (classification), a second
    panel shows them on an axis that starts where the runs have settled (the first iterations, below it,
    say nothing about the schemes)."""
    if "label" not in history.columns:
        require_columns(history, ["scheme"], None, "train_loss.png")
    history = history.assign(_label=labels(history))
    order = list(dict.fromkeys(history["_label"]))
    styles = styles or Styles(order)
    if target is None and summary is not None and "target_loss" in summary.columns:
        finite = summary["target_loss"].to_numpy(float)
        finite = finite[np.isfinite(finite)]
        target = float(finite[0]) if finite.size else None
    accuracy = "test_accuracy" in history.columns and bool(np.isfinite(history["test_accuracy"].to_numpy(float)).any())

    fig = new_figure(13.8 if accuracy else 8.8, 5.2)
    axes = fig.subplots(1, 2 if accuracy else 1, squeeze=False)[0]
    loss_ax = axes[0]
    positive = bool((history["loss"].dropna() > 0).all())
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    handles, names = [], []
    settled: list[float] = []
    any_failed = False
    for j, label in enumerate(order):
        rows = history[history["_label"] == label]
        if "iteration" in rows.columns:
            rows = rows.sort_values("iteration", kind="stable")
        time, loss = rows["sim_time"].to_numpy(float), rows["loss"].to_numpy(float)
        style = styles[label]
        every = max(1, len(time) // 10)
        line = loss_ax.plot(time, loss, linewidth=1.5, markersize=5,
                            **style.line(markevery=(j * every // max(1, len(order)) % every, every)))[0]
        curves[label] = (time, loss)
        failed = _undecodable(rows)
        if failed.any():
            any_failed = True
            loss_ax.scatter(time[failed], loss[failed], marker="x", s=22, color=style.colour, linewidths=1.2, zorder=3)
        text = label
        seconds = _per_applied_iteration(summary, label, rows)
        if np.isfinite(seconds):
            text += f": {seconds:.3g} s/iteration"
        if target is not None:
            reached = _time_to_target(summary, label, time, loss, target)
            if np.isfinite(reached):
                loss_ax.plot([reached], [target], marker="|", markersize=16, markeredgewidth=2.4, color=style.colour,
                             zorder=4)
                text += f", target at {reached:.3g} s"
            else:
                text += ", target not reached"
        if failed.any():
            text += f", {int(failed.sum())} undecodable"
        handles.append(line)
        names.append(text)
        if accuracy:
            acc = rows["test_accuracy"].to_numpy(float)
            axes[1].plot(time, acc, linewidth=1.5, markersize=5,
                         **style.line(markevery=(j * every // max(1, len(order)) % every, every)))
            start = int(math.ceil(SETTLE * (len(acc) - 1)))
            tail = acc[start:][np.isfinite(acc[start:])]
            if tail.size:
                settled.append(float(tail.min()))
    same = coincident(curves)
    names = [n + (f" (= {same[label]})" if label in same else "") for n, label in zip(names, order)]
    if target is not None:
        loss_ax.axhline(target, color="#555555", linestyle="--", linewidth=1.0)
        handles.append(Line2D([], [], color="#555555", linestyle="--"))
        names.append(f"target loss {target:.4g} (| = first reached)")
    if any_failed:
        handles.append(Line2D([], [], marker="x", linestyle="none", color="#555555"))
        names.append("undecodable iteration (not applied)")
    if positive:
        loss_ax.set_yscale("log")
    loss_ax.set_xlabel("simulated training time (s)")
    loss_ax.set_ylabel("training loss" + (" (log scale)" if positive else ""))
    loss_ax.set_title(title or "Training loss vs simulated time", fontsize=10)
    loss_ax.legend(handles, names, fontsize=8, loc="upper right", title="scheme")
    if accuracy:
        acc_ax = axes[1]
        top = float(np.nanmax(history["test_accuracy"].to_numpy(float)))
        low = min(settled) if settled else float(np.nanmin(history["test_accuracy"].to_numpy(float)))
        pad = max(0.1 * (top - low), 0.002)
        acc_ax.set_ylim(max(0.0, low - pad), min(1.0, top + pad))
        acc_ax.set_xlabel("simulated training time (s)")
        acc_ax.set_ylabel("test accuracy (fraction correct)")
        acc_ax.set_title(f"Test accuracy vs simulated time (axis from the lowest accuracy after the first "
                         f"{SETTLE:.0%} of iterations)", fontsize=9)
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
    return fig
