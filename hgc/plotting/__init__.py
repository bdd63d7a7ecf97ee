"""PNG figures for a results directory (``hgc plot DIR``).

:func:`plot_directory` draws whatever the directory holds (:func:`figures` builds the same figures
without writing them):

* ``summary.csv`` (``hgc simulate``) → ``effective_time.png``: seconds per *successful* iteration,
  ``mean_time / (1 - failure_rate)``, per scheme with 95 % intervals, the speed-up over uncoded and the
  failure rate;
* ``quantiles.csv`` (``hgc simulate``) → ``time_cdf.png``: CDF of the iteration time (``P(decoded and T <= t)``
  when some iterations fail), x-axis up to the largest 99.9 % quantile;
* ``sweep.csv`` (``hgc sweep``) → for every swept key with two or more values (one of each ``zip`` group),
  ``sweep_effective_time__<key>.png`` (effective time with 95 % intervals against that key, one line per
  scheme, one panel per combination of the other swept keys, shared y-scale; a failure-rate strip under
  each panel when some iterations fail) and ``sweep_speedup__<key>.png``; with ``analyses: [optimize]``
  also ``sweep_optimize__<key>.png`` (the strategies of ``optimize.csv``);
* ``optimize.csv`` (``hgc optimize``) → ``optimize.png``: every strategy's effective time (Monte Carlo, 95 %
  intervals, and the analytic value) beside a map of the nodes it uses;
* ``verify.csv`` (``hgc verify``) → ``verify.png``: worst decoding error against worst condition number κ,
  one point per code;
* ``train.csv`` (``hgc train``) → ``train_loss.png``: training loss against simulated time with the target
  loss and each scheme's time to reach it, and test accuracy when the task has one;
* ``emulate.csv`` (``hgc emulate``) → ``emulate.png``: measured iteration times against the simulator's
  prediction on the same draws, per scheme (means, with ``emulate_summary.csv``) and per iteration.

Headline numbers compare effective times (a scheme that often fails to decode is not shown as fast);
the ``effective_time`` column of newer result files is used as written, and computed for older ones.
A scheme keeps its colour, marker and line style (colour-blind-safe) across the figures of a directory.
A file that cannot be read (empty, truncated, a missing column, a non-numeric cell) raises
:class:`~hgc.errors.ConfigError` naming the file and the column.

matplotlib is imported with this package (Agg backend, :class:`~matplotlib.figure.Figure` objects, no
pyplot state), never by the rest of hgc.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
from matplotlib.figure import Figure

from hgc.errors import ConfigError
from hgc.plotting import emulate, simulate, sweep, training, verify
from hgc.plotting import optimize as optimize_plots
from hgc.plotting.style import Styles, param_label, save
from hgc.plotting.sweep import swept_keys
from hgc.plotting.tables import labels, read_table

__all__ = ["figures", "planned_figures", "plot_directory", "param_label", "swept_keys", "PlannedFigure", "PlotSet"]


@dataclass
class PlotSet:
    """The figures for one directory, in drawing order: ``{file name: Figure}``."""

    directory: Path
    figures: dict[str, Figure]


@dataclass(frozen=True)
class PlannedFigure:
    """A figure the results in a directory allow: its file name, the CSV files it is drawn from, and
    ``draw()`` to draw it (``None`` only if there turns out to be nothing to draw)."""

    file: str
    sources: tuple[str, ...]
    draw: Callable[[], Figure | None]


def _safe(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key)


def planned_figures(directory: str | Path) -> list[PlannedFigure]:
    """Every figure the results in ``directory`` allow, in drawing order, none drawn yet: the CSV files
    are read and checked (as for drawing), so this is what ``hgc plot --dry-run`` lists.

    Raises :class:`ConfigError` if the directory does not exist, holds none of the known CSV files, or a
    file it needs is unreadable.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError("not a directory" if directory.exists() else "directory not found", source=directory)
    name = directory.resolve().name
    out: list[PlannedFigure] = []
    path: Callable[[str], Path] = lambda file: directory / file

    summary = None
    styles = Styles()
    if path("summary.csv").is_file():
        summary = read_table(path("summary.csv"), required=simulate.SUMMARY_REQUIRED,
                             numeric=simulate.SUMMARY_NUMERIC, what="hgc simulate")
        styles = Styles(labels(summary))
        out.append(PlannedFigure("effective_time.png", ("summary.csv",), functools.partial(
            simulate.effective_time_figure, summary, styles=styles,
            title=f"{name}: effective time per successful iteration (s)")))
    if path("quantiles.csv").is_file():
        quantiles = read_table(path("quantiles.csv"), required=simulate.QUANTILES_REQUIRED,
                               numeric=simulate.QUANTILES_NUMERIC, what="hgc simulate")
        out.append(PlannedFigure("time_cdf.png", ("quantiles.csv",) + (("summary.csv",) if summary is not None else ()),
                                 functools.partial(simulate.time_cdf_figure, quantiles, summary, styles=styles,
                                                   title=f"{name}: CDF of the iteration time T (s)")))
    if path("sweep.csv").is_file():
        sweep_table = read_table(path("sweep.csv"), required=sweep.REQUIRED, numeric=sweep.NUMERIC,
                                 what="hgc sweep")
        sweep_styles = Styles(labels(sweep_table, stable=True))
        for key, zipped in sweep.plotted_keys(sweep_table, swept_keys(sweep_table)).items():
            for y, stem, what in (("effective_time", "sweep_effective_time",
                                   f"effective time per successful iteration vs {key} (95 % intervals)"),
                                  ("speedup", "sweep_speedup", f"speed-up over uncoded (effective times) vs {key}")):
                if sweep.has_values(sweep_table, y=y):
                    out.append(PlannedFigure(f"{stem}__{_safe(key)}.png", ("sweep.csv",), functools.partial(
                        sweep.sweep_figure, sweep_table, key, y=y, styles=sweep_styles, zipped=zipped,
                        title=f"{name}: {what}")))
    if path("optimize.csv").is_file():
        table = read_table(path("optimize.csv"), required=optimize_plots.REQUIRED,
                           numeric=optimize_plots.NUMERIC, what="hgc optimize")
        keys = optimize_plots.leading_keys(table)
        if keys:   # an optimize table of a sweep: one line per strategy against each swept key
            series = optimize_plots.as_sweep_table(table, keys)
            opt_styles = Styles(labels(series))
            for key, zipped in sweep.plotted_keys(series, keys).items():
                if sweep.has_values(series, keys=keys):
                    out.append(PlannedFigure(f"sweep_optimize__{_safe(key)}.png", ("optimize.csv",), functools.partial(
                        sweep.sweep_figure, series, key, styles=opt_styles, keys=keys, zipped=zipped,
                        title=f"{name}: JNCSS and the other strategies vs {key} (Monte Carlo, 95 % intervals)")))
        else:
            out.append(PlannedFigure("optimize.png", ("optimize.csv",), functools.partial(
                optimize_plots.optimize_figure, table, title=f"{name}: strategies compared by hgc optimize")))
    if path("verify.csv").is_file():
        table = read_table(path("verify.csv"), required=verify.REQUIRED, numeric=verify.NUMERIC,
                           what="hgc verify")
        out.append(PlannedFigure("verify.png", ("verify.csv",), functools.partial(
            verify.verify_figure, table, title=f"{name}: worst decoding error vs condition number κ, per code")))
    if path("train.csv").is_file():
        history = read_table(path("train.csv"), required=training.REQUIRED, numeric=training.NUMERIC,
                             what="hgc train")
        train_summary = None
        if path("train_summary.csv").is_file():
            train_summary = read_table(path("train_summary.csv"), required=training.SUMMARY_REQUIRED,
                                       numeric=training.SUMMARY_NUMERIC, what="hgc train")
        sources = ("train.csv",) + (("train_summary.csv",) if train_summary is not None else ())
        out.append(PlannedFigure("train_loss.png", sources, functools.partial(
            training.training_figure, history, train_summary,
            target=training.target_from_metadata(path("metadata.json")),
            title=f"{name}: training loss vs simulated time")))
    if path("emulate.csv").is_file():
        history = read_table(path("emulate.csv"), required=emulate.REQUIRED, numeric=emulate.NUMERIC,
                             what="hgc emulate")
        has_summary = path("emulate_summary.csv").is_file()
        emulate_summary = (read_table(path("emulate_summary.csv"), required=emulate.SUMMARY_REQUIRED,
                                      numeric=emulate.SUMMARY_NUMERIC, what="hgc emulate")
                           if has_summary else emulate.summary_from_history(history))
        sources = ("emulate.csv",) + (("emulate_summary.csv",) if has_summary else ())
        out.append(PlannedFigure("emulate.png", sources, functools.partial(
            emulate.emulation_figure, history, emulate_summary,
            title=f"{name}: emulated vs predicted iteration time (wall clock)")))
    if not out:
        raise ConfigError("nothing to plot (expected summary.csv, quantiles.csv, sweep.csv, optimize.csv, "
                          "verify.csv, train.csv or emulate.csv)", source=directory)
    return out


def figures(directory: str | Path) -> PlotSet:
    """Every figure the results in ``directory`` allow (not written; see :func:`plot_directory`), drawn
    from :func:`planned_figures`.

    Raises :class:`ConfigError` if the directory does not exist, holds none of the known CSV files, or a
    file it needs is unreadable.
    """
    drawn = {planned.file: planned.draw() for planned in planned_figures(directory)}
    return PlotSet(Path(directory), {file: fig for file, fig in drawn.items() if fig is not None})


def plot_directory(directory: str | Path) -> list[Path]:
    """Draw every figure the results in ``directory`` allow (see :func:`figures`) and write them there as
    PNG files; return their paths."""
    plot_set = figures(directory)
    return [save(fig, plot_set.directory / file) for file, fig in plot_set.figures.items()]
