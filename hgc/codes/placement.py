"""Placements: which partitions each node holds, and the load arithmetic (docs/model.md §3–§4).

A placement is pure integer bookkeeping — no coefficients — so it is cheap enough for an optimiser to
build thousands of times. Every placement here gives each node one *arc* of cyclically consecutive
partitions on a circle of ``K`` partitions (:class:`ArcPlacement`). A layer with tolerance ``s`` and
reduction ``ℓ`` (messages of length ``1/ℓ``, see :mod:`hgc.codes.allocation`) puts every partition on
``c = s + ℓ`` distinct nodes (``c = s + 1`` classically):

``proportional`` (the default, docs/model.md §4.1)
    node ``i`` gets an arc of ``K c w_i / Σw`` partitions (``w_i`` its weight: the worker count
    ``m_i`` for an edge, 1 for a worker) and the arcs are laid one after another around the circle.
    Every partition is covered exactly ``c`` times, by distinct nodes iff ``c w_i <= Σw``.
    With equal weights this *is* fractional repetition when ``c | n`` and a relabelled cyclic
    placement when ``gcd(n, c) = 1``. More generally, arcs of any lengths ``share_i K`` with
    ``Σ share_i = c`` and ``share_i <= 1`` laid end to end (McNaughton's wrap-around rule) cover every
    partition ``c`` times by distinct nodes (:func:`share_placement`).
``cyclic`` (equal weights)
    the classical layout: ``K`` is cut into ``n`` equal groups and node ``i`` holds groups
    ``i, i+1, …, i+c-1`` (mod ``n``).
``fractional_repetition`` (equal weights, ``c | n``)
    nodes ``c·t, …, c·t+c-1`` form class ``t`` and all hold the ``t``-th of ``n/c`` blocks.

Two-layer (HGC) placements compose an edge-layer placement over the ``K`` partitions with one
worker-layer placement per edge over that edge's arc (:class:`HierarchicalPlacement`), following an
:class:`~hgc.codes.allocation.Allocation` (edge shares ``f_i``, worker shares ``g_ij``). Worker ``(i, j)``
holds ``f_i g_ij K`` partitions; with the default (balanced) shares and one ``s_w`` that is the bound
``(s_e+1)(s_w+1)/Σm`` (docs/model.md §3) for every worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from math import gcd, lcm
from typing import Any, Sequence

import numpy as np

from hgc.codes.allocation import (Allocation, ShareSpec, check_granularity, check_workers, hgc_allocation,
                                  per_edge_tolerances)
from hgc.errors import ConfigError, UnreachableBoundError

PLACEMENTS = ("proportional", "cyclic", "fractional_repetition")
KINDS = ("uncoded", "flat_gc", "hgc")


# ----------------------------------------------------------------------------------------------------
# One layer
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ArcPlacement:
    """Node ``i`` holds the ``lengths[i]`` partitions ``starts[i], starts[i]+1, …`` (mod ``n_partitions``).

    ``s`` is the designed tolerance and ``reduction`` the message reduction ``ℓ``: every partition lies
    on at least ``s + reduction`` distinct nodes. ``kind`` names the layout (one of :data:`PLACEMENTS`).
    """

    n_partitions: int
    starts: tuple[int, ...]
    lengths: tuple[int, ...]
    s: int
    kind: str
    reduction: int = 1

    @property
    def n_nodes(self) -> int:
        return len(self.starts)

    @property
    def copies(self) -> int:
        """Distinct nodes holding each partition: ``s + reduction``."""
        return self.s + self.reduction

    def holdings(self, node: int) -> np.ndarray:
        """Partition indices held by ``node``, in arc order."""
        return (self.starts[node] + np.arange(self.lengths[node])) % max(self.n_partitions, 1)

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


def placement_granularity(kind: str, weights: Sequence[int], s: int, reduction: int = 1) -> int:
    """Smallest ``K`` for placement ``kind``; every valid ``K`` is a multiple of it.

    With ``c = s + reduction`` copies: ``proportional`` needs ``K c w_i / Σw`` integral for all ``i``, i.e.
    ``Σw | K c gcd(w)``; ``cyclic`` needs ``n | K``; ``fractional_repetition`` needs ``n/c | K``.
    """
    n, total, copies = len(weights), sum(weights), s + reduction
    if kind == "proportional":
        return total // gcd(total, copies * gcd(*weights))
    if kind == "cyclic":
        return n
    if kind == "fractional_repetition":
        return n // copies
    raise ConfigError(f"must be one of {', '.join(PLACEMENTS)}, got {kind!r}", "placement")


def _check_placement(kind: str, weights: Sequence[int], s: int, what: str = "s", reduction: int = 1) -> None:
    """Raise :class:`~hgc.errors.ConfigError` if placement ``kind`` cannot serve these weights and ``s``."""
    if kind not in PLACEMENTS:
        raise ConfigError(f"must be one of {', '.join(PLACEMENTS)}, got {kind!r}", "placement")
    n = len(weights)
    if kind != "proportional" and len(set(weights)) > 1:
        raise ConfigError(f"the {kind} placement needs equal node weights, got {list(weights)}; "
                          "use the proportional placement", "placement")
    copies = s + reduction
    if kind == "fractional_repetition" and n % copies:
        label = f"{what}+1" if reduction == 1 else f"{what}+reduction"
        raise ConfigError(f"fractional repetition needs ({label}) to divide the number of nodes: "
                          f"{label}={copies} does not divide n={n}", "placement")


def layer_placement(kind: str, weights: Sequence[int], s: int, n_partitions: int, reduction: int = 1) -> ArcPlacement:
    """The ``kind`` placement of ``len(weights)`` nodes over ``n_partitions`` partitions with tolerance ``s``.

    ``n_partitions`` must be a multiple of :func:`placement_granularity`; ``weights`` only matter
    for the proportional layout. Tolerance and reachability are assumed checked by the caller.
    """
    weights = tuple(int(w) for w in weights)
    n, total, K, copies = len(weights), sum(weights), int(n_partitions), s + reduction
    _check_placement(kind, weights, s, reduction=reduction)
    if K % placement_granularity(kind, weights, s, reduction):
        raise ConfigError(f"must be a multiple of {placement_granularity(kind, weights, s, reduction)} for the "
                          f"{kind} placement of {n} nodes with s={s}, got {K}", "data.partitions")
    if kind == "proportional":
        return share_placement([Fraction(copies * w, total) for w in weights], K, s, reduction)
    if kind == "cyclic":
        unit = K // n
        lengths = (unit * copies,) * n
        starts = tuple(i * unit for i in range(n))
    else:
        block = K // (n // copies)
        lengths = (block,) * n
        starts = tuple((i // copies) * block for i in range(n))
    return ArcPlacement(K, starts, lengths, s, kind, reduction)


def share_placement(shares: Sequence[Fraction], n_partitions: int, s: int, reduction: int = 1) -> ArcPlacement:
    """Arcs of ``share_i K`` partitions laid end to end around a circle of ``K`` (wrap-around rule).

    ``shares`` must add up to ``s + reduction`` with every ``share_i K`` an integer and ``share_i <= 1``
    (checked by the caller): then each partition is covered by exactly ``s + reduction`` distinct nodes,
    because consecutive arcs of total length ``(s+reduction) K`` wind that many times around the circle
    and no arc is longer than one turn.
    """
    K = int(n_partitions)
    lengths = tuple(int(f * K) for f in shares)
    starts, position = [], 0
    for length in lengths:
        starts.append(position % K if K else 0)
        position += length
    return ArcPlacement(K, tuple(starts), lengths, s, "proportional", reduction)


def proportional_cyclic_placement(weights: Sequence[int], s: int, n_partitions: int | None = None,
                                  reduction: int = 1) -> ArcPlacement:
    """Arcs of ``K (s+ℓ) w_i / Σw`` partitions laid end to end around the circle (docs/model.md §4.1).

    Raises :class:`~hgc.errors.UnreachableBoundError` if ``(s+ℓ) w_i > Σw`` for some node (the arc
    would wrap onto itself, so some partition could not sit on ``s+ℓ`` *distinct* nodes).
    """
    _check_tolerance(weights, s, "s", reduction)
    K = n_partitions or placement_granularity("proportional", weights, s, reduction)
    return layer_placement("proportional", weights, s, K, reduction)


def cyclic_placement(n_nodes: int, s: int, n_partitions: int | None = None, reduction: int = 1) -> ArcPlacement:
    """Classical cyclic placement: node ``i`` holds groups ``i..i+s+ℓ-1`` (mod ``n``) of ``K/n`` partitions."""
    _check_tolerance([1] * n_nodes, s, "s", reduction)
    return layer_placement("cyclic", [1] * n_nodes, s, n_partitions or n_nodes, reduction)


def fractional_repetition_placement(n_nodes: int, s: int, n_partitions: int | None = None,
                                    reduction: int = 1) -> ArcPlacement:
    """Fractional repetition: classes of ``s+ℓ`` consecutive nodes share one of ``n/(s+ℓ)`` blocks."""
    _check_tolerance([1] * n_nodes, s, "s", reduction)
    weights = [1] * n_nodes
    _check_placement("fractional_repetition", weights, s, reduction=reduction)
    return layer_placement("fractional_repetition", weights, s,
                           n_partitions or placement_granularity("fractional_repetition", weights, s, reduction),
                           reduction)


def _check_tolerance(weights: Sequence[int], s: int, name: str, reduction: int = 1) -> None:
    """Validate one layer's tolerance: ``0 <= s``, ``s + ℓ <= n`` and ``(s+ℓ) w_i <= Σw``."""
    n, total = len(weights), sum(weights)
    if n < 1:
        raise ConfigError(f"needs at least one node, got {n}", name)
    if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 0:
        raise ConfigError(f"must be an integer >= 0, got {s!r}", name)
    if not isinstance(reduction, (int, np.integer)) or isinstance(reduction, bool) or reduction < 1:
        raise ConfigError(f"must be an integer >= 1, got {reduction!r}", "reduction")
    copies = s + reduction
    if copies > n:
        if reduction == 1:
            raise UnreachableBoundError(f"{name}={s} tolerates every one of the {n} nodes straggling; "
                                        f"must be < {n}", name)
        raise UnreachableBoundError(f"{name} + reduction = {copies} exceeds the {n} nodes: every partition must "
                                    f"lie on {copies} distinct nodes", name)
    worst = int(np.argmax(weights))
    if copies * weights[worst] > total:
        label = f"({name}+1)" if reduction == 1 else f"({name}+reduction)"
        raise UnreachableBoundError(
            f"load bound unreachable: node {worst} has weight {weights[worst]} and "
            f"{label}*{weights[worst]} = {copies * weights[worst]} > total weight {total}; "
            f"use {name} <= {total // weights[worst] - reduction}", name)


# ----------------------------------------------------------------------------------------------------
# Topologies and the two-layer placement
# ----------------------------------------------------------------------------------------------------

_check_workers = check_workers


def check_hgc(workers: Sequence[int], s_e: int, s_w: int | Sequence[int], reduction_e: int = 1,
              reduction_w: int = 1) -> None:
    """Raise :class:`~hgc.errors.UnreachableBoundError` (or ConfigError for non-integers) unless the
    two-layer code with ``s_e`` edge and ``s_w`` per-edge worker stragglers can use the default
    (balanced) allocation — in the classical case: unless it meets the load bound (docs/model.md §3)."""
    hgc_allocation(workers, s_e, s_w, reduction_e=reduction_e, reduction_w=reduction_w)


def hgc_reachable(workers: Sequence[int], s_e: int, s_w: int | Sequence[int], reduction_e: int = 1,
                  reduction_w: int = 1) -> bool:
    """True iff the balanced allocation exists: ``s_e + ℓ_e <= n``, ``s_w[i] + ℓ_w <= m_i`` and every
    balanced edge share ``<= 1`` — classically ``0 <= s_e < n``, ``0 <= s_w < min m_i`` and
    ``(s_e+1) max m_i <= Σm`` (the load bound is then met with equality)."""
    workers = tuple(int(m) for m in workers)
    if not workers or min(workers) < 1:
        return False
    if isinstance(s_w, (int, np.integer)) and reduction_e == 1 and reduction_w == 1:  # the fast classical test
        if s_e < 0 or s_w < 0:
            return False
        return s_e < len(workers) and s_w < min(workers) and (s_e + 1) * max(workers) <= sum(workers)
    try:
        check_hgc(workers, s_e, s_w, reduction_e, reduction_w)
    except ConfigError:
        return False
    return True


def max_edge_tolerance(workers: Sequence[int]) -> int:
    """Largest admissible ``s_e``: ``min(n-1, Σm // max m - 1)``."""
    workers = _check_workers(workers)
    return min(len(workers) - 1, sum(workers) // max(workers) - 1)


def admissible_hgc(workers: Sequence[int]) -> list[tuple[int, int]]:
    """Every admissible ``(s_e, s_w)`` (one ``s_w`` for all edges) for ``workers``, in lexicographic order."""
    workers = _check_workers(workers)
    return [(s_e, s_w) for s_e in range(max_edge_tolerance(workers) + 1) for s_w in range(min(workers))]


@dataclass(frozen=True)
class HierarchicalPlacement:
    """Edge layer over ``K`` partitions composed with one worker layer per edge over its arc.

    ``edge.holdings(i)`` lists edge ``i``'s partitions ``P_i`` in arc order; worker ``j`` of edge ``i``
    holds ``P_i[inner[i].holdings(j)]``. Workers are numbered edge by edge. ``s_w`` is as given (an int
    or one value per edge); ``allocation`` holds the exact shares, tolerances and reductions.
    """

    workers: tuple[int, ...]
    s_e: int
    s_w: int | tuple[int, ...]
    edge: ArcPlacement
    inner: tuple[ArcPlacement, ...]
    allocation: Allocation | None = field(default=None, compare=False)

    @property
    def n_partitions(self) -> int:
        return self.edge.n_partitions

    @property
    def n_workers(self) -> int:
        return sum(self.workers)

    @property
    def worker_tolerances(self) -> tuple[int, ...]:
        return per_edge_tolerances(self.workers, self.s_w)

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

    def worker_loads(self) -> tuple[Fraction, ...]:
        """Each worker's fraction of the data (exact), numbered edge by edge."""
        return tuple(Fraction(length, self.n_partitions) for inner in self.inner for length in inner.lengths)

    def load(self) -> Fraction:
        """The largest worker load (exact); with balanced shares every worker carries it."""
        return max(self.worker_loads())


def _inner_granularity(kind: str, m: int, s_w: int, reduction_w: int) -> int:
    _check_placement(kind, [1] * m, s_w, "s_w", reduction_w)
    return placement_granularity(kind, [1] * m, s_w, reduction_w)


def _hgc_granularity(alloc: Allocation, worker_placement: str) -> int:
    """Smallest valid ``K``: every edge arc ``f_i K`` and worker arc ``f_i g_ij K`` integral (proportional
    inner placements), or every edge arc a multiple of its inner placement's granularity (other kinds)."""
    if worker_placement == "proportional":
        return alloc.granularity
    dens = [f.denominator for f in alloc.edge_shares]
    for i in alloc.active_edges:
        g = _inner_granularity(worker_placement, alloc.workers[i], alloc.s_w[i], alloc.reduction_w)
        dens.append((alloc.edge_shares[i] / g).denominator)
    return lcm(*dens)


def _check_inner_kind(worker_placement: str, alloc: Allocation, custom_shares: bool) -> None:
    if worker_placement not in PLACEMENTS:
        raise ConfigError(f"must be one of {', '.join(PLACEMENTS)}, got {worker_placement!r}", "placement")
    if worker_placement != "proportional" and custom_shares:
        raise ConfigError(f"the {worker_placement} placement needs equal worker shares; use the proportional "
                          "placement with worker_shares", "placement")


def smallest_hgc_partitions(workers: Sequence[int], s_e: int, s_w: int | Sequence[int], *,
                            edge_placement: str = "proportional", worker_placement: str = "proportional",
                            edge_shares: ShareSpec = None, worker_shares: Sequence[object] | None = None,
                            reduction_e: int = 1, reduction_w: int = 1) -> int:
    """Smallest ``K`` for which the two-layer placement is exact (integral arcs and groups)."""
    if edge_placement != "proportional":
        _check_placement(edge_placement, _check_workers(workers), s_e, "s_e", reduction_e)
    alloc = hgc_allocation(workers, s_e, s_w, edge_shares=edge_shares, worker_shares=worker_shares,  # type: ignore[arg-type]
                           reduction_e=reduction_e, reduction_w=reduction_w)
    _check_inner_kind(worker_placement, alloc, worker_shares is not None)
    return check_granularity(_hgc_granularity(alloc, worker_placement),
                             "edge_shares" if edge_shares is not None else "worker_shares")


def hierarchical_placement(workers: Sequence[int], s_e: int, s_w: int | Sequence[int],
                           n_partitions: int | None = None, *, edge_placement: str = "proportional",
                           worker_placement: str = "proportional", edge_shares: ShareSpec = None,
                           worker_shares: Sequence[object] | None = None, reduction_e: int = 1,
                           reduction_w: int = 1) -> HierarchicalPlacement:
    """The HGC placement (docs/model.md §4.1), generalised to any allocation (smallest valid ``K`` unless
    ``n_partitions`` is given).

    The edge layer lays arcs of ``f_i K`` partitions end to end; inside edge ``i``'s arc the workers get
    arcs of ``g_ij f_i K`` laid end to end (``worker_placement="proportional"``), or the classical cyclic /
    fractional-repetition layouts (equal worker shares only). ``edge_placement`` must be
    ``"proportional"`` (kept as a parameter for the error message).

    Raises :class:`~hgc.errors.UnreachableBoundError` for inadmissible tolerances or shares and
    :class:`~hgc.errors.ConfigError` (key ``data.partitions``) for a ``K`` that does not split evenly.
    """
    workers = _check_workers(workers)
    if edge_placement != "proportional":
        _check_placement(edge_placement, workers, s_e, "s_e", reduction_e)
        raise ConfigError("the edge layer always uses the proportional (share) placement", "placement")
    alloc = hgc_allocation(workers, s_e, s_w, edge_shares=edge_shares, worker_shares=worker_shares,  # type: ignore[arg-type]
                           reduction_e=reduction_e, reduction_w=reduction_w)
    _check_inner_kind(worker_placement, alloc, worker_shares is not None)
    K_min = check_granularity(_hgc_granularity(alloc, worker_placement),
                              "edge_shares" if edge_shares is not None else "worker_shares")
    K = K_min if n_partitions is None else _check_partitions(n_partitions)
    if K % K_min:
        raise ConfigError(f"K={K} partitions do not split evenly for hgc with s_e={s_e}, s_w={_show(s_w)} on "
                          f"workers {list(workers)}: K must be a multiple of {K_min}", "data.partitions")
    edge = share_placement(alloc.edge_shares, K, s_e, reduction_e)
    cache: dict[tuple, ArcPlacement] = {}          # equal edges share one (immutable) inner placement
    inner = []
    for i, (m, length) in enumerate(zip(workers, edge.lengths)):
        key = (m, length, alloc.s_w[i], alloc.worker_shares[i])
        if key not in cache:
            if worker_placement == "proportional" or length == 0:
                cache[key] = share_placement(alloc.worker_shares[i], length, alloc.s_w[i], reduction_w)
            else:
                cache[key] = layer_placement(worker_placement, [1] * m, alloc.s_w[i], length, reduction_w)
        inner.append(cache[key])
    s_w_out = s_w if isinstance(s_w, (int, np.integer)) else alloc.s_w
    return HierarchicalPlacement(workers, s_e, s_w_out, edge, tuple(inner), alloc)


def _show(s_w: object) -> str:
    return str(list(s_w)) if isinstance(s_w, (list, tuple)) else str(s_w)


def _check_partitions(n_partitions: int) -> int:
    if not isinstance(n_partitions, (int, np.integer)) or isinstance(n_partitions, bool) or n_partitions < 1:
        raise ConfigError(f"must be an integer >= 1, got {n_partitions!r}", "data.partitions")
    return int(n_partitions)


def flat_placement(workers: Sequence[int], s: int, n_partitions: int | None = None, *,
                   placement: str = "proportional", scheme: str = "flat_gc", reduction: int = 1) -> ArcPlacement:
    """Placement of flat gradient coding over all ``N = Σm`` workers (numbered edge by edge); with
    reduction ``ℓ`` every partition lies on ``s + ℓ`` workers."""
    workers = _check_workers(workers)
    weights = [1] * sum(workers)
    _check_tolerance(weights, s, "s", reduction)
    _check_placement(placement, weights, s, reduction=reduction)
    g = placement_granularity(placement, weights, s, reduction)
    K = g if n_partitions is None else _check_partitions(n_partitions)
    if K % g:
        extra = "" if reduction == 1 else f", reduction={reduction}"
        what = "uncoded" if scheme == "uncoded" else f"flat_gc with s={s}{extra} ({placement} placement)"
        raise ConfigError(f"must be a multiple of {g} for {what} on N={len(weights)} workers, got {K}",
                          "data.partitions")
    return layer_placement(placement, weights, s, K, reduction)


def _tolerances(kind: str, workers: tuple[int, ...], s: int | None, s_e: int | None,
                s_w: int | Sequence[int] | None) -> tuple[int, int, int | Sequence[int]]:
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


def _check_flat_extras(kind: str, reduction_e: int, reduction_w: int, edge_shares: object,
                       worker_shares: object) -> None:
    if kind != "hgc" and (reduction_e != 1 or reduction_w != 1 or edge_shares is not None
                          or worker_shares is not None):
        raise ConfigError(f"{kind} takes no edge/worker shares or layer reductions (use reduction for flat_gc)",
                          "scheme")


def make_placement(kind: str, workers: Sequence[int], *, s: int | None = None, s_e: int | None = None,
                   s_w: int | Sequence[int] | None = None, partitions: int | None = None,
                   placement: str = "proportional", reduction: int = 1, reduction_e: int = 1,
                   reduction_w: int = 1, edge_shares: ShareSpec = None,
                   worker_shares: Sequence[object] | None = None) -> ArcPlacement | HierarchicalPlacement:
    """The placement behind scheme ``kind`` (``uncoded`` is flat with ``s = 0``).

    ``reduction`` applies to ``flat_gc``; ``reduction_e``, ``reduction_w``, ``edge_shares`` and
    ``worker_shares`` to ``hgc`` (see :mod:`hgc.codes.allocation`).
    """
    workers = _check_workers(workers)
    s, s_e, s_w = _tolerances(kind, workers, s, s_e, s_w)
    _check_flat_extras(kind, reduction_e, reduction_w, edge_shares, worker_shares)
    if kind == "hgc":
        if reduction != 1:
            raise ConfigError("hgc takes reduction_e and reduction_w, not reduction", "reduction")
        return hierarchical_placement(workers, s_e, s_w, partitions, edge_placement="proportional",
                                      worker_placement=placement, edge_shares=edge_shares,
                                      worker_shares=worker_shares, reduction_e=reduction_e,
                                      reduction_w=reduction_w)
    if kind == "uncoded" and reduction != 1:
        raise ConfigError("uncoded takes no reduction", "reduction")
    return flat_placement(workers, s, partitions, placement="proportional" if kind == "uncoded" else placement,
                          scheme=kind, reduction=reduction)


def smallest_partitions(kind: str, workers: Sequence[int], s: int | None = None, s_e: int | None = None,
                        s_w: int | Sequence[int] | None = None, *, placement: str = "proportional",
                        **options: Any) -> int:
    """Smallest valid number of partitions ``K`` for scheme ``kind`` on ``workers`` (``options``: the
    reductions and shares of :func:`make_placement`)."""
    return make_placement(kind, workers, s=s, s_e=s_e, s_w=s_w, placement=placement, **options).n_partitions


def worker_loads(kind: str, workers: Sequence[int], s: int | None = None, s_e: int | None = None,
                 s_w: int | Sequence[int] | None = None, **options: object) -> np.ndarray:
    """Every worker's fraction of the dataset, shape ``(N,)`` (float), without building a placement.

    ``uncoded``: ``1/N``; ``flat_gc``: ``(s+ℓ)/N``; ``hgc``: ``f_i g_ij`` of the allocation
    (:func:`hgc.codes.allocation.hgc_allocation`; ``options`` are its keywords). Exact rational
    arithmetic, validated like the codes (:class:`~hgc.errors.UnreachableBoundError` for inadmissible
    tolerances or shares).
    """
    workers = _check_workers(workers)
    s, s_e, s_w = _tolerances(kind, workers, s, s_e, s_w)
    N = sum(workers)
    if kind != "hgc":
        reduction = int(options.pop("reduction", 1))  # type: ignore[call-overload]
        _check_flat_extras(kind, int(options.get("reduction_e", 1)), int(options.get("reduction_w", 1)),  # type: ignore[call-overload]
                           options.get("edge_shares"), options.get("worker_shares"))
        if kind == "uncoded" and reduction != 1:
            raise ConfigError("uncoded takes no reduction", "reduction")
        _check_tolerance([1] * N, s, "s", reduction)
        return np.full(N, float(Fraction(s + reduction, N)))
    if options.get("reduction", 1) != 1:
        raise ConfigError("hgc takes reduction_e and reduction_w, not reduction", "reduction")
    options.pop("reduction", None)
    alloc = hgc_allocation(workers, s_e, s_w, **options)  # type: ignore[arg-type]
    return np.array([float(x) for x in alloc.worker_loads])


def worker_load(kind: str, workers: Sequence[int], s: int | None = None, s_e: int | None = None,
                s_w: int | Sequence[int] | None = None, **options: object) -> float:
    """The largest worker's fraction of the dataset (``D/K``; every worker's, for balanced shares).

    ``uncoded``: ``1/N``; ``flat_gc``: ``(s+1)/N``; ``hgc``: ``(s_e+1)(s_w+1)/Σm`` in the classical case;
    ``options`` as for :func:`worker_loads`. Raises :class:`~hgc.errors.UnreachableBoundError` for
    inadmissible tolerances.
    """
    workers = _check_workers(workers)
    if kind == "hgc" and not options:
        _, s_e, s_w = _tolerances(kind, workers, s, s_e, s_w)
        return float(hgc_allocation(workers, s_e, s_w).max_load)
    return float(worker_loads(kind, workers, s=s, s_e=s_e, s_w=s_w, **options).max())


def message_lengths(kind: str, *, reduction: int = 1, reduction_e: int = 1,
                    reduction_w: int = 1) -> tuple[Fraction, Fraction]:
    """``(worker message, edge message)`` lengths as fractions of one gradient vector.

    ``hgc``: a worker sends ``1/(ℓ_e ℓ_w)`` to its edge, an edge ``1/ℓ_e`` to the master. ``flat_gc``: a
    worker sends ``1/ℓ``; an edge relays every such message unchanged (the second value is the length of
    one relayed message). ``uncoded``: full vectors, relayed.
    """
    if kind not in KINDS:
        raise ConfigError(f"must be one of {', '.join(KINDS)}, got {kind!r}", "scheme")
    if kind == "hgc":
        return Fraction(1, reduction_e * reduction_w), Fraction(1, reduction_e)
    return Fraction(1, reduction), Fraction(1, reduction)
