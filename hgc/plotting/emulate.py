"""Figure of ``hgc emulate``: measured iteration times against the simulator's prediction on the same draws.

Two panels:

* per scheme, the measured mean iteration time (95 % interval, ± 1.96 standard errors) beside the
  prediction for the same iterations and the ``hgc simulate`` mean for the config and seed, with the ratio
  measured / predicted;
* every decoded iteration's measured time against its predicted time, one marker per scheme, with the line
  measured = predicted (the distance above it is what the platform adds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hgc.plotting.style import Styles, new_figure
from hgc.plotting.tables import Z95, labels

REQUIRED = ("label", "time", "predicted_time", "decoded")
NUMERIC = ("iteration", "time", "predicted_time", "rel_error", "loss", "test_accuracy", "dispatch", "collect",
           "deliver", "compute", "overruns")
SUMMARY_REQUIRED = ("label", "measured_mean", "predicted_mean")
SUMMARY_NUMERIC = ("measured_mean", "measured_sem", "predicted_mean", "simulated_mean", "ratio",
                   "overhead_per_iteration", "iterations", "decoded", "lost")


def _true(column: pd.Series) -> np.ndarray:
    """Booleans of a column read from CSV (``True``/``true``/``1``) or built in memory."""
    return column.astype(str).str.strip().str.lower().isin(["true", "1"]).to_numpy()


def summary_from_history(history: pd.DataFrame) -> pd.DataFrame:
    """Per scheme, the measured and predicted means (and the standard error) over the decoded iterations of
    an ``emulate.csv`` table: the bars when ``emulate_summary.csv`` is missing."""
    decoded = history[_true(history["decoded"])]
    rows = []
    for label, group in decoded.groupby("label", sort=False):
        measured = group["time"].to_numpy(float)
        predicted = group["predicted_time"].to_numpy(float)
        paired = np.isfinite(predicted)
        rows.append({"label": label, "measured_mean": float(measured.mean()),
                     "measured_sem": float(measured.std(ddof=1) / np.sqrt(measured.size)) if measured.size > 1
                     else np.nan,
                     "predicted_mean": float(predicted[paired].mean()) if paired.any() else np.nan,
                     "ratio": float(measured[paired].mean() / predicted[paired].mean())
                     if paired.any() and predicted[paired].mean() > 0 else np.nan})
    return pd.DataFrame(rows, columns=["label", "measured_mean", "measured_sem", "predicted_mean", "ratio"])


def emulation_figure(history: pd.DataFrame, summary: pd.DataFrame, *, title: str = "",
                     styles: Styles | None = None) -> Figure:
    """The two panels of the module docstring from ``emulate.csv`` (``history``) and
    ``emulate_summary.csv`` (``summary``) tables; wall-clock seconds on both axes."""
    names = summary["label"].astype(str).tolist()
    styles = styles or Styles(labels(summary))
    fig = new_figure(13.0, 0.5 * len(names) + 4.2)
    bars, scatter = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1.0]})
    y = np.arange(len(names))
    height = 0.26
    measured = summary["measured_mean"].to_numpy(float)
    sem = summary["measured_sem"].to_numpy(float) if "measured_sem" in summary.columns else np.full(len(names), np.nan)
    bars.barh(y - height, measured, height, xerr=np.nan_to_num(Z95 * sem), color="#0072B2", capsize=3,
              label="measured (95 % interval)")
    bars.barh(y, summary["predicted_mean"].to_numpy(float), height, color="#E69F00",
              label="predicted on the same draws")
    if "simulated_mean" in summary.columns:
        bars.barh(y + height, summary["simulated_mean"].to_numpy(float), height, color="#BBBBBB",
                  label="hgc simulate mean")
    if "ratio" in summary.columns:
        for yi, ratio in zip(y, summary["ratio"].to_numpy(float)):
            if np.isfinite(ratio):
                bars.text(0.0, yi - height, f" ×{ratio:.2f}", va="center", ha="left", fontsize=8, color="white")
    bars.set_yticks(y, names)
    bars.invert_yaxis()
    bars.set_xlabel("mean iteration time (s, wall clock)")
    bars.set_title("Mean over the decoded iterations", fontsize=10)
    bars.grid(axis="x", alpha=0.3)
    bars.legend(fontsize=8, loc="lower right")

    decoded = history[_true(history["decoded"])]
    high = 0.0
    for label, rows in decoded.groupby("label", sort=False):
        predicted = rows["predicted_time"].to_numpy(float)
        measured_t = rows["time"].to_numpy(float)
        keep = np.isfinite(predicted) & np.isfinite(measured_t)
        style = styles[str(label)]
        scatter.scatter(predicted[keep], measured_t[keep], s=18, marker=style.marker, facecolor="none",
                        edgecolor=style.colour, linewidths=1.1, label=str(label))
        if keep.any():
            high = max(high, float(predicted[keep].max()), float(measured_t[keep].max()))
    high = high * 1.05 or 1.0
    scatter.plot([0, high], [0, high], color="black", linewidth=0.8, linestyle="--", label="measured = predicted")
    scatter.set_xlim(0, high)
    scatter.set_ylim(0, high)
    scatter.set_xlabel("predicted iteration time (s)")
    scatter.set_ylabel("measured iteration time (s)")
    scatter.set_title("Every decoded iteration", fontsize=10)
    scatter.grid(alpha=0.3)
    scatter.legend(title="scheme", fontsize=8)
    partial = "partial" in summary.columns and bool(_true(summary["partial"]).any())
    heading = title or "Emulated vs predicted iteration time"
    fig.suptitle(heading + (" — partial run (interrupted)" if partial else ""),
                 color="#D55E00" if partial else "black")
    return fig
