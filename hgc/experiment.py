"""``hgc simulate`` as a library call: schemes → strategies → Monte Carlo → summary table.

:func:`resolve_schemes` turns each scheme of a config into a concrete strategy through its scheme module
(``auto`` values and node selections are chosen there, with the analytic evaluator or a Monte Carlo pilot
on an independent random stream, so the selection does not bias the reported numbers). :func:`simulate`
then evaluates all strategies on the same sampled delays and returns a :class:`SimulationResult`, whose
``summary`` is ``summary.csv`` and which writes its own files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hgc.config import ExperimentConfig
from hgc.errors import Interrupted
from hgc.output import integer_columns, run_metadata, write_csv, write_json, write_yaml
from hgc.progress import ProgressFactory, chunk_progress
from hgc.schemes import BASELINE, ResolveContext, Resolved, baseline_spec
from hgc.schemes.base import PARAMETER_COLUMNS
from hgc.simulation import MonteCarloRun, TimeStatistics, run_strategies

SUMMARY_COLUMNS = [
    "scheme", "s_e", "s_w", "s", "reduction_e", "reduction_w", "reduction", "edges", "workers", "load",
    "load_min", "load_mean", "mean_time", "sem_time", "p50_time",
    "p95_time", "p99_time", "failure_rate", "effective_time", "master_vectors", "speedup", "trials", "seed",
    "label", "spec_label", "note",
]
"""Columns of ``summary.csv``: ``effective_time`` is the time per successful iteration
``mean_time / (1 - failure_rate)`` (blank when nothing decodes) and ``speedup`` the baseline's effective
time over this one's; ``label`` names the scheme with its ``auto`` values resolved
(``hgc(s_e=auto→2,s_w=1)``), ``spec_label`` as written in the config."""
QUANTILE_LEVELS = np.round(np.concatenate([np.arange(0.005, 0.995, 0.005), [0.995, 0.999]]), 6)

ResolvedScheme = Resolved  # the name this module used before the scheme registry


@dataclass
class SimulationResult:
    """What ``hgc simulate`` computes: the summary table, iteration-time quantiles per scheme for CDF
    plots, the resolved schemes, and run facts (trials completed, interruption, seconds)."""

    summary: pd.DataFrame
    quantiles: pd.DataFrame
    schemes: list[Resolved]
    run: MonteCarloRun
    config: ExperimentConfig

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def trials_requested(self) -> int:
        return self.config.trials

    def write(self, out_dir: Path) -> list[Path]:
        """``summary.csv``, ``quantiles.csv``, ``config.resolved.yaml`` and ``metadata.json`` under ``out_dir``."""
        out_dir = Path(out_dir)
        strategies = [{"label": r.label, "spec_label": r.spec.label, "kind": r.strategy.kind, "edges": list(r.strategy.edges),
                       "workers": [list(w) for w in r.strategy.workers], **r.strategy.columns(),
                       "load": r.strategy.load, "note": r.note} for r in self.schemes]
        return [
            write_csv(self.summary, out_dir / "summary.csv"),
            write_csv(self.quantiles, out_dir / "quantiles.csv"),
            write_yaml(self.config.resolved(), out_dir / "config.resolved.yaml"),
            write_json(run_metadata(
                "simulate", seed=self.seed, trials=self.run.trials_done, trials_requested=self.trials_requested,
                interrupted=self.run.interrupted, complete=not self.run.interrupted,
                seconds=round(self.run.seconds, 3), chunk_trials=self.run.block_trials,
                pass_trials=self.run.pass_trials, backend=self.run.backend, **self.run.executor,
                strategies=strategies), out_dir / "metadata.json"),
        ]


# ----------------------------------------------------------------------------------------------------
# Choosing `auto` values and node selections

def resolve_schemes(config: ExperimentConfig, context: ResolveContext | None = None) -> list[Resolved]:
    """The concrete strategy of every scheme of ``config`` (one shared :class:`ResolveContext`)."""
    context = context or ResolveContext(config.timing, config.seed)
    return [spec.scheme.resolve(spec, context) for spec in config.schemes]


def resolve_scheme(config: ExperimentConfig, spec: object) -> Resolved:
    """The concrete strategy of one scheme of ``config``."""
    return spec.scheme.resolve(spec, ResolveContext(config.timing, config.seed))  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------------------------------
# The run and its tables

def speedup(baseline: float, time: float) -> float:
    """``baseline / time`` for two times per successful iteration; NaN (a blank cell) when either is
    undefined or ``time`` is 0 (all-zero delays: no ratio is defined)."""
    if not (math.isfinite(baseline) and math.isfinite(time)) or time <= 0.0:
        return math.nan
    return baseline / time


def summary_row(resolved: Resolved, stats: TimeStatistics, baseline_effective: float, seed: int) -> dict[str, object]:
    st = resolved.strategy
    p50, p95, p99 = stats.quantile(np.array([0.5, 0.95, 0.99]))
    note = "; ".join(n for n in (resolved.note, st.describe()) if n)
    return {
        "scheme": resolved.spec.kind, **st.columns(),
        "edges": st.n_edges, "workers": st.n_workers, "load": st.load,
        "load_min": float(st.loads.min()), "load_mean": float(st.loads.mean()),
        "mean_time": stats.mean_time, "sem_time": stats.sem,
        "p50_time": p50, "p95_time": p95, "p99_time": p99,
        "failure_rate": stats.failure_rate, "effective_time": stats.effective_time,
        "master_vectors": stats.mean_vectors, "speedup": speedup(baseline_effective, stats.effective_time),
        "trials": stats.trials, "seed": seed, "label": resolved.label, "spec_label": resolved.spec.label,
        "note": note,
    }


def simulate(config: ExperimentConfig, *, trials: int | None = None, seed: int | None = None,
             progress: ProgressFactory | None = None, memory: int | None = None,
             executor: Any = None) -> SimulationResult:
    """Monte Carlo iteration time of every scheme in ``config`` (``trials``/``seed`` override the config).

    ``memory`` (bytes) bounds the simulator's working arrays and ``executor`` (an
    :class:`hgc.executors.Executor`) spreads blocks of trials over workers; neither changes the numbers.

    A baseline (uncoded) run is always simulated on the same draws for the ``speedup`` column, even when
    the config does not list it. Interrupting (Ctrl-C) the main run returns the statistics of the completed
    chunks (``run.interrupted`` set); an interrupt before any chunk finished, or while ``auto`` schemes
    are being chosen, propagates. ``progress`` draws bars for pilots, searches and the Monte Carlo run.
    """
    config = config.with_overrides(seed=seed, trials=trials)
    context = ResolveContext(config.timing, config.seed, progress)
    schemes = resolve_schemes(config, context)
    strategies = [r.strategy for r in schemes]
    baseline = next((i for i, r in enumerate(schemes) if r.spec.kind == BASELINE), None)
    if baseline is None:
        spec = baseline_spec()
        strategies.append(spec.scheme.resolve(spec, context).strategy)
        baseline = len(strategies) - 1
    try:
        run = run_strategies(config.timing, strategies, seed=config.seed, trials=config.trials,
                             progress=chunk_progress(progress, "simulate", config.trials), memory=memory,
                             executor=executor)
    except Interrupted as stop:  # report the completed trials, labelled (run.interrupted); none: stop
        if stop.partial is None or stop.partial.trials_done == 0:
            raise
        run = stop.partial
    baseline_effective = run.statistics[baseline].effective_time
    rows = [summary_row(r, stats, baseline_effective, config.seed) for r, stats in zip(schemes, run.statistics)]
    summary = integer_columns(pd.DataFrame(rows, columns=SUMMARY_COLUMNS), PARAMETER_COLUMNS)
    quantiles = pd.DataFrame(
        [{"label": r.label, "scheme": r.spec.kind, "quantile": q, "time": t}
         for r, stats in zip(schemes, run.statistics)
         for q, t in zip(QUANTILE_LEVELS, stats.quantile(QUANTILE_LEVELS))])
    return SimulationResult(summary, quantiles, schemes, run, config)
