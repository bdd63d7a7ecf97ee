"""Allocations: shares, per-edge tolerances, the generalised load bound, exact K, rounding float shares."""

from fractions import Fraction
from itertools import product
from math import gcd, lcm

import numpy as np
import pytest

from hgc.codes import (MAX_PARTITIONS, build_code, hgc_allocation, hgc_worker_loads, hierarchical_placement,
                       load_lower_bound, message_lengths, min_max_edge_shares, quantize_shares,
                       smallest_partitions, worker_load, worker_loads)
from hgc.codes.allocation import balanced_edge_shares, exact_shares
from hgc.errors import ConfigError, UnreachableBoundError
from hgc.verify import check_code, pattern_count

TOPOLOGIES = [(5, 5, 3, 6), (4, 4, 4, 4), (1, 2, 3), (7,), (2, 9, 4, 4, 1), (3, 3), (6, 2, 5)]


def random_allocation(rng: np.random.Generator, workers, s_e, s_w, reduction_e=1, reduction_w=1, grid=6):
    """Exact random shares: integer weights on a small grid, capped at 1 by construction."""
    n = len(workers)
    while True:                              # edge arcs on a grid of `grid` units: Σ = (s_e+ℓ_e) grid, each <= grid
        arcs = rng.multinomial((s_e + reduction_e) * grid, np.ones(n) / n)
        if arcs.max() <= grid:
            break
    edge = [Fraction(int(a), grid) for a in arcs]
    inner = []
    for m, t, a in zip(workers, s_w, arcs):
        if a == 0 or t + reduction_w > m:
            inner.append(None)
            continue
        while True:
            b = rng.multinomial((t + reduction_w) * 4, np.ones(m) / m)
            if b.max() <= 4:
                break
        inner.append([Fraction(int(x), 4) for x in b])
    return edge, inner


def edge_copies(placed):
    """Per partition: distinct active edges holding it, and per edge the number of its workers holding it."""
    M = placed.membership()
    offsets = np.cumsum((0,) + placed.workers)
    per_edge = np.array([M[offsets[i]:offsets[i + 1]].sum(axis=0) for i in range(len(placed.workers))])
    return per_edge


# ----------------------------------------------------------------------------------------------------
# The classical case is unchanged

def old_smallest_hgc_partitions(workers, s_e, s_w):
    """The K rule of the previous implementation: proportional edge arcs, equal inner groups."""
    total = sum(workers)
    g_edge = total // gcd(total, (s_e + 1) * gcd(*workers))
    q = [g_edge * (s_e + 1) * m // total for m in workers]
    t = 1
    for qi, m in zip(q, workers):
        gi = m // gcd(m, s_w + 1)
        t = lcm(t, gi // gcd(gi, qi))
    return t * g_edge


@pytest.mark.parametrize("workers", TOPOLOGIES)
def test_default_allocation_is_the_classical_one(workers):
    total = sum(workers)
    from hgc.codes import admissible_hgc

    for s_e, s_w in admissible_hgc(workers):
        alloc = hgc_allocation(workers, s_e, s_w)
        assert alloc.edge_shares == tuple(Fraction((s_e + 1) * m, total) for m in workers)
        assert set(alloc.worker_loads) == {Fraction((s_e + 1) * (s_w + 1), total)}
        assert alloc.granularity == old_smallest_hgc_partitions(workers, s_e, s_w) == \
            smallest_partitions("hgc", workers, s_e=s_e, s_w=s_w)
        assert load_lower_bound(workers, s_e, s_w) == Fraction((s_e + 1) * (s_w + 1), total)
        assert (alloc.worker_message_length, alloc.edge_message_length) == (1, 1)


def test_explicit_default_options_give_byte_identical_codes():
    workers = (5, 5, 3, 6)
    base = build_code("hgc", workers, s_e=1, s_w=2, rng=np.random.default_rng(4))
    alloc = hgc_allocation(workers, 1, 2)
    explicit = build_code("hgc", workers, s_e=1, s_w=[2, 2, 2, 2], rng=np.random.default_rng(4), reduction_e=1,
                          reduction_w=1, edge_shares=list(alloc.edge_shares),
                          worker_shares=[list(g) for g in alloc.worker_shares])
    assert explicit.encoding.tobytes() == base.encoding.tobytes()
    assert explicit.construction == base.construction and explicit.n_partitions == base.n_partitions
    weights = [[5, 5, 3, 6], None]
    assert hgc_allocation(workers, 1, 2, edge_shares=weights[0]).edge_shares == alloc.edge_shares
    flat = build_code("flat_gc", workers, s=4, rng=np.random.default_rng(1))
    assert build_code("flat_gc", workers, s=4, reduction=1, rng=np.random.default_rng(1)).encoding.tobytes() == \
        flat.encoding.tobytes()


# ----------------------------------------------------------------------------------------------------
# Random exact allocations: placements and loads

@pytest.mark.parametrize("seed", range(12))
def test_share_placements_cover_every_partition_exactly(seed):
    rng = np.random.default_rng(seed)
    workers = tuple(int(m) for m in rng.integers(1, 7, size=rng.integers(2, 6)))
    n = len(workers)
    reduction_e, reduction_w = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    s_e = int(rng.integers(0, n - reduction_e + 1))
    s_w = [int(rng.integers(0, max(1, m - reduction_w + 1))) for m in workers]
    edge, inner = random_allocation(rng, workers, s_e, s_w, reduction_e, reduction_w)
    try:
        placed = hierarchical_placement(workers, s_e, s_w, edge_shares=edge, worker_shares=inner,
                                        reduction_e=reduction_e, reduction_w=reduction_w)
    except UnreachableBoundError:
        assert any(f > 0 and t + reduction_w > m for f, t, m in zip(edge, s_w, workers))
        return
    alloc = placed.allocation
    K = placed.n_partitions
    assert K == alloc.granularity
    per_edge = edge_copies(placed)                               # (n, K) copies of each partition per edge
    holders = (per_edge > 0).sum(axis=0)
    assert (holders == s_e + reduction_e).all()                  # every partition on s_e+ℓ_e distinct edges
    for i in range(n):
        held = per_edge[i] > 0
        assert held.sum() == alloc.edge_shares[i] * K
        assert (per_edge[i][held] == s_w[i] + reduction_w).all()     # ... with s_w[i]+ℓ_w copies in each
    loads = np.array(placed.worker_loads())
    expected = [f * g for f, gs in zip(alloc.edge_shares, alloc.worker_shares) for g in gs]
    assert list(loads) == expected
    assert (placed.membership().sum(axis=1) == np.array([x * K for x in expected])).all()
    for i in range(n):                                           # edge total = (s_w[i] + ℓ_w) f_i
        offsets = np.cumsum((0,) + workers)
        assert sum(expected[offsets[i]:offsets[i + 1]]) == (s_w[i] + reduction_w) * alloc.edge_shares[i]
    np.testing.assert_array_equal(hgc_worker_loads(workers, s_e, s_w, edge_shares=edge, worker_shares=inner,
                                                   reduction_e=reduction_e, reduction_w=reduction_w),
                                  [float(x) for x in expected])
    for k in (2 * K, 3 * K):
        assert hierarchical_placement(workers, s_e, s_w, k, edge_shares=edge, worker_shares=inner,
                                      reduction_e=reduction_e, reduction_w=reduction_w).n_partitions == k
    with pytest.raises(ConfigError, match=f"multiple of {K}"):
        hierarchical_placement(workers, s_e, s_w, K + 1, edge_shares=edge, worker_shares=inner,
                               reduction_e=reduction_e, reduction_w=reduction_w)


def test_smallest_K_is_the_smallest_integral_one():
    workers, s_e, s_w = (3, 4, 5), 1, [0, 1, 2]
    edge = [Fraction(1, 3), Fraction(5, 6), Fraction(5, 6)]
    inner = [None, [Fraction(1, 2), Fraction(1, 2), Fraction(1, 2), Fraction(1, 2)], None]
    alloc = hgc_allocation(workers, s_e, s_w, edge_shares=edge, worker_shares=inner)
    fractions = list(alloc.edge_shares) + list(alloc.worker_loads)
    brute = next(K for K in range(1, 10_000) if all((x * K).denominator == 1 for x in fractions))
    assert alloc.granularity == brute == hierarchical_placement(workers, s_e, s_w, edge_shares=edge,
                                                                worker_shares=inner).n_partitions


# ----------------------------------------------------------------------------------------------------
# The generalised lower bound (Theorem A of docs/theory.md) and the balanced split

@pytest.mark.parametrize("workers,s_e,s_w", [((5, 5, 3, 6), 1, [1, 2, 0, 3]), ((2, 2, 9), 1, 0),
                                             ((4, 6, 8), 1, [3, 1, 2]), ((1, 8, 8, 3), 2, [0, 4, 1, 1])])
def test_min_max_shares_reach_the_lower_bound_and_no_split_beats_it(workers, s_e, s_w):
    bound = load_lower_bound(workers, s_e, s_w)
    tol = [s_w] * len(workers) if isinstance(s_w, int) else s_w
    shares = min_max_edge_shares(workers, s_e, tol)
    assert sum(shares) == s_e + 1 and all(0 <= f <= 1 for f in shares)
    alloc = hgc_allocation(workers, s_e, s_w, edge_shares="min_max")
    assert alloc.max_load == bound
    # water-filling identity: Σ min(1, L* m_i / (s_w[i]+1)) = s_e + 1
    assert sum(min(Fraction(1), bound * m / (t + 1)) for m, t in zip(workers, tol)) == s_e + 1
    # no allocation does better: random exact edge shares (equal worker shares inside edges)
    rng = np.random.default_rng(0)
    for _ in range(300):
        edge, _ = random_allocation(rng, workers, s_e, tol, grid=12)
        try:
            other = hgc_allocation(workers, s_e, s_w, edge_shares=edge)
        except UnreachableBoundError:
            continue
        assert other.max_load >= bound
    # ... nor with unequal worker shares inside the edges
    for _ in range(300):
        edge, inner = random_allocation(rng, workers, s_e, tol, grid=12)
        try:
            other = hgc_allocation(workers, s_e, s_w, edge_shares=edge, worker_shares=inner)
        except UnreachableBoundError:
            continue
        assert other.max_load >= bound
        for i, f in enumerate(other.edge_shares):                # construction meets the per-edge bound
            assert other.edge_loads[i] == (tol[i] + 1) * f


def test_balanced_split_equals_min_max_when_no_edge_is_capped():
    workers, s_e, s_w = (5, 5, 3, 6), 1, [1, 2, 0, 3]
    balanced = balanced_edge_shares(workers, s_e, s_w)
    assert max(balanced) <= 1
    assert balanced == min_max_edge_shares(workers, s_e, s_w)
    alloc = hgc_allocation(workers, s_e, s_w)
    assert len(set(alloc.worker_loads)) == 1                    # every worker carries the same load
    w = sum(Fraction(m, t + 1) for m, t in zip(workers, s_w))
    assert alloc.max_load == Fraction(s_e + 1) / w == load_lower_bound(workers, s_e, s_w)


def test_capped_edges_when_the_default_is_unreachable():
    with pytest.raises(UnreachableBoundError, match="s_e <= 0"):
        hgc_allocation((2, 2, 9), 1, 0)
    alloc = hgc_allocation((2, 2, 9), 1, 0, edge_shares="min_max")
    assert alloc.edge_shares == (Fraction(1, 2), Fraction(1, 2), Fraction(1))
    assert alloc.max_load == Fraction(1, 4) == load_lower_bound((2, 2, 9), 1, 0)
    code = build_code("hgc", (2, 2, 9), s_e=1, s_w=0, edge_shares="min_max")
    check = check_code(code, max_patterns=10_000)
    assert check.exhaustive and check.failures == 0 and check.max_rel_error < 1e-12
    assert code.load == 0.25 and worker_load("hgc", (2, 2, 9), s_e=1, s_w=0, edge_shares="min_max") == 0.25


# ----------------------------------------------------------------------------------------------------
# Validation

def test_exact_shares_forms_and_refusals():
    assert exact_shares([1, 1, 2], 2) == (Fraction(1, 2), Fraction(1, 2), Fraction(1))     # integer weights
    assert exact_shares([Fraction(2, 3), 0.5, Fraction(5, 6)], 2) == (Fraction(2, 3), Fraction(1, 2), Fraction(5, 6))
    assert exact_shares([0.5, 0.25, 0.25], 1) == (Fraction(1, 2), Fraction(1, 4), Fraction(1, 4))
    with pytest.raises(ConfigError, match="quantize_shares"):
        exact_shares([0.1, 0.2, 0.7000000001], 1)
    with pytest.raises(UnreachableBoundError, match="> 1"):
        exact_shares([Fraction(3, 2), Fraction(1, 2)], 2)
    with pytest.raises(ConfigError, match=">= 0"):
        exact_shares([Fraction(-1, 2), Fraction(3, 2), Fraction(1)], 2)
    with pytest.raises(ConfigError, match="integer weights"):
        exact_shares([0, 0], 1)
    with pytest.raises(ConfigError, match="must be a number"):
        exact_shares([True, 1], 1)


def test_allocation_refusals_name_the_problem():
    with pytest.raises(ConfigError) as err:
        hgc_allocation((3, 3, 3), 1, [1, 1])
    assert err.value.key == "s_w" and "one tolerance per edge" in err.value.message
    with pytest.raises(ConfigError) as err:
        hgc_allocation((3, 3, 3), 1, [1, -1, 0])
    assert err.value.key == "s_w[1]"
    with pytest.raises(UnreachableBoundError, match="edge 1 has 3 workers but s_w\\[1\\] \\+ reduction_w = 4"):
        hgc_allocation((3, 3, 3), 1, [0, 2, 0], reduction_w=2)
    with pytest.raises(UnreachableBoundError, match="edge 1 has only 2 workers"):
        hgc_allocation((3, 2, 3), 0, 2)
    with pytest.raises(UnreachableBoundError, match="exceeds the 3 edges"):
        hgc_allocation((3, 3, 3), 2, 0, reduction_e=2)
    with pytest.raises(ConfigError, match="needs one share per edge"):
        hgc_allocation((3, 3, 3), 1, 0, edge_shares=[1, 1])
    with pytest.raises(ConfigError, match="must add up to exactly 2"):
        hgc_allocation((3, 3, 3), 1, 0, edge_shares=[Fraction(1, 2), Fraction(1, 2), Fraction(1, 2)])
    with pytest.raises(UnreachableBoundError, match="share 4/3 > 1"):
        hgc_allocation((3, 3, 3), 1, 0, edge_shares=[Fraction(4, 3), Fraction(1, 3), Fraction(1, 3)])
    with pytest.raises(ConfigError, match="one share per worker"):
        hgc_allocation((3, 3, 3), 1, 0, worker_shares=[[1, 1], None, None])
    with pytest.raises(ConfigError) as err:
        hgc_allocation((3, 3, 3), 1, 0, worker_shares=[[Fraction(1, 2)] * 3, None, None])
    assert err.value.key == "worker_shares[0]"
    with pytest.raises(ConfigError, match="one of balanced, min_max"):
        hgc_allocation((3, 3, 3), 1, 0, edge_shares="speed")
    with pytest.raises(ConfigError, match=">= 1"):
        hgc_allocation((3, 3, 3), 1, 0, reduction_e=0)


def test_absurd_K_is_refused_with_a_way_out():
    primes = [Fraction(1, 1009), Fraction(1, 1013)]
    edge = [primes[0], primes[1], 2 - primes[0] - primes[1]]
    with pytest.raises(UnreachableBoundError):
        hgc_allocation((4, 4, 4), 1, 0, edge_shares=edge)          # the last share is > 1
    edge = [Fraction(1) - primes[0], Fraction(1) - primes[1], primes[0] + primes[1]]
    with pytest.raises(ConfigError, match="quantize_shares") as err:
        hierarchical_placement((4, 4, 4), 1, 1, edge_shares=edge)
    assert str(MAX_PARTITIONS) in err.value.message


# ----------------------------------------------------------------------------------------------------
# Rounding float shares

def capped_scaling(x: np.ndarray, total: int) -> np.ndarray:
    """Float shares proportional to ``x``, capped at 1, adding up to ``total`` (water filling)."""
    capped = np.zeros(x.size, dtype=bool)
    while True:
        y = np.where(capped, 1.0, x * (total - capped.sum()) / x[~capped].sum())
        if (y <= 1).all():
            return y
        capped |= y > 1


@pytest.mark.parametrize("seed", range(10))
def test_quantized_shares_are_exact_valid_and_close(seed):
    rng = np.random.default_rng(seed)
    workers = tuple(int(m) for m in rng.integers(2, 8, size=rng.integers(2, 6)))
    n = len(workers)
    s_e = int(rng.integers(0, n))
    s_w = [int(rng.integers(0, m)) for m in workers]
    target = s_e + 1
    f = capped_scaling(rng.random(n) + 0.05, target)
    g = [list(capped_scaling(rng.random(m) + 0.05, t + 1)) for m, t in zip(workers, s_w)]
    K = int(rng.integers(20, 200))
    edge, inner = quantize_shares(workers, s_e, s_w, list(f), g, partitions=K)
    alloc = hgc_allocation(workers, s_e, s_w, edge_shares=edge, worker_shares=inner)
    assert sum(alloc.edge_shares) == target and all(0 <= x <= 1 for x in alloc.edge_shares)
    assert np.abs(np.array([float(x) for x in alloc.edge_shares]) - f).max() < 1 / K
    exact = np.array([fi * gij for fi, gi in zip(f, g) for gij in gi])
    loads = np.array([float(x) for x in alloc.worker_loads])
    assert np.abs(loads - exact).max() < 2 / K
    assert K % alloc.granularity == 0
    placed = hierarchical_placement(workers, s_e, s_w, K, edge_shares=edge, worker_shares=inner)
    assert placed.n_partitions == K


def test_quantize_refuses_inconsistent_floats():
    with pytest.raises(ConfigError, match="add up to 2"):
        quantize_shares((3, 3, 3), 1, 0, [0.5, 0.5, 0.5], partitions=10)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        quantize_shares((3, 3, 3), 1, 0, [1.5, 0.25, 0.25], partitions=10)
    edge, _ = quantize_shares((3, 3, 3), 1, 0, [2 / 3 + 1e-12, 2 / 3, 2 / 3 - 1e-12], partitions=3)
    assert edge == (Fraction(2, 3),) * 3


# ----------------------------------------------------------------------------------------------------
# Codes on unbalanced allocations decode every admissible pattern

def brute_force_count(workers, s_e, s_w):
    from itertools import combinations
    from math import comb, prod

    n = len(workers)
    return sum(prod(comb(workers[i], s_w[i]) for i in range(n) if i not in down)
               for down in combinations(range(n), s_e))


@pytest.mark.parametrize("seed", range(10))
def test_unbalanced_codes_decode_every_admissible_pattern(seed):
    rng = np.random.default_rng(100 + seed)
    workers = tuple(int(m) for m in rng.integers(1, 6, size=rng.integers(2, 5)))
    n = len(workers)
    s_e = int(rng.integers(0, n))
    s_w = [int(rng.integers(0, m)) for m in workers]
    edge, inner = random_allocation(rng, workers, s_e, s_w)
    construction = ["auto", "polynomial", "gaussian", "polynomial_equispaced"][seed % 4]
    try:
        code = build_code("hgc", workers, s_e=s_e, s_w=s_w, edge_shares=edge, worker_shares=inner,
                          construction=construction, rng=np.random.default_rng(seed))
    except UnreachableBoundError:
        return
    assert pattern_count(code) == brute_force_count(workers, s_e, s_w)
    check = check_code(code, max_patterns=3000, rng=np.random.default_rng(seed))
    assert check.failures == 0 and check.max_rel_error < 1e-9, (workers, s_e, s_w, edge, inner, check)
    alloc = code.placement.allocation
    np.testing.assert_array_equal(code.worker_loads, [float(x) for x in alloc.worker_loads])
    assert code.load == float(alloc.max_load)
    held = (code.encoding[:, :, 0] != 0).sum(axis=1)
    assert (held <= np.round(code.worker_loads * code.n_partitions)).all()


def test_edges_and_workers_with_zero_share_are_never_needed():
    workers = (3, 4, 2, 3)
    edge = [Fraction(1), Fraction(1), Fraction(0), Fraction(1)]                # edge 2 takes no part
    inner = [None, [Fraction(1), Fraction(1), Fraction(0), Fraction(0)], None, None]   # workers 2, 3 of edge 1 idle
    code = build_code("hgc", workers, s_e=2, s_w=[1, 1, 0, 2], edge_shares=edge, worker_shares=inner)
    assert code.active_edges.tolist() == [0, 1, 3]
    loads = code.worker_loads
    assert loads[7:9].tolist() == [0, 0] and loads[5:7].tolist() == [0, 0] and (loads[[0, 1, 2, 3, 4]] > 0).all()
    G = np.random.default_rng(0).standard_normal((code.n_partitions, 5))
    messages = code.encode(G)
    responded = np.ones(12, bool)
    responded[[5, 6, 7, 8]] = False                          # idle workers and edge 2 are silent
    np.testing.assert_allclose(code.decode(responded, messages, edges=[0, 1, 3]), G.sum(axis=0), atol=1e-12)
    np.testing.assert_allclose(code.decode(responded, messages, edges=[3]), G.sum(axis=0), atol=1e-12)
    check = check_code(code, max_patterns=10_000)
    assert check.failures == 0


def test_cheap_load_functions_agree_with_the_codes():
    workers = (5, 5, 3, 6)
    for kwargs in ({"s_e": 1, "s_w": 1}, {"s_e": 1, "s_w": [1, 2, 0, 3]},
                   {"s_e": 1, "s_w": 1, "reduction_e": 2, "reduction_w": 2}):
        code = build_code("hgc", workers, **kwargs)
        np.testing.assert_array_equal(worker_loads("hgc", workers, **kwargs), code.worker_loads)
        assert worker_load("hgc", workers, **kwargs) == code.load
    flat = build_code("flat_gc", workers, s=3, reduction=2)
    np.testing.assert_array_equal(worker_loads("flat_gc", workers, s=3, reduction=2), flat.worker_loads)
    assert flat.load == 5 / 19
    assert message_lengths("hgc", reduction_e=2, reduction_w=3) == (Fraction(1, 6), Fraction(1, 2))
    assert message_lengths("flat_gc", reduction=4) == (Fraction(1, 4), Fraction(1, 4))
    with pytest.raises(ConfigError, match="reduction_e and reduction_w"):
        worker_loads("hgc", workers, s_e=1, s_w=1, reduction=2)


def test_every_small_allocation_on_a_grid_decodes():
    """Exhaustive over a small grid: 3 edges of 2 workers, s_e = 1, shares in thirds."""
    workers = (2, 2, 2)
    count = 0
    for arcs in product(range(4), repeat=3):
        if sum(arcs) != 6:
            continue
        edge = [Fraction(a, 3) for a in arcs]
        code = build_code("hgc", workers, s_e=1, s_w=[1, 0, 1], edge_shares=edge)
        check = check_code(code, max_patterns=10_000)
        assert check.exhaustive and check.failures == 0, edge
        count += 1
    assert count == 10                                           # (3,3,0)×3, (3,2,1)×6, (2,2,2)
