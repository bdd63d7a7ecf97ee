"""`hgc simulate` end to end: outputs, reproducibility, and one-line errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from hgc.experiment import SUMMARY_COLUMNS

GOOD = """
name: tiny
seed: 3
trials: 3000
topology: {edges: 3, workers: [2, 3, 3]}
timing:
  worker:
    compute: {dist: shifted_exponential, shift: 1.0, rate: 2.0}
    overhead: {dist: exponential, mean: 0.05}
  edge:
    process: {dist: exponential, mean: 0.05}
    per_vector: 0.01
schemes:
  - uncoded
  - {scheme: flat_gc, s: 2}
  - {scheme: flat_gc, s: auto}
  - {scheme: hgc, s_e: 1, s_w: 1}
  - {scheme: hgc, s_e: auto, s_w: auto}
"""


def test_simulate_writes_summary_with_contract_columns(cli, write_config, tmp_path):
    config = write_config(GOOD)
    out = tmp_path / "out"
    result = cli("simulate", config, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert summary["scheme"].tolist() == ["uncoded", "flat_gc", "flat_gc", "hgc", "hgc"]
    assert summary.loc[0, "speedup"] == 1.0
    assert summary.loc[3, "load"] == pytest.approx(4 / 8)       # (s_e+1)(s_w+1)/sum(m)
    assert summary.loc[1, "load"] == pytest.approx(3 / 8)       # (s+1)/N
    assert pd.isna(summary.loc[0, "s"]) and pd.isna(summary.loc[3, "s"]) and summary.loc[1, "s"] == 2
    assert (summary["trials"] == 3000).all() and (summary["seed"] == 3).all()
    assert (out / "metadata.json").is_file() and (out / "config.resolved.yaml").is_file()


def test_same_seed_gives_identical_bytes_and_cli_overrides_apply(cli, write_config, tmp_path):
    config = write_config(GOOD)
    for name in ("a", "b"):
        assert cli("simulate", config, "--out", tmp_path / name, "--quiet").exit_code == 0
    assert (tmp_path / "a" / "summary.csv").read_bytes() == (tmp_path / "b" / "summary.csv").read_bytes()
    assert cli("simulate", config, "--out", tmp_path / "c", "--quiet", "--seed", "4", "--trials", "2000").exit_code == 0
    other = pd.read_csv(tmp_path / "c" / "summary.csv")
    assert (other["seed"] == 4).all() and (other["trials"] == 2000).all()
    # the resolved config reproduces the run
    resolved = tmp_path / "c" / "config.resolved.yaml"
    assert cli("simulate", resolved, "--out", tmp_path / "d", "--quiet").exit_code == 0
    assert (tmp_path / "c" / "summary.csv").read_bytes() == (tmp_path / "d" / "summary.csv").read_bytes()


BAD_CASES = [
    ("topology: {edges: 2, workers: [3, 0]}", "topology.workers[1]", "must be >= 1, got 0"),
    ("topology: {edges: 3, workers: [3, 3]}", "topology.edges", "3 edges but 2 worker counts"),
    ("tminig: 3", "tminig", "did you mean 'timing'"),
    ("trials: -5", "trials", "must be >= 1"),
    ("seed: abc", "seed", "expected an integer"),
    ("timing: {worker: {compute: {dist: exponential, rate: -1}}}", "timing.worker.compute.rate", "must be > 0"),
    ("timing: {worker: {compute: {dist: expnential, rate: 1}}}", "timing.worker.compute.dist", "did you mean"),
    ("timing: {worker: {compute: {dist: exponential, rate: 1}, speeed: 2}}", "timing.worker.speeed", "did you mean 'speed'"),
    ("timing: {worker: {compute: {dist: empirical, file: nope.csv, column: x}}}", "timing.worker.compute.file",
     "trace file not found"),
    ("timing: {worker: {compute: 1}, overrides: [{edges: [5], worker: {speed: 2}}]}", "timing.overrides[0].edges[0]",
     "out of range"),
    ("timing: {worker: {compute: 1}, failures: {worker: 1.5}}", "timing.failures.worker", "must be <= 1"),
    ("schemes: [{scheme: hgc, s_e: 0, s_w: 3}]", "schemes[0].s_w", "smallest edge has 3 workers"),
    ("schemes: [{scheme: hgc, s_e: 2, s_w: 0}]", "schemes[0].s_e", "there are 2 edges"),
    ("schemes: [{scheme: flat_gc, s: 6}]", "schemes[0].s", "there are 6 workers"),
    ("schemes: [hgcc]", "schemes[0]", "did you mean 'hgc'"),
    ("schemes: [{scheme: flat_gc, s_e: 1}]", "schemes[0].s_e", "unknown key"),
    ("train: {dataset: mnist}", "train.dataset", "expected one of"),
    ("data: {partitions: 0}", "data.partitions", "must be >= 1"),
]

BASE = {
    "topology": "topology: {edges: 2, workers: [3, 3]}",
    "timing": "timing: {worker: {compute: {dist: exponential, mean: 1.0}}}",
}


@pytest.mark.parametrize("line, key, fragment", BAD_CASES, ids=[c[1] for c in BAD_CASES])
def test_bad_config_exits_2_with_one_line_naming_file_and_key(cli, write_config, line, key, fragment):
    top_key = line.split(":", 1)[0]
    lines = [line] + [text for name, text in BASE.items() if name != top_key]
    config = write_config("\n".join(lines) + "\n", name="bad.yaml")
    result = cli("simulate", config, "--quiet")
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in result.output
    assert f"bad.yaml: {key}: " in message and fragment in message


def test_unreachable_hgc_bound_is_explained(cli, write_config):
    # (s_e + 1) * m_i > sum(m): the big edge cannot hold its share on distinct edges
    config = write_config("topology: {edges: 2, workers: [6, 2]}\n" + BASE["timing"] +
                          "\nschemes: [{scheme: hgc, s_e: 1, s_w: 0}]\n", name="bad.yaml")
    result = cli("simulate", config, "--quiet")
    assert result.exit_code == 2
    assert "bad.yaml: schemes[0]: " in result.stderr


@pytest.mark.parametrize("content, fragment", [
    ("topology: [1, 2\n", "malformed YAML: line"),
    ("", "the config is empty"),
    ("- 1\n- 2\n", "expected a mapping"),
])
def test_malformed_files(cli, write_config, content, fragment):
    config = write_config(content, name="bad.yaml")
    result = cli("simulate", config)
    assert result.exit_code == 2 and fragment in result.stderr and "bad.yaml" in result.stderr


def test_missing_file_and_bad_arguments(cli, tmp_path):
    result = cli("simulate", tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "nope.yaml: file not found" in result.stderr
    result = cli("simulate", tmp_path / "nope.yaml", "--trials", "many")
    assert result.exit_code == 2


def test_console_script_has_no_traceback_on_bad_input(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("topology: {edges: 2, workers: [3, 0]}\n" + BASE["timing"] + "\n")
    proc = subprocess.run([sys.executable, "-m", "hgc", "simulate", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {bad}: topology.workers[1]: must be >= 1, got 0"]


@pytest.mark.parametrize("args, fragment", [
    (["simulate", "CONFIG", "--trials", "0"], "Invalid value for '--trials'"),
    (["simulate", "CONFIG", "--seed", "-1"], "Invalid value for '--seed'"),
    (["simulate", "CONFIG", "--bogus"], "No such option '--bogus'"),
    (["simulate"], "Missing argument 'CONFIG'"),
    (["simulat"], "no such command 'simulat'; did you mean 'simulate'?"),
    (["sweep", "CONFIG", "--jobs", "0"], "Invalid value for '--jobs'"),
])
def test_bad_arguments_exit_2_with_one_line(cli, write_config, args, fragment):
    config = write_config(GOOD)
    result = cli(*[str(config) if a == "CONFIG" else a for a in args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: hgc") and fragment in lines[0]
