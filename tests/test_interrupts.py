"""Ctrl-C and SIGTERM: exit status 130, finished work kept and labelled, unfinished work never saved."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import hgc.optimize
import hgc.simulation
import hgc.training.trainer as trainer
import hgc.verify
from hgc.errors import Interrupted
from hgc.interrupts import deferred_interrupts
from hgc.simulation import CHUNK_TRIALS

REPO = Path(__file__).resolve().parents[1]

CONFIG = """\
name: stop
seed: 4
trials: 20000
topology: {edges: 3, workers: 4}
timing:
  worker:
    compute: {dist: shifted_exponential, shift: 1.0, mean: 0.5}
    overhead: {dist: exponential, mean: 0.05}
schemes: [uncoded, {scheme: hgc, s_e: 1, s_w: 1}, {scheme: flat_gc, s: 2}]
"""

PILOT = CONFIG.replace("schemes: [uncoded, {scheme: hgc, s_e: 1, s_w: 1}, {scheme: flat_gc, s: 2}]",
                       "  edge: {per_vector: 0.01}\nschemes: [uncoded, {scheme: flat_gc, s: auto}]")


@pytest.fixture(autouse=True)
def ctrl_c_raises():
    """Python's own Ctrl-C handler for the test (a shell starting pytest in the background ignores
    SIGINT, and processes keep ignoring it)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_on_call(monkeypatch, module, name: str, call: int) -> list[int]:
    """Make ``module.name`` raise KeyboardInterrupt on its ``call``-th call (1-based)."""
    real = getattr(module, name)
    calls: list[int] = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)
    return calls


def _interrupt_on_block(monkeypatch, block: int) -> list[int]:
    """Make the Monte Carlo engine evaluate one stream block per pass and raise KeyboardInterrupt when the
    ``block``-th block (1-based, counted over every run of the command) is about to be merged."""
    real_plan = hgc.simulation.plan_passes
    monkeypatch.setattr(hgc.simulation, "plan_passes", lambda *a, **k: (real_plan(*a, **k)[0], 1))
    return _interrupt_on_call(monkeypatch, hgc.simulation, "merge_results", block)


def _meta(directory: Path) -> dict:
    return json.loads((directory / "metadata.json").read_text())


# ---------------------------------------------------------------------------------------------------- simulate


def test_simulate_interrupted_writes_the_completed_chunks_labelled(cli, write_config, tmp_path, monkeypatch):
    path = write_config(CONFIG)
    _interrupt_on_block(monkeypatch, 3)
    result = cli("simulate", path, "--out", tmp_path / "cut", "--quiet")
    assert result.exit_code == 130
    assert "interrupted after 8192 of 20000 trials" in result.stderr
    meta = _meta(tmp_path / "cut")
    assert meta["interrupted"] is True and meta["complete"] is False
    assert meta["trials"] == 2 * CHUNK_TRIALS and meta["trials_requested"] == 20000
    summary = pd.read_csv(tmp_path / "cut" / "summary.csv")
    assert (summary["trials"] == 2 * CHUNK_TRIALS).all()

    # the partial statistics are exactly those of a finished run of the completed trials
    monkeypatch.undo()
    full = cli("simulate", path, "--out", tmp_path / "full", "--quiet", "--trials", str(2 * CHUNK_TRIALS))
    assert full.exit_code == 0
    assert (tmp_path / "full" / "summary.csv").read_bytes() == (tmp_path / "cut" / "summary.csv").read_bytes()


def test_simulate_interrupted_before_any_chunk_writes_nothing(cli, write_config, tmp_path, monkeypatch):
    path = write_config(CONFIG)
    _interrupt_on_block(monkeypatch, 1)
    result = cli("simulate", path, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 130 and "nothing unfinished was saved" in result.stderr
    assert not (tmp_path / "out" / "summary.csv").exists()


def test_a_chunk_is_added_to_every_scheme_or_to_none(write_config, monkeypatch):
    """A signal arriving while one block's statistics are being merged is held until every scheme has it."""
    from hgc.config import load_config
    from hgc.experiment import resolve_schemes

    config = load_config(write_config(CONFIG))
    strategies = [r.strategy for r in resolve_schemes(config)]
    real_plan = hgc.simulation.plan_passes
    monkeypatch.setattr(hgc.simulation, "plan_passes", lambda *a, **k: (real_plan(*a, **k)[0], 1))
    real_absorb = hgc.simulation.TimeStatistics.absorb
    calls: list[int] = []

    def absorb(self, values):
        calls.append(1)
        real_absorb(self, values)
        if len(calls) == len(strategies) + 1:  # block 2, after the first scheme
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(hgc.simulation.TimeStatistics, "absorb", absorb)
    with pytest.raises(Interrupted) as info:
        hgc.simulation.run_strategies(config.timing, strategies, seed=1, trials=10 * CHUNK_TRIALS)
    run = info.value.partial
    assert run.interrupted and run.trials_done == 2 * CHUNK_TRIALS
    assert [stats.trials for stats in run.statistics] == [2 * CHUNK_TRIALS] * len(strategies)


def test_interrupted_pilot_never_chooses_s(cli, write_config, tmp_path, monkeypatch):
    path = write_config(PILOT)
    import hgc.optimizer.flat

    real = hgc.optimizer.flat.run_strategies
    real_plan = hgc.simulation.plan_passes
    monkeypatch.setattr(hgc.simulation, "plan_passes", lambda *a, **k: (real_plan(*a, **k)[0], 1))

    def interrupted_pilot(*args, **kwargs):
        def stop(chunks):
            yield next(iter(chunks))
            raise KeyboardInterrupt

        return real(*args, **{**kwargs, "progress": stop})

    monkeypatch.setattr(hgc.optimizer.flat, "run_strategies", interrupted_pilot)
    from hgc.config import load_config

    config = load_config(path)
    with pytest.raises(KeyboardInterrupt):  # the library never returns a choice made on part of a pilot
        hgc.optimizer.best_flat_gc(config.timing, seed=config.seed)
    result = cli("simulate", path, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 130
    assert not (tmp_path / "out" / "summary.csv").exists() and not (tmp_path / "out" / "metadata.json").exists()


# ---------------------------------------------------------------------------------------------------- optimize, verify, train


def test_optimize_interrupted_in_its_monte_carlo_check_writes_nothing(cli, write_config, tmp_path, monkeypatch):
    path = write_config(CONFIG)
    _interrupt_on_block(monkeypatch, 2)
    result = cli("optimize", path, "--out", tmp_path / "out", "--quiet", "--trials", "20000")
    assert result.exit_code == 130
    assert not (tmp_path / "out" / "optimize.csv").exists() and not (tmp_path / "out" / "metadata.json").exists()


def test_verify_interrupted_keeps_checked_codes_labelled(cli, write_config, tmp_path, monkeypatch):
    path = write_config(CONFIG)
    _interrupt_on_call(monkeypatch, hgc.verify, "check_code", 3)
    result = cli("verify", path, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 130 and "2 codes checked completely" in result.stderr
    table = pd.read_csv(tmp_path / "out" / "verify.csv")
    assert table["scheme"].tolist() == ["uncoded", "hgc"]
    meta = _meta(tmp_path / "out")
    assert meta["interrupted"] is True and meta["complete"] is False and meta["codes"] == 2


def test_verify_interrupted_on_the_first_code_writes_nothing(cli, write_config, tmp_path, monkeypatch):
    path = write_config(CONFIG)
    _interrupt_on_call(monkeypatch, hgc.verify, "check_code", 1)
    result = cli("verify", path, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 130 and not (tmp_path / "out" / "verify.csv").exists()


def test_train_interrupted_keeps_finished_schemes_labelled(cli, write_config, tmp_path, monkeypatch):
    path = write_config(CONFIG + "train: {iterations: 10}\n")
    _interrupt_on_call(monkeypatch, trainer, "coded_descent", 3)
    result = cli("train", path, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 130
    summary = pd.read_csv(tmp_path / "out" / "train_summary.csv")
    assert summary["scheme"].tolist() == ["uncoded", "hgc"]
    meta = _meta(tmp_path / "out")
    assert meta["interrupted"] is True and meta["complete"] is False


# ---------------------------------------------------------------------------------------------------- sweep (serial, in process)


def _sweep_file(tmp_path: Path, trials: int = 12000, values: int = 4) -> Path:
    base = tmp_path / "base.yaml"
    base.write_text(CONFIG.replace("trials: 20000", f"trials: {trials}"))
    sweep = tmp_path / "sweep.yaml"
    shifts = ", ".join(str(0.5 + 0.25 * i) for i in range(values))
    sweep.write_text(f"name: sw\nbase: base.yaml\ngrid:\n  timing.worker.compute.shift: [{shifts}]\n")
    return sweep


def test_serial_sweep_interrupted_inside_a_point_never_saves_it(cli, tmp_path, monkeypatch):
    sweep = _sweep_file(tmp_path)
    chunks_per_point = 3  # 12000 trials
    _interrupt_on_block(monkeypatch, 2 * chunks_per_point + 2)  # inside point 2
    out = tmp_path / "out"
    result = cli("sweep", sweep, "--executor", "serial", "--out", out, "--quiet")
    assert result.exit_code == 130
    assert "2 points finished in this run and were saved, 2 pending" in result.stderr
    assert len(list((out / "points").glob("*.json"))) == 2
    meta = _meta(out)
    assert meta["interrupted"] is True and meta["complete"] is False and meta["pending"] == 2
    assert pd.read_csv(out / "sweep.csv")["timing.worker.compute.shift"].unique().tolist() == [0.5, 0.75]

    monkeypatch.undo()
    result = cli("sweep", sweep, "--executor", "serial", "--out", out, "--quiet")
    assert result.exit_code == 0
    meta = _meta(out)
    assert meta["resumed"] == 2 and meta["computed"] == 2 and meta["complete"] is True
    reference = tmp_path / "reference"
    assert cli("sweep", sweep, "--executor", "serial", "--out", reference, "--quiet").exit_code == 0
    assert (out / "sweep.csv").read_bytes() == (reference / "sweep.csv").read_bytes()


def test_deferred_interrupts_deliver_after_the_block():
    order = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            signal.raise_signal(signal.SIGINT)
            order.append("block finished")
    assert order == ["block finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ---------------------------------------------------------------------------------------------------- real signals


def _start(*args: object, cwd: Path) -> tuple[subprocess.Popen, list[bytes]]:
    """``python -m hgc ARGS`` in its own session; stderr collected in the background."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "hgc", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=_default_sigint)
    chunks: list[bytes] = []

    def pump() -> None:
        assert proc.stderr is not None
        for block in iter(lambda: proc.stderr.read1(4096), b""):
            chunks.append(block)

    threading.Thread(target=pump, daemon=True).start()
    return proc, chunks


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert proc.poll() is None, "the command ended before it could be interrupted"
        time.sleep(0.02)
    raise AssertionError("timed out waiting for the command to make progress")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_simulate_real_signal_writes_completed_trials_and_exits_130(tmp_path, sig):
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG.replace("trials: 20000", f"trials: {4000 * CHUNK_TRIALS}"))
    proc, err = _start("simulate", config, "--out", tmp_path / "out", "--progress", cwd=tmp_path)
    progress = re.compile(rb"simulate:.*\|\s*([1-9]\d*)/")
    _wait_for(lambda: progress.search(b"".join(err)) is not None, proc)
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == 130, b"".join(err).decode()
    meta = _meta(tmp_path / "out")
    assert meta["interrupted"] is True and meta["complete"] is False
    assert 0 < meta["trials"] < meta["trials_requested"] and meta["trials"] % CHUNK_TRIALS == 0
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert (summary["trials"] == meta["trials"]).all()


def _sweep_signal_test(tmp_path: Path, executor: list[str], killpg: bool) -> None:
    sweep = _sweep_file(tmp_path, trials=40 * CHUNK_TRIALS, values=6)
    out = tmp_path / "out"
    proc, err = _start("sweep", sweep, *executor, "--out", out, "--quiet", cwd=tmp_path)
    _wait_for(lambda: (out / "points").is_dir() and any((out / "points").glob("*.json")), proc, timeout=300)
    workers = _children(proc.pid)
    signal_time = time.monotonic()
    if killpg:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground group
    else:
        proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130, b"".join(err).decode()
    stopped_after = time.monotonic() - signal_time
    assert stopped_after < 30, stopped_after  # promptly: running points are abandoned, not awaited
    deadline = time.monotonic() + 20
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "worker processes outlived the interrupted sweep"
    meta = _meta(out)
    finished = len(list((out / "points").glob("*.json")))
    assert meta["interrupted"] is True and meta["complete"] is False
    assert meta["pending"] == 6 - finished and finished < 6
    assert len(pd.read_csv(out / "sweep.csv")) == 3 * finished

    resumed = subprocess.run([sys.executable, "-m", "hgc", "sweep", sweep, "--executor", "serial", "--out", out,
                              "--quiet"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                             capture_output=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr.decode()
    meta = _meta(out)
    assert meta["resumed"] == finished and meta["computed"] == 6 - finished and meta["complete"] is True


@pytest.mark.slow
def test_process_sweep_ctrl_c_keeps_finished_points_and_kills_workers(tmp_path):
    _sweep_signal_test(tmp_path, ["--executor", "process", "--jobs", "2"], killpg=True)


@pytest.mark.slow
def test_dask_sweep_sigint_keeps_finished_points_and_stops_workers(tmp_path):
    _sweep_signal_test(tmp_path, ["--executor", "dask", "--jobs", "2"], killpg=False)


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["process", "dask"])
def test_workers_die_when_their_parent_is_killed(tmp_path, executor):
    sweep = _sweep_file(tmp_path, trials=400 * CHUNK_TRIALS, values=4)
    out = tmp_path / "out"
    proc, err = _start("sweep", sweep, "--executor", executor, "--jobs", "2", "--out", out, "--quiet", cwd=tmp_path)
    _wait_for(lambda: len(_children(proc.pid)) >= 2, proc, timeout=300)
    time.sleep(1.0)  # let the workers take their tasks
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)  # only the parent: as if it crashed
    proc.wait()
    deadline = time.monotonic() + 30
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [w for w in workers if _alive(w)]
    for w in survivors:
        os.kill(w, signal.SIGKILL)
    assert not survivors, f"{executor} workers outlived their parent"
