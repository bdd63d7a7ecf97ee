"""``hgc simulate CONFIG``: Monte Carlo iteration time of every scheme."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from hgc.cli.common import config_argument, default_out_dir, handle_errors, out_option, quiet_option, seed_option, trials_option
from hgc.config import load_config
from hgc.experiment import simulate as run_simulation
from hgc.simulation import CHUNK_TRIALS

TABLE_COLUMNS = ["label", "s_e", "s_w", "s", "workers", "load", "mean_time", "sem_time", "p95_time",
                 "failure_rate", "master_vectors", "speedup"]


def _number(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@click.command()
@config_argument
@trials_option()
@seed_option
@out_option
@quiet_option
@handle_errors
def simulate(config: Path, trials: int | None, seed: int | None, out_dir: Path | None, quiet: bool) -> None:
    """Simulate one training iteration of every scheme in CONFIG; write summary.csv."""
    experiment = load_config(config)
    out_dir = default_out_dir(experiment.name, out_dir)
    total = trials if trials is not None else experiment.trials

    def progress(chunks):
        return tqdm(chunks, total=len(chunks), desc="simulate", unit="chunk", file=sys.stderr,
                    disable=quiet or total <= 4 * CHUNK_TRIALS, leave=False)

    result = run_simulation(experiment, trials=trials, seed=seed, progress=progress)
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
