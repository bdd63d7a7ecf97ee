"""``hgc_hetero``: heterogeneity-aware hierarchical gradient coding. The optimizer chooses the participating
nodes, ``s_e``, one ``s_w[i]`` per edge and unbalanced data shares (faster nodes hold more), with the
analytic evaluator (:mod:`hgc.optimizer.hetero`). JNCSS is the special case with equal shares and one
``s_w``, so the choice is never worse than JNCSS's; the strategies it yields are HGC strategies."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from hgc.errors import ConfigError
from hgc.schemes.base import Candidate, Resolved, RowOutline, SchemeSpec, Strategy
from hgc.schemes.context import OptimizeContext, ResolveContext
from hgc.schemes.hgc import HGCOnChosenNodes
from hgc.schemes.jncss import JNCSS
from hgc.topology import Topology


class HeterogeneityAware(HGCOnChosenNodes):
    """Nodes, tolerances (per edge) and unbalanced shares chosen by the optimizer."""

    name = "hgc_hetero"
    summary = "the optimizer picks nodes, s_e, per-edge s_w and unbalanced shares"

    def is_auto(self, spec: SchemeSpec) -> bool:
        return True

    def resolution(self, spec: SchemeSpec) -> str:
        return ("edges, workers, s_e, per-edge s_w and shares chosen at run time by the heterogeneity-aware "
                "greedy search (analytic E[T])")

    def resolve(self, spec: SchemeSpec, context: ResolveContext) -> Resolved:
        from hgc.optimizer.hetero import hetero_greedy  # the optimizer builds on the scheme modules

        result = hetero_greedy(context.model, evaluator=context.evaluator, progress=context.progress)
        gain = f"; {100 * result.gain:.1f}% lower than JNCSS" if np.isfinite(result.gain) else ""
        return Resolved(spec, result.strategy,
                        f"heterogeneity-aware greedy: analytic E[T]={result.evaluation.expected_time:.6g}s{gain}")

    def verify_strategies(self, spec: SchemeSpec, context: ResolveContext
                          ) -> list[tuple[Strategy | None, str, dict[str, Any]]]:
        strategy = self.resolve(spec, context).strategy
        note = (f"heterogeneity-aware choice: edges {list(strategy.edges)} with {list(strategy.worker_counts)} "
                "workers and unbalanced shares; the code is built on the participating nodes")
        return [(strategy, note, strategy.columns())]

    def verify_work(self, spec: SchemeSpec, topology: Topology) -> Iterator[tuple[int, int | None, int]]:
        return JNCSS().verify_work(spec, topology)

    def optimize_rows(self, context: OptimizeContext) -> list[Candidate]:
        from hgc.optimizer.hetero import HETERO_EXHAUSTIVE_LIMIT, hetero_exhaustive, hetero_greedy, hetero_space

        jncss = context.options.get("jncss_greedy")
        greedy = hetero_greedy(context.model, evaluator=context.evaluator, jncss=jncss, progress=context.progress)
        rows = [Candidate("hetero_greedy", greedy.strategy, "greedy", greedy.evaluation, greedy.seconds,
                          greedy.evaluations, role="search", note="; ".join(greedy.notes), family="hetero")]
        small = hetero_space(context.model, HETERO_EXHAUSTIVE_LIMIT) <= HETERO_EXHAUSTIVE_LIMIT
        if small:
            try:
                exhaustive = hetero_exhaustive(context.model, evaluator=context.evaluator, progress=context.progress)
            except ConfigError:
                return rows
            rows.append(Candidate("hetero_exhaustive", exhaustive.strategy, "exhaustive", exhaustive.evaluation,
                                  exhaustive.seconds, exhaustive.evaluations, exhaustive.space, role="ground_truth",
                                  family="hetero"))
        return rows

    def optimize_outline(self, context: OptimizeContext) -> list[RowOutline]:
        from hgc.optimizer.hetero import HETERO_EXHAUSTIVE_LIMIT, hetero_space

        space = hetero_space(context.model, HETERO_EXHAUSTIVE_LIMIT)
        if space > HETERO_EXHAUSTIVE_LIMIT:
            return [RowOutline("hetero_greedy", "greedy", note="heterogeneity-aware greedy search; no exhaustive row: "
                                                               f"more than {HETERO_EXHAUSTIVE_LIMIT} candidates")]
        return [RowOutline("hetero_greedy", "greedy", note="heterogeneity-aware greedy search"),
                RowOutline("hetero_exhaustive", "exhaustive", space,
                           "node sets x s_e x per-edge s_w x allocation exponents")]
