"""Speed of ``hgc verify`` before and after a change, with a byte-for-byte check of ``verify.csv``.

Usage::

    python benchmarks/verify_speed.py --base REV [--config configs/link-bottleneck.yaml] [--repeats 1]
                                      [--patterns N]

Runs ``python -m hgc verify CONFIG --quiet`` with the tree of git revision ``REV`` (exported with
``git archive``) and with the working tree, alternately, ``--repeats`` times each; prints the best wall
and CPU seconds of each, the ratios before/after, and whether the two ``verify.csv`` files are identical
(exit status 1 if not). CPU seconds are the fairer figure on a shared machine: the wall clock includes
time spent waiting for other processes.
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
    args = parser.parse_args(argv)
    config = args.config.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "base").mkdir()
        base = export_tree(args.base, Path(tmp) / "base")
        runs: dict[str, list] = {"before": [], "after": []}
        for r in range(args.repeats):
            for label, tree in (("before", base), ("after", ROOT)):
                run = run_verify(tree, config, Path(tmp) / label / str(r), args.patterns)
                runs[label].append(run)
                print(f"{label:6s} run {r + 1}: {run.wall:7.1f} s wall, {run.cpu:7.1f} s CPU (exit {run.status})",
                      flush=True)
    before = min(runs["before"], key=lambda x: x.cpu)
    after = min(runs["after"], key=lambda x: x.cpu)
    same = all(x.csv == runs["before"][0].csv for x in runs["before"] + runs["after"])
    print(f"{config.name}: before {min(x.wall for x in runs['before']):.1f} s wall / {before.cpu:.1f} s CPU, "
          f"after {min(x.wall for x in runs['after']):.1f} s wall / {after.cpu:.1f} s CPU; "
          f"ratio {min(x.wall for x in runs['before']) / min(x.wall for x in runs['after']):.2f}x wall, "
          f"{before.cpu / after.cpu:.2f}x CPU; verify.csv {'identical' if same else 'DIFFERENT'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
