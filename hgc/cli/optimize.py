"""``hgc optimize CONFIG``: joint node and coding-scheme selection (JNCSS) with the analytic evaluator."""

from __future__ import annotations

from pathlib import Path

import click

from hgc.cli.common import (allow_large_option, config_argument, dry_run_option, dry_run_out_dir, echo_plan, echo_table,
                            handle_errors, load_experiment, out_option, output_dir, overrides_argument,
                            progress_factory, progress_option, quiet_option, seed_option, trials_option)

TABLE_COLUMNS = ["strategy", "edges", "workers", "s_e", "s_w", "s", "reduction_e",
                 "reduction_w", "reduction", "load", "effective_time", "mc_effective_time",
                 "mc_sem_time", "speedup", "optimality_gap", "optimizer_seconds", "edge_ids"]


@click.command()
@config_argument
@overrides_argument
@click.option("--method", type=click.Choice(["greedy", "exhaustive"]), default="greedy", show_default=True,
              help="JNCSS search: greedy (scales; an exhaustive row is added when the system is small) or "
                   "exhaustive (ground truth; refused when the search space is too large).")
@trials_option("Monte Carlo trials of the check [default: the config's].")
@seed_option
@out_option
@allow_large_option
@quiet_option
@progress_option
@dry_run_option
@handle_errors
def optimize(config: Path, overrides: tuple[str, ...], method: str, trials: int | None, seed: int | None,
             out_dir: Path | None, allow_large: bool, quiet: bool, force_progress: bool, dry_run: bool) -> None:
    """Choose participating nodes and tolerances (JNCSS); writes optimize.csv.

    Rows: uncoded, the best flat GC, the best HGC on all nodes, JNCSS greedy and (when feasible)
    JNCSS exhaustive, each with its analytic time per successful iteration and a Monte Carlo check.
    KEY=VALUE arguments set config keys for this run. Ctrl-C or SIGTERM writes nothing (the rows are
    only meaningful together) and exits with status 130.
    """
    from hgc.interrupts import deferred_interrupts  # noqa: PLC0415 - keeps `hgc --help` fast
    from hgc.limits import check_run
    from hgc.optimize import optimize as run_optimize

    experiment = load_experiment(config, overrides, seed=seed, trials=trials)
    if dry_run:
        from hgc.planning import plan_optimize
        return echo_plan(plan_optimize(experiment, method=method, trials=trials, allow_large=allow_large,
                                       out_dir=dry_run_out_dir(experiment.name, out_dir), calibration=not quiet), quiet)
    check_run(experiment, "optimize", trials=trials, allow_large=allow_large)
    out_dir = output_dir(experiment.name, out_dir)
    result = run_optimize(experiment, method=method, progress=progress_factory(quiet, force_progress))
    with deferred_interrupts():  # the three files describe the same run
        result.write(out_dir)
    if not quiet:
        echo_table(result.table, TABLE_COLUMNS)
        searches = ", ".join(f"{c.label} {c.seconds:.2f} s" for c in result.candidates if c.role)
        click.echo(f"wrote {out_dir / 'optimize.csv'} ({searches}; Monte Carlo {result.trials} trials, "
                   f"seed {result.seed})")
