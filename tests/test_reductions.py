"""Shorter coded messages end to end: timing, the analytic evaluator against Monte Carlo, the optimizer's
reduction search (JNCSS included), verify and train. The codes themselves: tests/test_codes_reduction.py."""

from __future__ import annotations

import copy
from fractions import Fraction
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from hgc.analytic import Evaluator
from hgc.codes import build_code, straggler_patterns
from hgc.config import config_from_mapping, load_config
from hgc.experiment import simulate
from hgc.optimizer.exhaustive import exhaustive_jncss, exhaustive_size
from hgc.optimizer.flat import flat_reductions
from hgc.optimizer.greedy import greedy_jncss
from hgc.optimizer.tolerances import REDUCTIONS, admissible_pairs, best_hgc_tolerances, reduction_pairs
from hgc.schemes import make_strategy
from hgc.training import train
from hgc.verify import check_code

REPO = Path(__file__).resolve().parents[1]

LINKS = {
    "name": "links",
    "seed": 7,
    "trials": 40000,
    "topology": {"edges": 3, "workers": 3},
    "timing": {
        "worker": {"compute": {"dist": "shifted_exponential", "shift": 0.6, "mean": 0.4},
                   "overhead": {"dist": "exponential", "mean": 0.02},
                   "uplink": {"dist": "exponential", "mean": 0.01},
                   "per_vector": 0.3},
        "edge": {"uplink": {"dist": "exponential", "mean": 0.02}, "per_vector": 0.4},
    },
    "schemes": ["uncoded"],
}


def links_config(**timing_changes):
    raw = copy.deepcopy(LINKS)
    for key, value in timing_changes.items():
        section, leaf = key.split("__")
        raw["timing"][section][leaf] = value
    return config_from_mapping(raw)


# ----------------------------------------------------------------------------------------------------
# Exact decoding over every admissible pattern, and the load bound, for every reduction

@pytest.mark.parametrize("ell_e,ell_w", [(a, b) for a in (1, 2, 3) for b in (1, 2, 3)])
def test_every_admissible_hgc_code_decodes_every_pattern_and_meets_the_bound(ell_e, ell_w):
    workers = (3, 4, 4) if ell_e < 3 else (3, 3, 3)      # ℓ_e = 3 edges of 3: only equal edges balance
    pairs = admissible_pairs(list(workers), ell_e, ell_w)
    assert pairs, (ell_e, ell_w)
    for s_e, s_w in pairs:
        code = build_code("hgc", workers, s_e=s_e, s_w=s_w, reduction_e=ell_e, reduction_w=ell_w,
                          rng=np.random.default_rng(0))
        assert code.load == pytest.approx((s_e + ell_e) * (s_w + ell_w) / sum(workers))
        assert (code.worker_message_length, code.edge_message_length) == (Fraction(1, ell_e * ell_w),
                                                                            Fraction(1, ell_e))
        check = check_code(code, max_patterns=10 ** 6, rng=np.random.default_rng(1))
        assert check.exhaustive
        # every admissible pattern: s_e edges out, s_w workers out of every other edge
        expected = sum(np.prod([len(list(combinations(range(workers[i]), s_w))) for i in range(3) if i not in out])
                       for out in combinations(range(3), s_e))
        assert check.patterns == expected
        assert check.failures == 0 and check.max_rel_error < 1e-9, (s_e, s_w, check)


@pytest.mark.parametrize("ell", [1, 2, 3, 4])
def test_every_flat_code_decodes_every_pattern_and_meets_the_bound(ell):
    workers = (3, 3, 2)
    big_n = sum(workers)
    for s in range(big_n - ell + 1):
        code = build_code("flat_gc", workers, s=s, reduction=ell, rng=np.random.default_rng(0))
        assert code.load == pytest.approx((s + ell) / big_n)
        assert code.worker_message_length == Fraction(1, ell)
        masks = straggler_patterns(big_n, s, None, 10 ** 6)[0]
        assert len(masks) == len(list(combinations(range(big_n), s)))
        check = check_code(code, max_patterns=10 ** 6, rng=np.random.default_rng(1))
        assert check.failures == 0 and check.max_rel_error < 1e-9, (s, check)


# ----------------------------------------------------------------------------------------------------
# Timing: messages of length 1/ℓ cost per_vector/ℓ; the evaluator agrees with Monte Carlo

def test_constant_delays_charge_per_vector_over_the_reduction():
    """Constant delays: T = load·X + Y + U + β_w/(ℓ_e ℓ_w) + β_e/ℓ_e + V by hand."""
    raw = copy.deepcopy(LINKS)
    raw["timing"] = {"worker": {"compute": 2.0, "overhead": 0.1, "uplink": 0.01, "per_vector": 0.6},
                     "edge": {"uplink": 0.02, "per_vector": 0.8}}
    raw["schemes"] = [{"scheme": "hgc", "s_e": 0, "s_w": 1, "reduction_e": 2, "reduction_w": 2},
                      {"scheme": "flat_gc", "s": 1, "reduction": 2}]
    raw["trials"] = 50
    config = config_from_mapping(raw)
    summary = simulate(config).summary.set_index("label")
    load = (0 + 2) * (1 + 2) / 9
    hgc = load * 2.0 + 0.1 + 0.01 + 0.6 / 4 + 0.8 / 2 + 0.02
    assert summary.loc["hgc(s_e=0,s_w=1,reduction_e=2,reduction_w=2)", "mean_time"] == pytest.approx(hgc, rel=1e-12)
    # flat: every message arrives at the same moment; each edge relays its 3 half-length messages one
    # after another over its link, the master needs N - s = 8 of the 9: a third message of some edge
    arrive = (1 + 2) / 9 * 2.0 + 0.1 + 0.01 + 0.6 / 2
    flat = arrive + 3 * 0.8 / 2 + 0.02
    assert summary.loc["flat_gc(s=1,reduction=2)", "mean_time"] == pytest.approx(flat, rel=1e-12)


@pytest.mark.parametrize("params", [
    {"s_e": 1, "s_w": 1, "reduction_e": 2, "reduction_w": 1},
    {"s_e": 0, "s_w": 1, "reduction_e": 1, "reduction_w": 2},
    {"s_e": 1, "s_w": 0, "reduction_e": 2, "reduction_w": 2},
    {"s_e": 0, "s_w": 0, "reduction_e": 3, "reduction_w": 1},
])
def test_analytic_evaluator_matches_monte_carlo_for_reduced_codes_with_link_costs(params):
    raw = copy.deepcopy(LINKS)
    raw["schemes"] = [{"scheme": "hgc", **params}]
    config = config_from_mapping(raw)
    result = simulate(config)
    row = result.summary.iloc[-1]
    strategy = result.schemes[-1].strategy
    assert int(strategy.get("reduction_e", 1)) == params["reduction_e"]
    evaluation = Evaluator(config.timing).evaluate(strategy)
    assert abs(evaluation.expected_time - row.mean_time) < 4 * row.sem_time + evaluation.error_estimate, (
        evaluation.expected_time, row.mean_time, row.sem_time)
    # the reduction changes the time: the same tolerances at full length are analytically different
    full = make_strategy("hgc", config.topology, s_e=params["s_e"], s_w=params["s_w"])
    assert Evaluator(config.timing).evaluate(full).expected_time != pytest.approx(evaluation.expected_time, rel=1e-3)


# ----------------------------------------------------------------------------------------------------
# The optimizer's reduction search

def test_reductions_are_searched_only_where_links_charge_for_length():
    free = links_config(worker__per_vector=0.0, edge__per_vector=0.0).timing
    assert reduction_pairs(free) == [(1, 1)]
    assert flat_reductions(free) == (1,)
    edge_only = links_config(worker__per_vector=0.0).timing
    assert reduction_pairs(edge_only) == [(a, 1) for a in REDUCTIONS]      # ℓ_w only shortens worker links
    both = links_config().timing
    pairs = reduction_pairs(both)
    assert len(pairs) == len(REDUCTIONS) ** 2 and pairs[0] == (1, 1)
    assert reduction_pairs(both, 1, 1) == [(1, 1)] and reduction_pairs(free, 2, None) == [(2, 1)]


def test_pruned_reductions_cannot_win_on_free_links():
    """The pruning is exact: with free links every reduced HGC is no faster than ℓ = 1 with the same tolerances."""
    model = links_config(worker__per_vector=0.0, edge__per_vector=0.0).timing
    evaluator = Evaluator(model)
    for s_e, s_w in admissible_pairs([3, 3, 3], 2, 2):
        full = evaluator.evaluate(make_strategy("hgc", model.topology, s_e=s_e, s_w=s_w)).expected_time
        for a, b in ((2, 1), (1, 2), (2, 2)):
            reduced = make_strategy("hgc", model.topology, s_e=s_e, s_w=s_w, reduction_e=a, reduction_w=b)
            assert evaluator.evaluate(reduced).expected_time >= full * (1 - 1e-9)


def test_exhaustive_jncss_counts_reductions_and_beats_full_length_on_costly_links():
    model = links_config().timing
    evaluator = Evaluator(model)
    full = exhaustive_jncss(model, evaluator=evaluator, reduction_e=1, reduction_w=1)
    both = exhaustive_jncss(model, evaluator=evaluator)
    assert both.space == exhaustive_size(model) > full.space == exhaustive_size(model, reduction_e=1, reduction_w=1)
    # the search space is the union over reductions
    assert both.space == sum(exhaustive_size(model, reduction_e=a, reduction_w=b) for a, b in reduction_pairs(model))
    assert both.expected_time <= full.expected_time * (1 + 1e-9)
    assert both.expected_time < 0.9 * full.expected_time
    assert (int(both.strategy.get("reduction_e", 1)), int(both.strategy.get("reduction_w", 1))) != (1, 1)


def test_greedy_jncss_with_reductions_is_never_worse_and_wins_on_the_link_bound_config():
    config = load_config(REPO / "configs" / "link-bound.yaml")
    evaluator = Evaluator(config.timing)
    full = greedy_jncss(config.timing, evaluator=evaluator, reduction_e=1, reduction_w=1)
    reduced = greedy_jncss(config.timing, evaluator=evaluator)
    assert reduced.expected_time <= full.expected_time * (1 + 1e-9)
    assert reduced.expected_time < 0.8 * full.expected_time              # the target: >= 20 % less
    best_full = best_hgc_tolerances(config.timing, evaluator=evaluator)
    assert reduced.expected_time < 0.8 * evaluator.evaluate(best_full).expected_time


def test_greedy_jncss_is_unchanged_on_free_links():
    model = links_config(worker__per_vector=0.0, edge__per_vector=0.0).timing
    evaluator = Evaluator(model)
    auto = greedy_jncss(model, evaluator=evaluator)
    fixed = greedy_jncss(model, evaluator=evaluator, reduction_e=1, reduction_w=1)
    assert auto.strategy == fixed.strategy and auto.expected_time == fixed.expected_time


# ----------------------------------------------------------------------------------------------------
# Config, labels, verify and train

def test_auto_reductions_resolve_with_labels_and_columns():
    raw = copy.deepcopy(LINKS)
    raw["trials"] = 2000
    raw["schemes"] = [{"scheme": "hgc", "s_e": "auto", "s_w": "auto", "reduction_e": "auto", "reduction_w": "auto"},
                      {"scheme": "hgc", "s_e": "auto", "s_w": "auto", "reduction_e": "auto", "reduction_w": 1}]
    summary = simulate(config_from_mapping(raw)).summary
    for label in summary.label[1:]:
        assert "reduction_e=auto→" in label and "reduction_w=" in label and "reduction_w=auto," not in label
    assert {"reduction_e", "reduction_w", "reduction"} <= set(summary.columns)


def test_verify_checks_reduced_codes_over_every_pattern(tmp_path):
    from hgc.verify import verify_config

    raw = copy.deepcopy(LINKS)
    raw["schemes"] = [{"scheme": "hgc", "s_e": "auto", "s_w": 1, "reduction_e": 2, "reduction_w": 2},
                      {"scheme": "flat_gc", "s": 2, "reduction": 3}]
    table = verify_config(config_from_mapping(raw), max_patterns=10 ** 6)
    skipped = table[table.note.str.startswith("skipped")]
    assert list(skipped.s_e) == [2] and "s_e + reduction_e = 4" in skipped.note.iloc[0]
    assert "skipped: skipped" not in skipped.note.iloc[0]
    table = table.drop(skipped.index)
    hgc = table[table.scheme == "hgc"]
    assert len(hgc) == 2 and set(hgc.reduction_e) == {2} and set(hgc.reduction_w) == {2}
    assert set(table[table.scheme == "flat_gc"].reduction) == {3}
    assert table.exhaustive.astype(bool).all() and (table.failures == 0).all()
    assert (table.max_rel_error < 1e-9).all()
    # all patterns: 3^3 (s_e = 0), 3 · 3^2 (s_e = 1; s_e + ℓ_e <= 3 edges), and C(9, 2) for flat
    assert sorted(table.patterns) == [27, 27, 36]


def test_train_with_reductions_gives_exact_gradients_and_the_uncoded_loss_curve():
    raw = copy.deepcopy(LINKS)
    raw["schemes"] = ["uncoded", {"scheme": "hgc", "s_e": 1, "s_w": 1, "reduction_e": 2, "reduction_w": 2},
                      {"scheme": "hgc", "s_e": 0, "s_w": 1, "reduction_e": 1, "reduction_w": 2},
                      {"scheme": "flat_gc", "s": 2, "reduction": 3}, "hgc_jncss"]
    raw["train"] = {"dataset": "synthetic_regression", "samples": 300, "features": 7, "iterations": 8,
                    "learning_rate": 0.3, "l2": 1e-3, "test_fraction": 0.2}
    result = train(config_from_mapping(raw))
    history = result.history
    steps = history[history.iteration > 0]
    assert steps.decoded.astype(bool).all() and (steps.grad_rel_error <= 1e-8).all()
    loss = history.pivot(index="iteration", columns="label", values="loss")
    for label in loss.columns:
        np.testing.assert_allclose(loss[label].to_numpy(), loss["uncoded"].to_numpy(), rtol=1e-9, atol=0)
    times = history.pivot(index="iteration", columns="label", values="sim_time")
    assert times.iloc[-1].nunique() == len(loss.columns)


@pytest.mark.parametrize("workers,worker_link,edge_link", [([5, 6, 7], 0.5, 0.02), ([6, 2, 3, 7], 0.01, 1.0),
                                                           ([3, 6, 5], 0.0, 0.02)])
def test_greedy_jncss_with_reductions_is_not_worse_than_full_length_on_other_systems(workers, worker_link, edge_link):
    """Not a theorem for the greedy (its paths differ), so checked on systems with either link dominant."""
    raw = copy.deepcopy(LINKS)
    raw["topology"] = {"edges": len(workers), "workers": workers}
    raw["timing"]["worker"]["per_vector"] = worker_link
    raw["timing"]["edge"]["per_vector"] = edge_link
    raw["timing"]["overrides"] = [{"edges": [0], "worker": {"speed": 0.5}}]
    model = config_from_mapping(raw).timing
    evaluator = Evaluator(model)
    full = greedy_jncss(model, evaluator=evaluator, reduction_e=1, reduction_w=1)
    auto = greedy_jncss(model, evaluator=evaluator)
    assert auto.objective <= full.objective * (1 + 1e-9)
