"""Placements: which partitions each node holds, and the load arithmetic of SPEC §1–§2.

A placement is pure integer bookkeeping — no coefficients — so it is cheap enough for an optimiser to
build thousands of times. Every placement here gives each node one *arc* of cyclically consecutive
partitions on a circle of ``K`` partitions (:class:`ArcPlacement`):

``proportional`` (the default, SPEC §2)
    node ``i`` gets an arc of ``K (s+1) w_i / Σw`` partitions (``w_i`` its weight: the worker count
    ``m_i`` for an edge, 1 for a worker) and the arcs are laid one after another around the circle.
    Every partition is covered exactly ``s+1`` times, by distinct nodes iff ``(s+1) w_i <= Σw``.
    With equal weights this *is* fractional repetition when ``(s+1) | n`` and a relabelled cyclic
    placement when ``gcd(n, s+1) = 1``.
``cyclic`` (equal weights)
    the classical layout: ``K`` is cut into ``n`` equal groups and node ``i`` holds groups
    ``i, i+1, …, i+s`` (mod ``n``).
``fractional_repetition`` (equal weights, ``(s+1) | n``)
    nodes ``(s+1)c, …, (s+1)c+s`` form class ``c`` and all hold the ``c``-th of ``n/(s+1)`` blocks.

Two-layer (HGC) placements compose an edge-layer placement over the ``K`` partitions with one
worker-layer placement per edge over that edge's arc (:class:`HierarchicalPlacement`). Each worker's
load ``D/K`` then equals the bound ``(s_e+1)(s_w+1)/Σm`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import gcd, lcm
from typing import Sequence

import numpy as np

from hgc.errors import ConfigError, UnreachableBoundError

PLACEMENTS = ("proportional", "cyclic", "fractional_repetition")
KINDS = ("uncoded", "flat_gc", "hgc")


# ----------------------------------------------------------------------------------------------------
# One layer
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ArcPlacement:
    """Node ``i`` holds the ``lengths[i]`` partitions ``starts[i], starts[i]+1, …`` (mod ``n_partitions``).

    ``s`` is the designed tolerance: every partition lies on at least ``s+1`` distinct nodes.
    ``kind`` names the layout (one of :data:`PLACEMENTS`).
    """

    n_partitions: int
    starts: tuple[int, ...]
    lengths: tuple[int, ...]
    s: int
    kind: str

    @property
    def n_nodes(self) -> int:
        return len(self.starts)

    def holdings(self, node: int) -> np.ndarray:
        """Partition indices held by ``node``, in arc order."""
        return (self.starts[node] + np.arange(self.lengths[node])) % self.n_partitions

    def membership(self) -> np.ndarray:
        """Boolean matrix ``(n_nodes, n_partitions)``: entry ``[i, k]`` says node ``i`` holds partition ``k``."""
        out = np.zeros((self.n_nodes, self.n_partitions), dtype=bool)
        for node in range(self.n_nodes):
            out[node, self.holdings(node)] = True
        return out

    def coverage(self) -> np.ndarray:
        """Number of distinct nodes holding each partition, shape ``(n_partitions,)``."""
        return self.membership().sum(axis=0)

    def load(self, node: int) -> Fraction:
        """Fraction of the ``n_partitions`` held by ``node`` (exact)."""
        return Fraction(self.lengths[node], self.n_partitions)


def placement_granularity(kind: str, weights: Sequence[int], s: int) -> int:
    """Smallest ``K`` for placement ``kind``; every valid ``K`` is a multiple of it.

    ``proportional`` needs ``K (s+1) w_i / Σw`` integral for all ``i``, i.e. ``Σw | K (s+1) gcd(w)``;
    ``cyclic`` needs ``n | K``; ``fractional_repetition`` needs ``n/(s+1) | K``.
    """
    n, total = len(weights), sum(weights)
    if kind == "proportional":
        return total // gcd(total, (s + 1) * gcd(*weights))
    if kind == "cyclic":
        return n
    if kind == "fractional_repetition":
        return n // (s + 1)
    raise ConfigError(f"must be one of {', '.join(PLACEMENTS)}, got {kind!r}", "placement")


def _check_placement(kind: str, weights: Sequence[int], s: int, what: str = "s") -> None:
    """Raise :class:`~hgc.errors.ConfigError` if placement ``kind`` cannot serve these weights and ``s``."""
    if kind not in PLACEMENTS:
        raise ConfigError(f"must be one of {', '.join(PLACEMENTS)}, got {kind!r}", "placement")
    n = len(weights)
    if kind != "proportional" and len(set(weights)) > 1:
        raise ConfigError(f"the {kind} placement needs equal node weights, got {list(weights)}; "
                          "use the proportional placement", "placement")
    if kind == "fractional_repetition" and n % (s + 1):
        raise ConfigError(f"fractional repetition needs ({what}+1) to divide the number of nodes: "
                          f"{what}+1={s + 1} does not divide n={n}", "placement")


def layer_placement(kind: str, weights: Sequence[int], s: int, n_partitions: int) -> ArcPlacement:
    """The ``kind`` placement of ``len(weights)`` nodes over ``n_partitions`` partitions with tolerance ``s``.

    ``n_partitions`` must be a multiple of :func:`placement_granularity`; ``weights`` only matter
    for the proportional layout. Tolerance and reachability are assumed checked by the caller.
    """
    weights = tuple(int(w) for w in weights)
    n, total, K = len(weights), sum(weights), int(n_partitions)
    _check_placement(kind, weights, s)
    if K % placement_granularity(kind, weights, s):
        raise ConfigError(f"must be a multiple of {placement_granularity(kind, weights, s)} for the {kind} "
                          f"placement of {n} nodes with s={s}, got {K}", "data.partitions")
    if kind == "proportional":
        lengths = tuple(K * (s + 1) * w // total for w in weights)
        starts, position = [], 0
        for length in lengths:
            starts.append(position % K)
            position += length
        starts = tuple(starts)
    elif kind == "cyclic":
        unit = K // n
        lengths = (unit * (s + 1),) * n
        starts = tuple(i * unit for i in range(n))
    else:
        block = K // (n // (s + 1))
        lengths = (block,) * n
        starts = tuple((i // (s + 1)) * block for i in range(n))
    return ArcPlacement(K, starts, lengths, s, kind)


def proportional_cyclic_placement(weights: Sequence[int], s: int, n_partitions: int | None = None) -> ArcPlacement:
    """Arcs of ``K (s+1) w_i / Σw`` partitions laid end to end around the circle (SPEC §2).

    Raises :class:`~hgc.errors.UnreachableBoundError` if ``(s+1) w_i > Σw`` for some node (the arc
    would wrap onto itself, so some partition could not sit on ``s+1`` *distinct* nodes).
    """
    _check_tolerance(weights, s, "s")
    K = n_partitions or placement_granularity("proportional", weights, s)
    return layer_placement("proportional", weights, s, K)


def cyclic_placement(n_nodes: int, s: int, n_partitions: int | None = None) -> ArcPlacement:
    """Classical cyclic placement: node ``i`` holds groups ``i..i+s`` (mod ``n``) of ``K/n`` partitions."""
    _check_tolerance([1] * n_nodes, s, "s")
    return layer_placement("cyclic", [1] * n_nodes, s, n_partitions or n_nodes)


def fractional_repetition_placement(n_nodes: int, s: int, n_partitions: int | None = None) -> ArcPlacement:
    """Fractional repetition: classes of ``s+1`` consecutive nodes share one of ``n/(s+1)`` blocks."""
    _check_tolerance([1] * n_nodes, s, "s")
    weights = [1] * n_nodes
    _check_placement("fractional_repetition", weights, s)
    return layer_placement("fractional_repetition", weights, s,
                           n_partitions or placement_granularity("fractional_repetition", weights, s))


def _check_tolerance(weights: Sequence[int], s: int, name: str) -> None:
    """Validate one layer's tolerance: ``0 <= s < n`` and ``(s+1) w_i <= Σw``."""
    n, total = len(weights), sum(weights)
    if n < 1:
        raise ConfigError(f"needs at least one node, got {n}", name)
    if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 0:
        raise ConfigError(f"must be an integer >= 0, got {s!r}", name)
    if s >= n:
        raise UnreachableBoundError(f"{name}={s} tolerates every one of the {n} nodes straggling; "
                                    f"must be < {n}", name)
    worst = int(np.argmax(weights))
    if (s + 1) * weights[worst] > total:
        raise UnreachableBoundError(
            f"load bound unreachable: node {worst} has weight {weights[worst]} and "
            f"({name}+1)*{weights[worst]} = {(s + 1) * weights[worst]} > total weight {total}; "
            f"use {name} <= {total // weights[worst] - 1}", name)


# ----------------------------------------------------------------------------------------------------
# Topologies and the two-layer placement
# ----------------------------------------------------------------------------------------------------

def _check_workers(workers: Sequence[int]) -> tuple[int, ...]:
    try:
        out = tuple(int(m) for m in workers)
    except (TypeError, ValueError):
        raise ConfigError(f"must be a list of worker counts per edge, got {workers!r}", "topology.workers") from None
    if not out:
        raise ConfigError("needs at least one edge, got none", "topology.workers")
    for i, m in enumerate(out):
        if m < 1:
            raise ConfigError(f"must be >= 1, got {m}", f"topology.workers[{i}]")
    return out


def check_hgc(workers: Sequence[int], s_e: int, s_w: int) -> None:
    """Raise :class:`~hgc.errors.UnreachableBoundError` (or ConfigError for non-integers) unless the
    two-layer code with ``s_e`` edge and ``s_w`` per-edge worker stragglers meets the bound of SPEC §1."""
    workers = _check_workers(workers)
    n, total = len(workers), sum(workers)
    for name, value in (("s_e", s_e), ("s_w", s_w)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"must be an integer >= 0, got {value!r}", name)
    if s_e >= n:
        raise UnreachableBoundError(f"s_e={s_e} tolerates every one of the {n} edges straggling; "
                                    f"must be < {n}", "s_e")
    small = int(np.argmin(workers))
    if s_w >= workers[small]:
        raise UnreachableBoundError(f"s_w={s_w} must be < m_i for every edge; edge {small} has only "
                                    f"{workers[small]} workers", "s_w")
    big = int(np.argmax(workers))
    if (s_e + 1) * workers[big] > total:
        raise UnreachableBoundError(
            f"load bound unreachable: edge {big} has m_{big}={workers[big]} workers and "
            f"(s_e+1)*m_{big} = {(s_e + 1) * workers[big]} > sum(m) = {total}, so some partition would sit "
            f"twice on that edge; use s_e <= {total // workers[big] - 1}", "s_e")


def hgc_reachable(workers: Sequence[int], s_e: int, s_w: int) -> bool:
    """True iff ``(s_e, s_w)`` is admissible for ``workers``: ``0 <= s_e < n``, ``0 <= s_w < min m_i``
    and ``(s_e+1) max m_i <= Σm`` (the load bound is then met with equality)."""
    workers = tuple(int(m) for m in workers)
    if not workers or min(workers) < 1 or s_e < 0 or s_w < 0:
        return False
    return s_e < len(workers) and s_w < min(workers) and (s_e + 1) * max(workers) <= sum(workers)


def max_edge_tolerance(workers: Sequence[int]) -> int:
    """Largest admissible ``s_e``: ``min(n-1, Σm // max m - 1)``."""
    workers = _check_workers(workers)
    return min(len(workers) - 1, sum(workers) // max(workers) - 1)


def admissible_hgc(workers: Sequence[int]) -> list[tuple[int, int]]:
    """Every admissible ``(s_e, s_w)`` for ``workers``, in lexicographic order."""
    workers = _check_workers(workers)
    return [(s_e, s_w) for s_e in range(max_edge_tolerance(workers) + 1) for s_w in range(min(workers))]


@dataclass(frozen=True)
class HierarchicalPlacement:
    """Edge layer over ``K`` partitions composed with one worker layer per edge over its arc.

    ``edge.holdings(i)`` lists edge ``i``'s partitions ``P_i`` in arc order; worker ``j`` of edge ``i``
    holds ``P_i[inner[i].holdings(j)]``. Workers are numbered edge by edge.
    """

    workers: tuple[int, ...]
    s_e: int
    s_w: int
    edge: ArcPlacement
    inner: tuple[ArcPlacement, ...]

    @property
    def n_partitions(self) -> int:
        return self.edge.n_partitions

    @property
    def n_workers(self) -> int:
        return sum(self.workers)

    def worker_holdings(self, edge: int, worker: int) -> np.ndarray:
        """Global partition indices held by worker ``worker`` (0-based inside ``edge``)."""
        return self.edge.holdings(edge)[self.inner[edge].holdings(worker)]

    def membership(self) -> np.ndarray:
        """Boolean ``(n_workers, K)`` matrix of which worker holds which partition."""
        out = np.zeros((self.n_workers, self.n_partitions), dtype=bool)
        row = 0
        for i, m in enumerate(self.workers):
            for j in range(m):
                out[row, self.worker_holdings(i, j)] = True
                row += 1
        return out

    def load(self) -> Fraction:
        """Each worker's fraction of the data (the same for all workers; exact)."""
        loads = {Fraction(length, self.n_partitions) for inner in self.inner for length in set(inner.lengths)}
        assert len(loads) == 1, f"unequal worker loads {loads}"  # guaranteed by construction
        return loads.pop()


def _hgc_granularities(workers: tuple[int, ...], s_e: int, s_w: int, edge_placement: str,
                       worker_placement: str) -> tuple[int, list[int], list[int]]:
    """``(g_edge, q, g_inner)``: valid ``K = t g_edge`` with ``|P_i| = t q_i`` a multiple of ``g_inner[i]``."""
    _check_placement(edge_placement, workers, s_e, "s_e")
    g_edge = placement_granularity(edge_placement, workers, s_e)
    base = layer_placement(edge_placement, workers, s_e, g_edge)
    q = list(base.lengths)
    g_inner = []
    for m in workers:
        _check_placement(worker_placement, [1] * m, s_w, "s_w")
        g_inner.append(placement_granularity(worker_placement, [1] * m, s_w))
    return g_edge, q, g_inner


def smallest_hgc_partitions(workers: Sequence[int], s_e: int, s_w: int, *, edge_placement: str = "proportional",
                            worker_placement: str = "proportional") -> int:
    """Smallest ``K`` for which the two-layer placement is exact (integral arcs and groups)."""
    workers = _check_workers(workers)
    check_hgc(workers, s_e, s_w)
    g_edge, q, g_inner = _hgc_granularities(workers, s_e, s_w, edge_placement, worker_placement)
    t = 1
    for qi, gi in zip(q, g_inner):
        t = lcm(t, gi // gcd(gi, qi))
    return t * g_edge


def hierarchical_placement(workers: Sequence[int], s_e: int, s_w: int, n_partitions: int | None = None, *,
                           edge_placement: str = "proportional",
                           worker_placement: str = "proportional") -> HierarchicalPlacement:
    """The HGC placement of SPEC §2 (smallest valid ``K`` unless ``n_partitions`` is given).

    Raises :class:`~hgc.errors.UnreachableBoundError` for inadmissible tolerances and
    :class:`~hgc.errors.ConfigError` (key ``data.partitions``) for a ``K`` that does not split evenly.
    """
    workers = _check_workers(workers)
    K_min = smallest_hgc_partitions(workers, s_e, s_w, edge_placement=edge_placement,
                                    worker_placement=worker_placement)
    K = K_min if n_partitions is None else _check_partitions(n_partitions)
    g_edge, q, g_inner = _hgc_granularities(workers, s_e, s_w, edge_placement, worker_placement)
    bad = K % g_edge != 0 or any((K // g_edge * qi) % gi for qi, gi in zip(q, g_inner))
    if bad:
        raise ConfigError(f"K={K} partitions do not split evenly for hgc with s_e={s_e}, s_w={s_w} on "
                          f"workers {list(workers)}: K must be a multiple of {K_min}", "data.partitions")
    edge = layer_placement(edge_placement, workers, s_e, K)
    cache: dict[tuple[int, int], ArcPlacement] = {}          # equal edges share one (immutable) inner placement
    for m, length in zip(workers, edge.lengths):
        if (m, length) not in cache:
            cache[m, length] = layer_placement(worker_placement, [1] * m, s_w, length)
    inner = tuple(cache[m, length] for m, length in zip(workers, edge.lengths))
    return HierarchicalPlacement(workers, s_e, s_w, edge, inner)


def _check_partitions(n_partitions: int) -> int:
    if not isinstance(n_partitions, (int, np.integer)) or isinstance(n_partitions, bool) or n_partitions < 1:
        raise ConfigError(f"must be an integer >= 1, got {n_partitions!r}", "data.partitions")
    return int(n_partitions)


def flat_placement(workers: Sequence[int], s: int, n_partitions: int | None = None, *,
                   placement: str = "proportional", scheme: str = "flat_gc") -> ArcPlacement:
    """Placement of flat gradient coding over all ``N = Σm`` workers (numbered edge by edge)."""
    workers = _check_workers(workers)
    weights = [1] * sum(workers)
    _check_tolerance(weights, s, "s")
    _check_placement(placement, weights, s)
    g = placement_granularity(placement, weights, s)
    K = g if n_partitions is None else _check_partitions(n_partitions)
    if K % g:
        what = "uncoded" if scheme == "uncoded" else f"flat_gc with s={s} ({placement} placement)"
        raise ConfigError(f"must be a multiple of {g} for {what} on N={len(weights)} workers, got {K}",
                          "data.partitions")
    return layer_placement(placement, weights, s, K)


def _tolerances(kind: str, workers: tuple[int, ...], s: int | None, s_e: int | None,
                s_w: int | None) -> tuple[int, int, int]:
    """``(s, s_e, s_w)`` with the ones that do not apply to ``kind`` filled in (uncoded: all 0)."""
    if kind not in KINDS:
        raise ConfigError(f"must be one of {', '.join(KINDS)}, got {kind!r}", "scheme")
    if kind == "uncoded":
        return 0, 0, 0
    if kind == "flat_gc":
        if s is None:
            raise ConfigError("flat_gc needs the tolerance s", "s")
        return s, 0, 0
    if s_e is None or s_w is None:
        raise ConfigError(f"hgc needs both s_e and s_w, got s_e={s_e!r}, s_w={s_w!r}", "s_e" if s_e is None else "s_w")
    return 0, s_e, s_w


def make_placement(kind: str, workers: Sequence[int], *, s: int | None = None, s_e: int | None = None,
                   s_w: int | None = None, partitions: int | None = None,
                   placement: str = "proportional") -> ArcPlacement | HierarchicalPlacement:
    """The placement behind scheme ``kind`` (``uncoded`` is flat with ``s = 0``)."""
    workers = _check_workers(workers)
    s, s_e, s_w = _tolerances(kind, workers, s, s_e, s_w)
    if kind == "hgc":
        return hierarchical_placement(workers, s_e, s_w, partitions, edge_placement="proportional",
                                      worker_placement=placement)
    return flat_placement(workers, s, partitions, placement="proportional" if kind == "uncoded" else placement,
                          scheme=kind)


def smallest_partitions(kind: str, workers: Sequence[int], s: int | None = None, s_e: int | None = None,
                        s_w: int | None = None, *, placement: str = "proportional") -> int:
    """Smallest valid number of partitions ``K`` for scheme ``kind`` on ``workers``."""
    return make_placement(kind, workers, s=s, s_e=s_e, s_w=s_w, placement=placement).n_partitions


def worker_load(kind: str, workers: Sequence[int], s: int | None = None, s_e: int | None = None,
                s_w: int | None = None) -> float:
    """Fraction of the dataset each worker holds (``D/K``), from the placement the codes use.

    ``uncoded``: ``1/N``; ``flat_gc``: ``(s+1)/N``; ``hgc``: ``(s_e+1)(s_w+1)/Σm``. Integer
    arithmetic only. Raises :class:`~hgc.errors.UnreachableBoundError` for inadmissible tolerances.
    """
    placed = make_placement(kind, workers, s=s, s_e=s_e, s_w=s_w)
    load = placed.load() if isinstance(placed, HierarchicalPlacement) else placed.load(0)
    return float(load)
