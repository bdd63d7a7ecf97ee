"""``hgc train CONFIG``: coded gradient descent on real data, exact gradient recovery checked every iteration."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hgc.cli.common import (INTERRUPTED_EXIT, allow_large_option, config_argument, dry_run_option, dry_run_out_dir,
                            echo_plan, echo_table, handle_errors, load_experiment, out_option, output_dir,
                            overrides_argument, progress_factory, progress_option, quiet_option, seed_option)
from hgc.errors import ConfigError

TABLE_COLUMNS = ["label", "load", "effective_time", "time_to_target", "speedup_to_target", "final_loss",
                 "final_test_accuracy", "undecodable_iterations", "max_grad_rel_error", "partitions"]


@click.command()
@config_argument
@overrides_argument
@click.option("--iterations", type=click.IntRange(min=1, max=2**63 - 1), default=None,
              help="Override train.iterations.")
@seed_option
@out_option
@allow_large_option
@quiet_option
@progress_option
@dry_run_option
@handle_errors
def train(config: Path, overrides: tuple[str, ...], iterations: int | None, seed: int | None, out_dir: Path | None,
          allow_large: bool, quiet: bool, force_progress: bool, dry_run: bool) -> None:
    """Coded gradient descent on real data for every scheme; writes train.csv.

    Every iteration samples the delays, decodes the real coded partial gradients of the responding
    workers and checks the result against the true gradient; undecodable iterations are reported and
    not applied. KEY=VALUE arguments set config keys for this run (e.g. train.learning_rate=0.2). Ctrl-C
    or SIGTERM writes the schemes trained completely so far (labelled partial in metadata.json) and exits
    with status 130.
    """
    from hgc.interrupts import deferred_interrupts  # noqa: PLC0415 - keeps `hgc --help` fast
    from hgc.limits import check_run
    from hgc.training.trainer import train as run_training

    experiment = load_experiment(config, overrides, seed=seed, train__iterations=iterations)
    given = experiment.raw.get("train") or {}
    if not quiet and ("dataset" not in given or "model" not in given):
        click.echo(f"note: {config} does not set train.dataset/train.model; using dataset {experiment.train.dataset}, model "
                   f"{experiment.train.model}, {experiment.train.iterations} iterations", err=True)
    if dry_run:
        from hgc.planning import plan_train
        return echo_plan(plan_train(experiment, iterations=iterations, allow_large=allow_large,
                                    out_dir=dry_run_out_dir(experiment.name, out_dir), calibration=not quiet), quiet)
    check_run(experiment, "train", iterations=iterations, allow_large=allow_large)
    out_dir = output_dir(experiment.name, out_dir)
    try:
        result = run_training(experiment, progress=progress_factory(quiet, force_progress))
    except ConfigError as err:  # e.g. data.partitions unsuitable for a scheme: name the file
        raise err.with_source(config) from None
    with deferred_interrupts():  # the four files describe the same run
        result.write(out_dir)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not quiet:
        echo_table(result.summary, TABLE_COLUMNS)
        click.echo(f"target loss {result.target_loss:.6g}; wrote {out_dir / 'train.csv'} and "
                   f"{out_dir / 'train_summary.csv'} ({result.iterations} iterations, seed {result.seed}, "
                   f"{result.seconds:.1f} s)")
    if result.interrupted:
        sys.exit(INTERRUPTED_EXIT)  # the finished schemes were written; the warning above says how many
