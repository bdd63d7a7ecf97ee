"""``hgc simulate`` as a library call: schemes → strategies → Monte Carlo → summary table.

:func:`resolve_schemes` turns each :class:`~hgc.schemes.SchemeSpec` of a config into a concrete
:class:`~hgc.schemes.Strategy`: fixed tolerances directly, ``auto`` tolerances and ``hgc_jncss`` with the
analytic evaluator and optimizer of :mod:`hgc.optimize` (flat GC behind a relay queue by a Monte Carlo pilot
on an independent random stream, so the selection does not bias the reported numbers). :func:`simulate` then evaluates all strategies on
the same sampled delays and returns a :class:`SimulationResult` whose ``summary`` has the columns of
SPEC §6.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from hgc.config import ExperimentConfig
from hgc.errors import ConfigError, Interrupted
from hgc.optimize import best_flat_gc, best_hgc_tolerances, select_jncss
from hgc.schemes import AUTO, SchemeSpec, Strategy, make_strategy
from hgc.simulation import MonteCarloRun, TimeStatistics, run_strategies

SUMMARY_COLUMNS = [
    "scheme", "s_e", "s_w", "s", "edges", "workers", "load", "mean_time", "sem_time", "p50_time",
    "p95_time", "p99_time", "failure_rate", "master_vectors", "speedup", "trials", "seed", "label", "note",
]
QUANTILE_LEVELS = np.round(np.concatenate([np.arange(0.005, 0.995, 0.005), [0.995, 0.999]]), 6)


@dataclass(frozen=True)
class ResolvedScheme:
    """A scheme from the config and the concrete strategy that runs for it; ``note`` says how it was chosen."""

    spec: SchemeSpec
    strategy: Strategy
    note: str = ""


@dataclass
class SimulationResult:
    """What ``hgc simulate`` computes: the summary table (SPEC §6), iteration-time quantiles per scheme
    for CDF plots, and run facts (trials completed, interruption, seconds)."""

    summary: pd.DataFrame
    quantiles: pd.DataFrame
    schemes: list[ResolvedScheme]
    run: MonteCarloRun
    seed: int
    trials_requested: int


# ----------------------------------------------------------------------------------------------------
# Choosing `auto` tolerances and JNCSS selections

def resolve_scheme(config: ExperimentConfig, spec: SchemeSpec) -> ResolvedScheme:
    """The concrete strategy for one scheme of ``config``.

    ``hgc`` with ``auto`` tolerances and ``hgc_jncss`` are chosen with the analytic evaluator (exact
    E[T], no sampling noise); ``flat_gc`` with ``s: auto`` analytically when its messages reach the master
    independently, otherwise by a Monte Carlo pilot on ``Stream.PILOT`` — independent of the reported run,
    so the choice does not bias the reported numbers.
    """
    topo, model = config.topology, config.timing
    if spec.kind == "uncoded":
        return ResolvedScheme(spec, make_strategy("uncoded", topo))
    if spec.kind == "flat_gc":
        if spec.s != AUTO:
            return ResolvedScheme(spec, make_strategy("flat_gc", topo, s=int(spec.s)))
        choice = best_flat_gc(model, seed=config.seed)
        return ResolvedScheme(spec, choice.strategy, f"auto: {choice.note}")
    if spec.kind == "hgc":
        if spec.s_e != AUTO and spec.s_w != AUTO:
            return ResolvedScheme(spec, make_strategy("hgc", topo, s_e=int(spec.s_e), s_w=int(spec.s_w)))
        strategy = best_hgc_tolerances(model, s_e=None if spec.s_e == AUTO else int(spec.s_e),
                                       s_w=None if spec.s_w == AUTO else int(spec.s_w))
        return ResolvedScheme(spec, strategy, "auto: tolerances by analytic E[T]")
    if spec.kind == "hgc_jncss":
        result = select_jncss(model, method="greedy")
        return ResolvedScheme(spec, result.strategy,
                              f"JNCSS greedy: analytic E[T]={result.expected_time:.6g}s")
    raise ConfigError(f"unknown scheme '{spec.kind}'", "schemes")


def resolve_schemes(config: ExperimentConfig) -> list[ResolvedScheme]:
    return [resolve_scheme(config, spec) for spec in config.schemes]


# ----------------------------------------------------------------------------------------------------
# The run and its tables

def _optional(value: int | None) -> object:
    return pd.NA if value is None else int(value)


def summary_row(resolved: ResolvedScheme, stats: TimeStatistics, baseline_mean: float,
                seed: int) -> dict[str, object]:
    st = resolved.strategy
    p50, p95, p99 = stats.quantile([0.5, 0.95, 0.99])
    note = "; ".join(n for n in (resolved.note, st.describe()) if n)
    return {
        "scheme": resolved.spec.kind,
        "s_e": _optional(st.s_e), "s_w": _optional(st.s_w), "s": _optional(st.s),
        "edges": sum(1 for ws in st.workers if ws), "workers": st.n_workers, "load": st.load,
        "mean_time": stats.mean_time, "sem_time": stats.sem,
        "p50_time": p50, "p95_time": p95, "p99_time": p99,
        "failure_rate": stats.failure_rate, "master_vectors": stats.mean_vectors,
        "speedup": baseline_mean / stats.mean_time if stats.decoded and stats.mean_time > 0 else float("nan"),
        "trials": stats.trials, "seed": seed, "label": resolved.spec.label, "note": note,
    }


def simulate(config: ExperimentConfig, *, trials: int | None = None, seed: int | None = None,
             progress: Callable[[Iterable[int]], Iterable[int]] | None = None) -> SimulationResult:
    """Monte Carlo iteration time of every scheme in ``config`` (``trials``/``seed`` override the config).

    An uncoded baseline is always simulated (on the same draws) for the ``speedup`` column, even when the
    config does not list it. Interrupting (Ctrl-C) the main run returns the statistics of the completed
    chunks (``run.interrupted`` set); an interrupt before any chunk finished, or while ``auto`` schemes
    are being chosen, propagates.
    """
    config = config.with_overrides(seed=seed, trials=trials)
    schemes = resolve_schemes(config)
    strategies = [r.strategy for r in schemes]
    baseline = next((i for i, r in enumerate(schemes) if r.spec.kind == "uncoded"), None)
    if baseline is None:
        strategies.append(make_strategy("uncoded", config.topology))
        baseline = len(strategies) - 1
    try:
        run = run_strategies(config.timing, strategies, seed=config.seed, trials=config.trials, progress=progress)
    except Interrupted as stop:  # report the completed trials, labelled (run.interrupted); none: stop
        if stop.partial is None or stop.partial.trials_done == 0:
            raise
        run = stop.partial
    baseline_mean = run.statistics[baseline].mean_time
    rows = [summary_row(r, stats, baseline_mean, config.seed) for r, stats in zip(schemes, run.statistics)]
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    for column in ("s_e", "s_w", "s"):
        summary[column] = summary[column].astype("Int64")
    quantiles = pd.DataFrame(
        [{"label": r.spec.label, "scheme": r.spec.kind, "quantile": q, "time": t}
         for r, stats in zip(schemes, run.statistics)
         for q, t in zip(QUANTILE_LEVELS, stats.quantile(QUANTILE_LEVELS))])
    return SimulationResult(summary, quantiles, schemes, run, config.seed, config.trials)
