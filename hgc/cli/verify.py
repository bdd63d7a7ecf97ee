"""``hgc verify CONFIG``: build every coded scheme and check exact decoding over straggler patterns."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pandas as pd

from hgc.cli.common import (INTERRUPTED_EXIT, allow_large_option, config_argument, handle_errors, out_option,
                            output_dir, quiet_option, seed_option)
from hgc.errors import Interrupted
from hgc.limits import MAX_PATTERNS
from hgc.verify import DEFAULT_PATTERNS

TABLE_COLUMNS = ["scheme", "s", "s_e", "s_w", "K", "load", "construction", "patterns", "exhaustive",
                 "max_rel_error", "worst_cond", "failures"]


def write_verification(table: pd.DataFrame, out_dir: Path, *, seed: int, max_patterns: int,
                       interrupted: bool) -> None:
    """verify.csv and metadata.json (``"interrupted"``/``"complete"`` label a partial table)."""
    from hgc.interrupts import deferred_interrupts  # noqa: PLC0415
    from hgc.output import run_metadata, write_csv, write_json  # noqa: PLC0415

    with deferred_interrupts():
        write_csv(table, out_dir / "verify.csv")
        write_json(run_metadata("verify", seed=seed, max_patterns=max_patterns, codes=len(table),
                                interrupted=interrupted, complete=not interrupted), out_dir / "metadata.json")


@click.command()
@config_argument
@click.option("--patterns", "max_patterns", type=click.IntRange(min=1, max=MAX_PATTERNS), default=DEFAULT_PATTERNS,
              show_default=True,
              help="Check every straggler pattern when there are at most this many, else this many sampled ones.")
@seed_option
@out_option
@allow_large_option
@quiet_option
@handle_errors
def verify(config: Path, max_patterns: int, seed: int | None, out_dir: Path | None, allow_large: bool,
           quiet: bool) -> None:
    """Build every coded scheme in CONFIG, decode random partial gradients for every straggler pattern
    within tolerance, and write verify.csv. Exit status 1 if any admissible pattern fails.

    Ctrl-C or SIGTERM writes the codes checked completely so far (labelled partial in metadata.json)
    and exits with status 130."""
    from hgc.config import load_config
    from hgc.limits import check_run
    from hgc.verify import verify_config

    experiment = load_config(config).with_overrides(seed=seed)
    check_run(experiment, "verify", max_patterns=max_patterns, allow_large=allow_large)
    out_dir = output_dir(experiment.name, out_dir)
    progress = None if quiet else (lambda line: click.echo(f"  {line}", err=True))
    try:
        table = verify_config(experiment, max_patterns=max_patterns, progress=progress)
    except Interrupted as stop:
        if stop.partial is None:
            raise
        write_verification(stop.partial, out_dir, seed=experiment.seed, max_patterns=max_patterns, interrupted=True)
        click.echo(f"interrupted: the {len(stop.partial)} codes checked completely were written to "
                   f"{out_dir / 'verify.csv'} (labelled partial in metadata.json)", err=True)
        sys.exit(INTERRUPTED_EXIT)
    write_verification(table, out_dir, seed=experiment.seed, max_patterns=max_patterns, interrupted=False)
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
