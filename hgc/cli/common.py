"""Pieces shared by the sub-commands: error handling, common options, output directories."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

import click

from hgc.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


OPTION_KEYS = frozenset({"method", "jobs", "executor", "scheduler", "trials", "seed", "patterns", "iterations",
                         "out", "time-scale", "kill", "memory"})
"""Library error keys that name a command-line option when no file is involved."""


def cli_message(err: ConfigError) -> str:
    """The one-line message of ``err`` with library parameter keys shown as the CLI options they come from."""
    if err.source is None and err.key in OPTION_KEYS:
        return ConfigError(err.message, f"--{err.key}").one_line()
    return err.one_line()


def handle_errors(func: F) -> F:
    """Turn bad input into one line on stderr and exit status 2; an interrupt into exit status 130.

    Anything already written by the command stays on disk (commands write results atomically as they
    finish), so an interrupted run loses nothing it had completed.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as err:
            click.echo(f"error: {cli_message(err)}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted: results written so far are kept", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


config_argument = click.argument(
    "config", type=click.Path(dir_okay=False, path_type=Path)
)
out_option = click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Output directory [default: results/<config name>/].",
)
seed_option = click.option("--seed", type=click.IntRange(min=0), default=None, help="Override the config's seed.")


def trials_option(help_text: str = "Override the config's number of trials.") -> Callable[[F], F]:
    """``--trials N`` (N >= 1)."""
    return click.option("--trials", type=click.IntRange(min=1), default=None, help=help_text)
quiet_option = click.option("--quiet", is_flag=True, help="No progress bar and nothing but errors printed.")


def default_out_dir(name: str, out_dir: Path | None) -> Path:
    """``out_dir`` if given, else ``results/<name>/`` relative to the working directory."""
    return out_dir if out_dir is not None else Path("results") / name


def executor_options(default: str, what: str) -> Callable[[F], F]:
    """``--executor``, ``--jobs`` and ``--scheduler``: where ``what`` runs (see :mod:`hgc.executors`)."""
    from hgc.executors import EXECUTORS  # noqa: PLC0415

    def decorate(func: F) -> F:
        func = click.option("--scheduler", default=None, metavar="ADDRESS",
                            help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (with --executor dask); "
                                 "without it a local Dask cluster is started.")(func)
        func = click.option("--jobs", type=click.IntRange(min=1), default=None,
                            help="Worker processes (process executor, local Dask cluster) "
                                 "[default: CPUs available].")(func)
        func = click.option("--executor", "executor_kind", type=click.Choice(EXECUTORS), default=default,
                            show_default=True,
                            help=f"Where {what} run: this process, local worker processes, or a Dask cluster.")(func)
        return func

    return decorate
