"""Reading measured delays (traces) for the ``empirical`` distribution.

A trace is a CSV file with a header row; the config names the column of delays (seconds, numbers >= 0).
A config may name *any* file, so reading one must neither fall over nor repeat its contents: an error
says which line of which column is wrong, never what the line holds, and a missing column lists at most
:data:`SHOWN_COLUMNS` header names — and only when the header looks like one of a CSV table of numbers
(short, identifier-like names and a numeric first data row), so pointing ``file`` at, say, a system file
reveals nothing of it.

Limits: :data:`MAX_TRACE_BYTES` per file, :data:`MAX_FIELD_CHARS` per field, :data:`MAX_TRACE_ROWS` rows;
the file must be UTF-8 (a byte-order mark is allowed).
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import numpy as np

from hgc.errors import ConfigError
from hgc.validation import suggestion

MAX_TRACE_BYTES = 512 * 2**20
"""Largest trace file (bytes)."""
MAX_TRACE_ROWS = 50_000_000
"""Most data rows read from one trace."""
MAX_FIELD_CHARS = 4096
"""Longest field (characters); a delay is a number of a few dozen characters."""
SHOWN_COLUMNS = 8
"""Most header names listed when the requested column is missing."""

_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .()\[\]/%-]{0,39}$")


def load_trace(path: Path, column: str, key: str) -> np.ndarray:
    """Delays (seconds) from ``column`` of the CSV trace at ``path``; every value must be a number >= 0.

    ``key`` is the config key of the file name (``....file``); a missing column is reported at the sibling
    ``....column``.
    """
    path = Path(path)
    column_key = key.rsplit(".", 1)[0] + ".column" if "." in key else "column"
    if not path.is_file():
        raise ConfigError(f"trace file not found: {path}" if not path.exists() else f"trace {path} is not a file",
                          key)
    try:
        size = path.stat().st_size
        if size > MAX_TRACE_BYTES:
            raise ConfigError(f"trace {path} has {size} bytes, above the limit of {MAX_TRACE_BYTES}", key)
        if size == 0:  # (also kernel files such as /proc/kmsg, whose reads can block forever)
            raise ConfigError(f"trace {path} is empty", key)
        with path.open("r", encoding="utf-8-sig", errors="strict", newline="") as handle:
            return _read(handle, path, column, key, column_key)
    except UnicodeDecodeError:
        raise ConfigError(f"trace {path} is not a UTF-8 text file", key) from None
    except csv.Error as err:
        raise ConfigError(f"trace {path} is not a readable CSV file ({_csv_problem(err)})", key) from None
    except OSError as err:
        raise ConfigError(f"cannot read trace {path}: {err.strerror or type(err).__name__}", key) from None


def _csv_problem(err: csv.Error) -> str:
    text = str(err)
    if "field larger than field limit" in text:
        return f"a field is longer than {MAX_FIELD_CHARS} characters"
    return "malformed CSV"


def _read(handle: io.TextIOBase, path: Path, column: str, key: str, column_key: str) -> np.ndarray:
    previous = csv.field_size_limit()
    csv.field_size_limit(MAX_FIELD_CHARS)
    try:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise ConfigError(f"trace {path} is empty", key)
        names = [name.strip() for name in header]
        if column not in names:
            first_row = next(reader, None)
            raise ConfigError(f"trace {path} has no column '{column}'{_listing(column, names, first_row)}",
                              column_key)
        index = names.index(column)
        values = np.empty(1024)
        count = 0
        for line, row in enumerate(reader, start=2):
            if not row:
                continue  # blank line
            if count >= MAX_TRACE_ROWS:
                raise ConfigError(f"trace {path} has more than {MAX_TRACE_ROWS} rows", key)
            text = row[index].strip() if index < len(row) else ""
            try:
                value = float(text) if len(text) <= 64 else math.nan
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value < 0:
                problem = "is empty" if not text else "is not a finite number >= 0"
                raise ConfigError(f"trace {path} line {line}: the value in column '{column}' {problem}", key)
            if count == values.size:
                values = np.resize(values, 2 * values.size)
            values[count] = value
            count += 1
    finally:
        csv.field_size_limit(previous)
    if count == 0:
        raise ConfigError(f"trace {path} has no rows", key)
    return values[:count].copy()


def _looks_numeric(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _listing(column: str, names: list[str], first_row: list[str] | None) -> str:
    """`` (columns: a, b, ...)`` when the header looks like that of a CSV table of numbers, else a hint."""
    plausible = (bool(names) and all(_COLUMN_NAME.match(name) for name in names)
                 and first_row is not None and len(first_row) == len(names)
                 and any(_looks_numeric(cell.strip()) for cell in first_row))
    if not plausible:
        return " (it does not look like a CSV file with a header row of column names and rows of numbers)"
    shown = ", ".join(names[:SHOWN_COLUMNS]) + (f", ... ({len(names)} columns)" if len(names) > SHOWN_COLUMNS else "")
    return f"{suggestion(column, names)} (columns: {shown})"
