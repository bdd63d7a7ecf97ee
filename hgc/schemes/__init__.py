"""Coding schemes: one module per kind, behind one protocol (see :mod:`hgc.schemes.base`).

* :mod:`~hgc.schemes.uncoded`, :mod:`~hgc.schemes.flat_gc`, :mod:`~hgc.schemes.hgc`,
  :mod:`~hgc.schemes.jncss` — the kinds;
* :mod:`~hgc.schemes.registry` — the list of kinds, config parsing of ``schemes:``;
* :mod:`~hgc.schemes.context` — what resolution and the optimizer table get from a run.

:func:`make_strategy` builds a concrete strategy of any kind (loads from :mod:`hgc.codes`).
"""

from __future__ import annotations

from typing import Any, Sequence

from hgc.schemes.base import (AUTO, Candidate, Plan, Resolved, RowOutline, Scheme, SchemeSpec, Strategy,
                              all_nodes, select_nodes)
from hgc.schemes.context import OptimizeContext, ResolveContext
from hgc.schemes.registry import (BASELINE, all_schemes, baseline_spec, default_schemes, get_scheme, parse_scheme,
                                  parse_schemes, scheme_names)
from hgc.topology import Topology

__all__ = [
    "AUTO", "BASELINE", "Candidate", "OptimizeContext", "Plan", "ResolveContext", "Resolved", "RowOutline", "Scheme", "SchemeSpec",
    "Strategy", "all_nodes", "all_schemes", "baseline_spec", "default_schemes", "get_scheme", "make_strategy",
    "parse_scheme", "parse_schemes", "scheme_names", "select_nodes",
]


def make_strategy(kind: str, topology: Topology, *, edges: Sequence[int] | None = None,
                  workers: Sequence[Sequence[int]] | None = None, **params: Any) -> Strategy:
    """A strategy of scheme ``kind`` on the given nodes (all by default) with concrete ``params`` (e.g.
    ``s=2`` or ``s_e=1, s_w=1``; ``load=`` overrides the load from the codes, for experiments)."""
    scheme = get_scheme(kind)
    factory = getattr(scheme, "strategy", None)
    if factory is None:
        raise TypeError(f"scheme {kind!r} has no direct strategies (it is resolved by a search)")
    return factory(topology, edges=edges, workers=workers, **params)
