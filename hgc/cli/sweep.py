"""``hgc sweep SWEEP``: simulate (and optimize) over a grid of config values, in parallel, resumably."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hgc.cli.common import (default_out_dir, handle_errors, out_option, overrides_argument, parse_overrides,
                            progress_factory, progress_option, quiet_option)

EXECUTORS = ("serial", "process", "dask")  # hgc.executors.EXECUTORS (not imported: keeps --help fast)


@click.command()
@click.argument("config", metavar="SWEEP", type=click.Path(dir_okay=False, path_type=Path))
@overrides_argument
@click.option("--executor", "executor_kind", type=click.Choice(EXECUTORS), default="process", show_default=True,
              help="Where points run: this process, local worker processes, or a Dask cluster.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes (process executor, local Dask cluster) [default: CPUs available].")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (with --executor dask); "
                   "without it a local Dask cluster is started.")
@out_option
@quiet_option
@progress_option
@handle_errors
def sweep(config: Path, overrides: tuple[str, ...], executor_kind: str, jobs: int | None, scheduler: str | None,
          out_dir: Path | None, quiet: bool, force_progress: bool) -> None:
    """Run every point of a sweep file, in parallel and resumably; writes sweep.csv.

    One row per point and scheme. Points already finished under the output directory (same resolved
    config, same hgc version) are skipped, so an interrupted sweep resumes where it stopped. A failing
    point is reported with its parameters in failures.csv and the command exits with status 1 after the
    other points finish. KEY=VALUE arguments set keys of the base config for every point.
    """
    from hgc.executors import make_executor  # noqa: PLC0415 - keeps `hgc --help` fast
    from hgc.sweep import expand_points, load_sweep, run_sweep, with_base_values

    spec = with_base_values(load_sweep(config), parse_overrides(overrides))
    points = expand_points(spec)  # every point is validated before anything runs
    out_dir = default_out_dir(spec.name, out_dir)
    with make_executor(executor_kind, jobs, scheduler) as executor:
        facts = executor.describe()
        run = run_sweep(spec, out_dir, executor, points=points, progress=progress_factory(quiet, force_progress),
                        metadata=facts)

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
