"""``hgc verify CONFIG``: build every coded scheme and check exact decoding over straggler patterns."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hgc.cli.common import (config_argument, default_out_dir, echo_table, handle_errors, load_experiment, out_option,
                            overrides_argument, progress_factory, progress_option, quiet_option, seed_option)

DEFAULT_PATTERNS = 100_000  # the value of hgc.verify.DEFAULT_PATTERNS (not imported: keeps --help fast)
TABLE_COLUMNS = ["label", "K", "load", "patterns", "exhaustive", "max_rel_error", "worst_cond", "failures",
                 "construction"]


@click.command()
@config_argument
@overrides_argument
@click.option("--patterns", "max_patterns", type=click.IntRange(min=1), default=DEFAULT_PATTERNS, show_default=True,
              help="Check every straggler pattern when there are at most this many, else this many sampled ones.")
@seed_option
@out_option
@quiet_option
@progress_option
@handle_errors
def verify(config: Path, overrides: tuple[str, ...], max_patterns: int, seed: int | None, out_dir: Path | None,
           quiet: bool, force_progress: bool) -> None:
    """Check that every coded scheme decodes exactly; writes verify.csv.

    Builds each code, decodes random partial gradients for every straggler pattern within tolerance and
    exits with status 1 if any admissible pattern fails. KEY=VALUE arguments set config keys for this run.
    """
    from hgc.verify import verify_config  # noqa: PLC0415 - keeps `hgc --help` fast

    experiment = load_experiment(config, overrides, seed=seed)
    out_dir = default_out_dir(experiment.name, out_dir)
    table = verify_config(experiment, max_patterns=max_patterns, out_dir=out_dir,
                          progress=progress_factory(quiet, force_progress))
    failures = int(table["failures"].fillna(0).sum())
    if not quiet:
        echo_table(table, TABLE_COLUMNS)
        for note in sorted({n for n in table["note"] if n.startswith("skipped")}):
            click.echo(f"note: {note}")
        click.echo(f"wrote {out_dir / 'verify.csv'} (seed {experiment.seed})")
    if failures:
        click.echo(f"FAILED: {failures} admissible straggler patterns were not decoded exactly "
                   "(see the failures column of verify.csv)", err=True)
        sys.exit(1)
