"""hgc emulate on real Dask clusters on loopback: exact gradients, the simulator's draws, process kills,
an existing scheduler, Ctrl-C, and no worker process outliving its parent."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import yaml

from hgc.config import config_from_mapping
from hgc.emulation.cluster import MALLOC_ENVIRON, EmulationCluster
from hgc.emulation.faults import parse_kills
from hgc.emulation.runner import emulate
from hgc.experiment import simulate
from hgc.rng import Stream, stream
from hgc.simulation import CompiledStrategy, sample_delays
from hgc.training import train

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
SCALE = 0.02   # model seconds -> tens of milliseconds

RAW = {
    "name": "emu-small",
    "seed": 6,
    "trials": 3000,
    "topology": {"edges": 2, "workers": 2},
    "timing": {"worker": {"compute": {"dist": "shifted_exponential", "shift": 1.0, "rate": 2.0}},
               "edge": {"uplink": {"dist": "exponential", "mean": 0.1}, "per_vector": 0.05}},
    "schemes": ["uncoded", {"scheme": "flat_gc", "s": 1}, {"scheme": "hgc", "s_e": 1, "s_w": 0},
                {"scheme": "hgc", "s_e": 0, "s_w": 1}],
    "train": {"dataset": "synthetic_classification", "samples": 200, "features": 4, "classes": 3,
              "iterations": 3, "learning_rate": 0.5},
}


# every kind of protocol, with exact gradients: uncoded, relaying with and without shorter messages, two
# layers with per-edge tolerances and shorter messages, unbalanced shares, and the heterogeneity-aware choice
RICH = {**copy.deepcopy(RAW),
        "topology": {"edges": 2, "workers": 3},
        "timing": {"worker": {"compute": {"dist": "shifted_exponential", "shift": 1.0, "rate": 2.0},
                              "per_vector": 0.02},
                   "edge": {"uplink": {"dist": "exponential", "mean": 0.1}, "per_vector": 0.05},
                   "overrides": [{"edges": [1], "workers": [0, 1], "worker": {"speed": 0.4}}]},
        "schemes": ["uncoded", {"scheme": "flat_gc", "s": 1}, {"scheme": "flat_gc", "s": 1, "reduction": 2},
                    {"scheme": "hgc", "s_e": 1, "s_w": 0}, {"scheme": "hgc", "s_e": 0, "s_w": 1},
                    {"scheme": "hgc", "s_e": 0, "s_w": [1, 0], "reduction_w": 2},
                    {"scheme": "hgc", "s_e": 0, "s_w": 1, "allocation": "speed"}, "hgc_hetero"],
        # unbalanced shares are exact on a grid of 840 partitions: at least one training row each
        "train": {**RAW["train"], "samples": 1100}}


def small_config(**changes):
    raw = copy.deepcopy(RAW)
    raw.update(changes)
    return config_from_mapping(raw)


def rich_config():
    return config_from_mapping(copy.deepcopy(RICH))


def write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "emu.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def library_run():
    return emulate(rich_config(), time_scale=SCALE, processes=2)


def test_every_scheme_decodes_the_exact_gradient_and_follows_hgc_train(library_run):
    history = library_run.history
    labels = list(history["label"].unique())
    assert labels[:6] == ["uncoded", "flat_gc(s=1)", "flat_gc(s=1,reduction=2)", "hgc(s_e=1,s_w=0)",
                          "hgc(s_e=0,s_w=1)", "hgc(s_e=0,s_w=[1,0],reduction_w=2)"] and len(labels) == 8
    assert history["decoded"].all() and (history["status"] == "ok").all()
    assert (history["rel_error"] <= 1e-9).all()
    chunks = {run.label: run.plan.n_chunks for run in library_run.runs}
    assert chunks["flat_gc(s=1,reduction=2)"] == 2 and chunks["hgc(s_e=0,s_w=[1,0],reduction_w=2)"] == 2
    unbalanced = [run for run in library_run.runs if run.strategy.worker_loads is not None]
    assert len(unbalanced) >= 1                                          # allocation: speed (and maybe hetero)
    trained = train(rich_config()).history
    for label, rows in history.groupby("label"):
        expected = trained[(trained["label"] == label) & (trained["iteration"] >= 1)]["loss"].to_numpy()
        np.testing.assert_allclose(rows["loss"].to_numpy(), expected, rtol=1e-9)


def test_predictions_are_the_simulator_on_the_same_draws_and_measured_times_honour_them(library_run):
    cfg = rich_config()
    sample = sample_delays(cfg.timing, stream(cfg.seed, Stream.EMULATE), 3)
    simulated = simulate(cfg).summary.set_index("label")
    for run in library_run.runs:
        expected, _ = CompiledStrategy(run.strategy, cfg.timing).iteration_times(sample)
        rows = library_run.history[library_run.history["label"] == run.label]
        np.testing.assert_allclose(rows["predicted_time"].to_numpy(), expected * SCALE, rtol=1e-12)
        # every node really took its drawn delay, so no iteration beats the model (1 ms of timer slack)
        assert (rows["time"].to_numpy() >= rows["predicted_time"].to_numpy() - 1e-3).all()
        assert run.simulated_mean == pytest.approx(simulated.loc[run.label, "mean_time"] * SCALE, rel=1e-12)
    summary = library_run.summary.set_index("label")
    assert (summary["iterations"] == 3).all() and (summary["lost"] == 0).all() and not summary["partial"].any()
    assert (summary["ratio"] >= 0.99).all()
    np.testing.assert_allclose(summary["overhead_per_iteration"],
                               summary["measured_mean"] - summary["predicted_mean"], rtol=1e-9, atol=1e-12)
    assert summary.loc["hgc(s_e=0,s_w=[1,0],reduction_w=2)", "s_w"] == "1;0"


def test_stragglers_observed_match_each_schemes_tolerance(library_run):
    history = library_run.history.set_index("label")
    assert (history.loc["uncoded", "worker_stragglers"] == 0).all()
    assert (history.loc["flat_gc(s=1)", "worker_stragglers"] == 1).all()            # N - (N - s)
    assert (history.loc["hgc(s_e=1,s_w=0)", "edge_stragglers"] == 1).all()
    assert (history.loc["hgc(s_e=1,s_w=0)", "worker_stragglers"] == 3).all()        # the unused edge's three
    assert (history.loc["hgc(s_e=0,s_w=1)", "worker_stragglers"] == 2).all()        # one per edge
    assert (history.loc["hgc(s_e=0,s_w=[1,0],reduction_w=2)", "worker_stragglers"] == 1).all()
    assert library_run.cluster["processes"] == 2


def test_local_cluster_processes_get_the_malloc_settings_also_after_a_restart():
    cfg = small_config()
    expected = [{k: str(v) for k, v in MALLOC_ENVIRON.items()}]
    with EmulationCluster(cfg.topology, processes=1) as cluster:
        assert len(cluster.placement) == 6 and set(cluster.placement.values()) == {"0"}
        before = cluster.hosts["0"]
        assert list(cluster.client.run(lambda: {k: os.environ.get(k) for k in MALLOC_ENVIRON}).values()) == expected
        assert cluster.kill("0") is not None
        target, _ = cluster.restore("0")                     # no spare: the nanny brings the process back
        assert target == "0" and cluster.hosts["0"] != before
        assert list(cluster.client.run(lambda: {k: os.environ.get(k) for k in MALLOC_ENVIRON}).values()) == expected


def test_kills_are_tolerated_within_each_schemes_tolerance_and_the_process_comes_back(tmp_path, cli):
    raw = copy.deepcopy(RAW)
    raw["schemes"] = [{"scheme": "flat_gc", "s": 1}, {"scheme": "hgc", "s_e": 1, "s_w": 0}]
    out = tmp_path / "out"
    result = cli("emulate", write(tmp_path, raw), "--iterations", "4", "--time-scale", str(SCALE),
                 "--kill", "0.1@2", "--kill", "1@3", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    history = pd.read_csv(out / "emulate.csv")
    status = {label: rows["status"].tolist() for label, rows in history.groupby("label", sort=False)}
    # iteration 2: worker 0.1 lost; iteration 3: edge 1 lost; every process restored for iteration 4
    assert status == {"flat_gc(s=1)": ["ok", "ok", "lost", "ok"],          # edge 1 relays two messages > s
                      "hgc(s_e=1,s_w=0)": ["ok", "ok", "ok", "ok"]}       # edge 0 lost a worker, edge 1 decodes
    assert history.groupby("iteration")["killed"].first().fillna("").tolist() == ["", "0.1", "e1", ""]
    assert (history.loc[history["decoded"], "rel_error"] <= 1e-9).all()
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["cluster"]["processes"] == 7                    # one process per node and a spare with --kill
    events = meta["fault_events"]
    assert len(events) == 4 and events[0]["restored_on"] == "6"        # the spare took over the first loss
    assert [e["nodes_lost"] for e in events] == [["0.1"], ["e1"]] * 2
    summary = pd.read_csv(out / "emulate_summary.csv").set_index("label")
    assert summary["lost"].to_dict() == {"flat_gc(s=1)": 1, "hgc(s_e=1,s_w=0)": 0}
    assert (out / "config.resolved.yaml").is_file() and not (out / "emulate.png").exists()   # hgc plot draws it


@pytest.fixture(scope="module")
def external_cluster():
    """A scheduler and three worker processes started outside hgc (as `dask scheduler` / `dask worker` would be)."""
    import logging

    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=3, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL)
    try:
        yield cluster
    finally:
        cluster.close()


def test_existing_scheduler_and_a_killed_process_replaced_by_another(external_cluster):
    cfg = small_config(schemes=[{"scheme": "hgc", "s_e": 0, "s_w": 1}])
    result = emulate(cfg, time_scale=SCALE, scheduler=external_cluster.scheduler_address,
                     kills=parse_kills(["0.0@1"], cfg.topology, 3), restart_timeout=0.0)
    assert result.cluster["scheduler"] == external_cluster.scheduler_address
    assert result.cluster["placement"]["1.1"] == result.cluster["placement"]["0.0"]   # 6 nodes on 3 processes
    # the process of worker 0.0 also hosts worker 1.1: both are lost, each within its edge's s_w = 1
    assert result.history["status"].tolist() == ["ok", "ok", "ok"]
    assert result.history["killed"].tolist() == ["0.0;1.1", "", ""]
    (event,) = result.events
    assert event["nodes_lost"] == ["0.0", "1.1"] and event["restored_on"] != event["process"]
    assert (result.history["rel_error"] <= 1e-9).all()


def test_bad_arguments_exit_2_with_one_line(tmp_path, cli):
    config = write(tmp_path, RAW)
    cases = [(["--kill", "0.5@1"], "--kill: '0.5@1': worker 5 out of range"),
             (["--kill", "x"], "--kill: expected EDGE.WORKER@ITERATION"),
             (["--kill", "0.0@4"], "iteration 4 out of range"),
             (["--time-scale", "0"], "--time-scale: must be a positive finite number"),
             (["--scheduler", "nowhere"], "--scheduler: expected a scheduler address"),
             (["--scheduler", "tcp://127.0.0.1:8786", "--jobs", "2"], "--jobs: only applies to the local cluster")]
    for args, message in cases:
        result = cli("emulate", config, *args, "--out", tmp_path / "o")
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, result.output)
    bad = copy.deepcopy(RAW)
    bad["topology"]["workers"] = 0
    result = cli("emulate", write(tmp_path, bad), "--out", tmp_path / "o")
    assert result.exit_code == 2 and "topology.workers: must be >= 1" in result.output


def test_unreachable_scheduler_is_a_config_error():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(Exception, match="cannot connect to the Dask scheduler") as info:
        EmulationCluster(small_config().topology, scheduler=f"tcp://127.0.0.1:{port}", timeout=2)
    assert info.value.key == "scheduler"


# ----------------------------------------------------------------------------------------------------
# The command as a separate process: Ctrl-C and a killed parent

def start(tmp_path: Path, *args: str) -> subprocess.Popen:
    raw = copy.deepcopy(RAW)
    raw["train"]["iterations"] = 400
    raw["schemes"] = [{"scheme": "hgc", "s_e": 0, "s_w": 1}]           # one bar of 400 iterations
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "hgc", "emulate", str(write(tmp_path, raw)), "--time-scale", "0.05",
                             "--jobs", "2", "--progress", "--out", str(tmp_path / "out"), *args], cwd=tmp_path,
                            env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def wait_for_progress(process: subprocess.Popen, iterations: int, timeout: float = 120.0) -> str:
    """Read the progress bar from stderr until it shows ``iterations`` done."""
    seen: list[bytes] = []

    def read() -> None:
        while chunk := process.stderr.read1(4096):
            seen.append(chunk)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = b"".join(seen).decode(errors="replace")
        if max((int(n) for n in re.findall(r"(\d+)/400", text)), default=0) >= iterations:
            return text
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"no progress: {b''.join(seen).decode(errors='replace')[-500:]}")


def test_ctrl_c_keeps_the_finished_iterations_marked_partial_and_exits_130(tmp_path):
    process = start(tmp_path, "--calibrate")
    try:
        wait_for_progress(process, 3)
        os.killpg(process.pid, signal.SIGINT)                 # what a terminal sends on Ctrl-C
        assert process.wait(timeout=120) == 130
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    history = pd.read_csv(tmp_path / "out" / "emulate.csv")
    summary = pd.read_csv(tmp_path / "out" / "emulate_summary.csv")
    assert len(history) >= 3 and history["decoded"].all()
    assert summary["partial"].all() and len(summary) == 1
    assert json.loads((tmp_path / "out" / "metadata.json").read_text())["interrupted"] is True
    assert not (tmp_path / "out" / "calibration.yaml").exists()      # no fit to part of a run


def test_no_worker_process_outlives_a_killed_parent(tmp_path):
    process = start(tmp_path)
    try:
        wait_for_progress(process, 2)
        parent = psutil.Process(process.pid)
        children = parent.children(recursive=True)
        assert len(children) >= 2
        parent.kill()                                         # SIGKILL: no clean-up code runs
        process.wait(timeout=30)
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        for child in psutil.Process().children(recursive=True):
            if child.pid == process.pid:
                child.kill()


def test_plot_of_a_results_directory(library_run, tmp_path, cli):
    from hgc.plotting import figures

    library_run.write(tmp_path)
    assert set(figures(tmp_path).figures) == {"emulate.png"}
    result = cli("plot", tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "emulate.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "emulate_summary.csv").unlink()                          # the means come from the history
    assert set(figures(tmp_path).figures) == {"emulate.png"}
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["complete"] is True and len(meta["strategies"]) == 8
