"""The analytic evaluator against Monte Carlo for one strategy at a time (issue target: >= 100x).

System: ``random_system(1, 10, 10)`` (10 heterogeneous edges of 10 workers, exponential links, bimodal
edge processing; the system of ``optimize_scaling.py``). Strategies: uncoded, ``hgc(1,1)`` and the best
all-nodes HGC.

Monte Carlo: the number of trials for a 0.1 % relative standard error of ``E[T]`` is computed from a
20 000-trial pilot's coefficient of variation, then that run is timed.

Evaluator, on an evaluator that has already seen the system (per-distribution facts computed) but not the
strategy (a fresh ``Evaluator`` warmed up on a different strategy for every repetition):

* ``evaluate(rtol=1e-3)`` — the error-controlled evaluation, whose ``error_estimate`` is at most 0.1 % of
  ``E[T]`` (the counterpart of a 0.1 % standard error); its actual error is shown against a reference
  (``evaluate(rtol=1e-7)``);
* ``expected_times([strategy], points=257)`` — one search-grid evaluation (what the optimizer's searches use).

Times are the minimum over repetitions of process CPU time (this machine is shared; CPU time is less
noisy than wall time, and both sides are measured the same way), with the minimum wall time beside it.
The one-off costs are reported too: building an ``Evaluator`` for the system, and the first evaluation in
a fresh process with and without the compiled kernels in numba's on-disk cache.

Usage: python benchmarks/evaluator_speed.py [--repeats 30] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from hgc.analytic import Evaluator
from hgc.optimizer import best_hgc_tolerances
from hgc.schemes import make_strategy
from hgc.simulation import run_strategies
from hgc.testing import random_system

REPO = Path(__file__).resolve().parents[1]


def timed(function: Callable[[], Any], repeats: int, setup: Callable[[], Any] | None = None) -> tuple[float, float]:
    """Minimum (CPU seconds, wall seconds) of ``function(setup())`` over ``repeats`` runs (setup not timed)."""
    cpu = wall = math.inf
    for _ in range(repeats):
        argument = setup() if setup is not None else None
        c, w = time.process_time(), time.perf_counter()
        function() if argument is None else function(argument)  # type: ignore[call-arg]
        cpu, wall = min(cpu, time.process_time() - c), min(wall, time.perf_counter() - w)
    return cpu, wall


def strategies(model: Any) -> dict[str, Any]:
    topo = model.topology
    return {"uncoded": make_strategy("uncoded", topo), "hgc(1,1)": make_strategy("hgc", topo, s_e=1, s_w=1),
            "best all-nodes hgc": best_hgc_tolerances(model)}


def first_call(cached: bool) -> float:
    """Seconds for import + one evaluation in a fresh process (numba cache warm, or in an empty directory)."""
    code = ("import time; t = time.perf_counter(); from hgc.analytic import Evaluator; from hgc.testing import "
            "random_system; from hgc.schemes import make_strategy; m = random_system(1, 10, 10); "
            "Evaluator(m).evaluate(make_strategy('hgc', m.topology, s_e=1, s_w=1), rtol=1e-3); "
            "print(time.perf_counter() - t)")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with tempfile.TemporaryDirectory() as cache:
        if not cached:
            env["NUMBA_CACHE_DIR"] = cache
        else:
            subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="repetitions of each evaluator timing")
    parser.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    args = parser.parse_args(argv)
    model = random_system(1, 10, 10)
    chosen = strategies(model)
    started = time.perf_counter()
    Evaluator(model).evaluate(chosen["uncoded"], rtol=1e-3)
    setup = time.perf_counter() - started
    rows = []
    for name, strategy in chosen.items():
        other = chosen["hgc(1,1)"] if name == "uncoded" else chosen["uncoded"]

        def warm() -> Evaluator:
            evaluator = Evaluator(model)
            evaluator.evaluate(other, rtol=1e-3)
            evaluator.expected_times([other], points=257)
            return evaluator

        reference = Evaluator(model).evaluate(strategy, rtol=1e-7).expected_time
        result = warm().evaluate(strategy, rtol=1e-3)
        evaluate_cpu, evaluate_wall = timed(lambda ev: ev.evaluate(strategy, rtol=1e-3), args.repeats, warm)
        search_value = warm().expected_times([strategy], points=257)[0][0]
        search_cpu, search_wall = timed(lambda ev: ev.expected_times([strategy], points=257), args.repeats, warm)
        pilot = run_strategies(model, [strategy], seed=1, trials=20_000).statistics[0]
        cv = pilot.sem * math.sqrt(pilot.decoded) / pilot.mean_time
        trials = int(math.ceil((cv / 1e-3) ** 2))
        mc_cpu, mc_wall = timed(lambda: run_strategies(model, [strategy], seed=2, trials=trials), 3 if trials < 400_000 else 1)
        rows.append({"strategy": name, "cv": cv, "mc_trials": trials, "mc_cpu": mc_cpu, "mc_wall": mc_wall,
                     "evaluate_cpu": evaluate_cpu, "evaluate_wall": evaluate_wall,
                     "estimate": result.error_estimate / result.expected_time,
                     "actual": abs(result.expected_time / reference - 1.0),
                     "search_cpu": search_cpu, "search_wall": search_wall,
                     "search_error": abs(search_value / reference - 1.0),
                     "ratio_evaluate": mc_cpu / evaluate_cpu, "ratio_search": mc_cpu / search_cpu})
    print("## Evaluator vs Monte Carlo at 0.1 % relative standard error, one strategy (random_system(1, 10, 10))\n")
    print("| strategy | CV of T | MC trials | MC CPU (ms) | evaluate(rtol=1e-3) CPU (ms) [wall] | estimated / actual "
          "rel. error | ratio | search grid CPU (ms) [wall] | its error | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['strategy']} | {r['cv']:.2f} | {r['mc_trials']} | {r['mc_cpu'] * 1e3:.0f} | "
              f"{r['evaluate_cpu'] * 1e3:.2f} [{r['evaluate_wall'] * 1e3:.2f}] | {r['estimate']:.1e} / {r['actual']:.1e} | "
              f"**{r['ratio_evaluate']:.0f}x** | {r['search_cpu'] * 1e3:.2f} [{r['search_wall'] * 1e3:.2f}] | "
              f"{r['search_error']:.1e} | {r['ratio_search']:.0f}x |")
    report: dict[str, Any] = {"rows": rows, "setup_seconds": setup}
    try:
        report["first_call_cold"] = first_call(cached=False)
        report["first_call_cached"] = first_call(cached=True)
    except (subprocess.CalledProcessError, ValueError) as error:   # e.g. the pre-numba evaluator
        print(f"\n(first-call timing failed: {error})")
    print(f"\nOne-off costs: building the evaluator for the system and a first evaluation {setup * 1e3:.0f} ms; "
          "a fresh process importing hgc and evaluating once: "
          + (f"{report['first_call_cold']:.2f} s with the compiled kernels not yet in numba's cache, "
             f"{report['first_call_cached']:.2f} s with them cached." if "first_call_cached" in report else "n/a."))
    coded = [r["ratio_evaluate"] for r in rows if r["strategy"] != "uncoded"]
    print(f"\nworst coded-strategy ratio (error-controlled evaluation): {min(coded):.0f}x (target >= 100x)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
