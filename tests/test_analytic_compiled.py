"""The evaluator's compiled loops and its error estimate, against brute force and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from hgc.analytic import Evaluator, compiled, evaluate, order_statistic_cdf
from hgc.analytic.components import DistributionBatch
from hgc.analytic.evaluator import refinement_error
from hgc.config import load_config
from hgc.distributions import Bimodal, Constant, Empirical, parse_distribution
from hgc.schemes import make_strategy
from hgc.testing import random_system
from hgc.timing import TimingModel
from hgc.topology import Topology

from test_analytic import REPO, harmonic


def dist(**spec):
    return parse_distribution(spec, "test")


# ----------------------------------------------------------------------------------------------------
# Order statistics: large slots go through one binomial term (linear and logarithmic recurrences)

@pytest.mark.parametrize("tolerated", [1, 5, 12, 40])
def test_large_identical_slots_match_binomial_convolution(tolerated):
    counts = np.array([[30, 25]])
    p = np.array([0.02, 0.3, 0.7, 0.97, 0.999999])            # per-node CDF of slot 0 at five points
    q = np.array([0.5, 0.9, 0.01, 0.4, 0.999])                # slot 1
    out = order_statistic_cdf(np.stack([p, q])[None], counts, np.array([tolerated]))[0]
    for point in range(len(p)):
        # P(#unfinished <= tolerated): the sum of two binomials, by direct convolution
        a = stats.binom.pmf(np.arange(31), 30, 1 - p[point])
        b = stats.binom.pmf(np.arange(26), 25, 1 - q[point])
        exact = np.convolve(a, b)[: tolerated + 1].sum()
        assert out[point] == pytest.approx(exact, rel=1e-9, abs=1e-300)


def test_huge_slot_whose_first_binomial_term_underflows():
    """1000 identical nodes, 600 needed: P(Bin(1000, F) >= 600), where F^1000 is below the double range for
    the first points."""
    f = np.array([0.4, 0.45, 0.55, 0.6, 0.62, 0.7])
    out = order_statistic_cdf(f[None, None, :], np.array([[1000]]), np.array([400]))[0]
    assert np.allclose(out, stats.binom.sf(599, 1000, f), rtol=1e-9, atol=1e-300)


# ----------------------------------------------------------------------------------------------------
# Kernels: explicit head + geometric tails == the hat weights, computed here from the stop-loss transform

KERNEL_DISTS = [
    dist(dist="exponential", mean=0.3),
    dist(dist="shifted_exponential", shift=0.5, rate=3.0),
    Bimodal(0.1, Constant(0.0), dist(dist="exponential", mean=0.5)),
    Bimodal(0.3, dist(dist="shifted_exponential", shift=0.2, mean=0.1), dist(dist="shifted_exponential", shift=0.9, mean=0.4)),
    Bimodal(0.2, Constant(0.13), dist(dist="exponential", mean=1.0)),
    dist(dist="gamma", shape=2.5, scale=0.2),
    dist(dist="lognormal", mu=-1.0, sigma=0.5),
    Empirical(np.array([0.0, 0.1, 0.25, 0.31]), "trace.csv", "x"),
]


def hat_by_stop_loss(d, scale: float, h: float, size: int) -> np.ndarray:
    """E[Λ(R/h - k)] for R = scale * (d - lower), as second differences of E[(R - x)^+]."""
    x = np.arange(-1, size + 1) * h
    loss = scale * np.asarray(d.stop_loss(x / scale + float(d.lower)), dtype=float)
    return np.maximum(np.diff(loss, 2) / h, 0.0)


@pytest.mark.parametrize("h", [0.004, 0.037, 0.3])
def test_kernel_parts_are_the_hat_weights(h):
    batch = DistributionBatch(KERNEL_DISTS)
    scales = np.array([1.0, 0.5, 2.0, 1.3, 0.7, 1.0, 1.0, 1.5])
    size = int(40.0 / h)
    for i, d in enumerate(KERNEL_DISTS):
        parts = batch.kernel_parts(np.array([i]), scales[i: i + 1], np.array([h]), np.array([size]))
        written = parts.dense(size)[0, 0]
        assert np.allclose(written, hat_by_stop_loss(d, scales[i], h, size), atol=1e-12), type(d).__name__
        assert written.sum() == pytest.approx(1.0, abs=1e-6)
        if isinstance(d, Bimodal) or type(d).__name__ in ("Exponential", "ShiftedExponential"):
            assert parts.tail_count[0, 0] >= 1      # exponential leaves become recursions, not long heads


def test_convolve_chain_matches_dense_convolution():
    rng = np.random.default_rng(3)
    batch = DistributionBatch(KERNEL_DISTS[:5])
    steps = np.array([0.01, 0.05])
    caps = np.array([400, 400])
    lengths = np.array([120, 90])
    values = rng.random((3, int(lengths.sum())))
    seg_start = np.array([0, 120])
    stage_rows = [np.array([0, 2, 4]), np.array([1, 3, 0])]   # kernel of each value row in two stages
    banks = [batch.kernel_parts(rows, np.ones(3), steps, caps) for rows in stage_rows]
    # one bank with both stages' kernels: rows 0-2 stage 0, rows 3-5 stage 1
    size = max(b.fir.shape[-1] for b in banks)
    tails = max(b.tail_amp.shape[-1] for b in banks)
    pad = lambda a, n: np.pad(a, ((0, 0), (0, 0), (0, n - a.shape[-1])))  # noqa: E731
    bank = (np.concatenate([pad(b.fir, size) for b in banks]).reshape(-1, size),
            np.concatenate([b.fir_length for b in banks]).reshape(-1),
            np.concatenate([pad(b.tail_amp, tails) for b in banks]).reshape(-1, tails),
            np.concatenate([pad(b.tail_ratio, tails) for b in banks]).reshape(-1, tails),
            np.concatenate([pad(b.tail_start, tails) for b in banks]).reshape(-1, tails),
            np.concatenate([b.tail_count for b in banks]).reshape(-1))
    bank_row = np.array([[0, 1, 2], [3, 4, 5]])
    skip = np.array([7, 3])
    out = np.zeros((3, int((lengths - skip).sum())))
    out_start = np.array([0, lengths[0] - skip[0]])
    compiled.convolve_chain(values, seg_start, lengths, bank_row, *bank, np.zeros((0, 0)), False, out, out_start,
                            skip, False)
    for r in range(3):
        for l in range(2):
            x = values[r, seg_start[l]: seg_start[l] + lengths[l]]
            for bank_, rows in zip(banks, stage_rows):
                kernel = bank_.dense(int(lengths[l]))[r, l]
                x = np.convolve(x, kernel)[: lengths[l]]
            assert np.allclose(out[r, out_start[l]: out_start[l] + lengths[l] - skip[l]], x[skip[l]:], atol=1e-12)


# ----------------------------------------------------------------------------------------------------
# The refinement estimate

def test_refinement_error_rules():
    h = 0.5 ** np.arange(4)
    smooth = 1.0 + 0.3 * h ** 2                          # second order: d1/d2 = 4
    d2 = smooth[2] - smooth[1]
    assert refinement_error(smooth[:3]) == pytest.approx(1.5 * abs(d2))
    first = 1.0 + 0.3 * h                                # first order: d1/d2 = 2
    assert refinement_error(first[:3]) == pytest.approx(max(2 * abs(first[2] - first[1]), abs(first[1] - first[0])))
    assert refinement_error(first[:2]) == math.inf and refinement_error(first[:3], discrete=True) == math.inf
    d = np.diff(first)
    assert refinement_error(first, discrete=True) == pytest.approx(3 * max(abs(d[2]), abs(d[1]) / 2, abs(d[0]) / 4))
    # levels are estimated separately: opposite errors in two levels do not cancel
    levels = np.stack([smooth, 2.0 - smooth], axis=1)
    assert refinement_error(levels[:3]) == pytest.approx(2 * refinement_error(smooth[:3]))
    assert refinement_error(np.ones((3, 2))) == 0.0


@pytest.mark.parametrize("rtol", [1e-3, 1e-4])
def test_error_estimate_covers_the_actual_error_on_closed_forms(rtol):
    cases = []
    topo = Topology((20,))
    model = TimingModel.homogeneous(topo, dist(dist="exponential", rate=2.0))
    for s in (0, 5, 19):
        load = (s + 1) / 20
        cases.append((model, make_strategy("hgc", topo, load=load, s_e=0, s_w=s), load * (harmonic(20) - harmonic(s)) / 2))
    topo = Topology((10,))
    model = TimingModel.homogeneous(topo, Bimodal(0.1, Constant(1.0), Constant(100.0)))   # atoms: T is discrete
    for s in (3, 4, 5):
        load = (s + 1) / 10
        cases.append((model, make_strategy("flat_gc", topo, load=load, s=s), load * (1 + 99 * stats.binom.sf(s, 10, 0.1))))
    for model, strategy, exact in cases:
        result = evaluate(model, strategy, rtol=rtol)
        assert result.converged
        assert abs(result.expected_time - exact) <= result.error_estimate <= rtol * exact


def test_discrete_models_are_recognised():
    assert Evaluator(load_config(REPO / "configs" / "trace-driven.yaml").timing).discrete
    assert not Evaluator(random_system(1, 4, 3)).discrete
    topo = Topology((3,))
    assert Evaluator(TimingModel.homogeneous(topo, Bimodal(0.1, Constant(1.0), Constant(9.0)))).discrete
    # an atom-valued compute smoothed by a continuous overhead is not discrete
    assert not Evaluator(TimingModel.homogeneous(topo, Bimodal(0.1, Constant(1.0), Constant(9.0)),
                                                 overhead=dist(dist="exponential", mean=0.1))).discrete


def test_resolutions_computed_together_equal_separate_passes():
    model = random_system(2, 4, 5)
    evaluator = Evaluator(model)
    plan = evaluator.plan(make_strategy("hgc", model.topology, s_e=1, s_w=2))
    grid = evaluator.grid_for([plan], 33, 1e-11)[0]
    together, _ = evaluator._plans_on_grid([plan], grid, [33, 65, 129])
    separate = [cdf for points in (33, 65, 129) for cdf in evaluator._plans_on_grid([plan], grid, points)[0]]
    for a, b in zip(together, separate):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("spec", [
    {"dist": "gamma", "shape": 2.5, "scale": 0.7},
    {"dist": "lognormal", "mu": 0.3, "sigma": 0.8},
    {"dist": "weibull", "shape": 1.7, "scale": 2.0},
    {"dist": "pareto", "shape": 3.5, "scale": 1.5},
    {"dist": "uniform", "low": 1.0, "high": 3.0},
], ids=lambda s: s["dist"])
def test_link_of_every_family_through_general_kernels(spec):
    """A link delay without closed-form kernels (written-out heads, long ones by FFT): E[T] of one worker behind
    it is the sum of the means, and the estimate covers the error."""
    topo = Topology((1,))
    link = dist(**spec).scaled(0.3)
    model = TimingModel.homogeneous(topo, dist(dist="exponential", mean=0.2), edge_uplink=link)
    result = evaluate(model, make_strategy("uncoded", topo, load=0.5), rtol=1e-4)
    exact = 0.5 * 0.2 + link.mean
    assert abs(result.expected_time - exact) <= result.error_estimate <= 1e-4 * exact
