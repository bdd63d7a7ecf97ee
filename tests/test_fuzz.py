"""Fuzzing the command line with mutants of the bundled configs: exit 0, or exit 2 with one line; never a
traceback, never a hang.

A seeded mutator (deterministic: the same mutants on every run) takes each bundled config and sweep file and
applies one or two of: deleting a key, replacing a value with a hostile one (wrong types, NaN, ±inf,
huge/tiny/subnormal numbers, 400-digit integers, long or NUL-laden unicode strings, nested structures),
scaling a number by 1e±300, adding unknown keys, and text-level damage (duplicate keys, alias bombs, deep
nesting, invalid UTF-8, truncation). Each mutant runs through the real CLI in this process under a time
bound (SIGALRM). Most mutants run ``hgc simulate`` with the expensive scheme choices (``auto``,
``hgc_jncss``) set aside and 64 trials, so the Monte Carlo runs on every mutated timing model; a few run
everything (auto tolerances, pilots, JNCSS); sweep mutants are validated up to the point of starting the
executor.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import signal
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import hgc.cli.simulate
import hgc.cli.sweep
from hgc.cli import main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SWEEPS = sorted(CONFIGS.glob("sweep-*.yaml"))
EXPERIMENTS = sorted(p for p in CONFIGS.glob("*.yaml") if p not in SWEEPS)

SEED = 20240607
CHEAP_MUTANTS = 300      # simulate, expensive scheme choices set aside
FULL_MUTANTS = 16        # simulate with every scheme as written
SWEEP_MUTANTS = 60       # sweep files, validated
TIME_BOUND = 60          # seconds per mutant: generous (shared CI machines), but a hang fails

HOSTILE: list[Any] = [
    None, True, False, 0, -1, 1, 2, 3, 0.5, -0.5, 1e308, -1e308, 1e-320, 5e-324, 1e-300, 1e300,
    float("nan"), float("inf"), float("-inf"), 10**400, -(10**400), 2**63, 2**64 + 1, 10**12, 1e12,
    "", "auto", "1e5", "abc", "x" * 5000, "a\x00b", "ünï©ødé ✓ \U0001f600", "../../etc/passwd", "\n\t",
    [], [1, 2, 3], [[[[]]]], {}, {"dist": ["exponential"]}, {"dist": "exponential"},
    {"dist": "exponential", "mean": 1e308}, {"dist": "pareto", "shape": 1e-10, "scale": 1},
    {"dist": "gamma", "shape": 1e300, "scale": 1}, {"dist": "lognormal", "mu": 1000, "sigma": 1},
    {"dist": "bimodal", "p": 0.5, "fast": 0, "slow": {"dist": "constant", "value": 1e308}},
    {"dist": "empirical", "file": "/etc/passwd", "column": "root"}, {"dist": "uniform", "low": 1, "high": 1},
    {"dist": "constant", "value": 0}, {"scheme": ["hgc"]}, {"edges": 10**6, "workers": 1},
]


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (tuple of keys/indices) to a value inside ``node``."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, prefix + (index,))
    return out


def _get_parent(root: Any, path: tuple) -> tuple[Any, Any]:
    node = root
    for part in path[:-1]:
        node = node[part]
    return node, path[-1]


def _mutate_data(raw: Any, rng: random.Random) -> tuple[Any, str]:
    raw = copy.deepcopy(raw)
    paths = _paths(raw)
    if not paths:
        return raw, "empty"
    path = rng.choice(paths)
    parent, last = _get_parent(raw, path)
    op = rng.choice(["delete", "hostile", "hostile", "scale", "perturb", "perturb", "perturb", "unknown", "wrap"])
    where = ".".join(map(str, path))
    if op == "delete" and isinstance(parent, dict):
        del parent[last]
        return raw, f"delete {where}"
    if op == "scale" and isinstance(parent[last], (int, float)) and not isinstance(parent[last], bool):
        factor = rng.choice([1e300, 1e-300, -1, 0, 1e9, 1e-9, 10**30])
        try:
            parent[last] = parent[last] * factor
        except OverflowError:
            parent[last] = float("inf")
        return raw, f"scale {where} x {factor!r}"
    if op == "perturb" and isinstance(parent[last], (int, float)) and not isinstance(parent[last], bool):
        if isinstance(parent[last], int):
            parent[last] = max(0, parent[last] + rng.choice([-2, -1, 1, 2, 5]))
        else:
            parent[last] = parent[last] * rng.choice([0.0, 0.1, 0.5, 2.0, 10.0, 1e3])
        return raw, f"perturb {where} to {parent[last]!r}"
    if op == "unknown" and isinstance(parent, dict):
        parent[rng.choice(["extra", "Seed", "timing2", "\x00", "ü" * 300])] = rng.choice(HOSTILE)
        return raw, f"unknown key next to {where}"
    if op == "wrap":
        parent[last] = rng.choice([[parent[last]], {"value": parent[last]}])
        return raw, f"wrap {where}"
    value = copy.deepcopy(rng.choice(HOSTILE))
    parent[last] = value
    return raw, f"{where} = {value!r:.60}"


def _mutate_text(text: str, rng: random.Random) -> tuple[bytes, str]:
    op = rng.choice(["duplicate", "aliases", "nesting", "bad-utf8", "truncate", "nul", "anchor-reuse", "tabs"])
    if op == "duplicate":
        key = rng.choice(["seed: 3", "trials: 10", "name: twice", "timing: {}"])
        return (text + "\n" + key + "\n").encode(), "duplicate key"
    if op == "aliases":
        levels = rng.randint(5, 30)
        lines = ["x0: &x0 {dist: exponential, mean: 1}"]
        lines += [f"x{i}: &x{i} {{dist: bimodal, p: 0.5, fast: *x{i - 1}, slow: *x{i - 1}}}" for i in range(1, levels)]
        return (text + "\n" + "\n".join(lines) + "\n").encode(), f"{levels} levels of aliases"
    if op == "nesting":
        depth = rng.choice([65, 200, 2000])
        return (text + "\nextra: " + "[" * depth + "]" * depth + "\n").encode(), f"nesting {depth}"
    if op == "bad-utf8":
        cut = rng.randrange(len(text))
        return text[:cut].encode() + b"\xff\xfe" + text[cut:].encode(), "invalid UTF-8"
    if op == "truncate":
        cut = rng.randrange(len(text))
        return text[:cut].encode(), f"truncated at {cut}"
    if op == "nul":
        cut = rng.randrange(len(text))
        return (text[:cut] + "\x00" + text[cut:]).encode(), "NUL byte"
    if op == "anchor-reuse":
        return (text.replace("timing:", "timing: &t", 1) + "\nextra: *t\n").encode(), "anchor reused"
    cut = rng.randrange(len(text))
    return (text[:cut] + "\t" + text[cut:]).encode(), "tab"


def _mutants(files: list[Path], count: int, salt: int) -> list[tuple[str, Path, bytes]]:
    rng = random.Random(SEED + salt)
    out = []
    for i in range(count):
        source = files[i % len(files)]
        text = source.read_text()
        if rng.random() < 0.2:
            data, what = _mutate_text(text, rng)
        else:
            raw = yaml.safe_load(text)
            what = []
            for _ in range(rng.choice([1, 1, 2])):
                raw, step = _mutate_data(raw, rng)
                what.append(step)
            data = yaml.safe_dump(raw, allow_unicode=True).encode("utf-8", "surrogatepass")
            what = "; ".join(what)
        out.append((f"{i}:{source.name}: {what}", source, data))
    return out


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def _run(args: list[str]):
    runner = CliRunner()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_BOUND)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numerical warnings are not the subject here
            return runner.invoke(main, args, catch_exceptions=True)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _check(result, label: str, allowed: tuple[type[BaseException], ...] = ()) -> None:
    exc = result.exception
    assert not isinstance(exc, _Timeout), f"{label}: no answer within {TIME_BOUND} s"
    if exc is not None and not isinstance(exc, SystemExit):
        if isinstance(exc, allowed):
            return
        import traceback

        detail = "".join(traceback.format_exception(*result.exc_info)[-6:])
        raise AssertionError(f"{label}: traceback instead of exit 0/2:\n{detail}")
    assert result.exit_code in (0, 2), f"{label}: exit {result.exit_code}\n{result.output}"
    assert "Traceback" not in result.output, f"{label}: {result.output}"
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{label}: stderr {result.stderr!r}"


def _write(tmp_path: Path, source: Path, data: bytes, index: int) -> Path:
    path = source.parent / f".fuzz-{tmp_path.name}-{index}.yaml"  # beside the original: relative paths resolve
    path.write_bytes(data)
    return path


@pytest.fixture
def cheap_schemes(monkeypatch):
    """simulate runs only the schemes that need no search (auto tolerances and JNCSS are set aside)."""
    from hgc.schemes import SchemeSpec

    import hgc.experiment

    real = hgc.experiment.simulate

    def cheap(config, **kwargs):
        schemes = tuple(s for s in config.schemes if not s.is_auto) or (SchemeSpec("uncoded"),)
        return real(dataclasses.replace(config, schemes=schemes), **kwargs)

    monkeypatch.setattr(hgc.experiment, "simulate", cheap)  # the command imports it when it runs


def _fuzz(tmp_path: Path, mutants: list[tuple[str, Path, bytes]], extra: list[str], verb: str = "simulate",
          allowed: tuple[type[BaseException], ...] = ()) -> dict[int, int]:
    codes: dict[int, int] = {}
    for index, (label, source, data) in enumerate(mutants):
        path = _write(tmp_path, source, data, index)
        try:
            result = _run([verb, str(path), "--out", str(tmp_path / "out"), *extra])
        finally:
            path.unlink()
        _check(result, label, allowed)
        key = -1 if result.exception is not None and not isinstance(result.exception, SystemExit) else result.exit_code
        codes[key] = codes.get(key, 0) + 1
    return codes


def test_fuzz_simulate_on_mutated_configs(tmp_path, cheap_schemes):
    codes = _fuzz(tmp_path, _mutants(EXPERIMENTS, CHEAP_MUTANTS, 0), ["--trials", "64", "--quiet"])
    # the mutator must produce both outcomes in quantity, or it tests nothing
    assert codes.get(0, 0) >= 30 and codes.get(2, 0) >= 100, codes


def test_fuzz_full_pipeline_on_mutated_configs(tmp_path):
    cheap = [p for p in EXPERIMENTS if p.stem in ("homogeneous", "heterogeneous", "trace-driven", "train-digits")]
    codes = _fuzz(tmp_path, _mutants(cheap, FULL_MUTANTS, 1), ["--trials", "64", "--quiet"])
    assert sum(codes.values()) == FULL_MUTANTS


class _Validated(Exception):
    """Raised instead of starting an executor: the sweep file passed every check."""


def test_fuzz_sweep_files(tmp_path, monkeypatch):
    def stop(*args, **kwargs):
        raise _Validated

    import hgc.executors

    monkeypatch.setattr(hgc.executors, "make_executor", stop)  # the command imports it when it runs
    codes = _fuzz(tmp_path, _mutants(SWEEPS, SWEEP_MUTANTS, 2), ["--executor", "serial", "--quiet"], verb="sweep",
                  allowed=(_Validated,))
    assert codes.get(2, 0) >= 10 and codes.get(-1, 0) >= 3, codes


def test_mutator_is_deterministic():
    first = [label for label, _, _ in _mutants(EXPERIMENTS, 40, 0)]
    assert first == [label for label, _, _ in _mutants(EXPERIMENTS, 40, 0)]
    assert math.isfinite(len(first))
