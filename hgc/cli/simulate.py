"""``hgc simulate CONFIG``: Monte Carlo iteration time of every scheme."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import click

from hgc.cli.common import (INTERRUPTED_EXIT, allow_large_option, config_argument, dry_run_option, dry_run_out_dir,
                            echo_plan, echo_table, executor_options, handle_errors, load_experiment, out_option,
                            output_dir, overrides_argument, progress_factory, progress_option, quiet_option,
                            seed_option, trials_option)

TABLE_COLUMNS = ["label", "workers", "load", "mean_time", "sem_time", "p95_time", "failure_rate", "effective_time",
                 "speedup", "master_vectors"]
DEFAULT_MEMORY_MIB = 256  # hgc.simulation.DEFAULT_MEMORY in MiB (not imported: keeps `hgc --help` fast)


@click.command()
@config_argument
@overrides_argument
@trials_option()
@seed_option
@executor_options("serial", "blocks of trials")
@click.option("--memory", "memory_mib", type=click.IntRange(min=1, max=2**20), default=DEFAULT_MEMORY_MIB,
              show_default=True, metavar="MIB",
              help="Budget for the simulator's working arrays per process, in MiB (the interpreter comes on top); "
                   "it changes how work is cut, never the numbers.")
@out_option
@allow_large_option
@quiet_option
@progress_option
@dry_run_option
@handle_errors
def simulate(config: Path, overrides: tuple[str, ...], trials: int | None, seed: int | None, executor_kind: str,
             jobs: int | None, scheduler: str | None, memory_mib: int, out_dir: Path | None, allow_large: bool,
             quiet: bool, force_progress: bool, dry_run: bool) -> None:
    """Monte Carlo iteration time of every scheme in a config; writes summary.csv.

    KEY=VALUE arguments set config keys for this run (dotted paths, YAML values), e.g.
    topology.edges=8 timing.failures.worker=0.01 trials=20000. The results depend on the config, seed and
    number of trials only: the same bytes whatever the executor, the number of workers or the memory
    budget. Ctrl-C or SIGTERM during the Monte Carlo run writes the statistics of the trials completed
    before the first unfinished block, labelled partial in metadata.json, and exits with status 130
    (before the first block: nothing is written).
    """
    from hgc.executors import make_executor  # noqa: PLC0415 - keeps `hgc --help` fast
    from hgc.experiment import simulate as run_simulation
    from hgc.interrupts import deferred_interrupts
    from hgc.limits import check_run
    from hgc.simulation import MIB

    experiment = load_experiment(config, overrides, seed=seed, trials=trials)
    if dry_run:
        from hgc.planning import plan_simulate
        return echo_plan(plan_simulate(experiment, trials=trials, out_dir=dry_run_out_dir(experiment.name, out_dir),
                                       memory=memory_mib * MIB, allow_large=allow_large, calibration=not quiet), quiet)
    check_run(experiment, "simulate", trials=trials, allow_large=allow_large)
    out_dir = output_dir(experiment.name, out_dir)
    where: Any = (contextlib.nullcontext(None) if executor_kind == "serial" and not jobs and not scheduler
                  else make_executor(executor_kind, jobs, scheduler))
    with where as executor:
        result = run_simulation(experiment, progress=progress_factory(quiet, force_progress),
                                memory=memory_mib * MIB, executor=executor)
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
