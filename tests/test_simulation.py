"""The Monte Carlo simulator against closed forms, numerical integration and a per-trial reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from hgc.distributions import Constant, parse_distribution
from hgc.rng import stream
from hgc.schemes import Strategy, make_strategy
from hgc.simulation import (CHUNK_TRIALS, CompiledStrategy, DelaySample, TimeStatistics, run_strategies,
                            sample_delays)
from hgc.timing import TimingModel
from hgc.topology import Topology


def harmonic(n: int) -> float:
    return float(sum(1.0 / k for k in range(1, n + 1)))


def strategy(kind: str, topo: Topology, load: float, **tolerances) -> Strategy:
    return make_strategy(kind, topo, load=load, **tolerances)


def within_sem(stats_: TimeStatistics, expected: float, k: float = 4.0) -> bool:
    return abs(stats_.mean_time - expected) <= k * stats_.sem


def test_uncoded_exponential_closed_form():
    topo = Topology((5, 5, 5, 5))
    rate, n_workers = 2.0, 20
    model = TimingModel.homogeneous(topo, parse_distribution({"dist": "exponential", "rate": rate}, "x"))
    run = run_strategies(model, [strategy("uncoded", topo, 1 / n_workers)], seed=3, trials=200_000)
    # E[max of N i.i.d. Exp(rate)] * load = H_N / rate / N
    assert within_sem(run.statistics[0], harmonic(n_workers) / rate / n_workers)


@pytest.mark.parametrize("s", [0, 3, 9])
def test_flat_gc_shifted_exponential_with_additive_delay(s):
    topo = Topology((4, 6))  # N = 10, relaying edges with no link cost
    shift, rate, overhead = 1.0, 2.0, 0.3
    model = TimingModel.homogeneous(
        topo, parse_distribution({"dist": "shifted_exponential", "shift": shift, "rate": rate}, "x"),
        overhead=Constant(overhead))
    load = (s + 1) / 10
    run = run_strategies(model, [strategy("flat_gc", topo, load, s=s)], seed=11, trials=100_000)
    expected = load * (shift + (harmonic(10) - harmonic(s)) / rate) + overhead  # docs/model.md §10.2 plus the constant
    assert within_sem(run.statistics[0], expected)
    assert run.statistics[0].mean_vectors == pytest.approx(10 - s)


def hgc_expected_time_by_integration(dist, n, m, s_e, s_w, load, edge_delay=0.0) -> float:
    """E[T] for identical nodes: edge CDF = P(Bin(m, F) >= m - s_w), master CDF = P(Bin(n, G) >= n - s_e)."""

    def survival(t: float) -> float:
        f = float(dist.cdf((t - edge_delay) / load)) if t > edge_delay else 0.0
        g = stats.binom.sf(m - s_w - 1, m, f)
        return 1.0 - stats.binom.sf(n - s_e - 1, n, g)

    upper = edge_delay + load * float(dist.ppf(1 - 1e-12))
    value, _ = integrate.quad(survival, 0.0, upper, limit=400, points=[edge_delay + load * dist.lower])
    return value


@pytest.mark.parametrize("s_e, s_w", [(0, 0), (1, 1), (2, 1), (1, 3)])
def test_homogeneous_hgc_matches_numerical_integration(s_e, s_w):
    n, m = 4, 5
    topo = Topology((m,) * n)
    dist = parse_distribution({"dist": "shifted_exponential", "shift": 0.5, "mean": 1.0}, "x")
    model = TimingModel.homogeneous(topo, dist, edge_uplink=Constant(0.01))
    load = (s_e + 1) * (s_w + 1) / (n * m)
    run = run_strategies(model, [strategy("hgc", topo, load, s_e=s_e, s_w=s_w)], seed=5, trials=100_000)
    expected = hgc_expected_time_by_integration(dist, n, m, s_e, s_w, load, edge_delay=0.01)
    assert within_sem(run.statistics[0], expected)


def test_relay_queue_hand_worked_example():
    """One edge, three workers, s = 1: messages at 2.0, 2.2, 6.0 s; 0.5 s per vector on the link."""
    topo = Topology((3,))
    model = TimingModel.homogeneous(topo, Constant(1.0), per_vector=0.5, edge_process=Constant(0.1))
    sample = DelaySample(1, compute=np.array([[3.0], [3.3], [9.0]]), fixed=0.0, edge_delay=np.array([[0.1]]),
                         worker_failed=None, edge_failed=None)
    compiled = CompiledStrategy(strategy("flat_gc", topo, 2 / 3, s=1), model)
    finish, received = compiled.iteration_times(sample)
    # departures: 2.0+0.5 = 2.5; max(2.2, 2.5)+0.5 = 3.0; max(6.0, 3.0)+0.5 = 6.5; +0.1 edge delay
    assert finish[0] == pytest.approx(3.1)
    assert received[0] == 2
    arrivals = compiled._relay_arrivals(np.array([[[2.0], [2.2], [6.0]]]), 0.1)
    assert arrivals.ravel() == pytest.approx([2.6, 3.1, 6.6])


def reference_times(model: TimingModel, st: Strategy, sample: DelaySample) -> np.ndarray:
    """Per-trial, per-edge Python loops straight from the timing model of docs/model.md §5 (slow; the oracle for the vectorised code)."""
    topo = model.topology
    out = np.empty(sample.trials)
    compute = sample.compute.T
    fixed = np.broadcast_to(sample.fixed, sample.compute.shape).T
    edge_delay = np.broadcast_to(sample.edge_delay, (topo.n_edges, sample.trials)).T
    worker_failed = None if sample.worker_failed is None else sample.worker_failed.T
    edge_failed = None if sample.edge_failed is None else sample.edge_failed.T
    for t in range(sample.trials):
        arrivals = []
        for e, positions in zip(st.edges, st.workers):
            if edge_failed is not None and edge_failed[t, e]:
                arrivals += [np.inf] * (len(positions) if st.kind == "flat_gc" else 1)
                continue
            times = []
            for p in positions:
                w = topo.offsets[e] + p
                failed = worker_failed is not None and worker_failed[t, w]
                times.append(np.inf if failed else st.load * compute[t, w] + fixed[t, w])
            times.sort()
            beta = model.per_vector[e]
            if st.kind == "flat_gc":
                departure = -np.inf
                for c in times:
                    departure = max(c, departure) + beta
                    arrivals.append(departure + edge_delay[t, e])
            else:
                k = len(times) - (st.s_w if st.kind == "hgc" else 0)
                arrivals.append(times[k - 1] + beta + edge_delay[t, e])
        arrivals.sort()
        if st.kind == "flat_gc":
            k = len(arrivals) - st.s
        else:
            k = len(arrivals) - (st.s_e if st.kind == "hgc" else 0)
        out[t] = arrivals[k - 1]
    return out


@pytest.mark.parametrize("kind, tolerances", [
    ("uncoded", {}), ("flat_gc", {"s": 4}), ("hgc", {"s_e": 1, "s_w": 1}), ("hgc", {"s_e": 2, "s_w": 0}),
])
def test_vectorised_matches_reference_on_unequal_edges(kind, tolerances):
    topo = Topology((3, 5, 2, 4))
    overrides = {"per_vector": 0.05, "worker_failure": 0.05, "edge_failure": 0.05}
    model = TimingModel.homogeneous(
        topo, parse_distribution({"dist": "exponential", "mean": 1.0}, "x"),
        overhead=parse_distribution({"dist": "uniform", "low": 0.0, "high": 0.2}, "x"),
        edge_process=parse_distribution({"dist": "exponential", "mean": 0.1}, "x"), **overrides)
    # a sub-selection of nodes, as JNCSS produces
    st = make_strategy(kind, model.topology, edges=(0, 1, 3), workers=((0, 2), (0, 1, 2, 4), (1, 2, 3)), load=0.3,
                       **tolerances)
    sample = sample_delays(model, stream(9), 400)
    finish, _ = CompiledStrategy(st, model).iteration_times(sample)
    expected = reference_times(model, st, sample)
    assert np.array_equal(np.isinf(finish), np.isinf(expected)) and np.isinf(expected).any()
    np.testing.assert_allclose(finish, expected, rtol=1e-12)  # the FIFO recursion is unrolled: rounding


def test_failures_counted_not_timed():
    topo = Topology((4, 4))
    model = TimingModel.homogeneous(topo, Constant(1.0), worker_failure=0.1)
    run = run_strategies(model, [strategy("uncoded", topo, 1 / 8)], seed=2, trials=50_000)
    stats_ = run.statistics[0]
    expected = 1 - 0.9 ** 8
    assert abs(stats_.failure_rate - expected) < 4 * np.sqrt(expected * (1 - expected) / 50_000)
    assert stats_.mean_time == pytest.approx(1 / 8)


def test_quantiles_match_numpy_to_histogram_resolution():
    rng = stream(4)
    times = rng.lognormal(0.0, 1.0, 50_000)
    stats_ = TimeStatistics()
    for part in np.array_split(times, 7):
        stats_.add(part, np.ones(part.size))
    for q in (0.01, 0.5, 0.95, 0.99):
        exact = np.quantile(times, q, method="inverted_cdf")
        assert stats_.quantile(q)[0] == pytest.approx(exact, rel=1.5e-4)
    assert stats_.mean_time == pytest.approx(times.mean(), rel=1e-12)
    assert stats_.sem == pytest.approx(times.std(ddof=1) / np.sqrt(times.size), rel=1e-9)


def test_seed_alone_determines_results_and_chunks_are_independent():
    topo = Topology((3, 3))
    model = TimingModel.homogeneous(topo, parse_distribution({"dist": "exponential", "mean": 1.0}, "x"))
    st = [strategy("uncoded", topo, 1 / 6)]
    a = run_strategies(model, st, seed=1, trials=CHUNK_TRIALS + 10).statistics[0]
    b = run_strategies(model, st, seed=1, trials=CHUNK_TRIALS + 10).statistics[0]
    c = run_strategies(model, st, seed=2, trials=CHUNK_TRIALS + 10).statistics[0]
    assert (a.mean_time, a.sem) == (b.mean_time, b.sem)
    assert a.mean_time != c.mean_time
    # the first chunk is the same whatever the total number of trials: its times are a sub-multiset of a
    # longer run's (a different first chunk would leave some histogram bin of the short run uncovered)
    first = run_strategies(model, st, seed=1, trials=CHUNK_TRIALS).statistics[0]
    more = run_strategies(model, st, seed=1, trials=3 * CHUNK_TRIALS)
    assert first.histogram.sum() == CHUNK_TRIALS and more.trials_done == 3 * CHUNK_TRIALS
    assert np.all(more.statistics[0].histogram >= first.histogram)
    assert more.statistics[0].minimum <= first.minimum and more.statistics[0].maximum >= first.maximum
    other = run_strategies(model, st, seed=2, trials=CHUNK_TRIALS).statistics[0]
    assert not np.all(more.statistics[0].histogram >= other.histogram)


@pytest.mark.parametrize("kind, tolerances", [
    ("uncoded", {}), ("flat_gc", {"s": 3}), ("hgc", {"s_e": 1, "s_w": 1}),
])
def test_responders_agree_with_iteration_times(kind, tolerances):
    topo = Topology((3, 5, 4))
    model = TimingModel.homogeneous(topo, parse_distribution({"dist": "exponential", "mean": 1.0}, "x"),
                                    per_vector=0.05, worker_failure=0.02)
    st = make_strategy(kind, model.topology, edges=(0, 1, 2), workers=((0, 1, 2), (0, 1, 2, 3, 4), (0, 1, 2, 3)),
                       load=0.25, **tolerances)
    compiled = CompiledStrategy(st, model)
    sample = sample_delays(model, stream(3), 300)
    finish, worker_used, edge_used = compiled.responders(sample)
    assert np.array_equal(finish, compiled.iteration_times(sample)[0])
    ok = np.isfinite(finish)
    counts = np.array(topo.workers)
    if kind == "flat_gc":
        assert np.all(worker_used[ok].sum(axis=1) >= 12 - 3)
    else:
        s_w = tolerances.get("s_w", 0)
        s_e = tolerances.get("s_e", 0)
        assert np.all(edge_used[ok].sum(axis=1) >= 3 - s_e)
        per_edge = np.add.reduceat(worker_used, [0, 3, 8], axis=1)
        assert np.all(per_edge[ok][edge_used[ok]] >= np.broadcast_to(counts - s_w, per_edge[ok].shape)[edge_used[ok]])


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 10, 13, 17, 32, 40])
def test_sort_along_and_order_statistics_match_numpy(size):
    from hgc.simulation import kth_largest, sort_along

    values = stream(size).random((size, 3, 257))
    values[0, 0, :5] = np.inf
    np.testing.assert_array_equal(sort_along(values, axis=0), np.sort(values, axis=0))
    for rank in range(1, size + 1):
        expected = np.sort(values, axis=0)[size - rank]
        np.testing.assert_array_equal(kth_largest(values, rank, axis=0), expected)
