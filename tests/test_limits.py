"""Hostile and absurd inputs: one line and exit status 2, before anything big is allocated."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd
import pytest

from hgc.config import config_from_mapping, load_config
from hgc.errors import ConfigError
from hgc.limits import (MAX_DELAY, MAX_EDGES, MAX_MEMORY_BYTES, MAX_SAMPLED_DELAYS, MAX_WORKERS, check_delay,
                        check_monte_carlo, monte_carlo_bytes)
from hgc.simulation import CHUNK_TRIALS, chunk_sizes
from hgc.topology import Topology
from hgc.validation import as_float, as_int, describe

BASE = """\
name: absurd
seed: 1
trials: 2000
topology: {edges: 2, workers: 3}
timing:
  worker:
    compute: COMPUTE
schemes: [uncoded, {scheme: hgc, s_e: 1, s_w: 1}]
"""


def _config(compute: str = "{dist: exponential, mean: 1.0}", extra: str = "") -> str:
    return BASE.replace("COMPUTE", compute) + extra


def _one_line_exit_2(result, path, key: str | None = None, fragment: str | None = None) -> str:
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    if key is not None and key.startswith("--"):  # a command-line option: no file to name
        assert line.startswith(f"error: {key}: "), line
    else:
        assert line.startswith(f"error: {path}: "), line
    if key is not None and not key.startswith("--"):
        assert line.startswith(f"error: {path}: {key}: "), line
    if fragment is not None:
        assert fragment in line, line
    return line


# ---------------------------------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("value, fragment", [
    (10**400, "must be <="), (2**63, "must be <="), (float("inf"), "expected an integer"),
    (float("nan"), "expected an integer"), (1.5, "expected an integer"), ("12", "expected an integer"),
])
def test_as_int_refuses_what_is_not_a_representable_integer(value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        as_int(value, "k")


@pytest.mark.parametrize("value, fragment", [
    (10**400, "must be finite"), ("1e999", "must be finite"), (1e-320, "smallest normal"),
    ("x" * 1000, "expected a number"), (float("nan"), "must be finite"), (True, "expected a number"),
])
def test_as_float_refuses_numbers_a_double_cannot_hold(value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        as_float(value, "k")


def test_describe_is_short_and_single_line():
    assert len(describe("x" * 10_000)) <= 60
    assert "\n" not in describe("a\nb") and "\\n" in describe("a\nb")
    assert describe(10**400) == "an integer of 401 digits"


# ---------------------------------------------------------------------------------------------------- values that used to crash


@pytest.mark.parametrize("config, key, fragment", [
    (_config("{dist: [exponential]}"), "timing.worker.compute.dist", "expected a distribution name"),
    (_config(extra="trials2: 1\n"), "trials2", "unknown key"),
    (_config().replace("trials: 2000", f"trials: {10**400}"), "trials", "401 digits"),
    (_config("{dist: lognormal, mu: 1000, sigma: 1}"), "timing.worker.compute.mu", "must be <="),
    (_config("1e308"), "timing.worker.compute", "limit is 1e+09 s"),
    (_config("{dist: constant, value: 1.0e308}"), "timing.worker.compute", "limit is 1e+09 s"),
    (_config("1\n    speed: 1.0e-300"), "timing.worker.speed", "must be >= 1e-06"),
    (_config("{dist: exponential, rate: 1.0e-320}"), "timing.worker.compute.rate", "smallest normal"),
    (_config("{dist: exponential, rate: 1.0e-300}"), "timing.worker.compute", "limit is 1e+09 s"),
    (_config("{dist: exponential, mean: 1.0e-320}"), "timing.worker.compute.mean", "smallest normal"),
    (_config("{dist: exponential, mean: 1.0e-300}"), "timing.worker.compute", "resolution"),
    (_config("{dist: pareto, shape: 1.0e-10, scale: 1}"), "timing.worker.compute", "infinite"),
    (_config("{dist: gamma, shape: 1.0e300, scale: 1}"), "timing.worker.compute", "limit is 1e+09 s"),
    (_config("{dist: weibull, shape: 0.05, scale: 1}"), "timing.worker.compute", "limit is 1e+09 s"),
    (_config("1\n  edge: {per_vector: 1.0e308}"), "timing.edge.per_vector", "must be <= 1e+09"),
    (_config("{dist: bimodal, p: 0.5, fast: 1, slow: 2.0e9}"), "timing.worker.compute.slow", "limit"),
    (_config("6.0e8\n    overhead: 6.0e8"), "timing", "worker 0 of edge 0"),
    (_config("1\n  edge: {per_vector: 4.0e8}"), "timing", "add up to"),
    ("name: \"a\\0b\"\n" + _config().split("\n", 1)[1], "name", "file-name-safe"),
    ("name: " + "x" * 300 + "\n" + _config().split("\n", 1)[1], "name", "at most 100 characters"),
    (_config().replace("edges: 2, workers: 3", "edges: 1000000, workers: 1"), "topology.edges",
     f"must be <= {MAX_EDGES}"),
    (_config().replace("edges: 2, workers: 3", "edges: 10, workers: 100000"), "topology.workers",
     f"at most {MAX_WORKERS} workers"),
    (_config(extra="data: {partitions: 1000000000}\n"), "data.partitions", "must be <="),
    (_config(extra="description: [a]\n"), "description", "expected a string"),
    (_config("1").replace("schemes: [uncoded", "schemes: [{scheme: [hgc]}"), "schemes[0].scheme", "unknown scheme"),
])
def test_bad_values_are_one_line_errors_naming_file_and_key(cli, write_config, tmp_path, config, key, fragment):
    path = write_config(config)
    result = cli("simulate", path, "--quiet", "--out", tmp_path / "out")
    _one_line_exit_2(result, path, key, fragment)
    assert not (tmp_path / "out" / "summary.csv").exists()


def test_check_delay_accepts_the_boundaries_and_refuses_beyond():
    from hgc.distributions import parse_distribution

    check_delay(parse_distribution({"dist": "constant", "value": MAX_DELAY}, "k"), "k")
    check_delay(parse_distribution(0, "k"), "k")  # a zero delay is a legitimate degenerate case
    check_delay(parse_distribution({"dist": "pareto", "shape": 1.2, "scale": 1.0}, "k"), "k")  # heavy tail
    with pytest.raises(ConfigError, match="limit is 1e\\+09 s"):
        parse_distribution({"dist": "pareto", "shape": 0.5, "scale": 1.0}, "k")


def test_deeply_nested_mixture_is_refused(write_config):
    dist = "1"
    for _ in range(7):  # 128 leaves
        dist = f"{{dist: bimodal, p: 0.5, fast: {dist}, slow: {dist}}}"
    path = write_config(_config(dist))
    with pytest.raises(ConfigError, match="mixture of 128 distributions"):
        load_config(path)


def test_error_found_later_names_the_config_file(cli, write_config, tmp_path):
    """A problem found only when the codes are built (K does not split evenly) still names the file."""
    path = write_config(_config().replace("schemes: [uncoded, {scheme: hgc, s_e: 1, s_w: 1}]",
                                          "schemes: [{scheme: flat_gc, s: 1}]\ndata: {partitions: 7}"))
    result = cli("verify", path, "--quiet", "--out", tmp_path / "out")
    _one_line_exit_2(result, path, "data.partitions")


def test_near_certain_failures_give_finite_honest_numbers(cli, write_config, tmp_path):
    """With workers failing 99.9999 % of the time the searches still find strategies that sometimes decode;
    the summary reports their failure rates instead of crashing."""
    path = write_config(_config("{dist: exponential, mean: 1.0}\n  failures: {worker: 0.999999}").replace(
        "schemes: [uncoded, {scheme: hgc, s_e: 1, s_w: 1}]", "schemes: [uncoded, hgc_jncss]").replace(
        "edges: 2, workers: 3", "workers: [5, 5, 3, 6]"))
    result = cli("simulate", path, "--quiet", "--out", tmp_path / "out")
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 0:
        summary = pd.read_csv(tmp_path / "out" / "summary.csv")
        assert (summary.failure_rate > 0.99).all()


# ---------------------------------------------------------------------------------------------------- all-zero delays


ZERO = """\
name: zero
seed: 3
trials: 3000
topology: {edges: 3, workers: 3}
timing:
  worker: {compute: 0}
"""


def test_all_zero_delays_simulate_with_blank_speedups(cli, write_config, tmp_path):
    path = write_config(ZERO)
    result = cli("simulate", path, "--quiet", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert (summary["mean_time"] == 0).all() and (summary["failure_rate"] == 0).all()
    assert summary["speedup"].isna().all()  # 0 / 0: blank, not a crash


def test_all_zero_delays_optimize(cli, write_config, tmp_path):
    path = write_config(ZERO)
    result = cli("optimize", path, "--quiet", "--out", tmp_path / "out", "--trials", "500")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "optimize.csv")
    assert (table["expected_time"] == 0).all() and (table["mc_mean_time"] == 0).all()
    assert table["speedup"].isna().all() and table["optimality_gap"].isna().all()


# ---------------------------------------------------------------------------------------------------- sizes


def test_chunk_sizes_do_not_grow_with_trials():
    started = time.perf_counter()
    sizes = chunk_sizes(10**12 + 5)
    assert len(sizes) == 10**12 // CHUNK_TRIALS + 1
    assert sizes[0] == CHUNK_TRIALS and sizes[-1] == (10**12 + 5) % CHUNK_TRIALS
    assert sys.getsizeof(sizes) < 1000 and time.perf_counter() - started < 1
    assert list(chunk_sizes(10_000)) == [4096, 4096, 1808] and list(chunk_sizes(0)) == []


def test_monte_carlo_estimates():
    topo = Topology((10,) * 10)
    assert monte_carlo_bytes(topo, CHUNK_TRIALS) == 8 * CHUNK_TRIALS * (5 * 100 + 3 * 100)
    check_monte_carlo(topo, 10**6)
    with pytest.raises(ConfigError, match="--allow-large") as info:
        check_monte_carlo(topo, 10**12)
    assert info.value.key == "trials" and f"{MAX_SAMPLED_DELAYS:.3g}" in info.value.message
    check_monte_carlo(topo, 10**12, allow_large=True)
    unbalanced = Topology((100_000 - 9_999,) + (1,) * 9_999)  # padding to the largest edge dominates
    assert monte_carlo_bytes(unbalanced, CHUNK_TRIALS) > MAX_MEMORY_BYTES
    with pytest.raises(ConfigError, match="memory") as info:
        check_monte_carlo(unbalanced, 10)
    assert info.value.key == "topology"


def test_absurd_trials_refused_in_seconds_with_the_limit(cli, write_config, tmp_path):
    path = write_config(_config().replace("trials: 2000", "trials: 1e12"))
    started = time.perf_counter()
    result = cli("simulate", path, "--quiet", "--out", tmp_path / "out")
    line = _one_line_exit_2(result, path, "trials", "--allow-large")
    assert "8e+12 sampled delays" in line and f"{MAX_SAMPLED_DELAYS:.3g}" in line
    assert time.perf_counter() - started < 20
    result = cli("simulate", path, "--quiet", "--out", tmp_path / "out", "--trials", str(10**13))
    _one_line_exit_2(result, path, "--trials")


def test_unbalanced_topology_refused_for_memory(cli, write_config, tmp_path):
    workers = [90_000] + [1] * 9_000
    path = write_config(_config().replace("edges: 2, workers: 3", f"workers: {workers}").replace(
        "schemes: [uncoded, {scheme: hgc, s_e: 1, s_w: 1}]", "schemes: [uncoded]"))
    result = cli("simulate", path, "--quiet", "--out", tmp_path / "out")
    _one_line_exit_2(result, path, "topology", "GiB of memory")


def test_verify_refuses_absurd_patterns_and_partitions(cli, write_config, tmp_path):
    path = write_config(_config().replace("edges: 2, workers: 3", "edges: 6, workers: 8").replace(
        "schemes: [uncoded, {scheme: hgc, s_e: 1, s_w: 1}]", "schemes: [{scheme: flat_gc, s: 20}]"))
    result = cli("verify", path, "--quiet", "--out", tmp_path / "out", "--patterns", str(10**12))
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "--patterns" in result.stderr
    result = cli("verify", path, "--quiet", "--out", tmp_path / "out", "--patterns", str(10**8))
    _one_line_exit_2(result, path, "--patterns", "--allow-large")
    big_k = write_config(_config(extra="data: {partitions: 1000000}\n").replace(
        "edges: 2, workers: 3", "edges: 40, workers: 50"), "bigk.yaml")
    result = cli("verify", big_k, "--quiet", "--out", tmp_path / "out")
    _one_line_exit_2(result, big_k, "data.partitions", "memory")


def test_train_refuses_absurd_sizes(cli, write_config, tmp_path):
    path = write_config(_config(extra="train: {dataset: synthetic_regression, samples: 1000000000, features: 100}\n"))
    result = cli("train", path, "--quiet", "--out", tmp_path / "out")
    _one_line_exit_2(result, path, "train.samples", "memory")
    path = write_config(_config(extra="train: {iterations: 1000000000}\n"), "iters.yaml")
    result = cli("train", path, "--quiet", "--out", tmp_path / "out")
    _one_line_exit_2(result, path, "train.iterations", "--allow-large")


def test_sweep_grid_size_is_checked_before_expanding(cli, write_config, tmp_path):
    grid = (f"  seed: [{', '.join(str(v) for v in range(101))}]\n"
            f"  trials: [{', '.join(str(1000 + v) for v in range(100))}]")
    base = write_config(_config(), "base.yaml")
    path = write_config(f"name: big\nbase: {base.name}\ngrid:\n{grid}\n", "sweep.yaml")
    started = time.perf_counter()
    result = cli("sweep", path, "--quiet", "--executor", "serial", "--out", tmp_path / "out")
    _one_line_exit_2(result, path, "grid", "10100 points")
    assert time.perf_counter() - started < 20


def test_sweep_point_sizes_are_checked(cli, write_config, tmp_path):
    base = write_config(_config(), "base.yaml")
    path = write_config(f"name: s\nbase: {base.name}\ngrid:\n  trials: [1000, 1e12]\n", "sweep.yaml")
    result = cli("sweep", path, "--quiet", "--executor", "serial", "--out", tmp_path / "out")
    line = _one_line_exit_2(result, path, "point 1 (trials=1000000000000.0)")
    assert "sampled delays" in line
    assert not (tmp_path / "out" / "points").exists()


def test_plot_refuses_corrupt_tables(cli, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "summary.csv").write_bytes(b"\xff\xfe\x00garbage")
    result = cli("plot", out)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "summary.csv" in result.stderr and "UTF-8" in result.stderr
    (out / "summary.csv").write_text("scheme,mean_time,sem_time,failure_rate\nuncoded,abc,0.1,0\n")
    result = cli("plot", out)
    assert result.exit_code == 2 and "mean_time: line 2: expected a number" in result.stderr
    (out / "summary.csv").write_text("a,b\n1,2\n")
    result = cli("plot", out)
    assert result.exit_code == 2 and "missing columns 'scheme'" in result.stderr
    (out / "summary.csv").write_text('scheme,mean_time,sem_time\n"unterminated,1,2\n')
    result = cli("plot", out)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1


def test_simulate_metadata_records_completion(cli, write_config, tmp_path):
    path = write_config(_config())
    assert cli("simulate", path, "--quiet", "--out", tmp_path / "out").exit_code == 0
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert meta["complete"] is True and meta["interrupted"] is False
    assert np.isfinite(pd.read_csv(tmp_path / "out" / "summary.csv")["mean_time"]).all()


@pytest.mark.parametrize("args", [
    ["simulate", "CONFIG", "--trials", "0"], ["simulate", "CONFIG", "--trials", "1e5"],
    ["simulate", "CONFIG", "--trials", str(10**30)], ["simulate", "CONFIG", "--seed", "-1"],
    ["optimize", "CONFIG", "--method", "brute"], ["verify", "CONFIG", "--patterns", "0"],
    ["train", "CONFIG", "--iterations", str(10**30)], ["sweep", "SWEEP", "--jobs", "0"],
    ["sweep", "SWEEP", "--jobs", "100000"], ["sweep", "SWEEP", "--executor", "dask", "--scheduler", "nonsense"],
    ["sweep", "SWEEP", "--executor", "dask", "--scheduler", "tcp://[::1"],
    ["sweep", "SWEEP", "--executor", "dask", "--scheduler", "http://host:8786"],
    ["sweep", "SWEEP", "--executor", "serial", "--scheduler", "tcp://host:8786"],
])
def test_hostile_options_are_one_line_errors(cli, write_config, tmp_path, args):
    config = write_config(_config())
    sweep = write_config(f"name: s\nbase: {config.name}\ngrid:\n  seed: [1, 2]\n", "sweep.yaml")
    args = [str(config) if a == "CONFIG" else str(sweep) if a == "SWEEP" else a for a in args]
    started = time.perf_counter()
    result = cli(*args, "--quiet", "--out", tmp_path / "out")
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert time.perf_counter() - started < 30
