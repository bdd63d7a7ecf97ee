"""hgc train: coded gradient descent recovers the exact gradient every iteration, and says so when it cannot."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as hst

from hgc.codes import build_code
from hgc.config import config_from_mapping
from hgc.errors import ConfigError
from hgc.output import csv_text
from hgc.rng import Stream, stream
from hgc.schemes import make_strategy
from hgc.simulation import sample_delays
from hgc.training import (GRADIENT_GUARD, PartitionedData, ResponseSchedule, choose_partitions,
                          coded_descent, load_dataset, make_model, response_schedule, train)
from hgc.training.trainer import (STATUS_INEXACT, STATUS_OK, STATUS_REFUSED, STATUS_STRAGGLERS, participating_counts,
                                  wait_for_all)

EXACT_TOL = 1e-8

BASE = {
    "name": "t",
    "seed": 5,
    "trials": 2000,
    "topology": {"edges": 3, "workers": [3, 3, 2]},
    "timing": {
        "worker": {"compute": {"dist": "shifted_exponential", "shift": 1.0, "rate": 2.0},
                   "overhead": {"dist": "exponential", "mean": 0.05}},
        "edge": {"uplink": {"dist": "exponential", "mean": 0.05}, "per_vector": 0.01},
    },
    "schemes": ["uncoded", {"scheme": "flat_gc", "s": 2}, {"scheme": "hgc", "s_e": 1, "s_w": 1},
                {"scheme": "hgc", "s_e": 0, "s_w": 1}],
    "train": {"dataset": "synthetic_classification", "samples": 240, "features": 6, "classes": 3,
              "iterations": 15, "learning_rate": 0.5, "l2": 1e-3, "test_fraction": 0.25},
}


def make_config(**changes):
    raw = copy.deepcopy(BASE)
    for key, value in changes.items():
        section, _, leaf = key.partition("__")
        if leaf:
            raw.setdefault(section, {})[leaf] = value
        else:
            raw[section] = value
    return config_from_mapping(raw)


@pytest.fixture(scope="module")
def classification_run():
    return train(make_config())


# ----------------------------------------------------------------------------------------------------
# Exact recovery and identical trajectories

def test_every_exact_scheme_decodes_the_full_gradient_every_iteration(classification_run):
    history = classification_run.history
    steps = history[history.iteration > 0]
    assert set(steps.label) == {"uncoded", "flat_gc(s=2)", "hgc(s_e=1,s_w=1)", "hgc(s_e=0,s_w=1)"}
    assert (steps.status == STATUS_OK).all()
    assert steps.decoded.astype(bool).all()
    assert (steps.grad_rel_error <= EXACT_TOL).all()
    assert len(steps) == 4 * 15
    summary = classification_run.summary
    assert (summary.undecodable_iterations == 0).all()
    assert (summary.max_grad_rel_error <= EXACT_TOL).all()


def test_exact_schemes_share_the_loss_trajectory_only_times_differ(classification_run):
    history = classification_run.history
    loss = history.pivot(index="iteration", columns="label", values="loss")
    reference = loss["uncoded"].to_numpy()
    for label in loss.columns:
        np.testing.assert_allclose(loss[label].to_numpy(), reference, rtol=1e-9, atol=0)
    acc = history.pivot(index="iteration", columns="label", values="test_accuracy")
    assert (acc.nunique(axis=1) == 1).all()
    assert np.all(np.diff(reference) < 0)             # gradient descent on a convex loss with a safe step
    times = history.pivot(index="iteration", columns="label", values="sim_time")
    assert times.iloc[-1].nunique() == 4               # same model, different clocks
    assert (times.diff().iloc[1:] > 0).all().all()


def test_coded_descent_matches_plain_gradient_descent():
    """An independent numpy implementation of ridge least squares gives the same losses."""
    config = make_config(train={"dataset": "synthetic_regression", "samples": 200, "features": 4,
                                "iterations": 10, "learning_rate": 0.3, "l2": 0.01, "test_fraction": 0.2})
    result = train(config)
    data = load_dataset(config.train, config.seed)
    X, y, n = data.X_train, data.y_train, data.n_train
    w = np.zeros(X.shape[1])
    mask = np.r_[np.ones(X.shape[1] - 1), 0.0]
    expected = []
    for _ in range(10):
        w = w - 0.3 * (X.T @ (X @ w - y) / n + 0.01 * mask * w)
        expected.append(0.5 * np.mean((X @ w - y) ** 2) + 0.005 * np.sum((mask * w) ** 2))
    for label, group in result.history.groupby("label"):
        np.testing.assert_allclose(group.loss.to_numpy()[1:], expected, rtol=1e-10, err_msg=label)
        assert group.train_accuracy.isna().all()        # accuracy is not defined for regression


def test_partial_gradients_are_the_per_partition_sums():
    rng = np.random.default_rng(0)
    X, R = rng.standard_normal((53, 4)), rng.standard_normal((53, 3))
    parts = PartitionedData.build(X, 7)
    G = parts.partial_gradients(R).reshape(7, 4, 3)
    bounds = np.concatenate([[0], np.cumsum(parts.sizes)])
    assert parts.sizes.sum() == 53 and parts.sizes.max() - parts.sizes.min() <= 1
    for k in range(7):
        np.testing.assert_allclose(G[k], X[bounds[k]:bounds[k + 1]].T @ R[bounds[k]:bounds[k + 1]], atol=1e-12)
    np.testing.assert_allclose(G.sum(axis=0), X.T @ R, atol=1e-12)


# ----------------------------------------------------------------------------------------------------
# Too many stragglers: reported, not trained on

def test_failures_beyond_tolerance_are_reported_and_not_applied():
    config = make_config(schemes=["uncoded", {"scheme": "hgc", "s_e": 1, "s_w": 1}],
                         train__iterations=40,
                         timing={**BASE["timing"], "failures": {"worker": 0.15, "edge": 0.05}})
    result = train(config)
    history = result.history
    lost = history[history.status == STATUS_STRAGGLERS]
    assert len(lost) > 0 and set(lost.label) >= {"uncoded"}
    assert (~lost.decoded.astype(bool)).all()
    assert lost.grad_rel_error.isna().all()
    assert np.isfinite(lost.iteration_time).all() and (lost.iteration_time > 0).all()
    for label, group in history.groupby("label"):
        group = group.set_index("iteration")
        for it in group.index[group.status == STATUS_STRAGGLERS]:
            assert group.loss[it] == group.loss[it - 1]      # model unchanged
        ok = group[group.status == STATUS_OK]
        assert (ok.grad_rel_error <= EXACT_TOL).all()
        row = result.summary.set_index("label").loc[label]
        assert row.undecodable_iterations == int((group.status == STATUS_STRAGGLERS).sum())
    # the coded scheme loses fewer iterations than uncoded on the same draws
    counts = result.summary.set_index("label").undecodable_iterations
    assert counts["hgc(s_e=1,s_w=1)"] < counts["uncoded"]


def test_lost_iterations_are_charged_the_wait_for_all_timeout():
    config = make_config(timing={**BASE["timing"], "failures": {"worker": 0.2}})
    strategy = make_strategy("hgc", config.topology, s_e=0, s_w=1)
    sample = sample_delays(config.timing, stream(1, Stream.TRAIN_DELAYS), 200)
    schedule = response_schedule(strategy, config, sample)
    lost = ~np.isfinite(schedule.finish)
    assert lost.any() and (~lost).any()
    assert np.isfinite(schedule.charged).all()
    assert not schedule.worker_used[lost].any() and not schedule.edge_used[lost].any()
    healthy = response_schedule(wait_for_all(strategy), config, replace(sample, worker_failed=None))
    np.testing.assert_array_equal(schedule.charged[lost], healthy.finish[lost])


def _small_problem(kind="hgc", **tol):
    config = make_config()
    data = load_dataset(config.train, config.seed)
    model = make_model("softmax", data.n_features, data.n_classes, 1e-3)
    strategy = make_strategy(kind, config.topology, **tol)
    code = build_code(kind, participating_counts(strategy), partitions=24, **tol)
    return data, model, PartitionedData.build(data.X_train, 24), code


def test_forged_responders_beyond_tolerance_are_refused_by_the_decoder():
    """Even if the timing layer claimed success, too few workers means no update."""
    data, model, parts, code = _small_problem(s_e=1, s_w=1)
    T = 3
    workers = np.ones((T, code.n_workers), bool)
    workers[1, [0, 1]] = False           # edge 0 loses 2 of 3 workers (s_w = 1)
    workers[1, [3, 4]] = False           # edge 1 too: two edges down, s_e = 1
    schedule = ResponseSchedule(np.ones(T), workers, np.ones((T, code.n_edges), bool), np.ones(T))
    traj = coded_descent(data, model, parts, code, schedule, 0.5)
    assert traj.status[1:] == [STATUS_OK, STATUS_REFUSED, STATUS_OK]
    assert traj.decoded[2] is False and np.isnan(traj.grad_rel_error[2])
    assert traj.loss[2] == traj.loss[1]
    assert traj.loss[3] < traj.loss[2]


class _LyingCode:
    """Wraps a code but claims every pattern decodes with weights that are slightly off."""

    def __init__(self, code):
        self._code = code

    def __getattr__(self, name):
        return getattr(self._code, name)

    def decode_batch(self, worker_masks, edge_masks=None):
        d = self._code.decode_batch(worker_masks, edge_masks)
        weights = d.weights * (1 + 1e-3)
        return type(d)(weights, d.residual, d.cond, np.ones_like(d.ok))


def test_a_wrong_decoded_gradient_is_caught_and_not_applied():
    data, model, parts, code = _small_problem(s_e=1, s_w=1)
    T = 2
    schedule = ResponseSchedule(np.ones(T), np.ones((T, code.n_workers), bool),
                                np.ones((T, code.n_edges), bool), np.ones(T))
    traj = coded_descent(data, model, parts, _LyingCode(code), schedule, 0.5)
    assert traj.status[1:] == [STATUS_INEXACT, STATUS_INEXACT]
    assert (traj.grad_rel_error[1:] > GRADIENT_GUARD).all()
    assert traj.loss[2] == traj.loss[0]


@settings(max_examples=12, deadline=None)
@given(workers=hst.lists(hst.integers(2, 4), min_size=2, max_size=4), data=hst.data())
def test_random_topologies_and_straggler_patterns_decode_exactly(workers, data):
    from hgc.codes import admissible_hgc

    s_e, s_w = data.draw(hst.sampled_from(admissible_hgc(workers)))
    code = build_code("hgc", workers, s_e=s_e, s_w=s_w)
    rng = np.random.default_rng(data.draw(hst.integers(0, 2**16)))
    X = rng.standard_normal((max(code.n_partitions, 30), 3))
    R = rng.standard_normal((X.shape[0], 2))
    parts = PartitionedData.build(X, code.n_partitions)
    # random admissible pattern: s_e silent edges, s_w silent workers in every other edge
    edges = np.ones(len(workers), bool)
    edges[rng.choice(len(workers), s_e, replace=False)] = False
    mask = np.concatenate([np.isin(np.arange(m), rng.choice(m, s_w, replace=False), invert=True) for m in workers])
    weights = code.decoding_weights(mask, edges)
    messages = code.encode(parts.partial_gradients(R), workers=mask)
    g = code.combine(weights[:, mask], messages)
    true = (X.T @ R).ravel()
    assert np.linalg.norm(g - true) <= EXACT_TOL * np.linalg.norm(true)


# ----------------------------------------------------------------------------------------------------
# Partitions, determinism, summary

def test_common_partitions_are_the_lcm_and_fall_back_per_scheme():
    from hgc.topology import Topology

    topo = Topology((2, 2, 2))
    strategies = [make_strategy("flat_gc", topo, s=2), make_strategy("hgc", topo, s_e=1, s_w=0)]  # K >= 2, 3
    assert choose_partitions(strategies, None, 100) == ([6, 6], "")
    ks, warning = choose_partitions(strategies, None, 5)
    assert ks == [2, 3] and "own smallest K" in warning
    assert choose_partitions(strategies, 12, 100) == ([12, 12], "")
    with pytest.raises(ConfigError, match="training rows"):
        choose_partitions(strategies, 12, 10)


def test_same_seed_gives_identical_files_and_another_seed_differs(classification_run):
    again = train(make_config())
    assert csv_text(again.history) == csv_text(classification_run.history)
    assert csv_text(again.summary) == csv_text(classification_run.summary)
    other = train(make_config(seed=6))
    assert csv_text(other.history) != csv_text(classification_run.history)


def test_summary_time_to_target_and_speedup(classification_run):
    summary = classification_run.summary.set_index("label")
    history = classification_run.history
    target = classification_run.target_loss
    for label, group in history.groupby("label"):
        first = group[group.loss <= target].iloc[0]
        assert summary.loc[label, "time_to_target"] == pytest.approx(first.sim_time)
        assert summary.loc[label, "sim_time_total"] == pytest.approx(group.sim_time.iloc[-1])
    assert summary.loc["uncoded", "speedup_to_target"] == 1.0
    base = summary.loc["uncoded", "time_to_target"]
    for label in summary.index:
        assert summary.loc[label, "speedup_to_target"] == pytest.approx(base / summary.loc[label, "time_to_target"])


def test_speedup_baseline_is_run_even_when_uncoded_is_not_listed():
    result = train(make_config(schemes=[{"scheme": "hgc", "s_e": 1, "s_w": 1}], train__target_loss=0.9))
    assert list(result.summary.label) == ["hgc(s_e=1,s_w=1)"]
    assert set(result.history.label) == {"hgc(s_e=1,s_w=1)"}
    assert np.isfinite(result.summary.speedup_to_target.iloc[0])


def test_jncss_choice_is_trained_with_exact_gradients():
    result = train(make_config(schemes=["uncoded", "hgc_jncss"], train__iterations=3))
    assert "hgc_jncss" in set(result.summary.label)
    assert (result.history[result.history.iteration > 0].status == STATUS_OK).all()


def test_interrupt_keeps_the_finished_schemes(monkeypatch):
    import hgc.training.trainer as trainer

    real = trainer.coded_descent
    calls = []

    def interrupted_after_one(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "coded_descent", interrupted_after_one)
    result = train(make_config(schemes=["uncoded", {"scheme": "hgc", "s_e": 1, "s_w": 1}], train__iterations=4))
    assert result.interrupted and list(result.summary.label) == ["uncoded"]
    assert set(result.history.label) == {"uncoded"} and len(result.history) == 5
    assert any(w.startswith("interrupted: 1 of 2") for w in result.warnings)

    calls.clear()
    monkeypatch.setattr(trainer, "coded_descent", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):  # nothing finished: nothing to keep
        train(make_config(schemes=["uncoded"], train__iterations=4))
