"""``hgc optimize`` as a library call: every scheme's best strategies for a system, compared in one table.

Each registered scheme contributes its rows (:meth:`~hgc.schemes.Scheme.optimize_rows`): ``uncoded``, the
best flat GC, the best HGC on all nodes, JNCSS greedy and (when the search space is small, or asked for)
JNCSS exhaustive. Every row carries its analytic ``E[T]`` and a Monte Carlo check of the same strategy on
common random numbers (``Stream.OPTIMIZE``), and the optimality gap against the exhaustive ground truth.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hgc.config import ExperimentConfig
from hgc.errors import ConfigError
from hgc.experiment import speedup
from hgc.optimizer import METHODS
from hgc.optimizer.scoring import objective
from hgc.output import integer_columns, run_metadata, write_csv, write_json, write_yaml
from hgc.progress import ProgressFactory, chunk_progress
from hgc.rng import Stream
from hgc.schemes import Candidate, OptimizeContext, Strategy, all_schemes
from hgc.schemes.base import PARAMETER_COLUMNS
from hgc.simulation import MonteCarloRun, run_strategies

OPTIMIZE_COLUMNS = [
    "strategy", "scheme", "method", "edges", "workers", "edge_ids", "worker_ids", "s_e", "s_w", "s",
    "reduction_e", "reduction_w", "reduction", "load", "load_min", "load_mean",
    "expected_time", "decode_probability", "effective_time", "analytic_error", "mc_mean_time", "mc_sem_time",
    "mc_failure_rate", "mc_effective_time", "z_score", "speedup", "analytic_speedup", "optimality_gap",
    "evaluations", "search_space", "optimizer_seconds", "trials", "seed", "note",
]
"""Columns of ``optimize.csv`` (see :func:`optimize`). ``effective_time`` (analytic) and
``mc_effective_time`` (Monte Carlo) are times per successful iteration, ``E[T | decoded] / P(decoded)``;
``speedup`` and ``analytic_speedup`` compare them with the uncoded row's."""


@dataclass
class OptimizeResult:
    """What ``hgc optimize`` computes: the table, the candidate rows behind it, and run facts."""

    table: pd.DataFrame
    candidates: list[Candidate]
    config: ExperimentConfig
    method: str
    run: MonteCarloRun
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def trials(self) -> int:
        return self.config.trials

    def candidate(self, label: str) -> Candidate | None:
        """The row labelled ``label`` (e.g. ``jncss_greedy``), if the table has it."""
        return next((c for c in self.candidates if c.label == label), None)

    def write(self, out_dir: Path) -> list[Path]:
        """``optimize.csv``, ``config.resolved.yaml`` and ``metadata.json`` under ``out_dir``."""
        out_dir = Path(out_dir)
        strategies = []
        for row in self.candidates:
            edge_ids, worker_ids = node_ids(row.strategy)
            strategies.append({"strategy": row.label, "edges": edge_ids, "workers": worker_ids,
                               **row.strategy.columns()})
        return [
            write_csv(self.table, out_dir / "optimize.csv"),
            write_yaml(self.config.resolved(), out_dir / "config.resolved.yaml"),
            write_json(run_metadata("optimize", method=self.method, seed=self.seed, trials=self.trials,
                                    monte_carlo_seconds=round(self.run.seconds, 3), strategies=strategies,
                                    **self.metadata), out_dir / "metadata.json"),
        ]


def node_ids(strategy: Strategy) -> tuple[str, str]:
    """Participating edges as ``0;1;3`` and their workers as ``0,1,2;0,2;1``."""
    return (";".join(str(e) for e in strategy.edges),
            ";".join(",".join(str(p) for p in ws) for ws in strategy.workers))


def optimize(config: ExperimentConfig, *, method: str = "greedy", trials: int | None = None,
             seed: int | None = None, include_timings: bool = True,
             progress: ProgressFactory | None = None) -> OptimizeResult:
    """Every scheme's best strategies for ``config``'s system, compared analytically and by Monte Carlo.

    ``method`` is the JNCSS search mode (``greedy``; ``exhaustive`` forces the exhaustive row, refused when
    the search space is too large); ``trials``/``seed`` override the config's for the Monte Carlo check.
    Everything is a function of the config and seed except ``optimizer_seconds`` (wall-clock time), left
    empty with ``include_timings=False`` so that the table is byte-for-byte reproducible.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method '{method}' (one of: {', '.join(METHODS)})", "method")
    config = config.with_overrides(seed=seed, trials=trials)
    context = OptimizeContext(config.timing, config.seed, progress, method=method)
    schemes = all_schemes()
    for scheme in schemes:
        scheme.validate_optimize(context)
    rows: list[Candidate] = [row for scheme in schemes for row in scheme.optimize_rows(context)]
    run = run_strategies(config.timing, [r.strategy for r in rows], seed=config.seed, trials=config.trials,
                         stream_id=Stream.OPTIMIZE, progress=chunk_progress(progress, "Monte Carlo check", config.trials))
    table = _table(rows, run, config.seed, include_timings)
    return OptimizeResult(table, rows, config, method, run)


def _reference_objective(rows: list[Candidate], family: str | None = None) -> float:
    """What optimality gaps are measured against: the best ground-truth (exhaustive) row, else the best
    heuristic search row (only rows of ``family`` when given, and then only ground truths)."""
    for role in ("ground_truth",) if family is not None else ("ground_truth", "search"):
        values = [objective(r.evaluation) for r in rows
                  if r.role == role and r.evaluation is not None and (family is None or r.family == family)]
        if values:
            return min(values)
    return math.nan


def _table(rows: list[Candidate], run: MonteCarloRun, seed: int, include_timings: bool) -> pd.DataFrame:
    best = _reference_objective(rows)
    baseline_mc = run.statistics[0].effective_time
    baseline_analytic = rows[0].evaluation.effective_time if rows[0].evaluation is not None else math.nan
    records = []
    for row, stats in zip(rows, run.statistics):
        st, ev = row.strategy, row.evaluation
        edge_ids, worker_ids = node_ids(st)
        expected = ev.expected_time if ev is not None else math.nan
        value = objective(ev) if ev is not None else stats.effective_time
        reference = _reference_objective(rows, row.family) if row.role == "search" else best
        if not reference > 0:
            gap = math.nan  # (no ground truth of its family, or all delays zero: no ratio is defined)
        else:
            gap = value / reference - 1.0
        records.append({
            "strategy": row.label, "scheme": st.kind, "method": row.method,
            "edges": st.n_edges, "workers": st.n_workers, "edge_ids": edge_ids, "worker_ids": worker_ids,
            **st.columns(), "load": st.load, "load_min": float(st.loads.min()),
            "load_mean": float(st.loads.mean()),
            "expected_time": expected,
            "decode_probability": ev.decode_probability if ev is not None else math.nan,
            "effective_time": ev.effective_time if ev is not None else math.nan,
            "analytic_error": ev.error_estimate if ev is not None else math.nan,
            "mc_mean_time": stats.mean_time, "mc_sem_time": stats.sem, "mc_failure_rate": stats.failure_rate,
            "mc_effective_time": stats.effective_time,
            "z_score": (expected - stats.mean_time) / stats.sem if ev is not None and stats.sem > 0 else math.nan,
            "speedup": speedup(baseline_mc, stats.effective_time),
            "analytic_speedup": speedup(baseline_analytic, ev.effective_time) if ev is not None else math.nan,
            "optimality_gap": gap,
            "evaluations": row.evaluations, "search_space": row.space,
            "optimizer_seconds": round(row.seconds, 3) if include_timings else math.nan,
            "trials": stats.trials, "seed": seed,
            "note": "; ".join(n for n in (row.note, st.describe()) if n),
        })
    table = integer_columns(pd.DataFrame(records, columns=OPTIMIZE_COLUMNS),
                            (*PARAMETER_COLUMNS, "evaluations", "search_space"))
    return table


def optimize_table(config: ExperimentConfig, *, method: str = "greedy", trials: int | None = None,
                   seed: int | None = None, include_timings: bool = True) -> pd.DataFrame:
    """The rows of ``optimize.csv`` for ``config`` (see :func:`optimize`)."""
    return optimize(config, method=method, trials=trials, seed=seed, include_timings=include_timings).table
