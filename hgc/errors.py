"""Exception types shared by the library and the command line.

``ConfigError`` is the one error a user should ever see for bad input: the CLI turns it into a
single line ``FILE: KEY.PATH: message`` and exit status 2.
"""

from __future__ import annotations

from pathlib import Path


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
        parts = [p for p in (self.source, self.key) if p]
        return ": ".join(parts + [self.message])

    def with_source(self, source: str | Path | None) -> "ConfigError":
        """The same error attributed to ``source`` (kept if it already names a file)."""
        if self.source is not None or source is None:
            return self
        return ConfigError(self.message, self.key, source)


class UnreachableBoundError(ConfigError):
    """The hierarchical load bound cannot be met with the requested tolerances (see docs/model.md)."""


class UndecodableError(HgcError):
    """A responding set of nodes does not allow exact recovery of the full gradient."""
