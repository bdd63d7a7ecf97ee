"""``hgc plot``: PNG files for simulate, sweep and train directories; clear errors otherwise."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hgc.plotting import param_label, plot_directory, swept_keys

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

CONFIG = """\
name: plotme
seed: 5
trials: 3000
topology: {edges: 3, workers: 3}
timing:
  worker:
    compute: {dist: shifted_exponential, shift: 1.0, rate: 2.0}
schemes: [uncoded, {scheme: flat_gc, s: 2}, {scheme: hgc, s_e: 1, s_w: 1}]
"""


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000


def test_plot_simulate_directory(tmp_path, cli):
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    out = tmp_path / "sim"
    assert cli("simulate", config, "--out", out, "--quiet").exit_code == 0
    result = cli("plot", out)
    assert result.exit_code == 0, result.output
    assert _is_png(out / "mean_time.png") and _is_png(out / "time_cdf.png")
    assert "wrote" in result.stdout


def test_plot_sweep_directory_with_two_keys(tmp_path, cli):
    base = tmp_path / "c.yaml"
    base.write_text(CONFIG)
    sweep = tmp_path / "s.yaml"
    sweep.write_text(textwrap.dedent("""\
        name: s
        base: c.yaml
        grid:
          timing.worker.compute.shift: [0.5, 1.0, 2.0]
          topology.edges: [3, 4]
        """))
    out = tmp_path / "sweep"
    assert cli("sweep", sweep, "--executor", "serial", "--out", out, "--quiet").exit_code == 0
    written = plot_directory(out)
    names = sorted(p.name for p in written)
    assert names == ["sweep_mean_time__timing.worker.compute.shift.png", "sweep_mean_time__topology.edges.png",
                     "sweep_speedup__timing.worker.compute.shift.png", "sweep_speedup__topology.edges.png"]
    assert all(_is_png(p) for p in written)


def test_plot_sweep_with_zipped_keys_and_categorical_values(tmp_path):
    rows = []
    for dist in ['{"dist":"exponential","mean":1}', '{"dist":"constant","value":1}']:
        for edges, workers in [(2, 4), (4, 2)]:
            for scheme in ("uncoded", "hgc"):
                rows.append({"timing.worker.compute": dist, "topology.edges": edges, "topology.workers": workers,
                             "scheme": scheme, "mean_time": 1.0 + edges / 10, "sem_time": 0.01, "speedup": 1.0,
                             "label": scheme})
    pd.DataFrame(rows).to_csv(tmp_path / "sweep.csv", index=False)
    table = pd.read_csv(tmp_path / "sweep.csv")
    assert swept_keys(table) == ["timing.worker.compute", "topology.edges", "topology.workers"]
    written = plot_directory(tmp_path)
    assert len(written) == 6 and all(_is_png(p) for p in written)


def test_plot_train_directory(tmp_path, cli):
    iters = np.arange(50)
    frames = [pd.DataFrame({"label": label, "scheme": label, "iteration": iters, "sim_time": iters * step,
                            "loss": 2.0 * np.exp(-iters / 15) + 0.1, "train_accuracy": 0.5,
                            "test_accuracy": 0.5, "grad_rel_error": 1e-12})
              for label, step in (("uncoded", 0.5), ("hgc(s_e=1,s_w=1)", 0.3))]
    pd.concat(frames).to_csv(tmp_path / "train.csv", index=False)
    result = cli("plot", tmp_path)
    assert result.exit_code == 0, result.output
    assert _is_png(tmp_path / "train_loss.png")


def test_plot_errors_exit_2(tmp_path, cli):
    empty = tmp_path / "empty"
    empty.mkdir()
    for target, message in ((empty, "nothing to plot"), (tmp_path / "missing", "directory not found")):
        result = cli("plot", target)
        assert result.exit_code == 2
        assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("key, label", [
    ("timing.edge.process.p", "timing.edge.process.p (probability)"),
    ("timing.worker.overhead.mean", "timing.worker.overhead.mean (s)"),
    ("timing.edge.uplink.rate", "timing.edge.uplink.rate (1/s)"),
    ("topology.edges", "number of edge nodes n"),
])
def test_axis_labels_carry_units(key, label):
    assert param_label(key) == label
