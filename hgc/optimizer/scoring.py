"""Scoring candidate strategies for the searches: memoised search-grid objectives, accurate refinement.

The objective of every search is ``E[T | decoded] / P(decoded)``: seconds per successful iteration
(plain ``E[T]`` when nodes do not fail). Candidates are scored on the analytic evaluator's fixed search
grids (:meth:`~hgc.analytic.Evaluator.expected_times`, batched); the best few are re-evaluated with the
accurate, error-controlled evaluator before a choice is returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from hgc.analytic import Evaluation, Evaluator
from hgc.errors import ConfigError
from hgc.schemes import Strategy, make_strategy
from hgc.timing import TimingModel

REFINE_TOP = 4
"""Candidates re-evaluated with the accurate evaluator at the end of a search."""


@dataclass(frozen=True)
class JNCSSResult:
    """The strategy JNCSS chose and how.

    ``expected_time`` is the accurate analytic ``E[T | decoded]`` (seconds); ``objective`` the minimised
    ``E[T | decoded] / P(decoded)``; ``seconds`` the optimizer's wall-clock run time; ``evaluations`` the
    number of candidates scored; ``space`` the size of the searched space (exhaustive) or ``None``.
    """

    strategy: Strategy
    expected_time: float
    decode_probability: float
    objective: float
    seconds: float
    method: str
    evaluations: int
    space: int | None = None
    evaluation: Evaluation | None = field(default=None, repr=False, compare=False)



def strategy_key(st: Strategy) -> tuple[Any, ...]:
    """What identifies a candidate for memoisation."""
    return (st.kind, st.edges, st.workers, st.params, st.worker_loads)


class Scorer:
    """Search-grid objective values with memoisation (a selection keeps its first score)."""

    def __init__(self, model: TimingModel, evaluator: Evaluator | None = None, points: int | None = None):
        self.model = model
        self.evaluator = evaluator or Evaluator(model)
        big_n = model.topology.n_workers
        self.points = points or (257 if big_n > 400 else 1025)
        self.memo: dict[tuple[Any, ...], float] = {}
        self.evaluations = 0

    def __call__(self, strategies: Sequence[Strategy]) -> np.ndarray:
        keys = [strategy_key(st) for st in strategies]
        todo = {k: st for k, st in zip(keys, strategies) if k not in self.memo}
        if todo:
            means, decoded = self.evaluator.expected_times(list(todo.values()), points=self.points)
            self.evaluations += len(todo)
            with np.errstate(divide="ignore", invalid="ignore"):
                objective = np.where(decoded > 0, means / decoded, np.inf)
            for k, value in zip(todo, objective):
                self.memo[k] = float(value) if np.isfinite(value) else math.inf
        return np.array([self.memo[k] for k in keys])

    def accurate(self, strategy: Strategy) -> Evaluation:
        return self.evaluator.evaluate(strategy)


def objective(evaluation: Evaluation) -> float:
    """Seconds per successful iteration of an evaluated strategy (``inf`` if it never decodes)."""
    return evaluation.effective_time if evaluation.decode_probability > 0 else math.inf


def refine(scorer: Scorer, candidates: Sequence[Strategy], scores: np.ndarray, top: int = REFINE_TOP
           ) -> tuple[Strategy, Evaluation]:
    """Re-evaluate the ``top`` best candidates accurately; the best by accurate objective."""
    order = np.argsort(scores, kind="stable")[:top]
    best: tuple[Strategy, Evaluation] | None = None
    for i in order:
        if not np.isfinite(scores[i]):
            continue
        evaluation = scorer.accurate(candidates[i])
        if best is None or objective(evaluation) < objective(best[1]):
            best = (candidates[i], evaluation)
    if best is None:
        raise ConfigError("no candidate strategy ever decodes (failure probabilities too high?)", "timing.failures")
    return best


def final(model: TimingModel, st: Strategy) -> Strategy:
    """``st`` rebuilt by its scheme from the codes (the load the codes really give), checked against the
    load the search used."""
    rebuilt = make_strategy(st.kind, model.topology, edges=st.edges, workers=st.workers, **dict(st.params))
    if abs(rebuilt.load - st.load) > 1e-12 * max(1.0, st.load):
        raise AssertionError(f"load mismatch: searched {st.load}, codes say {rebuilt.load}")
    return rebuilt
