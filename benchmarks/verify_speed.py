"""Speed of ``hgc verify`` before and after a change, and how far ``verify.csv`` moved.

Usage::

    python benchmarks/verify_speed.py --base REV [--config configs/link-bottleneck.yaml ...] [--all]
                                      [--repeats 1] [--patterns N] [--jobs 1 2] [--identical]

Runs ``python -m hgc verify CONFIG --quiet`` with the tree of git revision ``REV`` (exported with
``git archive``) and with the working tree (once per ``--jobs`` value, passed as ``--jobs J``; omit it
for a base revision without that option), alternately, ``--repeats`` times each, for every config given
(``--all``: every bundled config ``hgc verify`` accepts). Prints the best wall and CPU seconds of each,
the ratios before/after, and the totals over all configs. CPU seconds (all processes) are the fairer
figure on a shared machine: the wall clock includes time spent waiting for other processes, and worker
processes add CPU but save wall time.

The tables are compared column by column: every column except ``max_rel_error`` and ``worst_cond``
(rows, codes, constructions, pattern counts, verdicts) must be identical; for those two the largest
absolute difference (and, for ``worst_cond``, the largest relative one) is printed: decoders that differ
only in rounding (e.g. closed-form against factorised weights) move them at rounding level. Exit status
1 if any other column differs (``--identical``: if the files differ in any byte).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from verify_identity import ROOT, Run, export_tree, run_verify

ROUNDING_COLUMNS = ("max_rel_error", "worst_cond")


def compare_tables(before: bytes, after: bytes) -> tuple[bool, str]:
    """``(other columns identical, summary)`` for two ``verify.csv`` files."""
    a = pd.read_csv(io.BytesIO(before), dtype=str, keep_default_na=False)
    b = pd.read_csv(io.BytesIO(after), dtype=str, keep_default_na=False)
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False, f"shape {a.shape} -> {b.shape}, columns {'same' if list(a.columns) == list(b.columns) else 'differ'}"
    other = [c for c in a.columns if c not in ROUNDING_COLUMNS]
    differing = [c for c in other if not a[c].equals(b[c])]
    parts = [f"other columns {'identical' if not differing else 'DIFFER: ' + ', '.join(differing)}"]
    for column in ROUNDING_COLUMNS:
        x = pd.to_numeric(a[column], errors="coerce").to_numpy(float)
        y = pd.to_numeric(b[column], errors="coerce").to_numpy(float)
        same_nan = np.array_equal(np.isnan(x), np.isnan(y))
        both = ~np.isnan(x) & ~np.isnan(y)
        diff = np.abs(x[both] - y[both])
        text = f"{column} max |diff| {diff.max(initial=0.0):.3g}"
        if column == "worst_cond" and both.any():
            text += f" (relative {(diff / np.abs(x[both])).max():.3g})"
        parts.append(text + ("" if same_nan else " (NaN pattern DIFFERS)"))
        differing += [] if same_nan else [column]
    return not differing, "; ".join(parts)


def bundled_configs() -> list[Path]:
    return sorted(p for p in (ROOT / "configs").glob("*.yaml") if not p.name.startswith("sweep-"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--config", type=Path, nargs="*", default=None)
    parser.add_argument("--all", action="store_true", help="every bundled config (except sweeps)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--patterns", type=int, default=None)
    parser.add_argument("--jobs", type=int, nargs="*", default=[], help="--jobs values for the working tree")
    parser.add_argument("--identical", action="store_true", help="require byte-identical verify.csv files")
    args = parser.parse_args(argv)
    configs = bundled_configs() if args.all else [c.resolve() for c in (args.config or
                                                                       [ROOT / "configs" / "link-bottleneck.yaml"])]
    variants: list[tuple[str, tuple[str, ...]]] = [("after", ())] if not args.jobs else [
        (f"after --jobs {j}", ("--jobs", str(j))) for j in args.jobs]
    totals: dict[str, list[float]] = {label: [0.0, 0.0] for label in ["before"] + [v for v, _ in variants]}
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "base").mkdir()
        base = export_tree(args.base, Path(tmp) / "base")
        for config in configs:
            runs: dict[str, list[Run]] = {"before": [], **{label: [] for label, _ in variants}}
            for r in range(args.repeats):
                for label, tree, extra in [("before", base, ())] + [(lab, ROOT, ext) for lab, ext in variants]:
                    out = Path(tmp) / config.stem / label.replace(" ", "_") / str(r)
                    run = run_verify(tree, config, out, args.patterns, extra)
                    runs[label].append(run)
                    print(f"{config.stem:18s} {label:15s} run {r + 1}: {run.wall:7.1f} s wall, {run.cpu:7.1f} s CPU "
                          f"(exit {run.status})", flush=True)
            reference = runs["before"][0]
            if reference.csv is None:
                print(f"{config.name}: skipped (no verify.csv; exit {reference.status})")
                continue
            wall_before = min(x.wall for x in runs["before"])
            cpu_before = min(x.cpu for x in runs["before"])
            totals["before"][0] += wall_before
            totals["before"][1] += cpu_before
            print(f"{config.name}: before {wall_before:.1f} s wall / {cpu_before:.1f} s CPU")
            for label, _ in variants:
                wall = min(x.wall for x in runs[label])
                cpu = min(x.cpu for x in runs[label])
                totals[label][0] += wall
                totals[label][1] += cpu
                print(f"  {label}: {wall:.1f} s wall / {cpu:.1f} s CPU; ratio {wall_before / wall:.2f}x wall, "
                      f"{cpu_before / cpu:.2f}x CPU")
            for label, group in runs.items():
                for x in group:
                    if x.csv is None:
                        print(f"  {label}: no verify.csv (exit {x.status})")
                        failed = True
                        continue
                    if args.identical:
                        same, text = x.csv == reference.csv, "identical" if x.csv == reference.csv else "DIFFERENT"
                    else:
                        same, text = compare_tables(reference.csv, x.csv)
                    failed |= not same
                    if label != "before":
                        print(f"  {label}: {text}")
    if len(configs) > 1:
        wall_b, cpu_b = totals["before"]
        print(f"total: before {wall_b:.1f} s wall / {cpu_b:.1f} s CPU")
        for label, _ in variants:
            wall, cpu = totals[label]
            print(f"  {label}: {wall:.1f} s wall / {cpu:.1f} s CPU; ratio {wall_b / wall:.2f}x wall, "
                  f"{cpu_b / cpu:.2f}x CPU")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
