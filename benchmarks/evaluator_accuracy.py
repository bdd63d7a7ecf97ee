"""How honest is the analytic evaluator's ``error_estimate``? Actual errors against much finer grids,
closed forms and long Monte Carlo runs.

Cases (~450 strategies): every bundled experiment config (uncoded, every admissible ``hgc(s_e, s_w)``,
flat GC at a few tolerances where analytic), ``random_small_system(0..N-1)`` (uncoded and every admissible
HGC), ``random_system(seed, 10, 10)`` for four compute families and seven tolerance pairs, and models whose
iteration time has atoms (the bimodal example of docs/model.md §10.4, random trace-driven systems).

For each, ``Evaluator.evaluate(strategy, rtol)`` at ``rtol = 1e-3`` and ``1e-4`` gives a value and an
estimated error; the reference is the same strategy on grids of 16 385 and 32 769 points per level (built
independently, from a 1 025-point base; their difference is shown as the reference's own uncertainty).
Reported: the ratio actual / estimated error (worst, quantiles, how often above 1), per group.

Further checks that do not rely on the evaluator's own discretisation: closed forms (exponential order
statistics, the flat-GC closed forms of docs/model.md §10, the bimodal example, a link convolution) and, with
``--monte-carlo N``, N-trial Monte Carlo runs of every bundled config's strategies (z-scores).

``--dump FILE`` only evaluates (public API only, so it also runs on older versions of the evaluator) and
writes the values; ``--before FILE`` then reports those older values against this version's references.

Usage: python benchmarks/evaluator_accuracy.py [--small 50] [--monte-carlo 10000000] [--before old.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from hgc.analytic import Evaluator, NotAnalyticError
from hgc.codes import admissible_hgc
from hgc.config import load_config
from hgc.distributions import Bimodal, Constant, Empirical
from hgc.schemes import Strategy, make_strategy
from hgc.testing import random_small_system, random_system
from hgc.timing import TimingModel
from hgc.topology import Topology

REPO = Path(__file__).resolve().parents[1]
RTOLS = (1e-3, 1e-4)


def config_cases() -> Iterator[tuple[str, str, TimingModel, list[Strategy]]]:
    for path in sorted((REPO / "configs").glob("*.yaml")):
        if path.name.startswith("sweep-"):
            continue
        config = load_config(path)
        model, topo = config.timing, config.topology
        strategies = [make_strategy("uncoded", topo)]
        strategies += [make_strategy("hgc", topo, s_e=a, s_w=b) for a, b in admissible_hgc(topo.workers)]
        strategies += [make_strategy("flat_gc", topo, s=s) for s in range(0, topo.n_workers, max(1, topo.n_workers // 5))]
        yield "bundled configs", path.stem, model, strategies


def small_cases(count: int) -> Iterator[tuple[str, str, TimingModel, list[Strategy]]]:
    for seed in range(count):
        model = random_small_system(seed)
        topo = model.topology
        strategies = [make_strategy("uncoded", topo)]
        strategies += [make_strategy("hgc", topo, s_e=a, s_w=b) for a, b in admissible_hgc(topo.workers)]
        yield "random small systems", f"small{seed}", model, strategies


def system_cases() -> Iterator[tuple[str, str, TimingModel, list[Strategy]]]:
    for family in ("shifted_exponential", "exponential", "bimodal", "lognormal"):
        for seed in (1, 2):
            model = random_system(seed, 10, 10, compute=family)
            topo = model.topology
            pairs = [(0, 0), (1, 1), (3, 2), (0, 5), (6, 0), (9, 0), (2, 8)]
            strategies = [make_strategy("uncoded", topo)] + [make_strategy("hgc", topo, s_e=a, s_w=b) for a, b in pairs]
            yield "random 10x10 systems", f"{family}{seed}", model, strategies


def discrete_cases() -> Iterator[tuple[str, str, TimingModel, list[Strategy]]]:
    topo = Topology((10,))
    model = TimingModel.homogeneous(topo, Bimodal(0.1, Constant(1.0), Constant(100.0)))
    yield "with atoms", "spec-bimodal", model, [make_strategy("flat_gc", topo, s=s) for s in (2, 3, 4, 5, 6)]
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        n = int(rng.integers(2, 5))
        topo = Topology(tuple(int(c) for c in rng.integers(2, 6, n)))
        traces = [Empirical(np.round(rng.lognormal(0, 0.5, int(rng.integers(5, 40))), 3), "trace.csv", "seconds")
                  for _ in range(3)]
        speeds = rng.choice([1.0, 0.5, 2.0], topo.n_workers)
        compute = tuple(traces[int(rng.integers(3))].scaled(float(s)) for s in speeds)
        overhead = tuple(Constant(float(v)) for v in rng.choice([0.0, 0.01, 0.02], topo.n_workers))
        process = tuple(traces[int(rng.integers(3))].scaled(0.05) if rng.random() < 0.5 else Constant(0.0)
                        for _ in range(n))
        model = TimingModel(topo, compute, overhead, (Constant(0.001),) * topo.n_workers, process,
                            (Constant(0.0),) * n, (0.002,) * n)
        strategies = [make_strategy("uncoded", topo)]
        strategies += [make_strategy("hgc", topo, s_e=a, s_w=b) for a, b in admissible_hgc(topo.workers)]
        yield "with atoms", f"traces{seed}", model, strategies


def all_cases(small: int) -> Iterator[tuple[str, str, TimingModel, list[Strategy]]]:
    yield from config_cases()
    yield from small_cases(small)
    yield from system_cases()
    yield from discrete_cases()


def label(strategy: Strategy) -> str:
    return f"{strategy.kind}{dict(strategy.params)}"


def reference(evaluator: Evaluator, strategy: Strategy) -> tuple[float, float]:
    """``E[T]`` on 32 769 points per level of a grid built from a 1 025-point base, and its change from 16 385."""
    from hgc.analytic.evaluator import ACCURATE_EPS
    from hgc.analytic.grids import integrate

    plan = evaluator.plan(strategy)
    grid = evaluator.grid_for([plan], 1025, ACCURATE_EPS)[0]
    values = []
    for points in (16385, 32769):
        cdfs, lattices = evaluator._plans_on_grid([plan], grid, points)   # noqa: SLF001 (a benchmark)
        values.append(float(integrate(cdfs, lattices, grid.segments(lattices))[0][0]))
    return values[-1], abs(values[-1] - values[-2])


def evaluate_all(small: int, with_reference: bool) -> list[dict[str, Any]]:
    rows = []
    for group, name, model, strategies in all_cases(small):
        evaluator = Evaluator(model)
        for strategy in strategies:
            row: dict[str, Any] = {"group": group, "case": name, "strategy": label(strategy)}
            try:
                for rtol in RTOLS:
                    result = evaluator.evaluate(strategy, rtol=rtol)
                    row[f"value_{rtol:g}"] = result.expected_time
                    row[f"estimate_{rtol:g}"] = result.error_estimate
                    row[f"points_{rtol:g}"] = result.points
                if with_reference:
                    row["reference"], row["reference_change"] = reference(evaluator, strategy)
            except NotAnalyticError:
                continue
            rows.append(row)
        print(f"  {name}: {len(rows)} strategies so far", file=sys.stderr, flush=True)
    return rows


def summarise(rows: list[dict[str, Any]], rtol: float, title: str) -> dict[str, Any]:
    groups: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for row in rows:
        actual = abs(row[f"value_{rtol:g}"] - row["reference"])
        estimate = row[f"estimate_{rtol:g}"]
        ratio = actual / estimate if estimate > 0 else (0.0 if actual <= 1e-14 * abs(row["reference"]) else math.inf)
        for key in (row["group"], "all"):
            groups.setdefault(key, []).append((ratio, row))
    print(f"\n### {title}, rtol = {rtol:g}\n")
    print("| group | strategies | worst actual/estimated | 99th pct | median | above 1 | worst case | its error (rel.) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    out = {}
    for key, items in groups.items():
        ratios = np.array([r for r, _ in items])
        worst_ratio, worst = max(items, key=lambda item: item[0])
        relative = abs(worst[f"value_{rtol:g}"] / worst["reference"] - 1.0)
        print(f"| {key} | {len(items)} | {worst_ratio:.2f} | {np.quantile(ratios, 0.99):.2f} | {np.median(ratios):.2f} | "
              f"{int(np.sum(ratios > 1))} | {worst['case']} {worst['strategy']} | {relative:.1e} |")
        out[key] = {"worst": worst_ratio, "median": float(np.median(ratios)), "above_1": int(np.sum(ratios > 1))}
    worst_relative = max(abs(r[f"value_{rtol:g}"] / r["reference"] - 1.0) for r in rows)
    print(f"\nlargest actual relative error: {worst_relative:.1e} (rtol {rtol:g}); largest reference uncertainty "
          f"(change 16 385 -> 32 769 points): {max(r['reference_change'] / abs(r['reference']) for r in rows):.1e}")
    return out


def closed_forms() -> list[dict[str, Any]]:
    """The evaluator against formulas (reuses the cases of ``optimize_scaling.py``)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from optimize_scaling import closed_forms as cases  # type: ignore[import-not-found]

    return cases()


def monte_carlo(trials: int) -> list[dict[str, Any]]:
    from hgc.simulation import run_strategies

    rows = []
    for _, name, model, strategies in config_cases():
        evaluator = Evaluator(model)
        chosen = []
        for strategy in strategies:
            try:
                chosen.append((strategy, evaluator.evaluate(strategy, rtol=1e-5)))
            except NotAnalyticError:
                continue
        chosen = chosen[:: max(1, len(chosen) // 6)]
        started = time.perf_counter()
        run = run_strategies(model, [s for s, _ in chosen], seed=2024, trials=trials)
        for (strategy, result), stats in zip(chosen, run.statistics):
            rows.append({"case": name, "strategy": label(strategy), "analytic": result.expected_time,
                         "mc": stats.mean_time, "sem": stats.sem, "z": (result.expected_time - stats.mean_time) / stats.sem})
        print(f"  {name}: {len(chosen)} strategies, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=50, help="random small systems")
    parser.add_argument("--dump", default=None, help="only evaluate and write the values to this JSON file")
    parser.add_argument("--before", default=None, help="values of an older version (from --dump) to compare")
    parser.add_argument("--monte-carlo", type=int, default=0, help="trials of the Monte Carlo check (0: skip)")
    parser.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    args = parser.parse_args(argv)
    if args.dump:
        Path(args.dump).write_text(json.dumps(evaluate_all(args.small, with_reference=False)))
        return 0
    rows = evaluate_all(args.small, with_reference=True)
    report: dict[str, Any] = {"rows": rows}
    print("## Actual vs estimated error of Evaluator.evaluate")
    for rtol in RTOLS:
        report[f"after_{rtol:g}"] = summarise(rows, rtol, "This version")
    if args.before:
        old = {(r["case"], r["strategy"]): r for r in json.loads(Path(args.before).read_text())}
        paired = []
        for row in rows:
            previous = old.get((row["case"], row["strategy"]))
            if previous is not None:
                paired.append({**previous, "group": row["group"], "reference": row["reference"],
                               "reference_change": row["reference_change"]})
        for rtol in RTOLS:
            report[f"before_{rtol:g}"] = summarise(paired, rtol, f"Before ({args.before}), against this version's references")
    print("\n## Closed forms\n")
    print("| case | analytic | exact | relative error |")
    print("| --- | ---: | ---: | ---: |")
    report["closed_forms"] = closed_forms()
    for row in report["closed_forms"]:
        print(f"| {row['case']} | {row['analytic']:.8f} | {row['exact']:.8f} | {row['relative_error']:.1e} |")
    if args.monte_carlo:
        print(f"\n## Monte Carlo, {args.monte_carlo} trials per config\n")
        report["monte_carlo"] = monte_carlo(args.monte_carlo)
        z = np.array([r["z"] for r in report["monte_carlo"]])
        print("| config | strategy | analytic E[T] | Monte Carlo | z |")
        print("| --- | --- | ---: | ---: | ---: |")
        for r in report["monte_carlo"]:
            print(f"| {r['case']} | {r['strategy']} | {r['analytic']:.6f} | {r['mc']:.6f} ± {r['sem']:.1e} | {r['z']:+.2f} |")
        print(f"\n{len(z)} strategies: max |z| {np.abs(z).max():.2f}, mean z {z.mean():+.2f}, "
              f"RMS z {math.sqrt(float(np.mean(z ** 2))):.2f} (1 expected for unbiased values)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
