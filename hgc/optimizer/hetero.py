"""Heterogeneity-aware HGC: participating nodes, ``s_e``, per-edge ``s_w[i]`` and unbalanced loads together.

JNCSS gives every participating worker the same load, so on a system whose workers differ in speed it can
only *drop* slow nodes. Here the data shares are free: edge ``i`` holds a fraction ``f_i`` of the
partitions (``Σ f_i = s_e + 1``, ``f_i <= 1``) and, inside it, worker ``j`` a fraction ``g_ij`` of the edge's
partitions (``Σ_j g_ij = s_w[i] + 1``, ``g_ij <= 1``); worker ``(i, j)`` carries the load ``f_i g_ij``.

**Allocations** (:func:`allocate`). Let ``c_ij`` be a worker's median whole-dataset compute time and
``v_ij = min c / c_ij`` its relative speed. For a *load profile* ``w_ij`` the smallest load scale any code
can reach is ``λ*`` of Theorem C (``docs/theory.md``): inside every edge the shares are water-filled,
``g_ij = min(1, w_ij / θ_i)`` with ``Σ_j g_ij = s_w[i] + 1``, the level ``θ_i`` is the edge's capacity, and
the edge shares are water-filled over the capacities, ``f_i = min(1, λ* θ_i)`` with ``Σ f_i = s_e + 1``.
Every load is then ``min(λ* w_ij, f_i)``: proportional to the profile and clipped only where the
constraints force it. We use ``w_ij = v_ij^γ_w`` inside edges and capacities computed from ``v_ij^γ_e``
across edges: ``γ_e = γ_w = 0`` is the equal split of Theorem 1 on the participating nodes (JNCSS's
loads), ``γ_e = γ_w = 1`` loads proportional to speed (``allocation: speed``), other exponents are
searched (``allocation: optimized``). Speeds come from medians so that heavy tails with infinite means
still give one; the search corrects for everything the profile ignores (overheads, links, tails).

**Greedy search** (:func:`hetero_greedy`), every candidate scored by the analytic evaluator's search grids:

1. start from the JNCSS choice (a candidate with ``γ = 0``: the result is never worse than JNCSS);
2. node sets: JNCSS's, all nodes, and all nodes without the workers slower than a fraction of their edge's
   fastest (:data:`SPEED_FRACTIONS`); for each, the tolerance pairs ``(s_e, s_w)`` near JNCSS's and spread
   over the admissible range, each with the speed allocation and the equal one;
3. from the best :data:`KEEP` distinct discrete choices among them, a local search. The exponents
   ``(γ_e, γ_w)`` are tuned by a compass search (steps :data:`GAMMA_STEPS`); then the discrete moves are
   scored: per edge ``s_w[i] ± 1``, ``s_e ± 1`` and, on systems of at most :data:`COUNT_MOVES_LIMIT` edges,
   per edge one worker fewer or more. The best move is taken if it improves; otherwise the next
   :data:`LOOKAHEAD` best are tried with re-tuned exponents (a move often pays off only with other
   exponents, e.g. ``s_e - 1`` with a small share for a slow edge). Exponents are re-tuned after every
   move; the search stops when nothing improves by more than :data:`IMPROVEMENT`;
4. the best :data:`REFINE_TOP` candidates are made exact (shares on a grid of ``K`` partitions) and
   re-evaluated accurately; the best is returned unless JNCSS's own choice is better.

Cost: ``(node sets × pairs × 2)`` start evaluations (about 100-250) plus, per refined start, rounds of
``2n + 8`` (``4n + 8`` on small systems) evaluations; every candidate has its own loads and so its own
grid. Allocation and candidate construction are vectorised over edges and workers (padded matrices).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

from hgc.analytic import Evaluation, Evaluator
from hgc.optimizer.greedy import greedy_jncss
from hgc.optimizer.ranking import worker_ranking
from hgc.optimizer.scoring import JNCSSResult, Scorer, objective
from hgc.progress import ProgressFactory, progress_bar
from hgc.schemes import Strategy
from hgc.timing import TimingModel

SPEED_FRACTIONS = (0.125, 0.25, 0.5)
"""Node sets that drop the workers slower than these fractions of their edge's fastest."""
GAMMA_STEPS = (0.5, 0.25, 0.125)
"""Step sizes of the pattern search over the allocation exponents."""
KEEP = 4
"""Discrete candidates refined in step 3."""
REFINE_TOP = 3
"""Candidates re-evaluated accurately at the end."""
COUNT_MOVES_LIMIT = 12
"""Systems with at most this many edges also try one worker fewer/more per edge in step 3."""
IMPROVEMENT = 1e-4
"""A move is taken when it lowers the objective by more than this fraction."""
LOOKAHEAD = 2
"""When no discrete move improves as it is, the next best this many are tried with re-tuned exponents."""


# ----------------------------------------------------------------------------------------------------
# Water filling and allocations (float; :mod:`hgc.codes.allocation` has the exact versions)

def waterfill_rows(weights: np.ndarray, totals: np.ndarray | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise water filling: shares ``min(1, w / θ_r)`` adding up to ``totals[r]`` and the levels ``θ_r``.

    ``weights`` is ``(rows, columns)`` with non-negative entries (zero = absent: share 0). Every row needs
    at least ``totals[r]`` positive weights; when it has exactly that many they are all capped at 1 and
    ``θ_r`` is the smallest of them. Vectorised over rows; at most ``columns`` passes.
    """
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    totals = np.broadcast_to(np.asarray(totals, dtype=float), (w.shape[0],))
    positive = w > 0
    if (positive.sum(axis=1) < totals - 1e-9).any():
        raise ValueError("a row has fewer positive weights than copies to place (shares are at most 1)")
    capped = np.zeros_like(positive)
    level = np.zeros(w.shape[0])
    for _ in range(w.shape[1] + 1):
        free = positive & ~capped
        room = totals - capped.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            level = np.where(room > 0, np.where(free, w, 0.0).sum(axis=1) / room, np.inf)
        over = free & (w > level[:, None] * (1.0 + 1e-12))
        if not over.any():
            break
        capped |= over
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(capped, 1.0, np.where(positive, np.minimum(1.0, w / level[:, None]), 0.0))
    return shares, level


def waterfill(weights: Sequence[float] | np.ndarray, total: float) -> np.ndarray:
    """Shares ``min(1, w / θ)`` adding up to ``total`` (one row of :func:`waterfill_rows`)."""
    return waterfill_rows(np.asarray(weights, dtype=float)[None, :], [total])[0][0]


def relative_speeds(compute: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Speeds ``min c / c`` in ``(0, 1]`` from compute times ``c`` (seconds) grouped by edge; zero times
    (free computation) count as the fastest, and all-zero times give equal speeds."""
    flat = np.concatenate([np.asarray(c, dtype=float) for c in compute])
    positive = flat[flat > 0]
    floor = positive.min() if positive.size else 1.0
    return [floor / np.maximum(np.asarray(c, dtype=float), floor) for c in compute]


def _padded(rows: Sequence[np.ndarray]) -> np.ndarray:
    width = max(len(r) for r in rows)
    out = np.zeros((len(rows), width))
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def allocate_matrix(speeds: np.ndarray, s_e: int, s_w: Sequence[int] | np.ndarray, gamma_e: float, gamma_w: float,
                    reduction_e: int = 1, reduction_w: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Edge shares ``f`` ``(n,)`` and worker shares ``g`` ``(n, width)`` from relative speeds ``(n, width)``
    (0 = no worker in that slot); see the module docstring. With reductions the shares add up to
    ``s_e + ℓ_e`` and ``s_w[i] + ℓ_w``."""
    present = speeds > 0
    inner_totals = np.asarray(s_w, dtype=float) + reduction_w
    profile = np.where(present, np.power(speeds, gamma_w, where=present, out=np.zeros_like(speeds)), 0.0)
    g, level = waterfill_rows(profile, inner_totals)
    if gamma_e != gamma_w:
        across = np.where(present, np.power(speeds, gamma_e, where=present, out=np.zeros_like(speeds)), 0.0)
        _, level = waterfill_rows(across, inner_totals)
    f, _ = waterfill_rows(level[None, :], [s_e + reduction_e])
    return f[0], g


def allocate(compute: Sequence[np.ndarray], s_e: int, s_w: Sequence[int], gamma_e: float,
             gamma_w: float, reduction_e: int = 1, reduction_w: int = 1) -> tuple[np.ndarray, list[np.ndarray]]:
    """Edge shares ``f`` and per-edge worker shares ``g`` for participating edges whose workers have median
    whole-dataset compute times ``compute[i]`` (seconds); see the module docstring."""
    speeds = relative_speeds(compute)
    f, g = allocate_matrix(_padded(speeds), s_e, s_w, gamma_e, gamma_w, reduction_e, reduction_w)
    return f, [g[i, :len(v)] for i, v in enumerate(speeds)]


# ----------------------------------------------------------------------------------------------------
# Strategies from float shares

def exact_strategy(model: TimingModel, edges: Sequence[int], workers: Sequence[Sequence[int]], s_e: int,
                   s_w: Sequence[int], f: np.ndarray, g: Sequence[np.ndarray], *, reduction_e: int = 1,
                   reduction_w: int = 1, partitions: int | None = None) -> Strategy:
    """The strategy with float shares ``f``, ``g`` made exact on the grid of ``partitions`` partitions
    (:data:`~hgc.schemes.hgc.ALLOCATION_GRID` by default; each load moves by less than ``2/K``), its loads
    those of the exact shares. Workers are listed by position within each edge, ``g`` in the same order;
    nodes whose share rounds to 0 are left out."""
    from hgc.codes import quantize_shares  # noqa: PLC0415 - the codes are only needed for the final choice
    from hgc.schemes.hgc import ALLOCATION_GRID, HGC_SCHEME  # noqa: PLC0415 - the scheme modules import this package lazily

    counts = [len(w) for w in workers]
    s_w_ = tuple(int(s) for s in s_w)
    edge_shares, worker_shares = quantize_shares(counts, s_e, s_w_, list(map(float, f)),
                                                 [list(map(float, row)) for row in g],
                                                 partitions=partitions or ALLOCATION_GRID,
                                                 reduction_e=reduction_e, reduction_w=reduction_w)
    keep_e = [i for i, share in enumerate(edge_shares) if share > 0]
    kept_workers, kept_shares = [], []
    for i in keep_e:
        columns = [j for j, share in enumerate(worker_shares[i]) if share > 0]
        kept_workers.append(tuple(workers[i][j] for j in columns))
        kept_shares.append(tuple(worker_shares[i][j] for j in columns))
    uniform_s_w: int | tuple[int, ...] = (s_w_[keep_e[0]] if len({s_w_[i] for i in keep_e}) == 1
                                          else tuple(s_w_[i] for i in keep_e))
    return HGC_SCHEME.strategy(model.topology, s_e=s_e, s_w=uniform_s_w, edges=[edges[i] for i in keep_e],
                               workers=kept_workers, reduction_e=reduction_e, reduction_w=reduction_w,
                               edge_shares=[edge_shares[i] for i in keep_e], worker_shares=kept_shares)


def scorer_strategy(edges: Sequence[int], workers: Sequence[Sequence[int]], s_e: int, s_w: tuple[int, ...],
                    loads: tuple[tuple[float, ...], ...], reduction_e: int = 1, reduction_w: int = 1) -> Strategy:
    """A candidate with float per-worker loads (for scoring; :func:`exact_strategy` makes the final one)."""
    from hgc.schemes.hgc import HGC_SCHEME  # noqa: PLC0415 - the scheme modules import this package lazily

    uniform: int | tuple[int, ...] = s_w[0] if len(set(s_w)) == 1 else s_w
    return HGC_SCHEME.candidate(edges, workers, s_e, uniform, loads=loads, reduction_e=reduction_e,
                                reduction_w=reduction_w)


def _pattern_search(score: Callable[[list[tuple[float, float]]], list[float]], start: tuple[float, float],
                    value: float, known: dict[tuple[float, float], float] | None = None
                    ) -> tuple[tuple[float, float], float]:
    """Minimise over the exponents ``(γ_e, γ_w) >= 0`` by a compass search with steps :data:`GAMMA_STEPS`
    (diagonal moves included); ``score`` maps a list of exponent pairs to objective values."""
    values = dict(known or {})
    values[start] = value
    best = start
    for step in GAMMA_STEPS:
        while True:
            moves = [(max(0.0, best[0] + de * step), max(0.0, best[1] + dw * step))
                     for de, dw in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1))]
            moves = [m for m in dict.fromkeys(moves) if m not in values]
            if not moves:
                break
            values.update(zip(moves, score(moves)))
            better = min(values, key=lambda m: values[m])
            if not values[better] < values[best] * (1.0 - IMPROVEMENT):
                break
            best = better
    return best, values[best]


def allocate_on(model: TimingModel, s_e: int, s_w: int | Sequence[int], allocation: str, *,
                evaluator: Evaluator | None = None, reduction_e: int = 1, reduction_w: int = 1
                ) -> tuple[Strategy, str]:
    """``allocation`` ``speed`` (loads proportional to speed where the constraints allow: ``γ = 1``) or
    ``optimized`` (the exponents searched with the analytic evaluator) on all nodes with the given
    tolerances; ``(strategy, note)``."""
    scorer = Scorer(model, evaluator)
    topo = model.topology
    n = topo.n_edges
    s_w_ = tuple(int(s) for s in (s_w if not isinstance(s_w, (int, np.integer)) else [s_w] * n))
    compute, _ = scorer.evaluator.worker_quantiles(0.5)
    speeds = _padded(relative_speeds([compute[int(topo.offsets[i]):int(topo.offsets[i + 1])] for i in range(n)]))
    edges = list(range(n))
    workers = [tuple(range(m)) for m in topo.workers]
    sizes = list(topo.workers)

    def candidate(gammas: tuple[float, float]) -> Strategy:
        f, g = allocate_matrix(speeds, s_e, s_w_, gammas[0], gammas[1], reduction_e, reduction_w)
        loads = f[:, None] * g
        rows = tuple(tuple(loads[i, :m].tolist()) for i, m in enumerate(sizes))
        return scorer_strategy(edges, workers, s_e, s_w_, rows, reduction_e, reduction_w)

    best = (1.0, 1.0)
    if allocation == "optimized":
        def score(moves: list[tuple[float, float]]) -> list[float]:
            return scorer([candidate(m) for m in moves]).tolist()

        best, _ = _pattern_search(score, best, score([best])[0])
    f, g = allocate_matrix(speeds, s_e, s_w_, best[0], best[1], reduction_e, reduction_w)
    strategy = exact_strategy(model, edges, workers, s_e, s_w_, f, [g[i, :m] for i, m in enumerate(sizes)],
                              reduction_e=reduction_e, reduction_w=reduction_w)
    how = ("loads proportional to speed where the constraints allow" if allocation == "speed"
           else f"loads ∝ speed^γ with γ_edges={best[0]:g}, γ_workers={best[1]:g} by analytic E[T]")
    return strategy, f"allocation {allocation}: {how}"


# ----------------------------------------------------------------------------------------------------
# The search

@dataclass(frozen=True)
class Selection:
    """A discrete choice: per edge the number of its best-ranked workers taking part (0 = dropped), ``s_e``,
    per-edge ``s_w`` (0 for dropped edges), and the allocation exponents."""

    counts: tuple[int, ...]
    s_e: int
    s_w: tuple[int, ...]
    gamma_e: float = 1.0
    gamma_w: float = 1.0

    def admissible(self) -> bool:
        edges = [i for i, c in enumerate(self.counts) if c > 0]
        return (bool(edges) and 0 <= self.s_e < len(edges)
                and all(0 <= self.s_w[i] < self.counts[i] for i in edges)
                and all(self.s_w[i] == 0 for i, c in enumerate(self.counts) if c == 0))

    def with_gammas(self, gammas: tuple[float, float]) -> "Selection":
        return Selection(self.counts, self.s_e, self.s_w, gammas[0], gammas[1])

    @property
    def discrete(self) -> tuple[tuple[int, ...], int, tuple[int, ...]]:
        return self.counts, self.s_e, self.s_w


@dataclass
class HeteroResult:
    """The chosen strategy (kind ``hgc``, per-worker loads), how good it is, and the JNCSS choice it was
    compared with (``gain`` = JNCSS objective / this objective - 1)."""

    strategy: Strategy
    evaluation: Evaluation
    objective: float
    selection: Selection
    edge_shares: tuple[float, ...]
    worker_shares: tuple[tuple[float, ...], ...]
    jncss: JNCSSResult | None
    seconds: float
    evaluations: int
    method: str = "greedy"
    space: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def gain(self) -> float:
        """How much lower this objective is than JNCSS's (``jncss_objective / objective - 1``)."""
        if self.jncss is None or not self.objective > 0:
            return math.nan
        return self.jncss.objective / self.objective - 1.0


@dataclass(frozen=True)
class _Built:
    strategy: Strategy
    edges: list[int]
    workers: list[tuple[int, ...]]
    f: np.ndarray
    g: list[np.ndarray]


class _Search:
    """Candidates as strategies with per-worker loads, built from padded speed matrices and scored with
    memoisation. Workers of an edge are taken in ranking order (best first)."""

    def __init__(self, model: TimingModel, scorer: Scorer, ranking: Sequence[Sequence[int]]):
        self.model = model
        self.scorer = scorer
        self.sizes = tuple(model.topology.workers)
        compute, _ = scorer.evaluator.worker_quantiles(0.5)
        offsets = model.topology.offsets
        ranked = [compute[int(offsets[i]) + np.asarray(ranking[i], dtype=int)] for i in range(len(self.sizes))]
        self.speeds = _padded(relative_speeds(ranked))            # (n, m_max), column r = r-th best worker
        self.ranking = [np.asarray(r, dtype=int) for r in ranking]
        self._orders: dict[tuple[int, int], tuple[tuple[int, ...], np.ndarray]] = {}
        self.seen: dict[Selection, float] = {}

    def _positions(self, edge: int, count: int) -> tuple[tuple[int, ...], np.ndarray]:
        """The positions of the ``count`` best workers of ``edge`` ascending, and where each sits in the
        ranking."""
        key = (edge, count)
        if key not in self._orders:
            chosen = self.ranking[edge][:count]
            order = np.argsort(chosen, kind="stable")
            self._orders[key] = (tuple(chosen[order].tolist()), order)
        return self._orders[key]

    def build(self, sel: Selection) -> _Built | None:
        """The candidate of a selection (``None`` when it is not admissible)."""
        if not sel.admissible():
            return None
        counts = np.asarray(sel.counts)
        edges = np.flatnonzero(counts > 0)
        width = int(counts[edges].max())
        speeds = self.speeds[edges, :width] * (np.arange(width)[None, :] < counts[edges, None])
        s_w = tuple(sel.s_w[i] for i in edges.tolist())
        f, g = allocate_matrix(speeds, sel.s_e, s_w, sel.gamma_e, sel.gamma_w)
        loads = f[:, None] * g
        workers, rows, shares = [], [], []
        for k, i in enumerate(edges.tolist()):
            positions, order = self._positions(i, int(counts[i]))
            workers.append(positions)
            rows.append(tuple(loads[k, order].tolist()))
            shares.append(g[k, order])
        edge_list = edges.tolist()
        return _Built(scorer_strategy(edge_list, workers, sel.s_e, s_w, tuple(rows)), edge_list, workers, f, shares)

    def score(self, selections: Sequence[Selection]) -> list[tuple[Selection, float]]:
        """``(selection, objective)`` for the admissible ones (memoised)."""
        todo = [s for s in dict.fromkeys(selections) if s not in self.seen]
        built = [(s, b.strategy) for s in todo if (b := self.build(s)) is not None]
        if built:
            values = self.scorer([st for _, st in built])
            self.seen.update((s, float(v)) for (s, _), v in zip(built, values))
        return [(s, self.seen[s]) for s in dict.fromkeys(selections) if s in self.seen]

    def refine_gammas(self, sel: Selection, value: float) -> tuple[Selection, float]:
        """The pattern search over the exponents with the discrete part of ``sel`` fixed."""
        def score(moves: list[tuple[float, float]]) -> list[float]:
            scored = dict(self.score([sel.with_gammas(m) for m in moves]))
            return [scored.get(sel.with_gammas(m), math.inf) for m in moves]

        gammas, best = _pattern_search(score, (sel.gamma_e, sel.gamma_w), value)
        return sel.with_gammas(gammas), best

    def finish(self, candidates: Sequence[Selection]
               ) -> tuple[float, Selection, Strategy, Evaluation, np.ndarray, list[np.ndarray]] | None:
        """The best of ``candidates`` after making their shares exact and evaluating them accurately."""
        best = None
        for sel in candidates:
            built = self.build(sel)
            if built is None or not math.isfinite(self.seen.get(sel, math.inf)):
                continue
            strategy = exact_strategy(self.model, built.edges, built.workers, sel.s_e,
                                      [sel.s_w[i] for i in built.edges], built.f, built.g)
            evaluation = self.scorer.accurate(strategy)
            value = objective(evaluation)
            if best is None or value < best[0]:
                best = (value, sel, strategy, evaluation, built.f, built.g)
        return best


def _uniform(counts: Sequence[int], s_w: int) -> tuple[int, ...]:
    return tuple(min(s_w, c - 1) if c > 0 else 0 for c in counts)


def _counts_of(strategy: Strategy, n_edges: int) -> tuple[int, ...]:
    counts = [0] * n_edges
    for e, ws in zip(strategy.edges, strategy.workers):
        counts[e] = len(ws)
    return tuple(counts)


def _starts(search: _Search, base: Strategy) -> list[Selection]:
    """Step 2: node sets × tolerance pairs × {speed, equal} allocations."""
    sizes = search.sizes
    node_sets = [_counts_of(base, len(sizes)), tuple(sizes)]
    for fraction in SPEED_FRACTIONS:   # speeds are in ranking order: the kept workers are a prefix
        node_sets.append(tuple(int((row[:m] >= fraction * row[:m].max()).sum())
                               for row, m in zip(search.speeds, sizes)))
    base_s_e, base_s_w = int(base.s_e), int(max(np.atleast_1d(base.s_w)))
    out = []
    for counts in dict.fromkeys(node_sets):
        present = [c for c in counts if c > 0]
        n, m_max = len(present), max(present)
        pairs = {(base_s_e + de, base_s_w + dw) for de in (-1, 0, 1, 2) for dw in (-1, 0, 1)}
        spread_e = range(n) if n <= 6 else sorted({0, 1, n // 4, n // 2, (3 * n) // 4, n - 1})
        pairs |= {(a, 0) for a in spread_e} | {(0, b) for b in (1, 2, m_max // 2) if b < m_max}
        for s_e, s_w in pairs:
            if not 0 <= s_e < n or s_w < 0:
                continue
            for gamma in (1.0, 0.0):
                out.append(Selection(counts, s_e, _uniform(counts, s_w), gamma, gamma))
    return out


def _neighbours(sel: Selection, sizes: Sequence[int], count_moves: bool) -> list[Selection]:
    """Step 3 discrete moves: per-edge ``s_w ± 1``, ``s_e ± 1`` and, with ``count_moves``, one worker fewer
    or more in an edge (``s_w`` kept when admissible)."""
    out = []
    for i, c in enumerate(sel.counts):
        if c > 0:
            for d in (1, -1):
                s_w = list(sel.s_w)
                s_w[i] += d
                out.append(Selection(sel.counts, sel.s_e, tuple(s_w), sel.gamma_e, sel.gamma_w))
        if count_moves:
            for d in (1, -1):
                if 0 <= c + d <= sizes[i]:
                    counts = list(sel.counts)
                    counts[i] = c + d
                    s_w = list(sel.s_w)
                    s_w[i] = min(s_w[i], c + d - 1) if c + d > 0 else 0
                    s_e = min(sel.s_e, sum(1 for x in counts if x > 0) - 1)
                    out.append(Selection(tuple(counts), s_e, tuple(s_w), sel.gamma_e, sel.gamma_w))
    for d in (1, -1):
        out.append(Selection(sel.counts, sel.s_e + d, sel.s_w, sel.gamma_e, sel.gamma_w))
    return out


def _jncss_result(base: JNCSSResult, n_edges: int, seconds: float, evaluations: int) -> HeteroResult:
    """JNCSS's own choice as a heterogeneity-aware result (equal shares)."""
    from hgc.codes import hgc_allocation  # noqa: PLC0415

    st = base.strategy
    counts = _counts_of(st, n_edges)
    s_w = tuple(int(s) for s in np.broadcast_to(np.asarray(st.s_w), (st.n_edges,)))
    alloc = hgc_allocation(st.worker_counts, int(st.s_e), s_w, reduction_e=int(st.get("reduction_e", 1)),
                           reduction_w=int(st.get("reduction_w", 1)))
    per_edge = [0] * n_edges
    for e, s in zip(st.edges, s_w):
        per_edge[e] = s
    assert base.evaluation is not None
    return HeteroResult(st, base.evaluation, base.objective, Selection(counts, int(st.s_e), tuple(per_edge), 0.0, 0.0),
                        tuple(float(x) for x in alloc.edge_shares),
                        tuple(tuple(float(x) for x in row) for row in alloc.worker_shares), base, seconds,
                        evaluations, notes=["the JNCSS choice (equal shares) was best"])


def hetero_greedy(model: TimingModel, *, evaluator: Evaluator | None = None, jncss: JNCSSResult | None = None,
                  progress: ProgressFactory | None = None) -> HeteroResult:
    """Heterogeneity-aware HGC by the search of the module docstring; never worse than JNCSS (whose choice,
    ``jncss``, is computed when not given)."""
    started = time.perf_counter()
    scorer = Scorer(model, evaluator)
    base = jncss or greedy_jncss(model, evaluator=scorer.evaluator)
    ranking = worker_ranking(model, base.strategy.load, scorer.evaluator)
    search = _Search(model, scorer, ranking)
    count_moves = model.topology.n_edges <= COUNT_MOVES_LIMIT
    scored = dict(search.score(_starts(search, base.strategy)))
    best_first = sorted(scored, key=lambda s: scored[s])
    starts: list[Selection] = []
    for sel in best_first:                       # distinct discrete choices
        if all(sel.discrete != other.discrete for other in starts):
            starts.append(sel)
        if len(starts) == KEEP:
            break
    with progress_bar(progress, len(starts), "heterogeneity-aware HGC", "start") as bar:
        for start in starts:
            current, value = search.refine_gammas(start, scored[start])
            while True:
                options = sorted(search.score(_neighbours(current, search.sizes, count_moves)), key=lambda o: o[1])
                moved = False
                for candidate, candidate_value in options[:1 + LOOKAHEAD]:
                    # the best move as it is; the next ones only once their exponents are re-tuned
                    if candidate is not options[0][0]:
                        candidate, candidate_value = search.refine_gammas(candidate, candidate_value)
                    if candidate_value < value * (1.0 - IMPROVEMENT):
                        current, value = search.refine_gammas(candidate, candidate_value)
                        moved = True
                        break
                if not moved:
                    break
            bar.update(1)
    finalists = sorted(search.seen, key=lambda s: search.seen[s])[:REFINE_TOP]
    best = search.finish(finalists)
    seconds = time.perf_counter() - started
    if best is None or best[0] >= base.objective:
        return _jncss_result(base, len(search.sizes), seconds, scorer.evaluations)
    value, sel, strategy, evaluation, f, g = best
    return HeteroResult(strategy, evaluation, value, sel, tuple(float(x) for x in f),
                        tuple(tuple(float(x) for x in gi) for gi in g), base, seconds, scorer.evaluations)


# ----------------------------------------------------------------------------------------------------
# Exhaustive search (ground truth on small systems)

HETERO_EXHAUSTIVE_LIMIT = 20_000
"""``hgc optimize`` adds an exhaustive heterogeneity-aware row when it has at most this many candidates."""
EXHAUSTIVE_GAMMAS = (0.0, 0.5, 1.0, 1.5, 2.0)
"""Allocation exponents every exhaustive candidate is scored with (for both layers)."""
EXHAUSTIVE_REFINE = 8
"""Best discrete choices whose exponents are then refined by the pattern search."""


def hetero_space(model: TimingModel, cap: float = math.inf) -> int:
    """Candidates :func:`hetero_exhaustive` scores on its exponent grid: dominance-closed node sets ×
    ``s_e`` × per-edge ``s_w`` × :data:`EXHAUSTIVE_GAMMAS` squared (a number above ``cap`` once it is
    known to exceed it)."""
    from hgc.optimizer.exhaustive import edge_options  # noqa: PLC0415 - only the exhaustive search needs it

    options = edge_options(model, cap)
    total = 0
    for choice in _choices(options):
        counts = [len(w) for w in choice if w]
        total += len(counts) * math.prod(counts) * len(EXHAUSTIVE_GAMMAS) ** 2
        if total > cap:
            return int(total)
    return int(total)


def _choices(options: Sequence[Sequence[tuple[int, ...]]]) -> Iterator[tuple[tuple[int, ...], ...]]:
    for choice in itertools.product(*[[()] + list(o) for o in options]):
        if any(choice):
            yield choice


def hetero_exhaustive(model: TimingModel, *, evaluator: Evaluator | None = None, limit: int = HETERO_EXHAUSTIVE_LIMIT,
                      progress: ProgressFactory | None = None) -> HeteroResult:
    """The best heterogeneity-aware strategy over every dominance-closed node set, ``s_e`` and per-edge
    ``s_w``, each scored with the exponents of :data:`EXHAUSTIVE_GAMMAS` (both layers); the
    :data:`EXHAUSTIVE_REFINE` best discrete choices then get their exponents refined by the pattern search.
    Ground truth for :func:`hetero_greedy` on small systems (exhaustive in the discrete choices, a grid
    plus local refinement in the continuous ones). Raises :class:`~hgc.errors.ConfigError` beyond ``limit``."""
    from hgc.errors import ConfigError  # noqa: PLC0415
    from hgc.optimizer.exhaustive import edge_options  # noqa: PLC0415 - see hetero_space

    started = time.perf_counter()
    size = hetero_space(model, limit)
    if size > limit:
        raise ConfigError(f"the exhaustive heterogeneity-aware search would score more than {limit} candidates "
                          "on this system; use the greedy one", "method")
    scorer = Scorer(model, evaluator)
    n = model.topology.n_edges
    # one search per node set (its workers in position order stand in for the ranking)
    groups: list[tuple[_Search, Selection]] = []
    for choice in _choices(edge_options(model, limit)):
        ranking = [tuple(w) + tuple(p for p in range(m) if p not in w)
                   for w, m in zip(choice, model.topology.workers)]
        search = _Search(model, scorer, ranking)
        counts = tuple(len(w) for w in choice)
        edges = [i for i in range(n) if counts[i]]
        for s_e in range(len(edges)):
            for inner in itertools.product(*[range(counts[i]) for i in edges]):
                s_w = [0] * n
                for i, s in zip(edges, inner):
                    s_w[i] = s
                groups.append((search, Selection(counts, s_e, tuple(s_w), 0.0, 0.0)))
    total = len(groups) * len(EXHAUSTIVE_GAMMAS) ** 2
    gammas = list(itertools.product(EXHAUSTIVE_GAMMAS, EXHAUSTIVE_GAMMAS))
    results: list[tuple[float, int, Selection]] = []
    with progress_bar(progress, total, f"heterogeneity-aware exhaustive ({total})", "candidate") as bar:
        by_search: dict[int, list[int]] = {}
        for index, (search, _) in enumerate(groups):
            by_search.setdefault(id(search), []).append(index)
        for indices in by_search.values():
            search = groups[indices[0]][0]
            selections = [groups[i][1].with_gammas(gm) for i in indices for gm in gammas]
            for sel, value in search.score(selections):
                results.append((value, indices[0], sel))
            bar.update(len(selections))
    results.sort(key=lambda r: r[0])
    refined: list[tuple[float, _Search, Selection]] = []
    seen_discrete: set[tuple[int, tuple[tuple[int, ...], int, tuple[int, ...]]]] = set()
    for value, index, sel in results:
        search = groups[index][0]
        key = (id(search), sel.discrete)
        if key in seen_discrete or not math.isfinite(value):
            continue
        seen_discrete.add(key)
        better, better_value = search.refine_gammas(sel, value)
        refined.append((better_value, search, better))
        if len(seen_discrete) == EXHAUSTIVE_REFINE:
            break
    refined.sort(key=lambda r: r[0])
    best = None
    for _, search, sel in refined[:REFINE_TOP]:
        found = search.finish([sel])
        if found is not None and (best is None or found[0] < best[0]):
            best = found
    if best is None:
        raise ConfigError("no candidate strategy ever decodes (failure probabilities too high?)", "timing.failures")
    value, sel, strategy, evaluation, f, g = best
    return HeteroResult(strategy, evaluation, value, sel, tuple(float(x) for x in f),
                        tuple(tuple(float(x) for x in row) for row in g), None, time.perf_counter() - started,
                        scorer.evaluations, method="exhaustive", space=total)
