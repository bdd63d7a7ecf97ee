"""The best flat gradient code: the tolerance ``s`` of flat GC over all workers."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from hgc.analytic import Evaluation, Evaluator, NotAnalyticError
from hgc.errors import ConfigError
from hgc.optimizer.tolerances import links_free, spread_values
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


REDUCTIONS = (1, 2, 3, 4)
"""Message reductions tried when ``reduction`` is chosen automatically."""


def flat_reductions(model: TimingModel, reduction: int | None = None) -> tuple[int, ...]:
    """The reductions ``ℓ`` a flat search tries: ``reduction`` if given, else :data:`REDUCTIONS` — only 1
    when no link charges for length (``per_vector`` 0 everywhere): with ``s`` fixed, ``ℓ = 1`` keeps the
    master's rank and the decodable patterns and lowers the load, so ``T`` is pointwise no larger."""
    if reduction is not None:
        return (reduction,)
    return (1,) if all(links_free(model)) else REDUCTIONS


def best_flat_gc(model: TimingModel, *, seed: int, evaluator: Evaluator | None = None,
                 progress: ProgressFactory | None = None, s: int | None = None,
                 reduction: int | None = 1) -> FlatChoice:
    """Flat gradient coding over all ``N`` workers with the best ``s`` (and message reduction ``ℓ`` when
    ``reduction`` is ``None``; a given ``s`` or ``reduction`` is kept).

    Analytic when worker messages reach the master independently (``per_vector = 0``, constant edge
    delays, no edge failures) and the order statistic is cheap enough; otherwise (a FIFO relay queue)
    by a Monte Carlo pilot on ``Stream.PILOT`` (independent of the reported Monte Carlo run) comparing
    the candidates on common random numbers. Every ``s`` is tried for ``N <= FLAT_ALL_S_LIMIT``, else a
    spread of about 24 values and then the neighbours of the best; reductions from :func:`flat_reductions`,
    scored one reduction at a time (the full-length candidates first, on the pilot they always had).
    """
    started = time.perf_counter()
    topo = model.topology
    big_n = topo.n_workers
    evaluator = evaluator or Evaluator(model)
    analytic = flat_analytic(evaluator, model)
    tried: dict[tuple[int, int], float] = {}
    pilot_trials = 0

    def score(pairs: Iterable[tuple[int, int]]) -> None:
        nonlocal pilot_trials
        todo = [p for p in dict.fromkeys(pairs) if 0 <= p[0] and p[0] + p[1] <= big_n and p not in tried]
        if not todo:
            return
        strategies = [FLAT.strategy(topo, s=a, reduction=b) for a, b in todo]
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

    reductions = flat_reductions(model, reduction)
    if s is not None:
        for b in reductions:
            score([(s, b)])
    elif big_n <= FLAT_ALL_S_LIMIT:
        for b in reductions:
            score((a, b) for a in range(big_n))
    else:
        for b in reductions:
            values = list(range(big_n - b + 1))
            score((a, b) for a in spread_values(values, 24))
            mine = {a: v for (a, c), v in tried.items() if c == b}
            best_s = min(mine, key=lambda a: mine[a])
            neighbours = sorted(mine)
            index = neighbours.index(best_s)
            low = neighbours[index - 1] if index > 0 else 0
            high = neighbours[index + 1] if index + 1 < len(neighbours) else values[-1]
            score((int(a), b) for a in np.unique(np.linspace(low, high, 12).round().astype(int)))
    if not tried:
        raise ConfigError(f"no admissible flat code with s={s} and reduction={reduction} on {big_n} workers",
                          "schemes")
    best_s, best_reduction = min(tried, key=lambda p: (tried[p], p[0], p[1]))
    strategy = FLAT.strategy(topo, s=best_s, reduction=best_reduction)
    searched = len(reductions) > 1
    what = "s and the reduction" if searched and s is None else ("the reduction" if s is not None else "s")
    if analytic:
        evaluation = evaluator.evaluate(strategy)
        note = f"{what} by analytic E[T] over {len(tried)} values"
    else:
        evaluation = None
        note = (f"{what} by a {pilot_trials}-trial Monte Carlo pilot over {len(tried)} values (relay queue: no "
                "analytic form)")
    return FlatChoice(strategy, evaluation, "analytic" if analytic else "pilot", len(tried),
                      time.perf_counter() - started, note)
