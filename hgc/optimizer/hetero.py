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
from typing import Sequence

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


def allocate(compute: Sequence[np.ndarray], s_e: int, s_w: Sequence[int], gamma_e: float,
             gamma_w: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Edge shares ``f`` and per-edge worker shares ``g`` for participating edges whose workers have median
    whole-dataset compute times ``compute[i]`` (seconds); see the module docstring."""
    speeds = [1.0 / np.maximum(np.asarray(c, dtype=float), 1e-300) for c in compute]
    inner = [waterfill(v ** gamma_w, s + 1) for v, s in zip(speeds, s_w)]
    kappa = np.array([v.sum() / (s + 1) for v, s in zip(speeds, s_w)])
    return waterfill(kappa ** gamma_e, s_e + 1), inner


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
    jncss: JNCSSResult
    seconds: float
    evaluations: int
    method: str = "greedy"
    space: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def gain(self) -> float:
        return self.jncss.objective / self.objective - 1.0 if self.objective > 0 else math.nan


class _Search:
    """Candidates of the search as strategies with per-worker loads, scored with memoisation."""

    def __init__(self, model: TimingModel, scorer: Scorer, ranking: tuple[tuple[int, ...], ...]):
        from hgc.schemes.hgc import HGC_SCHEME  # noqa: PLC0415 - the scheme module imports this package lazily

        self.model = model
        self.scorer = scorer
        self.ranking = ranking
        self.sizes = model.topology.workers
        self.scheme = HGC_SCHEME
        compute, _ = scorer.evaluator.worker_quantiles(0.5)
        offsets = model.topology.offsets
        self.compute = [compute[int(offsets[i]) + np.asarray(ranking[i], dtype=int)] for i in range(len(self.sizes))]

    def build(self, sel: Selection) -> tuple[Strategy, np.ndarray, list[np.ndarray]] | None:
        if not sel.admissible():
            return None
        edges = [i for i, c in enumerate(sel.counts) if c > 0]
        compute = [self.compute[i][: sel.counts[i]] for i in edges]
        s_w = [sel.s_w[i] for i in edges]
        f, g = allocate(compute, sel.s_e, s_w, sel.gamma_e, sel.gamma_w)
        workers, loads = [], []
        for k, i in enumerate(edges):
            chosen = self.ranking[i][: sel.counts[i]]
            order = np.argsort(chosen, kind="stable")             # positions ascending, loads along
            workers.append(tuple(int(chosen[j]) for j in order))
            loads.append(tuple(float(f[k] * g[k][j]) for j in order))
        strategy = self.scheme.candidate(edges, workers, sel.s_e, tuple(s_w), loads=tuple(loads))
        return strategy, f, g

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
            speed = 1.0 / np.maximum(search.compute[i], 1e-300)
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
        strategy, f, g = built
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
