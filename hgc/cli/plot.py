"""``hgc plot DIR``: PNG figures for a results directory (simulate, sweep, optimize, verify, train or emulate
outputs)."""

from __future__ import annotations

from pathlib import Path

import click

from hgc.cli.common import echo_plan, handle_errors, quiet_option


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@quiet_option
@click.option("--dry-run", is_flag=True, help="List the figures that would be drawn and the CSV files each is "
                                                   "drawn from; draw and write nothing.")
@handle_errors
def plot(directory: Path, quiet: bool, dry_run: bool) -> None:
    """Draw PNG figures for a results directory, next to its CSV files.

    simulate → effective_time.png, time_cdf.png; sweep → sweep_effective_time__<key>.png and
    sweep_speedup__<key>.png per swept key; optimize → optimize.png; verify → verify.png;
    train → train_loss.png; emulate → emulate.png (wall clock against the prediction). Times are
    effective: seconds per successful iteration.
    """
    from hgc.plotting import plot_directory  # noqa: PLC0415 - matplotlib only when plotting

    if dry_run:
        from hgc.planning import plan_plot
        return echo_plan(plan_plot(directory), quiet)

    for path in plot_directory(directory):
        if not quiet:
            click.echo(f"wrote {path}")
