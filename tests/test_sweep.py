"""Sweep files, point expansion and seeds, the resumable store, failing points, and the CLI contract."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from hgc.errors import ConfigError
from hgc.executors import SerialExecutor
from hgc.sweep import expand_points, grid_combinations, load_sweep, point_seed, run_sweep, sweep_from_mapping

BASE = """\
seed: 3
trials: {trials}
topology: {{edges: 3, workers: 3}}
timing:
  worker:
    compute: {{dist: shifted_exponential, shift: 1.0, rate: 2.0}}
  edge:
    process: {{dist: bimodal, p: 0.1, fast: {{dist: constant, value: 0.0}}, slow: {{dist: exponential, mean: 0.5}}}}
schemes: [uncoded, {{scheme: hgc, s_e: 1, s_w: 1}}]
"""


def write_sweep(tmp_path: Path, grid: str, *, trials: int = 2000, extra: str = "", name: str = "tiny") -> Path:
    """A base config file plus a sweep file referring to it by relative path."""
    (tmp_path / "base.yaml").write_text(BASE.format(trials=trials))
    path = tmp_path / "sweep.yaml"
    path.write_text(f"name: {name}\nbase: base.yaml\n" + textwrap.dedent(grid) + textwrap.dedent(extra))
    return path


GRID = """\
grid:
  timing.edge.process.p: [0.0, 0.2]
  topology.edges: [3, 4]
"""


# ---------------------------------------------------------------------------------------------------- parsing


def test_grid_order_is_cartesian_with_zip_innermost(tmp_path):
    path = write_sweep(tmp_path, GRID, extra="zip:\n  topology.workers: [2, 3]\n  trials: [1000, 2000]\n")
    sweep = load_sweep(path)
    combos = grid_combinations(sweep)
    assert len(combos) == 8
    assert combos[0] == {"timing.edge.process.p": 0.0, "topology.edges": 3, "topology.workers": 2, "trials": 1000}
    assert combos[1] == {"timing.edge.process.p": 0.0, "topology.edges": 3, "topology.workers": 3, "trials": 2000}
    assert combos[2]["topology.edges"] == 4
    assert combos[4]["timing.edge.process.p"] == 0.2
    points = expand_points(sweep)
    assert points[1].config.topology.workers == (3, 3, 3)
    assert points[1].config.trials == 2000
    assert points[4].config.timing is not None
    assert sweep.swept_keys == ["timing.edge.process.p", "topology.edges", "topology.workers", "trials"]


def test_point_seed_depends_on_values_not_position(tmp_path):
    a = load_sweep(write_sweep(tmp_path, GRID))
    b = sweep_from_mapping({"name": "b", "base": a.base_raw,
                            "grid": {"topology.edges": [4, 3], "timing.edge.process.p": [0.2, 0.0, 0.5]}})
    seeds_a = {json.dumps(p.params, sort_keys=True): p.config.seed for p in expand_points(a)}
    seeds_b = {json.dumps(p.params, sort_keys=True): p.config.seed for p in expand_points(b)}
    for key, seed in seeds_a.items():
        assert seeds_b[key] == seed
    assert len(set(seeds_b.values())) == len(seeds_b)
    assert point_seed(3, {"x": 1}) != point_seed(4, {"x": 1})
    assert point_seed(3, {"x": 1}) != point_seed(3, {"x": 1.5})


def test_inline_base_and_new_intermediate_keys():
    base = {"trials": 1000, "topology": {"edges": 2, "workers": 2},
            "timing": {"worker": {"compute": {"dist": "exponential", "mean": 1.0}}}}
    sweep = sweep_from_mapping({"name": "inline", "base": base, "grid": {"timing.failures.worker": [0.0, 0.1]}})
    points = expand_points(sweep)
    assert [p.raw["timing"]["failures"]["worker"] for p in points] == [0.0, 0.1]
    assert "failures" not in base["timing"]  # the base mapping is never modified


@pytest.mark.parametrize("text, expected", [
    ("base: base.yaml\ngrid:\n  timing.edge.process.pp: [0.1]\n", None),  # only fails at point validation
    ("base: base.yaml\ngrid:\n  topolgy.edges: [3]\n", "grid.topolgy.edges: unknown config key 'topolgy'; did you mean 'topology'?"),
    ("base: base.yaml\ngrid:\n  topology.edges: 3\n", "grid.topology.edges: expected a list"),
    ("base: base.yaml\ngrid:\n  topology.edges: []\n", "grid.topology.edges: expected a non-empty list"),
    ("base: missing.yaml\n", "base: "),
    ("base: base.yaml\nzip:\n  topology.edges: [3, 4]\n  trials: [100]\n", "zip: zipped keys need lists of equal length"),
    ("base: base.yaml\ngrdi: {}\n", "grdi: unknown key 'grdi'; did you mean 'grid'?"),
    ("base: base.yaml\nanalyses: [simulate, optimise]\n", "analyses[1]: unknown analysis 'optimise'"),
])
def test_bad_sweep_files_name_file_and_key(tmp_path, text, expected):
    (tmp_path / "base.yaml").write_text(BASE.format(trials=1000))
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        expand_points(load_sweep(path))
    line = info.value.one_line()
    assert line.startswith(str(path) + ": ")
    if expected is None:
        assert "point 0 (timing.edge.process.pp=0.1)" in line and "timing.edge.process" in line
    else:
        assert expected in line


def test_invalid_point_exits_2_naming_point_and_key(tmp_path, cli):
    path = write_sweep(tmp_path, "grid:\n  timing.edge.process.p: [0.1, 1.5]\n")
    result = cli("sweep", path, "--executor", "serial", "--out", tmp_path / "out")
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert str(path) in line and "point 1 (timing.edge.process.p=1.5)" in line
    assert "timing.edge.process.p" in line.split("point 1")[1]
    assert not (tmp_path / "out").exists()  # nothing ran


def test_bad_cli_arguments_exit_2(tmp_path, cli):
    path = write_sweep(tmp_path, GRID)
    for args in (["--jobs", "0"], ["--executor", "serial", "--scheduler", "tcp://127.0.0.1:1"]):
        result = cli("sweep", path, "--out", tmp_path / "o", *args)
        assert result.exit_code == 2, result.output
        line = result.stderr.strip()
        assert "\n" not in line and line.startswith("error: ") and args[0] in line


# ---------------------------------------------------------------------------------------------------- running


def test_sweep_csv_columns_and_grid_order(tmp_path, cli):
    path = write_sweep(tmp_path, GRID)
    result = cli("sweep", path, "--executor", "serial", "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "sweep.csv")
    from hgc.experiment import SUMMARY_COLUMNS
    assert list(table.columns) == ["timing.edge.process.p", "topology.edges"] + SUMMARY_COLUMNS
    assert len(table) == 4 * 2
    assert table["topology.edges"].tolist() == [3, 3, 4, 4, 3, 3, 4, 4]
    assert table["timing.edge.process.p"].tolist() == [0.0] * 4 + [0.2] * 4
    assert table["edges"].tolist() == table["topology.edges"].tolist()
    # one seed per point, shared by its schemes, derived from the point's values
    assert table.groupby(["timing.edge.process.p", "topology.edges"])["seed"].nunique().eq(1).all()
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert meta["points"] == 4 and meta["computed"] == 4 and meta["failed"] == 0
    assert [t["point"] for t in meta["point_timings"]] == [0, 1, 2, 3]
    assert all(t["seconds"] > 0 for t in meta["point_timings"])
    assert (tmp_path / "out" / "sweep.resolved.yaml").is_file()


def test_point_matches_a_plain_simulate_of_its_config(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, GRID))
    points = expand_points(sweep)
    run = run_sweep(sweep, tmp_path / "out", SerialExecutor(), points=points)
    table = pd.read_csv(tmp_path / "out" / "sweep.csv")
    from hgc.experiment import simulate
    direct = simulate(points[3].config).summary
    rows = table.iloc[6:8]
    assert rows["mean_time"].to_numpy() == pytest.approx(direct["mean_time"].to_numpy(), rel=1e-9)
    assert run.ok and not run.resumed


def test_rerun_skips_done_points_and_recomputes_changed_ones(tmp_path, cli):
    path = write_sweep(tmp_path, GRID)
    out = tmp_path / "out"
    assert cli("sweep", path, "--executor", "serial", "--out", out, "--quiet").exit_code == 0
    first = (out / "sweep.csv").read_bytes()
    result = cli("sweep", path, "--executor", "serial", "--out", out)
    assert result.exit_code == 0
    assert "0 computed, 4 already done" in result.stdout
    assert (out / "sweep.csv").read_bytes() == first
    # a point persisted without its completion marker is not trusted
    marker = sorted((out / "points").glob("*.json"))[0]
    marker.unlink()
    result = cli("sweep", path, "--executor", "serial", "--out", out)
    assert "1 computed, 3 already done" in result.stdout
    assert (out / "sweep.csv").read_bytes() == first
    # extending the grid computes only the new points and keeps the old rows identical
    path.write_text(path.read_text().replace("[3, 4]", "[3, 4, 5]"))
    result = cli("sweep", path, "--executor", "serial", "--out", out)
    assert "2 computed, 4 already done" in result.stdout
    table = pd.read_csv(out / "sweep.csv")
    old = pd.read_csv(pd.io.common.StringIO(first.decode()))
    merged = table[table["topology.edges"] != 5].reset_index(drop=True)
    pd.testing.assert_frame_equal(merged, old)


def test_failing_point_is_reported_and_others_finish(tmp_path, cli, monkeypatch):
    import hgc.experiment

    real = hgc.experiment.simulate

    def flaky(config, **kwargs):
        if config.topology.n_edges == 4 and config.raw["timing"]["edge"]["process"]["p"] == 0.2:
            raise RuntimeError("boom at this point")
        return real(config, **kwargs)

    monkeypatch.setattr(hgc.experiment, "simulate", flaky)
    path = write_sweep(tmp_path, GRID)
    out = tmp_path / "out"
    result = cli("sweep", path, "--executor", "serial", "--out", out, "--quiet")
    assert result.exit_code == 1
    assert "point 3" in result.stderr and "boom at this point" in result.stderr
    assert "'topology.edges': 4" in result.stderr or "topology.edges=4" in result.stderr
    failures = pd.read_csv(out / "failures.csv")
    assert failures["point"].tolist() == [3]
    assert json.loads(failures["params"][0]) == {"timing.edge.process.p": 0.2, "topology.edges": 4}
    assert "RuntimeError: boom at this point" in failures["error"][0]
    table = pd.read_csv(out / "sweep.csv")
    assert len(table) == 3 * 2  # the other three points are there
    meta = json.loads((out / "metadata.json").read_text())
    failed = [t for t in meta["point_timings"] if t["status"] == "failed"]
    assert len(failed) == 1 and "boom" in failed[0]["traceback"]

    # fixed: a rerun computes only the failed point and clears failures.csv
    monkeypatch.setattr(hgc.experiment, "simulate", real)
    result = cli("sweep", path, "--executor", "serial", "--out", out)
    assert result.exit_code == 0
    assert "1 computed, 3 already done" in result.stdout
    assert not (out / "failures.csv").exists()
    assert len(pd.read_csv(out / "sweep.csv")) == 8


# ---------------------------------------------------------------------------------------------------- SIGKILL


def _hgc(*args: object, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hgc", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True, **kwargs)


@pytest.mark.slow
def test_sigkill_midway_then_resume_gives_identical_sweep_csv(tmp_path):
    grid = "grid:\n  timing.edge.process.p: [0.0, 0.05, 0.1, 0.2, 0.3]\n  topology.edges: [3, 4, 5, 6, 7]\n"
    path = write_sweep(tmp_path, grid, trials=80000)
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"

    proc = _hgc("sweep", path, "--executor", "process", "--jobs", "2", "--out", resumed, "--quiet")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = list((resumed / "points").glob("*.json")) if (resumed / "points").exists() else []
        if len(done) >= 3 or proc.poll() is not None:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the sweep finished before it could be killed; make points slower"
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its pool workers, as a machine crash would
    proc.wait()
    finished = len(list((resumed / "points").glob("*.json")))
    assert 3 <= finished < 25
    assert not (resumed / "sweep.csv").exists()

    rerun = _hgc("sweep", path, "--executor", "process", "--jobs", "2", "--out", resumed, "--quiet")
    assert rerun.wait(timeout=120) == 0, rerun.stderr.read().decode()
    meta = json.loads((resumed / "metadata.json").read_text())
    assert meta["resumed"] >= finished and meta["resumed"] + meta["computed"] == 25

    ref = _hgc("sweep", path, "--executor", "serial", "--out", reference, "--quiet")
    assert ref.wait(timeout=120) == 0, ref.stderr.read().decode()
    assert (resumed / "sweep.csv").read_bytes() == (reference / "sweep.csv").read_bytes()
    assert not list((resumed / "points").glob(".*.tmp"))


def test_optimize_analysis_writes_optimize_csv_with_swept_keys(tmp_path, cli):
    path = write_sweep(tmp_path, "grid:\n  topology.edges: [3, 4]\n", extra="analyses: [simulate, optimize]\n")
    result = cli("sweep", path, "--executor", "serial", "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "optimize.csv")
    assert list(table.columns[:1]) == ["topology.edges"]
    assert set(table["topology.edges"]) == {3, 4}
    assert table["optimizer_seconds"].isna().all()     # no wall-clock figures: bytes are reproducible