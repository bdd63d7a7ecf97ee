"""One simulation spread over workers: speed-up of ``hgc simulate --executor process|dask`` from 1 to 2
workers, and the check that every run writes the same summary table as the serial run.

The 10 x 10 system of ``simulate_throughput.py`` with 4 schemes. Wall time of the Monte Carlo run only
(executor start-up excluded: a Dask cluster or process pool is started before the clock starts), best of
``--repeats``. On a machine shared with other work the speed-up is bounded by the idle cores, so the script
also prints, for the process pool, the total CPU time (this process and its workers) of a spread run
relative to the serial run: near 1.0 means the spreading costs nothing, i.e. the speed-up is as linear as
the idle cores allow.

Usage: python benchmarks/simulate_cluster.py [--trials 2000000] [--repeats 2] [--executors process,dask]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from simulate_throughput import SYSTEM  # noqa: E402

from hgc.config import config_from_mapping  # noqa: E402
from hgc.executors import make_executor  # noqa: E402
from hgc.experiment import simulate  # noqa: E402


def timed(config, trials: int, executor, repeats: int) -> tuple[float, str]:
    best, table = float("inf"), ""
    for _ in range(repeats):
        started = time.perf_counter()
        result = simulate(config, trials=trials, executor=executor)
        best = min(best, time.perf_counter() - started)
        table = result.summary.to_csv(index=False)
    return best, table


def cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def spread_cpu(config, trials: int, jobs: int) -> float:
    """CPU seconds (this process + pool workers) of a spread run of ``trials`` trials: a pool's life with
    the run minus the same pool's life without it (start-up, imports and warm-up cancel)."""
    costs = []
    for run_trials in (0, trials):
        started = cpu_seconds()
        with make_executor("process", jobs) as executor:
            simulate(config, trials=4096, executor=executor)
            if run_trials:
                simulate(config, trials=run_trials, executor=executor)
        costs.append(cpu_seconds() - started)
    return costs[1] - costs[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--executors", default="process,dask")
    args = parser.parse_args()
    config = config_from_mapping(SYSTEM)
    simulate(config, trials=4096)  # warm-up (compiled evaluator loaded)
    serial, reference = timed(config, args.trials, None, args.repeats)
    print(f"10 x 10, 4 schemes, {args.trials} trials; wall seconds of the run, best of {args.repeats}")
    print(f"serial (in process): {serial:.2f} s")
    for kind in args.executors.split(","):
        seconds = {}
        for jobs in (1, 2):
            with make_executor(kind, jobs) as executor:
                simulate(config, trials=4096, executor=executor)  # workers warm (imports, compiled code)
                seconds[jobs], table = timed(config, args.trials, executor, args.repeats)
            same = "identical" if table == reference else "DIFFERENT"
            print(f"{kind:8s} {jobs} worker(s): {seconds[jobs]:.2f} s  (summary {same} to serial)", flush=True)
        print(f"{kind:8s} speed-up 1 -> 2 workers: {seconds[1] / seconds[2]:.2f}x")
    started = time.process_time()
    simulate(config, trials=args.trials)
    serial_cpu = time.process_time() - started
    for jobs in (1, 2):
        print(f"process  {jobs} worker(s): CPU of the spread run / CPU of the serial run = "
              f"{spread_cpu(config, args.trials, jobs) / serial_cpu:.2f}", flush=True)


if __name__ == "__main__":
    main()
