"""``hgc``: the two-layer hierarchical gradient code.

Edge ``i`` decodes from its fastest ``m_i - s_w[i]`` workers and sends one message; the master decodes
from its fastest ``n - s_e`` edges. Parameters (config keys):

``s_e``, ``s_w``
    edge and worker stragglers tolerated; ``s_w`` may be one value per edge; ``auto`` = the best value by
    the analytic evaluator (one ``s_w`` for all edges).
``reduction_e``, ``reduction_w``
    shorter messages: an edge sends ``1/ℓ_e`` of a gradient vector, a worker ``1/(ℓ_e ℓ_w)``, at the price
    of more data per worker (each partition on ``s_e + ℓ_e`` edges and ``s_w + ℓ_w`` workers of each).
``allocation``
    ``equal`` (default: every worker the same load, ``(s_e+ℓ_e)(s_w+ℓ_w)/Σm`` for one ``s_w``),
    ``speed`` (shares proportional to the nodes' speeds) or ``optimized`` (shares chosen with the analytic
    evaluator); see :mod:`hgc.optimizer.hetero`.

Strategies carry the exact allocation (edge and worker shares as fractions) when it is not the equal one,
so that the code built for them holds exactly the data the timing model charges for.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from fractions import Fraction
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from hgc import codes
from hgc.errors import ConfigError
from hgc.schemes.base import (AUTO, Candidate, Plan, Resolved, RowOutline, Scheme, SchemeSpec, Strategy,
                              parse_tolerance, select_nodes)
from hgc.schemes.context import OptimizeContext, ResolveContext
from hgc.topology import Topology
from hgc.validation import as_int, as_list, check_keys, describe, join

ALLOCATIONS = ("equal", "speed", "optimized")
"""How the data is shared among the participating nodes (see the module docstring)."""
ALLOCATION_GRID = 840
"""Partitions ``K`` on whose grid float shares are made exact (lcm of 1..8; loads move by < 2/K)."""


def per_edge(s_w: int | Sequence[int], n_edges: int) -> tuple[int, ...]:
    """The worker tolerance of every edge: ``s_w`` repeated, or the per-edge list as given."""
    if isinstance(s_w, (int, np.integer)):
        return (int(s_w),) * n_edges
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


def special_case(s_e: int, s_w: int | Sequence[int]) -> str:
    """The named special cases of HGC, in words."""
    if not isinstance(s_w, (int, np.integer)):
        return "per-edge worker tolerances"
    if s_e == 0 and s_w == 0:
        return "no redundancy (uncoded load)"
    if s_e == 0:
        return "gradient coding inside each edge"
    if s_w == 0:
        return "replication across edges"
    return ""


def _cell(value: Any) -> Any:
    """A tolerance for a table cell: an int, or a per-edge list as ``1;2;1``."""
    if isinstance(value, (tuple, list)):
        return ";".join(str(int(v)) for v in value)
    return None if value is None else int(value)


def _reduction(value: Any, key: str) -> int | str:
    if value == AUTO:
        return AUTO
    return as_int(value, key, minimum=1, maximum=64)


class HGC(Scheme):
    """Hierarchical gradient coding with given (or automatically chosen) parameters."""

    name = "hgc"
    keys = ("s_e", "s_w", "reduction_e", "reduction_w", "allocation")
    implied = {"reduction_e": 1, "reduction_w": 1}
    summary = "two-layer code: any n-s_e edges, any m_i-s_w workers per edge"

    # -- config --------------------------------------------------------------------------------------
    def parse(self, raw: Mapping[str, Any], key: str, topology: Topology) -> SchemeSpec:
        check_keys(raw, key, ("scheme", *self.keys))
        n, m_min = topology.n_edges, min(topology.workers)
        s_e = parse_tolerance(raw.get("s_e", AUTO), join(key, "s_e"), n, f"there are {n} edges")
        s_w: Any
        if isinstance(raw.get("s_w"), (list, tuple)):
            values = as_list(raw["s_w"], join(key, "s_w"))
            if len(values) != n:
                raise ConfigError(f"expected one tolerance per edge ({n}), got {len(values)}", join(key, "s_w"))
            s_w = tuple(as_int(v, join(join(key, "s_w"), i), minimum=0, maximum=m - 1)
                        for i, (v, m) in enumerate(zip(values, topology.workers)))
        else:
            s_w = parse_tolerance(raw.get("s_w", AUTO), join(key, "s_w"), m_min,
                                  f"the smallest edge has {m_min} workers")
        params: list[tuple[str, Any]] = [("s_e", s_e), ("s_w", s_w)]
        for name in ("reduction_e", "reduction_w"):
            if name in raw:
                params.append((name, _reduction(raw[name], join(key, name))))
        if "allocation" in raw:
            allocation = raw["allocation"]
            if allocation not in ALLOCATIONS:
                raise ConfigError(f"expected one of {', '.join(ALLOCATIONS)}, got {describe(allocation)}",
                                  join(key, "allocation"))
            if allocation != "equal":
                params.append(("allocation", allocation))
        spec = SchemeSpec(self.name, tuple(params))
        fixed = [v for k, v in params if k != "allocation"]
        if AUTO in fixed and spec.get("allocation", "equal") != "equal":
            raise ConfigError(f"allocation {spec.get('allocation')} needs fixed s_e, s_w and reductions (use the "
                              "hgc_hetero scheme to choose them too)", join(key, "allocation"))
        if AUTO not in fixed and spec.get("allocation", "equal") == "equal":
            try:
                codes.hgc_allocation(topology.workers, int(s_e), s_w, reduction_e=int(spec.get("reduction_e", 1)),
                                     reduction_w=int(spec.get("reduction_w", 1)))
            except ConfigError as err:
                raise type(err)(err.message, key) from None
        return spec

    # -- strategies ----------------------------------------------------------------------------------
    def candidate(self, edges: Sequence[int], workers: Sequence[Sequence[int]], s_e: int,
                  s_w: int | tuple[int, ...], loads: tuple[tuple[float, ...], ...] | None = None,
                  reduction_e: int = 1, reduction_w: int = 1) -> Strategy:
        """A strategy for searches that build thousands, without codes: equal shares give the load of the
        bound on the participating counts by formula; ``loads`` (per worker) give unbalanced shares.
        :meth:`strategy` rebuilds the final choice from the codes."""
        params = _params(s_e, s_w, reduction_e, reduction_w)
        if loads is not None:
            return Strategy(self.name, tuple(edges), tuple(tuple(w) for w in workers),
                            max(max(row) for row in loads), params, loads)
        if not isinstance(s_w, (int, np.integer)):
            raise TypeError("per-edge s_w needs per-worker loads")
        total = sum(len(w) for w in workers)
        return Strategy(self.name, tuple(edges), tuple(tuple(w) for w in workers),
                        (s_e + reduction_e) * (int(s_w) + reduction_w) / total, params)

    def strategy(self, topology: Topology, *, s_e: int, s_w: int | Sequence[int], edges: Sequence[int] | None = None,
                 workers: Sequence[Sequence[int]] | None = None, load: float | None = None, reduction_e: int = 1,
                 reduction_w: int = 1, edge_shares: Sequence[Fraction] | None = None,
                 worker_shares: Sequence[Sequence[Fraction]] | None = None) -> Strategy:
        """HGC on the given nodes (all by default), its loads from the allocation of :mod:`hgc.codes`
        (equal shares unless ``edge_shares``/``worker_shares``, exact fractions, are given). Raises
        :class:`~hgc.errors.UnreachableBoundError` when the parameters are not admissible there. ``load``
        overrides every worker's load (for experiments with the timing model only)."""
        edges_, workers_ = select_nodes(topology, edges, workers)
        counts = [len(w) for w in workers_]
        s_w_ = s_w if isinstance(s_w, (int, np.integer)) else tuple(int(s) for s in s_w)
        params = _params(int(s_e), s_w_, reduction_e, reduction_w)
        if load is not None:
            return Strategy(self.name, edges_, workers_, float(load), params)
        allocation = codes.hgc_allocation(counts, int(s_e), s_w_, edge_shares=edge_shares,
                                          worker_shares=worker_shares, reduction_e=reduction_e,
                                          reduction_w=reduction_w)
        if edge_shares is not None or worker_shares is not None:
            if any(f == 0 for f in allocation.edge_shares) or any(g == 0 for row in allocation.worker_shares
                                                                   for g in row):
                raise ConfigError("a node with a zero share takes no part: leave it out of the strategy",
                                  "allocation")
            params += (("edge_shares", tuple(allocation.edge_shares)),
                       ("worker_shares", tuple(tuple(row) for row in allocation.worker_shares)))
        loads = allocation.worker_loads
        top = float(max(loads))
        if all(x == loads[0] for x in loads):
            return Strategy(self.name, edges_, workers_, top, params)
        rows, start = [], 0
        for m in counts:
            rows.append(tuple(float(x) for x in loads[start:start + m]))
            start += m
        return Strategy(self.name, edges_, workers_, top, params, tuple(rows))

    def resolve(self, spec: SchemeSpec, context: ResolveContext) -> Resolved:
        model = context.model
        topology = model.topology
        allocation = spec.get("allocation", "equal")
        fixed = all(spec.get(k, 1) != AUTO for k in ("s_e", "s_w", "reduction_e", "reduction_w"))
        if fixed and allocation == "equal":
            return Resolved(spec, self.strategy(topology, s_e=int(spec.s_e), s_w=spec.s_w,
                                                reduction_e=int(spec.get("reduction_e", 1)),
                                                reduction_w=int(spec.get("reduction_w", 1))))
        if fixed:
            from hgc.optimizer.hetero import allocate_on  # the optimizer builds on this module

            strategy, note = allocate_on(model, int(spec.s_e), spec.s_w, allocation, evaluator=context.evaluator,
                                         reduction_e=int(spec.get("reduction_e", 1)),
                                         reduction_w=int(spec.get("reduction_w", 1)))
            return Resolved(spec, strategy, note)
        if allocation != "equal":
            raise ConfigError("allocation speed/optimized needs fixed s_e, s_w and reductions (use the "
                              "hgc_hetero scheme to choose them too)", "allocation")
        from hgc.optimizer.tolerances import best_hgc_tolerances  # the optimizer builds on this module

        def choice(name: str) -> int | None:
            value = spec.get(name, 1)
            return None if value == AUTO else int(value)

        strategy = best_hgc_tolerances(model, s_e=choice("s_e"), s_w=choice("s_w"),
                                       reduction_e=choice("reduction_e"), reduction_w=choice("reduction_w"),
                                       evaluator=context.evaluator)
        return Resolved(spec, strategy, "auto: chosen by analytic E[T]")

    def resolution(self, spec: SchemeSpec) -> str:
        autos = [k for k in ("s_e", "s_w", "reduction_e", "reduction_w") if spec.get(k) == AUTO]
        if autos:
            return f"{', '.join(autos)} chosen at run time by analytic E[T] over the admissible values"
        allocation = spec.get("allocation", "equal")
        if allocation == "speed":
            return "shares proportional to the nodes' speeds, computed at run time"
        if allocation != "equal":
            return "shares chosen at run time by analytic E[T]"
        return ""

    def plan(self, strategy: Strategy) -> Plan:
        s_w = per_edge(strategy.s_w, strategy.n_edges)
        reduction_e, reduction_w = _reductions(strategy)
        return Plan(edge_wait=tuple(m - s for m, s in zip(strategy.worker_counts, s_w)),
                    master_wait=strategy.n_edges - int(strategy.s_e),
                    worker_message=1.0 / (reduction_e * reduction_w), edge_message=1.0 / reduction_e)

    def columns(self, strategy: Strategy) -> dict[str, Any]:
        reduction_e, reduction_w = _reductions(strategy)
        return {"s_e": int(strategy.s_e), "s_w": _cell(strategy.s_w), "s": None,
                "reduction_e": reduction_e, "reduction_w": reduction_w, "reduction": None}

    def describe(self, strategy: Strategy) -> str:
        parts = [special_case(int(strategy.s_e), strategy.s_w)]
        if strategy.worker_loads is not None:
            parts.append("unbalanced loads")
        reduction_e, reduction_w = _reductions(strategy)
        if (reduction_e, reduction_w) != (1, 1):
            parts.append(f"messages of 1/{reduction_e} (edges) and 1/{reduction_e * reduction_w} (workers) of "
                         "a gradient")
        return "; ".join(p for p in parts if p)

    def wait_for_all(self, strategy: Strategy) -> Strategy:
        zero: Any = 0 if isinstance(strategy.s_w, (int, np.integer)) else (0,) * strategy.n_edges
        updates = {"s_e": 0, "s_w": zero}
        return replace(strategy, params=tuple((k, updates.get(k, v)) for k, v in strategy.params))

    # -- codes ---------------------------------------------------------------------------------------
    def _code_options(self, strategy: Strategy) -> dict[str, Any]:
        reduction_e, reduction_w = _reductions(strategy)
        return {"s_e": int(strategy.s_e), "s_w": strategy.s_w, "reduction_e": reduction_e,
                "reduction_w": reduction_w, "edge_shares": strategy.get("edge_shares"),
                "worker_shares": strategy.get("worker_shares")}

    def build_code(self, strategy: Strategy, *, partitions: int | None = None,
                   rng: np.random.Generator | None = None, rtol: float | None = None) -> codes.GradientCode:
        return codes.build_code("hgc", strategy.worker_counts, partitions=partitions, rng=rng,
                                rtol=codes.DEFAULT_RTOL if rtol is None else rtol, **self._code_options(strategy))

    def smallest_partitions(self, strategy: Strategy) -> int:
        return codes.smallest_partitions("hgc", strategy.worker_counts, **self._code_options(strategy))

    def _pairs(self, spec: SchemeSpec, topology: Topology) -> list[tuple[int, Any]]:
        if spec.s_e != AUTO and spec.s_w != AUTO:
            return [(int(spec.s_e), spec.s_w)]
        return [(a, b) for a, b in codes.admissible_hgc(topology.workers)
                if spec.s_e in (AUTO, a) and spec.s_w in (AUTO, b)]

    def verify_strategies(self, spec: SchemeSpec, context: ResolveContext
                          ) -> list[tuple[Strategy | None, str, dict[str, Any]]]:
        if spec.get("allocation", "equal") != "equal" or AUTO in (spec.get("reduction_e"), spec.get("reduction_w")):
            resolved = self.resolve(spec, context)
            return [(resolved.strategy, resolved.note, resolved.strategy.columns())]
        topology = context.model.topology
        autos = [k for k in ("s_e", "s_w") if spec.get(k) == AUTO]
        note = f"{'='.join(autos)}=auto: every admissible value verified" if autos else ""
        reductions: dict[str, Any] = {"reduction_e": int(spec.get("reduction_e", 1)),
                                      "reduction_w": int(spec.get("reduction_w", 1))}
        out: list[tuple[Strategy | None, str, dict[str, Any]]] = []
        for s_e, s_w in self._pairs(spec, topology):
            try:
                strategy = self.strategy(topology, s_e=s_e, s_w=s_w, **reductions)
            except ConfigError as err:
                if not autos:
                    raise
                out.append((None, err.message, {"s_e": s_e, "s_w": _cell(s_w), **reductions}))
                continue
            text = "; ".join(x for x in (note, special_case(s_e, s_w)) if x)
            out.append((strategy, text, strategy.columns()))
        return out

    def verify_work(self, spec: SchemeSpec, topology: Topology) -> Iterator[tuple[int, int | None, int]]:
        options: dict[str, Any] = {name: int(spec.get(name, 1)) for name in ("reduction_e", "reduction_w")
                                   if spec.get(name, 1) != AUTO}
        for s_e, s_w in self._pairs(spec, topology):
            try:
                k: int | None = codes.smallest_partitions("hgc", topology.workers, s_e=s_e, s_w=s_w, **options)
            except ConfigError:
                k = None
            yield topology.n_workers, k, pattern_count(topology.workers, s_e, s_w)

    # -- the optimize table --------------------------------------------------------------------------
    def optimize_rows(self, context: OptimizeContext) -> list[Candidate]:
        from hgc.optimizer.scoring import Scorer  # the optimizer builds on this module
        from hgc.optimizer.tolerances import best_all_nodes, reduction_pairs

        started = time.perf_counter()
        scorer = Scorer(context.model, context.evaluator)
        strategy, evaluation, _ = best_all_nodes(context.model, None, None, scorer, None, None)
        what = "(s_e, s_w)" if reduction_pairs(context.model) == [(1, 1)] else "(s_e, s_w, reduction_e, reduction_w)"
        return [Candidate("hgc", strategy, "analytic", evaluation, time.perf_counter() - started,
                          scorer.evaluations, note=f"best {what} on all nodes")]

    def optimize_outline(self, context: OptimizeContext) -> list[RowOutline]:
        from hgc.optimizer.tolerances import reduction_pairs  # the optimizer builds on the scheme modules

        what = "(s_e, s_w)" if reduction_pairs(context.model) == [(1, 1)] else "(s_e, s_w, reduction_e, reduction_w)"
        return [RowOutline("hgc", "analytic", note=f"best {what} on all nodes by analytic E[T]")]


def _params(s_e: int, s_w: Any, reduction_e: int, reduction_w: int) -> tuple[tuple[str, Any], ...]:
    """A strategy's parameters: the tolerances, then the reductions when they are not 1."""
    params: tuple[tuple[str, Any], ...] = (("s_e", s_e), ("s_w", s_w))
    if reduction_e != 1:
        params += (("reduction_e", int(reduction_e)),)
    if reduction_w != 1:
        params += (("reduction_w", int(reduction_w)),)
    return params


def _reductions(strategy: Strategy) -> tuple[int, int]:
    return int(strategy.get("reduction_e", 1)), int(strategy.get("reduction_w", 1))


HGC_SCHEME = HGC()
"""The instance searches use to build candidates (the registry holds an equal one)."""


class HGCOnChosenNodes(Scheme):
    """Base of the schemes whose strategies are HGC strategies chosen by a search (nodes, tolerances,
    shares): their order-statistic plan and their code are those of :data:`HGC_SCHEME`."""

    def plan(self, strategy: Strategy) -> Plan:
        return HGC_SCHEME.plan(strategy)

    def build_code(self, strategy: Strategy, *, partitions: int | None = None,
                   rng: np.random.Generator | None = None, rtol: float | None = None) -> codes.GradientCode:
        return HGC_SCHEME.build_code(strategy, partitions=partitions, rng=rng, rtol=rtol)
