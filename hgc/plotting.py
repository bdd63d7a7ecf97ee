"""PNG figures for a results directory (``hgc plot DIR``).

:func:`plot_directory` draws whatever the directory holds:

* ``summary.csv`` (``hgc simulate``) → ``mean_time.png``: mean iteration time per scheme with 95 %
  confidence intervals (± 1.96 standard errors) and the speed-up over uncoded;
* ``quantiles.csv`` (``hgc simulate``) → ``time_cdf.png``: empirical CDF of the iteration time per scheme;
* ``sweep.csv`` (``hgc sweep``) → ``sweep_mean_time__<key>.png`` for every swept key with two or more
  values: mean iteration time (95 % intervals) against that key, one line per scheme, one panel per
  combination of the other swept keys; and ``sweep_speedup__<key>.png``, the speed-up over uncoded;
* ``train.csv`` (``hgc train``) → ``train_loss.png``: training loss against simulated wall-clock time.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg backend (no display, no pyplot
global state), titled, with labelled axes and units.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from hgc.errors import ConfigError  # noqa: E402

Z95 = 1.96  # two-sided 95 % normal quantile: error bars are ± Z95 · sem
DPI = 130
FIRST_SUMMARY_COLUMN = "scheme"
_SECONDS_SUFFIXES = ("mean", "value", "shift", "low", "high", "scale", "per_vector")


def _series_name(table: pd.DataFrame) -> str:
    return "label" if "label" in table.columns else "scheme"


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def param_label(key: str) -> str:
    """Axis label for a swept dotted key, with units where the key implies them."""
    last = key.rsplit(".", 1)[-1]
    if key == "topology.edges":
        return "number of edge nodes n"
    if key == "topology.workers":
        return "workers per edge m"
    if key == "trials":
        return "Monte Carlo trials"
    if last == "p" or key.startswith("timing.failures"):
        return f"{key} (probability)"
    if last == "rate":
        return f"{key} (1/s)"
    if last in _SECONDS_SUFFIXES:
        return f"{key} (s)"
    return key


def plot_mean_times(summary: pd.DataFrame, path: Path, title: str = "Mean iteration time per scheme") -> Path:
    """Horizontal bars of ``mean_time`` per scheme with ± 1.96·``sem_time`` whiskers (95 % intervals)."""
    names = summary[_series_name(summary)].astype(str).tolist()
    means = summary["mean_time"].to_numpy(float)
    half = Z95 * summary["sem_time"].to_numpy(float)
    fig = Figure(figsize=(7.5, 0.55 * len(names) + 1.8))
    ax = fig.subplots()
    y = np.arange(len(names))
    ax.barh(y, means, xerr=half, color="tab:blue", alpha=0.8, capsize=4, ecolor="black")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    speedups = summary["speedup"].to_numpy(float) if "speedup" in summary else [math.nan] * len(names)
    for yi, (mean, h, sp) in enumerate(zip(means, half, speedups)):
        text = f"{mean:.3g} s" + (f"  ({sp:.2f}× uncoded)" if np.isfinite(sp) else "")
        ax.text(mean + (h if np.isfinite(h) else 0) + 0.01 * np.nanmax(means), yi, text, va="center", fontsize=9)
    ax.set_xlim(0, np.nanmax(means + np.nan_to_num(half)) * 1.35)
    ax.set_xlabel("mean iteration time (s), bars: 95% confidence interval")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_time_cdf(quantiles: pd.DataFrame, path: Path, title: str = "CDF of the iteration time") -> Path:
    """Empirical CDF per scheme from ``quantiles.csv`` (quantile level against time)."""
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.subplots()
    name = _series_name(quantiles)
    for label, rows in quantiles.groupby(name, sort=False):
        rows = rows.sort_values("quantile")
        ax.plot(rows["time"], rows["quantile"], label=str(label), linewidth=1.8)
    ax.set_xlabel("iteration time T (s)")
    ax.set_ylabel("P(T ≤ t)")
    ax.set_ylim(0, 1.0)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(title="scheme", fontsize=9)
    return _save(fig, path)


def swept_keys(table: pd.DataFrame) -> list[str]:
    """The swept-key columns of a ``sweep.csv`` table: every column before ``scheme``."""
    columns = list(table.columns)
    return columns[:columns.index(FIRST_SUMMARY_COLUMN)] if FIRST_SUMMARY_COLUMN in columns else []


def _determined_by(table: pd.DataFrame, x: str, other: str) -> bool:
    """Whether ``other`` takes one value per value of ``x`` (zipped keys move together)."""
    return bool((table.groupby(x, sort=False)[other].nunique(dropna=False) <= 1).all())


def plot_sweep(table: pd.DataFrame, x: str, path: Path, *, y: str = "mean_time", title: str | None = None) -> Path:
    """``y`` (``mean_time`` with 95 % intervals, or ``speedup``) against the swept key ``x``, one line per
    scheme; one panel per combination of the other swept keys that vary independently of ``x``."""
    keys = swept_keys(table)
    panels_by = [k for k in keys if k != x and table[k].nunique(dropna=False) > 1
                 and not _determined_by(table, x, k)]
    numeric = pd.to_numeric(table[x], errors="coerce")
    categorical = bool(numeric.isna().any())
    if categorical:
        order = list(dict.fromkeys(table[x].astype(str)))
        xs_all = table[x].astype(str).map({v: i for i, v in enumerate(order)})
    else:
        xs_all = numeric
    groups: list[tuple[Any, pd.DataFrame]] = (list(table.groupby(panels_by, sort=False)) if panels_by
                                              else [((), table)])
    ncols = min(3, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    fig = Figure(figsize=(5.2 * ncols + 1.8, 3.9 * nrows + 0.6))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=False, squeeze=False)).ravel()
    name = _series_name(table)
    handles: dict[str, Any] = {}
    for ax, (values, rows) in zip(axes, groups):
        for label, series in rows.groupby(name, sort=False):
            xs = xs_all.loc[series.index].to_numpy(float)
            order_idx = np.argsort(xs, kind="stable")
            ys = series[y].to_numpy(float)[order_idx]
            if y == "mean_time" and "sem_time" in series:
                err = Z95 * series["sem_time"].to_numpy(float)[order_idx]
                line = ax.errorbar(xs[order_idx], ys, yerr=err, marker="o", markersize=4, capsize=3,
                                   linewidth=1.6, label=str(label))
            else:
                line = ax.plot(xs[order_idx], ys, marker="o", markersize=4, linewidth=1.6, label=str(label))[0]
            handles.setdefault(str(label), line)
        if panels_by:
            values = values if isinstance(values, tuple) else (values,)
            ax.set_title(", ".join(f"{k}={v}" for k, v in zip(panels_by, values)), fontsize=9)
        if categorical:
            ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
        ax.set_xlabel(param_label(x))
        ax.set_ylabel("mean iteration time (s)" if y == "mean_time" else "speed-up over uncoded (×)")
        if y == "speedup":
            ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        ax.grid(alpha=0.3)
    for ax in axes[len(groups):]:
        ax.set_visible(False)
    what = "Mean iteration time" if y == "mean_time" else "Speed-up over uncoded"
    fig.suptitle(title or f"{what} vs {x}" + (" (95% intervals)" if y == "mean_time" else ""))
    fig.legend(list(handles.values()), list(handles), title="scheme", loc="center left",
               bbox_to_anchor=(1.0, 0.5), fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_training(history: pd.DataFrame, path: Path, title: str = "Training loss vs simulated time") -> Path:
    """Training loss per scheme against simulated wall-clock time (``sim_time``, seconds), and, when the
    history has accuracies (classification), test accuracy against the same time axis in a second panel."""
    accuracy = "test_accuracy" in history and pd.to_numeric(history["test_accuracy"], errors="coerce").notna().any()
    fig = Figure(figsize=(12.5 if accuracy else 7.5, 4.8))
    axes = fig.subplots(1, 2 if accuracy else 1, squeeze=False)[0]
    loss_ax = axes[0]
    name = _series_name(history)
    positive = True
    for label, rows in history.groupby(name, sort=False):
        rows = rows.sort_values("iteration") if "iteration" in rows else rows
        loss = pd.to_numeric(rows["loss"], errors="coerce")
        positive &= bool((loss.dropna() > 0).all())
        loss_ax.plot(rows["sim_time"], loss, label=str(label), linewidth=1.6)
        if accuracy:
            axes[1].plot(rows["sim_time"], pd.to_numeric(rows["test_accuracy"], errors="coerce"),
                         label=str(label), linewidth=1.6)
    if positive:
        loss_ax.set_yscale("log")
    loss_ax.set_xlabel("simulated training time (s)")
    loss_ax.set_ylabel("training loss" + (" (log scale)" if positive else ""))
    loss_ax.set_title(title)
    loss_ax.legend(title="scheme", fontsize=9)
    if accuracy:
        axes[1].set_xlabel("simulated training time (s)")
        axes[1].set_ylabel("test accuracy (fraction correct)")
        axes[1].set_title("Test accuracy vs simulated time")
        axes[1].legend(title="scheme", fontsize=9, loc="lower right")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def _safe(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key)


MAX_CSV_BYTES = 256 * 2**20
"""Largest results CSV ``hgc plot`` reads (bytes)."""

# file -> (columns it must have, of which numeric)
_INPUTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "summary.csv": (("scheme", "mean_time", "sem_time"), ("mean_time", "sem_time", "speedup")),
    "quantiles.csv": (("scheme", "quantile", "time"), ("quantile", "time")),
    "sweep.csv": (("scheme", "mean_time"), ("mean_time", "sem_time", "speedup")),
    "train.csv": (("label", "sim_time", "loss"), ("sim_time", "loss", "test_accuracy", "iteration")),
}


def _read_results(path: Path) -> pd.DataFrame:
    """A results CSV written by hgc, checked: readable, the expected columns, numbers where numbers go.
    Anything else is a :class:`ConfigError` naming the file (never a traceback)."""
    required, numeric = _INPUTS[path.name]
    try:
        size = path.stat().st_size
        if size > MAX_CSV_BYTES:
            raise ConfigError(f"larger than {MAX_CSV_BYTES} bytes; not a results file hgc plots", source=path)
        if size == 0:
            raise ConfigError("cannot plot: the file is empty", source=path)
        table = pd.read_csv(path, encoding="utf-8")
    except ConfigError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        reason = "not UTF-8 text" if isinstance(err, UnicodeDecodeError) else "not a readable CSV file"
        raise ConfigError(f"cannot plot: {reason}", source=path) from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ConfigError(f"cannot plot: no column '{missing[0]}' (not a results file written by hgc?)", source=path)
    if table.empty:
        raise ConfigError("cannot plot: the table has no rows", source=path)
    for column in numeric:
        if column in table.columns:
            values = pd.to_numeric(table[column], errors="coerce")
            bad = values.isna() & table[column].notna()
            if bad.any():
                line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
                raise ConfigError(f"cannot plot: line {line}: column '{column}' holds a value that is not a number",
                                  source=path)
            table[column] = values
    return table


def _drawn(source: Path, out: Path, draw: Any, *args: Any, **kwargs: Any) -> Path:
    """``draw(*args, out, **kwargs)`` for the table read from ``source``; a table whose values make no
    figure, or a PNG that cannot be written, is a :class:`ConfigError` naming the file."""
    try:
        return draw(*args, out, **kwargs)  # type: ignore[no-any-return]
    except OSError as err:
        raise ConfigError(f"cannot write here: {err.strerror or type(err).__name__}", source=out) from None
    except (ValueError, TypeError, KeyError, OverflowError, ZeroDivisionError) as err:
        raise ConfigError(f"cannot plot this table ({type(err).__name__}: {str(err)[:120]})", source=source) from None


def plot_directory(directory: str | Path) -> list[Path]:
    """Draw every figure the results in ``directory`` allow; return the PNG paths written (in the directory).

    Raises :class:`ConfigError` if the directory does not exist or holds none of ``summary.csv``,
    ``quantiles.csv``, ``sweep.csv``, ``train.csv``, or if one of them is not a results table hgc wrote.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError("not a directory" if directory.exists() else "directory not found", source=directory)
    name = directory.name
    written: list[Path] = []
    if (directory / "summary.csv").is_file():
        summary = _read_results(directory / "summary.csv")
        out = directory / "mean_time.png"
        written.append(_drawn(directory / "summary.csv", out, plot_mean_times, summary, title=f"{name}: mean iteration time per scheme"))
    if (directory / "quantiles.csv").is_file():
        quantiles = _read_results(directory / "quantiles.csv")
        out = directory / "time_cdf.png"
        written.append(_drawn(directory / "quantiles.csv", out, plot_time_cdf, quantiles, title=f"{name}: CDF of the iteration time"))
    if (directory / "sweep.csv").is_file():
        table = _read_results(directory / "sweep.csv")
        for key in swept_keys(table):
            if table[key].nunique(dropna=False) < 2:
                continue
            out = directory / f"sweep_mean_time__{_safe(key)}.png"
            written.append(_drawn(directory / "sweep.csv", out, plot_sweep, table, key,
                                  title=f"{name}: mean iteration time vs {key} (95% intervals)"))
            if "speedup" in table:
                out = directory / f"sweep_speedup__{_safe(key)}.png"
                written.append(_drawn(directory / "sweep.csv", out, plot_sweep, table, key, y="speedup",
                                      title=f"{name}: speed-up over uncoded vs {key}"))
    if (directory / "train.csv").is_file():
        history = _read_results(directory / "train.csv")
        out = directory / "train_loss.png"
        written.append(_drawn(directory / "train.csv", out, plot_training, history, title=f"{name}: training loss vs simulated time"))
    if not written:
        raise ConfigError("nothing to plot (expected summary.csv, quantiles.csv, sweep.csv or train.csv)",
                          source=directory)
    return written


__all__: Sequence[str] = ["plot_directory", "plot_mean_times", "plot_time_cdf", "plot_sweep", "plot_training",
                          "param_label", "swept_keys"]
