"""The ``hgc`` command: a click group whose sub-commands live one per module in this package.

Sub-commands are imported only when invoked, so ``hgc --help`` stays fast and one command's heavy
dependencies (Dask, matplotlib, scikit-learn) never slow another down.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from hgc import __version__

# command name -> (module in hgc.cli, function name, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "simulate": ("simulate", "simulate", "Monte Carlo iteration time of every scheme in a config."),
    "optimize": ("optimize", "optimize", "Joint node and coding-scheme selection (JNCSS) with the analytic evaluator."),
    "sweep": ("sweep", "sweep", "Run simulate/optimize over a grid of config values, in parallel and resumably."),
    "train": ("train", "train", "Coded gradient descent on real data, checking exact gradient recovery."),
    "verify": ("verify", "verify", "Build every coded scheme and check decoding over straggler patterns."),
    "plot": ("plot", "plot", "PNG figures for a results directory."),
    "emulate": ("emulate", "emulate", "Run the coded protocol on a Dask cluster and compare with the simulator."),
}


class LazyGroup(click.Group):
    """A group that imports each sub-command's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, attr, _ = COMMANDS[name]
        module = importlib.import_module(f"hgc.cli.{module_name}")
        return getattr(module, attr)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Run the command; bad arguments end with one line on stderr and exit status 2 (as bad configs)."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as err:
            command = err.ctx.command_path if err.ctx is not None else "hgc"
            click.echo(f"error: {command}: {err.format_message()} (see '{command} --help')", err=True)
            sys.exit(err.exit_code)
        except click.ClickException as err:
            err.show()
            sys.exit(err.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(name="hgc", cls=LazyGroup)
@click.version_option(__version__, prog_name="hgc")
def main() -> None:
    """hgc: hierarchical gradient coding experiments.

    Describe a master / edge / worker system and its straggler statistics in YAML, then ask how long a
    training iteration takes under each coding scheme and which scheme and parameters are fastest.
    """
