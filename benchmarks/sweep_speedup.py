"""Speed-up of ``hgc sweep --executor process|dask --jobs 2`` over ``--executor serial`` on a 20-point sweep.

Usage::

    python benchmarks/sweep_speedup.py [--trials 100000] [--jobs 2] [--repeats 1] [--dask-env hgc]

Each run writes into a fresh temporary directory (nothing is resumed). Prints the wall-clock time of each
executor (best of ``--repeats``; executor start-up included), the speed-ups, and checks that all produced
the same ``sweep.csv`` bytes. ``--dask-env`` chooses the glibc settings of the local Dask workers:
``hgc`` (:data:`hgc.executors.DASK_WORKER_ENV`, the default), ``dask`` (Dask's own
``MALLOC_TRIM_THRESHOLD_=65536``) or ``glibc`` (no setting: glibc's adaptive thresholds).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import hgc.executors
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
    parser.add_argument("--dask-env", choices=["hgc", "dask", "glibc"], default="hgc",
                        help="glibc settings of the local Dask workers (see the module docstring)")
    parser.add_argument("--executors", default="serial,process,dask", help="comma-separated executors to time")
    args = parser.parse_args()
    if args.dask_env == "dask":
        hgc.executors.DASK_WORKER_ENV = {"MALLOC_TRIM_THRESHOLD_": "65536"}
    elif args.dask_env == "glibc":
        import dask  # noqa: PLC0415

        hgc.executors.DASK_WORKER_ENV = {}
        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})

    kinds = args.executors.split(",")
    runs = {kind: [timed_run(kind, 1 if kind == "serial" else args.jobs, args.trials) for _ in range(args.repeats)]
            for kind in kinds}
    best = {kind: min(seconds for seconds, _ in results) for kind, results in runs.items()}
    print(f"20-point sweep, {args.trials} trials per point, {args.jobs} jobs, Dask worker env: {args.dask_env}")
    for kind in kinds:
        ratio = f"  ({best['serial'] / best[kind]:.2f}x serial)" if "serial" in best and kind != "serial" else ""
        print(f"{kind:8s} {best[kind]:7.2f} s{ratio}")
    outputs = {results[0][1] for results in runs.values()}
    print(f"sweep.csv identical:  {len(outputs) == 1}")
    if len(outputs) != 1:
        raise SystemExit("sweep.csv differs between executors")


if __name__ == "__main__":
    main()
