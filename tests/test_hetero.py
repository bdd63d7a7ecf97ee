"""Heterogeneity-aware HGC (issue 13): unbalanced allocations, per-edge tolerances, the load bound for a
load profile (Theorem C of docs/theory.md), and the optimizer that chooses all of it.

* every admissible straggler pattern decodes for random unbalanced allocations with per-edge ``s_w``;
* the profile bound ``λ*`` is met by :func:`profile_allocation` and no allocation of the family beats it
  (random allocations, exact arithmetic); equal weights give Theorem 1;
* ``hetero_greedy`` is never worse than JNCSS (ties on homogeneous systems), is within a small tolerance of
  ``hetero_exhaustive`` on small systems and is clearly better on a system whose speeds spread 4x
  (analytic and Monte Carlo);
* ``timing.speed_profile`` gives the documented speeds and is validated like every other key.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hgc.analytic import Evaluator
from hgc.codes import (build_code, edge_capacity, hgc_allocation, load_lower_bound, per_edge_tolerances,
                       profile_allocation, profile_load_bound, quantize_shares, waterfill_exact)
from hgc.errors import ConfigError
from hgc.optimizer import greedy_jncss
from hgc.optimizer.hetero import allocate_matrix, hetero_exhaustive, hetero_greedy, waterfill, waterfill_rows
from hgc.optimizer.scoring import objective
from hgc.simulation import run_strategies
from hgc.testing import random_small_system, spread_system
from hgc.timing import parse_timing, speed_profile
from hgc.topology import Topology
from hgc.verify import check_code

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------------------------------
# Random unbalanced allocations


@st.composite
def unbalanced_case(draw):
    """A small system, tolerances with per-edge s_w, and random admissible float shares made exact."""
    workers = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    n = len(workers)
    s_e = draw(st.integers(0, n - 1))
    s_w = tuple(draw(st.integers(0, m - 1)) for m in workers)
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    # random positive weights, water-filled so that every share is <= 1 and the totals are right
    f = waterfill(rng.uniform(0.05, 1.0, n), s_e + 1)
    g = [waterfill(rng.uniform(0.05, 1.0, m), s + 1) for m, s in zip(workers, s_w)]
    edge, inner = quantize_shares(workers, s_e, list(s_w), f, g, partitions=24)
    return workers, s_e, s_w, edge, inner, seed


@SETTINGS
@given(unbalanced_case())
def test_unbalanced_codes_decode_every_admissible_pattern(case):
    workers, s_e, s_w, edge, inner, seed = case
    alloc = hgc_allocation(workers, s_e, list(s_w), edge_shares=edge, worker_shares=inner)
    assert sum(alloc.edge_shares) == s_e + 1 and max(alloc.edge_shares) <= 1
    code = build_code("hgc", workers, s_e=s_e, s_w=list(s_w), edge_shares=edge, worker_shares=inner,
                      rng=np.random.default_rng(seed))
    # the code's per-worker loads are the allocation's
    held = (code.encoding[:, :, 0] != 0).sum(axis=1) / code.n_partitions
    np.testing.assert_allclose(held, [float(x) for x in alloc.worker_loads], atol=1e-12)
    check = check_code(code, max_patterns=10**6, rng=np.random.default_rng(seed))
    # the number of maximal patterns: choose s_e dropped edges, then s_w[i] of each surviving edge's workers
    n_patterns = sum(math.prod(math.comb(workers[i], s_w[i]) for i in alive)
                     for alive in itertools.combinations(range(len(workers)), len(workers) - s_e))
    assert check.patterns == n_patterns
    assert check.wrong == 0 and check.undecodable == 0, check
    assert check.max_rel_error <= 1e-9, check


# ----------------------------------------------------------------------------------------------------
# The load bound for a profile (Theorem C)


@st.composite
def profile_case(draw):
    workers = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=5)))
    n = len(workers)
    s_e = draw(st.integers(0, n - 1))
    s_w = tuple(draw(st.integers(0, m - 1)) for m in workers)
    weights = [[draw(st.integers(1, 8)) for _ in range(m)] for m in workers]
    return workers, s_e, s_w, weights, draw(st.integers(0, 2**31 - 1))


@SETTINGS
@given(profile_case())
def test_profile_allocation_meets_its_bound_and_random_allocations_never_beat_it(case):
    workers, s_e, s_w, weights, seed = case
    scale, alloc = profile_allocation(workers, s_e, list(s_w), weights)
    assert sum(alloc.edge_shares) == s_e + 1
    offsets = np.cumsum((0,) + workers)
    loads = alloc.worker_loads
    ratios = [loads[offsets[i] + j] / weights[i][j] for i in range(len(workers)) for j in range(workers[i])]
    assert max(ratios) == scale                             # met with equality (exact fractions)
    for i, m in enumerate(workers):                         # per-edge identity of the construction
        assert sum(loads[offsets[i]:offsets[i + 1]]) == (s_w[i] + 1) * alloc.edge_shares[i]
    # any other admissible allocation has max load/weight >= λ*
    rng = np.random.default_rng(seed)
    for _ in range(20):
        f = waterfill(rng.uniform(0.01, 1.0, len(workers)), s_e + 1)
        g = [waterfill(rng.uniform(0.01, 1.0, m), s + 1) for m, s in zip(workers, s_w)]
        edge, inner = quantize_shares(workers, s_e, list(s_w), f, g, partitions=60)
        other = hgc_allocation(workers, s_e, list(s_w), edge_shares=edge, worker_shares=inner)
        worst = max(other.worker_loads[offsets[i] + j] / weights[i][j]
                    for i in range(len(workers)) for j in range(workers[i]))
        assert worst >= scale


@SETTINGS
@given(profile_case())
def test_profile_bound_is_the_minimum_of_max_weighted_load(case):
    """λ* against a direct characterisation: the largest λ with Σ_i min(1, λ c_i) <= s_e + 1 is attained,
    where c_i is the edge capacity; c_i itself satisfies Σ_j min(w_j, c_i) = (s_w[i]+1) c_i."""
    workers, s_e, s_w, weights, _ = case
    scale = profile_load_bound(workers, s_e, list(s_w), weights)
    caps = [edge_capacity(w, s) for w, s in zip(weights, s_w)]
    for w, s, c in zip(weights, s_w, caps):
        assert sum(min(Fraction(x), c) for x in w) == (s + 1) * c
    assert sum(min(Fraction(1), scale * c) for c in caps) == s_e + 1
    # a slightly smaller scale cannot carry s_e + 1 copies
    assert sum(min(Fraction(1), scale * Fraction(999, 1000) * c) for c in caps) < s_e + 1


@pytest.mark.parametrize("workers,s_e,s_w", [((5, 5, 3, 6), 1, 1), ((4, 4, 4), 2, 3), ((2, 2, 9), 1, 0),
                                             ((3, 6), 0, (2, 1))])
def test_equal_weights_give_theorem_1(workers, s_e, s_w):
    weights = [[1] * m for m in workers]
    tol = per_edge_tolerances(workers, s_w)
    assert profile_load_bound(workers, s_e, s_w, weights) == load_lower_bound(workers, s_e, tol)
    if isinstance(s_w, int) and (s_e + 1) * max(workers) <= sum(workers):
        assert load_lower_bound(workers, s_e, tol) == Fraction((s_e + 1) * (s_w + 1), sum(workers))


def test_waterfill_exact_and_float_versions_agree():
    rng = np.random.default_rng(3)
    for _ in range(50):
        w = rng.integers(0, 9, size=rng.integers(2, 8))
        total = int(rng.integers(1, max(2, (w > 0).sum()) + 1))
        if (w > 0).sum() < total:
            continue
        level, shares = waterfill_exact([int(x) for x in w], total)
        assert sum(shares) == total and max(shares) <= 1
        assert all(s == min(1, Fraction(int(x)) / level) for s, x in zip(shares, w) if x > 0)
        f_shares, f_level = waterfill_rows(w[None, :].astype(float), [total])
        np.testing.assert_allclose(f_shares[0], [float(s) for s in shares], atol=1e-12)


def test_allocate_matrix_gamma_zero_is_theorem_1_and_one_is_proportional():
    speeds = np.array([[1.0, 0.5, 0.25], [0.8, 0.8, 0.0]])
    f, g = allocate_matrix(speeds, 0, [1, 0], 0.0, 0.0)
    loads = f[:, None] * g
    present = speeds > 0
    np.testing.assert_allclose(loads[present], (0 + 1) / (3 / 2 + 2 / 1))   # (s_e+1)/Σ m_i/(s_w[i]+1)
    f, g = allocate_matrix(speeds, 1, [1, 0], 0.0, 0.0)                      # both edges capped at f = 1
    np.testing.assert_allclose((f[:, None] * g)[present], [2 / 3] * 3 + [1 / 2] * 2)
    f, g = allocate_matrix(np.array([[1.0, 0.5, 0.5, 0.25]]), 0, [0], 1.0, 1.0)
    np.testing.assert_allclose(f[0] * g[0], np.array([1.0, 0.5, 0.5, 0.25]) / 2.25)


# ----------------------------------------------------------------------------------------------------
# The optimizer


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_greedy_is_never_worse_than_jncss(seed):
    model = random_small_system(seed)
    jncss = greedy_jncss(model)
    result = hetero_greedy(model, jncss=jncss)
    assert result.objective <= jncss.objective * (1 + 1e-9)
    # its objective is that of the strategy it returns, evaluated accurately
    assert result.objective == pytest.approx(objective(Evaluator(model).evaluate(result.strategy)), rel=2e-3)


def test_homogeneous_system_ties_with_jncss():
    model = spread_system(3, 4, 1.0)
    jncss = greedy_jncss(model)
    result = hetero_greedy(model, jncss=jncss)
    assert result.objective <= jncss.objective * (1 + 1e-9)
    assert result.objective >= jncss.objective * (1 - 0.01)   # nothing to gain from unequal shares


@pytest.mark.parametrize("model", [spread_system(2, 3, 4.0), spread_system(3, 2, 3.0, across="edges"),
                                   spread_system(2, [2, 3], 6.0)], ids=["2x3", "3x2-edges", "2x(2,3)"])
def test_greedy_is_close_to_exhaustive_on_small_systems(model):
    greedy = hetero_greedy(model)
    exhaustive = hetero_exhaustive(model)
    assert exhaustive.space is not None and exhaustive.space > 0
    assert greedy.objective <= exhaustive.objective * 1.02


def test_clearly_better_than_jncss_when_speeds_spread_4x():
    model = spread_system(4, 5, 4.0)
    jncss = greedy_jncss(model)
    result = hetero_greedy(model, jncss=jncss)
    assert result.gain >= 0.08 / 0.92                          # >= 8 % lower effective time, analytically
    assert len({x for row in result.strategy.worker_loads for x in row}) > 1   # really unbalanced
    # Monte Carlo agrees (both strategies on the same draws)
    mc = run_strategies(model, [jncss.strategy, result.strategy], trials=20_000, seed=5)
    t_jncss, t_hetero = (stat.mean for stat in mc.statistics)
    assert t_hetero <= 0.92 * t_jncss
    assert t_hetero == pytest.approx(result.evaluation.expected_time, rel=0.02)


# ----------------------------------------------------------------------------------------------------
# timing.speed_profile


def test_speed_profile_values():
    topo = Topology((2, 3))
    np.testing.assert_allclose(speed_profile(topo, 5.0), [1.0, 0.8, 0.6, 0.4, 0.2])
    np.testing.assert_allclose(speed_profile(topo, 4.0, "edges"), [1.0, 0.25, 1.0, 0.625, 0.25])
    np.testing.assert_allclose(speed_profile(Topology((1, 1)), 3.0, "edges"), [1.0, 1.0])
    np.testing.assert_allclose(speed_profile(topo, 1.0), np.ones(5))


def test_speed_profile_scales_compute_times_and_composes_with_overrides():
    topo = Topology((2, 2))
    raw = {"worker": {"compute": {"dist": "exponential", "mean": 1.0}},
           "overrides": [{"edges": [1], "worker": {"speed": 0.5}}],
           "speed_profile": {"spread": 4}}
    model = parse_timing(raw, topo)
    means = [d.mean for d in model.worker_compute]
    np.testing.assert_allclose(means, [1.0, 1 / 0.75, 1 / (0.5 * 0.5), 1 / (0.5 * 0.25)])


@pytest.mark.parametrize("profile,key", [({"spread": 0.5}, "timing.speed_profile.spread"),
                                         ({"spread": 2, "across": "rows"}, "timing.speed_profile.across"),
                                         ({"across": "edges"}, "timing.speed_profile"),
                                         ({"spread": 2, "slope": 1}, "timing.speed_profile"),
                                         ("fast", "timing.speed_profile")])
def test_speed_profile_validation(profile, key):
    raw = {"worker": {"compute": {"dist": "exponential", "mean": 1.0}}, "speed_profile": profile}
    with pytest.raises(ConfigError) as info:
        parse_timing(raw, Topology((2, 2)))
    assert info.value.key.startswith(key)


# ----------------------------------------------------------------------------------------------------
# The CLI: per-edge s_w, allocations, hgc_hetero and speed profiles end to end

CLI_BASE = """
name: tiny-hetero
seed: 3
trials: 4000
topology: {edges: 3, workers: [2, 3, 3]}
timing:
  worker:
    compute: {dist: shifted_exponential, shift: 1.0, rate: 2.0}
    overhead: {dist: exponential, mean: 0.05}
  speed_profile: {spread: 3}
"""


def test_simulate_reports_per_worker_loads_for_unbalanced_schemes(cli, write_config, tmp_path):
    import pandas as pd

    config = write_config(CLI_BASE + "schemes:\n  - hgc_jncss\n  - hgc_hetero\n"
                          "  - {scheme: hgc, s_e: 1, s_w: [1, 2, 1], allocation: speed}\n"
                          "  - {scheme: hgc, s_e: 1, s_w: [1, 2, 1]}\n")
    result = cli("simulate", config, "--quiet", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("label")
    speed = rows.loc["hgc(s_e=1,s_w=[1,2,1],allocation=speed)"]
    assert speed["load_min"] < speed["load_mean"] < speed["load"]          # unbalanced
    equal = rows.loc["hgc(s_e=1,s_w=[1,2,1])"]
    # the default shares give every worker the same load (s_e+1) / Σ m_i/(s_w[i]+1), even with per-edge s_w
    assert equal["load_min"] == equal["load"] == pytest.approx(2 / (2 / 2 + 3 / 3 + 3 / 2))
    assert rows.loc["hgc_hetero", "effective_time"] <= rows.loc["hgc_jncss", "effective_time"] * 1.02


@pytest.mark.parametrize("scheme, key, fragment", [
    ("{scheme: hgc, s_e: 1, s_w: [1, 1]}", "schemes[0].s_w", "one tolerance per edge (3)"),
    ("{scheme: hgc, s_e: 1, s_w: [1, 3, 1]}", "schemes[0].s_w[1]", "must be <= 2"),
    ("{scheme: hgc, s_e: 1, s_w: 1, allocation: fast}", "schemes[0].allocation", "expected one of"),
    ("{scheme: hgc, s_e: auto, s_w: 1, allocation: speed}", "schemes[0].allocation", "needs fixed s_e"),
    ("{scheme: hgc_hetero, s_e: 1}", "schemes[0].s_e", "unknown key"),
])
def test_bad_heterogeneity_keys_exit_2_with_one_line(cli, write_config, scheme, key, fragment):
    config = write_config(CLI_BASE + f"schemes:\n  - {scheme}\n", name="bad.yaml")
    result = cli("simulate", config, "--quiet")
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in result.output
    assert f"bad.yaml: {key}: " in message and fragment in message


def test_verify_train_and_sweep_run_unbalanced_schemes(cli, write_config, tmp_path):
    import pandas as pd

    schemes = ("schemes:\n  - hgc_hetero\n  - {scheme: hgc, s_e: 1, s_w: [1, 2, 1], allocation: speed}\n"
               "  - {scheme: hgc, s_e: 0, s_w: [0, 1, 2], allocation: optimized}\n")
    config = write_config(CLI_BASE + schemes)
    result = cli("verify", config, "--quiet", "--out", tmp_path / "verify")
    assert result.exit_code == 0, result.output
    checked = pd.read_csv(tmp_path / "verify" / "verify.csv")
    assert len(checked) == 3 and (checked["max_rel_error"] <= 1e-9).all()
    train = write_config(CLI_BASE + schemes + "train: {dataset: synthetic_regression, model: least_squares, "
                         "samples: 3000, features: 5, iterations: 3}\n", name="train.yaml")
    result = cli("train", train, "--quiet", "--out", tmp_path / "train")
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(tmp_path / "train" / "train_summary.csv")
    assert len(summary) == 3 and (summary["max_grad_rel_error"] <= 1e-8).all()
    assert (summary["undecodable_iterations"] == 0).all()
    sweep = write_config("name: spread\nbase:\n" + "\n".join("  " + line for line in (CLI_BASE + (
        "schemes:\n  - uncoded\n  - {scheme: hgc, s_e: 1, s_w: [1, 2, 1], allocation: speed}\n")).splitlines())
        + "\ngrid:\n  timing.speed_profile.spread: [1, 4]\n", name="sweep.yaml")
    result = cli("sweep", sweep, "--executor", "serial", "--quiet", "--out", tmp_path / "sweep")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "sweep" / "sweep.csv")
    assert sorted(set(table["timing.speed_profile.spread"])) == [1, 4]
    unbalanced = table[table.scheme == "hgc"].set_index("timing.speed_profile.spread")
    assert unbalanced.loc[1, "load_min"] == unbalanced.loc[1, "load"]     # equal speeds: equal loads
    assert unbalanced.loc[4, "load_min"] < unbalanced.loc[4, "load"]
