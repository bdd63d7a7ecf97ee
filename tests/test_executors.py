"""Executors: serial, process pool and a real Dask cluster give the same sweep.csv bytes."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from hgc.errors import ConfigError
from hgc.executors import DaskExecutor, ProcessExecutor, SerialExecutor, make_executor

SWEEP = """\
name: exec
base:
  seed: 11
  trials: 3000
  topology: {edges: 3, workers: [2, 3, 3]}
  timing:
    worker:
      compute: {dist: shifted_exponential, shift: 1.0, rate: 2.0}
      overhead: {dist: exponential, mean: 0.05}
    edge:
      uplink: {dist: exponential, rate: 20}
  schemes: [uncoded, {scheme: flat_gc, s: 1}, {scheme: hgc, s_e: 1, s_w: 1}]
grid:
  timing.worker.overhead.mean: [0.01, 0.1, 0.3]
zip:
  topology.edges: [3, 4]
  topology.workers: [3, 2]
"""


@pytest.fixture
def sweep_file(tmp_path: Path) -> Path:
    path = tmp_path / "exec.yaml"
    path.write_text(textwrap.dedent(SWEEP))
    return path


@pytest.fixture(scope="module")
def dask_cluster():
    """A real Dask cluster on loopback: a scheduler and two single-threaded worker processes."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address="127.0.0.1:0")
    try:
        yield cluster
    finally:
        cluster.close()


def _square(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x * x


def _crash(x: int) -> int:
    os._exit(1)  # a worker process dying mid-task


def test_executors_map_and_report_errors(dask_cluster):
    with SerialExecutor() as ex:
        got = {t: (r, type(e).__name__ if e else None) for t, r, e in ex.run(_square, [1, 2, 3])}
    expected = {1: (1, None), 2: (4, None), 3: (None, "ValueError")}
    assert got == expected
    with ProcessExecutor(2) as ex:
        assert {t: (r, type(e).__name__ if e else None) for t, r, e in ex.run(_square, [1, 2, 3])} == expected
    with DaskExecutor(2, scheduler=dask_cluster.scheduler_address) as ex:
        assert {t: (r, type(e).__name__ if e else None) for t, r, e in ex.run(_square, [1, 2, 3])} == expected
        assert ex.describe()["dask_workers"] == 2


def test_process_executor_reports_a_dead_worker():
    with ProcessExecutor(1) as ex:
        results = list(ex.run(_crash, [1]))
    assert len(results) == 1 and results[0][2] is not None


def test_make_executor_rejects_bad_arguments():
    """Library errors name the parameter; the command line shows it as its option (--jobs, ...)."""
    from hgc.cli.common import cli_message

    for call, option in ((lambda: make_executor("process", jobs=0), "--jobs"),
                         (lambda: make_executor("process", scheduler="tcp://127.0.0.1:1"), "--scheduler"),
                         (lambda: make_executor("threads"), "--executor")):
        with pytest.raises(ConfigError) as err:
            call()
        assert err.value.key == option[2:] and cli_message(err.value).startswith(option)


@pytest.mark.slow
def test_same_bytes_serial_process_and_real_dask_cluster(sweep_file, tmp_path, cli, dask_cluster):
    runs = {
        "serial": ["--executor", "serial"],
        "process1": ["--executor", "process", "--jobs", "1"],
        "process2": ["--executor", "process", "--jobs", "2"],
        "dask": ["--executor", "dask", "--scheduler", dask_cluster.scheduler_address],
    }
    outputs = {}
    for name, args in runs.items():
        out = tmp_path / name
        result = cli("sweep", sweep_file, *args, "--out", out, "--quiet")
        assert result.exit_code == 0, (name, result.output)
        outputs[name] = (out / "sweep.csv").read_bytes()
    assert outputs["serial"].count(b"\n") == 1 + 6 * 3
    for name, data in outputs.items():
        assert data == outputs["serial"], f"{name} differs from serial"


@pytest.mark.slow
def test_local_dask_cluster_without_scheduler(sweep_file, tmp_path, cli):
    serial = tmp_path / "serial"
    assert cli("sweep", sweep_file, "--executor", "serial", "--out", serial, "--quiet").exit_code == 0
    result = cli("sweep", sweep_file, "--executor", "dask", "--jobs", "2", "--out", tmp_path / "dask", "--quiet")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "dask" / "sweep.csv").read_bytes() == (serial / "sweep.csv").read_bytes()


def test_unreachable_scheduler_is_a_config_error():
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConfigError, match="cannot connect to the Dask scheduler") as info:
        DaskExecutor(1, scheduler=f"tcp://127.0.0.1:{port}", timeout=2)
    assert info.value.key == "scheduler"
