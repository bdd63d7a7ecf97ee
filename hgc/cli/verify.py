"""``hgc verify CONFIG``: build every coded scheme and check exact decoding over straggler patterns."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hgc.cli.common import (INTERRUPTED_EXIT, allow_large_option, config_argument, dry_run_option, dry_run_out_dir,
                            echo_plan, echo_table, handle_errors, load_experiment, out_option, output_dir,
                            overrides_argument, progress_factory, progress_option, quiet_option, seed_option)

DEFAULT_PATTERNS = 100_000  # hgc.verify.DEFAULT_PATTERNS (not imported: keeps --help fast)
MAX_PATTERNS = 100_000_000  # hgc.limits.MAX_PATTERNS
TABLE_COLUMNS = ["label", "K", "load", "patterns", "exhaustive", "max_rel_error", "worst_cond", "failures",
                 "construction"]


@click.command()
@config_argument
@overrides_argument
@click.option("--patterns", "max_patterns", type=click.IntRange(min=1, max=MAX_PATTERNS), default=DEFAULT_PATTERNS,
              show_default=True,
              help="Check every straggler pattern when there are at most this many, else this many sampled ones.")
@click.option("--jobs", type=click.IntRange(min=1, max=4096), default=1, show_default=True,
              help="Worker processes decoding a code's pattern batches (same verify.csv for any value; "
                   "the patterns are drawn in this process and decoding is cheap, so more pays off only for large codes).")
@seed_option
@out_option
@allow_large_option
@quiet_option
@progress_option
@dry_run_option
@handle_errors
def verify(config: Path, overrides: tuple[str, ...], max_patterns: int, jobs: int, seed: int | None,
           out_dir: Path | None, allow_large: bool, quiet: bool, force_progress: bool, dry_run: bool) -> None:
    """Check that every coded scheme decodes exactly; writes verify.csv.

    Builds each code, decodes random partial gradients for every straggler pattern within tolerance and
    exits with status 1 if any admissible pattern fails. KEY=VALUE arguments set config keys for this run.
    Ctrl-C or SIGTERM writes the codes checked completely so far (labelled partial in metadata.json) and
    exits with status 130.
    """
    from hgc.errors import Interrupted  # noqa: PLC0415 - keeps `hgc --help` fast
    from hgc.interrupts import deferred_interrupts
    from hgc.limits import check_run
    from hgc.verify import VerifyResult, verify_config

    experiment = load_experiment(config, overrides, seed=seed)
    if dry_run:
        from hgc.planning import plan_verify
        return echo_plan(plan_verify(experiment, max_patterns=max_patterns, allow_large=allow_large,
                                     out_dir=dry_run_out_dir(experiment.name, out_dir), calibration=not quiet), quiet)
    check_run(experiment, "verify", max_patterns=max_patterns, allow_large=allow_large)
    out_dir = output_dir(experiment.name, out_dir)
    try:
        table = verify_config(experiment, max_patterns=max_patterns, progress=progress_factory(quiet, force_progress),
                              jobs=jobs)
    except Interrupted as stop:
        if stop.partial is None:
            raise
        with deferred_interrupts():
            VerifyResult(stop.partial, experiment, max_patterns, interrupted=True).write(out_dir)
        click.echo(f"interrupted: the {len(stop.partial)} codes checked completely were written to "
                   f"{out_dir / 'verify.csv'} (labelled partial in metadata.json)", err=True)
        sys.exit(INTERRUPTED_EXIT)
    result = VerifyResult(table, experiment, max_patterns)
    with deferred_interrupts():
        result.write(out_dir)
    if not quiet:
        echo_table(table, TABLE_COLUMNS)
        for note in sorted({n for n in table["note"] if n.startswith("skipped")}):
            click.echo(f"note: {note}")
        click.echo(f"wrote {out_dir / 'verify.csv'} (seed {experiment.seed})")
    if result.failures:
        click.echo(f"FAILED: {result.failures} admissible straggler patterns were not decoded exactly "
                   "(see the failures column of verify.csv)", err=True)
        sys.exit(1)
