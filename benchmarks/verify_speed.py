"""Speed of ``hgc verify`` before and after a change, with a byte-for-byte check of ``verify.csv``.

Usage::

    python benchmarks/verify_speed.py --base REV [--config configs/link-bottleneck.yaml] [--repeats 1]
                                      [--patterns N] [--jobs 1 2]

Runs ``python -m hgc verify CONFIG --quiet`` with the tree of git revision ``REV`` (exported with
``git archive``) and with the working tree (once per ``--jobs`` value, passed as ``--jobs J``; omit it
for a base revision without that option), alternately, ``--repeats`` times each; prints the best wall
and CPU seconds of each, the ratios before/after, and whether all ``verify.csv`` files are identical
(exit status 1 if not). CPU seconds (all processes) are the fairer figure on a shared machine: the wall
clock includes time spent waiting for other processes, and worker processes add CPU but save wall time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from verify_identity import ROOT, export_tree, run_verify


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "link-bottleneck.yaml")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--patterns", type=int, default=None)
    parser.add_argument("--jobs", type=int, nargs="*", default=[], help="--jobs values for the working tree")
    args = parser.parse_args(argv)
    config = args.config.resolve()
    variants: list[tuple[str, tuple[str, ...]]] = [("after", ())] if not args.jobs else [
        (f"after --jobs {j}", ("--jobs", str(j))) for j in args.jobs]
    runs: dict[str, list] = {"before": [], **{label: [] for label, _ in variants}}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "base").mkdir()
        base = export_tree(args.base, Path(tmp) / "base")
        for r in range(args.repeats):
            for label, tree, extra in [("before", base, ())] + [(lab, ROOT, ext) for lab, ext in variants]:
                run = run_verify(tree, config, Path(tmp) / label.replace(" ", "_") / str(r), args.patterns, extra)
                runs[label].append(run)
                print(f"{label:15s} run {r + 1}: {run.wall:7.1f} s wall, {run.cpu:7.1f} s CPU (exit {run.status})",
                      flush=True)
    reference = runs["before"][0].csv
    same = all(x.csv == reference for group in runs.values() for x in group)
    wall_before = min(x.wall for x in runs["before"])
    cpu_before = min(x.cpu for x in runs["before"])
    print(f"{config.name}: before {wall_before:.1f} s wall / {cpu_before:.1f} s CPU")
    for label, _ in variants:
        wall = min(x.wall for x in runs[label])
        cpu = min(x.cpu for x in runs[label])
        print(f"  {label}: {wall:.1f} s wall / {cpu:.1f} s CPU; ratio {wall_before / wall:.2f}x wall, "
              f"{cpu_before / cpu:.2f}x CPU")
    print(f"verify.csv {'identical' if same else 'DIFFERENT'} across all runs")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
