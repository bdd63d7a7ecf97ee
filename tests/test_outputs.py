"""Output paths checked before computing, files written with the user's umask, trace files read safely."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

import hgc.cli.simulate
from hgc.errors import ConfigError
from hgc.output import atomic_write_text, prepare_output_dir
from hgc.traces import MAX_FIELD_CHARS, load_trace

CONFIG = """\
name: outputs
seed: 1
trials: 2000
topology: {edges: 2, workers: 3}
timing:
  worker:
    compute: {dist: exponential, mean: 1.0}
schemes: [uncoded, {scheme: hgc, s_e: 1, s_w: 1}]
"""


@pytest.fixture
def no_computation(monkeypatch):
    """Fail the test if simulate starts computing."""

    def forbidden(*args, **kwargs):
        raise AssertionError("computed before checking the output directory")

    import hgc.experiment

    monkeypatch.setattr(hgc.experiment, "simulate", forbidden)  # the command imports it when it runs


def _single_error_line(result) -> str:
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_out_that_is_a_file_fails_before_computing(cli, write_config, tmp_path, no_computation):
    path = write_config(CONFIG)
    target = tmp_path / "taken"
    target.write_text("not a directory")
    line = _single_error_line(cli("simulate", path, "--out", target, "--quiet"))  # click's own check
    assert "'--out'" in line and "is a file" in line
    line = _single_error_line(cli("simulate", path, "--out", target / "below", "--quiet"))
    assert line.startswith("error: --out: ") and "Not a directory" in line


def test_unwritable_default_directory_names_the_config_and_name(cli, write_config, tmp_path, monkeypatch,
                                                                no_computation):
    path = write_config(CONFIG)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").write_text("a file where the results directory would go")
    line = _single_error_line(cli("simulate", path, "--quiet"))
    assert line.startswith(f"error: {path}: name: cannot write results to results/outputs")


def test_read_only_location_fails_before_computing(cli, write_config, no_computation):
    path = write_config(CONFIG)
    line = _single_error_line(cli("simulate", path, "--out", "/proc/hgc-results", "--quiet"))
    assert line.startswith("error: --out: cannot write results to /proc/hgc-results")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory_fails_before_computing(cli, write_config, tmp_path, no_computation):
    path = write_config(CONFIG)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        line = _single_error_line(cli("simulate", path, "--out", locked, "--quiet"))
        assert "Permission denied" in line
    finally:
        locked.chmod(0o755)


def test_prepare_output_dir_leaves_no_probe(tmp_path):
    prepare_output_dir(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir() and not list((tmp_path / "a" / "b").iterdir())
    with pytest.raises(ConfigError, match="embedded null"):
        prepare_output_dir(tmp_path / "x\0y")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_are_written_with_the_users_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        written = atomic_write_text(tmp_path / "f.csv", "a,b\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(written.stat().st_mode) == mode
    assert not list(tmp_path.glob(".*.tmp"))


def test_results_of_a_run_are_readable_by_group_and_others(cli, write_config, tmp_path):
    old = os.umask(0o022)
    try:
        assert cli("simulate", write_config(CONFIG), "--out", tmp_path / "out", "--quiet").exit_code == 0
    finally:
        os.umask(old)
    for name in ("summary.csv", "quantiles.csv", "metadata.json", "config.resolved.yaml"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o644, name


def test_unwritable_file_is_a_one_line_config_error(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(ConfigError) as info:
        atomic_write_text(tmp_path / "dir", "x")  # a directory in the way
    assert info.value.source == str(tmp_path / "dir") and "cannot write here" in info.value.message


# ---------------------------------------------------------------------------------------------------- traces


def _trace_config(file: str, column: str = "seconds") -> str:
    return CONFIG.replace("{dist: exponential, mean: 1.0}", f"{{dist: empirical, file: '{file}', column: {column}}}")


def test_trace_pointing_at_a_system_file_reveals_nothing(cli, write_config, tmp_path):
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    path = write_config(_trace_config(str(secret), "nope"))
    line = _single_error_line(cli("simulate", path, "--out", tmp_path / "out", "--quiet"))
    assert "has no column 'nope'" in line and "does not look like a CSV file" in line
    assert "root" not in line.replace(str(tmp_path), "") and "bin/bash" not in line
    # naming the first line as the column does not make it print the second one
    path = write_config(_trace_config(str(secret), "'root:x:0:0:root:/root:/bin/bash'"), "c2.yaml")
    line = _single_error_line(cli("simulate", path, "--out", tmp_path / "out", "--quiet"))
    assert "line 2" in line and "daemon" not in line and "nologin" not in line


def test_missing_column_of_a_real_trace_lists_a_few_names(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("worker,seconds,extra\n0,1.5,x\n1,2.5,y\n")
    with pytest.raises(ConfigError) as info:
        load_trace(trace, "second", "timing.worker.compute.file")
    assert info.value.key == "timing.worker.compute.column"
    assert "did you mean 'seconds'?" in info.value.message and "(columns: worker, seconds, extra)" in info.value.message
    assert load_trace(trace, "seconds", "k").tolist() == [1.5, 2.5]


@pytest.mark.parametrize("content, fragment", [
    (b"seconds\n1.0\n\xff\xfe\n", "not a UTF-8 text file"),
    (b"seconds\n" + b"1" * (MAX_FIELD_CHARS + 10) + b"\n", f"longer than {MAX_FIELD_CHARS} characters"),
    (b"seconds\n1.0\n-2\n", "line 3: the value in column 'seconds' is not a finite number >= 0"),
    (b"seconds\n1.0\nnan\n", "line 3"),
    (b"seconds\n1.0\n\"\n", "line 3"),
    (b"seconds\n", "has no rows"),
    (b"", "is empty"),
])
def test_bad_traces_are_one_line_errors(tmp_path, content, fragment):
    trace = tmp_path / "t.csv"
    trace.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_trace(trace, "seconds", "timing.worker.compute.file")
    assert fragment in info.value.message and "\n" not in info.value.one_line()


def test_trace_with_bom_and_blank_lines_is_read(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_bytes("\ufeffseconds\n1.0\n\n2.0\n".encode())
    assert np.array_equal(load_trace(trace, "seconds", "k"), [1.0, 2.0])


def test_trace_that_is_a_directory_or_missing(tmp_path):
    with pytest.raises(ConfigError, match="not a file"):
        load_trace(tmp_path, "seconds", "k")
    with pytest.raises(ConfigError, match="not found"):
        load_trace(Path(tmp_path / "missing.csv"), "seconds", "k")
