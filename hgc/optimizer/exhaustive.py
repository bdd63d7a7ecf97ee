"""Exhaustive JNCSS: the ground truth on small systems.

Enumerates every non-empty set of edges, for each edge every non-empty set of its workers that is closed
under stochastic dominance (if a worker is in, every worker whose compute, overhead and uplink delays are
all stochastically smaller and whose per-vector link time is no larger is in too; among identical workers,
the lower positions), and every admissible ``(s_e, s_w, ℓ_e, ℓ_w)``, the reductions from
:func:`~hgc.optimizer.tolerances.reduction_pairs` (1..4 each where links charge for message length, only 1
where they cannot matter). The restriction loses nothing: with the counts, tolerances and reductions fixed,
swapping a worker for one that is stochastically faster in every component can only make each order
statistic (hence ``T``) stochastically smaller, by a coupling argument. All candidates are scored on
search grids (batched); the best few are re-evaluated with the accurate, error-controlled evaluator.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Any, Sequence

import numpy as np

from hgc.analytic import Evaluator
from hgc.errors import ConfigError
from hgc.optimizer.ranking import down_sets
from hgc.optimizer.scoring import JNCSSResult, Scorer, final, objective, refine
from hgc.optimizer.tolerances import admissible_pairs, reduction_pairs
from hgc.progress import ProgressFactory, progress_bar
from hgc.schemes import Strategy
from hgc.schemes.hgc import HGC_SCHEME
from hgc.schemes.jncss import EXHAUSTIVE_HARD_LIMIT
from hgc.timing import TimingModel

SCORE_BATCH = 50_000
"""Candidates scored per batched evaluator call."""


def edge_options(model: TimingModel, limit: float = math.inf) -> list[list[tuple[int, ...]]]:
    """Per edge, its dominance-closed worker sets (at most about ``limit`` of them)."""
    cache: dict[Any, bool] = {}
    return [down_sets(model, i, cache, limit) for i in range(model.topology.n_edges)]


def exhaustive_size(model: TimingModel, options: list[list[tuple[int, ...]]] | None = None,
                    cap: float = math.inf, reduction_e: int | None = None, reduction_w: int | None = None) -> int:
    """Number of candidates :func:`exhaustive_jncss` scores: node sets × admissible ``(s_e, s_w, ℓ_e, ℓ_w)``
    (a number above ``cap`` once it is known to exceed it: every choice of worker sets has at least one
    admissible tolerance pair)."""
    if options is None:
        options = edge_options(model, cap)
    reductions = reduction_pairs(model, reduction_e, reduction_w)
    if math.prod(1 + len(o) for o in options) - 1 > cap:
        return int(min(math.prod(1 + len(o) for o in options) - 1, 10 ** 18))
    # combinations of per-edge options, bucketed by the participating counts (enough to count pairs)
    per_edge = [size_counts(opts) for opts in options]
    total = 0
    for chosen in itertools.product(*[[(0, 1)] + list(p.items()) for p in per_edge]):
        counts = [c for c, _ in chosen if c > 0]
        if not counts:
            continue
        total += math.prod(k for c, k in chosen if c > 0) * sum(len(admissible_pairs(counts, a, b))
                                                               for a, b in reductions)
        if total > cap:
            return int(total)
    return int(total)


def size_counts(options: Sequence[tuple[int, ...]]) -> dict[int, int]:
    """How many of ``options`` have each size."""
    out: dict[int, int] = {}
    for o in options:
        out[len(o)] = out.get(len(o), 0) + 1
    return out


def exhaustive_jncss(model: TimingModel, *, limit: int = EXHAUSTIVE_HARD_LIMIT,
                     evaluator: Evaluator | None = None, progress: ProgressFactory | None = None,
                     reduction_e: int | None = None, reduction_w: int | None = None) -> JNCSSResult:
    """JNCSS by exhaustive search (ground truth on small systems; see the module docstring). Reductions
    ``(ℓ_e, ℓ_w)``: ``None`` = every pair of :func:`~hgc.optimizer.tolerances.reduction_pairs` (only
    full-length messages where links are free), an int = fixed.

    Raises :class:`~hgc.errors.ConfigError` (key ``--method``) when the search space exceeds ``limit``.
    """
    started = time.perf_counter()
    options = edge_options(model, limit)
    size = exhaustive_size(model, options, cap=limit, reduction_e=reduction_e, reduction_w=reduction_w)
    reductions = reduction_pairs(model, reduction_e, reduction_w)
    if size > limit:
        raise ConfigError(f"exhaustive JNCSS would score more than {limit} candidates on this system "
                          f"(edges of sizes {list(model.topology.workers)}); use the greedy method", "method")
    scorer = Scorer(model, evaluator)
    candidates: list[Strategy] = []
    n = model.topology.n_edges
    for choice in itertools.product(*[[()] + opts for opts in options]):
        edges = [i for i in range(n) if choice[i]]
        if not edges:
            continue
        workers = [choice[i] for i in edges]
        counts = [len(w) for w in workers]
        candidates += [HGC_SCHEME.candidate(edges, workers, a, b, reduction_e=c, reduction_w=d)
                       for c, d in reductions for a, b in admissible_pairs(counts, c, d)]
    parts = []
    with progress_bar(progress, len(candidates), f"JNCSS exhaustive ({len(candidates)} candidates)", "candidate") as bar:
        for i in range(0, len(candidates), SCORE_BATCH):
            parts.append(scorer(candidates[i: i + SCORE_BATCH]))
            bar.update(len(parts[-1]))
    scores = np.concatenate(parts)
    chosen, evaluation = refine(scorer, candidates, scores)
    return JNCSSResult(final(model, chosen), evaluation.expected_time, evaluation.decode_probability,
                       objective(evaluation), time.perf_counter() - started, "exhaustive", scorer.evaluations,
                       len(candidates), evaluation)
