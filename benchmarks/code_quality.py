"""Numerical quality of the gradient codes: worst relative decoding error and condition number.

For flat codes (N workers, tolerance s) and two-layer HGC codes (n edges × m workers, tolerances s_e,
s_w), build the code with every coefficient construction that applies and decode random float64
partial gradients over the maximal straggler patterns (all of them when there are at most
``--patterns``, else that many seeded random ones) with :func:`hgc.verify.check_code`.

Prints a Markdown table per family: for each system and construction the worst relative gradient
error ``||ĝ - g|| / ||g||`` and the worst condition number ``κ = max_k Σ_i |a_i B_ik|`` over the
tolerances tried (the tolerances are listed); ``--csv FILE`` also writes every measurement.

    python benchmarks/code_quality.py                     # full table (~20 s)
    python benchmarks/code_quality.py --patterns 20000    # the README numbers (~1.5 min)
    python benchmarks/code_quality.py --quick             # small systems only
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from hgc.codes import CONSTRUCTIONS, admissible_hgc, build_code
from hgc.errors import ConfigError
from hgc.rng import Stream, stream
from hgc.verify import check_code

FLAT_SIZES = (10, 20, 30, 40, 60)
HGC_SYSTEMS = ((3,) * 2, (5,) * 4, (6,) * 6, (8,) * 8, (10,) * 10,   # n edges x m workers
               (5, 5, 3, 6), (3, 4, 5, 6, 7, 8, 9, 10))                # unequal edges
CHOICES = ("auto", *CONSTRUCTIONS)


def flat_tolerances(N: int) -> list[int]:
    """A spread of tolerances: 1, N/8, N/4, N/2 - 1, N/2, 3N/4, N-2 (deduplicated, admissible)."""
    raw = [1, N // 8, N // 4, N // 2 - 1, N // 2, 3 * N // 4, N - 2]
    return sorted({s for s in raw if 0 < s < N})


def hgc_tolerances(workers: tuple[int, ...]) -> list[tuple[int, int]]:
    """Admissible ``(s_e, s_w)`` on a grid of about 0, 1, k/4, k/2, k-2 for each layer."""
    grid = lambda k: sorted({v for v in (0, 1, k // 4, k // 2, k - 2) if 0 <= v < k})
    pairs = set(admissible_hgc(workers))
    return [(a, b) for a in grid(len(workers)) for b in grid(min(workers)) if (a, b) in pairs]


def system_name(workers: tuple[int, ...]) -> str:
    return f"{len(workers)}x{workers[0]}" if len(set(workers)) == 1 else "[" + ",".join(map(str, workers)) + "]"


def measure(kind: str, workers: list[int], construction: str, max_patterns: int, seed: int, **tol) -> dict | None:
    try:
        code = build_code(kind, workers, construction=construction, rng=stream(seed, Stream.CODES), **tol)
    except ConfigError:
        return None                                    # construction does not apply to this support
    t0 = time.perf_counter()
    check = check_code(code, max_patterns=max_patterns, rng=stream(seed, Stream.VERIFY))
    return {"K": code.n_partitions, "chosen": code.construction, "patterns": check.patterns,
            "exhaustive": check.exhaustive, "max_rel_error": check.max_rel_error, "worst_cond": check.worst_cond,
            "failures": check.failures, "seconds": time.perf_counter() - t0}


def run(quick: bool, max_patterns: int, seed: int) -> pd.DataFrame:
    rows = []
    flat_sizes = FLAT_SIZES[:2] if quick else FLAT_SIZES
    hgc_systems = HGC_SYSTEMS[:2] if quick else HGC_SYSTEMS
    for N in flat_sizes:
        for s in flat_tolerances(N):
            for c in CHOICES:
                r = measure("flat_gc", [N], c, max_patterns, seed, s=s)
                if r:
                    rows.append({"family": "flat", "system": f"N={N}", "tolerance": f"s={s}", "construction": c, **r})
            print(f"flat N={N} s={s} done", file=sys.stderr)
    for workers in hgc_systems:
        for s_e, s_w in hgc_tolerances(workers):
            for c in CHOICES:
                r = measure("hgc", list(workers), c, max_patterns, seed, s_e=s_e, s_w=s_w)
                if r:
                    rows.append({"family": "hgc", "system": system_name(workers),
                                 "tolerance": f"s_e={s_e},s_w={s_w}", "construction": c, **r})
            print(f"hgc {system_name(workers)} s_e={s_e} s_w={s_w} done", file=sys.stderr)
    return pd.DataFrame(rows)


def _short(tolerance: str) -> str:
    """``s=3`` → ``3``; ``s_e=1,s_w=2`` → ``(1,2)``."""
    values = [part.split("=")[1] for part in tolerance.split(",")]
    return values[0] if len(values) == 1 else "(" + ",".join(values) + ")"


def summary_table(df: pd.DataFrame, family: str) -> str:
    """Markdown: one row per system, one ``error / κ`` cell per construction (worst over tolerances)."""
    part = df[df.family == family]
    lines = ["| system | tolerances | patterns | " + " | ".join(CHOICES) + " |",
             "|---|---|---|" + "---|" * len(CHOICES)]
    for system, group in part.groupby("system", sort=False):
        tols = list(dict.fromkeys(group.tolerance))
        patterns = group[group.construction == "auto"].patterns.sum()
        exhaustive = group[group.construction == "auto"].exhaustive.all()
        cells = []
        for c in CHOICES:
            sub = group[group.construction == c]
            if sub.empty:
                cells.append("n/a")
                continue
            fail = int(sub.failures.sum())
            coverage = "" if len(sub) == len(tols) else f" ({len(sub)}/{len(tols)})"
            text = f"{sub.max_rel_error.max():.1e} / {sub.worst_cond.max():.2g}{coverage}"
            cells.append(text + (f" **{fail} fail**" if fail else ""))
        tol_text = ", ".join(_short(t) for t in tols)
        lines.append(f"| {system} | {tol_text} | {patterns}{'' if exhaustive else ' (sampled)'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the two smallest systems per family")
    parser.add_argument("--patterns", type=int, default=3000, help="exhaustive up to this many patterns, else sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", type=Path, default=None, help="also write every measurement to this CSV")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    df = run(args.quick, args.patterns, args.seed)
    if args.csv is not None:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(args.csv, index=False, float_format="%.4g")
    print("### Flat gradient codes: worst relative error / worst κ over the listed s\n")
    print(summary_table(df, "flat"))
    print("\n### HGC (n edges × m workers, or the list of m_i): worst relative error / worst κ over the listed "
          "(s_e, s_w)\n")
    print(summary_table(df, "hgc"))
    where = f"; details in {args.csv}" if args.csv is not None else ""
    print(f"\n{len(df)} measurements, {df.patterns.sum()} decoded patterns, {time.perf_counter() - t0:.0f} s{where}")


if __name__ == "__main__":
    main()
