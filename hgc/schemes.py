"""Coding schemes (SPEC §4): what a user asks for (:class:`SchemeSpec`) and what gets run (:class:`Strategy`).

A *spec* may leave tolerances as ``"auto"`` and, for ``hgc_jncss``, the participating nodes open. A
*strategy* is fully determined: participating edges and workers, tolerances and the per-worker load
(fraction of the dataset, from :mod:`hgc.codes`). The simulator and the analytic evaluator take strategies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

from hgc.errors import ConfigError
from hgc.topology import Topology
from hgc.validation import as_int, as_list, as_mapping, check_keys, describe, join, suggestion

AUTO = "auto"
SCHEME_KINDS = ("uncoded", "flat_gc", "hgc", "hgc_jncss")
Tolerance = int | Literal["auto"] | None

_TOLERANCE_KEYS = {"uncoded": (), "flat_gc": ("s",), "hgc": ("s_e", "s_w"), "hgc_jncss": ()}


@dataclass(frozen=True)
class SchemeSpec:
    """A scheme as written in the config: ``kind`` and its tolerances (ints, ``"auto"`` or ``None``)."""

    kind: str
    s: Tolerance = None
    s_e: Tolerance = None
    s_w: Tolerance = None

    @property
    def label(self) -> str:
        """Human-readable name, e.g. ``hgc(s_e=1,s_w=auto)``."""
        keys = _TOLERANCE_KEYS[self.kind]
        if not keys:
            return self.kind
        return f"{self.kind}(" + ",".join(f"{k}={getattr(self, k)}" for k in keys) + ")"

    @property
    def is_auto(self) -> bool:
        return AUTO in (self.s, self.s_e, self.s_w) or self.kind == "hgc_jncss"

    def to_config(self) -> str | dict[str, Any]:
        keys = _TOLERANCE_KEYS[self.kind]
        if not keys:
            return self.kind
        return {"scheme": self.kind, **{k: getattr(self, k) for k in keys}}


@dataclass(frozen=True)
class Strategy:
    """A fully determined scheme on a set of participating nodes.

    ``edges`` are the participating edge indices; ``workers[j]`` the participating worker positions
    (0-based, inside edge ``edges[j]``). ``kind`` is ``uncoded``, ``flat_gc`` or ``hgc``; ``s`` applies to
    ``flat_gc``, ``s_e``/``s_w`` to ``hgc``. ``load`` is each worker's fraction of the dataset.
    """

    kind: str
    edges: tuple[int, ...]
    workers: tuple[tuple[int, ...], ...]
    load: float
    s: int | None = None
    s_e: int | None = None
    s_w: int | None = None

    @property
    def worker_counts(self) -> tuple[int, ...]:
        return tuple(len(w) for w in self.workers)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @property
    def n_workers(self) -> int:
        return sum(self.worker_counts)

    def describe(self) -> str:
        """Which special case this is, in words (SPEC §4)."""
        if self.kind == "hgc" and self.s_e == 0 and self.s_w == 0:
            return "no redundancy (uncoded load)"
        if self.kind == "hgc" and self.s_e == 0:
            return "gradient coding inside each edge"
        if self.kind == "hgc" and self.s_w == 0:
            return "replication across edges"
        return ""


def all_nodes(topology: Topology) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    """``(edges, workers)`` selecting every node of ``topology``."""
    return tuple(range(topology.n_edges)), tuple(tuple(range(m)) for m in topology.workers)


def make_strategy(kind: str, topology: Topology, *, s: int | None = None, s_e: int | None = None,
                  s_w: int | None = None, edges: Sequence[int] | None = None,
                  workers: Sequence[Sequence[int]] | None = None) -> Strategy:
    """A :class:`Strategy` on the given nodes (all by default), its load taken from :mod:`hgc.codes`.

    Raises :class:`~hgc.errors.UnreachableBoundError` when the tolerances are not admissible there.
    """
    from hgc.codes import worker_load

    if edges is None or workers is None:
        edges, workers = all_nodes(topology)
    edges = tuple(int(e) for e in edges)
    workers = tuple(tuple(int(p) for p in ws) for ws in workers)
    counts = [len(ws) for ws in workers]
    load = worker_load(kind, counts, s=s, s_e=s_e, s_w=s_w)
    return Strategy(kind, edges, workers, float(load), s=s, s_e=s_e, s_w=s_w)


# ----------------------------------------------------------------------------------------------------
# Parsing the `schemes:` list

def _tolerance(value: Any, key: str, upper: int, why: str) -> Tolerance:
    """A tolerance in ``0 .. upper-1`` or ``"auto"``; ``why`` explains the upper limit."""
    if value == AUTO:
        return AUTO
    tolerance = as_int(value, key, minimum=0)
    if tolerance >= upper:
        raise ConfigError(f"must be < {upper} ({why}), got {tolerance}", key)
    return tolerance


def parse_scheme(raw: Any, key: str, topology: Topology) -> SchemeSpec:
    """One entry of ``schemes:``: a bare name or ``{scheme: name, <tolerances>}``."""
    bare_name = isinstance(raw, str)
    raw = as_mapping({"scheme": raw} if bare_name else raw, key)
    kind = raw.get("scheme")
    if kind not in SCHEME_KINDS:
        where = join(key, "scheme") if "scheme" in raw and not bare_name else key
        raise ConfigError(f"unknown scheme {describe(kind)}{suggestion(str(kind), SCHEME_KINDS)} "
                          f"(one of: {', '.join(SCHEME_KINDS)})", where)
    check_keys(raw, key, ("scheme", *_TOLERANCE_KEYS[kind]))
    n, big_n, m_min = topology.n_edges, topology.n_workers, min(topology.workers)
    if kind == "flat_gc":
        s = _tolerance(raw.get("s", AUTO), join(key, "s"), big_n, f"there are {big_n} workers")
        return SchemeSpec(kind, s=s)
    if kind == "hgc":
        s_e = _tolerance(raw.get("s_e", AUTO), join(key, "s_e"), n, f"there are {n} edges")
        s_w = _tolerance(raw.get("s_w", AUTO), join(key, "s_w"), m_min,
                         f"the smallest edge has {m_min} workers")
        spec = SchemeSpec(kind, s_e=s_e, s_w=s_w)
        if s_e != AUTO and s_w != AUTO:
            _check_reachable(topology, int(s_e), int(s_w), key)
        return spec
    return SchemeSpec(kind)


def _check_reachable(topology: Topology, s_e: int, s_w: int, key: str) -> None:
    from hgc.codes import worker_load

    try:
        worker_load("hgc", topology.workers, s_e=s_e, s_w=s_w)
    except ConfigError as err:
        raise type(err)(err.message, key) from None


def parse_schemes(raw: Any, key: str, topology: Topology) -> tuple[SchemeSpec, ...]:
    items = as_list(raw, key)
    if not items:
        raise ConfigError("expected at least one scheme", key)
    specs = tuple(parse_scheme(item, join(key, i), topology) for i, item in enumerate(items))
    return specs


DEFAULT_SCHEMES: tuple[SchemeSpec, ...] = (
    SchemeSpec("uncoded"), SchemeSpec("flat_gc", s=AUTO), SchemeSpec("hgc", s_e=AUTO, s_w=AUTO),
)
