"""Speed-up of ``hgc sweep --executor process|dask --jobs 2`` over ``--executor serial`` on a 20-point sweep.

Usage::

    python benchmarks/sweep_speedup.py [--trials 100000] [--jobs 2] [--repeats 1] [--dask-env hgc]

Each run writes into a fresh temporary directory (nothing is resumed). Prints the wall-clock time of each
executor (best of ``--repeats``; executor start-up included), the speed-ups, and checks that all produced
the same ``sweep.csv`` bytes. ``--dask-env`` chooses the glibc settings of the local Dask workers:
``hgc`` (:data:`hgc.executors.DASK_WORKER_ENV`, the default), ``dask`` (Dask's own
``MALLOC_TRIM_THRESHOLD_=65536``) or ``glibc`` (no setting: glibc's adaptive thresholds).

``--profile`` also runs one point three times inside a single local Dask worker under each of the three
settings and prints its CPU seconds and minor page faults per point — figures that, unlike wall-clock
ratios, hardly move when the machine is shared.
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


ENVIRONMENTS: dict[str, dict[str, str | None]] = {
    "hgc": dict(hgc.executors.DASK_WORKER_ENV),
    "dask": {"MALLOC_TRIM_THRESHOLD_": "65536"},
    "glibc": {"MALLOC_TRIM_THRESHOLD_": None},  # None removes the variable from Dask's pre-spawn settings
}


def _point_profile(trials: int) -> tuple[float, float]:
    """CPU seconds and minor page faults per run of one sweep point (run in a Dask worker)."""
    import resource  # noqa: PLC0415

    from hgc.sweep import point_task, run_point  # noqa: PLC0415

    sweep = sweep_from_mapping({"name": "profile", "base": {**BASE, "trials": trials},
                                "grid": {"topology.edges": [6]}})
    task = point_task(expand_points(sweep)[0], sweep)
    run_point(task)  # imports, caches
    faults, cpu = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
    for _ in range(3):
        run_point(task)
    return (time.process_time() - cpu) / 3, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / 3


def profile(trials: int) -> None:
    """Print :func:`_point_profile` in a one-worker local cluster under each glibc setting."""
    import logging  # noqa: PLC0415

    import dask  # noqa: PLC0415
    from distributed import Client, LocalCluster  # noqa: PLC0415

    print(f"one point ({trials} trials) in a single Dask worker, mean of 3 runs:")
    for name, environ in ENVIRONMENTS.items():
        for variable in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
            os.environ.pop(variable, None)
        settings = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in environ.items()}
        with dask.config.set(settings), LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                                     host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                                     silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            cpu, faults = client.submit(_point_profile, trials, pure=False).result()
        print(f"  {name:6s} {cpu:6.2f} CPU s  {faults:10,.0f} minor page faults   {environ}")


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
    parser.add_argument("--profile", action="store_true", help="per-point CPU time and page faults in a Dask worker")
    args = parser.parse_args()
    if args.profile:
        profile(args.trials)
    hgc.executors.DASK_WORKER_ENV = ENVIRONMENTS[args.dask_env]
    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
        os.environ.pop(name, None)  # (Dask's nanny copies its settings into this process's environment)

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
