"""How the simulator cuts its work never changes the numbers: memory budget, passes, executors, backends,
interruption. Every comparison is exact (bytes or bit-identical floats)."""

from __future__ import annotations

import os
import re
import signal
import textwrap
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pytest

from hgc.distributions import Constant, parse_distribution
from hgc.errors import ConfigError
from hgc.executors import SerialExecutor
from hgc.rng import stream
from hgc.schemes import make_strategy
from hgc.errors import Interrupted
from hgc.simulation import (CHUNK_TRIALS, MIB, Sampler, TimeStatistics, _Evaluator, block_trials, plan_passes,
                            run_strategies)
from hgc.timing import TimingModel
from hgc.topology import Topology

CONFIG = """\
name: engine
seed: 5
trials: 30000
topology: {edges: 3, workers: [4, 2, 3]}
timing:
  worker:
    compute: {dist: shifted_exponential, shift: 1.0, rate: 2.0}
    overhead: {dist: exponential, mean: 0.05}
  edge:
    process: {dist: bimodal, p: 0.1, fast: 0.0, slow: {dist: exponential, mean: 0.5}}
    uplink: {dist: exponential, rate: 20}
    per_vector: 0.01
  failures: {worker: 0.02, edge: 0.01}
  overrides:
    - {edges: [1], worker: {speed: 0.5}}
schemes: [uncoded, {scheme: flat_gc, s: 2}, {scheme: hgc, s_e: 1, s_w: 1}]
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "engine.yaml"
    path.write_text(textwrap.dedent(CONFIG))
    return path


def small_model(**overrides: Any) -> TimingModel:
    topo = Topology((3, 5, 2, 4))
    values: dict[str, Any] = {
        "overhead": parse_distribution({"dist": "uniform", "low": 0.0, "high": 0.2}, "x"),
        "edge_process": parse_distribution({"dist": "exponential", "mean": 0.1}, "x"), **overrides}
    return TimingModel.homogeneous(
        topo, parse_distribution({"dist": "shifted_exponential", "shift": 0.3, "mean": 1.3}, "x"), **values)


def small_strategies(model: TimingModel) -> list:
    topo = model.topology
    selection = {"edges": (0, 1, 3), "workers": ((0, 2), (0, 1, 2, 4), (1, 2, 3))}
    return [make_strategy("uncoded", topo, load=1 / 14), make_strategy("flat_gc", topo, s=4, load=5 / 14),
            make_strategy("hgc", topo, s_e=1, s_w=1, load=0.3), make_strategy("hgc", topo, s_e=2, s_w=0, load=0.3),
            make_strategy("flat_gc", topo, s=2, load=0.3, **selection),
            make_strategy("hgc", topo, s_e=1, s_w=1, load=0.3, **selection)]


def state(stats: TimeStatistics) -> tuple:
    return (stats.trials, stats.decoded, stats.mean, stats.m2, stats.vectors, stats.minimum, stats.maximum,
            stats.histogram.tobytes())


# ----------------------------------------------------------------------------------------------------
# The stream definition and the memory budget

def test_block_trials_keep_4096_for_small_systems_and_bound_node_trials():
    assert block_trials(Topology((10,) * 10)) == CHUNK_TRIALS
    assert block_trials(Topology((50,) * 10)) == CHUNK_TRIALS          # 510 nodes: unchanged definition
    assert block_trials(Topology((100,) * 100)) == 128                   # 10 100 nodes
    assert block_trials(Topology((100,) * 1000)) == 16                   # 101 000 nodes
    for topo in (Topology((7,) * 3), Topology((100,) * 100), Topology((100,) * 1000), Topology((3000,) * 1000)):
        size = block_trials(topo)
        assert size == 1 or (topo.n_workers + topo.n_edges) * size <= 2 ** 21


def test_memory_budget_changes_passes_not_numbers():
    model = small_model(worker_failure=0.03, edge_failure=0.02, per_vector=0.05)
    strategies = small_strategies(model)
    _, many = plan_passes(model, strategies)
    _, one = plan_passes(model, strategies, memory=6 * MIB)
    assert many > 1 and one == 1
    trials = 7 * CHUNK_TRIALS + 123
    runs = [run_strategies(model, strategies, seed=3, trials=trials, memory=budget, backend=backend)
            for budget in (None, 6 * MIB, 66 * MIB) for backend in ("numpy", "numba")
            if backend == "numpy" or _numba()]
    assert {CHUNK_TRIALS, many * CHUNK_TRIALS} <= {r.pass_trials for r in runs}  # cut differently
    for other in runs[1:]:
        assert [state(s) for s in other.statistics] == [state(s) for s in runs[0].statistics]
        assert other.trials_done == trials


def test_budget_below_one_block_is_a_clear_error():
    model = small_model()
    with pytest.raises(ConfigError, match="too small") as info:
        plan_passes(model, small_strategies(model), memory=MIB)
    assert info.value.key == "memory"


def test_cli_same_bytes_under_different_budgets(config_file, tmp_path, cli):
    outputs = []
    for memory in ("4", "256"):
        out = tmp_path / f"m{memory}"
        result = cli("simulate", config_file, "--memory", memory, "--out", out, "--quiet")
        assert result.exit_code == 0, result.output
        outputs.append((out / "summary.csv").read_bytes())
    assert outputs[0] == outputs[1]
    result = cli("simulate", config_file, "--memory", "1", "--out", tmp_path / "tiny", "--quiet")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(r"error: --memory: a memory budget of 1 MiB is too small for this "
                                            r"system: one block of 4096 trials needs about \d\.\d MiB", lines[0])


# ----------------------------------------------------------------------------------------------------
# Backends

def _numba() -> bool:
    from hgc import simkernel

    return simkernel.AVAILABLE


numba_only = pytest.mark.skipif(not _numba(), reason="numba is not installed")

EXTRA_MODELS = {
    "plain": {},
    "links": {"per_vector": 0.05},
    "failures": {"per_vector": 0.05, "worker_failure": 0.1, "edge_failure": 0.1},
    "worker links and constant uplink": {"worker_per_vector": 0.01, "edge_uplink": Constant(0.3)},
    "random worker uplink": {"uplink": parse_distribution({"dist": "gamma", "shape": 2.0, "scale": 0.1}, "x"),
                             "overhead": Constant(0.0)},
}


@numba_only
@pytest.mark.parametrize("name", sorted(EXTRA_MODELS))
def test_compiled_and_numpy_backends_are_bit_identical(name):
    model = small_model(**EXTRA_MODELS[name])
    strategies = small_strategies(model)
    plain = Sampler(model).sample(stream(7), 999)
    deferred = Sampler(model).sample(stream(7), 999, deferred=True)
    assert np.array_equal(deferred.materialized().compute, plain.compute)
    finish_a, received_a = _Evaluator(model, strategies, "numpy").times(plain)
    finish_b, received_b = _Evaluator(model, strategies, "numba").times(deferred)
    np.testing.assert_array_equal(finish_a, finish_b)
    decoded = np.isfinite(finish_a)  # received vectors only count for decoded trials
    np.testing.assert_array_equal(received_a[decoded], received_b[decoded])
    assert (~decoded).any() == (name == "failures")


@numba_only
@pytest.mark.parametrize("compute", [
    {"dist": "lognormal", "mu": 0.0, "sigma": 1.0}, {"dist": "pareto", "shape": 3, "scale": 1.0},
    {"dist": "bimodal", "p": 0.2, "fast": 1.0, "slow": {"dist": "exponential", "mean": 5}}, 2.0,
])
def test_backends_identical_for_other_families(compute):
    model = TimingModel.homogeneous(Topology((3, 5, 2, 4)), parse_distribution(compute, "x"),
                                    overhead=parse_distribution({"dist": "exponential", "mean": 0.1}, "x"))
    strategies = small_strategies(model)
    sample = Sampler(model).sample(stream(2), 500)
    a = _Evaluator(model, strategies, "numpy").times(sample)
    b = _Evaluator(model, strategies, "numba").times(Sampler(model).sample(stream(2), 500, deferred=True))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@numba_only
@pytest.mark.parametrize("kind, params", [
    ("flat_gc", {"s": s}) for s in (0, 5, 20, 40, 80, 149)] + [
    ("hgc", {"s_e": 1, "s_w": s_w}) for s_w in (0, 3, 17, 30, 39)])
@pytest.mark.parametrize("per_vector", [0.0, 0.001])
def test_backends_identical_on_large_edges(kind, params, per_vector):
    """Ranks far from both ends (quickselect) and edges too large for a sorting network."""
    topo = Topology((80, 40, 50))
    model = TimingModel.homogeneous(topo, parse_distribution({"dist": "exponential", "mean": 1.0}, "x"),
                                    per_vector=per_vector, worker_failure=0.05)
    strategies = [make_strategy(kind, topo, load=0.5, **params)]
    sample = Sampler(model).sample(stream(4), 200)
    a = _Evaluator(model, strategies, "numpy").times(sample)
    b = _Evaluator(model, strategies, "numba").times(sample)
    np.testing.assert_array_equal(a[0], b[0])
    decoded = np.isfinite(a[0])
    np.testing.assert_array_equal(a[1][decoded], b[1][decoded])


# ----------------------------------------------------------------------------------------------------
# Executors and interruption

class _OutOfOrder(SerialExecutor):
    """Runs every job, yields them last first, and is interrupted after ``deliver`` of them."""

    def __init__(self, deliver: int, jobs: int = 3):
        self.deliver = deliver
        self.jobs = jobs

    def describe(self) -> dict[str, Any]:
        return {"executor": "test", "jobs": self.jobs}

    def run(self, fn, tasks) -> Iterator:
        results = list(super().run(fn, tasks))
        for count, item in enumerate(reversed(results[1:] + results[:1])):
            if count == self.deliver:
                raise KeyboardInterrupt
            yield item


def test_results_are_merged_in_stream_order_whatever_the_completion_order():
    model = small_model(per_vector=0.05)
    strategies = small_strategies(model)
    trials = 9 * CHUNK_TRIALS + 77
    serial = run_strategies(model, strategies, seed=1, trials=trials)
    spread = run_strategies(model, strategies, seed=1, trials=trials, executor=_OutOfOrder(deliver=10 ** 6))
    assert not spread.interrupted and spread.trials_done == trials
    assert [state(s) for s in spread.statistics] == [state(s) for s in serial.statistics]


def test_interrupted_spread_run_keeps_a_prefix_of_blocks():
    model = small_model()
    strategies = small_strategies(model)
    trials = 24 * CHUNK_TRIALS
    # 12 jobs of two blocks; delivered: job 0, then jobs 11, 10, ...: only job 0 is a prefix
    with pytest.raises(Interrupted) as info:
        run_strategies(model, strategies, seed=8, trials=trials, executor=_OutOfOrder(deliver=4))
    run = info.value.partial
    assert run.interrupted and run.trials_done == 2 * CHUNK_TRIALS
    prefix = run_strategies(model, strategies, seed=8, trials=2 * CHUNK_TRIALS)
    assert [state(s) for s in run.statistics] == [state(s) for s in prefix.statistics]


def test_ctrl_c_stops_a_serial_run_at_a_block_boundary():
    model = small_model()
    strategies = small_strategies(model)

    def progress(passes: list[int]) -> Iterable[int]:
        for index, size in enumerate(passes):
            if index == 2:
                os.kill(os.getpid(), signal.SIGINT)  # the run stops here, keeping the merged passes
            yield size

    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted) as info:
        run_strategies(model, strategies, seed=4, trials=40 * CHUNK_TRIALS, memory=6 * MIB, progress=progress)
    run = info.value.partial
    assert run.interrupted and run.trials_done == 3 * run.pass_trials  # three passes, nothing more
    prefix = run_strategies(model, strategies, seed=4, trials=run.trials_done)
    assert [state(s) for s in run.statistics] == [state(s) for s in prefix.statistics]
    assert signal.getsignal(signal.SIGINT) is handler


def test_cli_same_bytes_serial_process_and_dask(config_file, tmp_path, cli):
    pytest.importorskip("distributed")
    runs = {"serial": [], "process": ["--executor", "process", "--jobs", "2"],
            "dask": ["--executor", "dask", "--jobs", "2"]}
    outputs = {}
    for name, extra in runs.items():
        out = tmp_path / name
        result = cli("simulate", config_file, *extra, "--out", out, "--quiet")
        assert result.exit_code == 0, result.output
        outputs[name] = (out / "summary.csv").read_bytes()
    assert outputs["process"] == outputs["serial"]
    assert outputs["dask"] == outputs["serial"]


@pytest.mark.parametrize("lists, length", [(1, 5), (3, 4), (10, 10), (7, 20), (4, 1)])
def test_merged_kth_largest_matches_sorting(lists, length):
    from hgc.simulation import merged_kth_largest

    values = np.round(stream(lists * length).exponential(1.0, (lists, length, 300)), 1)  # ties
    values[0, :, :7] = np.inf                                                              # a failed edge
    values = np.sort(values, axis=1)
    flat = np.sort(values.reshape(-1, 300), axis=0)
    for rank in range(1, min(16, lists * length) + 1):
        np.testing.assert_array_equal(merged_kth_largest(values, rank), flat[lists * length - rank])


def test_without_keep_partial_an_interrupt_propagates():
    """Pilot runs and checks inside other computations must not pass off a truncated run as a whole one."""
    model = small_model()
    with pytest.raises(KeyboardInterrupt):
        run_strategies(model, small_strategies(model), seed=1, trials=10 * CHUNK_TRIALS,
                       executor=_OutOfOrder(deliver=2))


def test_small_runs_use_the_numpy_evaluator_and_never_import_numba(tmp_path):
    """Loading numba and the cached kernels costs more than the compiled evaluator saves on a small run
    (start-up); both evaluators give the same numbers, so the choice is by size alone."""
    import subprocess
    import sys

    from hgc.simulation import SMALL_RUN_WORK, default_backend

    if os.environ.get("HGC_BACKEND"):
        pytest.skip("HGC_BACKEND forces a backend")
    assert default_backend(SMALL_RUN_WORK - 1) == "numpy"
    config = tmp_path / "tiny.yaml"
    config.write_text("topology: {edges: 2, workers: 2}\ntrials: 1000\ntiming:\n  worker: {compute: 1.0}\n"
                      "schemes: [uncoded, {scheme: hgc, s_e: 1, s_w: 1}]\n")
    program = ("import sys; from hgc.config import load_config; from hgc.experiment import simulate; "
               f"r = simulate(load_config({str(config)!r})); print(r.run.backend, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.stdout.split() == ["numpy", "False"]
