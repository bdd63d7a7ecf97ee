"""``hgc simulate CONFIG``: Monte Carlo iteration time of every scheme."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from hgc.cli.common import (INTERRUPTED_EXIT, allow_large_option, config_argument, handle_errors, out_option,
                            output_dir, quiet_option, seed_option, trials_option)
from hgc.config import load_config
from hgc.experiment import SimulationResult, simulate as run_simulation
from hgc.interrupts import deferred_interrupts
from hgc.limits import check_run
from hgc.output import run_metadata, write_csv, write_json, write_yaml
from hgc.simulation import CHUNK_TRIALS

TABLE_COLUMNS = ["label", "s_e", "s_w", "s", "workers", "load", "mean_time", "sem_time", "p95_time",
                 "failure_rate", "master_vectors", "speedup"]


def _number(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_simulation(result: SimulationResult, config_raw: dict, out_dir: Path) -> None:
    """summary.csv, quantiles.csv, config.resolved.yaml and metadata.json under ``out_dir``.

    An interrupted run's tables hold the completed trials only; ``metadata.json`` labels them
    (``"interrupted": true``, ``"complete": false``, ``trials`` < ``trials_requested``)."""
    write_csv(result.summary, out_dir / "summary.csv")
    write_csv(result.quantiles, out_dir / "quantiles.csv")
    write_yaml(config_raw, out_dir / "config.resolved.yaml")
    write_json(run_metadata(
        "simulate", seed=result.seed, trials=result.run.trials_done, trials_requested=result.trials_requested,
        interrupted=result.run.interrupted, complete=not result.run.interrupted,
        seconds=round(result.run.seconds, 3),
        chunk_trials=CHUNK_TRIALS,
        strategies=[{"label": r.spec.label, "kind": r.strategy.kind, "edges": list(r.strategy.edges),
                     "workers": [list(w) for w in r.strategy.workers], "s": r.strategy.s,
                     "s_e": r.strategy.s_e, "s_w": r.strategy.s_w, "load": r.strategy.load, "note": r.note}
                    for r in result.schemes],
    ), out_dir / "metadata.json")


@click.command()
@config_argument
@trials_option()
@seed_option
@out_option
@allow_large_option
@quiet_option
@handle_errors
def simulate(config: Path, trials: int | None, seed: int | None, out_dir: Path | None, allow_large: bool,
             quiet: bool) -> None:
    """Simulate one training iteration of every scheme in CONFIG; write summary.csv.

    Ctrl-C or SIGTERM during the Monte Carlo run writes the statistics of the completed trials, labelled
    as partial in metadata.json, and exits with status 130 (before the first chunk: nothing is written).
    """
    experiment = load_config(config)
    check_run(experiment, "simulate", trials=trials, allow_large=allow_large)
    out_dir = output_dir(experiment.name, out_dir)
    total = trials if trials is not None else experiment.trials

    def progress(chunks):
        return tqdm(chunks, total=len(chunks), desc="simulate", unit="chunk", file=sys.stderr,
                    disable=quiet or total <= 4 * CHUNK_TRIALS, leave=False)

    result = run_simulation(experiment, trials=trials, seed=seed, progress=progress)
    resolved = experiment.with_overrides(seed=seed, trials=trials).resolved()
    with deferred_interrupts():  # the four files describe the same run
        write_simulation(result, resolved, out_dir)
    if not quiet:
        shown = result.summary[TABLE_COLUMNS].astype(object)
        shown = shown.where(shown.notna(), "")
        table = shown.to_string(index=False, formatters={c: _number for c in TABLE_COLUMNS[1:]})
        click.echo(table)
        click.echo(f"wrote {out_dir / 'summary.csv'} ({result.run.trials_done} trials, seed {result.seed}, "
                   f"{result.run.seconds:.1f} s)")
    if result.run.interrupted:
        click.echo(f"interrupted after {result.run.trials_done} of {total} trials; the statistics of the "
                   f"completed trials were written, labelled as partial in {out_dir / 'metadata.json'}", err=True)
        sys.exit(INTERRUPTED_EXIT)
