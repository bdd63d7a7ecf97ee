"""JNCSS and the analytic evaluator: scaling, optimality and accuracy (issue 6 targets).

1. Greedy JNCSS run time on a 50-edge x 20-worker heterogeneous system (``random_system(0, 50, 20)``:
   per-edge speeds, three worker speed classes, per-edge links). Target: <= 10 s on 2 cores. Also
   reported: the worst case where all 1000 workers differ (``distinct=True``).
2. Greedy vs exhaustive on 50 seeded random small heterogeneous systems (``random_small_system(seed)``,
   2-5 edges with 1-4 workers, four compute families). Targets: within 1% of the exhaustive optimum in at
   least 95% of them, never more than 5% worse.
3. Evaluator vs Monte Carlo on a 10 x 10 heterogeneous system (``random_system(1, 10, 10)``), for three
   strategies: the analytic ``E[T]`` (a 257-point search evaluation, error shown, and the
   error-controlled ``evaluate`` at rtol 1e-3) against the time the simulator needs for a 0.1% relative
   standard error (the number of trials is computed from a pilot's coefficient of variation and then
   really run). Target: >= 100x. The Monte Carlo cost grows with the square of T's coefficient of
   variation, the evaluator's does not.
4. Evaluator accuracy against closed forms (exponential order statistics, the flat-GC closed forms of docs/model.md §10,
   the bimodal example, a hypoexponential link). Target: relative error <= 1e-3.

Usage: python benchmarks/optimize_scaling.py [--systems 50] [--skip-large] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
from scipy import integrate, stats

from hgc.analytic import Evaluator
from hgc.distributions import Bimodal, Constant, parse_distribution
from hgc.optimizer import best_hgc_tolerances, exhaustive_jncss, greedy_jncss
from hgc.testing import random_small_system, random_system
from hgc.schemes import make_strategy
from hgc.simulation import run_strategies
from hgc.timing import TimingModel
from hgc.topology import Topology


def harmonic(n: int) -> float:
    return float(sum(1.0 / k for k in range(1, n + 1)))


def large_greedy(distinct: bool) -> dict:
    model = random_system(0, 50, 20, distinct=distinct)
    started = time.perf_counter()
    result = greedy_jncss(model)
    seconds = time.perf_counter() - started
    all_nodes_eval = Evaluator(model).evaluate(best_hgc_tolerances(model))
    st = result.strategy
    return {"system": "50x20" + (" all-distinct" if distinct else ""), "seconds": seconds,
            "evaluations": result.evaluations, "edges": st.n_edges, "workers": st.n_workers,
            "s_e": st.s_e, "s_w": st.s_w, "expected_time": result.expected_time,
            "all_nodes_best": all_nodes_eval.expected_time,
            "gain_over_all_nodes": all_nodes_eval.effective_time / result.objective}


def small_systems(count: int) -> dict:
    gaps, greedy_time, exhaustive_time, spaces = [], 0.0, 0.0, []
    for seed in range(count):
        model = random_small_system(seed)
        greedy = greedy_jncss(model)
        exact = exhaustive_jncss(model)
        greedy_time += greedy.seconds
        exhaustive_time += exact.seconds
        spaces.append(exact.space)
        gaps.append(greedy.objective / exact.objective - 1.0)
    gaps = np.array(gaps)
    return {"systems": count, "within_1pct": float(np.mean(gaps <= 0.01)), "exact": float(np.mean(gaps <= 1e-6)),
            "max_gap": float(gaps.max()), "mean_gap": float(gaps.mean()),
            "greedy_seconds": greedy_time, "exhaustive_seconds": exhaustive_time,
            "median_space": float(np.median(spaces))}


def _best_time(function, repeats: int = 5) -> float:
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def evaluator_vs_monte_carlo() -> list[dict]:
    """Per strategy on the 10 x 10 system: the evaluator's time (a 257-point search evaluation, whose
    error against the accurate value is reported, and the error-controlled ``evaluate`` at rtol 1e-3)
    against the Monte Carlo time for a 0.1% relative standard error (trials from a pilot's CV)."""
    model = random_system(1, 10, 10)
    topo = model.topology
    strategies = {"uncoded": make_strategy("uncoded", topo),
                  "hgc(1,1)": make_strategy("hgc", topo, s_e=1, s_w=1),
                  "best all-nodes hgc": best_hgc_tolerances(model)}
    started = time.perf_counter()
    evaluator = Evaluator(model)      # per-distribution facts (quantiles), computed once per system
    setup = time.perf_counter() - started
    rows = []
    for name, strategy in strategies.items():
        reference = evaluator.evaluate(strategy, rtol=1e-6).expected_time
        fast = _best_time(lambda: evaluator.expected_times([strategy], points=257))
        value = evaluator.expected_times([strategy], points=257)[0][0]
        controlled = _best_time(lambda: evaluator.evaluate(strategy, rtol=1e-3))
        pilot = run_strategies(model, [strategy], seed=1, trials=20_000).statistics[0]
        cv = pilot.sem * math.sqrt(pilot.decoded) / pilot.mean_time
        trials = int(math.ceil((cv / 1e-3) ** 2))
        started = time.perf_counter()
        mc = run_strategies(model, [strategy], seed=2, trials=trials).statistics[0]
        mc_seconds = time.perf_counter() - started
        rows.append({"strategy": name, "setup_seconds": setup, "cv": cv, "mc_trials": trials, "mc_seconds": mc_seconds,
                     "search_seconds": fast, "search_error": abs(value / reference - 1.0),
                     "controlled_seconds": controlled, "ratio_search": mc_seconds / fast,
                     "ratio_controlled": mc_seconds / controlled, "analytic": reference,
                     "mc_mean": mc.mean_time, "z": (reference - mc.mean_time) / mc.sem})
    return rows


def batch_vs_monte_carlo() -> dict:
    """The optimizer's use: score every admissible (s_e, s_w) on all nodes of the 10 x 10 system. The
    evaluator scores them in one call (search grids); Monte Carlo evaluates them all on common samples,
    with enough trials for a 0.1% relative standard error on the most variable candidate."""
    from hgc.codes import admissible_hgc

    model = random_system(1, 10, 10)
    topo = model.topology
    strategies = [make_strategy("hgc", topo, s_e=a, s_w=b) for a, b in admissible_hgc(topo.workers)]
    evaluator = Evaluator(model)
    started = time.perf_counter()
    means, _ = evaluator.expected_times(strategies)
    analytic_seconds = time.perf_counter() - started
    pilot = run_strategies(model, strategies, seed=1, trials=20_000).statistics
    cv = max(p.sem * math.sqrt(p.decoded) / p.mean_time for p in pilot)
    trials = int(math.ceil((cv / 1e-3) ** 2))
    started = time.perf_counter()
    run = run_strategies(model, strategies, seed=2, trials=trials).statistics
    mc_seconds = time.perf_counter() - started
    z = np.array([(m - r.mean_time) / r.sem for m, r in zip(means, run)])
    same_best = int(np.argmin(means)) == int(np.argmin([r.mean_time for r in run]))
    return {"candidates": len(strategies), "analytic_seconds": analytic_seconds, "mc_trials": trials,
            "mc_seconds": mc_seconds, "ratio": mc_seconds / analytic_seconds, "max_abs_z": float(np.abs(z).max()),
            "same_best": same_best}


def closed_forms() -> list[dict]:
    def dist(**spec):
        return parse_distribution(spec, "benchmark")

    def strategy(kind, topo, load, **tolerances):
        return make_strategy(kind, topo, load=load, **tolerances)

    cases = []
    topo = Topology((20,))
    model = TimingModel.homogeneous(topo, dist(dist="exponential", rate=2.0))
    for s in (0, 5, 19):
        load = (s + 1) / 20
        cases.append((f"Exp order statistic, N=20, s={s}", model, strategy("hgc", topo, load, s_e=0, s_w=s),
                      load * (harmonic(20) - harmonic(s)) / 2.0))
    topo = Topology((4, 6))
    model = TimingModel.homogeneous(topo, dist(dist="shifted_exponential", shift=1.0, rate=2.0))
    for s in (0, 4, 9):
        load = (s + 1) / 10
        cases.append((f"flat GC shifted-exp, N=10, s={s}", model, strategy("flat_gc", topo, load, s=s),
                      load * (1.0 + (harmonic(10) - harmonic(s)) / 2.0)))
    topo = Topology((10,))
    model = TimingModel.homogeneous(topo, Bimodal(0.1, Constant(1.0), Constant(100.0)))
    for s in (3, 4, 5):
        load = (s + 1) / 10
        cases.append((f"flat GC bimodal, s={s}", model, strategy("flat_gc", topo, load, s=s),
                      load * (1 + 99 * stats.binom.sf(s, 10, 0.1))))
    a, b = 2.0, 5.0
    topo = Topology((1, 1))
    model = TimingModel.homogeneous(topo, dist(dist="exponential", rate=a), edge_uplink=dist(dist="exponential", rate=b))
    cdf = lambda t: 1.0 - (b * math.exp(-a * t) - a * math.exp(-b * t)) / (b - a)  # noqa: E731
    cases.append(("max of 2 hypoexponential edges (link convolution)", model, strategy("uncoded", topo, 1.0),
                  integrate.quad(lambda t: 1.0 - cdf(t) ** 2, 0, np.inf)[0]))
    out = []
    for name, model, st, exact in cases:
        result = Evaluator(model).evaluate(st)
        out.append({"case": name, "analytic": result.expected_time, "exact": exact,
                    "relative_error": abs(result.expected_time / exact - 1.0)})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", type=int, default=50, help="random small systems for the optimality gap")
    parser.add_argument("--skip-large", action="store_true", help="skip the 50x20 greedy timing")
    parser.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    args = parser.parse_args(argv)
    report: dict = {}
    ok = True

    if not args.skip_large:
        print("## Greedy JNCSS on 50 edges x 20 workers\n")
        print("| system | greedy time (s) | candidates scored | chosen edges/workers | s_e, s_w | E[T] (s) | best all-nodes HGC E[T] (s) |")
        print("| --- | ---: | ---: | --- | --- | ---: | ---: |")
        report["large"] = []
        for distinct in (False, True):
            r = large_greedy(distinct)
            report["large"].append(r)
            print(f"| {r['system']} | {r['seconds']:.2f} | {r['evaluations']} | {r['edges']}/{r['workers']} | "
                  f"{r['s_e']}, {r['s_w']} | {r['expected_time']:.5f} | {r['all_nodes_best']:.5f} |")
        ok &= report["large"][0]["seconds"] <= 10.0
        print()

    print(f"## Greedy vs exhaustive on {args.systems} random small systems\n")
    r = small_systems(args.systems)
    report["small"] = r
    print("| within 1% | identical optimum | max gap | mean gap | greedy total (s) | exhaustive total (s) | median search space |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {r['within_1pct']:.0%} | {r['exact']:.0%} | {r['max_gap']:.2%} | {r['mean_gap']:.3%} | "
          f"{r['greedy_seconds']:.1f} | {r['exhaustive_seconds']:.1f} | {r['median_space']:.0f} |\n")
    ok &= r["within_1pct"] >= 0.95 and r["max_gap"] <= 0.05

    print("## Analytic evaluator vs Monte Carlo at 0.1% relative standard error (10 x 10)\n")
    rows = evaluator_vs_monte_carlo()
    report["speed"] = rows
    print("| strategy | CV of T | MC trials | MC (s) | evaluator, 257-point grid (ms) | its error | ratio | "
          "error-controlled evaluator (ms) | ratio | z (analytic vs MC) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['strategy']} | {r['cv']:.2f} | {r['mc_trials']} | {r['mc_seconds']:.3f} | "
              f"{r['search_seconds'] * 1e3:.2f} | {r['search_error']:.1e} | {r['ratio_search']:.0f}x | "
              f"{r['controlled_seconds'] * 1e3:.1f} | {r['ratio_controlled']:.0f}x | {r['z']:+.2f} |")
    print(f"\n(one-off evaluator set-up for the system: {rows[0]['setup_seconds'] * 1e3:.1f} ms)\n")
    ok &= min(r["ratio_search"] for r in rows) >= 100
    r = batch_vs_monte_carlo()
    report["batch"] = r
    print("Scoring every admissible (s_e, s_w) of the 10 x 10 system at once (the optimizer's use):\n")
    print("| candidates | evaluator (s) | MC trials (0.1% rel. SE on all) | MC (s) | ratio | max abs z | same best |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    print(f"| {r['candidates']} | {r['analytic_seconds']:.3f} | {r['mc_trials']} | {r['mc_seconds']:.2f} | "
          f"{r['ratio']:.0f}x | {r['max_abs_z']:.2f} | {r['same_best']} |\n")

    print("## Evaluator accuracy against closed forms\n")
    rows = closed_forms()
    report["closed_forms"] = rows
    print("| case | analytic | exact | relative error |")
    print("| --- | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['case']} | {row['analytic']:.8f} | {row['exact']:.8f} | {row['relative_error']:.1e} |")
    ok &= max(row["relative_error"] for row in rows) <= 1e-3
    print(f"\nall targets met: {ok}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
