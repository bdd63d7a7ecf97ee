"""``hgc verify CONFIG``: build every coded scheme and check exact decoding over straggler patterns."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hgc.cli.common import config_argument, default_out_dir, handle_errors, out_option, quiet_option, seed_option
from hgc.verify import DEFAULT_PATTERNS

TABLE_COLUMNS = ["scheme", "s", "s_e", "s_w", "K", "load", "construction", "patterns", "exhaustive",
                 "max_rel_error", "worst_cond", "failures"]


@click.command()
@config_argument
@click.option("--patterns", "max_patterns", type=click.IntRange(min=1), default=DEFAULT_PATTERNS, show_default=True,
              help="Check every straggler pattern when there are at most this many, else this many sampled ones.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes decoding a code's pattern batches (same verify.csv for any value) "
                   "[default: CPUs available].")
@seed_option
@out_option
@quiet_option
@handle_errors
def verify(config: Path, max_patterns: int, jobs: int | None, seed: int | None, out_dir: Path | None,
           quiet: bool) -> None:
    """Build every coded scheme in CONFIG, decode random partial gradients for every straggler pattern
    within tolerance, and write verify.csv. Exit status 1 if any admissible pattern fails."""
    from hgc.config import load_config
    from hgc.executors import default_jobs
    from hgc.verify import verify_config

    experiment = load_config(config).with_overrides(seed=seed)
    out_dir = default_out_dir(experiment.name, out_dir)
    progress = None if quiet else (lambda line: click.echo(f"  {line}", err=True))
    table = verify_config(experiment, max_patterns=max_patterns, out_dir=out_dir, progress=progress,
                          jobs=jobs if jobs is not None else default_jobs())
    failures = int(table["failures"].fillna(0).sum())
    if not quiet:
        shown = table[TABLE_COLUMNS].astype(object).where(table[TABLE_COLUMNS].notna(), "")
        click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        for note in sorted({n for n in table["note"] if n.startswith("skipped")}):
            click.echo(f"note: {note}")
        click.echo(f"wrote {out_dir / 'verify.csv'} (seed {experiment.seed})")
    if failures:
        click.echo(f"FAILED: {failures} admissible straggler patterns were not decoded exactly "
                   "(see the failures column of verify.csv)", err=True)
        sys.exit(1)
