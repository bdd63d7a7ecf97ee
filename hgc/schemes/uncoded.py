"""``uncoded``: every selected worker holds ``1/N`` of the data; edges wait for all workers, the master for
all edges (the baseline of every speed-up)."""

from __future__ import annotations

import time
from typing import Iterator, Sequence

import numpy as np

from hgc import codes
from hgc.schemes.base import Candidate, Plan, Resolved, RowOutline, Scheme, SchemeSpec, Strategy, select_nodes
from hgc.schemes.context import OptimizeContext, ResolveContext
from hgc.topology import Topology


class Uncoded(Scheme):
    """No redundancy: the master needs every worker's message."""

    name = "uncoded"
    summary = "each worker holds 1/N of the data; everybody is waited for"

    def strategy(self, topology: Topology, *, edges: Sequence[int] | None = None,
                 workers: Sequence[Sequence[int]] | None = None, load: float | None = None) -> Strategy:
        """The uncoded strategy on the given nodes (all by default); ``load`` overrides ``1/N'``."""
        edges_, workers_ = select_nodes(topology, edges, workers)
        if load is None:
            load = codes.worker_load("uncoded", [len(w) for w in workers_])
        return Strategy(self.name, edges_, workers_, float(load))

    def resolve(self, spec: SchemeSpec, context: ResolveContext) -> Resolved:
        return Resolved(spec, self.strategy(context.model.topology))

    def plan(self, strategy: Strategy) -> Plan:
        return Plan(edge_wait=strategy.worker_counts, master_wait=strategy.n_edges)

    def build_code(self, strategy: Strategy, *, partitions: int | None = None,
                   rng: np.random.Generator | None = None, rtol: float | None = None) -> codes.GradientCode:
        return codes.build_code("uncoded", strategy.worker_counts, partitions=partitions, rng=rng,
                                rtol=codes.DEFAULT_RTOL if rtol is None else rtol)

    def smallest_partitions(self, strategy: Strategy) -> int:
        return codes.smallest_partitions("uncoded", strategy.worker_counts)

    def verify_work(self, spec: SchemeSpec, topology: Topology) -> Iterator[tuple[int, int | None, int]]:
        yield topology.n_workers, codes.smallest_partitions("uncoded", topology.workers), 1

    def optimize_rows(self, context: OptimizeContext) -> list[Candidate]:
        started = time.perf_counter()
        strategy = self.strategy(context.model.topology)
        evaluation = context.evaluator.evaluate(strategy)
        return [Candidate("uncoded", strategy, "fixed", evaluation, time.perf_counter() - started)]

    def optimize_outline(self, context: OptimizeContext) -> list[RowOutline]:
        return [RowOutline("uncoded", "fixed", note="every node, no redundancy")]
