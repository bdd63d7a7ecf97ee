"""The safe YAML loader: bounded aliases and nesting, duplicate keys refused, 1e5 as a number."""

from __future__ import annotations

import time

import pytest

from hgc.config import load_config
from hgc.errors import ConfigError
from hgc.safe_yaml import MAX_BYTES, MAX_DEPTH, MAX_NODES, load_yaml, parse_yaml

GOOD = """\
seed: 1
trials: 2000
topology: {edges: 2, workers: 3}
timing:
  worker:
    compute: {dist: exponential, mean: 1.0}
schemes: [uncoded, {scheme: hgc, s_e: 1, s_w: 1}]
"""


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text)
    return info.value


def test_exponent_without_a_dot_is_a_number_quoted_is_a_string():
    data = parse_yaml("a: 1e5\nb: -2E-3\nc: 1.5e3\nd: '1e5'\ne: 3\nf: 1.0\ng: 1_000e2\n")
    assert data == {"a": 100000.0, "b": -0.002, "c": 1500.0, "d": "1e5", "e": 3, "f": 1.0, "g": 100000.0}


def test_trials_written_1e5_is_accepted(write_config):
    path = write_config(GOOD.replace("trials: 2000", "trials: 1e5"))
    assert load_config(path).trials == 100_000


@pytest.mark.parametrize("text, key", [
    ("a: 1\nb: 2\na: 3\n", "a"),
    ("t:\n  w:\n    c: 1\n    c: 2\n", "t.w.c"),
    ("a: 1\n'a': 2\n", "a"),
    ("l:\n  - {x: 1, x: 2}\n", "l[0].x"),
    ("n: {1: a, 0x1: b}\n", "n.0x1"),
])
def test_duplicate_keys_are_refused_with_their_key_path(text, key):
    err = _error(text)
    assert err.key == key and "duplicate key" in err.message and "lines" in err.message


def test_merged_keys_may_be_overridden():
    data = parse_yaml("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 3\n")
    assert data["d"] == {"x": 3, "y": 2}


def test_reasonable_aliases_work():
    data = parse_yaml("d: &d {dist: exponential, mean: 1}\nx: [*d, *d, *d]\n")
    assert data["x"] == [data["d"]] * 3


def test_billion_laughs_is_refused_at_once():
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 30)]
    started = time.perf_counter()
    err = _error("\n".join(levels))
    assert f"more than {MAX_NODES} values" in err.message
    assert time.perf_counter() - started < 10  # a bound, not a benchmark: expansion would never finish


def test_nested_alias_distributions_are_refused_quickly(write_config):
    lines = [GOOD, "x0: &d0 {dist: exponential, mean: 1}"]
    lines += [f"x{i}: &d{i} {{dist: bimodal, p: 0.5, fast: *d{i - 1}, slow: *d{i - 1}}}" for i in range(1, 31)]
    path = write_config("\n".join(lines))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in info.value.one_line()


def test_recursive_alias_is_refused():
    assert "recursive" in _error("a: &a [1, *a]\n").message


@pytest.mark.parametrize("text", [
    "a: " + "[" * 1000 + "]" * 1000,
    "\n".join(" " * i + f"k{i}:" for i in range(200)) + " 1",
    "a: &a " + "[" * 60 + "1" + "]" * 60 + "\nb: [[[[[[*a]]]]]]",
])
def test_nesting_is_capped(text):
    assert f"more than {MAX_DEPTH} levels" in _error(text).one_line()


def test_huge_integer_literal_is_refused():
    assert "digits" in _error("a: " + "9" * 5000).message


def test_long_flat_lists_are_refused_in_seconds():
    started = time.perf_counter()
    err = _error("[" + "x, " * 60_000 + "]")
    assert f"more than {MAX_NODES} values" in err.message
    assert time.perf_counter() - started < 30


@pytest.mark.parametrize("content, fragment", [
    (b"a: \xff\xfe\n", "UTF-8"),
    (b"a: x\x00y\n", "malformed YAML"),
    (b"a: 1\n---\nb: 2\n", "malformed YAML"),
    (b"? [1, 2]\n: 3\n", "malformed YAML"),
])
def test_bad_files_are_one_line_errors_naming_the_file(tmp_path, content, fragment):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    line = info.value.one_line()
    assert line.startswith(str(path)) and fragment in line and "\n" not in line


def test_oversized_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_BYTES + 1))
    with pytest.raises(ConfigError, match="bytes"):
        load_yaml(path)


def test_cli_reports_duplicate_keys_with_exit_2(cli, write_config):
    path = write_config(GOOD + "seed: 2\n")
    result = cli("simulate", path, "--quiet")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {path}: seed: duplicate key 'seed' (lines 1 and 8); each key may appear once"
