"""Simulator throughput and memory (issue 2 targets).

1. Ratio of the simulator's time per trial to NumPy's time to just draw the same number of variates,
   for 10 edges x 10 workers and 4 schemes. Target: <= 2.0.
2. Peak resident memory of a 10^7-trial run of that system, measured in a fresh process. Target: < 1 GiB.

Usage: python benchmarks/simulate_throughput.py [--trials 1000000] [--memory-trials 10000000] [--skip-memory]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np

from hgc.config import config_from_mapping
from hgc.experiment import resolve_schemes
from hgc.rng import stream
from hgc.simulation import CHUNK_TRIALS, chunk_sizes, run_strategies, sample_delays

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


def throughput(trials: int) -> None:
    config = config_from_mapping(SYSTEM)
    strategies = [r.strategy for r in resolve_schemes(config)]
    per_trial = variates_per_trial(config)
    run_strategies(config.timing, strategies, seed=0, trials=CHUNK_TRIALS)  # warm-up
    best_sim, best_draw = np.inf, np.inf
    for repeat in range(3):
        started = time.perf_counter()
        run_strategies(config.timing, strategies, seed=repeat, trials=trials)
        best_sim = min(best_sim, time.perf_counter() - started)
        best_draw = min(best_draw, time_numpy_draws(trials, per_trial, seed=repeat))
    workers = config.topology.n_workers
    print(f"system: 10 edges x 10 workers, {len(strategies)} schemes, {trials} trials, "
          f"{per_trial} variates drawn per trial")
    print(f"simulator:   {best_sim:.3f} s  ({best_sim / trials / workers * 1e9:.1f} ns per sampled worker delay)")
    print(f"numpy draws: {best_draw:.3f} s  ({best_draw / trials / per_trial * 1e9:.1f} ns per variate)")
    print(f"ratio simulator / numpy-draw = {best_sim / best_draw:.2f}  (target <= 2.0)")


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
    parser.add_argument("--trials", type=int, default=1_000_000)
    parser.add_argument("--memory-trials", type=int, default=10_000_000)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    throughput(args.trials)
    if not args.skip_memory:
        memory(args.memory_trials)


if __name__ == "__main__":
    main()
