"""Speed-up of ``hgc sweep --executor process --jobs 2`` over ``--executor serial`` on a 20-point sweep.

Usage::

    python benchmarks/sweep_speedup.py [--trials 100000] [--jobs 2] [--repeats 1]

Each run writes into a fresh temporary directory (nothing is resumed). Prints the wall-clock time of each
executor (best of ``--repeats``), the speed-up, and checks that both produced the same ``sweep.csv`` bytes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hgc.executors import make_executor
from hgc.sweep import expand_points, run_sweep, sweep_from_mapping

BASE = {
    "seed": 1,
    "topology": {"edges": 4, "workers": 5},
    "timing": {
        "worker": {"compute": {"dist": "shifted_exponential", "shift": 1.0, "rate": 2.0},
                   "overhead": {"dist": "exponential", "mean": 0.02}},
        "edge": {"process": {"dist": "bimodal", "p": 0.1, "fast": {"dist": "constant", "value": 0.0},
                             "slow": {"dist": "exponential", "mean": 0.5}},
                 "uplink": {"dist": "exponential", "rate": 20}, "per_vector": 0.005},
    },
    "schemes": ["uncoded", {"scheme": "flat_gc", "s": 3}, {"scheme": "hgc", "s_e": 1, "s_w": 1},
                {"scheme": "hgc", "s_e": 0, "s_w": 1}],
}


def timed_run(kind: str, jobs: int, trials: int) -> tuple[float, bytes]:
    """Wall-clock seconds (executor start-up included) and the sweep.csv bytes of one fresh run."""
    sweep = sweep_from_mapping({
        "name": "bench", "base": {**BASE, "trials": trials},
        "grid": {"timing.edge.process.p": [0.0, 0.05, 0.1, 0.2, 0.3], "topology.edges": [4, 5, 6, 8]},
    })
    points = expand_points(sweep)
    assert len(points) == 20
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        with make_executor(kind, jobs) as executor:
            run_sweep(sweep, Path(out), executor, points=points)
        seconds = time.perf_counter() - start
        return seconds, (Path(out) / "sweep.csv").read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100_000, help="Monte Carlo trials per point")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes of the process executor")
    parser.add_argument("--repeats", type=int, default=1, help="runs per executor (best time is kept)")
    args = parser.parse_args()

    serial = [timed_run("serial", 1, args.trials) for _ in range(args.repeats)]
    process = [timed_run("process", args.jobs, args.trials) for _ in range(args.repeats)]
    t_serial, t_process = min(s for s, _ in serial), min(s for s, _ in process)
    identical = serial[0][1] == process[0][1]
    print(f"20-point sweep, {args.trials} trials per point")
    print(f"serial:               {t_serial:7.2f} s")
    print(f"process ({args.jobs} jobs):     {t_process:7.2f} s")
    print(f"speed-up:             {t_serial / t_process:7.2f}x")
    print(f"sweep.csv identical:  {identical}")
    if not identical:
        raise SystemExit("sweep.csv differs between executors")


if __name__ == "__main__":
    main()
