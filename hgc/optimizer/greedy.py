"""Greedy JNCSS: a multi-start steepest-descent local search over node selections and tolerances.

Steps (see also the package docstring):

1. *Rank* the workers of every edge by a dominance-consistent speed score (the sum of their component
   quantiles at levels 0.1, 0.3, ..., 0.9 at the best all-nodes load); from here on an edge that keeps
   ``c`` workers keeps its ``c`` best-ranked ones, so a selection is a vector of counts
   ``c_i ∈ {0, 1..m_i}`` (0 = edge dropped) plus ``(s_e, s_w)``.
2. *Starting points*, each with its best tolerances: all nodes (the two best pairs); without the smallest
   edges (whose size caps ``s_w`` and ``s_e``); every edge capped at a common number of its best workers;
   the edges with at least ``c`` workers, each with its ``c`` best; the ``j`` best edges. The best start of
   each family (topped up to ``START_RUNS`` starts) goes to step 3.
3. *Local search* (steepest descent) from each start. Every round scores, in batched calls, the moves:
   drop the lowest-ranked worker of any edge, or add back its next one; drop the ``r`` globally slowest
   participating workers, or add back the ``r`` fastest left-out ones, for ``r = 1, 2, 4, ...``; cap
   every edge at a common count; drop one of the ``EDGE_MOVES`` slowest edges (keeping ``s_e``, or with
   ``s_e - 1``), or the ``r`` slowest together; re-admit one of the ``EDGE_MOVES`` best dropped edges with a
   spread of worker counts; change ``s_e`` or ``s_w`` by ±1 (and both, in opposite directions); change
   ``s_w`` by ±1 together with every edge's count (which keeps each ``k_i``). When several single-worker
   drops improve, the best ``r`` of them together are tried for ``r = 2, 4, 8, ...``. The ``RETUNE_SETS``
   most promising new node sets (on small systems also every edge drop/re-admission) are re-scored with
   re-chosen tolerances. The best move is taken if it improves the objective by more than
   ``IMPROVEMENT``; a run never revisits a selection, so it terminates.
4. The best final selection and the best all-nodes strategy are re-evaluated accurately and the better
   one is returned.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from hgc.analytic import Evaluator
from hgc.codes import hgc_reachable
from hgc.optimizer.ranking import SCORE_LEVELS, speed_scores, worker_ranking
from hgc.optimizer.scoring import JNCSSResult, Scorer, final, objective
from hgc.progress import ProgressFactory, progress_bar
from hgc.optimizer.tolerances import (admissible_pairs, best_all_nodes, doubling, reduction_pairs, spread_values,
                                      tolerance_search)
from hgc.schemes import Strategy
from hgc.schemes.hgc import HGC_SCHEME
from hgc.timing import TimingModel

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


@dataclass(frozen=True)
class _State:
    counts: tuple[int, ...]   # participating workers per edge (prefix of the ranking), 0 = dropped
    s_e: int
    s_w: int
    l_e: int = 1              # message reductions ℓ_e, ℓ_w
    l_w: int = 1

    @property
    def code(self) -> tuple[int, int, int, int]:
        return self.s_e, self.s_w, self.l_e, self.l_w


def _state(counts: Sequence[int], st: Strategy) -> _State:
    """The state of a searched strategy on ``counts``."""
    return _State(tuple(counts), int(st.s_e), int(st.s_w), int(st.get("reduction_e", 1)),
                  int(st.get("reduction_w", 1)))


class _Greedy:
    """Step 3 of the greedy (see the module docstring)."""

    def __init__(self, model: TimingModel, scorer: Scorer, ranking: tuple[tuple[int, ...], ...],
                 reductions: Sequence[tuple[int, int]] = ((1, 1),)):
        self.model = model
        self.scorer = scorer
        self.ranking = ranking
        self.sizes = model.topology.workers
        self.reductions = tuple(reductions)
        self.on_round: Callable[[], object] = lambda: None

    def strategy(self, state: _State) -> Strategy | None:
        counts = [c for c in state.counts if c > 0]
        if (not counts or (state.l_e, state.l_w) not in self.reductions
                or not hgc_reachable(counts, state.s_e, state.s_w, state.l_e, state.l_w)):
            return None
        edges = [i for i, c in enumerate(state.counts) if c > 0]
        workers = [tuple(sorted(self.ranking[i][: state.counts[i]])) for i in edges]
        return HGC_SCHEME.candidate(edges, workers, state.s_e, state.s_w, reduction_e=state.l_e,
                                    reduction_w=state.l_w)

    def scores(self, state: _State) -> tuple[np.ndarray, np.ndarray]:
        """Slowness scores at ``state``'s load: ``(per worker incl. its edge's link, per edge)``; an edge's
        score is its ``k``-th best worker's plus its link's (quantile sums, seconds)."""
        st = self.strategy(state)
        evaluator = self.scorer.evaluator
        topo = self.model.topology
        worker = speed_scores(evaluator, st.load if st is not None else 1.0 / topo.n_workers,
                              1.0 / (state.l_e * state.l_w))
        link = sum((evaluator.edge_quantiles(q, 1.0 / state.l_e) for q in SCORE_LEVELS), np.zeros(len(self.sizes)))
        edge = np.zeros(len(self.sizes))
        for i, m in enumerate(self.sizes):
            c = state.counts[i] if state.counts[i] > 0 else m
            first = int(topo.offsets[i])
            values = sorted(worker[first + p] for p in self.ranking[i][:c])
            edge[i] = values[max(1, c - state.s_w) - 1] + link[i]
        return worker + link[topo.worker_edge], edge

    def moves(self, state: _State) -> list[_State]:
        counts, s_e, s_w, l_e, l_w = list(state.counts), state.s_e, state.s_w, state.l_e, state.l_w
        out: list[_State] = []
        topo = self.model.topology

        def add(new_counts: Sequence[int], a: int, b: int, c: int = l_e, d: int = l_w) -> None:
            if a >= 0 and b >= 0 and (c, d) in self.reductions:
                out.append(_State(tuple(new_counts), a, b, c, d))

        for i, c in enumerate(counts):            # one worker fewer / more in edge i
            if c > 1:
                add(counts[:i] + [c - 1] + counts[i + 1:], s_e, s_w)
            if 0 < c < self.sizes[i]:
                add(counts[:i] + [c + 1] + counts[i + 1:], s_e, s_w)
        worker_scores, edge_scores = self.scores(state)
        # the r globally slowest participating workers out / the r fastest left-out workers back in
        last = [(worker_scores[topo.offsets[i] + self.ranking[i][c - 1]], i) for i, c in enumerate(counts) if c > 0]
        for r in doubling(sum(counts)):
            dropped, heap = list(counts), sorted(last, reverse=True)
            taken = 0
            while heap and taken < r:
                _, i = heap.pop(0)
                if dropped[i] - 1 >= s_w + l_w:
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
        for r in doubling(sum(self.sizes) - sum(counts)):
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
        for r in doubling(len(present) - 1)[1:]:   # the r slowest edges at once (s_e kept or scaled)
            dropped = [0 if i in set(slowest[:r]) else c for i, c in enumerate(counts)]
            add(dropped, s_e, s_w)
            add(dropped, round(s_e * (len(present) - r) / len(present)), s_w)
        for i in sorted(absent, key=lambda i: edge_scores[i])[:EDGE_MOVES]:
            for c in spread_values(list(range(s_w + l_w, self.sizes[i] + 1)), 4):
                back = counts[:i] + [c] + counts[i + 1:]
                add(back, s_e, s_w)
                add(back, s_e + 1, s_w)
        top = max(counts)
        for cap in spread_values(list(range(s_w + l_w, top)), 3)[::-1]:   # every edge capped at `cap` workers
            add([min(c, cap) for c in counts], s_e, s_w)
        for da, db in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, -1), (-1, 1)):
            add(counts, s_e + da, s_w + db)
        for db in (1, -1):                        # s_w with every edge's count: keeps each k_i
            shifted = [c + db if c > 0 else 0 for c in counts]
            if all(c == 0 or 1 <= c <= m for c, m in zip(shifted, self.sizes)):
                add(shifted, s_e, s_w + db)
        if len(self.reductions) > 1:
            # a reduction by ±1; traded against its tolerance (s + ℓ, hence the load, kept); the same worker
            # message length 1/(ℓ_e ℓ_w) split differently between the layers
            for dc, dd in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                add(counts, s_e, s_w, l_e + dc, l_w + dd)
                add(counts, s_e - dc, s_w - dd, l_e + dc, l_w + dd)
            for c, d in self.reductions:
                if c * d == l_e * l_w and c != l_e:
                    add(counts, s_e, s_w, c, d)
        return out

    def run(self, start: _State, start_score: float) -> tuple[_State, float]:
        """Steepest-descent local search from ``start`` (see step 3 of the module docstring)."""
        current, current_score = start, start_score
        visited = {start}
        while True:
            self.on_round()
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
        when there are at most ``RETUNE_ALL_PAIRS``, else those within ±1 of the current pair (the
        reductions kept)."""
        l_e, l_w = current.l_e, current.l_w
        small = len(admissible_pairs([c for c in current.counts if c > 0], l_e, l_w)) <= RETUNE_ALL_PAIRS
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
            pairs = admissible_pairs([c for c in counts if c > 0], l_e, l_w)
            if len(pairs) > RETUNE_ALL_PAIRS:
                pairs = [(a, b) for a, b in pairs if abs(a - current.s_e) <= 1 and abs(b - current.s_w) <= 1]
            states += [_State(counts, a, b, l_e, l_w) for a, b in pairs if _State(counts, a, b, l_e, l_w) not in visited]
        return self.score_states(list(dict.fromkeys(states)))

    def line_search(self, state: _State, score: float, options: list[tuple[_State, float]],
                    visited: set[_State]) -> list[tuple[_State, float]]:
        """Several single-worker drops that each improve, tried together (best r for r = 2, 4, 8, ...)."""
        drops = []
        for s, value in options:
            if s.code == state.code and value < score * (1.0 - IMPROVEMENT):
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
            new = _State(tuple(counts), *state.code)
            if new not in visited:
                out_states.append(new)
            r *= 2
        return self.score_states(out_states)


def greedy_jncss(model: TimingModel, *, evaluator: Evaluator | None = None,
                 progress: ProgressFactory | None = None, reduction_e: int | None = None,
                 reduction_w: int | None = None) -> JNCSSResult:
    """JNCSS by the greedy local search of the module docstring (scales to thousands of workers).
    Reductions ``(ℓ_e, ℓ_w)``: ``None`` = chosen too (from :func:`~hgc.optimizer.tolerances.reduction_pairs`,
    which keeps only full-length messages where links are free), an int = fixed."""
    started = time.perf_counter()
    scorer = Scorer(model, evaluator)
    reductions = reduction_pairs(model, reduction_e, reduction_w)
    base, base_eval, ranked = best_all_nodes(model, None, None, scorer, reduction_e, reduction_w)
    base_reductions = (int(base.get("reduction_e", 1)), int(base.get("reduction_w", 1)))
    ranking = worker_ranking(model, base.load, scorer.evaluator, 1.0 / (base_reductions[0] * base_reductions[1]))
    greedy = _Greedy(model, scorer, ranking, reductions)
    sizes = model.topology.workers
    families: list[list[tuple[_State, float]]] = [[(_state(sizes, st), score) for st, score in ranked[:2]]]
    # other families of starting node sets, each with its best tolerances (coarse search): without the
    # smallest edges (their size caps s_w and s_e); every edge capped at a common number of its best
    # workers; the edges with at least c workers, each with its c best; the j best edges only. Their
    # reductions: the longest messages searched (full length unless fixed) and the best all-nodes pair
    all_state = families[0][0][0]
    start_reductions = list(dict.fromkeys([reductions[0], base_reductions]))
    edge_order = np.argsort(greedy.scores(all_state)[1], kind="stable")
    n = len(sizes)
    for node_sets in (
            [tuple(m if m >= threshold else 0 for m in sizes) for threshold in sorted(set(sizes))[1:4]],
            [tuple(min(m, cap) for m in sizes) for cap in spread_values(list(range(1, max(sizes))), 3)],
            [tuple(level if m >= level else 0 for m in sizes) for level in spread_values(sorted(set(sizes)), 4)],
            [tuple(sizes[i] if i in set(edge_order[:j].tolist()) else 0 for i in range(n))
             for j in spread_values(list(range(1, n)), 3)]):
        found = []
        for counts in dict.fromkeys(node_sets):
            edges = [i for i, c in enumerate(counts) if c]
            workers = [tuple(sorted(ranking[i][: counts[i]])) for i in edges]
            for l_e, l_w in start_reductions:
                found += [(_state(counts, st), score)
                          for st, score in tolerance_search(scorer, edges, workers, keep=1, refine=False,
                                                            reduction_e=l_e, reduction_w=l_w)]
        if found:
            families.append(found)
    starts: dict[_State, float] = {}
    for family in families:   # the best start of every family, then the best others overall
        state, score = min(family, key=lambda item: item[1])
        starts[state] = score
    for state, score in sorted((item for family in families for item in family), key=lambda item: item[1]):
        if len(starts) >= START_RUNS:
            break
        starts.setdefault(state, score)
    best_state, best_score = next(iter(starts.items()))
    with progress_bar(progress, len(starts), "JNCSS greedy", "start") as bar:
        greedy.on_round = lambda: bar.set_postfix_str(f"{scorer.evaluations} candidates scored")
        for start, start_score in starts.items():
            state, score = greedy.run(start, start_score)
            bar.update(1)
            if score < best_score:
                best_state, best_score = state, score
    candidate = greedy.strategy(best_state)
    assert candidate is not None, "every start is admissible"
    evaluation = scorer.accurate(candidate)
    chosen, chosen_eval = (candidate, evaluation) if objective(evaluation) <= objective(base_eval) \
        else (base, base_eval)
    return JNCSSResult(final(model, chosen), chosen_eval.expected_time, chosen_eval.decode_probability,
                       objective(chosen_eval), time.perf_counter() - started, "greedy", scorer.evaluations,
                       None, chosen_eval)
