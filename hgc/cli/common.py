"""Pieces shared by the sub-commands: error handling, interruption, common options, output directories."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

import click

from hgc.errors import ConfigError
from hgc.interrupts import sigterm_as_interrupt

F = TypeVar("F", bound=Callable[..., Any])

INTERRUPTED_EXIT = 130


def _attributed(err: ConfigError, kwargs: dict[str, Any]) -> ConfigError:
    """``err`` naming the command's CONFIG file when it names none and is not about a CLI option."""
    config = kwargs.get("config")
    if err.source is None and config is not None and not err.key.startswith("--"):
        return err.with_source(config)
    return err


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
            click.echo(f"error: {_attributed(err, kwargs).one_line()}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted: nothing unfinished was saved", err=True)
            sys.exit(INTERRUPTED_EXIT)

    return wrapper  # type: ignore[return-value]


config_argument = click.argument(
    "config", type=click.Path(dir_okay=False, path_type=Path)
)
out_option = click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Output directory [default: results/<config name>/].",
)
seed_option = click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), default=None,
                           help="Override the config's seed.")
allow_large_option = click.option(
    "--allow-large", is_flag=True,
    help="Run even when the estimated memory or work exceeds hgc's limits (see docs/limits.md).")


def trials_option(help_text: str = "Override the config's number of trials.") -> Callable[[F], F]:
    """``--trials N`` (N >= 1)."""
    return click.option("--trials", type=click.IntRange(min=1, max=2**63 - 1), default=None, help=help_text)


quiet_option = click.option("--quiet", is_flag=True, help="No progress bar and nothing but errors printed.")


def default_out_dir(name: str, out_dir: Path | None) -> Path:
    """``out_dir`` if given, else ``results/<name>/`` relative to the working directory."""
    return out_dir if out_dir is not None else Path("results") / name


def output_dir(name: str, out_dir: Path | None) -> Path:
    """The output directory (see :func:`default_out_dir`), created and checked writable *before* any
    computation; a problem is a :class:`ConfigError` on ``--out`` (or on ``name``, which names the
    default directory)."""
    from hgc.output import prepare_output_dir  # noqa: PLC0415

    path = default_out_dir(name, out_dir)
    try:
        prepare_output_dir(path)
    except ConfigError as err:
        raise ConfigError(err.message, "--out" if out_dir is not None else "name") from None
    return path
