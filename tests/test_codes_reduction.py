"""Shorter messages: flat GC with reduction ℓ and HGC with (ℓ_e, ℓ_w), alone and with unequal shares."""

from fractions import Fraction
from itertools import combinations
from math import comb

import numpy as np
import pytest

from hgc.codes import (build_code, build_layer, chunk_length, proportional_cyclic_placement, split_chunks,
                       straggler_patterns)
from hgc.codes.constructions import components
from hgc.errors import ConfigError, UndecodableError, UnreachableBoundError
from hgc.verify import check_code


def exact_gradient(code, G, weights, messages):
    return code.combine(weights, messages, G.shape[1])


# ----------------------------------------------------------------------------------------------------
# One layer

@pytest.mark.parametrize("construction", ["polynomial", "polynomial_equispaced", "gaussian", "auto"])
@pytest.mark.parametrize("n,s,ell", [(6, 2, 2), (7, 1, 3), (9, 3, 2), (8, 0, 4), (10, 4, 3), (5, 2, 3)])
def test_layer_with_reduction_decodes_every_pattern(construction, n, s, ell):
    support = proportional_cyclic_placement([1] * n, s, reduction=ell).membership()
    assert (support.sum(axis=0) == s + ell).all()
    layer = build_layer(support, s, construction, rng=np.random.default_rng(3), reduction=ell)
    B = layer.coefficients
    assert B.shape == (n, support.shape[1], ell)
    assert ((np.abs(B).sum(axis=2) != 0) <= support).all()            # coefficients only on the support
    masks = straggler_patterns(n, s, None, comb(n, s))[0]
    result = layer.decode_batch(masks)
    assert result.ok.all() and result.weights.shape == (len(masks), ell, n)
    product = np.einsum("pcn,nkd->pckd", result.weights, B)              # (P, ℓ out, K, ℓ in)
    target = np.eye(ell)[None, :, None, :]
    assert np.abs(product - target).max() < 1e-9
    assert (result.weights[~np.broadcast_to(masks[:, None, :], result.weights.shape)] == 0).all()


def test_polynomial_reduction_reads_leading_coefficients():
    """p_{k,c} = R_k h_{k,c}: monic R_k with the given roots times h_{k,c}; its ℓ leading coefficients are e_c."""
    from hgc.codes.constructions import _leading_unit_factors

    rng = np.random.default_rng(0)
    for ell in (1, 2, 3, 4):
        roots = rng.uniform(-2, 2, size=int(rng.integers(0, 6)))
        x = np.linspace(-2, 2, 9)
        H = _leading_unit_factors(roots, x, ell)                           # h_c(x_i), shape (9, ℓ)
        R = np.poly(roots) if roots.size else np.ones(1)
        for c in range(ell):
            h = np.polyfit(x, H[:, c], ell - 1)                             # h_c has degree ℓ-1 exactly
            np.testing.assert_allclose(np.polyval(h, x), H[:, c], atol=1e-9)
            lead = np.convolve(R, h)[:ell]                                   # (np.polymul drops leading zeros)
            np.testing.assert_allclose(lead, np.eye(ell)[c], atol=1e-9)


def test_reduction_refusals():
    support = proportional_cyclic_placement([1] * 6, 1, reduction=2).membership()
    for name in ("null_space", "fractional_repetition"):
        with pytest.raises(ConfigError, match="reduction 2|identical or disjoint"):
            build_layer(support, 1, name, reduction=2)
    with pytest.raises(ConfigError, match="at least s\\+reduction = 4"):
        build_layer(support, 2, reduction=2)                              # partitions lie on 3 nodes only
    with pytest.raises(UnreachableBoundError, match="s \\+ reduction = 7 exceeds the 6 nodes"):
        build_code("flat_gc", [3, 3], s=4, reduction=3)
    with pytest.raises(ConfigError, match="reduction_e and reduction_w"):
        build_code("hgc", [3, 3], s_e=0, s_w=0, reduction=2)
    with pytest.raises(ConfigError, match="no edge/worker shares"):
        build_code("flat_gc", [3, 3], s=1, reduction_e=2)


def test_block_supports_are_coded_block_by_block():
    support = proportional_cyclic_placement([1] * 16, 5, reduction=3).membership()   # 2 classes of 8 nodes
    parts = components(support)
    assert parts is not None and len(parts) == 2
    layer = build_layer(support, 5, "polynomial_equispaced", reduction=3)
    masks = straggler_patterns(16, 5, np.random.default_rng(0), 2000)[0]
    result = layer.decode_batch(masks)
    assert result.ok.all() and result.cond.max() < 100                   # one global code: ~300
    assert components(proportional_cyclic_placement([1] * 7, 2).membership()) is None


# ----------------------------------------------------------------------------------------------------
# Flat codes

@pytest.mark.parametrize("workers,s,ell", [((4, 3), 2, 2), ((3, 3, 2), 3, 3), ((5,), 1, 4), ((2, 2, 2, 2), 4, 2)])
def test_flat_reduction_decodes_from_any_N_minus_s_and_refuses_more(workers, s, ell):
    code = build_code("flat_gc", workers, s=s, reduction=ell, rng=np.random.default_rng(0))
    N = sum(workers)
    assert code.n_chunks == ell and code.worker_message_length == Fraction(1, ell)
    assert code.load == (s + ell) / N
    check = check_code(code, max_patterns=5000)
    assert check.exhaustive and check.failures == 0 and check.max_rel_error < 1e-9
    G = np.random.default_rng(1).standard_normal((code.n_partitions, 11))        # 11 is not a multiple of ℓ
    messages = code.encode(G)
    assert messages.shape == (N, chunk_length(11, ell))
    if s + 1 < N:
        for down in list(combinations(range(N), s + 1))[:40]:
            responded = np.ones(N, bool)
            responded[list(down)] = False
            try:
                g = code.decode(responded, messages, dim=11)
            except UndecodableError:
                continue
            np.testing.assert_allclose(g, G.sum(axis=0), atol=1e-9)


def test_chunks_pad_with_zeros_and_reassemble():
    G = np.arange(2 * 7, dtype=float).reshape(2, 7)
    chunks = split_chunks(G, 3)
    assert chunks.shape == (2, 3, 3)
    assert chunks.reshape(2, -1)[:, :7].tolist() == G.tolist() and (chunks.reshape(2, -1)[:, 7:] == 0).all()


# ----------------------------------------------------------------------------------------------------
# Hierarchical codes

HGC_CASES = [
    ((5, 5, 3, 6), 1, 1, 2, 2),
    ((4, 4, 4), 1, 1, 2, 1),
    ((4, 4, 4), 0, 1, 1, 3),
    ((3, 4, 5, 3), 1, [0, 1, 2, 1], 2, 2),
    ((6, 6), 0, 2, 2, 2),
    ((2, 3, 2, 3, 2), 1, [0, 1, 0, 1, 1], 2, 1),
]


@pytest.mark.parametrize("workers,s_e,s_w,ell_e,ell_w", HGC_CASES)
def test_hgc_reductions_decode_every_admissible_pattern(workers, s_e, s_w, ell_e, ell_w):
    code = build_code("hgc", workers, s_e=s_e, s_w=s_w, reduction_e=ell_e, reduction_w=ell_w,
                      rng=np.random.default_rng(0))
    assert code.n_chunks == ell_e * ell_w
    assert code.worker_message_length == Fraction(1, ell_e * ell_w)
    assert code.edge_message_length == Fraction(1, ell_e)
    tol = [s_w] * len(workers) if isinstance(s_w, int) else s_w
    w = sum(Fraction(m, t + ell_w) for m, t in zip(workers, tol))
    assert code.load == pytest.approx(float((s_e + ell_e) / w))         # balanced: every worker the same
    if isinstance(s_w, int):
        assert code.load == pytest.approx((s_e + ell_e) * (s_w + ell_w) / sum(workers))
    check = check_code(code, max_patterns=4000, rng=np.random.default_rng(1))
    assert check.failures == 0 and check.max_rel_error < 1e-9, check


@pytest.mark.parametrize("workers,s_e,s_w,ell_e,ell_w", HGC_CASES[:4])
def test_each_layer_decodes_on_its_own(workers, s_e, s_w, ell_e, ell_w):
    """The emulator's path: every edge decodes its forwarded vector from its own workers' messages, then
    the master decodes the gradient from the edges' vectors — equal to the whole-code decoding."""
    code = build_code("hgc", workers, s_e=s_e, s_w=s_w, reduction_e=ell_e, reduction_w=ell_w)
    rng = np.random.default_rng(5)
    dim = 13
    G = rng.standard_normal((code.n_partitions, dim))
    messages = code.encode(G)
    forwarded = code.edge_encode(G)
    assert forwarded.shape == (len(workers), ell_w * chunk_length(dim, ell_e * ell_w))
    offsets = np.cumsum((0,) + tuple(workers))
    tol = code.worker_tolerances
    for _ in range(10):
        edges = np.ones(len(workers), bool)
        edges[rng.choice(len(workers), s_e, replace=False)] = False
        responded = np.ones(code.n_workers, bool)
        decoded_edges = np.zeros_like(forwarded)
        for i in np.flatnonzero(edges):
            local = np.ones(workers[i], bool)
            local[rng.choice(workers[i], tol[i], replace=False)] = False
            responded[offsets[i]:offsets[i + 1]] = local
            mine = messages[offsets[i]:offsets[i + 1]].copy()
            mine[~local] = np.nan                                       # a silent worker's message is never read
            decoded_edges[i] = code.decode_edge(i, local, mine)
            np.testing.assert_allclose(decoded_edges[i], forwarded[i], atol=1e-10)
        decoded_edges[~edges] = np.nan
        g_layers = code.decode_master(edges, decoded_edges, dim=dim)
        g_whole = code.decode(responded, messages, edges=edges, dim=dim)
        np.testing.assert_allclose(g_layers, G.sum(axis=0), atol=1e-9)
        np.testing.assert_allclose(g_whole, G.sum(axis=0), atol=1e-9)
    silent = np.zeros(workers[0], bool)
    with pytest.raises(UndecodableError, match="edge 0: 0 of"):
        code.decode_edge(0, silent, messages[:workers[0]])
    with pytest.raises(UndecodableError, match="master needs any"):
        code.decode_master([], forwarded)
    if ell_e > 1:                                             # fewer than ℓ_e holders of a partition: refused
        holders = code.placement.edge.membership()[:, 0]
        few = np.flatnonzero(holders)[:ell_e - 1]
        with pytest.raises(UndecodableError):
            code.decode_master(few, forwarded)


def test_hgc_one_straggler_too_many_is_refused_or_exact():
    code = build_code("hgc", (4, 4, 4), s_e=1, s_w=1, reduction_e=2, reduction_w=2)
    G = np.random.default_rng(0).standard_normal((code.n_partitions, 8))
    messages = code.encode(G)
    refused = 0
    for down in range(3):                                     # two edges down (s_e = 1): must be refused
        edges = [i for i in range(3) if i != down][:1]
        with pytest.raises(UndecodableError):
            code.decode(None, messages, edges=edges)
        refused += 1
    for i in range(3):                                        # two stragglers in one edge (s_w = 1)
        responded = np.ones(12, bool)
        responded[4 * i:4 * i + 2] = False
        try:
            g = code.decode(responded, messages, dim=8)
        except UndecodableError:
            refused += 1
            continue
        np.testing.assert_allclose(g, G.sum(axis=0), atol=1e-9)
    assert refused >= 3


@pytest.mark.parametrize("seed", range(6))
def test_reductions_compose_with_unequal_shares(seed):
    rng = np.random.default_rng(seed)
    workers = (4, 5, 3, 4)
    ell_e, ell_w = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    s_e = int(rng.integers(0, 4 - ell_e + 1))
    s_w = [int(rng.integers(0, m - ell_w + 1)) for m in workers]
    while True:
        arcs = rng.multinomial((s_e + ell_e) * 4, np.ones(4) / 4)
        if arcs.max() <= 4:
            break
    edge = [Fraction(int(a), 4) for a in arcs]
    code = build_code("hgc", workers, s_e=s_e, s_w=s_w, reduction_e=ell_e, reduction_w=ell_w, edge_shares=edge,
                      rng=np.random.default_rng(seed))
    alloc = code.placement.allocation
    assert sum(alloc.edge_shares) == s_e + ell_e
    for i, f in enumerate(alloc.edge_shares):
        assert alloc.edge_loads[i] == (s_w[i] + ell_w) * f
    check = check_code(code, max_patterns=3000, rng=np.random.default_rng(seed))
    assert check.failures == 0 and check.max_rel_error < 1e-9, (edge, s_e, s_w, ell_e, ell_w, check)


def test_moving_reduction_to_the_edge_layer_can_lower_the_load():
    """docs/theory.md, Theorem B: same worker message length 1/2, loads 4/Σm versus 3/Σm."""
    workers = (3, 3, 3, 3)
    a = build_code("hgc", workers, s_e=1, s_w=0, reduction_e=1, reduction_w=2)
    b = build_code("hgc", workers, s_e=1, s_w=0, reduction_e=2, reduction_w=1)
    assert a.worker_message_length == b.worker_message_length == Fraction(1, 2)
    assert (a.load, b.load) == (4 / 12, 3 / 12)
    assert b.edge_message_length < a.edge_message_length
    for code in (a, b):
        assert check_code(code, max_patterns=5000).failures == 0


def test_trainer_path_uses_real_chunked_messages():
    from hgc.training.trainer import PartitionedData

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    code = build_code("hgc", (3, 3, 3), s_e=1, s_w=1, reduction_e=2, reduction_w=2, partitions=6)
    data = PartitionedData.build(X, code.n_partitions)
    R = rng.standard_normal((60, 3))
    G = data.partial_gradients(R)                                       # (K, 15): 15 is not a multiple of 4
    heard = np.ones(9, bool)
    heard[[0, 4]] = False
    weights = code.decoding_weights(heard, [0, 1])
    g = code.combine(weights[:, heard], code.encode(G, workers=heard), G.shape[1])
    np.testing.assert_allclose(g.reshape(5, 3), X.T @ R, atol=1e-10)
