"""Pieces shared by the sub-commands: error handling, interruption, common options, overrides, output
directories, progress, tables."""

from __future__ import annotations

import functools
import math
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

import click

from hgc.errors import ConfigError
from hgc.interrupts import sigterm_as_interrupt
from hgc.progress import ProgressBar, ProgressFactory

F = TypeVar("F", bound=Callable[..., Any])

OPTION_KEYS = frozenset({"method", "jobs", "executor", "scheduler", "patterns", "out", "memory", "time-scale",
                         "kill"})
"""Library error keys that name a command-line option when no file is involved."""
EXECUTORS = ("serial", "process", "dask")
"""The executors of :mod:`hgc.executors` (listed here so that ``--help`` does not import it)."""


INTERRUPTED_EXIT = 130


def _attributed(err: ConfigError, kwargs: dict[str, Any]) -> ConfigError:
    """``err`` naming the command's CONFIG file when it names none and is not about a CLI option."""
    config = kwargs.get("config")
    if err.source is None and config is not None and not err.key.startswith("--") and err.key not in OPTION_KEYS:
        return err.with_source(config)
    return err


def cli_message(err: ConfigError) -> str:
    """The one-line message of ``err`` with library parameter keys shown as the CLI options they come from."""
    if err.source is None and err.key in OPTION_KEYS:
        return ConfigError(err.message, f"--{err.key}").one_line()
    return err.one_line()


def handle_errors(func: F) -> F:
    """Run a command under the CLI's rules for errors and interruption.

    * Bad input (:class:`ConfigError`, including files that cannot be written) → one line
      ``error: FILE: KEY.PATH: message`` on stderr and exit status 2; a problem found after loading names
      the command's CONFIG file.
    * Ctrl-C or SIGTERM → exit status 130. Commands catch the interrupt themselves where they have
      complete results to write (labelled as partial); by the time it reaches here, nothing unfinished
      has been written (see :mod:`hgc.interrupts`).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with sigterm_as_interrupt():
                return func(*args, **kwargs)
        except ConfigError as err:
            click.echo(f"error: {cli_message(_attributed(err, kwargs))}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted: nothing unfinished was saved", err=True)
            sys.exit(INTERRUPTED_EXIT)

    return wrapper  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------------
# Options shared by several commands

config_argument = click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
overrides_argument = click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
out_option = click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Output directory [default: results/<config name>/].",
)
seed_option = click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), default=None,
                           help="Override the config's seed.")
allow_large_option = click.option(
    "--allow-large", is_flag=True,
    help="Run even when the estimated memory or work exceeds hgc's limits (see docs/limits.md).")
quiet_option = click.option("--quiet", is_flag=True, help="Print nothing but errors and warnings (no tables, no progress bars).")
progress_option = click.option("--progress", "force_progress", is_flag=True,
                               help="Show progress bars even when stderr is not a terminal.")
dry_run_option = click.option("--dry-run", is_flag=True,
                              help="Validate, print what would run (schemes, sizes, output files, memory and time "
                                   "estimates) and exit without computing or writing anything; with --quiet, "
                                   "validate only.")


def trials_option(help_text: str = "Override the config's number of trials.") -> Callable[[F], F]:
    """``--trials N`` (N >= 1)."""
    return click.option("--trials", type=click.IntRange(min=1, max=2**63 - 1), default=None, help=help_text)


def default_out_dir(name: str, out_dir: Path | None) -> Path:
    """``out_dir`` if given, else ``results/<name>/`` relative to the working directory."""
    return out_dir if out_dir is not None else Path("results") / name


def output_dir(name: str, out_dir: Path | None) -> Path:
    """The output directory (see :func:`default_out_dir`), created and checked writable *before* any
    computation; a problem is a :class:`ConfigError` on ``--out`` (or on ``name``, which names the
    default directory)."""
    from hgc.output import prepare_output_dir  # noqa: PLC0415 - keeps `hgc --help` fast

    return _checked_dir(name, out_dir, prepare_output_dir)


def dry_run_out_dir(name: str, out_dir: Path | None) -> Path:
    """The output directory a run would use (see :func:`default_out_dir`), checked as :func:`output_dir`
    checks it but without creating anything."""
    from hgc.planning import check_output_dir  # noqa: PLC0415 - only dry runs plan

    return _checked_dir(name, out_dir, check_output_dir)


def _checked_dir(name: str, out_dir: Path | None, check: Callable[[Path], object]) -> Path:
    path = default_out_dir(name, out_dir)
    try:
        check(path)
    except ConfigError as err:
        raise ConfigError(err.message, "--out" if out_dir is not None else "name") from None
    return path


def echo_plan(plan: Any, quiet: bool = False) -> None:
    """``--dry-run``: print a :class:`hgc.planning.RunPlan` (unless ``quiet``), then stop as the real run
    would: with its refusal (an estimated limit; exit status 2) or successfully."""
    if not quiet:
        click.echo(plan.text())
    if plan.refusal is not None:
        raise plan.refusal


# ----------------------------------------------------------------------------------------------------
# KEY=VALUE overrides

def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """``["topology.edges=8", "trials=2e4"]`` → ``{"topology.edges": 8, "trials": 20000.0}``: dotted config
    keys, values parsed as YAML as config files are (:func:`hgc.safe_yaml.parse_yaml`: ``2e4`` is a number;
    a value that is not valid YAML stays a string)."""
    from hgc.safe_yaml import parse_yaml  # noqa: PLC0415 - the config stack is loaded only by commands that need it

    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"expected KEY=VALUE with a dotted config key (e.g. topology.edges=8), got {pair!r}",
                              source="command line")
        try:
            value = parse_yaml(text) if text.strip() else None
        except ConfigError:
            value = text
        if key in values:
            raise ConfigError(f"set twice on the command line ({values[key]!r} and {value!r})", key, "command line")
        values[key] = value
    return values


def load_experiment(path: Path, overrides: Sequence[str] = (), **options: Any) -> Any:
    """The experiment config at ``path`` with the command line applied once: ``KEY=VALUE`` overrides,
    then options given as ``dotted.key=value`` keyword arguments that are not ``None``."""
    from hgc.config import load_config  # noqa: PLC0415 - the config stack is loaded only by commands that need it

    config = load_config(path)
    values = parse_overrides(overrides)
    for key, value in options.items():
        if value is not None:
            values[key.replace("__", ".")] = value
    config = config.with_values(values)
    for warning in config.warnings:
        click.echo(f"warning: {path}: {warning}", err=True)
    return config


# ----------------------------------------------------------------------------------------------------
# Progress bars

def progress_factory(quiet: bool, force: bool = False) -> ProgressFactory | None:
    """tqdm bars on stderr: none with ``--quiet``; otherwise when stderr is a terminal, or ``--progress``."""
    if quiet or not (force or sys.stderr.isatty()):
        return None
    from tqdm import tqdm  # noqa: PLC0415 - only when bars are shown

    def factory(total: float | None, description: str, unit: str) -> ProgressBar:
        return tqdm(total=total, desc=description, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False,
                    mininterval=0.2)

    return factory


# ----------------------------------------------------------------------------------------------------
# Tables for the terminal

def format_cell(value: Any) -> str:
    """A cell for a printed table: blanks for missing values, 4 significant digits for floats."""
    if value is None:
        return ""
    try:
        if value != value:  # NaN and pandas' NA
            return ""
    except (TypeError, ValueError):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value.is_integer() and abs(value) < 1e6:
            return str(int(value))
        return f"{value:.4g}"
    return str(value)


def table_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], width: int | None = None,
               required: int = 1) -> str:
    """``rows`` as an aligned text table of ``columns``, dropping trailing columns (after the first
    ``required``) that do not fit ``width`` characters (default: the terminal width)."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    cells = [[format_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    keep = len(columns)
    while keep > required and sum(widths[:keep]) + 2 * (keep - 1) > width:
        keep -= 1
    shown = [i for i in range(keep) if any(r[i] for r in cells) or i < required]

    def line(values: Sequence[str]) -> str:
        return "  ".join(values[i].ljust(widths[i]) if i == shown[0] else values[i].rjust(widths[i])
                         for i in shown).rstrip()

    out = [line(list(columns))] + [line(r) for r in cells]
    if keep < len(columns):
        out.append(f"({len(columns) - keep} more columns in the CSV: {', '.join(columns[keep:])})")
    return "\n".join(out)


REDUCTION_COLUMNS = ("reduction_e", "reduction_w", "reduction")
"""Shown in printed tables only when some row sends shorter messages (a value other than 1)."""


def echo_table(table: Any, columns: Sequence[str], required: int = 1) -> None:
    """Print a pandas table's ``columns`` (those it has; reduction columns only when some value is not 1)
    fitted to the terminal."""
    present = [c for c in columns if c in table.columns
               and not (c in REDUCTION_COLUMNS and table[c].dropna().isin([1]).all())]
    click.echo(table_text(table[present].to_dict("records"), present, required=required))


def executor_options(default: str, what: str) -> Callable[[F], F]:
    """``--executor``, ``--jobs`` and ``--scheduler``: where ``what`` runs (see :mod:`hgc.executors`)."""
    def decorate(func: F) -> F:
        func = click.option("--scheduler", default=None, metavar="ADDRESS",
                            help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (with --executor dask); "
                                 "without it a local Dask cluster is started.")(func)
        func = click.option("--jobs", type=click.IntRange(min=1, max=4096), default=None,
                            help="Worker processes (process executor, local Dask cluster) "
                                 "[default: CPUs available].")(func)
        func = click.option("--executor", "executor_kind", type=click.Choice(EXECUTORS), default=default,
                            show_default=True,
                            help=f"Where {what} run: this process, local worker processes, or a Dask cluster.")(func)
        return func

    return decorate
