"""Exception types shared by the library and the command line.

``ConfigError`` is the one error a user should ever see for bad input: the CLI turns it into a
single line ``FILE: KEY.PATH: message`` and exit status 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PART_LIMIT = 300
"""Longest file name or key path (characters) printed in an error line; longer ones are shortened."""


def printable(text: str, limit: int = PART_LIMIT) -> str:
    """``text`` safe for a one-line message: control characters (newlines, NUL, ...) escaped, at most
    ``limit`` characters (the middle replaced by ``...``)."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    if len(text) > limit:
        keep = max(limit // 2 - 2, 1)
        text = f"{text[:keep]}...{text[-keep:]}"
    return text


class HgcError(Exception):
    """Base class of all errors raised on purpose by hgc."""


class ConfigError(HgcError, ValueError):
    """Invalid user input: a config file, a CLI argument or a trace file.

    Parameters
    ----------
    message:
        What was expected and what was found, e.g. ``"must be >= 1, got 0"``.
    key:
        Dotted key path inside the file, e.g. ``"topology.workers[2]"``; empty for the whole file.
    source:
        The file the value came from (or ``None`` for values given programmatically / on the CLI).
    """

    def __init__(self, message: str, key: str = "", source: str | Path | None = None):
        self.message = message
        self.key = key
        self.source = str(source) if source is not None else None
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """``FILE: KEY.PATH: message`` on one line (control characters escaped, long parts shortened)."""
        parts = [printable(p) for p in (self.source, self.key) if p]
        return ": ".join(parts + [printable(self.message, 4 * PART_LIMIT)])

    def with_source(self, source: str | Path | None) -> "ConfigError":
        """The same error attributed to ``source`` (kept if it already names a file)."""
        if self.source is not None or source is None:
            return self
        return ConfigError(self.message, self.key, source)


class UnreachableBoundError(ConfigError):
    """The hierarchical load bound cannot be met with the requested tolerances (see docs/model.md)."""


class UndecodableError(HgcError):
    """A responding set of nodes does not allow exact recovery of the full gradient."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM before it finished.

    It *is* a :class:`KeyboardInterrupt`, so code that does not handle it stops as on Ctrl-C (nothing
    unfinished is ever returned as finished). ``partial`` carries what was complete when the run stopped
    (e.g. a :class:`hgc.simulation.MonteCarloRun` of the finished chunks), for the one caller that may
    report it, labelled as partial; ``None`` when nothing was complete.
    """

    def __init__(self, message: str = "interrupted", partial: Any = None):
        super().__init__(message)
        self.partial = partial
