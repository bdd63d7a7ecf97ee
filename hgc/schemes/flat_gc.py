"""``flat_gc``: classical gradient coding over all ``N`` workers with tolerance ``s``; edges relay every
worker message to the master, which waits for ``N - s`` of them (``s: auto`` = the best ``s``)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from hgc import codes
from hgc.schemes.base import (AUTO, Candidate, Plan, Resolved, Scheme, SchemeSpec, Strategy, TOLERANCE_COLUMNS,
                              parse_tolerance, select_nodes)
from hgc.schemes.context import OptimizeContext, ResolveContext
from hgc.topology import Topology
from hgc.validation import check_keys, join


class FlatGC(Scheme):
    """One flat gradient code over every participating worker, relayed by the edges."""

    name = "flat_gc"
    keys = ("s",)
    summary = "flat gradient coding over all N workers, s stragglers; edges relay every message"

    def parse(self, raw: Mapping[str, Any], key: str, topology: Topology) -> SchemeSpec:
        check_keys(raw, key, ("scheme", *self.keys))
        big_n = topology.n_workers
        s = parse_tolerance(raw.get("s", AUTO), join(key, "s"), big_n, f"there are {big_n} workers")
        return SchemeSpec(self.name, (("s", s),))

    def strategy(self, topology: Topology, *, s: int, edges: Sequence[int] | None = None,
                 workers: Sequence[Sequence[int]] | None = None, load: float | None = None) -> Strategy:
        """Flat GC with tolerance ``s`` on the given nodes (all by default); load ``(s+1)/N'`` from the codes."""
        edges_, workers_ = select_nodes(topology, edges, workers)
        if load is None:
            load = codes.worker_load("flat_gc", [len(w) for w in workers_], s=s)
        return Strategy(self.name, edges_, workers_, float(load), (("s", int(s)),))

    def resolve(self, spec: SchemeSpec, context: ResolveContext) -> Resolved:
        if spec.s != AUTO:
            return Resolved(spec, self.strategy(context.model.topology, s=int(spec.s)))
        from hgc.optimizer.flat import best_flat_gc  # the optimizer builds on this module

        choice = best_flat_gc(context.model, seed=context.seed, evaluator=context.evaluator,
                              progress=context.progress)
        return Resolved(spec, choice.strategy, f"auto: {choice.note}")

    def plan(self, strategy: Strategy) -> Plan:
        return Plan(edge_wait=None, master_wait=strategy.n_workers - int(strategy.s))

    def columns(self, strategy: Strategy) -> dict[str, Any]:
        return {**{name: None for name in TOLERANCE_COLUMNS}, "s": int(strategy.s)}

    def wait_for_all(self, strategy: Strategy) -> Strategy:
        return replace(strategy, params=(("s", 0),))

    def build_code(self, strategy: Strategy, *, partitions: int | None = None,
                   rng: np.random.Generator | None = None, rtol: float | None = None) -> codes.GradientCode:
        return codes.build_code("flat_gc", strategy.worker_counts, s=int(strategy.s), partitions=partitions,
                                rng=rng, rtol=codes.DEFAULT_RTOL if rtol is None else rtol)

    def smallest_partitions(self, strategy: Strategy) -> int:
        return codes.smallest_partitions("flat_gc", strategy.worker_counts, s=int(strategy.s))

    def verify_strategies(self, spec: SchemeSpec, context: ResolveContext
                          ) -> list[tuple[Strategy | None, str, dict[str, Any]]]:
        topology = context.model.topology
        if spec.s != AUTO:
            strategy = self.strategy(topology, s=int(spec.s))
            return [(strategy, "", strategy.columns())]
        out: list[tuple[Strategy | None, str, dict[str, Any]]] = []
        for s in range(topology.n_workers):
            strategy = self.strategy(topology, s=s)
            out.append((strategy, "s=auto: every admissible s verified", strategy.columns()))
        return out

    def verify_work(self, spec: SchemeSpec, topology: Topology) -> Iterator[tuple[int, int | None, int]]:
        big_n = topology.n_workers
        for s in (range(big_n) if spec.s == AUTO else [int(spec.s)]):
            yield big_n, codes.smallest_partitions("flat_gc", topology.workers, s=s), math.comb(big_n, s)

    def optimize_rows(self, context: OptimizeContext) -> list[Candidate]:
        from hgc.optimizer.flat import best_flat_gc  # the optimizer builds on this module

        flat = best_flat_gc(context.model, seed=context.seed, evaluator=context.evaluator, progress=context.progress)
        return [Candidate("flat_gc", flat.strategy, flat.method, flat.evaluation, flat.seconds, flat.candidates,
                          note=flat.note)]
