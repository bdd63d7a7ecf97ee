"""The ``hgc`` command: a click group whose sub-commands live one per module in this package.

The sub-command modules import only click and :mod:`hgc.cli.common` at the top; each command imports the
library it needs when it runs, so ``hgc --help`` stays fast and one command's heavy dependencies (Dask,
matplotlib, scikit-learn) never slow another down. The command list and its one-line help come from
the commands themselves (their docstrings).
"""

from __future__ import annotations

import difflib
import importlib
import sys
from typing import Any

import click

from hgc import __version__

COMMANDS = ("simulate", "optimize", "sweep", "train", "verify", "emulate", "plot")
"""Sub-commands, in the order ``hgc --help`` lists them; each is the function of that name in
``hgc.cli.<name>``."""


class LazyGroup(click.Group):
    """A group that imports each sub-command's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"hgc.cli.{name}")
        command = getattr(module, name)
        assert isinstance(command, click.Command)
        return command

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            close = difflib.get_close_matches(name, COMMANDS, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else f" (commands: {', '.join(COMMANDS)})"
            raise click.UsageError(f"no such command '{name}'{hint}", ctx)
        return super().resolve_command(ctx, args)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Run the command; bad arguments end with one line on stderr and exit status 2 (as bad configs)."""
        run: Any = super().main
        if not standalone_mode:
            return run(*args, standalone_mode=False, **kwargs)
        try:
            result = run(*args, standalone_mode=False, **kwargs)
        except click.UsageError as err:
            command = err.ctx.command_path if err.ctx is not None else "hgc"
            click.echo(f"error: {command}: {err.format_message()} (see '{command} --help')", err=True)
            sys.exit(err.exit_code)
        except click.ClickException as err:
            err.show()
            sys.exit(err.exit_code)
        except click.Abort as err:  # Ctrl-C outside a command (while starting up)
            interrupted = isinstance(err.__cause__, KeyboardInterrupt)
            click.echo("interrupted" if interrupted else "aborted", err=True)
            sys.exit(130 if interrupted else 1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(result if isinstance(result, int) else 0)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """One line per command: the first line of its docstring, in full."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None:
                rows.append((name, command.get_short_help_str(limit=200)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(name="hgc", cls=LazyGroup)
@click.version_option(__version__, prog_name="hgc")
def main() -> None:
    """hgc: hierarchical gradient coding experiments.

    Describe a master / edge / worker system and its straggler statistics in YAML, then ask how long a
    training iteration takes under each coding scheme and which scheme and parameters are fastest.
    """
