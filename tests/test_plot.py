"""``hgc plot``: the figures show what the tables say (effective times, failure rates, quantile ranges, node
choices, errors vs κ, targets), stay readable (distinct styles, integer ticks, shared scales), and bad
files are one-line errors.

Figures are inspected through :func:`hgc.plotting.figures` (the ``Figure`` objects, before saving). Result
directories come from the real commands (``simulate``, ``sweep``, ``train``) or, for the slower
``optimize`` and ``verify``, from files those commands wrote (``tests/data/plot/``: ``hgc optimize
configs/optimize-demo.yaml`` and ``hgc verify configs/quickstart.yaml``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.container import BarContainer
from matplotlib.lines import Line2D

from hgc.plotting import figures, param_label, plot_directory, swept_keys
from hgc.plotting.style import Styles
from hgc.plotting.tables import effective_halfwidths, effective_times

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data" / "plot"
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


def _bars(ax) -> np.ndarray:
    container = next(c for c in ax.containers if isinstance(c, BarContainer))
    return np.array([patch.get_width() for patch in container.patches])


def _bold_tick(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels() if t.get_fontweight() == "bold"]


def _lines(ax) -> list[Line2D]:
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory) -> Path:
    """``hgc simulate configs/train-regression.yaml``: uncoded has the lowest mean time but fails to decode
    in about 18 % of iterations."""
    from click.testing import CliRunner

    from hgc.cli import main

    out = tmp_path_factory.mktemp("regression")
    result = CliRunner().invoke(main, ["simulate", str(REPO / "configs" / "train-regression.yaml"),
                                       "--trials", "6000", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


# ----------------------------------------------------------------------------------------------------
# simulate: effective times and the CDF

def test_plot_simulate_directory_writes_pngs(tmp_path, cli):
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    out = tmp_path / "sim"
    assert cli("simulate", config, "--out", out, "--quiet").exit_code == 0
    result = cli("plot", out)
    assert result.exit_code == 0, result.output
    assert _is_png(out / "effective_time.png") and _is_png(out / "time_cdf.png")
    assert "wrote" in result.stdout


def test_bars_are_effective_times_and_a_failing_scheme_is_not_best(regression_run):
    summary = pd.read_csv(regression_run / "summary.csv")
    fig = figures(regression_run).figures["effective_time.png"]
    ax = fig.axes[0]
    expected = summary["mean_time"] / (1 - summary["failure_rate"])
    np.testing.assert_allclose(_bars(ax), expected, rtol=1e-9)      # the CSV keeps 10 significant digits
    np.testing.assert_allclose(_bars(ax), summary["effective_time"], rtol=1e-12)
    uncoded = int(np.flatnonzero(summary["scheme"] == "uncoded")[0])
    assert summary["failure_rate"][uncoded] > 0.1
    assert summary["mean_time"][uncoded] == summary["mean_time"].min()   # fastest by raw mean ...
    assert _bars(ax)[uncoded] > _bars(ax).min()                          # ... but not per successful iteration
    best = summary["label"][int(np.argmin(expected))]
    assert _bold_tick(ax) == [best] and best != "uncoded"
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "undecodable" in texts and "fastest" in texts
    # the speed-up written beside each bar is a ratio of effective times
    for label, value in zip(summary["label"], expected):
        if label != "uncoded":
            assert f"{expected[uncoded] / value:.2f}× uncoded" in texts
    # the mean over decoded iterations is marked for the schemes that fail sometimes
    marks = next(c for c in ax.collections if isinstance(c, PathCollection))
    failing = summary["failure_rate"] > 0
    np.testing.assert_allclose(sorted(marks.get_offsets()[:, 0]), sorted(summary["mean_time"][failing]))


def test_effective_time_column_is_used_when_present(regression_run, tmp_path):
    summary = pd.read_csv(regression_run / "summary.csv")
    summary["effective_time"] = [2.0, 1.0, 3.0, 4.0]
    summary.to_csv(tmp_path / "summary.csv", index=False)
    ax = figures(tmp_path).figures["effective_time.png"].axes[0]
    np.testing.assert_array_equal(_bars(ax), [2.0, 1.0, 3.0, 4.0])
    assert _bold_tick(ax) == [summary["label"][1]]


def test_confidence_interval_accounts_for_the_failure_rate():
    table = pd.DataFrame({"mean_time": [2.0, 2.0], "sem_time": [0.01, 0.01], "failure_rate": [0.0, 0.5],
                          "trials": [10_000, 10_000]})
    half = effective_halfwidths(table)
    assert half[0] == pytest.approx(1.959964 * 0.01, rel=1e-6)
    # delta method: se² = (sem/(1-f))² + (m·sqrt(f(1-f)/n)/(1-f)²)²
    assert half[1] == pytest.approx(1.959964 * np.hypot(0.02, 2.0 * 0.005 / 0.25), rel=1e-6)
    never = pd.DataFrame({"mean_time": [np.nan], "failure_rate": [1.0]})
    assert np.isnan(effective_times(never)[0])


def test_scheme_that_never_decodes_has_no_bar(tmp_path):
    pd.DataFrame({"scheme": ["uncoded", "hgc"], "label": ["uncoded", "hgc(s_e=1,s_w=0)"],
                  "mean_time": [np.nan, 0.5], "sem_time": [np.nan, 0.01], "failure_rate": [1.0, 0.0],
                  "trials": [100, 100]}).to_csv(tmp_path / "summary.csv", index=False)
    ax = figures(tmp_path).figures["effective_time.png"].axes[0]
    np.testing.assert_array_equal(_bars(ax), [0.0, 0.5])
    assert any("never decoded" in t.get_text() for t in ax.texts)


def test_cdf_ends_at_the_999_quantile_and_tops_out_at_the_decoded_fraction(regression_run):
    quantiles = pd.read_csv(regression_run / "quantiles.csv")
    summary = pd.read_csv(regression_run / "summary.csv")
    ax = figures(regression_run).figures["time_cdf.png"].axes[0]
    top = quantiles[np.isclose(quantiles["quantile"], 0.999)].groupby("label")["time"].first()
    assert ax.get_xlim()[1] == pytest.approx(top.max(), rel=1e-12)
    assert ax.get_ylabel() == "P(decoded and T ≤ t)"
    for line in _lines(ax):
        label = line.get_label().split(" — ")[0]
        failure = float(summary.loc[summary["label"] == label, "failure_rate"].iloc[0])
        assert line.get_ydata().max() == pytest.approx(0.999 * (1 - failure), rel=1e-9)
        if failure > 0:
            assert "undecodable" in line.get_label()


def test_coinciding_curves_get_distinct_styles_and_are_named(tmp_path):
    levels = np.array([0.1, 0.5, 0.9, 0.999])
    rows = [{"label": label, "scheme": label.split("(")[0], "quantile": q, "time": 1.0 + q}
            for label in ("uncoded", "flat_gc(s=0)", "hgc(s_e=0,s_w=0)") for q in levels]
    pd.DataFrame(rows).to_csv(tmp_path / "quantiles.csv", index=False)
    ax = figures(tmp_path).figures["time_cdf.png"].axes[0]
    lines = _lines(ax)
    assert len(lines) == 3
    styles = {(line.get_color(), line.get_linestyle(), line.get_marker()) for line in lines}
    assert len(styles) == 3
    assert all(len({getattr(a, f"get_{p}")() for a in lines}) == 3 for p in ("color", "marker"))
    assert [line.get_label() for line in lines][1:] == ["flat_gc(s=0) (= uncoded)", "hgc(s_e=0,s_w=0) (= uncoded)"]


def test_styles_are_distinct_for_many_schemes():
    styles = Styles(["uncoded"] + [f"hgc(s_e={a},s_w={b})" for a in range(4) for b in range(4)])
    looks = [(s.colour, s.marker, s.linestyle) for s in (styles[k] for k in styles._styles)]
    assert len(set(looks)) == len(looks) == 17
    assert len({(c, ls) for c, _, ls in looks}) == 17          # colour and line style alone suffice
    assert styles["uncoded"].colour == "#000000"


# ----------------------------------------------------------------------------------------------------
# sweep

@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory) -> Path:
    from click.testing import CliRunner

    from hgc.cli import main

    root = tmp_path_factory.mktemp("sweep")
    (root / "c.yaml").write_text(CONFIG.replace("trials: 3000", "trials: 2000"))
    (root / "s.yaml").write_text(textwrap.dedent("""\
        name: s
        base: c.yaml
        grid:
          timing.failures.worker: [0.0, 0.05]
          topology.edges: [3, 4, 6]
        """))
    out = root / "out"
    result = CliRunner().invoke(main, ["sweep", str(root / "s.yaml"), "--executor", "serial", "--out", str(out),
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def test_sweep_figures_names_and_pngs(sweep_run):
    written = plot_directory(sweep_run)
    assert sorted(p.name for p in written) == [
        "sweep_effective_time__timing.failures.worker.png", "sweep_effective_time__topology.edges.png",
        "sweep_speedup__timing.failures.worker.png", "sweep_speedup__topology.edges.png"]
    assert all(_is_png(p) for p in written)


def test_sweep_effective_time_panels(sweep_run):
    table = pd.read_csv(sweep_run / "sweep.csv")
    fig = figures(sweep_run).figures["sweep_effective_time__topology.edges.png"]
    main = [ax for ax in fig.axes if ax.get_ylabel().startswith("effective time")]
    strips = [ax for ax in fig.axes if ax.get_ylabel().startswith("undecodable")]
    assert len(main) == 2 and len(strips) == 2                   # one panel per failure probability
    assert main[0].get_ylim() == main[1].get_ylim()              # one y-scale
    assert main[0].get_shared_y_axes().joined(main[0], main[1])
    for strip in strips:                                         # integer ticks at the swept values
        assert list(strip.get_xticks()) == [3, 4, 6]
    # the plotted points are effective times
    expected = table["mean_time"] / (1 - table["failure_rate"])
    for ax, p in zip(main, (0.0, 0.05)):
        assert len(_lines(ax)) == 3
        for line in _lines(ax):
            rows = table[(table["timing.failures.worker"] == p) & (table["label"] == line.get_label().split(" (= ")[0])]
            np.testing.assert_allclose(line.get_ydata(), expected[rows.index], rtol=1e-9)  # effective times rounded to 10 digits in the CSV
            np.testing.assert_array_equal(line.get_xdata(), rows["topology.edges"])


def test_sweep_speedups_are_ratios_of_effective_times(sweep_run):
    table = pd.read_csv(sweep_run / "sweep.csv")
    fig = figures(sweep_run).figures["sweep_speedup__timing.failures.worker.png"]
    effective = table["mean_time"] / (1 - table["failure_rate"])
    uncoded = table["scheme"] == "uncoded"
    base_map = {(p, n): e for p, n, e in zip(table["timing.failures.worker"][uncoded],
                                              table["topology.edges"][uncoded], effective[uncoded])}
    checked = 0
    for ax in fig.axes:
        edges = int(ax.get_title().split("= ")[1]) if ax.get_title() else None
        for line in _lines(ax):
            rows = table[(table["topology.edges"] == edges) & (table["label"] == line.get_label().split(" (= ")[0])]
            want = [base_map[(p, edges)] / effective[i] for p, i in zip(rows["timing.failures.worker"], rows.index)]
            np.testing.assert_allclose(line.get_ydata(), want, rtol=1e-9)  # effective times rounded to 10 digits in the CSV
            checked += 1
    assert checked == 9      # 3 panels (edges) x 3 schemes


def test_zipped_keys_get_one_figure_and_categorical_values_work(tmp_path):
    rows = []
    for dist in ['{"dist":"exponential","mean":1}', '{"dist":"constant","value":1}']:
        for edges, workers in [(2, 4), (4, 2)]:
            for scheme in ("uncoded", "hgc"):
                rows.append({"timing.worker.compute": dist, "topology.edges": edges, "topology.workers": workers,
                             "scheme": scheme, "mean_time": 1.0 + edges / 10, "sem_time": 0.01,
                             "failure_rate": 0.0, "speedup": 1.0, "label": scheme})
    pd.DataFrame(rows).to_csv(tmp_path / "sweep.csv", index=False)
    table = pd.read_csv(tmp_path / "sweep.csv")
    assert swept_keys(table) == ["timing.worker.compute", "topology.edges", "topology.workers"]
    written = plot_directory(tmp_path)
    assert sorted(p.name for p in written) == [
        "sweep_effective_time__timing.worker.compute.png", "sweep_effective_time__topology.edges.png",
        "sweep_speedup__timing.worker.compute.png", "sweep_speedup__topology.edges.png"]
    assert all(_is_png(p) for p in written)
    fig = figures(tmp_path).figures["sweep_effective_time__topology.edges.png"]
    assert "topology.workers zipped" in fig.axes[0].get_xlabel()


# ----------------------------------------------------------------------------------------------------
# optimize and verify

def test_optimize_figure(tmp_path):
    shutil.copy(DATA / "optimize.csv", tmp_path / "optimize.csv")
    table = pd.read_csv(tmp_path / "optimize.csv")
    written = plot_directory(tmp_path)
    assert [p.name for p in written] == ["optimize.png"] and _is_png(written[0])
    bars_ax, nodes_ax = figures(tmp_path).figures["optimize.png"].axes
    expected = table["mc_mean_time"] / (1 - table["mc_failure_rate"])
    np.testing.assert_allclose(_bars(bars_ax), expected, rtol=1e-12)
    analytic = next(c for c in bars_ax.collections if isinstance(c, PathCollection)).get_offsets()[:, 0]
    np.testing.assert_allclose(analytic, table["effective_time"].dropna(), rtol=1e-12)
    assert _bold_tick(bars_ax) == ["jncss_greedy: hgc(s_e=0,s_w=1)"]
    labels = [t.get_text() for t in bars_ax.get_yticklabels()]
    assert labels == ["uncoded", "flat_gc(s=0)", "hgc(s_e=5,s_w=0)", "jncss_greedy: hgc(s_e=0,s_w=1)"]
    # the node map: every worker for uncoded, the 16 chosen ones (edges 0, 1, 2) for JNCSS
    image = np.asarray(nodes_ax.images[0].get_array())
    empty = np.all(np.isclose(image, image[-1, -1]), axis=2)
    assert image.shape[:2] == (4, 36)
    assert not empty[0].any() and int((~empty[3]).sum()) == 16
    assert (~empty[3]).tolist() == [p < 5 for p in range(6)] * 2 + [True] * 6 + [False] * 18


def test_verify_figure_error_against_condition_number(tmp_path):
    table = pd.read_csv(DATA / "verify.csv")
    table.loc[5, "failures"] = 3
    table.to_csv(tmp_path / "verify.csv", index=False)
    ax = figures(tmp_path).figures["verify.png"].axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    points = np.concatenate([c.get_offsets() for c in ax.collections
                             if isinstance(c, PathCollection) and c.get_label() != "fails on some pattern"])
    assert len(points) == len(table)
    error = table["max_rel_error"].to_numpy()
    floor = error[error > 0].min() / 8
    want = sorted(zip(table["worst_cond"], np.where(error > 0, error, floor)))
    np.testing.assert_allclose(sorted(map(tuple, points)), want, rtol=1e-12)
    crossed = next(c for c in ax.collections if c.get_label() == "fails on some pattern").get_offsets()
    np.testing.assert_allclose(crossed, [[table["worst_cond"][5], table["max_rel_error"][5]]])


def test_verify_end_to_end(tmp_path, cli):
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG.replace("schemes: [uncoded, {scheme: flat_gc, s: 2}, {scheme: hgc, s_e: 1, s_w: 1}]",
                                     "schemes: [{scheme: flat_gc, s: auto}, {scheme: hgc, s_e: 1, s_w: 1}]"))
    out = tmp_path / "v"
    assert cli("verify", config, "--out", out, "--quiet").exit_code == 0
    result = cli("plot", out)
    assert result.exit_code == 0, result.output
    assert _is_png(out / "verify.png")


# ----------------------------------------------------------------------------------------------------
# train

@pytest.fixture(scope="module")
def train_runs(tmp_path_factory) -> dict[str, Path]:
    from click.testing import CliRunner

    from hgc.cli import main

    out = {}
    for name, iterations in (("train-regression", 60), ("train-digits", 100)):
        directory = tmp_path_factory.mktemp(name)
        result = CliRunner().invoke(main, ["train", str(REPO / "configs" / f"{name}.yaml"), "--iterations",
                                           str(iterations), "--out", str(directory), "--quiet"])
        assert result.exit_code == 0, result.output
        out[name] = directory
    return out


def test_training_target_line_and_time_to_target(train_runs):
    directory = train_runs["train-digits"]
    summary = pd.read_csv(directory / "train_summary.csv")
    loss_ax, acc_ax = figures(directory).figures["train_loss.png"].axes
    target = float(summary["target_loss"][0])
    dashed = [line for line in loss_ax.get_lines() if line.get_linestyle() == "--"
              and np.array_equal(np.asarray(line.get_ydata(), float), [target, target])]
    assert len(dashed) == 1
    ticks = sorted(float(line.get_xdata()[0]) for line in loss_ax.get_lines() if line.get_marker() == "|")
    assert len(ticks) == summary["time_to_target"].notna().sum() >= 2
    np.testing.assert_allclose(ticks, sorted(summary["time_to_target"].dropna()), rtol=1e-12)
    legend = [t.get_text() for t in loss_ax.get_legend().get_texts()]
    assert any(text.startswith("target loss") for text in legend)
    # accuracy axis: zoomed past the first iterations, still holding everything after them
    history = pd.read_csv(directory / "train.csv")
    low, high = acc_ax.get_ylim()
    assert low > history["test_accuracy"].min()
    late = history[history["iteration"] >= 10]["test_accuracy"]
    assert low <= late.min() and high >= history["test_accuracy"].max()


def test_training_marks_undecodable_iterations(train_runs):
    directory = train_runs["train-regression"]
    history = pd.read_csv(directory / "train.csv")
    ax = figures(directory).figures["train_loss.png"].axes[0]
    marks = sum(len(c.get_offsets()) for c in ax.collections)
    assert marks == int((history["decoded"].astype(str) == "False").sum()) > 0
    assert len(figures(directory).figures["train_loss.png"].axes) == 1     # regression: no accuracy panel


# ----------------------------------------------------------------------------------------------------
# bad input: one line naming the file (and column), exit status 2

@pytest.mark.parametrize("file, text, message", [
    ("summary.csv", "", "summary.csv: empty file"),
    ("summary.csv", "scheme,mean_time,sem_time,failure_rate\n", "summary.csv: no data rows"),
    ("summary.csv", "scheme,mean_time,sem_time,failure_rate\nuncoded,0.5,0.01,0\nhgc,0.4,0.0",
     "summary.csv: line 3 has 3 fields, the header has 4; the file looks truncated"),
    ("summary.csv", "scheme,mean_time,failure_rate\nuncoded,0.5,0\n", "summary.csv: sem_time: missing column"),
    ("summary.csv", "scheme,mean_time,sem_time,failure_rate\nuncoded,0.5,0.01,0\nhgc,fast,0.01,0\n",
     "summary.csv: mean_time: line 3: expected a number, got 'fast'"),
    ("quantiles.csv", "label,quantile\nuncoded,0.5\n", "quantiles.csv: time: missing column"),
    ("sweep.csv", "topology.edges,scheme,mean_time,sem_time\n3,uncoded,1,0.1\n",
     "sweep.csv: failure_rate: missing column"),
    ("optimize.csv", "strategy,scheme,mc_mean_time,mc_sem_time,mc_failure_rate\nuncoded,uncoded,x,0.1,0\n",
     "optimize.csv: mc_mean_time: line 2: expected a number, got 'x'"),
    ("verify.csv", "scheme,worst_cond\nhgc,3\n", "verify.csv: max_rel_error: missing column"),
    ("train.csv", "label,sim_time\nuncoded,0\n", "train.csv: loss: missing column"),
    ("train.csv", b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "train.csv: not a text (UTF-8) CSV file"),
])
def test_bad_files_are_one_line_errors(tmp_path, cli, file, text, message):
    path = tmp_path / file
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    result = cli("plot", tmp_path)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path.parent / message}"), lines


def test_directory_errors_exit_2(tmp_path, cli):
    empty = tmp_path / "empty"
    empty.mkdir()
    for target, message in ((empty, "nothing to plot"), (tmp_path / "missing", "directory not found")):
        result = cli("plot", target)
        assert result.exit_code == 2
        assert message in result.stderr and "Traceback" not in result.stderr


def test_matplotlib_is_imported_only_for_plotting(tmp_path):
    """Loading the CLI, the config code and the other commands never imports matplotlib, and plotting
    never touches pyplot's global state."""
    shutil.copy(DATA / "optimize.csv", tmp_path / "optimize.csv")
    code = textwrap.dedent(f"""
        import sys
        import hgc, hgc.cli, hgc.config, hgc.experiment, hgc.sweep, hgc.verify
        from hgc.cli import main
        for name in ("simulate", "sweep", "optimize", "verify", "train", "plot"):
            main.get_command(None, name)
        assert "matplotlib" not in sys.modules, "matplotlib imported before plotting"
        from hgc.plotting import plot_directory
        plot_directory({str(tmp_path)!r})
        assert "matplotlib.pyplot" not in sys.modules
        print("ok")
        """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("key, label", [
    ("timing.edge.process.p", "timing.edge.process.p (probability)"),
    ("timing.worker.overhead.mean", "timing.worker.overhead.mean (s)"),
    ("timing.edge.uplink.rate", "timing.edge.uplink.rate (1/s)"),
    ("topology.edges", "number of edge nodes n"),
])
def test_axis_labels_carry_units(key, label):
    assert param_label(key) == label
