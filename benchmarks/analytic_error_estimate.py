"""How good is the analytic evaluator's ``error_estimate``? (numbers quoted in docs/model.md)

For every bundled config and a broad set of strategies on it (uncoded; every admissible ``hgc (s_e, s_w)``
on all nodes; the JNCSS greedy choice; ``flat_gc`` for every ``s`` where it is analytic), evaluate
``E[T | decoded]`` with the defaults (``rtol = 1e-4``, as ``hgc optimize`` reports it) and with a reference
grid 2^``--refine`` times finer per level (``rtol = 0``: no early stop). The *actual* error of the default
value is ``|default - reference|``; the script prints, per config, the worst ratio

    actual error / reported error_estimate

(a ratio above 1 means the estimate was exceeded) and the overall worst strategies. The reference's own
error estimate is printed too: it must be far below the actual error for the ratio to mean anything.

    python benchmarks/analytic_error_estimate.py                 # every bundled config (~1-2 min)
    python benchmarks/analytic_error_estimate.py --refine 8 --mc 10000000   # + a 10^7-trial MC of the worst
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import pandas as pd

from hgc.analytic import Evaluator, NotAnalyticError
from hgc.codes import admissible_hgc
from hgc.config import load_config
from hgc.errors import ConfigError
from hgc.optimize import select_jncss
from hgc.schemes import make_strategy
from hgc.simulation import run_strategies

CONFIGS = ("quickstart", "homogeneous", "heterogeneous", "link-bottleneck", "optimize-demo", "trace-driven",
           "train-digits", "train-regression")
BASE_POINTS = 513


def strategies(config):  # type: ignore[no-untyped-def]
    """``[(name, strategy)]`` to check on ``config``."""
    topo = config.topology
    out = [("uncoded", make_strategy("uncoded", topo))]
    for s_e, s_w in admissible_hgc(topo.workers):
        out.append((f"hgc(s_e={s_e},s_w={s_w})", make_strategy("hgc", topo, s_e=s_e, s_w=s_w)))
    for s in range(topo.n_workers):
        try:
            out.append((f"flat_gc(s={s})", make_strategy("flat_gc", topo, s=s)))
        except ConfigError:
            pass
    jncss = select_jncss(config.timing, method="greedy").strategy
    out.append((f"jncss: hgc(s_e={jncss.s_e},s_w={jncss.s_w}) on {jncss.n_workers} workers", jncss))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--refine", type=int, default=7, help="reference grid = 2^REFINE x finer (default 7)")
    parser.add_argument("--mc", type=int, default=0, help="also simulate the worst strategy with this many trials")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS))
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent / "configs"
    reference_points = (BASE_POINTS - 1) * 2 ** args.refine + 1
    rows = []
    started = time.perf_counter()
    for name in args.configs:
        config = load_config(root / f"{name}.yaml")
        evaluator = Evaluator(config.timing)
        for label, strategy in strategies(config):
            try:
                default = evaluator.evaluate(strategy)
            except NotAnalyticError:
                continue
            if not default.decode_probability > 0:
                continue
            ref = evaluator.evaluate(strategy, rtol=0.0, min_points=BASE_POINTS, max_points=reference_points)
            actual = abs(default.expected_time - ref.expected_time)
            rows.append({"config": name, "strategy": label, "expected_time": default.expected_time,
                         "error_estimate": default.error_estimate, "reference": ref.expected_time,
                         "reference_estimate": ref.error_estimate, "actual_error": actual,
                         "ratio": actual / default.error_estimate if default.error_estimate > 0 else math.inf,
                         "_config": config, "_strategy": strategy})
    table = pd.DataFrame(rows)
    shown = ["config", "strategy", "expected_time", "error_estimate", "actual_error", "ratio", "reference_estimate"]
    print(f"{len(table)} strategies on {len(args.configs)} configs, reference grid {2 ** args.refine}x finer "
          f"({time.perf_counter() - started:.0f} s)\n")
    per_config = table.groupby("config", sort=False).agg(
        strategies=("ratio", "size"), worst_ratio=("ratio", "max"), median_ratio=("ratio", "median"),
        exceeded=("ratio", lambda r: int((r > 1).sum())),
        worst_relative_error=("actual_error", lambda e: float((e / table.loc[e.index, "reference"]).max())))
    print(per_config.to_string(float_format=lambda v: f"{v:.3g}"))
    print("\nworst ratios:")
    worst = table.sort_values("ratio", ascending=False).head(10)
    print(worst[shown].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    table["relative_error"] = table.actual_error / table.reference
    print("\nworst relative errors of the default E[T]:")
    print(table.sort_values("relative_error", ascending=False).head(3)[shown + ["relative_error"]].to_string(
        index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nreference grids: largest own error estimate / actual error of the default = "
          f"{float((table.reference_estimate / table.actual_error.clip(lower=1e-300)).max()):.3g}")
    print(f"overall: worst ratio {table.ratio.max():.3g}; estimate exceeded for {int((table.ratio > 1).sum())} "
          f"of {len(table)} strategies")
    if args.mc:
        top = worst.iloc[0]
        config, strategy = top["_config"], top["_strategy"]
        run = run_strategies(config.timing, [strategy], seed=config.seed, trials=args.mc)
        stats = run.statistics[0]
        print(f"\nMonte Carlo check of the worst ({top['config']}: {top['strategy']}, {args.mc} trials): "
              f"mean {stats.mean_time:.8g} ± {stats.sem:.2g} (sem); reference {top['reference']:.8g}; "
              f"default {top['expected_time']:.8g}; z(reference) = "
              f"{(top['reference'] - stats.mean_time) / stats.sem:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
