"""``--dry-run`` on every verb and the planning API behind it (:mod:`hgc.planning`): the plan states the
sizes the config sets, the files the real run writes, the memory :mod:`hgc.limits` and the simulator
compute; it writes nothing, validates like the real run, and its time estimate is calibrated (a fake
clock makes it deterministic here)."""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import pandas as pd
import pytest

from hgc import planning
from hgc.config import load_config
from hgc.limits import MAX_DECODE_WORK, code_bytes, monte_carlo_bytes, training_bytes
from hgc.optimizer.exhaustive import exhaustive_size
from hgc.optimizer.hetero import HETERO_EXHAUSTIVE_LIMIT, hetero_space
from hgc.planning import (Calibration, plan_optimize, plan_plot, plan_simulate, plan_sweep, plan_train,
                          plan_verify)
from hgc.schemes import BASELINE, ResolveContext, baseline_spec
from hgc.schemes.jncss import EXHAUSTIVE_AUTO_LIMIT
from hgc.simulation import CHUNK_TRIALS, default_backend, plan_passes, working_bytes_per_trial
from hgc.sweep import expand_points, load_sweep
from hgc.verify import DEFAULT_PATTERNS

REPO = Path(__file__).resolve().parents[1]
BUNDLED = sorted((REPO / "configs").glob("*.yaml"))
EXPERIMENTS = [p for p in BUNDLED if "base:" not in p.read_text()]
SWEEPS = [p for p in BUNDLED if "base:" in p.read_text()]
VERBS = ("simulate", "optimize", "verify", "train")

TINY = """
name: tiny
seed: 5
trials: 3000
topology: {edges: 2, workers: [3, 3]}
timing:
  worker:
    compute: {dist: shifted_exponential, shift: 1.0, mean: 0.5}
    overhead: {dist: exponential, mean: 0.05}
  edge:
    uplink: {dist: exponential, mean: 0.01}
    per_vector: 0.002
  overrides:
    - {edges: [1], worker: {speed: 0.5}}
schemes:
  - uncoded
  - {scheme: flat_gc, s: auto}
  - {scheme: hgc, s_e: 1, s_w: 1}
  - {scheme: hgc, s_e: auto, s_w: auto}
  - hgc_jncss
train: {dataset: synthetic_regression, model: least_squares, samples: 300, features: 5, iterations: 4}
"""


def ticking() -> Calibration:
    """A clock that advances one second per reading: every timed calibration run takes exactly 1 s."""
    counter = itertools.count()
    return Calibration(clock=lambda: float(next(counter)))


@pytest.fixture
def no_calibration(monkeypatch):
    """Plans without calibration runs (fast; the estimates are tested separately)."""
    monkeypatch.setattr(planning, "_calibration", lambda calibration: Calibration(enabled=False))


@pytest.fixture
def tiny(write_config):
    return write_config(TINY, "tiny.yaml")


def plan_of(verb: str, config, **options):
    return {"simulate": plan_simulate, "optimize": plan_optimize, "verify": plan_verify,
            "train": plan_train}[verb](config, **options)


def stand_ins(config) -> list:
    spec = baseline_spec()
    baseline = spec.scheme.resolve(spec, ResolveContext(config.timing, config.seed)).strategy
    return [baseline] * (len(config.schemes) + (0 if any(s.kind == BASELINE for s in config.schemes) else 1))


# ----------------------------------------------------------------------------------------------------
# Every verb, every bundled config: exit 0, the right sizes, nothing written


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_verb_dry_runs_every_bundled_config_and_writes_nothing(cli, path, verb, tmp_path, monkeypatch,
                                                                     no_calibration):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    result = cli(verb, path, "--dry-run", "--out", out)
    assert result.exit_code == 0, (result.output, result.exception)
    assert not out.exists() and not (tmp_path / "results").exists() and not list(tmp_path.iterdir())
    text = result.stdout
    assert text.startswith(f"hgc {verb}: dry run of {path}")
    config = load_config(path)
    assert f"{config.topology.n_workers} workers" in text and str(out) in text
    if verb in ("simulate", "optimize"):
        assert f"{config.trials:,} trials" in text
    if verb == "train":
        assert f"{config.train.iterations:,} iterations" in text
    if verb in ("simulate", "verify", "train"):
        for spec in config.schemes:
            assert spec.label in text
            if spec.is_auto:
                assert "chosen at run time" in text


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_simulate_plan_sizes_are_the_simulators(path):
    config = load_config(path)
    plan = plan_simulate(config, out_dir=Path("unused"), calibration=False)
    strategies = stand_ins(config)
    nodes = config.topology.n_workers + config.topology.n_edges
    backend = default_backend(config.trials * nodes * len(strategies))     # as run_strategies chooses it
    block, pass_blocks = plan_passes(config.timing, strategies, None, backend)
    assert plan.facts["trials"] == config.trials and plan.facts["workers"] == config.topology.n_workers
    assert plan.facts["edges"] == config.topology.n_edges and plan.facts["strategies"] == len(strategies)
    assert plan.facts["block_trials"] == block and plan.facts["pass_trials"] == block * pass_blocks
    assert plan.facts["passes"] == math.ceil(math.ceil(config.trials / block) / pass_blocks)
    working = working_bytes_per_trial(config.timing, strategies, backend) * min(block * pass_blocks, config.trials)
    assert plan.facts["working_bytes"] == working
    assert plan.facts["limit_memory_bytes"] == monte_carlo_bytes(config.topology, min(config.trials, CHUNK_TRIALS))
    assert plan.facts["sampled_delays"] == config.trials * (config.topology.n_workers + config.topology.n_edges)
    memory = {m.what: m.value for m in plan.memory}
    assert memory["simulator working arrays"] == working
    assert plan.peak_bytes == sum(memory.values()) and plan.seconds is None and plan.refusal is None


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_optimize_plan_rows_and_search_spaces(path):
    config = load_config(path)
    plan = plan_optimize(config, calibration=False)
    # counted with another cap than the plan's (which stops at the auto limit): the same decision and size
    full = exhaustive_size(config.timing, cap=4 * EXHAUSTIVE_AUTO_LIMIT)
    rows = plan.facts["rows"]
    assert rows[:4] == ["uncoded", "flat_gc", "hgc", "jncss_greedy"] and "hetero_greedy" in rows
    assert ("jncss_exhaustive" in rows) == (full <= EXHAUSTIVE_AUTO_LIMIT)
    hetero = hetero_space(config.timing, HETERO_EXHAUSTIVE_LIMIT)
    assert ("hetero_exhaustive" in rows) == (hetero <= HETERO_EXHAUSTIVE_LIMIT)
    expected = {}
    if full <= EXHAUSTIVE_AUTO_LIMIT:
        expected["jncss_exhaustive"] = full
    if hetero <= HETERO_EXHAUSTIVE_LIMIT:
        expected["hetero_exhaustive"] = hetero
    assert plan.facts["search_space"] == expected


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_verify_plan_counts_the_codes_and_patterns_limits_counts(path):
    config = load_config(path)
    plan = plan_verify(config, calibration=False)
    sizes = [(n, (config.data.partitions or k) if k is not None else None, count)
             for spec in config.schemes for n, k, count in spec.scheme.verify_work(spec, config.topology)]
    assert plan.facts["codes"] == len(sizes)
    assert plan.facts["patterns"] == sum(min(c, DEFAULT_PATTERNS) for _, k, c in sizes if k is not None)
    assert plan.facts["decode_work"] == sum(min(c, DEFAULT_PATTERNS) * n * max(n, k) for n, k, c in sizes
                                            if k is not None)
    assert plan.facts["limit_memory_bytes"] == max(code_bytes(n, k) for n, k, _ in sizes if k is not None)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_train_plan_memory_is_hgc_limits(path):
    config = load_config(path)
    plan = plan_train(config, calibration=False)
    assert plan.facts["iterations"] == config.train.iterations
    assert plan.facts["limit_memory_bytes"] == training_bytes(config)[0]
    assert plan.facts["schemes"] == len(stand_ins(config))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_dry_run_counts_the_points_and_writes_nothing(cli, path, tmp_path, monkeypatch, no_calibration):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    result = cli("sweep", path, "--dry-run", "--out", out)
    assert result.exit_code == 0, (result.output, result.exception)
    assert not list(tmp_path.iterdir())
    points = expand_points(load_sweep(path))
    plan = plan_sweep(load_sweep(path), out_dir=out, calibration=False)
    assert plan.facts["points"] == len(points) == plan.facts["pending"] and plan.facts["done"] == 0
    assert plan.facts["trials"] == sum(p.config.trials for p in points)
    assert f"{len(points)} points" in result.stdout and f"{len(points)} to compute" in result.stdout
    chunk = max(monte_carlo_bytes(p.config.topology, min(p.config.trials, CHUNK_TRIALS)) for p in points)
    assert plan.facts["limit_memory_bytes"] == chunk


# ----------------------------------------------------------------------------------------------------
# The plan against real runs


@pytest.mark.parametrize("config_name", ["tiny", pytest.param("quickstart", marks=pytest.mark.slow),
                                         pytest.param("heterogeneous", marks=pytest.mark.slow)])
def test_rows_and_search_spaces_are_those_of_the_real_optimize_run(config_name, tiny, cli, tmp_path):
    path = tiny if config_name == "tiny" else REPO / "configs" / f"{config_name}.yaml"
    plan = plan_optimize(load_config(path), trials=500, calibration=False)
    result = cli("optimize", path, "trials=500", "--out", tmp_path / "real", "--quiet")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "real" / "optimize.csv")
    assert plan.facts["rows"] == list(table["strategy"])
    real = {row.strategy: int(row.search_space) for row in table.itertuples() if row.search_space == row.search_space}
    assert plan.facts["search_space"] == real
    if config_name == "tiny":
        assert set(real) == {"jncss_exhaustive", "hetero_exhaustive"}


def test_files_are_those_the_real_runs_write(tiny, cli, tmp_path):
    config = load_config(tiny)
    for verb, options in (("simulate", ["trials=500"]), ("optimize", ["trials=500"]), ("verify", ["--patterns", "5"]),
                          ("train", ["--iterations", "2"])):
        out = tmp_path / verb
        result = cli(verb, tiny, *options, "--out", out, "--quiet")
        assert result.exit_code == 0, (verb, result.output)
        assert sorted(os.listdir(out)) == sorted(plan_of(verb, config, calibration=False).files), verb
        again = plan_of(verb, config, out_dir=out, calibration=False)
        assert again.facts["output"] == "exists" and sorted(again.facts["replaced"]) == sorted(again.files)


def test_verify_plan_matches_the_real_verify_table(tiny, cli, tmp_path):
    config = load_config(tiny)
    plan = plan_verify(config, max_patterns=7, calibration=False)
    result = cli("verify", tiny, "--patterns", "7", "--out", tmp_path / "v", "--quiet")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "v" / "verify.csv")
    assert plan.facts["codes"] == len(table)
    searched = table["scheme"] == "hgc_jncss"     # its code is planned in the worst case (all nodes)
    planned = [c for c in planning.verify_codes(config, 7)[0] if c.scheme != 4]
    assert sum(c.patterns for c in planned) == table.loc[~searched, "patterns"].sum()
    assert [c.exhaustive for c in planned] == list(table.loc[~searched, "exhaustive"])


def test_a_sweep_dry_run_sees_the_finished_points(write_config, tiny, cli, tmp_path, no_calibration):
    sweep = write_config("base: tiny.yaml\nname: tiny-sweep\ngrid:\n  trials: [300, 600]\n", "sweep.yaml")
    out = tmp_path / "sweep-out"
    before = plan_sweep(load_sweep(sweep), out_dir=out)
    assert (before.facts["pending"], before.facts["done"]) == (2, 0) and before.facts["output"] == "would be created"
    result = cli("sweep", sweep, "--executor", "serial", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == sorted(before.files[:-1])
    after = cli("sweep", sweep, "--dry-run", "--out", out)
    assert after.exit_code == 0 and "0 to compute, 2 already finished" in after.stdout
    assert plan_sweep(load_sweep(sweep), out_dir=out).facts["done"] == 2


def test_plot_dry_run_lists_the_figures_plot_draws(tiny, cli, tmp_path):
    out = tmp_path / "sim"
    assert cli("simulate", tiny, "trials=500", "--out", out, "--quiet").exit_code == 0
    before = set(os.listdir(out))
    result = cli("plot", out, "--dry-run")
    assert result.exit_code == 0 and set(os.listdir(out)) == before
    plan = plan_plot(out)
    assert plan.facts["figures"] == {"effective_time.png": ["summary.csv"],
                                     "time_cdf.png": ["quantiles.csv", "summary.csv"]}
    assert "effective_time.png  from summary.csv" in result.stdout
    drawn = cli("plot", out)
    assert drawn.exit_code == 0
    assert set(os.listdir(out)) - before == set(plan.files)
    missing = cli("plot", tmp_path / "nothing", "--dry-run")
    assert missing.exit_code == 2 and missing.stderr.count("\n") == 1


# ----------------------------------------------------------------------------------------------------
# Overrides, errors and limits


def test_overrides_apply_in_the_dry_run(cli, tmp_path, no_calibration):
    path = REPO / "configs" / "homogeneous.yaml"
    result = cli("simulate", path, "topology.edges=8", "trials=1234", "timing.failures.worker=0.01", "--dry-run",
                 "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert "8 edges, 40 workers" in result.stdout and "1,234 trials" in result.stdout
    result = cli("optimize", path, "topology.edges=3", "--trials", "777", "--dry-run", "--out", tmp_path / "o")
    assert result.exit_code == 0 and "777 trials" in result.stdout and "3 edges, 15 workers" in result.stdout
    result = cli("train", path, "train.iterations=17", "--dry-run", "--out", tmp_path / "o")
    assert result.exit_code == 0 and "17 iterations" in result.stdout
    result = cli("sweep", REPO / "configs" / "sweep-straggler-rate.yaml", "trials=999", "--dry-run",
                 "--out", tmp_path / "o")
    assert result.exit_code == 0 and "999 trials" in result.stdout
    assert not (tmp_path / "o").exists()


def test_override_values_are_read_as_config_files_read_them(cli, tmp_path, no_calibration):
    path = REPO / "configs" / "quickstart.yaml"
    result = cli("simulate", path, "trials=2e4", "name=[unclosed", "--dry-run", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert "20,000 trials" in result.stdout          # 1e5-style numbers as in a file (YAML 1.2), not text


@pytest.mark.parametrize("verb", VERBS)
def test_a_typo_still_exits_2_with_one_line(cli, verb, tmp_path):
    path = REPO / "configs" / "quickstart.yaml"
    result = cli(verb, path, "topology.edgs=3", "--dry-run", "--out", tmp_path / "o")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "did you mean 'edges'" in result.stderr
    sweep = cli("sweep", REPO / "configs" / "sweep-edges.yaml", "seeed=3", "--dry-run")
    assert sweep.exit_code == 2 and sweep.stderr.count("\n") == 1 and "did you mean 'seed'" in sweep.stderr


def test_an_unwritable_output_directory_is_refused_like_the_real_run(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for options in (["--dry-run"], []):
        result = cli("simulate", REPO / "configs" / "quickstart.yaml", *options, "--out", blocker / "x", "--quiet")
        assert result.exit_code == 2 and result.stderr.startswith("error: --out: cannot write results to")
        assert result.stderr.count("\n") == 1


def test_above_a_limit_the_plan_is_printed_then_the_run_refused(cli, tmp_path, no_calibration):
    path = REPO / "configs" / "quickstart.yaml"
    result = cli("simulate", path, f"trials={10**12}", "--dry-run", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "REFUSED" in result.stdout and "1e+12 trials" in result.stdout
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: {path}: trials: ")
    assert "--allow-large" in result.stderr
    allowed = cli("simulate", path, f"trials={10**12}", "--dry-run", "--allow-large", "--out", tmp_path / "o")
    assert allowed.exit_code == 0 and "allowed by --allow-large" in allowed.stdout and "REFUSED" not in allowed.stdout
    verify = cli("verify", REPO / "configs" / "link-bottleneck.yaml", "--patterns", str(10**8), "--dry-run")
    assert verify.exit_code == 2 and "REFUSED" in verify.stdout and verify.stderr.startswith("error: --patterns: ")
    assert not (tmp_path / "o").exists()


def test_a_refused_plan_names_the_limit_in_the_library(tiny):
    config = load_config(tiny)
    plan = plan_verify(config, max_patterns=10**8, calibration=False)
    assert plan.refusal is None          # a tiny system stays under the decoding limit
    huge = config.with_values({"topology.workers": [40, 40], "schemes": ["uncoded", {"scheme": "flat_gc", "s": 30}]})
    plan = plan_verify(huge, max_patterns=10**8, calibration=False)
    assert plan.refusal is not None and plan.refusal.key == "--patterns"
    assert plan.facts["decode_work"] > MAX_DECODE_WORK


def test_quiet_dry_run_only_validates(cli, tmp_path):
    result = cli("simulate", REPO / "configs" / "quickstart.yaml", "--dry-run", "--quiet", "--out", tmp_path / "o")
    assert result.exit_code == 0 and result.stdout == "" and not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------------------------------
# Time estimates


def monte_carlo_seconds(plan) -> float:
    return next(t.value for t in plan.time if t.what.startswith("Monte Carlo"))


def test_simulate_time_scales_with_trials(tiny):
    config = load_config(tiny)
    one = plan_simulate(config, trials=200_000, calibration=ticking())
    two = plan_simulate(config, trials=400_000, calibration=ticking())
    assert monte_carlo_seconds(two) == pytest.approx(2 * monte_carlo_seconds(one))
    pass_trials = one.facts["pass_trials"]
    assert monte_carlo_seconds(one) == pytest.approx(200_000 / pass_trials)    # 1 s per timed pass
    assert math.isfinite(one.seconds) and 0 < one.seconds < two.seconds
    assert any(t.value is None and "hgc_jncss" in t.basis for t in one.time)   # the searches: not timed
    assert "time     at least ~" in one.text() and "not estimated (on top)" in one.text()
    known = plan_simulate(config.with_values({"schemes": ["uncoded", {"scheme": "hgc", "s_e": 1, "s_w": 1}]}),
                          trials=1000, calibration=ticking())
    assert "time     ~" in known.text() and "not estimated" not in known.text()


def test_optimize_and_sweep_time_scale_with_trials(tiny, write_config):
    config = load_config(tiny)
    one, two = (plan_optimize(config, trials=t, calibration=ticking()) for t in (100_000, 200_000))
    assert monte_carlo_seconds(two) == pytest.approx(2 * monte_carlo_seconds(one))
    sweep = load_sweep(write_config("base: tiny.yaml\ngrid:\n  timing.failures.worker: [0.0, 0.01]\n", "sweep.yaml"))
    from hgc.sweep import with_base_values

    one, two = (plan_sweep(with_base_values(sweep, {"trials": t}), workers=1, calibration=ticking())
                for t in (100_000, 200_000))
    assert monte_carlo_seconds(two) == pytest.approx(2 * monte_carlo_seconds(one))
    halved = plan_sweep(with_base_values(sweep, {"trials": 100_000}), workers=2, calibration=ticking())
    assert monte_carlo_seconds(halved) == pytest.approx(monte_carlo_seconds(one) / 2)


def test_train_time_scales_with_iterations(tiny):
    config = load_config(tiny)
    one, two = (plan_train(config, iterations=n, calibration=ticking()) for n in (100, 200))
    per = {t.what: t.value for t in one.time}
    assert per["iterations"] == pytest.approx(100 * one.facts["schemes"] / planning.CALIBRATION_ITERATIONS)
    assert {t.what: t.value for t in two.time}["iterations"] == pytest.approx(2 * per["iterations"])
    assert per["dataset"] == 1.0
    # every scheme known before the run is timed; the searched ones at the costliest of those rates
    assert one.facts["seconds_per_iteration"] == {"uncoded": pytest.approx(1 / 3),
                                                  "hgc(s_e=1,s_w=1)": pytest.approx(1 / 3)}
    assert any("timed at K = " in note for note in one.notes)


def test_verify_time_scales_with_patterns(write_config):
    schemes = "schemes:\n  - {scheme: flat_gc, s: 3}\n  - {scheme: hgc, s_e: 1, s_w: 3}\ntrain:"
    text = TINY.replace("[3, 3]", "[6, 6]").replace(TINY[TINY.index("schemes:"):TINY.index("train:") + 6], schemes)
    config = load_config(write_config(text, "twelve.yaml"))
    one, two = (plan_verify(config, max_patterns=n, calibration=ticking()) for n in (10, 20))
    assert one.facts["patterns"] == 20 and two.facts["patterns"] == 40     # 220 and 40 patterns: both sampled
    decode = [next(t.value for t in p.time if t.what == "decoding") for p in (one, two)]
    assert decode[1] == pytest.approx(2 * decode[0]) and decode[0] > 0
    assert one.facts["seconds_per_operation"] == two.facts["seconds_per_operation"]


def test_a_real_calibration_gives_a_positive_finite_estimate(tiny):
    plan = plan_simulate(load_config(tiny), trials=50_000)
    assert plan.seconds is not None and 0 < plan.seconds < 600
    assert 0 < plan.facts["seconds_per_trial"] < 1e-2
