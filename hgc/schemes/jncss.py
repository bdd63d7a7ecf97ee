"""``hgc_jncss``: joint node and coding-scheme selection. The optimizer picks which edges and workers
take part, ``(s_e, s_w)`` and the message reductions ``(ℓ_e, ℓ_w)`` to minimise the expected iteration
time; the choice runs as an HGC strategy on the participating nodes.

Config keys: ``reduction_e``, ``reduction_w`` (``auto``, the default: chosen with the rest; an int: fixed,
e.g. 1 for full-length messages only). Reductions are searched only where a link charges for message
length (``per_vector`` > 0); elsewhere they cannot help (see
:func:`~hgc.optimizer.tolerances.reduction_pairs`)."""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from hgc.errors import ConfigError
from hgc.schemes.base import AUTO, Candidate, Resolved, RowOutline, SchemeSpec, Strategy
from hgc.schemes.context import OptimizeContext, ResolveContext
from hgc.schemes.hgc import HGC_SCHEME, HGCOnChosenNodes
from hgc.topology import Topology
from hgc.validation import as_int, check_keys, join

EXHAUSTIVE_AUTO_LIMIT = 20_000
"""``hgc optimize`` adds an exhaustive row when the search space has at most this many candidates."""
EXHAUSTIVE_HARD_LIMIT = 2_000_000
"""Largest search space the exhaustive method accepts."""


class JNCSS(HGCOnChosenNodes):
    """Nodes and tolerances chosen by the optimizer; the strategies it yields are HGC strategies."""

    name = "hgc_jncss"
    keys = ("reduction_e", "reduction_w")
    implied = {"reduction_e": 1, "reduction_w": 1}
    summary = "the optimizer picks edges, workers, (s_e, s_w) and message reductions (JNCSS)"

    def parse(self, raw: Mapping[str, Any], key: str, topology: Topology) -> SchemeSpec:
        check_keys(raw, key, ("scheme", *self.keys))
        params: list[tuple[str, Any]] = []
        for name in self.keys:
            if name in raw and raw[name] != AUTO:
                params.append((name, as_int(raw[name], join(key, name), minimum=1, maximum=64)))
            elif name in raw:
                params.append((name, AUTO))
        return SchemeSpec(self.name, tuple(params))

    def is_auto(self, spec: SchemeSpec) -> bool:
        return True

    def resolution(self, spec: SchemeSpec) -> str:
        return "edges, workers and (s_e, s_w) chosen at run time by the greedy JNCSS search (analytic E[T])"

    def resolve(self, spec: SchemeSpec, context: ResolveContext) -> Resolved:
        from hgc.optimizer.greedy import greedy_jncss  # the optimizer builds on the scheme modules

        result = greedy_jncss(context.model, evaluator=context.evaluator, progress=context.progress,
                              **_fixed_reductions(spec))
        return Resolved(spec, result.strategy, f"JNCSS greedy: analytic E[T]={result.expected_time:.6g}s")

    def verify_strategies(self, spec: SchemeSpec, context: ResolveContext
                          ) -> list[tuple[Strategy | None, str, dict[str, Any]]]:
        strategy = self.resolve(spec, context).strategy
        reductions = (int(strategy.get("reduction_e", 1)), int(strategy.get("reduction_w", 1)))
        chose = f", reductions {reductions}" if reductions != (1, 1) else ""
        note = (f"JNCSS (greedy) chose edges {list(strategy.edges)} with {list(strategy.worker_counts)} workers"
                f"{chose}; the code is built on the participating nodes")
        return [(strategy, note, strategy.columns())]

    def verify_work(self, spec: SchemeSpec, topology: Topology) -> Iterator[tuple[int, int | None, int]]:
        """The worst case: the largest pattern count of any admissible pair on all nodes (the search picks
        nodes, tolerances and reductions later; reductions do not change the pattern count)."""
        work = list(HGC_SCHEME.verify_work(SchemeSpec("hgc", (("s_e", "auto"), ("s_w", "auto"))), topology))
        if work:
            yield max(work, key=lambda w: w[2])

    def validate_optimize(self, context: OptimizeContext) -> None:
        """Refuse an exhaustive search that is too large, before anything runs. The search space is counted
        up to the limit that decides: :data:`EXHAUSTIVE_HARD_LIMIT` for ``--method exhaustive``, else
        :data:`EXHAUSTIVE_AUTO_LIMIT` (whether the exhaustive row is added)."""
        from hgc.optimizer.exhaustive import exhaustive_size  # the optimizer builds on the scheme modules

        cap = EXHAUSTIVE_HARD_LIMIT if context.method == "exhaustive" else EXHAUSTIVE_AUTO_LIMIT
        size = exhaustive_size(context.model, cap=cap)
        context.options["jncss_space"] = size
        if context.method == "exhaustive" and size > EXHAUSTIVE_HARD_LIMIT:
            raise ConfigError(f"exhaustive JNCSS would score more than {EXHAUSTIVE_HARD_LIMIT} candidates on this "
                              f"system (edges of sizes {list(context.model.topology.workers)}); use the greedy method",
                              "method")

    def _adds_exhaustive(self, context: OptimizeContext) -> bool:
        """Whether the exhaustive row is computed: asked for, or a search space of at most
        :data:`EXHAUSTIVE_AUTO_LIMIT` candidates."""
        if "jncss_space" not in context.options:
            self.validate_optimize(context)
        return context.method == "exhaustive" or context.options["jncss_space"] <= EXHAUSTIVE_AUTO_LIMIT

    def optimize_rows(self, context: OptimizeContext) -> list[Candidate]:
        from hgc.optimizer.exhaustive import exhaustive_jncss  # the optimizer builds on the scheme modules
        from hgc.optimizer.greedy import greedy_jncss

        exhaustive_row = self._adds_exhaustive(context)
        greedy = greedy_jncss(context.model, evaluator=context.evaluator, progress=context.progress)
        context.options["jncss_greedy"] = greedy   # the heterogeneity-aware search starts from it
        rows = [Candidate("jncss_greedy", greedy.strategy, "greedy", greedy.evaluation, greedy.seconds,
                          greedy.evaluations, role="search")]
        if exhaustive_row:
            exhaustive = exhaustive_jncss(context.model, evaluator=context.evaluator, progress=context.progress)
            rows.append(Candidate("jncss_exhaustive", exhaustive.strategy, "exhaustive", exhaustive.evaluation,
                                  exhaustive.seconds, exhaustive.evaluations, exhaustive.space, role="ground_truth"))
        return rows

    def optimize_outline(self, context: OptimizeContext) -> list[RowOutline]:
        """The greedy row, and the exhaustive one with its search space when :meth:`optimize_rows` adds it."""
        if not self._adds_exhaustive(context):
            return [RowOutline("jncss_greedy", "greedy", note="greedy JNCSS search (analytic E[T]); no exhaustive row: "
                                                              f"more than {EXHAUSTIVE_AUTO_LIMIT} candidates")]
        return [RowOutline("jncss_greedy", "greedy", note="greedy JNCSS search (analytic E[T])"),
                RowOutline("jncss_exhaustive", "exhaustive", context.options["jncss_space"],
                           "every dominance-closed node set, admissible (s_e, s_w) and message reductions")]


def _fixed_reductions(spec: SchemeSpec) -> dict[str, int | None]:
    """The reductions a JNCSS spec fixes (``None`` = chosen by the search)."""
    return {name: None if spec.get(name, AUTO) == AUTO else int(spec.get(name)) for name in JNCSS.keys}
