"""Searches that choose strategies: JNCSS (joint node and coding-scheme selection), tolerances, flat GC.

JNCSS chooses the participating edges, the participating workers of each, and one pair of tolerances
``(s_e, s_w)`` to minimise the expected iteration time of hierarchical gradient coding. Every worker then
carries the load of the bound (Theorem 1) *on the participating counts*,
``ℓ = (s_e+1)(s_w+1) / Σ_{participating} m'_i``, so dropping a slow node speeds up the order statistics
but raises everybody's load. Candidates are scored with the analytic evaluator (:mod:`hgc.analytic`);
the objective is ``E[T | decoded] / P(decoded)`` (seconds per successful iteration; plain ``E[T]`` when
nodes do not fail).

Two methods:

**Exhaustive** (:func:`~hgc.optimizer.exhaustive.exhaustive_jncss`, ground truth for small systems). Enumerates every non-empty
set of edges, for each edge every non-empty set of its workers that is *closed under stochastic
dominance* (if a worker is in, every worker whose compute, overhead and uplink delays are all
stochastically smaller is in too; among identical workers, the lower positions), and every admissible
``(s_e, s_w)``. The restriction loses nothing: with the counts and tolerances fixed, swapping a worker
for one that is stochastically faster in every component can only make each order statistic (hence
``T``) stochastically smaller, by a coupling argument. All candidates are scored on search grids
(batched per load); the best few are re-evaluated with the accurate, error-controlled evaluator.

**Greedy** (:func:`~hgc.optimizer.greedy.greedy_jncss`, scales to thousands of workers). Steps:

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

Modules: :mod:`~hgc.optimizer.scoring` (memoised objectives, accurate refinement),
:mod:`~hgc.optimizer.ranking` (worker speed ranking, stochastic dominance),
:mod:`~hgc.optimizer.tolerances` (best ``(s_e, s_w)`` on a node set), :mod:`~hgc.optimizer.greedy`,
:mod:`~hgc.optimizer.exhaustive`, :mod:`~hgc.optimizer.flat` (the best flat GC).
"""

from __future__ import annotations

from hgc.errors import ConfigError
from hgc.optimizer.exhaustive import exhaustive_jncss, exhaustive_size
from hgc.optimizer.flat import FlatChoice, best_flat_gc
from hgc.optimizer.greedy import greedy_jncss
from hgc.optimizer.ranking import worker_ranking
from hgc.optimizer.scoring import JNCSSResult, Scorer
from hgc.optimizer.tolerances import best_hgc_tolerances
from hgc.timing import TimingModel

METHODS = ("greedy", "exhaustive")

__all__ = [
    "FlatChoice", "JNCSSResult", "METHODS", "Scorer", "best_flat_gc", "best_hgc_tolerances", "exhaustive_jncss",
    "exhaustive_size", "greedy_jncss", "select_jncss", "worker_ranking",
]


def select_jncss(model: TimingModel, method: str = "greedy") -> JNCSSResult:
    """The JNCSS choice for ``model`` by ``method`` (``greedy`` or ``exhaustive``)."""
    if method == "greedy":
        return greedy_jncss(model)
    if method == "exhaustive":
        return exhaustive_jncss(model)
    raise ConfigError(f"unknown method '{method}' (one of: {', '.join(METHODS)})", "method")
