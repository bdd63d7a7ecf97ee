"""Platform overhead of ``hgc emulate``: what a real iteration costs beyond the model's prediction.

Run: ``python benchmarks/emulate_overhead.py [CONFIG] [--time-scale F] [--processes 2,4,16] [--iterations 20]``
(default: configs/train-digits.yaml, time scale 1e-9 — every drawn delay is zero in practice, so the
measured iteration time *is* the overhead).

For each number of local worker processes it runs every scheme of the config and prints, per scheme, the
mean measured iteration time, the prediction on the same draws, their difference, and where the difference
goes: ``dispatch`` (master → edge → worker until the worker starts), ``collect`` (a worker's
message reaching its edge) and ``deliver`` (the edge's answer reaching the master, decoding included).
The 1-minute load average is printed with every run: on a shared machine it moves the figures more than
anything else. The last line compares each process count with the first (ratio of mean overheads).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from hgc.config import load_config
from hgc.emulation.runner import emulate

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "train-digits.yaml"
COLUMNS = ["label", "measured_mean", "predicted_mean", "overhead_per_iteration", "dispatch", "collect", "deliver"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=str(CONFIG))
    parser.add_argument("--time-scale", type=float, default=1e-9)
    parser.add_argument("--processes", default="2,4,16", help="comma-separated local process counts")
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args()
    config = load_config(args.config)
    overheads = {}
    for processes in [int(p) for p in args.processes.split(",")]:
        result = emulate(config, iterations=args.iterations, time_scale=args.time_scale, processes=processes)
        table = result.summary[COLUMNS]
        overheads[processes] = float(table["overhead_per_iteration"].mean())
        print(f"{processes} processes, time scale {args.time_scale:g}, {args.iterations} iterations per scheme, "
              f"load average {result.load_average[0]:.1f} -> {result.load_average[1]:.1f} on {os.cpu_count()} CPUs")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print()
    first = next(iter(overheads))
    ratios = ", ".join(f"{p}: {overheads[p] / overheads[first]:.2f}x" for p in overheads)
    print(f"mean overhead per iteration relative to {first} processes: {ratios} "
          f"(means over schemes {', '.join(f'{1e3 * v:.1f} ms' for v in overheads.values())})")


if __name__ == "__main__":
    main()
