"""``hgc simulate CONFIG``: Monte Carlo iteration time of every scheme."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from hgc.cli.common import (config_argument, default_out_dir, executor_options, handle_errors, out_option,
                            quiet_option, seed_option, trials_option)
from hgc.config import load_config
from hgc.executors import make_executor
from hgc.experiment import simulate as run_simulation
from hgc.simulation import CHUNK_TRIALS, DEFAULT_MEMORY, MIB

TABLE_COLUMNS = ["label", "s_e", "s_w", "s", "workers", "load", "mean_time", "sem_time", "p95_time",
                 "failure_rate", "master_vectors", "speedup"]


def _number(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@click.command()
@config_argument
@trials_option()
@seed_option
@executor_options("serial", "blocks of trials")
@click.option("--memory", "memory_mib", type=click.IntRange(min=1), default=DEFAULT_MEMORY // MIB, show_default=True,
              metavar="MIB", help="Budget for the simulator's working arrays per process, in MiB (the "
                                  "interpreter comes on top); it changes how work is cut, never the numbers.")
@out_option
@quiet_option
@handle_errors
def simulate(config: Path, trials: int | None, seed: int | None, executor_kind: str, jobs: int | None,
             scheduler: str | None, memory_mib: int, out_dir: Path | None, quiet: bool) -> None:
    """Simulate one training iteration of every scheme in CONFIG; write summary.csv.

    The results depend on the config, seed and number of trials only: the same bytes whatever the
    executor, the number of workers or the memory budget. Ctrl-C keeps the trials completed before
    the first unfinished block and exits with status 130.
    """
    experiment = load_config(config)
    out_dir = default_out_dir(experiment.name, out_dir)
    total = trials if trials is not None else experiment.trials

    def progress(chunks):
        return tqdm(chunks, total=len(chunks), desc="simulate", unit="chunk", file=sys.stderr,
                    disable=quiet or total <= 4 * CHUNK_TRIALS, leave=False)

    where: Any = (contextlib.nullcontext(None) if executor_kind == "serial" and not jobs and not scheduler
                  else make_executor(executor_kind, jobs, scheduler))
    with where as executor:
        result = run_simulation(experiment, trials=trials, seed=seed, progress=progress,
                                memory=memory_mib * MIB, executor=executor)
    result.write(out_dir)
    if not quiet:
        shown = result.summary[TABLE_COLUMNS].astype(object)
        shown = shown.where(shown.notna(), "")
        table = shown.to_string(index=False, formatters={c: _number for c in TABLE_COLUMNS[1:]})
        click.echo(table)
        click.echo(f"wrote {out_dir / 'summary.csv'} ({result.run.trials_done} trials, seed {result.seed}, "
                   f"{result.run.seconds:.1f} s)")
    if result.run.interrupted:
        click.echo(f"interrupted after {result.run.trials_done} of {total} trials; "
                   "the statistics of the completed trials were written", err=True)
        sys.exit(130)
