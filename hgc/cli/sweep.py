"""``hgc sweep SWEEP``: simulate (and optimize) over a grid of config values, in parallel, resumably."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hgc.cli.common import (INTERRUPTED_EXIT, allow_large_option, dry_run_option, dry_run_out_dir, echo_plan,
                            executor_options, handle_errors, out_option, output_dir, overrides_argument,
                            parse_overrides, progress_factory, progress_option, quiet_option)


@click.command()
@click.argument("config", metavar="SWEEP", type=click.Path(dir_okay=False, path_type=Path))
@overrides_argument
@executor_options("process", "points")
@out_option
@allow_large_option
@quiet_option
@progress_option
@dry_run_option
@handle_errors
def sweep(config: Path, overrides: tuple[str, ...], executor_kind: str, jobs: int | None, scheduler: str | None,
          out_dir: Path | None, allow_large: bool, quiet: bool, force_progress: bool, dry_run: bool) -> None:
    """Run every point of a sweep file, in parallel and resumably; writes sweep.csv.

    One row per point and scheme. Points already finished under the output directory (same resolved
    config, same hgc version) are skipped, so an interrupted sweep resumes where it stopped. A failing
    point is reported with its parameters in failures.csv and the command exits with status 1 after the
    other points finish. KEY=VALUE arguments set keys of the base config for every point. Ctrl-C or SIGTERM
    keeps every finished point, writes sweep.csv from them (labelled partial in metadata.json) and exits
    with status 130; a point that did not finish is never saved.
    """
    from hgc.errors import ConfigError, Interrupted  # noqa: PLC0415 - keeps `hgc --help` fast
    from hgc.executors import make_executor
    from hgc.limits import check_monte_carlo, check_sweep_points, sweep_size
    from hgc.sweep import SweepRun, expand_points, load_sweep, run_sweep, with_base_values

    spec = with_base_values(load_sweep(config), parse_overrides(overrides))
    if dry_run:
        from hgc.executors import default_jobs
        from hgc.planning import plan_sweep
        return echo_plan(plan_sweep(spec, out_dir=dry_run_out_dir(spec.name, out_dir), allow_large=allow_large,
                                    workers=1 if executor_kind == "serial" else jobs or default_jobs(),
                                    calibration=not quiet), quiet)
    lengths = [len(values) for values in spec.grid.values()]
    if spec.zip:
        lengths.append(len(next(iter(spec.zip.values()))))
    check_sweep_points(sweep_size(lengths), allow_large=allow_large)
    points = expand_points(spec)  # every point is validated before anything runs
    for point in points:
        try:
            check_monte_carlo(point.config.topology, point.config.trials, allow_large=allow_large)
        except ConfigError as err:
            raise ConfigError(f"{err.key}: {err.message}", f"point {point.index} ({point.label})", config) from None
    out_dir = output_dir(spec.name, out_dir)
    facts: dict[str, object] = {}
    try:
        with make_executor(executor_kind, jobs, scheduler) as executor:
            facts = executor.describe()
            run = run_sweep(spec, out_dir, executor, points=points,
                            progress=progress_factory(quiet, force_progress), metadata=facts)
    except Interrupted as stop:
        if not isinstance(stop.partial, SweepRun):
            raise
        run = stop.partial
        click.echo(f"interrupted: {len(run.computed)} points finished in this run and were saved, {run.pending} "
                   f"pending; {out_dir / 'sweep.csv'} holds the finished points (labelled partial in "
                   "metadata.json); rerun to resume", err=True)
        sys.exit(INTERRUPTED_EXIT)

    if not quiet:
        click.echo(f"{len(run.points)} points: {len(run.computed)} computed, {len(run.resumed)} already done, "
                   f"{len(run.failed)} failed ({run.seconds:.1f} s, {facts['executor']} executor)")
        for path in run.written:
            click.echo(f"wrote {path}")
    for outcome in run.failed:
        click.echo(f"error: point {outcome.index} ({', '.join(f'{k}={v!r}' for k, v in outcome.params.items())}) "
                   f"failed: {outcome.error}", err=True)
    if run.failed:
        click.echo(f"{len(run.failed)} of {len(run.points)} points failed; see {out_dir / 'failures.csv'} "
                   "(rerun to retry them; finished points are kept)", err=True)
        sys.exit(1)
