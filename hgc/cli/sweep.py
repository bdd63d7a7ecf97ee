"""``hgc sweep CONFIG``: simulate (and optimize) over a grid of config values, in parallel, resumably."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from hgc.cli.common import default_out_dir, executor_options, handle_errors, out_option, quiet_option
from hgc.executors import make_executor
from hgc.sweep import expand_points, load_sweep, run_sweep


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@executor_options("process", "points")
@out_option
@quiet_option
@handle_errors
def sweep(config: Path, executor_kind: str, jobs: int | None, scheduler: str | None, out_dir: Path | None,
          quiet: bool) -> None:
    """Run every point of the sweep file CONFIG; write sweep.csv (one row per point and scheme).

    Points already finished under the output directory (same resolved config, same hgc version) are
    skipped, so an interrupted sweep resumes where it stopped. A failing point is reported with its
    parameters in failures.csv and the command exits with status 1 after the other points finish.
    """
    spec = load_sweep(config)
    points = expand_points(spec)  # every point is validated before anything runs
    out_dir = default_out_dir(spec.name, out_dir)

    def progress(total: int, initial: int) -> tqdm:
        return tqdm(total=total, initial=initial, desc=f"sweep {spec.name}", unit="point", file=sys.stderr,
                    disable=quiet, dynamic_ncols=True)

    with make_executor(executor_kind, jobs, scheduler) as executor:
        facts = executor.describe()
        run = run_sweep(spec, out_dir, executor, points=points, progress=progress, metadata=facts)

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
