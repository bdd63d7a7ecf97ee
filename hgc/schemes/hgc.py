"""``hgc``: the two-layer hierarchical gradient code with ``s_e`` edge and ``s_w`` per-edge worker
stragglers. Edge ``i`` decodes from its fastest ``m_i - s_w`` workers and sends one vector; the master
decodes from its fastest ``n - s_e`` edges. Every worker carries the load bound
``(s_e+1)(s_w+1)/Σm``. ``auto`` for either tolerance = the best value by the analytic evaluator."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from hgc import codes
from hgc.errors import ConfigError
from hgc.schemes.base import (AUTO, Candidate, Plan, Resolved, Scheme, SchemeSpec, Strategy, TOLERANCE_COLUMNS,
                              parse_tolerance, select_nodes)
from hgc.schemes.context import OptimizeContext, ResolveContext
from hgc.topology import Topology
from hgc.validation import check_keys, join


def per_edge(s_w: int | Sequence[int], n_edges: int) -> tuple[int, ...]:
    """The worker tolerance of every edge: ``s_w`` repeated, or the per-edge list as given."""
    if isinstance(s_w, int):
        return (s_w,) * n_edges
    return tuple(int(s) for s in s_w)


def pattern_count(workers: Sequence[int], s_e: int, s_w: int | Sequence[int]) -> int:
    """Maximal admissible straggler patterns: ``s_e`` silent edges, and ``s_w[i]`` silent workers in every
    other edge: ``Σ_{|E| = s_e} Π_{i ∉ E} C(m_i, s_w[i])`` (an elementary symmetric polynomial, exactly by
    dynamic programming)."""
    keep = len(workers) - s_e
    e = [1] + [0] * keep                       # e[j] = sum over j-subsets of survivors of Π C(m_i, s_w[i])
    for m, s in zip(workers, per_edge(s_w, len(workers))):
        c = math.comb(m, s)
        for j in range(keep, 0, -1):
            e[j] += e[j - 1] * c
    return e[keep]


def special_case(s_e: int, s_w: int) -> str:
    """The named special cases of HGC, in words."""
    if s_e == 0 and s_w == 0:
        return "no redundancy (uncoded load)"
    if s_e == 0:
        return "gradient coding inside each edge"
    if s_w == 0:
        return "replication across edges"
    return ""


class HGC(Scheme):
    """Hierarchical gradient coding with one pair of tolerances."""

    name = "hgc"
    keys = ("s_e", "s_w")
    summary = "two-layer code: any n-s_e edges, any m_i-s_w workers per edge"

    def parse(self, raw: Mapping[str, Any], key: str, topology: Topology) -> SchemeSpec:
        check_keys(raw, key, ("scheme", *self.keys))
        n, m_min = topology.n_edges, min(topology.workers)
        s_e = parse_tolerance(raw.get("s_e", AUTO), join(key, "s_e"), n, f"there are {n} edges")
        s_w = parse_tolerance(raw.get("s_w", AUTO), join(key, "s_w"), m_min,
                              f"the smallest edge has {m_min} workers")
        if s_e != AUTO and s_w != AUTO:
            try:
                codes.worker_load("hgc", topology.workers, s_e=int(s_e), s_w=int(s_w))
            except ConfigError as err:
                raise type(err)(err.message, key) from None
        return SchemeSpec(self.name, (("s_e", s_e), ("s_w", s_w)))

    # -- strategies ----------------------------------------------------------------------------------
    def candidate(self, edges: Sequence[int], workers: Sequence[Sequence[int]], s_e: int,
                  s_w: int | tuple[int, ...], loads: tuple[tuple[float, ...], ...] | None = None) -> Strategy:
        """A strategy for searches that build thousands, without codes: equal shares give the load of the
        bound on the participating counts by formula; ``loads`` (per worker) give unbalanced shares.
        :meth:`strategy` rebuilds the final choice from the codes."""
        if loads is not None:
            return Strategy(self.name, tuple(edges), tuple(tuple(w) for w in workers),
                            max(max(row) for row in loads), (("s_e", s_e), ("s_w", s_w)), loads)
        total = sum(len(w) for w in workers)
        if not isinstance(s_w, int):
            raise TypeError("per-edge s_w needs per-worker loads")
        return Strategy(self.name, tuple(edges), tuple(tuple(w) for w in workers),
                        (s_e + 1) * (s_w + 1) / total, (("s_e", s_e), ("s_w", s_w)))

    def strategy(self, topology: Topology, *, s_e: int, s_w: int, edges: Sequence[int] | None = None,
                 workers: Sequence[Sequence[int]] | None = None, load: float | None = None) -> Strategy:
        """HGC on the given nodes (all by default), its load from :mod:`hgc.codes`. Raises
        :class:`~hgc.errors.UnreachableBoundError` when the tolerances are not admissible there."""
        edges_, workers_ = select_nodes(topology, edges, workers)
        if load is None:
            load = codes.worker_load("hgc", [len(w) for w in workers_], s_e=s_e, s_w=s_w)
        return Strategy(self.name, edges_, workers_, float(load), (("s_e", int(s_e)), ("s_w", int(s_w))))

    def resolve(self, spec: SchemeSpec, context: ResolveContext) -> Resolved:
        topology = context.model.topology
        if spec.s_e != AUTO and spec.s_w != AUTO:
            return Resolved(spec, self.strategy(topology, s_e=int(spec.s_e), s_w=int(spec.s_w)))
        from hgc.optimizer.tolerances import best_hgc_tolerances  # the optimizer builds on this module

        strategy = best_hgc_tolerances(context.model, s_e=None if spec.s_e == AUTO else int(spec.s_e),
                                       s_w=None if spec.s_w == AUTO else int(spec.s_w),
                                       evaluator=context.evaluator)
        return Resolved(spec, strategy, "auto: tolerances by analytic E[T]")

    def plan(self, strategy: Strategy) -> Plan:
        s_w = per_edge(strategy.s_w, strategy.n_edges)
        return Plan(edge_wait=tuple(m - s for m, s in zip(strategy.worker_counts, s_w)),
                    master_wait=strategy.n_edges - int(strategy.s_e))

    def columns(self, strategy: Strategy) -> dict[str, Any]:
        return {**{name: None for name in TOLERANCE_COLUMNS}, "s_e": int(strategy.s_e), "s_w": int(strategy.s_w)}

    def describe(self, strategy: Strategy) -> str:
        return special_case(int(strategy.s_e), int(strategy.s_w))

    def wait_for_all(self, strategy: Strategy) -> Strategy:
        return replace(strategy, params=(("s_e", 0), ("s_w", 0)))

    # -- codes ---------------------------------------------------------------------------------------
    def build_code(self, strategy: Strategy, *, partitions: int | None = None,
                   rng: np.random.Generator | None = None, rtol: float | None = None) -> codes.GradientCode:
        return codes.build_code("hgc", strategy.worker_counts, s_e=int(strategy.s_e), s_w=int(strategy.s_w),
                                partitions=partitions, rng=rng, rtol=codes.DEFAULT_RTOL if rtol is None else rtol)

    def smallest_partitions(self, strategy: Strategy) -> int:
        return codes.smallest_partitions("hgc", strategy.worker_counts, s_e=int(strategy.s_e),
                                         s_w=int(strategy.s_w))

    def verify_strategies(self, spec: SchemeSpec, context: ResolveContext
                          ) -> list[tuple[Strategy | None, str, dict[str, Any]]]:
        topology = context.model.topology
        autos = [k for k in ("s_e", "s_w") if spec.get(k) == AUTO]
        if not autos:
            pairs = [(int(spec.s_e), int(spec.s_w))]
        else:
            pairs = [(a, b) for a, b in codes.admissible_hgc(topology.workers)
                     if spec.s_e in (AUTO, a) and spec.s_w in (AUTO, b)]
        note = f"{'='.join(autos)}=auto: every admissible value verified" if autos else ""
        out: list[tuple[Strategy | None, str, dict[str, Any]]] = []
        for s_e, s_w in pairs:
            strategy = self.strategy(topology, s_e=s_e, s_w=s_w)
            text = "; ".join(x for x in (note, special_case(s_e, s_w)) if x)
            out.append((strategy, text, strategy.columns()))
        return out

    def verify_work(self, spec: SchemeSpec, topology: Topology) -> Iterator[tuple[int, int | None, int]]:
        workers = topology.workers
        if spec.s_e != AUTO and spec.s_w != AUTO:
            pairs = [(int(spec.s_e), int(spec.s_w))]
        else:
            pairs = [(a, b) for a, b in codes.admissible_hgc(workers)
                     if spec.s_e in (AUTO, a) and spec.s_w in (AUTO, b)]
        for s_e, s_w in pairs:
            try:
                k: int | None = codes.smallest_partitions("hgc", workers, s_e=s_e, s_w=s_w)
            except ConfigError:
                k = None
            yield topology.n_workers, k, pattern_count(workers, s_e, s_w)

    # -- the optimize table --------------------------------------------------------------------------
    def optimize_rows(self, context: OptimizeContext) -> list[Candidate]:
        from hgc.optimizer.scoring import Scorer  # the optimizer builds on this module
        from hgc.optimizer.tolerances import best_all_nodes

        started = time.perf_counter()
        scorer = Scorer(context.model, context.evaluator)
        strategy, evaluation, _ = best_all_nodes(context.model, None, None, scorer)
        return [Candidate("hgc", strategy, "analytic", evaluation, time.perf_counter() - started,
                          scorer.evaluations, note="best (s_e, s_w) on all nodes")]


HGC_SCHEME = HGC()
"""The instance searches use to build candidates (the registry holds an equal one)."""
