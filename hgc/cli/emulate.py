"""``hgc emulate CONFIG``: the coded protocol run for real on a Dask cluster, measured against the simulator."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Iterable

import click
from tqdm import tqdm

from hgc.cli.common import config_argument, default_out_dir, handle_errors, out_option, quiet_option, seed_option
from hgc.config import load_config
from hgc.errors import ConfigError
from hgc.output import atomic_write_text, run_metadata, write_csv, write_json, write_yaml

TABLE_COLUMNS = ["label", "iterations", "decoded", "measured_mean", "predicted_mean", "simulated_mean", "ratio",
                 "overhead_per_iteration", "dispatch", "collect", "deliver"]


def _number(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


@click.command()
@config_argument
@click.option("--iterations", type=click.IntRange(min=1), default=None, help="Override train.iterations.")
@click.option("--time-scale", "time_scale", type=float, default=1.0, show_default=True,
              help="Multiply every drawn delay by F (e.g. 0.1 turns model seconds into 100 ms).")
@click.option("--executor", type=str, default="dask", show_default=True, help="Where nodes run (only dask).")
@click.option("--scheduler", type=str, default=None,
              help="Address of a running Dask scheduler (tcp://host:8786) [default: start a local cluster].")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes of the local cluster [default: one per CPU; one per node with --kill].")
@click.option("--kill", "kills", multiple=True, metavar="EDGE.WORKER@ITERATION",
              help="Kill the process of worker WORKER of edge EDGE (0-based) in that iteration (1-based); "
                   "EDGE@ITERATION kills the edge's process. Repeatable.")
@click.option("--calibrate", is_flag=True, help="Fit timing overhead/per_vector to the run; write calibration.yaml.")
@seed_option
@out_option
@quiet_option
@handle_errors
def emulate(config: Path, iterations: int | None, time_scale: float, executor: str, scheduler: str | None,
            jobs: int | None, kills: tuple[str, ...], calibrate: bool, seed: int | None, out_dir: Path | None,
            quiet: bool) -> None:
    """Run coded gradient descent for every scheme of CONFIG on a Dask cluster; write emulate.csv and
    emulate_summary.csv (measured against the simulator's prediction) and emulate.png.

    Every worker and edge is a Dask actor on a cluster process, messages go directly between processes:
    workers compute their coded messages on their own data and are held to the delays the timing model
    draws; edges wait for their fastest workers and decode; this process is the master, decodes from the
    first edges and checks the exact gradient. See docs/emulate.md.
    """
    from hgc.emulation.cluster import check_address
    from hgc.emulation.faults import parse_kills
    from hgc.emulation.runner import emulate as run_emulation

    if executor != "dask":
        raise ConfigError(f"only 'dask' can run emulated nodes, got {executor!r}", "--executor")
    if not (math.isfinite(time_scale) and time_scale > 0):
        raise ConfigError(f"must be a positive finite number, got {time_scale}", "--time-scale")
    if scheduler:
        check_address(scheduler)
    if scheduler and jobs is not None:
        raise ConfigError("only applies to the local cluster; an existing cluster's processes are used as they are",
                          "--jobs")
    experiment = load_config(config)
    total = int(iterations if iterations is not None else experiment.train.iterations)
    kill_list = parse_kills(kills, experiment.topology, total)
    out_dir = default_out_dir(experiment.name, out_dir)

    def progress(steps: Iterable[int], label: str) -> Iterable[int]:
        return tqdm(steps, desc=label, unit="it", file=sys.stderr, disable=quiet, leave=False)

    try:
        result = run_emulation(experiment, iterations=iterations, seed=seed, time_scale=time_scale,
                               scheduler=scheduler, processes=jobs, kills=kill_list, progress=progress)
    except ConfigError as err:  # e.g. data.partitions unsuitable for a scheme: name the file
        raise err if err.key.startswith("--") else err.with_source(config) from None
    calibration = None
    if calibrate:
        from hgc.emulation.calibration import config_snippet, fit_platform

        calibration = fit_platform(result.runs, result.config.timing, result.sample, time_scale)
        atomic_write_text(out_dir / "calibration.yaml", config_snippet(calibration, result.config))

    write_csv(result.history, out_dir / "emulate.csv")
    write_csv(result.summary, out_dir / "emulate_summary.csv")
    raw = result.config.resolved()
    raw.setdefault("train", {})
    raw["train"] = {**raw["train"], "iterations": result.iterations}
    write_yaml(raw, out_dir / "config.resolved.yaml")
    write_json(run_metadata(
        "emulate", seed=result.seed, iterations=result.iterations, time_scale=result.time_scale,
        seconds=round(result.seconds, 3), interrupted=result.interrupted, warnings=result.warnings,
        load_average={"start": result.load_average[0], "end": result.load_average[1]},
        cluster=result.cluster, kills=[k.text for k in kill_list], fault_events=result.events,
        calibration=calibration.as_dict() if calibration is not None else None,
        schemes=[{"label": run.label, "kind": run.strategy.kind, "edges": list(run.strategy.edges),
                  "workers": [list(w) for w in run.strategy.workers], "s": run.strategy.s, "s_e": run.strategy.s_e,
                  "s_w": run.strategy.s_w, "load": run.strategy.load, "partitions": run.code.n_partitions,
                  "construction": run.code.construction, "note": run.resolved.note,
                  "placement_seconds": round(run.placement_seconds, 3), "data_bytes": run.data_bytes,
                  "warm_up_seconds": round(run.warm_up_seconds, 3), "complete": run.complete}
                 for run in result.runs],
    ), out_dir / "metadata.json")
    from hgc.emulation.plot import FIGURE_NAME, plot_emulation

    if len(result.summary):
        plot_emulation(result.history, result.summary, out_dir / FIGURE_NAME,
                       title=f"{result.config.name}: emulated vs predicted iteration time")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not quiet:
        shown = result.summary[TABLE_COLUMNS]
        click.echo(shown.to_string(index=False, formatters={c: _number for c in TABLE_COLUMNS[1:]}))
        for event in result.events:
            click.echo(f"iteration {event['iteration']} of {event['scheme']}: killed process {event['process']} "
                       f"({', '.join(event['nodes_lost'])}); restored on {event['restored_on']} in "
                       f"{event['restore_seconds']:.1f} s")
        if calibration is not None:
            click.echo((out_dir / "calibration.yaml").read_text().rstrip())
        done = f"{len(result.history)} iterations (partial run)" if result.interrupted else \
            f"{result.iterations} iterations per scheme"
        click.echo(f"wrote {out_dir / 'emulate.csv'} and {out_dir / 'emulate_summary.csv'} "
                   f"({done}, time scale {time_scale:g}, seed {result.seed}, {result.seconds:.1f} s)")
    if result.interrupted:
        sys.exit(130)
