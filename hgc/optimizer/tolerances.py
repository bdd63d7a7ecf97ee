"""The best tolerances ``(s_e, s_w)`` (and message reductions ``(ℓ_e, ℓ_w)``) of hierarchical gradient coding
on a fixed set of nodes."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from hgc.analytic import Evaluation, Evaluator
from hgc.codes import admissible_hgc, hgc_reachable
from hgc.errors import ConfigError
from hgc.optimizer.scoring import REFINE_TOP, Scorer, final, refine
from hgc.schemes import Strategy, all_nodes
from hgc.schemes.hgc import HGC_SCHEME
from hgc.timing import TimingModel

ALL_PAIRS_LIMIT = 48
"""All admissible (s_e, s_w) are scored up to this many pairs, else a coarse lattice refined locally."""


REDUCTIONS = (1, 2, 3, 4)
"""Message reductions ``ℓ_e``, ``ℓ_w`` tried when they are chosen automatically."""


def links_free(model: TimingModel) -> tuple[bool, bool]:
    """``(worker links free, edge links free)``: whether every worker's (edge's) ``per_vector`` is 0, so that
    message lengths cost nothing there."""
    worker = model.worker_per_vector is None or not any(model.worker_per_vector)
    return worker, not any(model.per_vector)


def reduction_pairs(model: TimingModel, reduction_e: int | None = None, reduction_w: int | None = None
                    ) -> list[tuple[int, int]]:
    """The ``(ℓ_e, ℓ_w)`` a search tries: a given value is kept, ``None`` means every value of
    :data:`REDUCTIONS`, except where shorter messages provably cannot help.

    Pruning (exact, failures included): with the tolerances fixed, lowering ``ℓ_w`` to 1 keeps every wait
    rank, the decodable patterns and the edge message ``1/ℓ_e`` and lowers every load, so it makes ``T``
    pointwise no larger; it changes only the worker message, which costs nothing when every worker link is
    free (``per_vector`` 0). Lowering ``ℓ_e`` to 1 likewise changes only message lengths, which cost
    nothing when worker and edge links are all free. So ``ℓ_w = 1`` when worker links are free and
    ``ℓ_e = 1`` when all links are; on such models the searches are exactly those without reductions.
    Full-length pairs come first, so that ties go to them."""
    worker_free, edge_free = links_free(model)
    e_values = (reduction_e,) if reduction_e is not None else ((1,) if worker_free and edge_free else REDUCTIONS)
    w_values = (reduction_w,) if reduction_w is not None else ((1,) if worker_free else REDUCTIONS)
    return sorted(((a, b) for a in e_values for b in w_values), key=lambda p: (p[0] * p[1], p))


def admissible_pairs(counts: Sequence[int], reduction_e: int = 1, reduction_w: int = 1) -> list[tuple[int, int]]:
    """Admissible ``(s_e, s_w)`` for participating ``counts`` (:func:`hgc.codes.admissible_hgc`; with
    reductions, the pairs whose equal allocation exists)."""
    counts = tuple(int(c) for c in counts)
    if (reduction_e, reduction_w) == (1, 1):
        return admissible_hgc(counts)
    return [(a, b) for a in range(len(counts)) for b in range(min(counts))
            if hgc_reachable(counts, a, b, reduction_e, reduction_w)]


def tolerance_search(scorer: Scorer, edges: Sequence[int], workers: Sequence[Sequence[int]],
                      fixed_e: int | None = None, fixed_w: int | None = None, keep: int = REFINE_TOP,
                      refine: bool = True, reduction_e: int = 1, reduction_w: int = 1
                      ) -> list[tuple[Strategy, float]]:
    """The best ``(s_e, s_w)`` on one node set by search-grid score: all admissible pairs when they are
    few, else a coarse lattice, then (if ``refine``) a pattern search. Returns the ``keep`` best
    (strategy, score). The reductions are fixed."""
    counts = [len(w) for w in workers]
    pairs = [(a, b) for a, b in admissible_pairs(counts, reduction_e, reduction_w)
             if (fixed_e is None or a == fixed_e) and (fixed_w is None or b == fixed_w)]
    if not pairs:
        return []
    admissible = set(pairs)
    scored: dict[tuple[int, int], float] = {}

    def score(batch: Iterable[tuple[int, int]]) -> None:
        batch = [p for p in dict.fromkeys(batch) if p in admissible and p not in scored]
        if batch:
            values = scorer([HGC_SCHEME.candidate(edges, workers, a, b, reduction_e=reduction_e,
                                                  reduction_w=reduction_w) for a, b in batch])
            scored.update(zip(batch, values.tolist()))

    if len(pairs) <= ALL_PAIRS_LIMIT:
        score(pairs)
    else:
        e_values = sorted({a for a, _ in pairs})
        w_values = sorted({b for _, b in pairs})
        coarse_e = spread_values(e_values, 7)
        coarse_w = spread_values(w_values, 6)
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
    return [(HGC_SCHEME.candidate(edges, workers, a, b, reduction_e=reduction_e, reduction_w=reduction_w),
             scored[(a, b)]) for a, b in best]


def doubling(limit: int) -> list[int]:
    """1, 2, 4, ... up to ``limit``."""
    out, r = [], 1
    while r <= limit:
        out.append(r)
        r *= 2
    return out


def spread_values(values: Sequence[int], count: int) -> list[int]:
    """About ``count`` values spread over ``values`` (denser near the small end), always with the ends."""
    if len(values) <= count:
        return list(values)
    picks = np.unique(np.round(np.geomspace(1, len(values), count)).astype(int) - 1)
    return sorted({values[0], values[-1], *(values[i] for i in picks)})


def best_hgc_tolerances(model: TimingModel, s_e: int | None = None, s_w: int | None = None, *,
                        evaluator: Evaluator | None = None, reduction_e: int | None = 1,
                        reduction_w: int | None = 1) -> Strategy:
    """The ``hgc`` strategy on all nodes with the best tolerances and reductions (``None`` = choose, an
    int = fixed; reductions from :func:`reduction_pairs`), by the analytic evaluator: search-grid scores,
    then the best few re-evaluated accurately.

    Raises :class:`~hgc.errors.ConfigError` (key ``schemes``) when no admissible pair exists.
    """
    return best_all_nodes(model, s_e, s_w, Scorer(model, evaluator), reduction_e, reduction_w)[0]


def best_all_nodes(model: TimingModel, s_e: int | None, s_w: int | None, scorer: Scorer,
                   reduction_e: int | None = 1, reduction_w: int | None = 1
                   ) -> tuple[Strategy, Evaluation, list[tuple[Strategy, float]]]:
    edges, workers = all_nodes(model.topology)
    ranked: list[tuple[Strategy, float]] = []
    for l_e, l_w in reduction_pairs(model, reduction_e, reduction_w):
        ranked += tolerance_search(scorer, edges, workers, s_e, s_w, reduction_e=l_e, reduction_w=l_w)
    ranked.sort(key=lambda item: item[1])
    if not ranked:
        raise ConfigError(f"no admissible (s_e, s_w) with s_e={'auto' if s_e is None else s_e}, "
                          f"s_w={'auto' if s_w is None else s_w} on edges of sizes {list(model.topology.workers)}",
                          "schemes")
    top = REFINE_TOP if model.topology.n_workers <= 400 else 2     # accurate evaluations are costly there
    strategy, evaluation = refine(scorer, [r[0] for r in ranked], np.array([r[1] for r in ranked]), top)
    return final(model, strategy), evaluation, ranked
