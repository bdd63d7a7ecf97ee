"""Check that ``hgc verify`` writes byte-identical ``verify.csv`` files before and after a change.

Usage::

    python benchmarks/verify_identity.py --base REV [--patterns N] [configs/X.yaml ...]

``REV`` is a git revision of this repository (e.g. the commit before a refactoring). Its tree is exported
with ``git archive`` into a temporary directory; ``python -m hgc verify CONFIG --quiet`` then runs once
with that tree and once with the working tree (each through its own ``PYTHONPATH``), and the two
``verify.csv`` files are compared byte for byte. Without config arguments every ``configs/*.yaml`` is
checked; a config that ``hgc verify`` refuses in both trees with the same exit status (e.g. a sweep
file) is reported as skipped. Prints one line per config with both CPU times and exits with status 1 if
any file differs.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    """One ``hgc verify`` run: exit status, wall and CPU seconds, and the CSV bytes (``None`` if none)."""

    status: int
    wall: float
    cpu: float
    csv: bytes | None


def export_tree(rev: str, into: Path) -> Path:
    """The files of revision ``rev`` under ``into`` (no git metadata)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run_verify(tree: Path, config: Path, out: Path, patterns: int | None = None,
               extra: tuple[str, ...] = ()) -> Run:
    """``python -m hgc verify config --out out --quiet [extra...]`` with ``tree`` on ``PYTHONPATH``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "hgc", "verify", str(config), "--out", str(out), "--quiet", *extra]
    if patterns is not None:
        cmd += ["--patterns", str(patterns)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=tree, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    csv = out / "verify.csv"
    return Run(done.returncode, wall, cpu, csv.read_bytes() if csv.exists() else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--patterns", type=int, default=None, help="--patterns for hgc verify (default: its own)")
    parser.add_argument("configs", nargs="*", type=Path)
    args = parser.parse_args(argv)
    configs = [c.resolve() for c in args.configs] or sorted((ROOT / "configs").glob("*.yaml"))
    differing = 0
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "base").mkdir()
        base = export_tree(args.base, Path(tmp) / "base")
        for config in configs:
            old = run_verify(base, config, Path(tmp) / "old" / config.stem, args.patterns)
            new = run_verify(ROOT, config, Path(tmp) / "new" / config.stem, args.patterns)
            if old.csv is None and new.csv is None and old.status == new.status:
                verdict = f"skipped (hgc verify exits {old.status} in both trees)"
            elif old.csv == new.csv and old.status == new.status:
                verdict = "identical"
            else:
                verdict = f"DIFFERENT (exit {old.status} -> {new.status})"
                differing += 1
            print(f"{config.name:28s} {verdict:45s} cpu {old.cpu:7.1f}s -> {new.cpu:7.1f}s", flush=True)
    print("all identical" if not differing else f"{differing} config(s) differ")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
