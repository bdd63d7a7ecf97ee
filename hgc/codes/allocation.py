"""Allocations of a two-layer code: edge shares, worker shares, per-edge tolerances and message reductions.

This module is pure rational arithmetic — no partitions, no coefficients — so an optimiser can evaluate
thousands of allocations. Loads are fractions of the dataset; message lengths are fractions of one full
gradient vector.

Vocabulary (see ``docs/theory.md`` for the bounds these quantities meet):

``s_e``
    edges that may straggle; ``s_w[i]`` workers of edge ``i`` that may straggle (an int means the same
    for every edge).
``reduction_e = ℓ_e``
    the edge → master message has length ``1/ℓ_e`` of a gradient.
``reduction_w = ℓ_w``
    *relative to the edge's message*: a worker → edge message has length ``1/(ℓ_e ℓ_w)`` of a gradient,
    i.e. ``1/ℓ_w`` of what its edge forwards. With ``ℓ_e = ℓ_w = 1`` every message is one full vector.
edge share ``f_i``
    fraction of the ``K`` partitions edge ``i`` is responsible for: ``Σ_i f_i = s_e + ℓ_e``,
    ``0 <= f_i <= 1`` (``f_i = 0``: the edge takes no part). Every partition lies on exactly ``s_e + ℓ_e``
    distinct edges.
worker share ``g_ij``
    fraction of edge ``i``'s partitions that worker ``j`` holds: ``Σ_j g_ij = s_w[i] + ℓ_w``,
    ``0 <= g_ij <= 1``. Every partition of the edge lies on exactly ``s_w[i] + ℓ_w`` of its workers.
worker load
    ``f_i g_ij``. Edge ``i``'s workers together hold ``(s_w[i] + ℓ_w) f_i`` of the dataset.

Shares are exact :class:`fractions.Fraction` values. They can be given as Fractions, as floats that are
exactly representable and add up exactly, or as non-negative *integer weights* (``f_i ∝ w_i``). Float
shares from an optimiser are turned into exact ones by :func:`quantize_shares`, which rounds on the grid
of the ``K`` partitions and states how far each load moves.

The default edge shares are *balanced*: ``f_i ∝ m_i / (s_w[i] + ℓ_w)``, which gives every worker the
same load ``(s_e + ℓ_e) / Σ_i m_i/(s_w[i] + ℓ_w)`` — ``(s_e+1)(s_w+1)/Σm`` in the classical case. When
that would give an edge more than the whole dataset (``f_i > 1``) the default is refused with
:class:`~hgc.errors.UnreachableBoundError`; ``edge_shares="min_max"`` then gives the allocation with
the smallest possible maximum load (:func:`min_max_edge_shares`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import lcm
from numbers import Rational
from typing import Sequence, Union

import numpy as np

from hgc.errors import ConfigError, UnreachableBoundError

MAX_PARTITIONS = 100_000
"""Largest ``K`` an allocation may need; exact shares with larger denominators are refused."""

ShareSpec = Union[None, str, Sequence[object]]
"""``None`` (default shares), ``"balanced"``/``"min_max"`` (edges only), or one value per node."""

EDGE_SHARE_RULES = ("balanced", "min_max")


# ----------------------------------------------------------------------------------------------------
# Validation of the parts
# ----------------------------------------------------------------------------------------------------

def check_workers(workers: Sequence[int]) -> tuple[int, ...]:
    """Worker counts per edge as a tuple of ints ``>= 1`` (ConfigError key ``topology.workers``)."""
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


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_count(value: object, name: str, minimum: int = 0) -> int:
    """``value`` as an int ``>= minimum`` or ConfigError (key ``name``)."""
    if not _is_int(value) or int(value) < minimum:  # type: ignore[call-overload]
        raise ConfigError(f"must be an integer >= {minimum}, got {value!r}", name)
    return int(value)  # type: ignore[call-overload]


def per_edge_tolerances(workers: Sequence[int], s_w: int | Sequence[int]) -> tuple[int, ...]:
    """``s_w`` as one tolerance per edge: an int applies to every edge; a sequence needs one value per edge."""
    n = len(workers)
    if _is_int(s_w) or isinstance(s_w, bool):
        value = check_count(s_w, "s_w")
        return (value,) * n
    try:
        values = list(s_w)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError(f"must be an integer or one integer per edge, got {s_w!r}", "s_w") from None
    if len(values) != n:
        raise ConfigError(f"needs one tolerance per edge ({n}), got {len(values)}", "s_w")
    return tuple(check_count(v, f"s_w[{i}]") for i, v in enumerate(values))


def uniform(s_w: Sequence[int]) -> bool:
    return len(set(s_w)) <= 1


def _exact(value: object, key: str) -> Fraction:
    if isinstance(value, bool):
        raise ConfigError(f"must be a number, got {value!r}", key)
    if isinstance(value, (Fraction, int, np.integer)) or isinstance(value, Rational):
        return Fraction(int(value) if isinstance(value, np.integer) else value)
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            raise ConfigError(f"must be finite, got {value!r}", key)
        return Fraction(float(value))
    raise ConfigError(f"must be a number (Fraction, float or integer weight), got {value!r}", key)


def exact_shares(values: Sequence[object], total: int, key: str = "shares") -> tuple[Fraction, ...]:
    """Exact shares adding up to ``total``, each in ``[0, 1]``.

    All-integer ``values`` are weights (``share_i = total * w_i / Σw``); otherwise the values are the
    shares themselves and must add up to ``total`` exactly (floats only when exactly representable:
    use :func:`quantize_shares` for an optimiser's floats).
    """
    try:
        items = list(values)
    except TypeError:
        raise ConfigError(f"must be a list with one share per node, got {values!r}", key) from None
    if not items:
        raise ConfigError("needs at least one share", key)
    if all(_is_int(v) for v in items):
        weights = [int(v) for v in items]  # type: ignore[call-overload]
        if min(weights) < 0 or sum(weights) == 0:
            raise ConfigError(f"integer weights must be >= 0 with a positive sum, got {weights}", key)
        shares = tuple(Fraction(total * w, sum(weights)) for w in weights)
    else:
        shares = tuple(_exact(v, f"{key}[{i}]") for i, v in enumerate(items))
        if sum(shares) != total:
            raise ConfigError(f"must add up to exactly {total}, got {float(sum(shares))!r}; float shares from an "
                              "optimiser can be made exact with hgc.codes.quantize_shares", key)
    for i, f in enumerate(shares):
        if f < 0:
            raise ConfigError(f"must be >= 0, got {f}", f"{key}[{i}]")
        if f > 1:
            raise UnreachableBoundError(f"share {f} > 1: a node cannot hold more than the whole dataset, so "
                                        "some partition would sit twice on it", f"{key}[{i}]")
    return shares


# ----------------------------------------------------------------------------------------------------
# Share rules
# ----------------------------------------------------------------------------------------------------

def _edge_weights(workers: Sequence[int], s_w: Sequence[int], reduction_w: int) -> list[Fraction]:
    """``w_i = m_i / (s_w[i] + ℓ_w)``: with share ``f_i`` edge ``i``'s workers carry ``f_i / w_i`` each."""
    return [Fraction(m, t + reduction_w) for m, t in zip(workers, s_w)]


def balanced_edge_shares(workers: Sequence[int], s_e: int, s_w: Sequence[int], reduction_e: int = 1,
                         reduction_w: int = 1) -> tuple[Fraction, ...]:
    """``f_i = (s_e+ℓ_e) w_i / Σw`` with ``w_i = m_i/(s_w[i]+ℓ_w)``: every worker carries the same load.

    Not checked against ``f_i <= 1`` (see :func:`hgc_allocation`). With one ``s_w`` for all edges this is
    ``f_i = (s_e+ℓ_e) m_i / Σm``, the proportional split (docs/theory.md §2).
    """
    w = _edge_weights(workers, s_w, reduction_w)
    total = sum(w)
    return tuple((s_e + reduction_e) * wi / total for wi in w)


def min_max_edge_shares(workers: Sequence[int], s_e: int, s_w: Sequence[int], reduction_e: int = 1,
                        reduction_w: int = 1) -> tuple[Fraction, ...]:
    """Edge shares minimising the largest worker load (water filling, exact).

    The largest load of an allocation with equal worker shares inside each edge is ``max_i f_i / w_i``;
    the smallest achievable value ``L*`` solves ``Σ_i min(1, L* w_i) = s_e + ℓ_e`` and the shares are
    ``f_i = min(1, L* w_i)``. Equals :func:`balanced_edge_shares` whenever that has every ``f_i <= 1``.
    Requires ``s_e + ℓ_e <= n``.
    """
    target = s_e + reduction_e
    w = _edge_weights(workers, s_w, reduction_w)
    if target > len(w):
        raise UnreachableBoundError(f"s_e + reduction_e = {target} exceeds the {len(w)} edges: every partition "
                                    f"must lie on {target} distinct edges", "s_e")
    capped: set[int] = set()
    while True:
        free = [i for i in range(len(w)) if i not in capped]
        level = Fraction(target - len(capped)) / sum(w[i] for i in free)
        over = {i for i in free if level * w[i] > 1}
        if not over:
            return tuple(Fraction(1) if i in capped else level * w[i] for i in range(len(w)))
        capped |= over


def load_lower_bound(workers: Sequence[int], s_e: int, s_w: int | Sequence[int], reduction_e: int = 1,
                     reduction_w: int = 1) -> Fraction:
    """Smallest possible maximum worker load ``L*`` over all edge and worker shares (exact).

    ``Σ_i min(1, L* m_i/(s_w[i]+ℓ_w)) = s_e + ℓ_e``; ``(s_e+1)(s_w+1)/Σm`` in the classical case (Theorem 1
    of the source paper). Met by ``edge_shares="min_max"`` with equal worker shares (``docs/theory.md``).
    """
    workers = check_workers(workers)
    tol = per_edge_tolerances(workers, s_w)
    shares = min_max_edge_shares(workers, s_e, tol, reduction_e, reduction_w)
    return max(f * (t + reduction_w) / m for f, t, m in zip(shares, tol, workers))


def equal_worker_shares(m: int, s_w: int, reduction_w: int = 1) -> tuple[Fraction, ...]:
    """Every worker of an edge with ``m`` workers holds ``(s_w+ℓ_w)/m`` of the edge's partitions."""
    return (Fraction(s_w + reduction_w, m),) * m


# ----------------------------------------------------------------------------------------------------
# Load profiles: the bound for unequal loads (Theorem C of docs/theory.md)
# ----------------------------------------------------------------------------------------------------

def waterfill_exact(weights: Sequence[int | Fraction], total: int) -> tuple[Fraction, tuple[Fraction, ...]]:
    """Shares ``min(1, w_j / θ)`` adding up to ``total`` and the *level* ``θ`` (exact, rational weights).

    Weights are non-negative integers or Fractions; a zero weight gets share 0. Needs at least ``total``
    positive weights. When exactly ``total`` are positive every one of them is capped at 1 and ``θ`` is
    the smallest positive weight (the largest level with that outcome).
    """
    w = [Fraction(x) for x in weights]
    if any(x < 0 for x in w):
        raise ConfigError(f"weights must be >= 0, got {[str(x) for x in w]}", "weights")
    positive = [j for j, x in enumerate(w) if x > 0]
    if len(positive) < total:
        raise UnreachableBoundError(f"{len(positive)} positive weights cannot carry {total} copies of the data "
                                    "(a node holds each partition at most once)", "weights")
    if len(positive) == total:
        return min(w[j] for j in positive), tuple(Fraction(1) if x > 0 else Fraction(0) for x in w)
    capped: set[int] = set()
    while True:
        free = [j for j in positive if j not in capped]
        level = sum((w[j] for j in free), Fraction(0)) / (total - len(capped))    # Σ_free w/θ = total - |capped|
        over = {j for j in free if w[j] > level}
        if not over:
            return level, tuple(Fraction(1) if j in capped else (w[j] / level if w[j] > 0 else Fraction(0))
                                for j in range(len(w)))
        capped |= over


def edge_capacity(weights: Sequence[int | Fraction], s_w: int, reduction_w: int = 1) -> Fraction:
    """``c_i``: the largest share an edge can cover per unit of the load scale ``λ`` when worker ``j`` may
    hold at most ``λ w_j``: the level ``θ`` with ``Σ_j min(w_j, θ) = (s_w + ℓ_w) θ`` (0 when fewer than
    ``s_w + ℓ_w`` workers have a positive weight). ``m / (s_w + ℓ_w)`` for equal weights 1."""
    try:
        level, _ = waterfill_exact(weights, s_w + reduction_w)
    except UnreachableBoundError:
        return Fraction(0)
    return level


def profile_allocation(workers: Sequence[int], s_e: int, s_w: int | Sequence[int],
                       weights: Sequence[Sequence[int | Fraction]], reduction_e: int = 1,
                       reduction_w: int = 1) -> tuple[Fraction, "Allocation"]:
    """The smallest load scale ``λ*`` for a *load profile* and an allocation that reaches it (exact).

    ``weights[i][j] >= 0`` (integers or Fractions) is the relative load worker ``j`` of edge ``i`` should
    carry: any code tolerating ``s_e`` edges and ``s_w[i]`` workers of edge ``i`` (full-length messages)
    has ``max_ij load_ij / w_ij >= λ*`` (Theorem C), where ``Σ_i min(1, λ* c_i) = s_e + 1`` and ``c_i`` is
    :func:`edge_capacity`. The returned allocation has ``f_i = min(1, λ* c_i)``, ``g_ij = min(1, w_ij/c_i)``
    and loads ``min(λ* w_ij, f_i) <= λ* w_ij``, with equality for some worker: the bound is met. Equal
    weights give :func:`load_lower_bound` (Theorem 1 when no edge is capped). With reductions the same
    construction uses ``s + ℓ`` in place of ``s + 1`` (no optimality claim there).
    """
    workers = check_workers(workers)
    tol = per_edge_tolerances(workers, s_w)
    if len(weights) != len(workers):
        raise ConfigError(f"needs one weight list per edge ({len(workers)}), got {len(weights)}", "weights")
    capacity = []
    for i, (m, row) in enumerate(zip(workers, weights)):
        if len(row) != m:
            raise ConfigError(f"needs one weight per worker ({m}), got {len(row)}", f"weights[{i}]")
        capacity.append(edge_capacity(row, tol[i], reduction_w))
    target = s_e + reduction_e
    if sum(1 for c in capacity if c > 0) < target:
        raise UnreachableBoundError(f"fewer than s_e + reduction_e = {target} edges can hold data with these "
                                    "weights and tolerances", "s_e")
    level, edge_shares = waterfill_exact(capacity, target)
    scale = 1 / level
    inner = []
    for m, t, row, f in zip(workers, tol, weights, edge_shares):
        inner.append(waterfill_exact(row, t + reduction_w)[1] if f > 0 else (Fraction(0),) * m)
    alloc = hgc_allocation(workers, s_e, tol, edge_shares=edge_shares, worker_shares=inner,
                           reduction_e=reduction_e, reduction_w=reduction_w)
    return scale, alloc


def profile_load_bound(workers: Sequence[int], s_e: int, s_w: int | Sequence[int],
                       weights: Sequence[Sequence[int | Fraction]]) -> Fraction:
    """``λ*`` of :func:`profile_allocation`: no code (full-length messages) gives every worker a load of
    at most ``λ w_ij`` with ``λ < λ*``."""
    return profile_allocation(workers, s_e, s_w, weights)[0]


# ----------------------------------------------------------------------------------------------------
# The allocation
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Allocation:
    """A validated allocation of a two-layer code (see the module docstring for the quantities).

    ``worker_shares[i]`` has one share per worker of edge ``i`` (all zero for an edge with ``f_i = 0``).
    """

    workers: tuple[int, ...]
    s_e: int
    s_w: tuple[int, ...]
    edge_shares: tuple[Fraction, ...]
    worker_shares: tuple[tuple[Fraction, ...], ...]
    reduction_e: int = 1
    reduction_w: int = 1

    @property
    def n_edges(self) -> int:
        return len(self.workers)

    @property
    def n_workers(self) -> int:
        return sum(self.workers)

    @property
    def active_edges(self) -> tuple[int, ...]:
        """Edges with a positive share, in order."""
        return tuple(i for i, f in enumerate(self.edge_shares) if f > 0)

    def active_workers(self, edge: int) -> tuple[int, ...]:
        """Local indices of the workers of ``edge`` with a positive load."""
        if self.edge_shares[edge] == 0:
            return ()
        return tuple(j for j, g in enumerate(self.worker_shares[edge]) if g > 0)

    @property
    def worker_loads(self) -> tuple[Fraction, ...]:
        """``f_i g_ij`` for every worker, numbered edge by edge (exact)."""
        out: list[Fraction] = []
        for f, shares in zip(self.edge_shares, self.worker_shares):
            previous, load = None, Fraction(0)
            for g in shares:
                if g is not previous:                   # equal shares are usually one object: multiply once
                    previous, load = g, f * g
                out.append(load)
        return tuple(out)

    @property
    def edge_loads(self) -> tuple[Fraction, ...]:
        """Total load of each edge's workers: ``(s_w[i] + ℓ_w) f_i``."""
        return tuple((t + self.reduction_w) * f for t, f in zip(self.s_w, self.edge_shares))

    @property
    def max_load(self) -> Fraction:
        """The largest worker load ``max_i f_i max_j g_ij`` (exact)."""
        return max(f * _largest(shares) for f, shares in zip(self.edge_shares, self.worker_shares))

    @property
    def n_chunks(self) -> int:
        """Number of pieces ``L = ℓ_e ℓ_w`` each partial gradient is cut into."""
        return self.reduction_e * self.reduction_w

    @property
    def worker_message_length(self) -> Fraction:
        """Length of a worker → edge message as a fraction of a gradient: ``1/(ℓ_e ℓ_w)``."""
        return Fraction(1, self.n_chunks)

    @property
    def edge_message_length(self) -> Fraction:
        """Length of an edge → master message as a fraction of a gradient: ``1/ℓ_e``."""
        return Fraction(1, self.reduction_e)

    @property
    def granularity(self) -> int:
        """Smallest ``K`` making every arc integral: the lcm of the denominators of all ``f_i`` and
        ``f_i g_ij``. Every valid ``K`` is a multiple of it."""
        dens = [f.denominator for f in self.edge_shares] + [x.denominator for x in self.worker_loads]
        return lcm(*dens)


def _largest(shares: tuple[Fraction, ...]) -> Fraction:
    first = shares[0]
    return first if all(g is first for g in shares) else max(shares)


def _edge_shares(workers: tuple[int, ...], s_e: int, s_w: tuple[int, ...], spec: ShareSpec, reduction_e: int,
                 reduction_w: int) -> tuple[Fraction, ...]:
    n, target = len(workers), s_e + reduction_e
    if target > n:
        if reduction_e == 1:
            raise UnreachableBoundError(f"s_e={s_e} tolerates every one of the {n} edges straggling; "
                                        f"must be < {n}", "s_e")
        raise UnreachableBoundError(f"s_e + reduction_e = {target} exceeds the {n} edges: every partition must "
                                    f"lie on {target} distinct edges", "s_e")
    if spec == "min_max":
        return min_max_edge_shares(workers, s_e, s_w, reduction_e, reduction_w)
    if spec is None or spec == "balanced":
        shares = balanced_edge_shares(workers, s_e, s_w, reduction_e, reduction_w)
        big = max(range(n), key=lambda i: (shares[i], -i))
        if shares[big] > 1:
            if uniform(s_w) and reduction_e == 1:
                total = sum(workers)
                big = int(np.argmax(workers))
                raise UnreachableBoundError(
                    f"load bound unreachable: edge {big} has m_{big}={workers[big]} workers and "
                    f"(s_e+1)*m_{big} = {(s_e + 1) * workers[big]} > sum(m) = {total}, so some partition would "
                    f"sit twice on that edge; use s_e <= {total // workers[big] - 1}", "s_e")
            raise UnreachableBoundError(
                f"balanced shares unreachable: edge {big} would get share {shares[big]} > 1 of the data, so some "
                "partition would sit twice on that edge; lower s_e or use edge_shares='min_max'", "s_e")
        return shares
    if isinstance(spec, str):
        raise ConfigError(f"must be one of {', '.join(EDGE_SHARE_RULES)} or one share per edge, got {spec!r}",
                          "edge_shares")
    shares = exact_shares(spec, target, "edge_shares")
    if len(shares) != n:
        raise ConfigError(f"needs one share per edge ({n}), got {len(shares)}", "edge_shares")
    return shares


def hgc_allocation(workers: Sequence[int], s_e: int, s_w: int | Sequence[int], *, edge_shares: ShareSpec = None,
                   worker_shares: Sequence[Sequence[object] | None] | None = None, reduction_e: int = 1,
                   reduction_w: int = 1) -> Allocation:
    """Validate and complete an allocation (exact shares, one tolerance per edge).

    ``edge_shares``: ``None``/``"balanced"`` (equal worker loads), ``"min_max"`` or one share per edge;
    ``worker_shares``: ``None`` (equal inside every edge) or, per edge, ``None`` or one share per worker.

    Raises :class:`~hgc.errors.UnreachableBoundError` when no code can meet the tolerances with these
    shares (``s_e + ℓ_e > n``; an active edge with ``s_w[i] + ℓ_w > m_i``; a share above 1) and
    :class:`~hgc.errors.ConfigError` for malformed input. The checks and messages of the classical case
    are those of docs/theory.md §2.
    """
    workers = check_workers(workers)
    n = len(workers)
    s_e = check_count(s_e, "s_e")
    tol = per_edge_tolerances(workers, s_w)
    reduction_e = check_count(reduction_e, "reduction_e", 1)
    reduction_w = check_count(reduction_w, "reduction_w", 1)
    if s_e + reduction_e > n:
        _edge_shares(workers, s_e, tol, None, reduction_e, reduction_w)  # raises with the right message
    if edge_shares is None and worker_shares is None:
        small = min(range(n), key=lambda i: (workers[i] - tol[i], i))
        if tol[small] + reduction_w > workers[small]:
            _raise_inner(workers, tol, small, reduction_w)
    shares = _edge_shares(workers, s_e, tol, edge_shares, reduction_e, reduction_w)
    if worker_shares is not None and len(worker_shares) != n:
        raise ConfigError(f"needs one entry per edge ({n}), got {len(worker_shares)}", "worker_shares")
    inner = []
    for i, (m, t, f) in enumerate(zip(workers, tol, shares)):
        spec = None if worker_shares is None else worker_shares[i]
        if f == 0:
            inner.append((Fraction(0),) * m)
            continue
        if t + reduction_w > m:
            _raise_inner(workers, tol, i, reduction_w)
        if spec is None:
            inner.append(equal_worker_shares(m, t, reduction_w))
        else:
            g = exact_shares(spec, t + reduction_w, f"worker_shares[{i}]")
            if len(g) != m:
                raise ConfigError(f"needs one share per worker ({m}), got {len(g)}", f"worker_shares[{i}]")
            inner.append(g)
    return Allocation(workers, s_e, tol, shares, tuple(inner), reduction_e, reduction_w)


def _raise_inner(workers: tuple[int, ...], tol: tuple[int, ...], i: int, reduction_w: int) -> None:
    if reduction_w == 1 and uniform(tol):
        raise UnreachableBoundError(f"s_w={tol[i]} must be < m_i for every edge; edge {i} has only "
                                    f"{workers[i]} workers", "s_w")
    raise UnreachableBoundError(f"edge {i} has {workers[i]} workers but s_w[{i}] + reduction_w = "
                                f"{tol[i] + reduction_w}: each of its partitions must lie on that many distinct "
                                "workers", "s_w")


def hgc_worker_loads(workers: Sequence[int], s_e: int, s_w: int | Sequence[int], **shares: object) -> np.ndarray:
    """Per-worker loads ``(N,)`` (fraction of the dataset, float) of an allocation; keywords as for
    :func:`hgc_allocation`. Cheap: no placement, no coefficients."""
    alloc = hgc_allocation(workers, s_e, s_w, **shares)  # type: ignore[arg-type]
    return np.array([float(x) for x in alloc.worker_loads])


def check_granularity(granularity: int, what: str = "shares") -> int:
    """Refuse allocations needing more than :data:`MAX_PARTITIONS` partitions."""
    if granularity > MAX_PARTITIONS:
        raise ConfigError(f"these exact shares need K = {granularity} partitions (more than {MAX_PARTITIONS}); "
                          "round them on a coarser grid with hgc.codes.quantize_shares", what)
    return granularity


# ----------------------------------------------------------------------------------------------------
# From an optimiser's floats to exact shares
# ----------------------------------------------------------------------------------------------------

def _round_to_total(values: np.ndarray, total: int) -> np.ndarray:
    """Integers within 1 of ``values`` (each floor or ceil) adding up to ``total`` (largest remainders)."""
    base = np.floor(values).astype(np.int64)
    missing = int(total - base.sum())
    if missing:
        order = np.argsort(-(values - base), kind="stable")
        base[order[:missing]] += 1
    return base


def _float_shares(values: Sequence[float], total: int, key: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all():
        raise ConfigError(f"must be a non-empty list of finite numbers, got {values!r}", key)
    slack = 1e-9 * max(1, total)
    if (arr < -slack).any() or (arr > 1 + slack).any():
        raise ConfigError(f"every share must lie in [0, 1], got {arr.tolist()}", key)
    if abs(arr.sum() - total) > slack:
        raise ConfigError(f"must add up to {total}, got {arr.sum()!r}", key)
    arr = np.clip(arr, 0.0, 1.0)
    return arr * (total / arr.sum())


def quantize_shares(workers: Sequence[int], s_e: int, s_w: int | Sequence[int], edge_shares: Sequence[float],
                    worker_shares: Sequence[Sequence[float] | None] | None = None, *, partitions: int,
                    reduction_e: int = 1, reduction_w: int = 1
                    ) -> tuple[tuple[Fraction, ...], tuple[tuple[Fraction, ...], ...]]:
    """Exact shares on the grid of ``partitions`` = ``K`` from approximate (float) ones.

    Edge ``i`` gets an arc of ``a_i`` partitions, ``a_i`` the floor or ceiling of ``f_i K`` with
    ``Σ a_i = (s_e+ℓ_e) K`` (largest remainders); inside it worker ``j`` gets ``b_ij``, the floor or
    ceiling of ``g_ij a_i`` with ``Σ_j b_ij = (s_w[i]+ℓ_w) a_i``. The result ``f_i = a_i/K``,
    ``g_ij = b_ij/a_i`` meets every constraint exactly, is valid for this ``K`` (the smallest valid ``K``
    may divide it), and moves each edge share by less than ``1/K`` and each worker load ``f_i g_ij`` by
    less than ``2/K``. Input floats may be off by rounding (``1e-9``); they are rescaled to add up exactly.
    Returns ``(edge_shares, worker_shares)`` for :func:`hgc_allocation`.
    """
    workers = check_workers(workers)
    tol = per_edge_tolerances(workers, s_w)
    K = check_count(partitions, "data.partitions", 1)
    check_granularity(K, "data.partitions")
    f = _float_shares(edge_shares, s_e + reduction_e, "edge_shares")
    if f.size != len(workers):
        raise ConfigError(f"needs one share per edge ({len(workers)}), got {f.size}", "edge_shares")
    arcs = _round_to_total(f * K, (s_e + reduction_e) * K)
    edges_out = tuple(Fraction(int(a), K) for a in arcs)
    inner_out = []
    for i, (m, t, a) in enumerate(zip(workers, tol, arcs)):
        spec = None if worker_shares is None else worker_shares[i]
        g = (np.full(m, (t + reduction_w) / m) if spec is None
             else _float_shares(spec, t + reduction_w, f"worker_shares[{i}]"))
        if g.size != m:
            raise ConfigError(f"needs one share per worker ({m}), got {g.size}", f"worker_shares[{i}]")
        if a == 0:
            inner_out.append((Fraction(0),) * m)
            continue
        b = _round_to_total(g * int(a), (t + reduction_w) * int(a))
        inner_out.append(tuple(Fraction(int(x), int(a)) for x in b))
    return edges_out, tuple(inner_out)
