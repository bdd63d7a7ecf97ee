"""Ranking workers by speed and stochastic dominance between them (used by the JNCSS searches)."""

from __future__ import annotations

import math

import numpy as np

from hgc.analytic import Evaluator
from hgc.distributions import Distribution
from hgc.timing import TimingModel

SCORE_LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)
DOMINANCE_LEVELS = np.concatenate([np.logspace(-9, -1, 17), np.linspace(0.1, 0.9, 81)[1:-1],
                                   1.0 - np.logspace(-1, -9, 17)])


def speed_scores(evaluator: Evaluator, load: float, message: float = 1.0) -> np.ndarray:
    """Dominance-consistent slowness score of every worker at ``load`` sending messages of length
    ``message`` (a fraction of a gradient) over its link (seconds, summed over levels)."""
    scores = len(SCORE_LEVELS) * message * evaluator.model.worker_per_vector_array
    for q in SCORE_LEVELS:
        compute, others = evaluator.worker_quantiles(q)
        scores = scores + load * compute + others
    return scores


def worker_ranking(model: TimingModel, load: float | None = None, evaluator: Evaluator | None = None,
                   message: float = 1.0) -> tuple[tuple[int, ...], ...]:
    """Per edge, worker positions from fastest to slowest by the sum of their delay quantiles at levels
    0.1, 0.3, ..., 0.9 at ``load`` (default ``1/N``) with worker messages of length ``message``; ties keep
    position order."""
    evaluator = evaluator or Evaluator(model)
    topo = model.topology
    scores = speed_scores(evaluator, load if load is not None else 1.0 / topo.n_workers, message)
    out = []
    for i in range(topo.n_edges):
        first = int(topo.offsets[i])
        out.append(tuple(sorted(range(topo.workers[i]), key=lambda p: (scores[first + p], p))))
    return tuple(out)


def dominated(a: Distribution, b: Distribution, cache: dict) -> bool:
    """``a <=_st b`` (every quantile of ``a`` at most that of ``b``), checked on a quantile grid."""
    if a is b or a == b:
        return True
    key = (id(a), id(b))
    if key not in cache:
        qa = np.asarray(a.ppf(DOMINANCE_LEVELS), dtype=float)
        qb = np.asarray(b.ppf(DOMINANCE_LEVELS), dtype=float)
        cache[key] = bool(np.all(qa <= qb + 1e-12 * (1.0 + np.abs(qb))))
    return cache[key]


def down_sets(model: TimingModel, edge: int, cache: dict, limit: float = math.inf) -> list[tuple[int, ...]]:
    """Non-empty worker sets of ``edge`` closed under 'stochastically faster in every component' (compute,
    overhead, uplink latency, and per-vector link time; the enumeration stops once more than ``limit`` are
    found)."""
    topo = model.topology
    m, first = topo.workers[edge], int(topo.offsets[edge])
    parts = [(model.worker_compute[first + p], model.worker_overhead[first + p], model.worker_uplink[first + p])
             for p in range(m)]
    link = model.worker_per_vector_array[first: first + m]

    def faster(a: int, b: int) -> bool:  # a strictly precedes b
        forward = link[a] <= link[b] and all(dominated(x, y, cache) for x, y in zip(parts[a], parts[b]))
        if not forward:
            return False
        backward = link[b] <= link[a] and all(dominated(y, x, cache) for x, y in zip(parts[a], parts[b]))
        return not backward or a < b

    before = [[a for a in range(m) if a != b and faster(a, b)] for b in range(m)]
    # depth-first over a linear extension: a worker may join only after all that precede it
    order = sorted(range(m), key=lambda b: (len(before[b]), b))
    sets: list[tuple[int, ...]] = []

    def extend(position: int, chosen: frozenset[int]) -> None:
        if len(sets) > limit:
            return
        if position == m:
            if chosen:
                sets.append(tuple(sorted(chosen)))
            return
        worker = order[position]
        extend(position + 1, chosen)
        if all(a in chosen for a in before[worker]):
            extend(position + 1, chosen | {worker})

    extend(0, frozenset())
    return sets
