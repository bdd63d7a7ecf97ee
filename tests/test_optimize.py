"""JNCSS (greedy and exhaustive), the best flat GC and hgc tolerances, and ``hgc optimize``."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pytest

from hgc.analytic import Evaluator
from hgc.codes import hgc_reachable, worker_load
from hgc.distributions import Bimodal, Constant, parse_distribution
from hgc.errors import ConfigError
from hgc.optimize import OPTIMIZE_COLUMNS, optimize_table
from hgc.optimizer import (JNCSSResult, best_flat_gc, best_hgc_tolerances, exhaustive_jncss, exhaustive_size,
                           greedy_jncss, select_jncss, worker_ranking)
from hgc.schemes import Strategy, make_strategy
from hgc.testing import random_small_system, random_system
from hgc.timing import TimingModel
from hgc.topology import Topology


def dist(**spec):
    return parse_distribution(spec, "test")


SHIFTED = {"dist": "shifted_exponential", "shift": 1.0, "mean": 0.5}


def with_slow_edge(factor: float = 50.0) -> TimingModel:
    """4 edges x 3 workers; the workers of edge 3 are ``factor`` times slower."""
    x = dist(**SHIFTED)
    base = TimingModel.homogeneous(Topology((3, 3, 3, 3)), x, overhead=dist(dist="exponential", mean=0.05))
    compute = tuple(x if w < 9 else x.scaled(factor) for w in range(12))
    return dataclasses.replace(base, worker_compute=compute)


def check_result(model: TimingModel, result: JNCSSResult) -> None:
    """The strategy is admissible and carries the load of the bound on its participating counts."""
    st = result.strategy
    counts = [len(w) for w in st.workers]
    assert st.kind == "hgc" and hgc_reachable(counts, st.s_e, st.s_w)
    assert st.load == pytest.approx(worker_load("hgc", counts, s_e=st.s_e, s_w=st.s_w))
    assert st.load == pytest.approx((st.s_e + 1) * (st.s_w + 1) / sum(counts))
    assert result.seconds > 0 and result.evaluations > 0
    assert result.expected_time == pytest.approx(Evaluator(model).evaluate(st).expected_time, rel=1e-6)


# ----------------------------------------------------------------------------------------------------
# Hand-made cases with a known optimum

@pytest.mark.parametrize("search", [greedy_jncss, exhaustive_jncss], ids=["greedy", "exhaustive"])
def test_hopelessly_slow_edge_is_dropped_or_tolerated(search):
    model = with_slow_edge()
    result = search(model)
    check_result(model, result)
    st = result.strategy
    assert 3 not in st.edges or st.s_e >= 1
    fast_only = exhaustive_jncss(model.restrict((0, 1, 2), ((0, 1, 2),) * 3))
    assert result.objective == pytest.approx(fast_only.objective, rel=1e-3)
    all_nodes = Evaluator(model).evaluate(best_hgc_tolerances(model)).expected_time
    assert result.objective < all_nodes


IDENTICAL = [
    ("shifted-exp+overhead", {"compute": SHIFTED, "overhead": {"dist": "exponential", "mean": 0.05}}),
    ("exponential", {"compute": {"dist": "exponential", "mean": 1.0}}),
    ("bimodal", {"compute": {"dist": "bimodal", "p": 0.1, "fast": {"dist": "constant", "value": 1.0},
                             "slow": {"dist": "constant", "value": 10.0}}}),
]


@pytest.mark.parametrize("workers", [(3, 3, 3), (2, 2, 2, 2)], ids=str)
@pytest.mark.parametrize("name,spec", IDENTICAL, ids=[c[0] for c in IDENTICAL])
def test_identical_nodes_keep_everyone(workers, name, spec):
    model = TimingModel.homogeneous(Topology(workers), **{k: dist(**v) for k, v in spec.items()})
    for result in (greedy_jncss(model), exhaustive_jncss(model)):
        check_result(model, result)
        assert result.strategy.worker_counts == workers


def test_full_replication_of_exponential_workers_is_the_minimum():
    """Exp(1) compute, no other delay: waiting for the fastest of all N with load 1 gives E[T] = 1/N."""
    model = TimingModel.homogeneous(Topology((3, 3, 3)), dist(dist="exponential", mean=1.0))
    result = exhaustive_jncss(model)
    assert (result.strategy.s_e, result.strategy.s_w) == (2, 2)
    assert result.expected_time == pytest.approx(1 / 9, rel=1e-3)


def test_failures_push_jncss_to_tolerate_them():
    """With 20% of workers failing, an uncoded iteration almost never decodes; JNCSS minimises the time
    per successful iteration and must code against the failures."""
    model = TimingModel.homogeneous(Topology((4, 4, 4)), dist(**SHIFTED), worker_failure=0.2, edge_failure=0.05)
    uncoded = Evaluator(model).evaluate(make_strategy("uncoded", model.topology))
    assert uncoded.decode_probability < 0.1
    for result in (greedy_jncss(model), exhaustive_jncss(model)):
        check_result(model, result)
        assert result.strategy.s_w >= 1 and result.decode_probability > 0.8
        assert result.objective == pytest.approx(result.expected_time / result.decode_probability)
        assert result.objective < uncoded.effective_time / 5


# ----------------------------------------------------------------------------------------------------
# The best flat GC (docs/model.md §6)

@pytest.mark.parametrize("shift,mean,best", [(1.0, 0.5, 0), (0.0, 1.0, 9), (0.2, 1.0, 9)])
def test_flat_gc_best_s_is_extreme_under_load_scaled_shifted_exponential(shift, mean, best):
    topo = Topology((4, 6))
    model = TimingModel.homogeneous(topo, dist(dist="shifted_exponential", shift=shift, mean=mean))
    choice = best_flat_gc(model, seed=0)
    assert choice.method == "analytic" and choice.candidates == 10
    assert choice.strategy.s == best
    # the expected time is concave in s, so no intermediate s can win
    evaluator = Evaluator(model)
    times = np.array([evaluator.evaluate(make_strategy("flat_gc", topo, s=s)).expected_time for s in range(10)])
    assert np.all(np.diff(times, 2) <= 1e-9)


def test_flat_gc_best_s_is_intermediate_for_the_bimodal_example():
    model = TimingModel.homogeneous(Topology((10,)), Bimodal(0.1, Constant(1.0), Constant(100.0)))
    choice = best_flat_gc(model, seed=0)
    assert choice.strategy.s == 4
    assert choice.evaluation.expected_time == pytest.approx(0.5 * (1 + 99 * 0.0016349374), rel=1e-3)


def test_flat_gc_with_relay_queue_is_chosen_by_pilot():
    model = TimingModel.homogeneous(Topology((3, 3)), dist(**SHIFTED), per_vector=0.01)
    choice = best_flat_gc(model, seed=3)
    assert choice.method == "pilot" and choice.evaluation is None
    assert 0 <= choice.strategy.s < 6 and "pilot" in choice.note


# ----------------------------------------------------------------------------------------------------
# Exhaustive search is ground truth; greedy is close to it

def test_dominance_pruning_loses_nothing():
    """Workers that are not comparable (fast compute + big overhead vs slow compute + none): the
    exhaustive search must match a brute force over every subset of every edge."""
    topo = Topology((3, 3))
    x = dist(**SHIFTED)
    compute = (x, x.scaled(3.0), x.scaled(1.5), x.scaled(0.7), x, x.scaled(4.0))
    # edge 0: worker 0 beats worker 2 in every component, worker 1 is comparable with neither;
    # edge 1: worker 0 beats worker 2, worker 1 is comparable with neither
    overhead = (dist(dist="exponential", mean=0.4), Constant(0.0), dist(dist="exponential", mean=0.4),
                dist(dist="exponential", mean=0.6), Constant(0.05), dist(dist="exponential", mean=0.6))
    model = TimingModel(topo, compute, overhead, (Constant(0.0),) * 6, (Constant(0.0),) * 2,
                        (dist(dist="exponential", mean=0.02),) * 2, (0.005, 0.005))
    evaluator = Evaluator(model)
    candidates = []
    subsets = [tuple(c) for r in range(1, 4) for c in itertools.combinations(range(3), r)]
    for choice in itertools.product([()] + subsets, repeat=2):
        edges = [i for i in range(2) if choice[i]]
        if not edges:
            continue
        counts = [len(choice[i]) for i in edges]
        for s_e, s_w in itertools.product(range(len(edges)), range(min(counts))):
            if hgc_reachable(counts, s_e, s_w):
                candidates.append(make_strategy("hgc", model.topology, edges=edges,
                                                workers=[choice[i] for i in edges], s_e=s_e, s_w=s_w))
    brute = min(evaluator.evaluate(st).effective_time for st in candidates)
    result = exhaustive_jncss(model)
    assert result.space < len(candidates)              # the pruning did prune
    assert result.objective == pytest.approx(brute, rel=1e-4)


@pytest.mark.slow
def test_greedy_is_close_to_exhaustive_on_random_small_systems():
    gaps = []
    for seed in range(8):
        model = random_small_system(seed)
        greedy, exact = greedy_jncss(model), exhaustive_jncss(model)
        check_result(model, greedy)
        assert greedy.objective >= exact.objective * (1 - 1e-4)   # exhaustive is the optimum
        gaps.append(greedy.objective / exact.objective - 1)
    assert max(gaps) <= 0.05
    assert sum(g <= 0.01 for g in gaps) >= 7


def test_exhaustive_size_counts_the_candidates():
    model = random_small_system(3)
    assert exhaustive_jncss(model).space == exhaustive_size(model)


def test_exhaustive_refuses_a_large_system():
    with pytest.raises(ConfigError) as err:
        exhaustive_jncss(random_system(0, 6, 8), limit=1000)
    assert err.value.key == "method"


@pytest.mark.slow
def test_greedy_on_a_larger_system_improves_on_all_nodes():
    model = random_system(5, 6, 5, distinct=True)
    result = select_jncss(model, "greedy")
    check_result(model, result)
    assert result.method == "greedy"
    all_nodes = Evaluator(model).evaluate(best_hgc_tolerances(model))
    assert result.objective <= all_nodes.effective_time * (1 + 1e-9)


def test_worker_ranking_puts_faster_workers_first():
    model = with_slow_edge()
    slow_first = dataclasses.replace(model, worker_compute=model.worker_compute[::-1])
    ranking = worker_ranking(slow_first)
    assert ranking[0] == (0, 1, 2)
    x = dist(**SHIFTED)
    mixed = dataclasses.replace(model, worker_compute=(x.scaled(3.0), x, x.scaled(2.0)) + model.worker_compute[3:])
    assert worker_ranking(mixed)[0] == (1, 2, 0)


# ----------------------------------------------------------------------------------------------------
# API details

def test_best_hgc_tolerances_respects_fixed_values_and_refuses_impossible_ones():
    model = with_slow_edge()
    assert best_hgc_tolerances(model, s_e=0).s_e == 0
    st = best_hgc_tolerances(model, s_w=2)
    assert st.s_w == 2 and st.edges == (0, 1, 2, 3)
    with pytest.raises(ConfigError) as err:
        best_hgc_tolerances(model, s_w=3)
    assert err.value.key == "schemes"


def test_select_jncss_refuses_an_unknown_method():
    with pytest.raises(ConfigError) as err:
        select_jncss(with_slow_edge(), "annealing")
    assert err.value.key == "method"


QUICK = """
name: opt-test
seed: 5
trials: 20000
topology: {edges: 3, workers: [3, 3, 2]}
timing:
  worker:
    compute: {dist: shifted_exponential, shift: 1.0, mean: 0.5}
    overhead: {dist: exponential, mean: 0.05}
  edge:
    uplink: {dist: exponential, mean: 0.02}
    per_vector: 0.005
  overrides:
    - {edges: [2], worker: {speed: 0.1}}
schemes: [uncoded, hgc_jncss]
"""


def test_optimize_table_rows_and_reproducibility(write_config):
    from hgc.config import load_config

    config = load_config(write_config(QUICK))
    table = optimize_table(config)
    assert list(table.columns) == OPTIMIZE_COLUMNS
    assert list(table["strategy"]) == ["uncoded", "flat_gc", "hgc", "jncss_greedy", "jncss_exhaustive",
                                       "hetero_greedy", "hetero_exhaustive"]
    assert (table["trials"] == 20000).all() and (table["seed"] == 5).all()
    greedy = table.set_index("strategy").loc["jncss_greedy"]
    assert greedy["optimality_gap"] == pytest.approx(0.0, abs=0.01)
    # each greedy row against the exhaustive row of its own search; the others against the best exhaustive one
    rows = table.set_index("strategy")
    effective = rows["effective_time"]
    best = min(effective["jncss_exhaustive"], effective["hetero_exhaustive"])
    assert greedy["optimality_gap"] == pytest.approx(effective["jncss_greedy"] / effective["jncss_exhaustive"] - 1)
    assert rows.loc["hetero_greedy", "optimality_gap"] == pytest.approx(
        effective["hetero_greedy"] / effective["hetero_exhaustive"] - 1)
    assert rows.loc["jncss_exhaustive", "optimality_gap"] == pytest.approx(effective["jncss_exhaustive"] / best - 1)
    assert rows.loc["uncoded", "optimality_gap"] == pytest.approx(effective["uncoded"] / best - 1)
    assert greedy["edges"] == 2 and greedy["edge_ids"] == "0;1"
    assert abs(greedy["z_score"]) < 5 and greedy["speedup"] > 1
    again = optimize_table(config, include_timings=False)
    assert again["optimizer_seconds"].isna().all()
    pd.testing.assert_frame_equal(table.drop(columns="optimizer_seconds"), again.drop(columns="optimizer_seconds"))


def test_cli_optimize_writes_optimize_csv(cli, write_config, tmp_path):
    out = tmp_path / "out"
    result = cli("optimize", write_config(QUICK), "--out", out, "--quiet", "--method", "exhaustive")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "optimize.csv")
    assert list(table.columns) == OPTIMIZE_COLUMNS
    assert "jncss_exhaustive" in set(table["strategy"])
    assert (out / "metadata.json").is_file() and (out / "config.resolved.yaml").is_file()


def test_cli_optimize_bad_input_exits_2(cli, write_config, tmp_path):
    missing = cli("optimize", tmp_path / "nope.yaml")
    assert missing.exit_code == 2 and "Traceback" not in missing.output
    bad = cli("optimize", write_config(QUICK), "--method", "annealing")
    assert bad.exit_code == 2
    big = write_config(QUICK.replace("edges: 3, workers: [3, 3, 2]", "edges: 12, workers: 12"), "big.yaml")
    refused = cli("optimize", big, "--method", "exhaustive", "--out", tmp_path / "big")
    assert refused.exit_code == 2
    assert "--method" in refused.output and len(refused.output.strip().splitlines()) == 1


def test_simulate_runs_the_jncss_choice(write_config):
    from hgc.config import load_config
    from hgc.experiment import simulate

    result = simulate(load_config(write_config(QUICK)), trials=20000)
    row = result.summary.set_index("scheme").loc["hgc_jncss"]
    assert row["edges"] == 2 and row["speedup"] > 1
    assert "JNCSS" in row["note"]
