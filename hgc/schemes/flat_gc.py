"""``flat_gc``: classical gradient coding over all ``N`` workers with tolerance ``s``; edges relay every
worker message to the master, which waits for ``N - s`` of them (``s: auto`` = the best ``s``).
``reduction: ℓ`` makes every message ``1/ℓ`` of a gradient vector at the price of load ``(s+ℓ)/N``."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from hgc import codes
from hgc.schemes.base import (AUTO, Candidate, Plan, Resolved, RowOutline, Scheme, SchemeSpec, Strategy,
                              TOLERANCE_COLUMNS, parse_tolerance, select_nodes)
from hgc.schemes.context import OptimizeContext, ResolveContext
from hgc.topology import Topology
from hgc.errors import ConfigError
from hgc.validation import as_int, check_keys, join


class FlatGC(Scheme):
    """One flat gradient code over every participating worker, relayed by the edges."""

    name = "flat_gc"
    keys = ("s", "reduction")
    implied = {"reduction": 1}
    summary = "flat gradient coding over all N workers, s stragglers; edges relay every message"

    def parse(self, raw: Mapping[str, Any], key: str, topology: Topology) -> SchemeSpec:
        check_keys(raw, key, ("scheme", *self.keys))
        big_n = topology.n_workers
        s = parse_tolerance(raw.get("s", AUTO), join(key, "s"), big_n, f"there are {big_n} workers")
        params: tuple[tuple[str, Any], ...] = (("s", s),)
        if "reduction" in raw:
            reduction = raw["reduction"]
            if reduction != AUTO:
                reduction = as_int(reduction, join(key, "reduction"), minimum=1, maximum=big_n)
                if s != AUTO and int(s) + reduction > big_n:
                    raise ConfigError(f"s + reduction must be at most the {big_n} workers, got {int(s) + reduction}",
                                      join(key, "reduction"))
            params += (("reduction", reduction),)
        return SchemeSpec(self.name, params)

    def strategy(self, topology: Topology, *, s: int, edges: Sequence[int] | None = None,
                 workers: Sequence[Sequence[int]] | None = None, load: float | None = None,
                 reduction: int = 1) -> Strategy:
        """Flat GC with tolerance ``s`` on the given nodes (all by default); load ``(s+ℓ)/N'`` from the codes."""
        edges_, workers_ = select_nodes(topology, edges, workers)
        if load is None:
            load = codes.worker_load("flat_gc", [len(w) for w in workers_], s=s,
                                     **({"reduction": reduction} if reduction != 1 else {}))
        params: tuple[tuple[str, Any], ...] = (("s", int(s)),)
        if reduction != 1:
            params += (("reduction", int(reduction)),)
        return Strategy(self.name, edges_, workers_, float(load), params)

    def resolve(self, spec: SchemeSpec, context: ResolveContext) -> Resolved:
        reduction = spec.get("reduction", 1)
        if spec.s != AUTO and reduction != AUTO:
            return Resolved(spec, self.strategy(context.model.topology, s=int(spec.s), reduction=int(reduction)))
        from hgc.optimizer.flat import best_flat_gc  # the optimizer builds on this module

        choice = best_flat_gc(context.model, seed=context.seed, evaluator=context.evaluator,
                              progress=context.progress, s=None if spec.s == AUTO else int(spec.s),
                              reduction=None if reduction == AUTO else int(reduction))
        return Resolved(spec, choice.strategy, f"auto: {choice.note}")

    def resolution(self, spec: SchemeSpec) -> str:
        autos = [k for k in ("s", "reduction") if spec.get(k) == AUTO]
        if not autos:
            return ""
        return (f"{' and '.join(autos)} chosen at run time by analytic E[T], or by a Monte Carlo pilot when the "
                "edges' relay queue has no analytic form")

    def plan(self, strategy: Strategy) -> Plan:
        reduction = int(strategy.get("reduction", 1))
        return Plan(edge_wait=None, master_wait=strategy.n_workers - int(strategy.s),
                    worker_message=1.0 / reduction, edge_message=1.0 / reduction)

    def columns(self, strategy: Strategy) -> dict[str, Any]:
        return {**{name: None for name in TOLERANCE_COLUMNS}, "s": int(strategy.s),
                "reduction": int(strategy.get("reduction", 1))}

    def describe(self, strategy: Strategy) -> str:
        reduction = int(strategy.get("reduction", 1))
        return f"messages of 1/{reduction} of a gradient" if reduction != 1 else ""

    def wait_for_all(self, strategy: Strategy) -> Strategy:
        return replace(strategy, params=tuple((k, 0 if k == "s" else v) for k, v in strategy.params))

    def build_code(self, strategy: Strategy, *, partitions: int | None = None,
                   rng: np.random.Generator | None = None, rtol: float | None = None) -> codes.GradientCode:
        return codes.build_code("flat_gc", strategy.worker_counts, s=int(strategy.s), partitions=partitions,
                                rng=rng, rtol=codes.DEFAULT_RTOL if rtol is None else rtol,
                                reduction=int(strategy.get("reduction", 1)))

    def smallest_partitions(self, strategy: Strategy) -> int:
        reduction = int(strategy.get("reduction", 1))
        options: dict[str, Any] = {"reduction": reduction} if reduction != 1 else {}
        return codes.smallest_partitions("flat_gc", strategy.worker_counts, s=int(strategy.s), **options)

    def verify_strategies(self, spec: SchemeSpec, context: ResolveContext
                          ) -> list[tuple[Strategy | None, str, dict[str, Any]]]:
        topology = context.model.topology
        reduction = spec.get("reduction", 1)
        if reduction == AUTO:
            resolved = self.resolve(spec, context)
            return [(resolved.strategy, resolved.note, resolved.strategy.columns())]
        if spec.s != AUTO:
            strategy = self.strategy(topology, s=int(spec.s), reduction=int(reduction))
            return [(strategy, "", strategy.columns())]
        out: list[tuple[Strategy | None, str, dict[str, Any]]] = []
        for s in range(topology.n_workers - int(reduction) + 1):
            strategy = self.strategy(topology, s=s, reduction=int(reduction))
            out.append((strategy, "s=auto: every admissible s verified", strategy.columns()))
        return out

    def verify_work(self, spec: SchemeSpec, topology: Topology) -> Iterator[tuple[int, int | None, int]]:
        big_n = topology.n_workers
        reduction = 1 if spec.get("reduction", 1) == AUTO else int(spec.get("reduction", 1))
        options: dict[str, Any] = {"reduction": reduction} if reduction != 1 else {}
        for s in (range(big_n - reduction + 1) if spec.s == AUTO else [int(spec.s)]):
            yield (big_n, codes.smallest_partitions("flat_gc", topology.workers, s=s, **options),
                   math.comb(big_n, s))

    def optimize_rows(self, context: OptimizeContext) -> list[Candidate]:
        from hgc.optimizer.flat import best_flat_gc  # the optimizer builds on this module

        flat = best_flat_gc(context.model, seed=context.seed, evaluator=context.evaluator, progress=context.progress,
                            reduction=None)
        return [Candidate("flat_gc", flat.strategy, flat.method, flat.evaluation, flat.seconds, flat.candidates,
                          note=flat.note)]

    def optimize_outline(self, context: OptimizeContext) -> list[RowOutline]:
        from hgc.optimizer.flat import flat_analytic  # the optimizer builds on this module

        analytic = flat_analytic(context.evaluator, context.model)
        return [RowOutline("flat_gc", "analytic" if analytic else "pilot",
                           note="best s by " + ("analytic E[T]" if analytic else "a Monte Carlo pilot"))]
