"""Simulator throughput, compile cost and memory.

1. Ratio of the simulator's time per trial to NumPy's time to just draw the same number of variates,
   for 10 edges x 10 workers and 4 schemes (uncoded, flat GC, two HGC), for each backend (the compiled
   ``numba`` evaluator and the pure ``numpy`` one; identical numbers). CPU time of this process: whole
   runs (fastest of ``--repeats`` alternating runs) and the median per-block ratio, each simulated block
   timed right before a plain draw of its variates (the figure least sensitive to other load on a
   shared machine). Target: <= 2.0.
2. Start-up of ``hgc simulate`` on a small config: numba compiling (an empty cache directory), numba
   loading its on-disk cache, and the numpy backend (wall time of the whole command).
3. Peak resident memory of a 10^7-trial run of the 10 x 10 system, in a fresh process. Target: < 1 GiB.

Usage: python benchmarks/simulate_throughput.py [--trials 100000] [--repeats 20] [--memory-trials 10000000]
                                                 [--skip-memory] [--skip-startup]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hgc.config import config_from_mapping
from hgc.experiment import resolve_schemes
from hgc.rng import stream
from hgc.simulation import (CHUNK_TRIALS, BlockJob, chunk_sizes, default_backend, evaluate_blocks, run_strategies,
                            sample_delays)

REPO = Path(__file__).resolve().parents[1]

SYSTEM = {
    "name": "bench-10x10",
    "seed": 1,
    "topology": {"edges": 10, "workers": 10},
    "timing": {
        "worker": {"compute": {"dist": "shifted_exponential", "shift": 1.0, "rate": 2.0},
                   "overhead": {"dist": "exponential", "mean": 0.02}},
        "edge": {"process": {"dist": "exponential", "mean": 0.05},
                 "uplink": {"dist": "exponential", "rate": 20}, "per_vector": 0.005},
    },
    "schemes": ["uncoded", {"scheme": "flat_gc", "s": 9}, {"scheme": "hgc", "s_e": 1, "s_w": 1},
                {"scheme": "hgc", "s_e": 2, "s_w": 3}],
}


def variates_per_trial(config) -> int:
    """Random numbers the simulator draws per trial (constants are not drawn)."""
    sample = sample_delays(config.timing, stream(0), 4)
    count = 0
    for array in (sample.compute, sample.fixed, sample.edge_delay):
        if not np.isscalar(array):
            count += array.shape[0]
    # fixed = overhead only (uplink is 0), edge_delay = process + uplink: two draws per edge
    return count + config.topology.n_edges


def time_numpy_draws(trials: int, per_trial: int, seed: int = 0) -> float:
    started = time.perf_counter()
    for index, size in enumerate(chunk_sizes(trials)):
        stream(seed, 99, index).standard_exponential((size, per_trial))
    return time.perf_counter() - started


def throughput(trials: int, repeats: int) -> None:
    """Whole runs (fastest of ``repeats`` alternating runs of ``trials`` trials) and, less sensitive to
    other load on a shared machine, the median over blocks of the ratio of the time to simulate one
    4096-trial block to the time to draw that block's variates, the two timed back to back."""
    config = config_from_mapping(SYSTEM)
    strategies = [r.strategy for r in resolve_schemes(config)]
    per_trial = variates_per_trial(config)
    backends = ["numba", "numpy"] if default_backend() == "numba" else ["numpy"]
    for backend in backends:  # warm-up (and compile)
        run_strategies(config.timing, strategies, seed=0, trials=CHUNK_TRIALS, backend=backend)
    best = {name: np.inf for name in backends + ["draw"]}
    clock = time.process_time
    for repeat in range(repeats):
        for backend in backends:
            started = clock()
            run_strategies(config.timing, strategies, seed=repeat, trials=trials, backend=backend)
            best[backend] = min(best[backend], clock() - started)
        started = clock()
        time_numpy_draws(trials, per_trial, seed=repeat)
        best["draw"] = min(best["draw"], clock() - started)
    blocks = {backend: [] for backend in backends}
    for index in range(int(repeats * trials / CHUNK_TRIALS)):
        for backend in backends:
            job = BlockJob(config.timing, tuple(strategies), 1, 0, (index + 1) * CHUNK_TRIALS, CHUNK_TRIALS, index,
                           1, 1, backend)
            started = clock()
            evaluate_blocks(job)
            simulated = clock() - started
            started = clock()
            stream(1, 99, index).standard_exponential((CHUNK_TRIALS, per_trial))
            blocks[backend].append(simulated / max(clock() - started, 1e-9))
    workers = config.topology.n_workers
    print(f"system: 10 edges x 10 workers, {len(strategies)} schemes, {per_trial} variates drawn per trial")
    print(f"whole runs of {trials} trials, CPU time, fastest of {repeats} alternating runs:")
    print(f"  numpy draws: {best['draw']:.3f} s  ({best['draw'] / trials / per_trial * 1e9:.1f} ns per variate)")
    for backend in backends:
        print(f"  simulator ({backend}): {best[backend]:.3f} s  ({best[backend] / trials / workers * 1e9:.1f} ns per "
              f"sampled worker delay); ratio simulator / numpy-draw = {best[backend] / best['draw']:.2f}")
    for backend in backends:
        ratios = np.array(blocks[backend])
        print(f"block by block ({len(ratios)} blocks of {CHUNK_TRIALS} trials), {backend}: median ratio simulator / "
              f"numpy-draw = {np.median(ratios):.2f} (quartiles {np.quantile(ratios, 0.25):.2f}-"
              f"{np.quantile(ratios, 0.75):.2f})  (target <= 2.0)")


def startup() -> None:
    """Wall time of a small ``hgc simulate``: compiling, with the cache, and without numba."""
    config = REPO / "configs" / "quickstart.yaml"
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        def run(backend: str) -> float:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache, HGC_BACKEND=backend,
                       PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "hgc", "simulate", str(config), "--trials", str(CHUNK_TRIALS),
                            "--quiet", "--out", out], check=True, env=env, cwd=REPO)
            return time.perf_counter() - started

        first = run("numba")
        cached = min(run("numba") for _ in range(3))
        plain = min(run("numpy") for _ in range(3))
    print(f"hgc simulate start-up ({CHUNK_TRIALS} trials of quickstart): numba compiling {first:.1f} s, "
          f"numba cached {cached:.2f} s, numpy backend {plain:.2f} s (wall)")


def memory(trials: int) -> None:
    code = (
        "import resource, time, sys\n"
        "sys.path.insert(0, 'benchmarks')\n"
        "from simulate_throughput import SYSTEM\n"
        "from hgc.config import config_from_mapping\n"
        "from hgc.experiment import simulate\n"
        f"config = config_from_mapping(SYSTEM)\n"
        "t = time.perf_counter()\n"
        f"result = simulate(config, trials={trials})\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    seconds, max_rss_kib = out.split()
    print(f"{trials:.0e} trials: {float(seconds):.1f} s, peak RSS {int(max_rss_kib) / 1024:.0f} MiB "
          f"(target < 1024 MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100_000, help="trials per timed run")
    parser.add_argument("--memory-trials", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-startup", action="store_true")
    args = parser.parse_args()
    throughput(args.trials, args.repeats)
    if not args.skip_startup and default_backend() == "numba":
        startup()
    if not args.skip_memory:
        memory(args.memory_trials)


if __name__ == "__main__":
    main()
