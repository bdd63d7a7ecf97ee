"""Coefficient constructions and single-layer decoding."""

from math import comb

import numpy as np
import pytest

from hgc.codes import (CONSTRUCTIONS, atoms, build_layer, cyclic_placement, decode_layer,
                       fractional_repetition_coefficients, null_space_coefficients, polynomial_coefficients, proportional_cyclic_placement,
                       straggler_patterns)
from hgc.errors import ConfigError, UndecodableError


def cyclic_support(n: int, s: int) -> np.ndarray:
    return proportional_cyclic_placement([1] * n, s).membership()


def all_patterns(n: int, s: int) -> np.ndarray:
    return straggler_patterns(n, s, None, comb(n, s))[0]


@pytest.mark.parametrize("construction", ["null_space", "polynomial", "polynomial_equispaced", "gaussian"])
@pytest.mark.parametrize("n,s", [(5, 1), (7, 3), (9, 2), (11, 5), (4, 3), (6, 0)])
def test_every_construction_spans_ones_from_any_n_minus_s_rows(construction, n, s):
    support = cyclic_placement(n, s).membership()                      # node i holds groups i..i+s
    layer = build_layer(support, s, construction, rng=np.random.default_rng(1))
    B = layer.coefficients[:, :, 0]
    assert ((B != 0) <= layer.membership).all()                    # coefficients only on the support
    result = layer.decode_batch(all_patterns(n, s))
    assert result.ok.all() and result.weights.shape == (comb(n, s), 1, n)
    assert np.abs(result.weights[:, 0] @ B - 1).max() < 1e-10
    assert (result.cond >= 1 - 1e-12).all()


def test_fractional_repetition_is_exact_and_takes_one_per_group():
    layer = build_layer(cyclic_support(6, 2), 2)                      # classes {0,2,4}, {1,3,5}
    assert layer.construction == "fractional_repetition"
    assert set(np.unique(layer.coefficients)) <= {0.0, 1.0}
    result = layer.decode_batch(all_patterns(6, 2))
    assert result.ok.all() and (result.residual == 0).all() and (result.cond == 1).all()
    assert set(np.unique(result.weights)) <= {0.0, 1.0}
    assert (result.weights.sum(axis=2) == 2).all()                     # one responder per class
    w = layer.decoding_weights(np.array([0, 0, 0, 1, 1, 1], bool))
    assert w.tolist() == [[0, 0, 0, 1, 1, 0]]


def test_polynomial_construction_on_arbitrary_supports():
    rng = np.random.default_rng(5)
    for trial in range(20):
        n, K = rng.integers(3, 9), rng.integers(2, 12)
        s = int(rng.integers(0, n))
        M = np.zeros((n, K), bool)
        for k in range(K):                                              # each partition on >= s+1 random nodes
            M[rng.choice(n, size=rng.integers(s + 1, n + 1), replace=False), k] = True
        for construction in ("polynomial", "gaussian", "auto"):
            layer = build_layer(M, s, construction, rng=rng)
            assert layer.decode_batch(all_patterns(n, s)).ok.all(), (trial, construction)


def test_polynomial_coefficients_are_monic_polynomial_values():
    # n = 4, s = 1: p_k has degree 2 and vanishes at the two non-holders
    M = cyclic_support(4, 1)                                            # FR-shaped, but the formula still holds
    _, Ma = atoms(M)
    x = np.array([-1.0, 0.0, 1.0, 2.0])
    B = polynomial_coefficients(Ma, 1, x)
    assert B.shape == (4, Ma.shape[1], 1)
    for k in range(Ma.shape[1]):
        zeros = np.flatnonzero(~Ma[:, k])
        assert np.allclose(B[zeros, k], 0)


def test_auto_prefers_fractional_repetition_and_otherwise_the_smallest_kappa():
    assert build_layer(cyclic_support(8, 3), 3).construction == "fractional_repetition"
    auto = build_layer(cyclic_support(13, 6), 6, rng=np.random.default_rng(0))
    assert auto.construction in CONSTRUCTIONS and auto.construction != "fractional_repetition"
    patterns = all_patterns(13, 6)
    worst = {}
    for c in ("null_space", "polynomial", "polynomial_equispaced", "gaussian"):
        d = build_layer(cyclic_support(13, 6), 6, c, rng=np.random.default_rng(0)).decode_batch(patterns)
        worst[c] = d.cond.max()
    chosen = auto.decode_batch(patterns).cond.max()
    assert chosen <= 10 * min(worst.values())                           # probed on a sample, checked on all


def test_constructions_are_seeded():
    M = cyclic_support(9, 4)
    a = build_layer(M, 4, "gaussian", rng=np.random.default_rng(3)).coefficients
    b = build_layer(M, 4, "gaussian", rng=np.random.default_rng(3)).coefficients
    c = build_layer(M, 4, "gaussian", rng=np.random.default_rng(4)).coefficients
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(build_layer(M, 4).coefficients, build_layer(M, 4).coefficients)


def test_inapplicable_constructions_are_refused_with_reasons():
    _, Ma = atoms(cyclic_support(7, 2))
    with pytest.raises(ConfigError, match="identical or disjoint"):
        fractional_repetition_coefficients(Ma, 2)
    _, fr = atoms(cyclic_support(6, 1))                                 # 3 atoms < n - s = 5
    with pytest.raises(ConfigError, match="at least n-s"):
        null_space_coefficients(fr, 1, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="one of"):
        build_layer(cyclic_support(5, 1), 1, "reed_solomon")
    M = cyclic_support(5, 1)
    with pytest.raises(ConfigError, match="at least s\\+1 = 3"):
        build_layer(M, 2)


@pytest.mark.parametrize("construction", ["null_space", "polynomial", "polynomial_equispaced", "gaussian"])
def test_one_straggler_too_many_is_refused_not_decoded_wrongly(construction):
    n, s = 9, 3
    layer = build_layer(cyclic_support(n, s), s, construction, rng=np.random.default_rng(2))
    masks = all_patterns(n, s + 1)
    result = layer.decode_batch(masks)
    assert not result.ok.all()                                          # generic codes cannot do s+1
    ok = result.ok
    assert (np.abs(result.weights[ok][:, 0] @ layer.coefficients[:, :, 0] - 1).max(initial=0) <= 1e-9)
    bad = masks[np.flatnonzero(~ok)[0]]
    with pytest.raises(UndecodableError, match="5 of 9 nodes responded"):
        layer.decoding_weights(bad)


def test_min_norm_uses_every_responder_and_nobody_gives_inf_residual():
    layer = build_layer(cyclic_support(5, 1), 1, "polynomial")
    d = decode_layer(layer.atom_coefficients, np.ones((1, 5), bool))
    assert d.ok[0] and (d.weights[0, 0] != 0).sum() >= 4
    d = decode_layer(layer.atom_coefficients, np.zeros((1, 5), bool))
    assert not d.ok[0] and d.residual[0] == np.inf and d.cond[0] == np.inf


def test_straggler_patterns_exhaustive_and_sampled():
    masks, exhaustive = straggler_patterns(6, 2, None, 100)
    assert exhaustive and masks.shape == (15, 6) and len({m.tobytes() for m in masks}) == 15
    assert ((~masks).sum(axis=1) == 2).all()
    masks, exhaustive = straggler_patterns(30, 10, np.random.default_rng(0), 50)
    assert not exhaustive and masks.shape == (50, 30) and ((~masks).sum(axis=1) == 10).all()


def test_nodes_with_identical_supports_share_a_smaller_code():
    from hgc.codes.constructions import node_groups

    support = cyclic_support(8, 5)                                      # gcd(8, 6) = 2: nodes i and i+4 coincide
    _, Ma = atoms(support)
    group_of, group_support, s_groups = node_groups(Ma, 5)
    assert group_of.tolist() == [0, 1, 2, 3, 0, 1, 2, 3] and s_groups == 2 and group_support.shape == (4, 4)
    for construction in ("polynomial", "polynomial_equispaced", "null_space", "gaussian", "auto"):
        layer = build_layer(support, 5, construction, rng=np.random.default_rng(0))
        B = layer.coefficients
        assert np.array_equal(B[:4], B[4:])
        result = layer.decode_batch(all_patterns(8, 5))
        assert result.ok.all(), construction
    assert node_groups(atoms(cyclic_support(7, 2))[1], 2) is None      # all supports distinct


def test_grouping_improves_conditioning_for_large_codes():
    support = cyclic_support(30, 15)                                    # 15 groups of 2, tolerance 7
    layer = build_layer(support, 15, "polynomial_equispaced")
    masks = straggler_patterns(30, 15, np.random.default_rng(0), 300)[0]
    assert layer.decode_batch(masks).cond.max() < 1e3                   # node-level code: ~4e4
