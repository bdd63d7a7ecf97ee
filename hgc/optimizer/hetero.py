"""Heterogeneity-aware HGC: participating nodes, ``s_e``, per-edge ``s_w[i]`` and unbalanced loads together.

JNCSS gives every participating worker the same load, so on a system whose workers differ in speed it can
only *drop* slow nodes. Here the data shares are free: edge ``i`` holds a fraction ``f_i`` of the
partitions (``Σ f_i = s_e + 1``, ``f_i <= 1``) and, inside it, worker ``j`` a fraction ``g_ij`` of the edge's
groups (``Σ_j g_ij = s_w[i] + 1``, ``g_ij <= 1``); worker ``(i, j)`` carries the load ``f_i g_ij``.

Allocations (:func:`allocate`). Let ``c_ij`` be the median whole-dataset compute time of a worker and
``v_ij = 1 / c_ij`` its speed. Inside an edge the shares are proportional to ``v_ij^γ_w``; across edges to
``κ_i^γ_e`` with ``κ_i = Σ_j v_ij / (s_w[i] + 1)`` (the edge's throughput after its internal redundancy);
both are *water-filled* (:func:`waterfill`): proportional, with any share above 1 capped and its excess
spread over the others. ``γ = 0`` is the equal split of Theorem 1 on the participating nodes,
``γ = 1`` loads proportional to speed (``allocation: speed``), other values are searched
(``allocation: optimized``).

The search (:func:`hetero_greedy`), every candidate scored by the analytic evaluator's search grids:

1. start from the JNCSS choice (so the result is never worse than JNCSS: it is a candidate with ``γ = 0``);
2. node sets: JNCSS's, all nodes, and all nodes without the workers slower than a fraction of their edge's
   fastest (fractions 1/8, 1/4, 1/2); for each, the tolerance pairs ``(s_e, s_w)`` near JNCSS's and the
   best all-nodes ones, each with the speed allocation and the equal one;
3. from the best few, a coordinate search: each edge's ``s_w[i]`` ±1, ``s_e`` ±1, and a pattern search over
   ``(γ_e, γ_w)`` (steps 0.5, 0.25, 0.125);
4. the best candidates are re-evaluated accurately, together with JNCSS's choice, and the best is returned.

Cost: about ``(4 node sets × 10 pairs × 2 allocations) + rounds × (n + 10)`` evaluations, each with its own
grid (loads differ per candidate).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
import itertools
from typing import Iterator, Sequence

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


def waterfill(weights: Sequence[float] | np.ndarray, total: float, cap: float = 1.0) -> np.ndarray:
    """Shares proportional to ``weights`` that sum to ``total`` with none above ``cap``: the largest are
    capped and the rest re-scaled until all fit. Needs ``len(weights) * cap >= total`` and positive weights."""
    w = np.asarray(weights, dtype=float)
    if w.size * cap < total - 1e-12:
        raise ValueError(f"{w.size} shares of at most {cap} cannot sum to {total}")
    shares = np.zeros(w.size)
    free = np.ones(w.size, dtype=bool)
    remaining = float(total)
    while free.any():
        scaled = remaining * w[free] / w[free].sum()
        over = scaled > cap
        if not over.any():
            shares[free] = scaled
            break
        index = np.flatnonzero(free)[over]
        shares[index] = cap
        remaining -= cap * index.size
        free[index] = False
    return shares


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


def relative_speeds(compute: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Speeds ``min c / c`` in ``(0, 1]`` from compute times ``c`` (seconds) grouped by edge; zero times
    (free computation) count as the fastest, and all-zero times give equal speeds."""
    flat = np.concatenate([np.asarray(c, dtype=float) for c in compute])
    positive = flat[flat > 0]
    floor = positive.min() if positive.size else 1.0
    return [floor / np.maximum(np.asarray(c, dtype=float), floor) for c in compute]


def allocate(compute: Sequence[np.ndarray], s_e: int, s_w: Sequence[int], gamma_e: float,
             gamma_w: float, reduction_e: int = 1, reduction_w: int = 1) -> tuple[np.ndarray, list[np.ndarray]]:
    """Edge shares ``f`` and per-edge worker shares ``g`` for participating edges whose workers have median
    whole-dataset compute times ``compute[i]`` (seconds); see the module docstring. With reductions the
    shares add up to ``s_e + ℓ_e`` and ``s_w[i] + ℓ_w``."""
    speeds = relative_speeds(compute)
    inner = [waterfill(v ** gamma_w, s + reduction_w) for v, s in zip(speeds, s_w)]
    kappa = np.array([v.sum() / (s + reduction_w) for v, s in zip(speeds, s_w)])
    return waterfill(kappa ** gamma_e, s_e + reduction_e), inner


def exact_strategy(model: TimingModel, edges: Sequence[int], workers: Sequence[Sequence[int]], s_e: int,
                   s_w: Sequence[int], f: np.ndarray, g: Sequence[np.ndarray], *, reduction_e: int = 1,
                   reduction_w: int = 1, partitions: int | None = None) -> Strategy:
    """The strategy with float shares ``f``, ``g`` made exact on the grid of ``partitions`` partitions
    (:data:`~hgc.schemes.hgc.ALLOCATION_GRID` by default; each load moves by less than ``2/K``), its loads
    those of the exact shares. Workers are listed by position within each edge, ``g`` in the same order."""
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
    uniform_s_w: int | tuple[int, ...] = s_w_[0] if len(set(s_w_)) == 1 else tuple(s_w_[i] for i in keep_e)
    return HGC_SCHEME.strategy(model.topology, s_e=s_e, s_w=uniform_s_w, edges=[edges[i] for i in keep_e],
                               workers=kept_workers, reduction_e=reduction_e, reduction_w=reduction_w,
                               edge_shares=[edge_shares[i] for i in keep_e], worker_shares=kept_shares)


def allocate_on(model: TimingModel, s_e: int, s_w: int | Sequence[int], allocation: str, *,
                evaluator: Evaluator | None = None, reduction_e: int = 1, reduction_w: int = 1
                ) -> tuple[Strategy, str]:
    """``allocation`` ``speed`` (shares proportional to speed, γ = 1) or ``optimized`` (the exponents
    searched with the analytic evaluator) on all nodes with the given tolerances; ``(strategy, note)``."""
    scorer = Scorer(model, evaluator)
    topo = model.topology
    n = topo.n_edges
    s_w_ = tuple(int(s) for s in (s_w if not isinstance(s_w, (int, np.integer)) else [s_w] * n))
    compute, _ = scorer.evaluator.worker_quantiles(0.5)
    per_edge = [compute[int(topo.offsets[i]):int(topo.offsets[i + 1])] for i in range(n)]
    edges = list(range(n))
    workers = [tuple(range(m)) for m in topo.workers]

    def candidate(gamma_e: float, gamma_w: float) -> Strategy:
        f, g = allocate(per_edge, s_e, s_w_, gamma_e, gamma_w, reduction_e, reduction_w)
        loads = tuple(tuple(float(f[i] * x) for x in g[i]) for i in range(n))
        return scorer_strategy(edges, workers, s_e, s_w_, loads, reduction_e, reduction_w)

    best = (1.0, 1.0)
    if allocation == "optimized":
        values = {best: float(scorer([candidate(*best)])[0])}
        for step in GAMMA_STEPS:
            while True:
                moves = [(max(0.0, best[0] + de * step), max(0.0, best[1] + dw * step))
                         for de, dw in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1))]
                moves = [m for m in dict.fromkeys(moves) if m not in values]
                if not moves:
                    break
                values.update(zip(moves, scorer([candidate(*m) for m in moves]).tolist()))
                better = min(values, key=lambda m: values[m])
                if not values[better] < values[best] * (1.0 - 1e-4):
                    break
                best = better
    f, g = allocate(per_edge, s_e, s_w_, best[0], best[1], reduction_e, reduction_w)
    strategy = exact_strategy(model, edges, workers, s_e, s_w_, f, g, reduction_e=reduction_e,
                              reduction_w=reduction_w)
    how = ("shares proportional to speed" if allocation == "speed"
           else f"shares ∝ speed^γ with γ_edges={best[0]:g}, γ_workers={best[1]:g} by analytic E[T]")
    return strategy, f"allocation {allocation}: {how}"


def scorer_strategy(edges: Sequence[int], workers: Sequence[Sequence[int]], s_e: int, s_w: tuple[int, ...],
                    loads: tuple[tuple[float, ...], ...], reduction_e: int = 1, reduction_w: int = 1) -> Strategy:
    """A candidate with float per-worker loads (for scoring; :func:`exact_strategy` makes the final one)."""
    from hgc.schemes.hgc import HGC_SCHEME  # noqa: PLC0415 - the scheme modules import this package lazily

    uniform: int | tuple[int, ...] = s_w[0] if len(set(s_w)) == 1 else s_w
    return HGC_SCHEME.candidate(edges, workers, s_e, uniform, loads=loads, reduction_e=reduction_e,
                                reduction_w=reduction_w)


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


class _Search:
    """Candidates of the search as strategies with per-worker loads, scored with memoisation."""

    def __init__(self, model: TimingModel, scorer: Scorer, ranking: tuple[tuple[int, ...], ...]):
        self.model = model
        self.scorer = scorer
        self.ranking = ranking
        self.sizes = model.topology.workers
        compute, _ = scorer.evaluator.worker_quantiles(0.5)
        offsets = model.topology.offsets
        self.compute = [compute[int(offsets[i]) + np.asarray(ranking[i], dtype=int)] for i in range(len(self.sizes))]

    def build(self, sel: Selection) -> tuple[Strategy, list[int], list[tuple[int, ...]], np.ndarray,
                                              list[np.ndarray]] | None:
        """``(candidate, edges, workers, f, g)`` of a selection: workers by position within each edge and
        ``g`` in the same order; ``None`` when the selection is not admissible."""
        if not sel.admissible():
            return None
        edges = [i for i, c in enumerate(sel.counts) if c > 0]
        compute = [self.compute[i][: sel.counts[i]] for i in edges]
        s_w = tuple(sel.s_w[i] for i in edges)
        f, g = allocate(compute, sel.s_e, s_w, sel.gamma_e, sel.gamma_w)
        workers, loads, shares = [], [], []
        for k, i in enumerate(edges):
            chosen = self.ranking[i][: sel.counts[i]]
            order = np.argsort(chosen, kind="stable")             # positions ascending, loads along
            workers.append(tuple(int(chosen[j]) for j in order))
            loads.append(tuple(float(f[k] * g[k][j]) for j in order))
            shares.append(np.asarray(g[k])[order])
        strategy = scorer_strategy(edges, workers, sel.s_e, s_w, tuple(loads))
        return strategy, edges, workers, f, shares

    def score(self, selections: Sequence[Selection]) -> list[tuple[Selection, float]]:
        built = [(sel, b[0]) for sel in dict.fromkeys(selections) if (b := self.build(sel)) is not None]
        if not built:
            return []
        values = self.scorer([st for _, st in built])
        return [(sel, float(v)) for (sel, _), v in zip(built, values)]


def _uniform(counts: Sequence[int], s_w: int) -> tuple[int, ...]:
    return tuple(s_w if c > 0 else 0 for c in counts)


def _starts(search: _Search, base: Strategy) -> list[Selection]:
    """Step 2: node sets × tolerance pairs × {speed, equal} allocations."""
    sizes = search.sizes
    counts_base = [0] * len(sizes)
    for e, ws in zip(base.edges, base.workers):
        counts_base[e] = len(ws)
    node_sets = [tuple(counts_base), tuple(sizes)]
    for fraction in SPEED_FRACTIONS:
        kept = []
        for i in range(len(sizes)):
            speed = relative_speeds([search.compute[i]])[0]
            kept.append(int((speed >= fraction * speed.max()).sum()))
        node_sets.append(tuple(kept))
    base_s_e, base_s_w = int(base.s_e), int(max(np.atleast_1d(base.s_w)))
    out = []
    for counts in dict.fromkeys(node_sets):
        present = [c for c in counts if c > 0]
        n, m_min = len(present), min(present)
        pairs = {(min(base_s_e + de, n - 1), min(base_s_w + dw, m_min - 1))
                 for de in (-1, 0, 1, 2) for dw in (-1, 0, 1)}
        pairs |= {(a, 0) for a in range(n)} if n <= 6 else {(n // 2, 0), (n - 1, 0)}
        for s_e, s_w in pairs:
            if s_e < 0 or s_w < 0:
                continue
            for gamma in (1.0, 0.0):
                out.append(Selection(counts, s_e, _uniform(counts, s_w), gamma, gamma))
    return out


def _neighbours(sel: Selection, step: float) -> list[Selection]:
    """Step 3 moves: per-edge s_w ±1, s_e ±1, and γ steps."""
    out = []
    for i, c in enumerate(sel.counts):
        if c > 0:
            for d in (1, -1):
                s_w = list(sel.s_w)
                s_w[i] += d
                out.append(Selection(sel.counts, sel.s_e, tuple(s_w), sel.gamma_e, sel.gamma_w))
    for d in (1, -1):
        out.append(Selection(sel.counts, sel.s_e + d, sel.s_w, sel.gamma_e, sel.gamma_w))
    for de, dw in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1)):
        out.append(Selection(sel.counts, sel.s_e, sel.s_w, max(0.0, sel.gamma_e + de * step),
                             max(0.0, sel.gamma_w + dw * step)))
    return out


def hetero_greedy(model: TimingModel, *, evaluator: Evaluator | None = None, jncss: JNCSSResult | None = None,
                  progress: ProgressFactory | None = None) -> HeteroResult:
    """Heterogeneity-aware HGC by the search of the module docstring; never worse than JNCSS (whose choice,
    ``jncss``, is computed when not given)."""
    started = time.perf_counter()
    scorer = Scorer(model, evaluator)
    base = jncss or greedy_jncss(model, evaluator=scorer.evaluator)
    ranking = worker_ranking(model, base.strategy.load, scorer.evaluator)
    search = _Search(model, scorer, ranking)
    scored = dict(search.score(_starts(search, base.strategy)))
    best_first = sorted(scored, key=lambda s: scored[s])
    with progress_bar(progress, KEEP, "heterogeneity-aware HGC", "start") as bar:
        for start in best_first[:KEEP]:
            current, value = start, scored[start]
            for step in GAMMA_STEPS:
                while True:
                    options = search.score(_neighbours(current, step))
                    scored.update(options)
                    if not options:
                        break
                    candidate, candidate_value = min(options, key=lambda o: o[1])
                    if not candidate_value < value * (1.0 - 1e-4):
                        break
                    current, value = candidate, candidate_value
            bar.update(1)
    finalists = sorted(scored, key=lambda s: scored[s])[:REFINE_TOP]
    best: tuple[float, Selection, Strategy, Evaluation, np.ndarray, list[np.ndarray]] | None = None
    for sel in finalists:
        built = search.build(sel)
        if built is None or not math.isfinite(scored[sel]):
            continue
        _, edges, workers, f, g = built
        strategy = exact_strategy(model, edges, workers, sel.s_e, [sel.s_w[i] for i in edges], f, g)
        evaluation = scorer.accurate(strategy)
        value = objective(evaluation)
        if best is None or value < best[0]:
            best = (value, sel, strategy, evaluation, f, g)
    seconds = time.perf_counter() - started
    if best is None or best[0] >= base.objective:
        counts = [0] * len(search.sizes)
        for e, ws in zip(base.strategy.edges, base.strategy.workers):
            counts[e] = len(ws)
        sel = Selection(tuple(counts), int(base.strategy.s_e), _uniform(counts, int(base.strategy.s_w)), 0.0, 0.0)
        total = base.strategy.n_workers
        f = np.array([(int(base.strategy.s_e) + 1) * len(ws) / total for ws in base.strategy.workers])
        shares = tuple(tuple([(int(base.strategy.s_w) + 1) / len(ws)] * len(ws)) for ws in base.strategy.workers)
        assert base.evaluation is not None
        return HeteroResult(base.strategy, base.evaluation, base.objective, sel, tuple(float(x) for x in f), shares,
                            base, seconds, scorer.evaluations, notes=["the JNCSS choice (equal shares) was best"])
    value, sel, strategy, evaluation, f, g = best
    return HeteroResult(strategy, evaluation, value, sel, tuple(float(x) for x in f),
                        tuple(tuple(float(x) for x in gi) for gi in g), base, seconds, scorer.evaluations)


HETERO_EXHAUSTIVE_LIMIT = 20_000
"""``hgc optimize`` adds an exhaustive heterogeneity-aware row when it has at most this many candidates."""
EXHAUSTIVE_GAMMAS = (0.0, 0.5, 1.0, 1.5, 2.0)
"""Allocation exponents every exhaustive candidate is scored with (for both layers)."""


def hetero_space(model: TimingModel, cap: float = math.inf) -> int:
    """Candidates :func:`hetero_exhaustive` scores: dominance-closed node sets × ``s_e`` × per-edge ``s_w``
    × allocation exponents (a number above ``cap`` once it is known to exceed it)."""
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
    """The best heterogeneity-aware strategy by exhaustive search over dominance-closed node sets, ``s_e``,
    per-edge ``s_w`` and the allocation exponents of :data:`EXHAUSTIVE_GAMMAS` (ground truth for
    :func:`hetero_greedy` on small systems). Raises :class:`~hgc.errors.ConfigError` beyond ``limit``."""
    from hgc.errors import ConfigError  # noqa: PLC0415
    from hgc.optimizer.exhaustive import edge_options  # noqa: PLC0415 - see hetero_space

    started = time.perf_counter()
    size = hetero_space(model, limit)
    if size > limit:
        raise ConfigError(f"the exhaustive heterogeneity-aware search would score more than {limit} candidates "
                          "on this system; use the greedy one", "method")
    scorer = Scorer(model, evaluator)
    compute, _ = scorer.evaluator.worker_quantiles(0.5)
    offsets = model.topology.offsets
    candidates: list[tuple[Strategy, list[int], list[tuple[int, ...]], int, tuple[int, ...], np.ndarray,
                           list[np.ndarray]]] = []
    for choice in _choices(edge_options(model, limit)):
        edges = [i for i, w in enumerate(choice) if w]
        workers = [tuple(choice[i]) for i in edges]
        times = [compute[int(offsets[i]) + np.asarray(choice[i], dtype=int)] for i in edges]
        for s_e in range(len(edges)):
            for s_w in itertools.product(*[range(len(w)) for w in workers]):
                for gamma_e in EXHAUSTIVE_GAMMAS:
                    for gamma_w in EXHAUSTIVE_GAMMAS:
                        f, g = allocate(times, s_e, s_w, gamma_e, gamma_w)
                        loads = tuple(tuple(float(f[k] * x) for x in g[k]) for k in range(len(edges)))
                        candidates.append((scorer_strategy(edges, workers, s_e, tuple(s_w), loads), edges, workers,
                                           s_e, tuple(s_w), f, g))
    scores = []
    with progress_bar(progress, len(candidates), f"heterogeneity-aware exhaustive ({len(candidates)})",
                      "candidate") as bar:
        for start in range(0, len(candidates), 5_000):
            batch = [c[0] for c in candidates[start:start + 5_000]]
            scores.extend(scorer(batch).tolist())
            bar.update(len(batch))
    order = np.argsort(scores, kind="stable")[:REFINE_TOP]
    best: tuple[float, Strategy, Evaluation, int, tuple[int, ...], np.ndarray, list[np.ndarray]] | None = None
    for index in order:
        _, edges, workers, s_e, s_w, f, g = candidates[int(index)]
        strategy = exact_strategy(model, edges, workers, s_e, s_w, f, g)
        evaluation = scorer.accurate(strategy)
        value = objective(evaluation)
        if best is None or value < best[0]:
            best = (value, strategy, evaluation, s_e, s_w, f, g)
    assert best is not None
    value, strategy, evaluation, s_e, s_w, f, g = best
    selection = Selection(tuple(len(w) for w in strategy.workers), s_e, s_w, math.nan, math.nan)
    return HeteroResult(strategy, evaluation, value, selection, tuple(float(x) for x in f),
                        tuple(tuple(float(x) for x in row) for row in g), None, time.perf_counter() - started,
                        scorer.evaluations, method="exhaustive", space=len(candidates))

