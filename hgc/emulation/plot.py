"""Figures of an emulated run: measured iteration times against the simulator's prediction.

:func:`plot_emulation` draws two panels on a :class:`matplotlib.figure.Figure` (Agg backend, no pyplot):

* per scheme, the measured mean iteration time (95 % interval, ± 1.96 standard errors) beside the
  prediction for the same draws and the ``hgc simulate`` mean for the config and seed;
* every decoded iteration's measured time against its predicted time, one colour per scheme, with the
  line measured = predicted (points above it are the platform's overhead).

:func:`plot_emulation_directory` draws it from the ``emulate.csv`` and ``emulate_summary.csv`` of a
results directory (what ``hgc plot`` calls).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

Z95 = 1.96
DPI = 130
FIGURE_NAME = "emulate.png"


def _true(column: pd.Series) -> pd.Series:
    """Booleans of a column read from CSV or built in memory."""
    return column.astype(str).str.lower().isin(["true", "1"])


def plot_emulation(history: pd.DataFrame, summary: pd.DataFrame, path: Path,
                   title: str = "Emulated vs predicted iteration time") -> Path:
    """Write the measured-vs-predicted figure of ``emulate.csv`` / ``emulate_summary.csv`` tables to ``path``."""
    fig = Figure(figsize=(13.0, 0.5 * len(summary) + 4.2))
    bars, scatter = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1.0]})
    labels = summary["label"].astype(str).tolist()
    y = np.arange(len(labels))
    height = 0.26
    measured = summary["measured_mean"].to_numpy(float)
    half = Z95 * summary["measured_sem"].to_numpy(float)
    bars.barh(y - height, measured, height, xerr=np.nan_to_num(half), color="tab:blue", capsize=3,
              label="measured (95% interval)")
    bars.barh(y, summary["predicted_mean"].to_numpy(float), height, color="tab:orange",
              label="predicted on the same draws")
    bars.barh(y + height, summary["simulated_mean"].to_numpy(float), height, color="tab:gray",
              label="hgc simulate mean")
    for yi, ratio in zip(y, summary["ratio"].to_numpy(float)):
        if np.isfinite(ratio):
            bars.text(0.0, yi - height, f" ×{ratio:.2f}", va="center", ha="left", fontsize=8, color="white")
    bars.set_yticks(y, labels)
    bars.invert_yaxis()
    bars.set_xlabel("mean iteration time (s, wall clock)")
    bars.set_title(title)
    bars.grid(axis="x", alpha=0.3)
    bars.legend(fontsize=8, loc="lower right")

    decoded = history[_true(history["decoded"])]
    high = 0.0
    for label, rows in decoded.groupby("label", sort=False):
        predicted = rows["predicted_time"].to_numpy(float)
        measured_t = rows["time"].to_numpy(float)
        keep = np.isfinite(predicted)
        scatter.scatter(predicted[keep], measured_t[keep], s=14, alpha=0.75, label=str(label))
        if keep.any():
            high = max(high, float(predicted[keep].max()), float(measured_t[keep].max()))
    high = high * 1.05 or 1.0
    scatter.plot([0, high], [0, high], color="black", linewidth=0.8, linestyle="--", label="measured = predicted")
    scatter.set_xlim(0, high)
    scatter.set_ylim(0, high)
    scatter.set_xlabel("predicted iteration time (s)")
    scatter.set_ylabel("measured iteration time (s)")
    scatter.set_title("Every decoded iteration")
    scatter.grid(alpha=0.3)
    scatter.legend(title="scheme", fontsize=8)
    if "partial" in summary and _true(summary["partial"]).any():
        fig.suptitle("partial run (interrupted)", color="tab:red")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return Path(path)


def plot_emulation_directory(directory: str | Path) -> list[Path]:
    """``emulate.png`` in ``directory`` if it holds ``emulate.csv`` and ``emulate_summary.csv``; the paths written."""
    directory = Path(directory)
    history_path, summary_path = directory / "emulate.csv", directory / "emulate_summary.csv"
    if not (history_path.is_file() and summary_path.is_file()):
        return []
    history, summary = pd.read_csv(history_path), pd.read_csv(summary_path)
    return [plot_emulation(history, summary, directory / FIGURE_NAME,
                           title=f"{directory.name}: emulated vs predicted iteration time")]
