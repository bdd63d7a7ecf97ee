"""The analytic evaluator against closed forms, numerical integration, brute force and Monte Carlo."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import integrate, stats

from hgc.analytic import Evaluator, NotAnalyticError, evaluate, expected_time, order_statistic_cdf
from hgc.analytic.components import DistributionBatch
from hgc.distributions import Bimodal, Constant, Empirical, parse_distribution
from hgc.schemes import Strategy, all_nodes, make_strategy
from hgc.timing import TimingModel
from hgc.topology import Topology

REPO = Path(__file__).resolve().parents[1]
RTOL = 1e-3  # the evaluator's accuracy contract against closed forms


def harmonic(n: int) -> float:
    return float(sum(1.0 / k for k in range(1, n + 1)))


def dist(**spec):
    return parse_distribution(spec, "test")


def strategy(kind: str, topo: Topology, load: float, **tolerances) -> Strategy:
    return make_strategy(kind, topo, load=load, **tolerances)


def hat_weights(d, h: float, size: int) -> np.ndarray:
    """The evaluator's discretisation of ``d`` above its lower end on the lattice ``0, h, 2h, ...``."""
    return DistributionBatch([d]).kernels(np.array([0]), np.array([1.0]), h, size)[0]


SCIPY = {
    "exponential": lambda s: stats.expon(scale=s["mean"]),
    "shifted_exponential": lambda s: stats.expon(loc=s["shift"], scale=1 / s["rate"]),
    "uniform": lambda s: stats.uniform(loc=s["low"], scale=s["high"] - s["low"]),
    "gamma": lambda s: stats.gamma(s["shape"], scale=s["scale"]),
    "lognormal": lambda s: stats.lognorm(s["sigma"], scale=math.exp(s["mu"])),
    "weibull": lambda s: stats.weibull_min(s["shape"], scale=s["scale"]),
    "pareto": lambda s: stats.pareto(s["shape"], scale=s["scale"]),
}
"""Independent reference implementations of the parametric families (scipy.stats)."""


FAMILIES = [
    {"dist": "exponential", "mean": 2.0},
    {"dist": "shifted_exponential", "shift": 0.5, "rate": 3.0},
    {"dist": "uniform", "low": 1.0, "high": 3.0},
    {"dist": "gamma", "shape": 2.5, "scale": 0.7},
    {"dist": "lognormal", "mu": 0.3, "sigma": 0.8},
    {"dist": "weibull", "shape": 1.7, "scale": 2.0},
    {"dist": "pareto", "shape": 3.5, "scale": 1.5},
    {"dist": "bimodal", "p": 0.2, "fast": {"dist": "constant", "value": 0.3},
     "slow": {"dist": "exponential", "mean": 1.0}},
]


# ----------------------------------------------------------------------------------------------------
# Building blocks

@pytest.mark.parametrize("spec", FAMILIES, ids=lambda s: s["dist"])
def test_cdf_and_integrated_cdf_match_scipy_and_quadrature(spec):
    d = dist(**spec)
    x = np.array([0.2, 0.9, 1.7, 3.1, 8.0])
    if spec["dist"] in SCIPY:
        reference = SCIPY[spec["dist"]](spec)
        assert np.allclose(d.cdf(x), reference.cdf(x), atol=1e-12)
        q = np.array([0.0, 1e-9, 0.1, 0.5, 0.9, 1 - 1e-9])
        assert np.allclose(d.ppf(q), reference.ppf(q), rtol=1e-12)
        assert d.mean == pytest.approx(reference.mean(), rel=1e-12)
    for point in x:
        numeric = integrate.quad(lambda u: float(d.cdf(u)), 0.0, point, limit=200, points=[0.3, 0.5, 1.0, 1.5])[0]
        assert d.integrated_cdf(np.array([point]))[0] == pytest.approx(numeric, rel=1e-7, abs=1e-10)


@pytest.mark.parametrize("spec", FAMILIES, ids=lambda s: s["dist"])
def test_hat_weights_preserve_mass_and_mean(spec):
    d = dist(**spec)
    lower, h = float(d.lower), 0.01
    size = int((float(d.ppf(1 - 1e-13)) - lower) / h) + 3
    w = hat_weights(d, h, size)
    assert np.all(w >= 0)
    assert w.sum() == pytest.approx(1.0, abs=1e-9)
    assert lower + h * (np.arange(size) * w).sum() == pytest.approx(d.mean, rel=1e-6)


def test_hat_weights_split_an_atom_linearly():
    w = hat_weights(Bimodal(0.5, Constant(0.0), Constant(0.37)), 0.1, 6)
    assert np.allclose(w, [0.5, 0, 0, 0.15, 0.35, 0])
    trace = Empirical(np.array([0.0, 0.1, 0.25]), "trace.csv", "x")
    assert np.allclose(hat_weights(trace, 0.1, 4), [1 / 3, 1 / 3, 1 / 6, 1 / 6])


def brute_force_order_cdf(probs: list[float], tolerated: int) -> float:
    """P(at most `tolerated` of independent nodes are unfinished), by enumerating all outcomes."""
    total = 0.0
    for outcome in itertools.product([0, 1], repeat=len(probs)):
        unfinished = sum(1 - o for o in outcome)
        if unfinished <= tolerated:
            total += math.prod(p if o else 1 - p for p, o in zip(probs, outcome))
    return total


@pytest.mark.parametrize("tolerated", [0, 1, 3, 5])
def test_order_statistic_dp_matches_enumeration_with_grouped_nodes(tolerated):
    rng = np.random.default_rng(tolerated)
    # three jobs, slots with 1..7 identical nodes each (some binomial, some one at a time), padding
    counts = np.array([[1, 6, 2, 0], [7, 1, 0, 0], [3, 1, 1, 1]])
    cdfs = rng.random((3, 4, 5))
    cdfs[0, 0, 0], cdfs[1, 0, 1], cdfs[2, 3, 2] = 0.0, 1.0, 1.0  # degenerate probabilities
    out = order_statistic_cdf(cdfs, counts, np.full(3, tolerated))
    for j in range(3):
        for point in range(5):
            probs = [cdfs[j, s, point] for s in range(4) for _ in range(counts[j, s])]
            assert out[j, point] == pytest.approx(brute_force_order_cdf(probs, tolerated), abs=1e-12)


def test_order_statistic_rejects_waiting_for_nobody():
    with pytest.raises(ValueError):
        order_statistic_cdf(np.ones((1, 1, 3)), np.array([[2]]), np.array([2]))


# ----------------------------------------------------------------------------------------------------
# Closed forms (docs/model.md §10)

@pytest.mark.parametrize("s_w", [0, 3, 9, 19])
def test_exponential_order_statistics(s_w):
    """One edge of N i.i.d. Exp(rate) workers: E[X_(N-s:N)] = (H_N - H_s)/rate, scaled by the load."""
    topo, rate = Topology((20,)), 2.0
    model = TimingModel.homogeneous(topo, dist(dist="exponential", rate=rate))
    load = (s_w + 1) / 20
    result = evaluate(model, strategy("hgc", topo, load, s_e=0, s_w=s_w))
    exact = load * (harmonic(20) - harmonic(s_w)) / rate
    assert result.expected_time == pytest.approx(exact, rel=RTOL)
    assert result.converged and result.decode_probability == pytest.approx(1.0)


def test_uncoded_maximum_over_edges():
    topo = Topology((5, 5, 5, 5))
    model = TimingModel.homogeneous(topo, dist(dist="exponential", rate=2.0))
    assert expected_time(model, strategy("uncoded", topo, 1 / 20)) == pytest.approx(harmonic(20) / 2 / 20, rel=RTOL)


@pytest.mark.parametrize("s", [0, 1, 4, 8, 9])
def test_flat_gc_shifted_exponential_formula(s):
    """Flat GC, docs/model.md §10.2: ((s+1)/N)(shift + (H_N - H_s)/rate), plus a constant overhead (an exact shift)."""
    topo = Topology((4, 6))
    model = TimingModel.homogeneous(topo, dist(dist="shifted_exponential", shift=1.0, rate=2.0),
                                    overhead=Constant(0.3))
    load = (s + 1) / 10
    exact = load * (1.0 + (harmonic(10) - harmonic(s)) / 2.0) + 0.3
    assert expected_time(model, strategy("flat_gc", topo, load, s=s)) == pytest.approx(exact, rel=RTOL)


@pytest.mark.parametrize("s", [3, 4, 5])
def test_flat_gc_bimodal_example(s):
    """X = 1 w.p. 0.9 and 100 w.p. 0.1 (atoms), N = 10: E[T] = ((s+1)/N)(1 + 99 P(Bin(10, 0.1) >= s+1))."""
    topo = Topology((10,))
    x = Bimodal(0.1, Constant(1.0), Constant(100.0))
    model = TimingModel.homogeneous(topo, x)
    load = (s + 1) / 10
    exact = load * (1.0 + 99.0 * stats.binom.sf(s, 10, 0.1))
    assert expected_time(model, strategy("flat_gc", topo, load, s=s)) == pytest.approx(exact, rel=RTOL)


def test_constant_delays_are_exact():
    topo = Topology((2, 3))
    model = TimingModel(topo, (Constant(2.0), Constant(4.0), Constant(1.0), Constant(1.0), Constant(3.0)),
                        (Constant(0.1),) * 5, (Constant(0.0),) * 5, (Constant(0.2), Constant(0.0)),
                        (Constant(0.05),) * 2, (0.01, 0.02))
    # hgc s_e=0, s_w=1, load 2/5: edge 0 waits for 1 of {0.8, 1.6}+0.1, edge 1 for 2 of {0.4, 0.4, 1.2}+0.1
    st = strategy("hgc", topo, 0.4, s_e=0, s_w=1)
    result = evaluate(model, st)
    expected = max(0.8 + 0.1 + 0.2 + 0.05 + 0.01, 0.4 + 0.1 + 0.0 + 0.05 + 0.02)
    assert result.expected_time == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("spec", FAMILIES, ids=lambda s: s["dist"])
def test_single_worker_mean_every_family(spec):
    """One worker, one edge: E[T] = load * E[X] + E[Y] + β + E[V] (tails included)."""
    topo = Topology((1,))
    x = dist(**spec)
    model = TimingModel.homogeneous(topo, x, overhead=dist(dist="exponential", mean=0.05),
                                    edge_uplink=dist(dist="exponential", mean=0.02), per_vector=0.01)
    exact = 0.5 * x.mean + 0.05 + 0.01 + 0.02
    assert expected_time(model, strategy("uncoded", topo, 0.5)) == pytest.approx(exact, rel=RTOL)


def test_trace_driven_worker_mean():
    values = np.array([0.8, 1.0, 1.1, 1.7, 3.0])
    trace = Empirical(values, "trace.csv", "seconds")
    model = TimingModel.homogeneous(Topology((1,)), trace, edge_process=trace.scaled(0.01))
    exact = 0.5 * values.mean() + 0.01 * values.mean()
    assert expected_time(model, strategy("uncoded", model.topology, 0.5)) == pytest.approx(exact, rel=RTOL)


def test_link_delay_convolution_hypoexponential_maximum():
    """Two single-worker edges, Exp(a) compute and Exp(b) link: A is hypoexponential; E[max(A1, A2)]."""
    a, b = 2.0, 5.0
    topo = Topology((1, 1))
    model = TimingModel.homogeneous(topo, dist(dist="exponential", rate=a), edge_uplink=dist(dist="exponential", rate=b))
    cdf = lambda t: 1.0 - (b * math.exp(-a * t) - a * math.exp(-b * t)) / (b - a)  # noqa: E731
    exact = integrate.quad(lambda t: 1.0 - cdf(t) ** 2, 0, np.inf)[0]
    assert expected_time(model, strategy("uncoded", topo, 1.0)) == pytest.approx(exact, rel=RTOL)


def test_link_kernel_reaches_back_before_the_grid():
    """A fast edge behind a slow exponential link and a slow edge behind a constant one: T = max(A1, A2)
    has its body around 5-7 s, where A1 needs the link's density at lags of 5 s and more, far beyond the
    span of the fine grid level over T's body (a kernel cut at the level's length lost that mass)."""
    topo = Topology((1, 1))
    link = dist(dist="exponential", mean=1.0)
    slow = dist(dist="shifted_exponential", shift=5.0, mean=0.5)
    model = TimingModel(topo, (Constant(0.1), slow), (Constant(0.0),) * 2, (Constant(0.0),) * 2,
                        (Constant(0.0),) * 2, (link, Constant(0.0)), (0.0, 0.0))
    f1 = lambda t: 1.0 - math.exp(-(t - 0.1)) if t > 0.1 else 0.0          # noqa: E731
    f2 = lambda t: 1.0 - math.exp(-(t - 5.0) / 0.5) if t > 5.0 else 0.0    # noqa: E731
    exact = integrate.quad(lambda t: 1.0 - f1(t) * f2(t), 0.0, 80.0, points=[0.1, 5.0], limit=400)[0]
    assert expected_time(model, strategy("uncoded", topo, 1.0)) == pytest.approx(exact, rel=1e-4)


def hgc_identical_by_integration(x, n, m, s_e, s_w, load, edge_delay, p_worker=0.0, p_edge=0.0):
    """E[T | decoded] and P(decoded) for identical nodes by quadrature of binomial tails."""

    def edge_cdf(t):
        f = (1 - p_worker) * float(x.cdf((t - edge_delay) / load)) if t > edge_delay else 0.0
        return (1 - p_edge) * stats.binom.sf(m - s_w - 1, m, f)

    decoded = stats.binom.sf(n - s_e - 1, n, edge_cdf(1e9))
    survival = lambda t: 1.0 - stats.binom.sf(n - s_e - 1, n, edge_cdf(t)) / decoded  # noqa: E731
    return integrate.quad(survival, 0, 60, limit=400, points=[edge_delay, edge_delay + load])[0], decoded


@pytest.mark.parametrize("s_e,s_w", [(0, 0), (1, 1), (2, 0), (0, 3)])
def test_hgc_identical_nodes_with_failures(s_e, s_w):
    topo = Topology((4, 4, 4))
    x = dist(dist="shifted_exponential", shift=1.0, rate=2.0)
    model = TimingModel.homogeneous(topo, x, edge_uplink=Constant(0.05), worker_failure=0.05, edge_failure=0.1)
    load = (s_e + 1) * (s_w + 1) / 12
    result = evaluate(model, strategy("hgc", topo, load, s_e=s_e, s_w=s_w))
    exact, decoded = hgc_identical_by_integration(x, 3, 4, s_e, s_w, load, 0.05, 0.05, 0.1)
    assert result.decode_probability == pytest.approx(decoded, rel=1e-9)
    assert result.expected_time == pytest.approx(exact, rel=RTOL)
    assert result.effective_time == pytest.approx(exact / decoded, rel=RTOL)


def test_partial_selection_equals_restricted_model():
    model = TimingModel.homogeneous(Topology((3, 4, 2)), dist(dist="exponential", mean=1.0),
                                    overhead=dist(dist="exponential", mean=0.1))
    model = TimingModel(model.topology, tuple(d.scaled(1 + 0.1 * i) for i, d in enumerate(model.worker_compute)),
                        *[getattr(model, f) for f in ("worker_overhead", "worker_uplink", "edge_process",
                                                      "edge_uplink", "per_vector")])
    edges, workers = (0, 1), ((0, 2), (1, 2, 3))
    st = make_strategy("hgc", model.topology, edges=edges, workers=workers, load=2 / 5, s_e=0, s_w=1)
    sub = model.restrict(edges, workers)
    full = strategy("hgc", sub.topology, 2 / 5, s_e=0, s_w=1)
    assert expected_time(model, st) == pytest.approx(expected_time(sub, full), rel=1e-9)


# ----------------------------------------------------------------------------------------------------
# Search grids, CDF output, errors

def test_search_grid_agrees_with_accurate_evaluation():
    model = TimingModel.homogeneous(Topology((5, 5, 3, 6)), dist(dist="shifted_exponential", shift=1.0, rate=2.0),
                                    overhead=dist(dist="exponential", mean=0.02),
                                    edge_uplink=dist(dist="exponential", rate=20), per_vector=0.005)
    evaluator = Evaluator(model)
    strategies = [make_strategy("hgc", model.topology, s_e=a, s_w=b) for a, b in [(0, 0), (1, 1), (2, 2), (2, 0)]]
    means, decoded = evaluator.expected_times(strategies)
    for st, mean in zip(strategies, means):
        assert mean == pytest.approx(evaluator.evaluate(st).expected_time, rel=2e-3)
    assert np.allclose(decoded, 1.0)


def test_cdf_and_quantiles_are_consistent():
    model = TimingModel.homogeneous(Topology((3, 3)), dist(dist="exponential", mean=1.0), worker_failure=0.02)
    result = evaluate(model, strategy("hgc", model.topology, 2 / 6, s_e=0, s_w=1))
    assert np.all(np.diff(result.cdf) >= -1e-12)
    assert result.cdf[-1] == pytest.approx(result.decode_probability, rel=1e-9)
    median = float(result.quantile(0.5))
    assert float(np.interp(median, result.times, result.cdf / result.decode_probability)) == pytest.approx(0.5, abs=1e-3)
    assert Evaluator(model).cdf(result.strategy, np.array([0.0, median, 1e6]))[0] == 0.0


def test_flat_gc_with_relay_queue_is_not_analytic():
    model = TimingModel.homogeneous(Topology((3, 3)), dist(dist="exponential", mean=1.0), per_vector=0.01)
    with pytest.raises(NotAnalyticError):
        evaluate(model, strategy("flat_gc", model.topology, 1 / 6, s=0))


def test_inconsistent_strategies_are_refused():
    model = TimingModel.homogeneous(Topology((2, 2)), dist(dist="exponential", mean=1.0))
    with pytest.raises(ValueError):
        evaluate(model, strategy("hgc", model.topology, 1.0, s_e=0, s_w=2))
    with pytest.raises(ValueError):
        evaluate(model, strategy("hgc", model.topology, 1.0, s_e=2, s_w=0))


# ----------------------------------------------------------------------------------------------------
# Agreement with the Monte Carlo simulator on every example config

def example_configs() -> list[Path]:
    """Configs in configs/ that are experiments (not sweeps) and have a scheme the evaluator covers."""
    out = []
    for path in sorted((REPO / "configs").glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        if not isinstance(raw, dict) or "grid" in raw or "base" in raw:
            continue
        schemes = raw.get("schemes", ["uncoded", "hgc"])
        kinds = {s if isinstance(s, str) else s.get("scheme") for s in schemes}
        if kinds <= {"flat_gc"}:
            continue
        out.append(path)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("path", example_configs(), ids=lambda p: p.stem)
def test_agrees_with_monte_carlo_on_example_configs(path):
    from hgc.config import load_config
    from hgc.optimizer import best_hgc_tolerances
    from hgc.simulation import run_strategies

    config = load_config(path)
    model, topo = config.timing, config.topology
    strategies = {make_strategy("uncoded", topo)}
    from hgc.optimizer.hetero import allocate_on

    for spec in config.schemes:
        if spec.kind == "hgc" and spec.s_e != "auto" and spec.s_w != "auto":
            if spec.get("allocation", "equal") == "equal":
                strategies.add(make_strategy("hgc", topo, s_e=int(spec.s_e), s_w=spec.s_w))
            else:                                   # unbalanced per-worker loads
                strategies.add(allocate_on(model, int(spec.s_e), spec.s_w, spec.get("allocation"))[0])
    strategies.add(best_hgc_tolerances(model))
    strategies = sorted(strategies, key=lambda st: (st.kind, st.s_e or 0, str(st.s_w), str(st.worker_loads)))
    trials = 1_000_000 if topo.n_workers <= 40 else 200_000
    run = run_strategies(model, strategies, seed=12345, trials=trials)
    evaluator = Evaluator(model)
    for st, stats_ in zip(strategies, run.statistics):
        analytic = evaluator.evaluate(st).expected_time
        z = (analytic - stats_.mean_time) / stats_.sem
        assert abs(z) <= 4.0, f"{path.stem} {st.kind}({st.s_e},{st.s_w}): analytic {analytic} vs MC {stats_.mean_time} (z={z:.2f})"


@pytest.mark.parametrize("spec", [s for s in FAMILIES if s["dist"] != "bimodal"], ids=lambda s: s["dist"])
def test_stop_loss_matches_quadrature(spec):
    d = dist(**spec)
    for point in (0.2, 1.7, 4.0):
        numeric = integrate.quad(lambda u: 1.0 - float(d.cdf(u)), point, np.inf, limit=400)[0]
        assert d.stop_loss(np.array([point]))[0] == pytest.approx(numeric, rel=1e-7, abs=1e-12)
