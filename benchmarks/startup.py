"""Start-up time of the command line against the import of its four base libraries.

    python benchmarks/startup.py [--runs 9]

Prints the best-of-N wall-clock seconds of ``hgc --help``, of ``hgc simulate`` on a tiny config (2 x 2
workers, 1 000 trials, two fixed schemes), and of ``python -c "import numpy, pandas, yaml, click"``, and
the ratios (target: simulate <= 1.8x the imports). Best-of-N filters out the noise of a shared machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = """\
topology: {edges: 2, workers: 2}
trials: 1000
timing:
  worker: {compute: {dist: exponential, mean: 1}}
schemes: [uncoded, {scheme: hgc, s_e: 1, s_w: 1}]
"""


def best_of(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "tiny.yaml"
        config.write_text(TINY)
        base = best_of([sys.executable, "-c", "import numpy, pandas, yaml, click"], args.runs)
        help_ = best_of([sys.executable, "-m", "hgc", "--help"], args.runs)
        simulate = best_of([sys.executable, "-m", "hgc", "simulate", str(config), "--out", str(Path(tmp) / "o"),
                            "--quiet"], args.runs)
    print(f"import numpy+pandas+yaml+click: {base:.3f} s")
    print(f"hgc --help:                     {help_:.3f} s  ({help_ / base:.2f}x the imports)")
    print(f"hgc simulate (tiny config):     {simulate:.3f} s  ({simulate / base:.2f}x the imports; target <= 1.8)")


if __name__ == "__main__":
    main()
