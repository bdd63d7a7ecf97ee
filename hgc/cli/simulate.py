"""``hgc simulate CONFIG``: Monte Carlo iteration time of every scheme."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hgc.cli.common import (INTERRUPTED_EXIT, allow_large_option, config_argument, echo_table, handle_errors,
                            load_experiment, out_option, output_dir, overrides_argument, progress_factory,
                            progress_option, quiet_option, seed_option, trials_option)

TABLE_COLUMNS = ["label", "workers", "load", "mean_time", "sem_time", "p95_time", "failure_rate", "effective_time",
                 "speedup", "master_vectors"]


@click.command()
@config_argument
@overrides_argument
@trials_option()
@seed_option
@out_option
@allow_large_option
@quiet_option
@progress_option
@handle_errors
def simulate(config: Path, overrides: tuple[str, ...], trials: int | None, seed: int | None, out_dir: Path | None,
             allow_large: bool, quiet: bool, force_progress: bool) -> None:
    """Monte Carlo iteration time of every scheme in a config; writes summary.csv.

    KEY=VALUE arguments set config keys for this run (dotted paths, YAML values), e.g.
    topology.edges=8 timing.failures.worker=0.01 trials=20000. Ctrl-C or SIGTERM during the Monte Carlo
    run writes the statistics of the completed trials, labelled partial in metadata.json, and exits with
    status 130 (before the first chunk: nothing is written).
    """
    from hgc.experiment import simulate as run_simulation  # noqa: PLC0415 - keeps `hgc --help` fast
    from hgc.interrupts import deferred_interrupts
    from hgc.limits import check_run

    experiment = load_experiment(config, overrides, seed=seed, trials=trials)
    check_run(experiment, "simulate", trials=trials, allow_large=allow_large)
    out_dir = output_dir(experiment.name, out_dir)
    result = run_simulation(experiment, progress=progress_factory(quiet, force_progress))
    with deferred_interrupts():  # the four files describe the same run
        result.write(out_dir)
    if not quiet:
        echo_table(result.summary, TABLE_COLUMNS)
        click.echo(f"wrote {out_dir / 'summary.csv'} ({result.run.trials_done} trials, seed {result.seed}, "
                   f"{result.run.seconds:.1f} s)")
    if result.run.interrupted:
        click.echo(f"interrupted after {result.run.trials_done} of {result.trials_requested} trials; the statistics "
                   f"of the completed trials were written, labelled as partial in {out_dir / 'metadata.json'}",
                   err=True)
        sys.exit(INTERRUPTED_EXIT)
