"""``hgc emulate CONFIG``: the coded protocol run for real on a Dask cluster, measured against the simulator."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hgc.cli.common import (INTERRUPTED_EXIT, allow_large_option, config_argument, dry_run_option, dry_run_out_dir,
                            echo_plan, echo_table, handle_errors, load_experiment, out_option, output_dir, overrides_argument,
                            progress_factory, progress_option, quiet_option, seed_option)

TABLE_COLUMNS = ["label", "iterations", "decoded", "measured_mean", "predicted_mean", "simulated_mean", "ratio",
                 "overhead_per_iteration", "dispatch", "collect", "deliver"]


@click.command()
@config_argument
@overrides_argument
@click.option("--iterations", type=click.IntRange(min=1, max=2**31 - 1), default=None,
              help="Override train.iterations.")
@click.option("--time-scale", "time_scale", type=float, default=1.0, show_default=True,
              help="Multiply every drawn delay by F (e.g. 0.1 turns model seconds into 100 ms).")
@click.option("--scheduler", type=str, default=None, metavar="ADDRESS",
              help="Address of a running Dask scheduler (tcp://host:8786) [default: start a local cluster].")
@click.option("--jobs", type=click.IntRange(min=1, max=4096), default=None,
              help="Worker processes of the local cluster [default: one per CPU; one per node and a spare "
                   "with --kill].")
@click.option("--kill", "kills", multiple=True, metavar="EDGE.WORKER@ITERATION",
              help="Kill the process of worker WORKER of edge EDGE (0-based) in that iteration (1-based); "
                   "EDGE@ITERATION kills the edge's process. Repeatable.")
@click.option("--calibrate", is_flag=True, help="Fit timing overhead/per_vector to the run; write calibration.yaml.")
@seed_option
@out_option
@allow_large_option
@dry_run_option
@quiet_option
@progress_option
@handle_errors
def emulate(config: Path, overrides: tuple[str, ...], iterations: int | None, time_scale: float,
            scheduler: str | None, jobs: int | None, kills: tuple[str, ...], calibrate: bool, seed: int | None,
            out_dir: Path | None, allow_large: bool, dry_run: bool, quiet: bool, force_progress: bool) -> None:
    """Run coded gradient descent for every scheme on a Dask cluster; writes emulate.csv and emulate_summary.csv
    (measured wall-clock times against the simulator's prediction on the same draws).

    Every worker and edge is a Dask actor on a cluster process and messages go directly between processes:
    workers compute their coded messages on their own data and are held to the delays the timing model
    draws; edges wait for their fastest workers and decode (or relay); this process is the master,
    decodes and checks the exact gradient. KEY=VALUE arguments set config keys for this run. Ctrl-C or
    SIGTERM writes the iterations finished so far (the scheme cut short marked partial, metadata.json
    says interrupted) and exits with status 130. `hgc plot DIR` draws emulate.png. See docs/emulate.md.
    """
    from hgc.emulation.cluster import check_address  # noqa: PLC0415 - keeps `hgc --help` fast
    from hgc.emulation.faults import parse_kills
    from hgc.emulation.runner import check_time_scale
    from hgc.errors import ConfigError
    from hgc.interrupts import deferred_interrupts
    from hgc.limits import check_run

    check_time_scale(time_scale)
    if scheduler:
        check_address(scheduler)
        if jobs is not None:
            raise ConfigError("only applies to the local cluster; an existing cluster's processes are used as "
                              "they are", "jobs")
    experiment = load_experiment(config, overrides, seed=seed, train__iterations=iterations)
    kill_list = parse_kills(kills, experiment.topology, experiment.train.iterations)
    if dry_run:
        from hgc.planning import plan_emulate  # noqa: PLC0415 - only dry runs plan

        return echo_plan(plan_emulate(experiment, time_scale=time_scale, scheduler=scheduler, jobs=jobs,
                                      kills=kill_list, out_dir=dry_run_out_dir(experiment.name, out_dir),
                                      allow_large=allow_large), quiet)
    check_run(experiment, "emulate", iterations=iterations, allow_large=allow_large)
    out_dir = output_dir(experiment.name, out_dir)

    from hgc.emulation.runner import emulate as run_emulation  # noqa: PLC0415

    result = run_emulation(experiment, time_scale=time_scale, scheduler=scheduler, processes=jobs, kills=kill_list,
                           progress=progress_factory(quiet, force_progress), calibrate=calibrate)
    with deferred_interrupts():  # the files describe the same run
        result.write(out_dir)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not quiet:
        echo_table(result.summary, TABLE_COLUMNS)
        for event in result.events:
            click.echo(f"iteration {event['iteration']} of {event['scheme']}: killed process {event['process']} "
                       f"({', '.join(event['nodes_lost'])}); restored on {event['restored_on']} in "
                       f"{event['restore_seconds']:.1f} s")
        calibration = result.calibration_text()
        if calibration is not None:
            click.echo(calibration.rstrip())
        done = (f"{len(result.history)} iterations (partial run)" if result.interrupted
                else f"{result.iterations} iterations per scheme")
        click.echo(f"wrote {out_dir / 'emulate.csv'} and {out_dir / 'emulate_summary.csv'} ({done}, time scale "
                   f"{time_scale:g}, seed {result.seed}, {result.seconds:.1f} s); hgc plot {out_dir} draws "
                   "emulate.png")
    if result.interrupted:
        click.echo(f"interrupted: the iterations finished so far were written, labelled partial in "
                   f"{out_dir / 'metadata.json'}", err=True)
        sys.exit(INTERRUPTED_EXIT)

