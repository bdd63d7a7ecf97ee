"""Joint node and coding-scheme selection (JNCSS, SPEC §5) and the ``hgc optimize`` table.

JNCSS chooses the participating edges, the participating workers of each, and one pair of tolerances
``(s_e, s_w)`` to minimise the expected iteration time of hierarchical gradient coding. Every worker then
carries the load of the bound of SPEC §1 *on the participating counts*,
``ℓ = (s_e+1)(s_w+1) / Σ_{participating} m'_i``, so dropping a slow node speeds up the order statistics
but raises everybody's load. Candidates are scored with the analytic evaluator (:mod:`hgc.analytic`);
the objective is ``E[T | decoded] / P(decoded)`` (seconds per successful iteration; plain ``E[T]`` when
nodes do not fail).

Two methods:

**Exhaustive** (:func:`exhaustive_jncss`, ground truth for small systems). Enumerates every non-empty
set of edges, for each edge every non-empty set of its workers that is *closed under stochastic
dominance* (if a worker is in, every worker whose compute, overhead and uplink delays are all
stochastically smaller is in too; among identical workers, the lower positions), and every admissible
``(s_e, s_w)``. The restriction loses nothing: with the counts and tolerances fixed, swapping a worker
for one that is stochastically faster in every component can only make each order statistic (hence
``T``) stochastically smaller, by a coupling argument. All candidates are scored on search grids
(batched per load); the best few are re-evaluated with the accurate, error-controlled evaluator.

**Greedy** (:func:`greedy_jncss`, scales to thousands of workers). Steps:

1. *Rank* the workers of every edge by a dominance-consistent speed score (the sum of their component
   quantiles at levels 0.1, 0.3, ..., 0.9 at the best all-nodes load); from here on an edge that keeps
   ``c`` workers keeps its ``c`` best-ranked ones, so a selection is a vector of counts
   ``c_i ∈ {0, 1..m_i}`` (0 = edge dropped) plus ``(s_e, s_w)``.
2. *Starting points*, each with its best tolerances (:func:`_tolerance_search`: every admissible
   ``(s_e, s_w)`` when there are at most ``ALL_PAIRS_LIMIT``, else a coarse lattice of pairs, refined by
   a pattern search of ±1/±2 steps for the all-nodes family): all nodes (the two best pairs); without
   the smallest edges (whose size caps ``s_w`` and ``s_e``); every edge capped at a common number of
   its best workers; the edges with at least ``c`` workers, each with its ``c`` best; the ``j`` best
   edges. The best start of each family (topped up to ``START_RUNS`` starts) goes to step 3.
3. *Local search* (steepest descent) from each start. Every round scores, in batched calls, the moves:
   drop the lowest-ranked worker of any edge, or add back its next one; drop the ``r`` globally slowest
   participating workers, or add back the ``r`` fastest left-out ones, for ``r = 1, 2, 4, ...``; cap
   every edge at a common count; drop one of the ``EDGE_MOVES`` slowest edges (keeping ``s_e``, or with
   ``s_e - 1``), or the ``r`` slowest together for ``r = 2, 4, ...`` (``s_e`` kept or scaled); re-admit
   one of the ``EDGE_MOVES`` best dropped edges with a spread of worker counts
   (keeping ``s_e``, or with ``s_e + 1``); change ``s_e`` or ``s_w`` by ±1 (and both, in opposite
   directions); change ``s_w`` by ±1 together with every edge's count (which keeps each ``k_i``). When
   several single-worker drops improve, the best ``r`` of them together are tried for
   ``r = 2, 4, 8, ...``. The ``RETUNE_SETS`` most promising new node sets (on small systems also every
   edge drop/re-admission) are re-scored with re-chosen tolerances (all pairs up to
   ``RETUNE_ALL_PAIRS``, else a ±1 window). The best move is taken if it improves the objective by
   more than ``IMPROVEMENT``; a run never revisits a selection, so it terminates.
4. The best final selection and the best all-nodes strategy are re-evaluated with the accurate,
   error-controlled evaluator and the better one is returned.

Complexity. One evaluation costs ``O(G (Σ_i m'_i (s_w+1) + n' (s_e+1)))`` element operations on a grid
of ``G`` points (identical workers cost less: they enter as one binomial term). Candidates that share a
load share one grid and their common edge order statistics are computed once, so a round of step 3
(``O(n + log N)`` candidates) costs about as many full evaluations as it has distinct loads:
``O(1 + EDGE_MOVES · 4 + log2 N)`` plus the re-tuned sets (``RETUNE_SETS × 9`` on large systems).
Step 2 costs ``O(5 × min(n m_min, 50))`` evaluations; the number of rounds is bounded by the number of
distinct selections (in practice 3-15 per start). Memory is ``O(G n m_max)`` per batch, in blocks.

:func:`optimize_table` builds the rows of ``optimize.csv``: uncoded, the best flat GC, the best HGC on all
nodes, JNCSS greedy and (when feasible) JNCSS exhaustive, each with an analytic ``E[T]`` and a Monte Carlo
mean and standard error of the same strategy on common random numbers.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import pandas as pd

from hgc.analytic import Evaluation, Evaluator, NotAnalyticError
from hgc.codes import admissible_hgc, hgc_reachable
from hgc.distributions import Distribution
from hgc.errors import ConfigError
from hgc.rng import Stream
from hgc.schemes import Strategy, all_nodes, make_strategy
from hgc.simulation import run_strategies
from hgc.timing import TimingModel

if TYPE_CHECKING:
    from hgc.config import ExperimentConfig

__all__ = [
    "FlatChoice", "JNCSSResult", "METHODS", "OPTIMIZE_COLUMNS", "OptimizeResult", "best_flat_gc",
    "best_hgc_tolerances", "exhaustive_jncss", "exhaustive_size", "greedy_jncss", "optimize", "optimize_table",
    "random_small_system", "random_system", "select_jncss", "worker_ranking",
]

METHODS = ("greedy", "exhaustive")
ALL_PAIRS_LIMIT = 48
"""Step 2 of the greedy enumerates all admissible (s_e, s_w) up to this many pairs."""
EDGE_MOVES = 3
"""Edges considered for dropping (the slowest) and for re-admission (the fastest dropped) per round."""
IMPROVEMENT = 2e-4
"""Relative improvement of the objective a greedy move must bring (above search-grid noise)."""
RETUNE_SETS = 4
"""Node-set moves per round whose tolerances are re-chosen (see ``_Greedy.retune``)."""
RETUNE_ALL_PAIRS = 16
"""Re-choosing tolerances tries every admissible pair up to this many, else a ±1 window."""
START_RUNS = 5
"""The greedy's local search runs from the best start of each family, topped up to this many."""
REFINE_TOP = 4
"""Candidates re-evaluated with the accurate evaluator at the end of a search."""
EXHAUSTIVE_AUTO_LIMIT = 20_000
"""``hgc optimize`` adds an exhaustive row when the search space has at most this many candidates."""
EXHAUSTIVE_HARD_LIMIT = 2_000_000
"""Largest search space ``--method exhaustive`` accepts."""
SCORE_LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)
DOMINANCE_LEVELS = np.concatenate([np.logspace(-9, -1, 17), np.linspace(0.1, 0.9, 81)[1:-1],
                                   1.0 - np.logspace(-1, -9, 17)])


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


# ----------------------------------------------------------------------------------------------------
# Scoring candidates

def _hgc(edges: Sequence[int], workers: Sequence[Sequence[int]], s_e: int, s_w: int) -> Strategy:
    """An ``hgc`` strategy with the load of the bound on the participating counts (see
    :func:`hgc.codes.worker_load`; the strategies returned to callers are rebuilt with it)."""
    total = sum(len(w) for w in workers)
    return Strategy("hgc", tuple(edges), tuple(tuple(w) for w in workers), (s_e + 1) * (s_w + 1) / total,
                    s_e=s_e, s_w=s_w)


def _key(st: Strategy) -> tuple:
    return (st.kind, st.edges, st.workers, st.s, st.s_e, st.s_w)


class _Scorer:
    """Search-grid objective values with memoisation (a selection keeps its first score)."""

    def __init__(self, model: TimingModel, evaluator: Evaluator | None = None, points: int | None = None):
        self.model = model
        self.evaluator = evaluator or Evaluator(model)
        big_n = model.topology.n_workers
        self.points = points or (257 if big_n > 400 else 1025)
        self.memo: dict[tuple, float] = {}
        self.evaluations = 0

    def __call__(self, strategies: Sequence[Strategy]) -> np.ndarray:
        keys = [_key(st) for st in strategies]
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


def _objective(evaluation: Evaluation) -> float:
    return evaluation.effective_time if evaluation.decode_probability > 0 else math.inf


def _refine(scorer: _Scorer, candidates: Sequence[Strategy], scores: np.ndarray, top: int = REFINE_TOP
            ) -> tuple[Strategy, Evaluation]:
    """Re-evaluate the ``top`` best candidates accurately; the best by accurate objective."""
    order = np.argsort(scores, kind="stable")[:top]
    best: tuple[Strategy, Evaluation] | None = None
    for i in order:
        if not np.isfinite(scores[i]):
            continue
        evaluation = scorer.accurate(candidates[i])
        if best is None or _objective(evaluation) < _objective(best[1]):
            best = (candidates[i], evaluation)
    if best is None:
        raise ConfigError("no candidate strategy ever decodes (failure probabilities too high?)", "timing.failures")
    return best


def _final(model: TimingModel, st: Strategy) -> Strategy:
    """``st`` rebuilt by :func:`hgc.schemes.make_strategy` (load from :mod:`hgc.codes`)."""
    final = make_strategy(st.kind, model.topology, s=st.s, s_e=st.s_e, s_w=st.s_w, edges=st.edges,
                          workers=st.workers)
    if abs(final.load - st.load) > 1e-12 * max(1.0, st.load):
        raise AssertionError(f"load mismatch: searched {st.load}, codes say {final.load}")
    return final


# ----------------------------------------------------------------------------------------------------
# Worker ranking and stochastic dominance

def _speed_scores(evaluator: Evaluator, load: float) -> np.ndarray:
    """Dominance-consistent slowness score of every worker at ``load`` (seconds, summed over levels)."""
    scores = np.zeros(len(evaluator.types))
    for q in SCORE_LEVELS:
        compute, others = evaluator._type_quantiles(q)
        scores += load * compute + others
    return scores[evaluator.worker_type]


def worker_ranking(model: TimingModel, load: float | None = None, evaluator: Evaluator | None = None
                   ) -> tuple[tuple[int, ...], ...]:
    """Per edge, worker positions from fastest to slowest by the sum of their delay quantiles at levels
    0.1, 0.3, ..., 0.9 at ``load`` (default ``1/N``); ties keep position order."""
    evaluator = evaluator or Evaluator(model)
    topo = model.topology
    scores = _speed_scores(evaluator, load if load is not None else 1.0 / topo.n_workers)
    out = []
    for i in range(topo.n_edges):
        first = int(topo.offsets[i])
        out.append(tuple(sorted(range(topo.workers[i]), key=lambda p: (scores[first + p], p))))
    return tuple(out)


def _dominated(a: Distribution, b: Distribution, cache: dict) -> bool:
    """``a <=_st b`` (every quantile of ``a`` at most that of ``b``), checked on a quantile grid."""
    if a is b or a == b:
        return True
    key = (id(a), id(b))
    if key not in cache:
        qa = np.asarray(a.ppf(DOMINANCE_LEVELS), dtype=float)
        qb = np.asarray(b.ppf(DOMINANCE_LEVELS), dtype=float)
        cache[key] = bool(np.all(qa <= qb + 1e-12 * (1.0 + np.abs(qb))))
    return cache[key]


def _down_sets(model: TimingModel, edge: int, cache: dict, limit: float = math.inf) -> list[tuple[int, ...]]:
    """Non-empty worker sets of ``edge`` closed under 'stochastically faster in every component' (the
    enumeration stops once more than ``limit`` are found)."""
    topo = model.topology
    m, first = topo.workers[edge], int(topo.offsets[edge])
    parts = [(model.worker_compute[first + p], model.worker_overhead[first + p], model.worker_uplink[first + p])
             for p in range(m)]

    def faster(a: int, b: int) -> bool:  # a strictly precedes b
        forward = all(_dominated(x, y, cache) for x, y in zip(parts[a], parts[b]))
        if not forward:
            return False
        backward = all(_dominated(y, x, cache) for x, y in zip(parts[a], parts[b]))
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


# ----------------------------------------------------------------------------------------------------
# Tolerances on a fixed node set

def _pairs(counts: Sequence[int]) -> list[tuple[int, int]]:
    """Admissible ``(s_e, s_w)`` for participating ``counts`` (:func:`hgc.codes.admissible_hgc`)."""
    return admissible_hgc(tuple(int(c) for c in counts))


def _tolerance_search(scorer: _Scorer, edges: Sequence[int], workers: Sequence[Sequence[int]],
                      fixed_e: int | None = None, fixed_w: int | None = None, keep: int = REFINE_TOP,
                      refine: bool = True) -> list[tuple[Strategy, float]]:
    """The best ``(s_e, s_w)`` on one node set by search-grid score: all admissible pairs when they are
    few, else a coarse lattice, then (if ``refine``) a pattern search. Returns the ``keep`` best
    (strategy, score)."""
    counts = [len(w) for w in workers]
    pairs = [(a, b) for a, b in _pairs(counts)
             if (fixed_e is None or a == fixed_e) and (fixed_w is None or b == fixed_w)]
    if not pairs:
        return []
    admissible = set(pairs)
    scored: dict[tuple[int, int], float] = {}

    def score(batch: Iterable[tuple[int, int]]) -> None:
        batch = [p for p in dict.fromkeys(batch) if p in admissible and p not in scored]
        if batch:
            values = scorer([_hgc(edges, workers, a, b) for a, b in batch])
            scored.update(zip(batch, values.tolist()))

    if len(pairs) <= ALL_PAIRS_LIMIT:
        score(pairs)
    else:
        e_values = sorted({a for a, _ in pairs})
        w_values = sorted({b for _, b in pairs})
        coarse_e = _spread_values(e_values, 7)
        coarse_w = _spread_values(w_values, 6)
        score((a, b) for a in coarse_e for b in coarse_w)
        if not any(np.isfinite(v) for v in scored.values()):
            score(pairs[:: max(1, len(pairs) // 40)])
        seen_centres: set[tuple[int, int]] = set()
        while refine:
            ranked = sorted(scored, key=lambda p: scored[p])[:2]
            centres = [p for p in ranked if p not in seen_centres]
            if not centres:
                break
            for a, b in centres:
                seen_centres.add((a, b))
                score((a + da, b + db) for da in (-2, -1, 0, 1, 2) for db in (-1, 0, 1)
                      if abs(da) + abs(db) > 0)
    best = sorted(scored, key=lambda p: scored[p])[:keep]
    return [(_hgc(edges, workers, a, b), scored[(a, b)]) for a, b in best]


def _doubling(limit: int) -> list[int]:
    """1, 2, 4, ... up to ``limit``."""
    out, r = [], 1
    while r <= limit:
        out.append(r)
        r *= 2
    return out


def _spread_values(values: Sequence[int], count: int) -> list[int]:
    """About ``count`` values spread over ``values`` (denser near the small end), always with the ends."""
    if len(values) <= count:
        return list(values)
    picks = np.unique(np.round(np.geomspace(1, len(values), count)).astype(int) - 1)
    return sorted({values[0], values[-1], *(values[i] for i in picks)})


def best_hgc_tolerances(model: TimingModel, s_e: int | None = None, s_w: int | None = None, *,
                        evaluator: Evaluator | None = None) -> Strategy:
    """The ``hgc`` strategy on all nodes with the best tolerances (``None`` = choose, an int = fixed), by
    the analytic evaluator: search-grid scores, then the best few re-evaluated accurately.

    Raises :class:`~hgc.errors.ConfigError` (key ``schemes``) when no admissible pair exists.
    """
    return _best_all_nodes(model, s_e, s_w, _Scorer(model, evaluator))[0]


def _best_all_nodes(model: TimingModel, s_e: int | None, s_w: int | None, scorer: _Scorer
                    ) -> tuple[Strategy, Evaluation, list[tuple[Strategy, float]]]:
    edges, workers = all_nodes(model.topology)
    ranked = _tolerance_search(scorer, edges, workers, s_e, s_w)
    if not ranked:
        raise ConfigError(f"no admissible (s_e, s_w) with s_e={'auto' if s_e is None else s_e}, "
                          f"s_w={'auto' if s_w is None else s_w} on edges of sizes {list(model.topology.workers)}",
                          "schemes")
    top = REFINE_TOP if model.topology.n_workers <= 400 else 2     # accurate evaluations are costly there
    strategy, evaluation = _refine(scorer, [r[0] for r in ranked], np.array([r[1] for r in ranked]), top)
    return _final(model, strategy), evaluation, ranked


# ----------------------------------------------------------------------------------------------------
# Greedy JNCSS

@dataclass(frozen=True)
class _State:
    counts: tuple[int, ...]   # participating workers per edge (prefix of the ranking), 0 = dropped
    s_e: int
    s_w: int


class _Greedy:
    """Step 3 of the greedy (see the module docstring)."""

    def __init__(self, model: TimingModel, scorer: _Scorer, ranking: tuple[tuple[int, ...], ...]):
        self.model = model
        self.scorer = scorer
        self.ranking = ranking
        self.sizes = model.topology.workers

    def strategy(self, state: _State) -> Strategy | None:
        counts = [c for c in state.counts if c > 0]
        if not counts or not hgc_reachable(counts, state.s_e, state.s_w):
            return None
        edges = [i for i, c in enumerate(state.counts) if c > 0]
        workers = [tuple(sorted(self.ranking[i][: state.counts[i]])) for i in edges]
        return _hgc(edges, workers, state.s_e, state.s_w)

    def scores(self, state: _State) -> tuple[np.ndarray, np.ndarray]:
        """Slowness scores at ``state``'s load: ``(per worker incl. its edge's link, per edge)``; an edge's
        score is its ``k``-th best worker's plus its link's (quantile sums, seconds)."""
        st = self.strategy(state)
        evaluator = self.scorer.evaluator
        topo = self.model.topology
        worker = _speed_scores(evaluator, st.load if st is not None else 1.0 / topo.n_workers)
        link = sum(evaluator.edge_quantile_sum(q) for q in SCORE_LEVELS)[evaluator.edge_type]
        edge = np.zeros(len(self.sizes))
        for i, m in enumerate(self.sizes):
            c = state.counts[i] if state.counts[i] > 0 else m
            first = int(topo.offsets[i])
            values = sorted(worker[first + p] for p in self.ranking[i][:c])
            edge[i] = values[max(1, c - state.s_w) - 1] + link[i]
        return worker + link[topo.worker_edge], edge

    def moves(self, state: _State) -> list[_State]:
        counts, s_e, s_w = list(state.counts), state.s_e, state.s_w
        out: list[_State] = []
        topo = self.model.topology

        def add(new_counts: Sequence[int], a: int, b: int) -> None:
            if a >= 0 and b >= 0:
                out.append(_State(tuple(new_counts), a, b))

        for i, c in enumerate(counts):            # one worker fewer / more in edge i
            if c > 1:
                add(counts[:i] + [c - 1] + counts[i + 1:], s_e, s_w)
            if 0 < c < self.sizes[i]:
                add(counts[:i] + [c + 1] + counts[i + 1:], s_e, s_w)
        worker_scores, edge_scores = self.scores(state)
        # the r globally slowest participating workers out / the r fastest left-out workers back in
        last = [(worker_scores[topo.offsets[i] + self.ranking[i][c - 1]], i) for i, c in enumerate(counts) if c > 0]
        for r in _doubling(sum(counts)):
            dropped, heap = list(counts), sorted(last, reverse=True)
            taken = 0
            while heap and taken < r:
                _, i = heap.pop(0)
                if dropped[i] - 1 >= s_w + 1:
                    dropped[i] -= 1
                    taken += 1
                    p = self.ranking[i][dropped[i] - 1]
                    heap.append((worker_scores[topo.offsets[i] + p], i))
                    heap.sort(reverse=True)
            if taken == r:
                add(dropped, s_e, s_w)
            else:
                break
        left_out = sorted((worker_scores[topo.offsets[i] + self.ranking[i][c]], i)
                          for i, c in enumerate(counts) if 0 < c < self.sizes[i])
        for r in _doubling(sum(self.sizes) - sum(counts)):
            grown, heap, taken = list(counts), list(left_out), 0
            while heap and taken < r:
                _, i = heap.pop(0)
                grown[i] += 1
                taken += 1
                if grown[i] < self.sizes[i]:
                    heap.append((worker_scores[topo.offsets[i] + self.ranking[i][grown[i]]], i))
                    heap.sort()
            if taken == r:
                add(grown, s_e, s_w)
            else:
                break
        present = [i for i, c in enumerate(counts) if c > 0]
        absent = [i for i, c in enumerate(counts) if c == 0]
        slowest = sorted(present, key=lambda i: -edge_scores[i])
        for i in slowest[:EDGE_MOVES]:
            dropped = counts[:i] + [0] + counts[i + 1:]
            add(dropped, s_e, s_w)
            add(dropped, s_e - 1, s_w)
        for r in _doubling(len(present) - 1)[1:]:   # the r slowest edges at once (s_e kept or scaled)
            dropped = [0 if i in set(slowest[:r]) else c for i, c in enumerate(counts)]
            add(dropped, s_e, s_w)
            add(dropped, round(s_e * (len(present) - r) / len(present)), s_w)
        for i in sorted(absent, key=lambda i: edge_scores[i])[:EDGE_MOVES]:
            for c in _spread_values(list(range(s_w + 1, self.sizes[i] + 1)), 4):
                back = counts[:i] + [c] + counts[i + 1:]
                add(back, s_e, s_w)
                add(back, s_e + 1, s_w)
        top = max(counts)
        for cap in _spread_values(list(range(s_w + 1, top)), 3)[::-1]:   # every edge capped at `cap` workers
            add([min(c, cap) for c in counts], s_e, s_w)
        for da, db in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, -1), (-1, 1)):
            add(counts, s_e + da, s_w + db)
        for db in (1, -1):                        # s_w with every edge's count: keeps each k_i
            shifted = [c + db if c > 0 else 0 for c in counts]
            if all(c == 0 or 1 <= c <= m for c, m in zip(shifted, self.sizes)):
                add(shifted, s_e, s_w + db)
        return out

    def run(self, start: _State, start_score: float) -> tuple[_State, float]:
        """Steepest-descent local search from ``start`` (see step 3 of the module docstring)."""
        current, current_score = start, start_score
        visited = {start}
        while True:
            candidates = [s for s in dict.fromkeys(self.moves(current)) if s not in visited]
            options = self.score_states(candidates)
            options += self.line_search(current, current_score, options, visited)
            options += self.retune(current, options, visited)
            visited.update(s for s, _ in options)
            if not options:
                break
            best_state, best_score = min(options, key=lambda o: o[1])
            if not best_score < current_score * (1.0 - IMPROVEMENT):
                break
            current, current_score = best_state, best_score
        return current, current_score

    def score_states(self, states: Sequence[_State]) -> list[tuple[_State, float]]:
        valid = [(s, st) for s in states if (st := self.strategy(s)) is not None]
        if not valid:
            return []
        scores = self.scorer([st for _, st in valid])
        return list(zip([s for s, _ in valid], scores.tolist()))

    def retune(self, current: _State, options: list[tuple[_State, float]], visited: set[_State]
               ) -> list[tuple[_State, float]]:
        """Node-set moves with re-chosen tolerances: the ``RETUNE_SETS`` most promising new node sets (on
        small systems also every move that drops or re-admits an edge) with all admissible ``(s_e, s_w)``
        when there are at most ``RETUNE_ALL_PAIRS``, else those within ±1 of the current pair."""
        small = len(_pairs([c for c in current.counts if c > 0])) <= RETUNE_ALL_PAIRS
        by_counts: dict[tuple[int, ...], float] = {}
        for s, value in options:
            if s.counts != current.counts:
                by_counts[s.counts] = min(value, by_counts.get(s.counts, math.inf))
        ranked = sorted(by_counts, key=lambda c: by_counts[c])
        chosen = ranked[:RETUNE_SETS]
        if small:
            edges_now = sum(1 for c in current.counts if c > 0)
            chosen += [c for c in ranked if sum(1 for x in c if x > 0) != edges_now]
        states = []
        for counts in dict.fromkeys(chosen):
            pairs = _pairs([c for c in counts if c > 0])
            if len(pairs) > RETUNE_ALL_PAIRS:
                pairs = [(a, b) for a, b in pairs if abs(a - current.s_e) <= 1 and abs(b - current.s_w) <= 1]
            states += [_State(counts, a, b) for a, b in pairs if _State(counts, a, b) not in visited]
        return self.score_states(list(dict.fromkeys(states)))

    def line_search(self, state: _State, score: float, options: list[tuple[_State, float]],
                    visited: set[_State]) -> list[tuple[_State, float]]:
        """Several single-worker drops that each improve, tried together (best r for r = 2, 4, 8, ...)."""
        drops = []
        for s, value in options:
            if (s.s_e, s.s_w) == (state.s_e, state.s_w) and value < score * (1.0 - IMPROVEMENT):
                diff = [i for i, (a, b) in enumerate(zip(s.counts, state.counts)) if a != b]
                if len(diff) == 1 and s.counts[diff[0]] == state.counts[diff[0]] - 1 and s.counts[diff[0]] > 0:
                    drops.append((value, diff[0]))
        drops.sort()
        out_states = []
        r = 2
        while r <= len(drops):
            counts = list(state.counts)
            for _, i in drops[:r]:
                counts[i] -= 1
            new = _State(tuple(counts), state.s_e, state.s_w)
            if new not in visited:
                out_states.append(new)
            r *= 2
        return self.score_states(out_states)


def greedy_jncss(model: TimingModel, *, evaluator: Evaluator | None = None) -> JNCSSResult:
    """JNCSS by the greedy local search of the module docstring (scales to thousands of workers)."""
    started = time.perf_counter()
    scorer = _Scorer(model, evaluator)
    base, base_eval, ranked = _best_all_nodes(model, None, None, scorer)
    ranking = worker_ranking(model, base.load, scorer.evaluator)
    greedy = _Greedy(model, scorer, ranking)
    sizes = model.topology.workers
    families: list[list[tuple[_State, float]]] = [
        [(_State(tuple(sizes), int(st.s_e), int(st.s_w)), score) for st, score in ranked[:2]]]
    # other families of starting node sets, each with its best tolerances (coarse search): without the
    # smallest edges (their size caps s_w and s_e); every edge capped at a common number of its best
    # workers; the edges with at least c workers, each with its c best; the j best edges only
    all_state = families[0][0][0]
    edge_order = np.argsort(greedy.scores(all_state)[1], kind="stable")
    n = len(sizes)
    for family in (
            [tuple(m if m >= threshold else 0 for m in sizes) for threshold in sorted(set(sizes))[1:4]],
            [tuple(min(m, cap) for m in sizes) for cap in _spread_values(list(range(1, max(sizes))), 3)],
            [tuple(level if m >= level else 0 for m in sizes) for level in _spread_values(sorted(set(sizes)), 4)],
            [tuple(sizes[i] if i in set(edge_order[:j].tolist()) else 0 for i in range(n))
             for j in _spread_values(list(range(1, n)), 3)]):
        found = []
        for counts in dict.fromkeys(family):
            edges = [i for i, c in enumerate(counts) if c]
            workers = [tuple(sorted(ranking[i][: counts[i]])) for i in edges]
            found += [(_State(counts, int(st.s_e), int(st.s_w)), score)
                      for st, score in _tolerance_search(scorer, edges, workers, keep=1, refine=False)]
        if found:
            families.append(found)
    starts = {}
    for family in families:   # the best start of every family, then the best others overall
        state, score = min(family, key=lambda item: item[1])
        starts[state] = score
    for state, score in sorted((item for family in families for item in family), key=lambda item: item[1]):
        if len(starts) >= START_RUNS:
            break
        starts.setdefault(state, score)
    best_state, best_score = None, math.inf
    for start, start_score in starts.items():
        state, score = greedy.run(start, start_score)
        if score < best_score:
            best_state, best_score = state, score
    candidate = greedy.strategy(best_state)
    evaluation = scorer.accurate(candidate)
    chosen, chosen_eval = (candidate, evaluation) if _objective(evaluation) <= _objective(base_eval) \
        else (base, base_eval)
    return JNCSSResult(_final(model, chosen), chosen_eval.expected_time, chosen_eval.decode_probability,
                       _objective(chosen_eval), time.perf_counter() - started, "greedy", scorer.evaluations,
                       None, chosen_eval)


# ----------------------------------------------------------------------------------------------------
# Exhaustive JNCSS

def _edge_options(model: TimingModel, limit: float = math.inf) -> list[list[tuple[int, ...]]]:
    cache: dict = {}
    return [_down_sets(model, i, cache, limit) for i in range(model.topology.n_edges)]


def exhaustive_size(model: TimingModel, options: list[list[tuple[int, ...]]] | None = None,
                    cap: float = math.inf) -> int:
    """Number of candidates :func:`exhaustive_jncss` scores (a number above ``cap`` once it is known to
    exceed it: every choice of worker sets has at least one admissible tolerance pair)."""
    if options is None:
        options = _edge_options(model, cap)
    if math.prod(1 + len(o) for o in options) - 1 > cap:
        return int(min(math.prod(1 + len(o) for o in options) - 1, 10 ** 18))
    # combinations of per-edge options, bucketed by the participating counts (enough to count pairs)
    per_edge = [_size_counts(opts) for opts in options]
    total = 0
    for chosen in itertools.product(*[[(0, 1)] + list(p.items()) for p in per_edge]):
        counts = [c for c, _ in chosen if c > 0]
        if not counts:
            continue
        total += math.prod(k for c, k in chosen if c > 0) * len(_pairs(counts))
        if total > cap:
            return int(total)
    return int(total)


def _size_counts(options: Sequence[tuple[int, ...]]) -> dict[int, int]:
    """How many of ``options`` have each size."""
    out: dict[int, int] = {}
    for o in options:
        out[len(o)] = out.get(len(o), 0) + 1
    return out


def exhaustive_jncss(model: TimingModel, *, limit: int = EXHAUSTIVE_HARD_LIMIT,
                     evaluator: Evaluator | None = None) -> JNCSSResult:
    """JNCSS by exhaustive search (ground truth on small systems; see the module docstring).

    Raises :class:`~hgc.errors.ConfigError` (key ``--method``) when the search space exceeds ``limit``.
    """
    started = time.perf_counter()
    options = _edge_options(model, limit)
    size = exhaustive_size(model, options, cap=limit)
    if size > limit:
        raise ConfigError(f"exhaustive JNCSS would score more than {limit} candidates on this system "
                          f"(edges of sizes {list(model.topology.workers)}); use --method greedy", "--method")
    scorer = _Scorer(model, evaluator)
    candidates: list[Strategy] = []
    n = model.topology.n_edges
    for choice in itertools.product(*[[()] + opts for opts in options]):
        edges = [i for i in range(n) if choice[i]]
        if not edges:
            continue
        workers = [choice[i] for i in edges]
        candidates += [_hgc(edges, workers, a, b) for a, b in _pairs([len(w) for w in workers])]
    scores = np.concatenate([scorer(candidates[i: i + 50_000]) for i in range(0, len(candidates), 50_000)])
    chosen, evaluation = _refine(scorer, candidates, scores)
    return JNCSSResult(_final(model, chosen), evaluation.expected_time, evaluation.decode_probability,
                       _objective(evaluation), time.perf_counter() - started, "exhaustive", scorer.evaluations,
                       len(candidates), evaluation)


def select_jncss(model: TimingModel, method: str = "greedy") -> JNCSSResult:
    """The JNCSS choice for ``model`` by ``method`` (``greedy`` or ``exhaustive``); what ``hgc simulate``
    runs for the ``hgc_jncss`` scheme."""
    if method == "greedy":
        return greedy_jncss(model)
    if method == "exhaustive":
        return exhaustive_jncss(model)
    raise ConfigError(f"unknown method '{method}' (one of: {', '.join(METHODS)})", "--method")


# ----------------------------------------------------------------------------------------------------
# Synthetic heterogeneous systems (benchmarks and tests)

COMPUTE_FAMILIES = {
    "shifted_exponential": {"dist": "shifted_exponential", "shift": 1.0, "mean": 0.5},
    "exponential": {"dist": "shifted_exponential", "shift": 0.2, "mean": 1.0},
    "bimodal": {"dist": "bimodal", "p": 0.1, "fast": {"dist": "shifted_exponential", "shift": 1.0, "mean": 0.2},
                "slow": {"dist": "shifted_exponential", "shift": 5.0, "mean": 2.0}},
    "lognormal": {"dist": "lognormal", "mu": 0.0, "sigma": 0.8},
}
"""Whole-dataset compute time families of the synthetic systems (seconds, before speed factors)."""


def random_system(seed: int, n_edges: int, workers: int | Sequence[int], *, distinct: bool = False,
                  compute: str = "shifted_exponential", overhead_mean: float = 0.02) -> TimingModel:
    """A seeded heterogeneous system for benchmarks and tests.

    Compute follows ``COMPUTE_FAMILIES[compute]`` (whole dataset), divided by a per-edge speed
    (log-normal, σ = 0.4) and a per-worker factor: one of 1, 0.5, 0.2 (probabilities 0.8, 0.12, 0.08),
    or with ``distinct`` a log-normal factor (σ = 0.3) so that no two workers are alike. Every worker has
    an exponential overhead (mean ``overhead_mean`` s) and a 1 ms uplink; every edge an exponential link
    to the master (mean log-normal around 20 ms), 5 ms per vector, and with probability 0.3 a bimodal
    processing delay (exponential with mean 0.5 s with probability 0.1).
    """
    from hgc.distributions import Bimodal, Constant, parse_distribution
    from hgc.topology import Topology

    rng = np.random.default_rng(seed)
    counts = (int(workers),) * n_edges if isinstance(workers, (int, np.integer)) else tuple(int(w) for w in workers)
    topo = Topology(counts)
    base = parse_distribution(COMPUTE_FAMILIES[compute], "compute")
    edge_speed = np.exp(rng.normal(0.0, 0.4, n_edges))
    times = []
    for i, m in enumerate(counts):
        for _ in range(m):
            factor = rng.lognormal(0.0, 0.3) if distinct else rng.choice([1.0, 0.5, 0.2], p=[0.8, 0.12, 0.08])
            times.append(base.scaled(1.0 / (edge_speed[i] * factor)))
    overhead = parse_distribution({"dist": "exponential", "mean": overhead_mean}, "overhead")
    uplink = Constant(0.001)
    links = tuple(parse_distribution({"dist": "exponential", "mean": float(v)}, "uplink")
                  for v in np.exp(rng.normal(math.log(0.02), 0.8, n_edges)))
    slow = Bimodal(0.1, Constant(0.0), parse_distribution({"dist": "exponential", "mean": 0.5}, "process"))
    process = tuple(slow if rng.random() < 0.3 else Constant(0.0) for _ in range(n_edges))
    big_n = topo.n_workers
    return TimingModel(topo, tuple(times), (overhead,) * big_n, (uplink,) * big_n, process, links,
                       (0.005,) * n_edges)


def random_small_system(seed: int) -> TimingModel:
    """A random small heterogeneous system: 2-5 edges with 1-4 workers each, a compute family and an
    overhead (10-200 ms) drawn at random (see :func:`random_system`)."""
    rng = np.random.default_rng([seed, 1])
    n = int(rng.integers(2, 6))
    family = list(COMPUTE_FAMILIES)[int(rng.integers(len(COMPUTE_FAMILIES)))]
    return random_system(seed, n, [int(m) for m in rng.integers(1, 5, n)], compute=family,
                         overhead_mean=float(np.exp(rng.uniform(math.log(0.01), math.log(0.2)))))


# ----------------------------------------------------------------------------------------------------
# The best flat gradient code

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


def _flat_analytic(evaluator: Evaluator, model: TimingModel) -> bool:
    """Whether flat GC on ``model`` can (and should, cost-wise) be scored analytically."""
    topo = model.topology
    try:
        plan = evaluator.plan(make_strategy("flat_gc", topo, s=topo.n_workers // 2))
    except NotAnalyticError:
        return False
    job = plan.jobs[0]
    top = min(topo.n_workers // 2, topo.n_workers - topo.n_workers // 2 - 1) + 1
    binomial = max(job.counts) > 4
    return len(job.rows) * top * (top if binomial else 1) <= FLAT_ANALYTIC_OPS


def best_flat_gc(model: TimingModel, *, seed: int, evaluator: Evaluator | None = None) -> FlatChoice:
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
    analytic = _flat_analytic(evaluator, model)
    tried: dict[int, float] = {}
    pilot_trials = 0

    def score(values: Iterable[int]) -> None:
        nonlocal pilot_trials
        todo = [s for s in dict.fromkeys(values) if 0 <= s < big_n and s not in tried]
        if not todo:
            return
        strategies = [make_strategy("flat_gc", topo, s=s) for s in todo]
        if analytic:
            means, decoded = evaluator.expected_times(strategies)
            with np.errstate(divide="ignore", invalid="ignore"):
                values_ = np.where(decoded > 0, means / decoded, np.inf)
        else:
            pilot_trials = int(np.clip(PILOT_WORK / (big_n * len(todo)), 2_000, 20_000))
            run = run_strategies(model, strategies, seed=seed, trials=pilot_trials, stream_id=Stream.PILOT)
            values_ = np.array([st.effective_time for st in run.statistics])
        tried.update(zip(todo, values_.tolist()))

    if big_n <= FLAT_ALL_S_LIMIT:
        score(range(big_n))
    else:
        score(_spread_values(list(range(big_n)), 24))
        best = min(tried, key=tried.get)
        neighbours = sorted(tried)
        index = neighbours.index(best)
        low = neighbours[index - 1] if index > 0 else 0
        high = neighbours[index + 1] if index + 1 < len(neighbours) else big_n - 1
        score(np.unique(np.linspace(low, high, 12).round().astype(int)).tolist())
    best = min(tried, key=lambda s: (tried[s], s))
    strategy = make_strategy("flat_gc", topo, s=best)
    if analytic:
        evaluation = evaluator.evaluate(strategy)
        note = f"s by analytic E[T] over {len(tried)} values"
    else:
        evaluation = None
        note = f"s by a {pilot_trials}-trial Monte Carlo pilot over {len(tried)} values (relay queue: no analytic form)"
    return FlatChoice(strategy, evaluation, "analytic" if analytic else "pilot", len(tried),
                      time.perf_counter() - started, note)


# ----------------------------------------------------------------------------------------------------
# The optimize.csv table

OPTIMIZE_COLUMNS = [
    "strategy", "scheme", "method", "edges", "workers", "edge_ids", "worker_ids", "s_e", "s_w", "s", "load",
    "expected_time", "decode_probability", "effective_time", "analytic_error", "mc_mean_time", "mc_sem_time",
    "mc_failure_rate", "z_score", "speedup", "analytic_speedup", "optimality_gap", "evaluations",
    "search_space", "optimizer_seconds", "trials", "seed", "note",
]
"""Columns of ``optimize.csv`` (see :func:`optimize_table`)."""


@dataclass
class _Row:
    label: str
    strategy: Strategy
    method: str
    evaluation: Evaluation | None
    seconds: float
    evaluations: int | None = None
    space: int | None = None
    note: str = ""


@dataclass
class OptimizeResult:
    """What ``hgc optimize`` computes: the table and the JNCSS results behind it."""

    table: pd.DataFrame
    greedy: JNCSSResult
    exhaustive: JNCSSResult | None
    flat: FlatChoice
    trials: int
    seed: int
    mc_seconds: float


def _ids(strategy: Strategy) -> tuple[str, str]:
    pairs = [(e, ws) for e, ws in zip(strategy.edges, strategy.workers) if ws]
    return (";".join(str(e) for e, _ in pairs), ";".join(",".join(str(p) for p in ws) for _, ws in pairs))


def optimize(config: ExperimentConfig, *, method: str = "greedy", trials: int | None = None,
             seed: int | None = None, include_timings: bool = True) -> OptimizeResult:
    """Run JNCSS on ``config`` (an :class:`~hgc.config.ExperimentConfig`) and compare it with the other
    strategies; ``trials``/``seed`` override the config's for the Monte Carlo check.

    Rows: ``uncoded``; ``flat_gc`` with the best ``s`` (see :func:`best_flat_gc`); ``hgc`` on all nodes
    with the best ``(s_e, s_w)`` (:func:`best_hgc_tolerances`); ``jncss_greedy``; ``jncss_exhaustive`` when
    ``method`` is ``exhaustive`` or the search space has at most ``EXHAUSTIVE_AUTO_LIMIT`` candidates.
    Every strategy is also simulated (``trials`` iterations on ``Stream.OPTIMIZE``, common random numbers).
    Everything is a function of the config and seed except ``optimizer_seconds`` (wall-clock time), which
    is left empty with ``include_timings=False`` so that the table is byte-for-byte reproducible.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method '{method}' (one of: {', '.join(METHODS)})", "--method")
    config = config.with_overrides(seed=seed, trials=trials)
    model, topo = config.timing, config.topology
    evaluator = Evaluator(model)
    rows: list[_Row] = []
    size = exhaustive_size(model, cap=EXHAUSTIVE_HARD_LIMIT)
    if method == "exhaustive" and size > EXHAUSTIVE_HARD_LIMIT:
        raise ConfigError(f"exhaustive JNCSS would score more than {EXHAUSTIVE_HARD_LIMIT} candidates on this "
                          f"system (edges of sizes {list(topo.workers)}); use --method greedy", "--method")

    started = time.perf_counter()
    uncoded = make_strategy("uncoded", topo)
    rows.append(_Row("uncoded", uncoded, "fixed", evaluator.evaluate(uncoded), time.perf_counter() - started))

    flat = best_flat_gc(model, seed=config.seed, evaluator=evaluator)
    rows.append(_Row("flat_gc", flat.strategy, flat.method, flat.evaluation, flat.seconds, flat.candidates,
                     note=flat.note))

    started = time.perf_counter()
    scorer = _Scorer(model, evaluator)
    hgc_all, hgc_eval, _ = _best_all_nodes(model, None, None, scorer)
    rows.append(_Row("hgc", hgc_all, "analytic", hgc_eval, time.perf_counter() - started, scorer.evaluations,
                     note="best (s_e, s_w) on all nodes"))

    greedy = greedy_jncss(model, evaluator=evaluator)
    rows.append(_Row("jncss_greedy", greedy.strategy, "greedy", greedy.evaluation, greedy.seconds,
                     greedy.evaluations))

    exhaustive = None
    if method == "exhaustive" or size <= EXHAUSTIVE_AUTO_LIMIT:
        exhaustive = exhaustive_jncss(model, evaluator=evaluator)
        rows.append(_Row("jncss_exhaustive", exhaustive.strategy, "exhaustive", exhaustive.evaluation,
                         exhaustive.seconds, exhaustive.evaluations, exhaustive.space))

    run = run_strategies(model, [r.strategy for r in rows], seed=config.seed, trials=config.trials,
                         stream_id=Stream.OPTIMIZE)
    best_objective = (exhaustive or greedy).objective
    baseline_mc = run.statistics[0].mean_time
    baseline_analytic = rows[0].evaluation.expected_time
    records = []
    for row, stats in zip(rows, run.statistics):
        st, ev = row.strategy, row.evaluation
        edge_ids, worker_ids = _ids(st)
        expected = ev.expected_time if ev is not None else math.nan
        objective = _objective(ev) if ev is not None else stats.effective_time
        if (row.label == "jncss_greedy" and exhaustive is None) or not best_objective > 0:
            gap = math.nan  # (all delays zero: every strategy takes no time, no ratio is defined)
        else:
            gap = objective / best_objective - 1.0
        records.append({
            "strategy": row.label, "scheme": st.kind, "method": row.method,
            "edges": sum(1 for ws in st.workers if ws), "workers": st.n_workers,
            "edge_ids": edge_ids, "worker_ids": worker_ids,
            "s_e": st.s_e, "s_w": st.s_w, "s": st.s, "load": st.load,
            "expected_time": expected,
            "decode_probability": ev.decode_probability if ev is not None else math.nan,
            "effective_time": ev.effective_time if ev is not None else math.nan,
            "analytic_error": ev.error_estimate if ev is not None else math.nan,
            "mc_mean_time": stats.mean_time, "mc_sem_time": stats.sem, "mc_failure_rate": stats.failure_rate,
            "z_score": (expected - stats.mean_time) / stats.sem if ev is not None and stats.sem > 0 else math.nan,
            "speedup": baseline_mc / stats.mean_time if stats.decoded and stats.mean_time > 0 else math.nan,
            "analytic_speedup": baseline_analytic / expected if ev is not None and expected > 0 else math.nan,
            "optimality_gap": gap,
            "evaluations": row.evaluations, "search_space": row.space,
            "optimizer_seconds": round(row.seconds, 3) if include_timings else math.nan,
            "trials": stats.trials, "seed": config.seed,
            "note": "; ".join(n for n in (row.note, st.describe()) if n),
        })
    table = pd.DataFrame(records, columns=OPTIMIZE_COLUMNS)
    for column in ("s_e", "s_w", "s", "evaluations", "search_space"):
        table[column] = table[column].astype("Int64")
    return OptimizeResult(table, greedy, exhaustive, flat, config.trials, config.seed, run.seconds)


def optimize_table(config: ExperimentConfig, *, method: str = "greedy", trials: int | None = None,
                   seed: int | None = None, include_timings: bool = True) -> pd.DataFrame:
    """The rows of ``optimize.csv`` for ``config`` (see :func:`optimize`)."""
    return optimize(config, method=method, trials=trials, seed=seed, include_timings=include_timings).table
