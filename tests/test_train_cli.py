"""``hgc train`` on the command line: files, columns, the digits example, errors."""

from __future__ import annotations

import pandas as pd

from hgc.training import HISTORY_COLUMNS

SUMMARY_REQUIRED = ["label", "scheme", "iterations", "sim_time_total", "effective_time", "time_to_target",
                    "speedup_to_target",
                    "max_grad_rel_error", "undecodable_iterations"]


def test_digits_example_runs_and_writes_every_file(cli, tmp_path):
    from conftest import CONFIGS

    out = tmp_path / "out"
    result = cli("train", CONFIGS / "train-digits.yaml", "--iterations", "4", "--out", out)
    assert result.exit_code == 0, result.output
    for name in ("train.csv", "train_summary.csv", "config.resolved.yaml", "metadata.json"):
        assert (out / name).is_file()
    history = pd.read_csv(out / "train.csv")
    assert list(history.columns) == HISTORY_COLUMNS
    assert len(history) == 4 * 5
    steps = history[history.iteration > 0]
    assert (steps.grad_rel_error <= 1e-8).all() and (steps.status == "ok").all()
    assert history.groupby("iteration").loss.nunique().max() == 1
    assert (steps.test_accuracy > 0.5).all()            # real digits: accuracy jumps after one step
    summary = pd.read_csv(out / "train_summary.csv")
    assert list(summary.columns[:len(SUMMARY_REQUIRED)]) == SUMMARY_REQUIRED
    assert list(summary.iterations) == [4] * 4
    assert "iterations: 4" in (out / "config.resolved.yaml").read_text()


def test_regression_example_runs(cli, tmp_path):
    from conftest import CONFIGS

    result = cli("train", CONFIGS / "train-regression.yaml", "--iterations", "5", "--out", tmp_path, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    history = pd.read_csv(tmp_path / "train.csv")
    assert set(history.scheme) == {"uncoded", "flat_gc", "hgc"}


def test_bad_train_section_exits_2_naming_the_key(cli, write_config, tmp_path):
    path = write_config("""
        topology: {edges: 2, workers: 2}
        timing: {worker: {compute: {dist: constant, value: 1.0}}}
        train: {dataset: digits, learning_rate: -1}
        """)
    result = cli("train", path, "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "train.learning_rate" in result.stderr and "Traceback" not in result.output


def test_partitions_invalid_for_a_scheme_exit_2(cli, write_config, tmp_path):
    path = write_config("""
        topology: {edges: 2, workers: 2}
        timing: {worker: {compute: {dist: constant, value: 1.0}}}
        schemes: [uncoded, {scheme: hgc, s_e: 1, s_w: 1}]
        train: {dataset: synthetic_classification, samples: 100, iterations: 2}
        data: {partitions: 7}
        """)
    result = cli("train", path, "--out", tmp_path / "o")
    assert result.exit_code == 2, result.output
    assert "data.partitions" in result.stderr


def test_defaulted_dataset_and_model_are_named(cli, write_config, tmp_path):
    path = write_config("""
        topology: {edges: 2, workers: 2}
        timing: {worker: {compute: {dist: constant, value: 1.0}}}
        """)
    result = cli("train", path, "train.iterations=2", "--out", tmp_path / "a")
    assert result.exit_code == 0, result.output
    assert "does not set train.dataset/train.model; using dataset digits, model softmax, 2 iterations" in result.stderr
    result = cli("train", path, "--iterations", "2", "--out", tmp_path / "b")
    assert "using dataset digits, model softmax" in result.stderr
    explicit = cli("train", path, "train.dataset=digits", "train.model=softmax", "--iterations", "2",
                   "--out", tmp_path / "c")
    assert explicit.exit_code == 0 and "note:" not in explicit.stderr
