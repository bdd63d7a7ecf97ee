"""Simulator memory and CPU per worker-trial from 10^2 to 10^5 workers (issue: memory bounded by bytes).

Each system runs in a fresh process (so peak RSS is its own): uncoded, flat GC (s = 9), hgc(1,1) and
hgc(2,3) on the same draws, about the same number of worker-trials for every size. Printed per system:
trials, block and pass sizes, CPU seconds of the Monte Carlo run (process time, robust to other load on a
shared machine), CPU ns per worker-trial, peak RSS of the whole process, minor page faults during the run.
Targets: peak RSS <= 600 MiB at 100 x 100 and <= 1 GiB at 1000 x 100; CPU per worker-trial within 1.5x
from 10^2 to 10^5 workers.

Usage: python benchmarks/simulate_memory.py [--worker-trials 1e8] [--memory MIB] [--backend numba|numpy]
                                             [--systems 10x10,100x100,1000x100]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {bench!r})
from simulate_throughput import SYSTEM
from hgc.config import config_from_mapping
from hgc.experiment import resolve_schemes
from hgc.simulation import MIB, run_strategies
spec = dict(SYSTEM, topology={{"edges": {edges}, "workers": {workers}}})
config = config_from_mapping(spec)
strategies = [r.strategy for r in resolve_schemes(config)]
run_strategies(config.timing, strategies, seed=0, trials=64, memory={memory} * MIB, backend={backend!r})  # warm-up
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
cpu = time.process_time()
run = run_strategies(config.timing, strategies, seed=1, trials={trials}, memory={memory} * MIB, backend={backend!r})
cpu = time.process_time() - cpu
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"cpu": cpu, "rss_mib": usage.ru_maxrss / 1024, "faults": usage.ru_minflt - faults,
                  "block": run.block_trials, "pass": run.pass_trials, "backend": run.backend,
                  "mean": [s.mean_time for s in run.statistics]}}))
"""


def measure(edges: int, workers: int, trials: int, memory: int, backend: str) -> dict:
    bench = str(Path(__file__).resolve().parent)
    code = CHILD.format(bench=bench, edges=edges, workers=workers, trials=trials, memory=memory, backend=backend)
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker-trials", type=float, default=1e8)
    parser.add_argument("--memory", type=int, default=256, help="budget in MiB (the default of hgc simulate)")
    parser.add_argument("--backend", default="numba", choices=["numba", "numpy"])
    parser.add_argument("--systems", default="10x10,100x100,1000x100")
    args = parser.parse_args()
    base = None
    print(f"backend {args.backend}, memory budget {args.memory} MiB, ~{args.worker_trials:.0e} worker-trials each")
    print(f"{'system':>10} {'workers':>8} {'trials':>8} {'block':>6} {'pass':>6} {'CPU s':>7} {'ns/worker-trial':>16} "
          f"{'x smallest':>10} {'peak RSS MiB':>13} {'page faults':>12}")
    for system in args.systems.split(","):
        edges, workers = (int(x) for x in system.split("x"))
        n_workers = edges * workers
        trials = max(64, int(args.worker_trials / n_workers))
        facts = measure(edges, workers, trials, args.memory, args.backend)
        per = facts["cpu"] / (trials * n_workers) * 1e9
        base = base or per
        print(f"{system:>10} {n_workers:>8} {trials:>8} {facts['block']:>6} {facts['pass']:>6} {facts['cpu']:>7.2f} "
              f"{per:>16.2f} {per / base:>10.2f} {facts['rss_mib']:>13.0f} {facts['faults']:>12}", flush=True)


if __name__ == "__main__":
    main()
