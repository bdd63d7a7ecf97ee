"""The best flat gradient code: the tolerance ``s`` of flat GC over all workers."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from hgc.analytic import Evaluation, Evaluator, NotAnalyticError
from hgc.optimizer.tolerances import spread_values
from hgc.progress import ProgressFactory, chunk_progress
from hgc.rng import Stream
from hgc.schemes import Strategy
from hgc.schemes.flat_gc import FlatGC
from hgc.simulation import run_strategies
from hgc.timing import TimingModel

FLAT = FlatGC()
FLAT_ALL_S_LIMIT = 64
"""Flat GC tries every ``s`` up to this many workers, else a spread of values refined locally."""
FLAT_ANALYTIC_OPS = 400_000
"""Largest order-statistic cost (slots x states) for which flat GC is scored analytically."""
PILOT_WORK = 4e7
"""Worker delays a Monte Carlo pilot may draw in total (trials x workers x candidates)."""


@dataclass(frozen=True)
class FlatChoice:
    """The best flat GC strategy: ``evaluation`` is analytic when the relay queue allows it (``method``
    ``analytic``), else ``None`` and ``s`` was chosen by a Monte Carlo pilot (``method`` ``pilot``)."""

    strategy: Strategy
    evaluation: Evaluation | None
    method: str
    candidates: int
    seconds: float
    note: str = ""


def flat_analytic(evaluator: Evaluator, model: TimingModel) -> bool:
    """Whether flat GC on ``model`` can (and should, cost-wise) be scored analytically."""
    topo = model.topology
    try:
        cost = evaluator.order_statistic_cost(FLAT.strategy(topo, s=topo.n_workers // 2))
    except NotAnalyticError:
        return False
    return cost <= FLAT_ANALYTIC_OPS


def best_flat_gc(model: TimingModel, *, seed: int, evaluator: Evaluator | None = None,
                 progress: ProgressFactory | None = None) -> FlatChoice:
    """Flat gradient coding over all ``N`` workers with the best ``s``.

    Analytic when worker messages reach the master independently (``per_vector = 0``, constant edge
    delays, no edge failures) and the order statistic is cheap enough; otherwise (a FIFO relay queue)
    by a Monte Carlo pilot on ``Stream.PILOT`` (independent of the reported Monte Carlo run) comparing
    the candidates on common random numbers. Every ``s`` is tried for ``N <= FLAT_ALL_S_LIMIT``, else a
    spread of about 24 values and then the neighbours of the best.
    """
    started = time.perf_counter()
    topo = model.topology
    big_n = topo.n_workers
    evaluator = evaluator or Evaluator(model)
    analytic = flat_analytic(evaluator, model)
    tried: dict[int, float] = {}
    pilot_trials = 0

    def score(values: Iterable[int]) -> None:
        nonlocal pilot_trials
        todo = [s for s in dict.fromkeys(values) if 0 <= s < big_n and s not in tried]
        if not todo:
            return
        strategies = [FLAT.strategy(topo, s=s) for s in todo]
        if analytic:
            means, decoded = evaluator.expected_times(strategies)
            with np.errstate(divide="ignore", invalid="ignore"):
                values_ = np.where(decoded > 0, means / decoded, np.inf)
        else:
            pilot_trials = int(np.clip(PILOT_WORK / (big_n * len(todo)), 2_000, 20_000))
            run = run_strategies(model, strategies, seed=seed, trials=pilot_trials, stream_id=Stream.PILOT,
                                 progress=chunk_progress(progress, "flat GC pilot", pilot_trials))
            values_ = np.array([st.effective_time if st.decoded else np.inf for st in run.statistics])
        tried.update(zip(todo, values_.tolist()))

    if big_n <= FLAT_ALL_S_LIMIT:
        score(range(big_n))
    else:
        score(spread_values(list(range(big_n)), 24))
        best = min(tried, key=lambda s: tried[s])
        neighbours = sorted(tried)
        index = neighbours.index(best)
        low = neighbours[index - 1] if index > 0 else 0
        high = neighbours[index + 1] if index + 1 < len(neighbours) else big_n - 1
        score(np.unique(np.linspace(low, high, 12).round().astype(int)).tolist())
    best = min(tried, key=lambda s: (tried[s], s))
    strategy = FLAT.strategy(topo, s=best)
    if analytic:
        evaluation = evaluator.evaluate(strategy)
        note = f"s by analytic E[T] over {len(tried)} values"
    else:
        evaluation = None
        note = f"s by a {pilot_trials}-trial Monte Carlo pilot over {len(tried)} values (relay queue: no analytic form)"
    return FlatChoice(strategy, evaluation, "analytic" if analytic else "pilot", len(tried),
                      time.perf_counter() - started, note)
