"""Record or compare the result tables of every bundled config (a refactoring safety net).

    python benchmarks/golden_outputs.py record DIR      # run simulate/optimize/verify on every config
    python benchmarks/golden_outputs.py compare DIR     # run again and compare with DIR

Tables are compared cell by cell on the columns both runs have, except wall-clock columns; any
difference is printed and the script exits 1. Trials are capped (``--trials``) to keep it quick.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
CLOCK_COLUMNS = {"optimizer_seconds", "seconds"}
RUNS = {
    "simulate": ("summary.csv", ["--trials", "{trials}"]),
    "optimize": ("optimize.csv", ["--trials", "{trials}"]),
    "verify": ("verify.csv", ["--patterns", "{patterns}"]),
}


def configs() -> list[Path]:
    return sorted(p for p in (REPO / "configs").glob("*.yaml") if not p.name.startswith("sweep-"))


def run_all(out: Path, trials: int, patterns: int, verbs: list[str]) -> None:
    for config in configs():
        for verb in verbs:
            table, extra = RUNS[verb]
            target = out / config.stem / verb
            args = [a.format(trials=trials, patterns=patterns) for a in extra]
            cmd = [sys.executable, "-m", "hgc", verb, str(config), "--out", str(target), "--quiet", *args]
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
            status = "ok" if proc.returncode in (0, 1) and (target / table).exists() else f"exit {proc.returncode}"
            print(f"{config.stem:20s} {verb:9s} {status} {proc.stderr.strip()[-200:]}", flush=True)


def compare(golden: Path, fresh: Path, verbs: list[str]) -> int:
    problems = 0
    for path in sorted(golden.rglob("*.csv")):
        if path.parent.name not in verbs:  # tables of verbs not run this time
            continue
        other = fresh / path.relative_to(golden)
        if not other.exists():
            print(f"missing: {other}")
            problems += 1
            continue
        a = pd.read_csv(path, dtype=str, keep_default_na=False)
        b = pd.read_csv(other, dtype=str, keep_default_na=False)
        columns = [c for c in a.columns if c in b.columns and c not in CLOCK_COLUMNS]
        if len(a) != len(b):
            print(f"{path.relative_to(golden)}: {len(a)} rows before, {len(b)} after")
            problems += 1
            continue
        diff = (a[columns] != b[columns])
        for column in columns:
            rows = diff.index[diff[column]].tolist()
            for r in rows:
                print(f"{path.relative_to(golden)} row {r} {column}: {a.at[r, column]!r} -> {b.at[r, column]!r}")
                problems += 1
        dropped = [c for c in a.columns if c not in b.columns]
        if dropped:
            print(f"{path.relative_to(golden)}: columns no longer written: {dropped}")
    print("identical" if problems == 0 else f"{problems} differences")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["record", "compare"])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--trials", type=int, default=20000)
    parser.add_argument("--patterns", type=int, default=2000)
    parser.add_argument("--verbs", default="simulate,optimize,verify")
    args = parser.parse_args()
    verbs = args.verbs.split(",")
    if args.action == "record":
        run_all(args.directory, args.trials, args.patterns, verbs)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        run_all(Path(tmp), args.trials, args.patterns, verbs)
        return compare(args.directory, Path(tmp), verbs)


if __name__ == "__main__":
    sys.exit(main())
