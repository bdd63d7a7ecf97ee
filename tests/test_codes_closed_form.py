"""Closed-form decoding of the polynomial constructions: the same weights as the generic solver, exact
gradients from every admissible pattern, and the residual check with its fallback still in charge."""

from math import comb
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hgc.codes.constructions as constructions
import hgc.codes.decoding as decoding
from hgc.codes import build_layer, proportional_cyclic_placement, straggler_patterns
from hgc.codes.constructions import polynomial_coefficients, polynomial_decoder
from hgc.codes.decoding import PolynomialDecoder, decode_layer, min_norm_weights, residuals
from hgc.config import load_config
from hgc.verify import verify_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def cyclic_support(n: int, s: int, ell: int) -> np.ndarray:
    return proportional_cyclic_placement([1] * n, s, reduction=ell).membership()


def pinv_weights(B: np.ndarray, mask: np.ndarray, ell: int) -> np.ndarray:
    """Minimum-norm weights ``(ℓ, n)`` by the pseudo-inverse of ``B_S^T`` with the rank cut at ``r``."""
    rows = np.flatnonzero(mask)
    Bs = B[rows].reshape(rows.size, -1)                                   # (c, A·ℓ)
    target = np.tile(np.eye(ell), Bs.shape[1] // ell)                     # (ℓ, A·ℓ): [c = c'] per atom
    out = np.zeros((ell, B.shape[0]))
    out[:, rows] = (np.linalg.pinv(Bs.T, rcond=1e-10) @ target.T).T
    return out


@pytest.mark.parametrize("points", ["polynomial", "polynomial_equispaced"])
@pytest.mark.parametrize("n,s,ell", [(9, 3, 1), (11, 4, 1), (9, 2, 3), (12, 5, 2), (16, 6, 1), (11, 1, 4)])
def test_closed_form_equals_min_norm_on_random_patterns(points, n, s, ell):
    rng = np.random.default_rng(n * 100 + s * 10 + ell)
    M = cyclic_support(n, s, ell)
    x = constructions.POLYNOMIAL_POINTS[points](n)
    B = polynomial_coefficients(M, s, x, ell)
    decoder = polynomial_decoder(M, s, x, ell)
    assert decoder is not None
    r = n - s
    exact = np.ones((200, n), dtype=bool)                                 # exactly r responders
    more = np.ones((200, n), dtype=bool)                                  # between r + 1 and n
    for p in range(200):
        exact[p, rng.choice(n, s, replace=False)] = False
        more[p, rng.choice(n, int(rng.integers(0, s)), replace=False)] = False
    for masks in (exact, more):
        w, solved = decoder.weights(masks)
        assert solved.all()
        generic = min_norm_weights(B, masks)
        scale = np.abs(w).max(axis=(1, 2))
        if masks is exact:                         # unique weights: the generic solver finds the same ones
            assert (np.abs(w - generic).max(axis=(1, 2)) <= 1e-10 * scale).all()
        for p in range(0, 200, 20):                # the minimum-norm solution among all that decode
            np.testing.assert_allclose(w[p], pinv_weights(B, masks[p], ell), rtol=0, atol=1e-10 * scale[p])
        assert residuals(w, B).max() < 1e-11
        assert (w[~np.broadcast_to(masks[:, None, :], w.shape)] == 0).all()
        assert (masks.sum(axis=1) == r).all() == (masks is exact)


@pytest.mark.parametrize("construction", ["polynomial", "polynomial_equispaced"])
@pytest.mark.parametrize("n,s,ell", [(7, 2, 1), (8, 2, 1), (7, 2, 2), (11, 3, 3), (7, 0, 2), (8, 1, 1)])
def test_every_admissible_pattern_decodes_exactly(construction, n, s, ell):
    M = cyclic_support(n, s, ell)
    layer = build_layer(M, s, construction, reduction=ell)
    assert layer.closed_form is not None
    rng = np.random.default_rng(5)
    G = rng.standard_normal((M.shape[1], ell, 3))                          # partial gradients, ℓ chunks each
    messages = np.einsum("nkc,kcd->nd", layer.coefficients, G)
    for stragglers in range(s + 1):                                       # maximal and non-maximal patterns
        masks = straggler_patterns(n, stragglers, None, comb(n, stragglers))[0]
        result = layer.decode_batch(masks)
        assert result.ok.all()
        decoded = np.einsum("pcn,nd->pcd", result.weights, messages)
        np.testing.assert_allclose(decoded, np.broadcast_to(G.sum(axis=0), decoded.shape), atol=1e-10)
    if layer.groups is None:                       # (with groups, s + 1 stragglers may still leave every group)
        too_few = straggler_patterns(n, s + 1, None, comb(n, s + 1))[0] if s + 1 < n else np.zeros((1, n), bool)
        assert not layer.decode_batch(too_few).ok.any()


def test_grouped_nodes_decode_through_their_group():
    """Nodes with identical supports share a row; the decoder works on the groups' points."""
    M = proportional_cyclic_placement([1] * 12, 5).membership()            # gcd(12, 6) = 6 nodes per arc
    layer = build_layer(M, 5, "polynomial")
    assert layer.groups is not None and layer.closed_form is not None
    assert layer.closed_form.group_of is not None
    masks = straggler_patterns(12, 5, None, comb(12, 5))[0]
    result = layer.decode_batch(masks)
    generic = decode_layer(layer.atom_coefficients, masks, groups=layer.groups)
    assert result.ok.all() and generic.ok.all()
    np.testing.assert_allclose(result.weights, generic.weights, atol=1e-10)


def test_residual_check_refuses_and_falls_back(monkeypatch):
    n, s = 9, 3
    M = cyclic_support(n, s, 1)
    x = constructions.chebyshev_points(n)
    B = polynomial_coefficients(M, s, x)
    good = polynomial_decoder(M, s, x)
    assert good is not None
    wrong = PolynomialDecoder(good.points, good.scales * 1.5, good.needed)   # corrupted row scales
    masks = straggler_patterns(n, s, None, comb(n, s))[0]
    calls = []
    original = decoding.min_norm_weights
    monkeypatch.setattr(decoding, "min_norm_weights", lambda *a: calls.append(1) or original(*a))
    result = decode_layer(B, masks, closed_form=wrong)
    assert calls                                                           # every pattern went to the fallback
    reference = decode_layer(B, masks)
    assert result.ok.all()
    np.testing.assert_array_equal(result.weights, reference.weights)
    calls.clear()
    direct = decode_layer(B, masks, closed_form=good)
    assert not calls and direct.ok.all()                                   # the right closed form needs none
    # a corrupted code (one coefficient changed) is refused on the patterns that read it
    bad = B.copy()
    bad[0, np.flatnonzero(M[0])[0]] += 1e-3
    refused = decode_layer(bad, masks, closed_form=good)
    reads_node_0 = masks[:, 0]
    assert not refused.ok[reads_node_0].any() and refused.ok[~reads_node_0].all()


def test_ill_conditioned_points_fall_back_or_refuse():
    """Nearly coincident points: closed-form weights that do not pass the residual check are not used."""
    n, s = 10, 3
    M = cyclic_support(n, s, 1)
    x = constructions.equispaced_points(n)
    x[4] = x[3] + 1e-13
    B = polynomial_coefficients(M, s, x)
    decoder = polynomial_decoder(M, s, x)
    masks = straggler_patterns(n, s, None, comb(n, s))[0]
    with_closed = decode_layer(B, masks, closed_form=decoder)
    generic = decode_layer(B, masks)
    assert (with_closed.ok >= generic.ok).all()                            # never refuses what decodes today
    assert (with_closed.residual[with_closed.ok] <= decoding.DEFAULT_RTOL).all()


def test_verify_rows_unchanged_against_generic_decoder(monkeypatch):
    config = load_config(CONFIGS / "quickstart.yaml")
    fast = verify_config(config, max_patterns=3000)
    monkeypatch.setattr(constructions, "polynomial_decoder", lambda *a, **k: None)
    slow = verify_config(config, max_patterns=3000)
    close = ["max_rel_error", "worst_cond"]
    same = [c for c in fast.columns if c not in close]
    pd.testing.assert_frame_equal(fast[same], slow[same])          # rows, codes, patterns and verdicts
    for column in close:
        a, b = fast[column].to_numpy(float), slow[column].to_numpy(float)
        if column == "worst_cond":
            np.testing.assert_allclose(a, b, rtol=1e-6)
        else:
            assert (np.abs(a - b) < 1e-12).all()



def test_exhaustive_straggler_patterns_in_lexicographic_order():
    """All C(n, s) patterns, stragglers' sets in lexicographic order (enumerated from the smaller side)."""
    from itertools import combinations

    for n in range(1, 11):
        for s in range(n + 1):
            masks, exhaustive = straggler_patterns(n, s, None, comb(n, s))
            expected = np.ones((comb(n, s), n), dtype=bool)
            for p, stragglers in enumerate(combinations(range(n), s)):
                expected[p, list(stragglers)] = False
            assert exhaustive
            np.testing.assert_array_equal(masks, expected)


def test_repeated_point_sets_give_the_same_weights_as_alone():
    """Patterns with equal responding point sets are solved once; every row equals its own solve."""
    M = proportional_cyclic_placement([1] * 12, 5).membership()
    layer = build_layer(M, 5, "polynomial_equispaced")
    decoder = layer.closed_form
    assert decoder is not None
    masks = straggler_patterns(12, 5, None, comb(12, 5))[0]
    used = decoding.first_per_group(layer.groups, masks)
    together, ok = decoder.weights(used)
    assert ok.all()
    for p in range(0, len(masks), 37):
        alone, _ = decoder.weights(used[p:p + 1])
        np.testing.assert_array_equal(together[p], alone[0])
