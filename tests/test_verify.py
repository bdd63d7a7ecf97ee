"""`hgc verify`: pattern enumeration, code checks, verify.csv and the command's exit status."""

from itertools import combinations, product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import hgc.verify as verify_module
from hgc.cli import main
from hgc.codes import HierarchicalCode, build_code
from hgc.config import load_config
from hgc.verify import VERIFY_COLUMNS, check_code, pattern_count, patterns, verify_config

TIMING = "timing:\n  worker:\n    compute: {dist: exponential, rate: 1.0}\n"


def write_config(tmp_path: Path, body: str, name: str = "demo") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nseed: 3\n{body}{TIMING}")
    return path


def brute_force_hgc_patterns(workers, s_e, s_w):
    out = set()
    n = len(workers)
    offsets = np.cumsum((0,) + tuple(workers))
    for down in combinations(range(n), s_e):
        alive = [i for i in range(n) if i not in down]
        for choice in product(*[list(combinations(range(workers[i]), s_w)) for i in alive]):
            mask = np.ones(sum(workers), bool)
            for i, stragglers in zip(alive, choice):
                mask[offsets[i] + np.array(stragglers, dtype=int)] = False
            out.add((tuple(np.flatnonzero(~mask)), down))
    return out


@pytest.mark.parametrize("workers,s_e,s_w", [((3, 2, 4), 1, 1), ((2, 2, 2, 2), 2, 1), ((5,), 0, 2), ((3, 3), 0, 0)])
def test_exhaustive_hgc_patterns_are_exactly_the_maximal_admissible_ones(workers, s_e, s_w):
    code = build_code("hgc", workers, s_e=s_e, s_w=s_w)
    expected = brute_force_hgc_patterns(workers, s_e, s_w)
    assert pattern_count(code) == len(expected)
    batches, count, exhaustive = patterns(code, 10**6, np.random.default_rng(0))
    seen = []
    for wm, em in batches:
        for w, e in zip(wm, em):
            down = tuple(np.flatnonzero(~e))
            alive_workers = np.isin(code.worker_edge, np.flatnonzero(e))
            seen.append((tuple(np.flatnonzero(~w & alive_workers)), down))
    assert exhaustive and count == len(seen) == len(set(seen)) and set(seen) == expected


def test_sampled_patterns_respect_the_tolerances():
    code = build_code("hgc", (6, 6, 6, 6, 6), s_e=2, s_w=3)
    batches, count, exhaustive = patterns(code, 500, np.random.default_rng(0))
    assert not exhaustive and count == 500 < pattern_count(code)
    total = 0
    for wm, em in batches:
        total += wm.shape[0]
        assert ((~em).sum(axis=1) == 2).all()
        for i in range(5):
            down = (~wm[:, 6 * i:6 * i + 6]).sum(axis=1)
            assert (down == 3).all()
    assert total == 500


def test_check_code_reports_exact_decoding_and_counts_failures():
    code = build_code("hgc", (5, 5, 3, 6), s_e=1, s_w=1)
    good = check_code(code)
    assert good.exhaustive and good.patterns == pattern_count(code) and good.failures == 0
    assert 0 <= good.max_rel_error < 1e-12 and good.worst_cond >= 1
    broken = HierarchicalCode("hgc", code.workers, code.encoding * (1 + 1e-6 * (code.encoding != 0)), code.rtol,
                              s_e=1, s_w=1, placement=code.placement, edge_layer=code.edge_layer,
                              worker_layers=code.worker_layers)
    bad = check_code(broken)
    assert bad.undecodable == bad.patterns and bad.failures == bad.patterns
    assert np.isnan(bad.max_rel_error)


def test_flat_sampling_and_exhaustive_switch():
    code = build_code("flat_gc", [12], s=5)
    assert check_code(code, max_patterns=10**4).exhaustive
    sampled = check_code(code, max_patterns=100)
    assert not sampled.exhaustive and sampled.patterns == 100 and sampled.failures == 0


def test_verify_config_rows_autos_and_notes(tmp_path):
    path = write_config(tmp_path, "topology: {workers: [3, 2, 4]}\nschemes:\n  - uncoded\n"
                                  "  - {scheme: flat_gc, s: auto}\n  - {scheme: hgc, s_e: 1, s_w: auto}\n"
                                  "  - hgc_jncss\n")
    table = verify_config(load_config(path), out_dir=tmp_path / "out")
    assert list(table.columns) == VERIFY_COLUMNS
    assert table.scheme.tolist() == ["uncoded"] + ["flat_gc"] * 9 + ["hgc"] * 2 + ["hgc_jncss"]
    assert table[table.scheme == "flat_gc"].s.tolist() == list(range(9))
    assert table[table.scheme == "hgc"].s_w.tolist() == [0, 1]
    assert table.note.iloc[1].startswith("s=auto") and "replication across edges" in table.note.iloc[10]
    jncss = table.iloc[-1]
    assert jncss.note.startswith("JNCSS (greedy) chose edges") and jncss.failures == 0 and jncss.patterns >= 1
    coded = table[table.scheme != "hgc_jncss"]
    assert (coded.failures == 0).all() and (coded.max_rel_error < 1e-12).all() and coded.exhaustive.all()
    np.testing.assert_allclose(coded[coded.scheme == "flat_gc"].load, (np.arange(9) + 1) / 9)
    written = pd.read_csv(tmp_path / "out" / "verify.csv", keep_default_na=False)
    assert list(written.columns) == VERIFY_COLUMNS and len(written) == len(table)
    assert written.s_e.iloc[0] == "" and written.s.iloc[0] == ""          # non-applicable tolerances are empty


def test_verify_labels_tell_codes_of_one_config_apart(tmp_path):
    path = write_config(tmp_path, "topology: {workers: [3, 3, 4]}\nschemes:\n  - {scheme: hgc, s_e: 1, s_w: 1}\n"
                                  "  - {scheme: hgc, s_e: 1, s_w: 1, allocation: speed}\n"
                                  "  - {scheme: hgc, s_e: 0, s_w: 1, reduction_e: 2}\n"
                                  "  - {scheme: hgc, s_e: 1, s_w: [1, 0, 1]}\n")
    table = verify_config(load_config(path), max_patterns=50)
    assert table.label.tolist() == ["hgc(s_e=1,s_w=1)", "hgc(s_e=1,s_w=1,allocation=speed)",
                                    "hgc(s_e=0,s_w=1,reduction_e=2)", "hgc(s_e=1,s_w=1;0;1)"]
    assert (table.failures == 0).all()


def test_verify_uses_data_partitions(tmp_path):
    path = write_config(tmp_path, "topology: {workers: [2, 2]}\nschemes:\n  - {scheme: hgc, s_e: 1, s_w: 1}\n"
                                  "data: {partitions: 6}\n")
    table = verify_config(load_config(path))
    assert table.K.tolist() == [6] and table.failures.tolist() == [0]


def test_cli_verify_writes_csv_and_is_reproducible(tmp_path):
    path = write_config(tmp_path, "topology: {workers: [5, 5, 3, 6]}\nschemes:\n  - uncoded\n"
                                  "  - {scheme: flat_gc, s: 3}\n  - {scheme: hgc, s_e: 1, s_w: 1}\n")
    runner = CliRunner()
    first = runner.invoke(main, ["verify", str(path), "--out", str(tmp_path / "a"), "--patterns", "500"])
    assert first.exit_code == 0, first.output
    assert "hgc" in first.output and "verify.csv" in first.output
    again = runner.invoke(main, ["verify", str(path), "--out", str(tmp_path / "b"), "--patterns", "500", "--quiet"])
    assert again.exit_code == 0 and again.output == ""
    assert (tmp_path / "a" / "verify.csv").read_bytes() == (tmp_path / "b" / "verify.csv").read_bytes()
    table = pd.read_csv(tmp_path / "a" / "verify.csv")
    assert table.exhaustive.tolist() == [True, False, True]                # C(19, 3) = 969 > 500: sampled
    assert table.patterns.tolist() == [1, 500, 405]


def test_cli_bad_input_exits_2_with_one_line(tmp_path):
    runner = CliRunner()
    bad = write_config(tmp_path, "topology: {workers: [2, 2, 9]}\nschemes:\n  - {scheme: hgc, s_e: 1, s_w: 0}\n",
                       name="bad")
    result = runner.invoke(main, ["verify", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "schemes[0]" in result.output and "s_e <= 0" in result.output and "Traceback" not in result.output
    parts = write_config(tmp_path, "topology: {workers: [5, 5, 3, 6]}\nschemes:\n  - {scheme: hgc, s_e: 1, s_w: 1}\n"
                                   "data: {partitions: 40}\n", name="parts")
    result = runner.invoke(main, ["verify", str(parts), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "data.partitions" in result.output and "multiple of 19" in result.output
    assert runner.invoke(main, ["verify", str(parts), "--patterns", "0"]).exit_code == 2
    assert runner.invoke(main, ["verify", str(tmp_path / "missing.yaml")]).exit_code == 2


def test_cli_exits_1_when_an_admissible_pattern_fails(tmp_path, monkeypatch):
    from hgc.schemes.hgc import HGC

    real_build = HGC.build_code

    def corrupted(self, strategy, **kwargs):
        code = real_build(self, strategy, **kwargs)
        if not isinstance(code, HierarchicalCode):
            return code
        noisy = code.encoding * (1 + 1e-7 * (code.encoding != 0))
        return HierarchicalCode("hgc", code.workers, noisy, code.rtol, s_e=code.s_e, s_w=code.s_w,
                                placement=code.placement, edge_layer=code.edge_layer, worker_layers=code.worker_layers)

    monkeypatch.setattr(HGC, "build_code", corrupted)
    path = write_config(tmp_path, "topology: {workers: [3, 3]}\nschemes:\n  - uncoded\n  - {scheme: hgc, s_e: 1, s_w: 1}\n")
    result = CliRunner().invoke(main, ["verify", str(path), "--out", str(tmp_path / "o"), "--quiet"])
    assert result.exit_code == 1 and "FAILED" in result.output
    table = pd.read_csv(tmp_path / "o" / "verify.csv")
    assert table.failures.tolist() == [0, table.patterns.iloc[1]]


def test_interrupt_writes_the_rows_already_checked(tmp_path, monkeypatch):
    import hgc.verify as verify_module

    real = verify_module.check_code
    calls = []

    def interrupted_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(verify_module, "check_code", interrupted_on_second)
    path = write_config(tmp_path, "topology: {workers: [2, 2]}\nschemes:\n  - uncoded\n  - {scheme: hgc, s_e: 1, s_w: 1}\n")
    with pytest.raises(KeyboardInterrupt):
        verify_config(load_config(path), out_dir=tmp_path / "out")
    written = pd.read_csv(tmp_path / "out" / "verify.csv")
    assert written.scheme.tolist() == ["uncoded"] and written.failures.tolist() == [0]
    import json

    metadata = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert metadata["interrupted"] is True and metadata["complete"] is False


def test_parallel_checking_gives_the_same_result_bit_for_bit():
    hgc = build_code("hgc", (5, 5, 5, 5), s_e=0, s_w=2)                     # 10^4 patterns: two batches
    flat = build_code("flat_gc", [6, 6, 6], s=5, construction="gaussian")   # C(18, 5) = 8568 patterns
    for code, limit in ((hgc, 20_000), (flat, 20_000), (flat, 8500)):          # exhaustive, exhaustive, sampled
        serial = check_code(code, max_patterns=limit, rng=np.random.default_rng(1))
        parallel = check_code(code, max_patterns=limit, rng=np.random.default_rng(1), jobs=2)
        assert serial == parallel and serial.patterns > verify_module.CHUNK
        assert serial.failures == 0


def test_cli_jobs_option_does_not_change_the_csv(tmp_path):
    path = write_config(tmp_path, "topology: {workers: [5, 5, 5, 5]}\nschemes:\n  - {scheme: hgc, s_e: 0, s_w: 2}\n")
    runner = CliRunner()
    for jobs in ("1", "2"):
        result = runner.invoke(main, ["verify", str(path), "--out", str(tmp_path / jobs), "--jobs", jobs, "--quiet"])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "1" / "verify.csv").read_bytes() == (tmp_path / "2" / "verify.csv").read_bytes()
    assert pd.read_csv(tmp_path / "1" / "verify.csv").patterns.tolist() == [10_000]
    assert runner.invoke(main, ["verify", str(path), "--jobs", "0"]).exit_code == 2


@pytest.mark.parametrize("n, k", [(1, 0), (5, 0), (5, 1), (7, 3), (7, 6), (7, 7), (40, 17)])
def test_random_subsets_are_the_k_smallest_draws_as_sets(n, k):
    from hgc.codes import random_subsets

    subsets = random_subsets(np.random.default_rng(3), 500, n, k)
    keys = np.random.default_rng(3).random((500, n))                   # the same draws
    expected = np.sort(keys.argsort(axis=1)[:, :k], axis=1)
    assert subsets.shape == (500, k)
    np.testing.assert_array_equal(np.sort(subsets, axis=1), expected)
