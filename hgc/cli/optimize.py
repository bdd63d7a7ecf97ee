"""``hgc optimize CONFIG``: joint node and coding-scheme selection (JNCSS) with the analytic evaluator."""

from __future__ import annotations

from pathlib import Path

import click

from hgc.cli.common import config_argument, default_out_dir, handle_errors, out_option, quiet_option, seed_option, trials_option
from hgc.config import load_config

TABLE_COLUMNS = ["strategy", "edges", "workers", "s_e", "s_w", "s", "load", "expected_time", "mc_mean_time",
                 "mc_sem_time", "speedup", "optimality_gap", "optimizer_seconds"]


@click.command()
@config_argument
@click.option("--method", type=click.Choice(["greedy", "exhaustive"]), default="greedy", show_default=True,
              help="JNCSS search: greedy (scales; an exhaustive row is added when the system is small) or "
                   "exhaustive (ground truth; refused when the search space is too large).")
@trials_option("Monte Carlo trials of the check [default: the config's].")
@seed_option
@out_option
@quiet_option
@handle_errors
def optimize(config: Path, method: str, trials: int | None, seed: int | None, out_dir: Path | None,
             quiet: bool) -> None:
    """Choose participating nodes and tolerances for CONFIG's system; write optimize.csv.

    Rows: uncoded, the best flat GC, the best HGC on all nodes, JNCSS greedy and (when feasible)
    JNCSS exhaustive, each with its analytic E[T] and a Monte Carlo mean and standard error.
    """
    from hgc.optimize import optimize as run_optimize

    experiment = load_config(config)
    out_dir = default_out_dir(experiment.name, out_dir)
    result = run_optimize(experiment, method=method, trials=trials, seed=seed)
    result.write(out_dir)
    if not quiet:
        table = result.table[TABLE_COLUMNS].to_string(index=False, float_format=lambda v: f"{v:.4g}")
        click.echo(table)
        searches = ", ".join(f"{c.seconds:.2f} s {c.method}" for c in result.candidates if c.role)
        click.echo(f"wrote {out_dir / 'optimize.csv'} (JNCSS {method}: {searches}; "
                   f"Monte Carlo {result.trials} trials, seed {result.seed})")
