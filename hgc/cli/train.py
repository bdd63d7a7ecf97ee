"""``hgc train CONFIG``: coded gradient descent on real data, exact gradient recovery checked every iteration."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hgc.cli.common import (INTERRUPTED_EXIT, allow_large_option, config_argument, handle_errors, out_option,
                            output_dir, quiet_option, seed_option)
from hgc.config import load_config
from hgc.errors import ConfigError
from hgc.interrupts import deferred_interrupts
from hgc.limits import check_run
from hgc.output import run_metadata, write_csv, write_json, write_yaml
from hgc.training.trainer import TrainResult, train as run_training

TABLE_COLUMNS = ["label", "load", "partitions", "sim_time_total", "time_to_target", "speedup_to_target",
                 "final_loss", "final_test_accuracy", "max_grad_rel_error", "undecodable_iterations"]


def write_training(result: TrainResult, config_raw: dict, out_dir: Path) -> None:
    """train.csv, train_summary.csv, config.resolved.yaml and metadata.json under ``out_dir``; an interrupted
    run's tables hold the finished schemes only, labelled ``"interrupted": true`` in metadata.json."""
    write_csv(result.history, out_dir / "train.csv")
    write_csv(result.summary, out_dir / "train_summary.csv")
    write_yaml(config_raw, out_dir / "config.resolved.yaml")
    data = result.dataset
    write_json(run_metadata(
        "train", seed=result.seed, iterations=result.iterations, seconds=round(result.seconds, 3),
        dataset={"name": data.name, "task": data.task, "train_rows": data.n_train, "test_rows": data.n_test,
                 "features": data.n_features - 1, "classes": data.n_classes},
        target_loss=result.target_loss, warnings=result.warnings, interrupted=result.interrupted,
        complete=not result.interrupted,
        strategies=[{"label": run.label, "kind": run.strategy.kind, "listed": run.listed,
                     "edges": list(run.strategy.edges), "workers": [list(w) for w in run.strategy.workers],
                     "s": run.strategy.s, "s_e": run.strategy.s_e, "s_w": run.strategy.s_w,
                     "load": run.strategy.load, "partitions": run.code.n_partitions,
                     "construction": run.code.construction, "note": run.resolved.note}
                    for run in result.runs],
    ), out_dir / "metadata.json")


@click.command()
@config_argument
@click.option("--iterations", type=click.IntRange(min=1, max=2**63 - 1), default=None,
              help="Override train.iterations.")
@seed_option
@out_option
@allow_large_option
@quiet_option
@handle_errors
def train(config: Path, iterations: int | None, seed: int | None, out_dir: Path | None, allow_large: bool,
          quiet: bool) -> None:
    """Coded full-batch gradient descent for every scheme in CONFIG; write train.csv and train_summary.csv.

    Every iteration samples the delays, decodes the real coded partial gradients of the responding
    workers and checks the result against the true gradient; undecodable iterations are reported and
    not applied. Ctrl-C or SIGTERM writes the schemes trained completely so far (labelled partial in
    metadata.json) and exits with status 130.
    """
    experiment = load_config(config)
    check_run(experiment, "train", iterations=iterations, allow_large=allow_large)
    out_dir = output_dir(experiment.name, out_dir)
    try:
        result = run_training(experiment, iterations=iterations, seed=seed)
    except ConfigError as err:  # e.g. data.partitions unsuitable for a scheme: name the file
        raise err.with_source(config) from None
    raw = experiment.with_overrides(seed=seed).resolved()
    if iterations is not None:
        raw.setdefault("train", {})
        raw["train"] = {**raw["train"], "iterations": int(iterations)}
    with deferred_interrupts():  # the four files describe the same run
        write_training(result, raw, out_dir)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not quiet:
        table = result.summary[TABLE_COLUMNS].to_string(index=False, float_format=lambda v: f"{v:.4g}")
        click.echo(table)
        click.echo(f"target loss {result.target_loss:.6g}; wrote {out_dir / 'train.csv'} and "
                   f"{out_dir / 'train_summary.csv'} ({result.iterations} iterations, seed {result.seed}, "
                   f"{result.seconds:.1f} s)")
    if result.interrupted:
        sys.exit(INTERRUPTED_EXIT)  # the finished schemes were written; the warning above says how many
