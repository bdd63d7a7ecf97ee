"""Why ``hgc emulate`` changes glibc's malloc settings in its worker processes.

Run: ``python benchmarks/emulate_malloc.py [--rows 20000] [--features 200] [--steps 100]``.

A worker computes one coded gradient per iteration, allocating the same temporaries every time. Dask
starts its worker processes with ``MALLOC_TRIM_THRESHOLD_=65536``; setting that variable also freezes
glibc's otherwise adaptive mmap threshold at 128 KiB, so every temporary above that size is a fresh
``mmap`` that page-faults again on each use. This script runs the same softmax gradient in fresh
processes under three environments — glibc's defaults, Dask's setting, and the one hgc uses
(:data:`hgc.emulation.cluster.MALLOC_ENVIRON`) — and prints minor page faults per gradient and the time
per gradient relative to Dask's setting.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from hgc.emulation.cluster import MALLOC_ENVIRON

KERNEL = r"""
import json, resource, sys, time
import numpy as np
rows, features, steps = map(int, sys.argv[1:4])
rng = np.random.default_rng(0)
X = rng.standard_normal((rows, features)); W = rng.standard_normal((features, 10)) * 0.01
y = rng.integers(0, 10, rows); c = rng.random(rows)
def gradient():
    s = X @ W; s -= s.max(1, keepdims=True); p = np.exp(s); p /= p.sum(1, keepdims=True)
    p[np.arange(rows), y] -= 1.0
    return X.T @ (c[:, None] * p)
for _ in range(3):
    gradient()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
start = time.perf_counter()
for _ in range(steps):
    gradient()
print(json.dumps({"seconds": (time.perf_counter() - start) / steps,
                  "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps}))
"""

SETTINGS = {
    "glibc defaults": {},
    "Dask's default": {"MALLOC_TRIM_THRESHOLD_": "65536"},
    "hgc emulate": {k: str(v) for k, v in MALLOC_ENVIRON.items()},
}


def run(environ: dict[str, str], rows: int, features: int, steps: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **environ})
    out = subprocess.run([sys.executable, "-c", KERNEL, str(rows), str(features), str(steps)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--features", type=int, default=200)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    results = {name: run(env, args.rows, args.features, args.steps) for name, env in SETTINGS.items()}
    base = results["Dask's default"]["seconds"]
    print(f"softmax gradient on {args.rows} x {args.features}, 10 classes, {args.steps} steps, one thread:")
    for name, r in results.items():
        print(f"  {name:15s} {r['faults']:8.0f} minor faults per gradient   {1e3 * r['seconds']:7.2f} ms   "
              f"({r['seconds'] / base:.2f}x Dask's default)")


if __name__ == "__main__":
    main()
