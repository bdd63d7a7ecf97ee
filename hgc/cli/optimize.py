"""``hgc optimize CONFIG``: joint node and coding-scheme selection (JNCSS) with the analytic evaluator."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from hgc.cli.common import (allow_large_option, config_argument, handle_errors, out_option, output_dir, quiet_option,
                            seed_option, trials_option)
from hgc.config import load_config
from hgc.interrupts import deferred_interrupts
from hgc.limits import check_run
from hgc.output import run_metadata, write_csv, write_json, write_yaml

if TYPE_CHECKING:
    from hgc.config import ExperimentConfig
    from hgc.optimize import OptimizeResult

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
@allow_large_option
@quiet_option
@handle_errors
def optimize(config: Path, method: str, trials: int | None, seed: int | None, out_dir: Path | None,
             allow_large: bool, quiet: bool) -> None:
    """Choose participating nodes and tolerances for CONFIG's system; write optimize.csv.

    Rows: uncoded, the best flat GC, the best HGC on all nodes, JNCSS greedy and (when feasible)
    JNCSS exhaustive, each with its analytic E[T] and a Monte Carlo mean and standard error.
    Ctrl-C or SIGTERM writes nothing (the rows are only meaningful together) and exits with status 130.
    """
    from hgc.optimize import optimize as run_optimize

    experiment = load_config(config)
    check_run(experiment, "optimize", trials=trials, allow_large=allow_large)
    out_dir = output_dir(experiment.name, out_dir)
    result = run_optimize(experiment, method=method, trials=trials, seed=seed)
    with deferred_interrupts():  # the three files describe the same run
        _write(result, experiment, method, seed, trials, out_dir)
    if not quiet:
        table = result.table[TABLE_COLUMNS].to_string(index=False, float_format=lambda v: f"{v:.4g}")
        click.echo(table)
        click.echo(f"wrote {out_dir / 'optimize.csv'} (JNCSS {method}: {result.greedy.seconds:.2f} s greedy"
                   + (f", {result.exhaustive.seconds:.2f} s exhaustive" if result.exhaustive else "")
                   + f"; Monte Carlo {result.trials} trials, seed {result.seed})")


def _write(result: OptimizeResult, experiment: ExperimentConfig, method: str, seed: int | None, trials: int | None,
           out_dir: Path) -> None:
    """optimize.csv, config.resolved.yaml and metadata.json under ``out_dir``."""
    write_csv(result.table, out_dir / "optimize.csv")
    write_yaml(experiment.with_overrides(seed=seed, trials=trials).resolved(), out_dir / "config.resolved.yaml")
    write_json(run_metadata(
        "optimize", method=method, seed=result.seed, trials=result.trials,
        monte_carlo_seconds=round(result.mc_seconds, 3),
        strategies=[{"strategy": row["strategy"], "edges": row["edge_ids"], "workers": row["worker_ids"],
                     "s_e": None if row["s_e"] is None or str(row["s_e"]) == "<NA>" else int(row["s_e"]),
                     "s_w": None if row["s_w"] is None or str(row["s_w"]) == "<NA>" else int(row["s_w"]),
                     "s": None if row["s"] is None or str(row["s"]) == "<NA>" else int(row["s"])}
                    for row in result.table.to_dict("records")],
    ), out_dir / "metadata.json")
