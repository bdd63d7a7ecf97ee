"""Reading result CSVs for plotting, and the derived quantities the figures show.

Every reader checks what it needs and fails with one :class:`~hgc.errors.ConfigError` naming the file
(and the column, and the line) instead of a traceback: an empty or truncated file, a row with the wrong
number of fields, a missing column, a non-numeric cell.

Effective time. Headline comparisons use the mean time per *successful* iteration,
``effective_time = mean_time / (1 - failure_rate)`` (seconds; blank when nothing decodes), and
``speedup = uncoded effective_time / this effective_time``. Result files written by newer versions of
hgc carry an ``effective_time`` column, which is used as written; for older files it is computed here.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from hgc.errors import ConfigError

MAX_CSV_BYTES = 256 * 2**20
"""Largest results CSV ``hgc plot`` reads (bytes)."""
Z95 = 1.959963984540054  # two-sided 95 % normal quantile: intervals are ± Z95 standard errors


def read_table(path: Path, *, required: Sequence[str] = (), numeric: Iterable[str] = (),
               what: str = "") -> pd.DataFrame:
    """The CSV at ``path`` as a table, checked: at least one data row, every line with as many fields as
    the header, the ``required`` columns present and the ``numeric`` columns (those present) numbers or
    blank. ``what`` names the command that writes the file, for the error messages."""
    path = Path(path)
    hint = f" (expected the file written by {what})" if what else ""
    try:
        size = path.stat().st_size
        if size > MAX_CSV_BYTES:
            raise ConfigError(f"larger than {MAX_CSV_BYTES} bytes; not a results file hgc plots", source=path)
        if size == 0:  # without reading: kernel files such as /proc/kmsg report size 0 and block on read
            raise ConfigError(f"empty file{hint}", source=path)
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("not a text (UTF-8) CSV file", source=path) from None
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror or err}", source=path) from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as err:
        raise ConfigError(f"not a valid CSV file: {err}", source=path) from None
    if not rows or not any(field.strip() for field in rows[0]):
        raise ConfigError(f"empty file{hint}", source=path)
    header = rows[0]
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header) and row:
            ending = "" if text.endswith("\n") or line < len(rows) else "; the file looks truncated"
            raise ConfigError(f"line {line} has {len(row)} fields, the header has {len(header)}{ending}",
                              source=path)
    if len([row for row in rows[1:] if row]) == 0:
        raise ConfigError(f"no data rows{hint}", source=path)
    try:
        table = pd.read_csv(io.StringIO(text), keep_default_na=True)
    except (pd.errors.ParserError, ValueError) as err:
        raise ConfigError(f"not a valid CSV file: {str(err).splitlines()[0]}", source=path) from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ConfigError(_missing(missing) + hint, key=missing[0], source=path)
    for column in numeric:
        if column in table.columns:
            table[column] = numeric_column(table, column, path)
    return table


def numeric_column(table: pd.DataFrame, column: str, path: Path | None = None) -> pd.Series:
    """``table[column]`` as floats; blank cells become NaN, anything else that is not a number is an
    error naming the line (header = line 1). ``inf``/``nan`` spelled out are accepted."""
    raw = table[column]
    if pd.api.types.is_bool_dtype(raw):
        return raw.astype(float)
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        index = int(np.flatnonzero(bad.to_numpy())[0])
        raise ConfigError(f"line {index + 2}: expected a number, got {str(raw.iloc[index])!r}",
                          key=column, source=path)
    return values.astype(float)


def require_columns(table: pd.DataFrame, columns: Sequence[str], path: Path | None, what: str = "") -> None:
    """A :class:`ConfigError` naming the first of ``columns`` missing from ``table``."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        hint = f" (needed for {what})" if what else ""
        raise ConfigError(_missing(missing) + hint, key=missing[0], source=path)


def _missing(columns: Sequence[str]) -> str:
    """``missing column`` (the key names it) or ``missing columns 'a', 'b'``."""
    if len(columns) == 1:
        return "missing column"
    return "missing columns " + ", ".join(repr(c) for c in columns)


# ----------------------------------------------------------------------------------------------------
# Effective time and speed-ups

def effective_times(table: pd.DataFrame, *, mean: str = "mean_time", failure: str = "failure_rate",
                    column: str = "effective_time") -> np.ndarray:
    """Seconds per successful iteration for every row: the ``column`` if the table has it, else
    ``mean / (1 - failure)``. NaN where nothing decodes (``failure = 1``, blank or infinite values)."""
    if column in table.columns:
        values = table[column].to_numpy(float)
    else:
        success = 1.0 - table[failure].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(success > 0, table[mean].to_numpy(float) / success, np.nan)
    return np.where(np.isfinite(values), values, np.nan)


def effective_halfwidths(table: pd.DataFrame, *, mean: str = "mean_time", sem: str = "sem_time",
                         failure: str = "failure_rate", trials: str = "trials") -> np.ndarray:
    """Half-width (seconds) of a 95 % confidence interval for the effective time ``m / (1 - f)``.

    Delta method with independent errors of the decoded-trial mean ``m`` (standard error ``sem``) and of
    the failure fraction ``f`` (binomial, ``sqrt(f (1 - f) / trials)``; taken as 0 without a ``trials``
    column): ``se² = (sem / (1-f))² + (m · se_f / (1-f)²)²``. NaN where nothing decodes or ``sem`` is blank.
    """
    m = table[mean].to_numpy(float)
    s = table[sem].to_numpy(float) if sem in table.columns else np.full(len(table), np.nan)
    f = np.nan_to_num(table[failure].to_numpy(float), nan=0.0) if failure in table.columns else np.zeros(len(table))
    n = table[trials].to_numpy(float) if trials in table.columns else np.full(len(table), np.inf)
    success = 1.0 - f
    with np.errstate(divide="ignore", invalid="ignore"):
        se_f = np.where(n > 0, np.sqrt(f * success / n), 0.0)
        se = np.sqrt((s / success) ** 2 + (m * se_f / success ** 2) ** 2)
    return np.where((success > 0) & np.isfinite(se), Z95 * se, np.nan)


def speedups(table: pd.DataFrame, effective: np.ndarray, *, scheme: str = "scheme",
             baseline: str = "uncoded") -> np.ndarray:
    """``uncoded effective time / effective time`` per row.

    From the table's own ``uncoded`` row when it has one; otherwise the ``speedup`` column when the table
    also has ``effective_time`` (then that column is already a ratio of effective times); otherwise
    unknown (NaN): an older file's ``speedup`` compares mean times, and without the uncoded row its
    failure rate cannot be taken into account.
    """
    if scheme in table.columns:
        rows = np.flatnonzero(table[scheme].astype(str).to_numpy() == baseline)
        if rows.size:
            base = effective[rows[0]]
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(np.isfinite(effective) & (effective > 0), base / effective, np.nan)
    if "effective_time" in table.columns and "speedup" in table.columns:
        return table["speedup"].to_numpy(float)
    return np.full(len(table), np.nan)


def tolerance_label(kind: str, s: object = None, s_e: object = None, s_w: object = None) -> str:
    """A scheme in the label style of the result tables: ``uncoded``, ``flat_gc(s=3)``, ``hgc(s_e=1,s_w=1)``."""
    def text(value: object) -> str | None:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            return None
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    parts = [(key, text(value)) for key, value in (("s", s), ("s_e", s_e), ("s_w", s_w))]
    shown = [f"{key}={value}" for key, value in parts if value is not None]
    return f"{kind}({','.join(shown)})" if shown else str(kind)


def labels(table: pd.DataFrame, *, stable: bool = False) -> list[str]:
    """The scheme label of every row: the ``label`` column, else built from the tolerances. With
    ``stable`` (sweeps, where ``auto`` values resolve differently from point to point) the label as
    written in the config (``spec_label``) when the table has it."""
    if stable and "spec_label" in table.columns:
        return [str(v) for v in table["spec_label"]]
    if "label" in table.columns:
        return [str(v) for v in table["label"]]
    kinds = table["scheme"] if "scheme" in table.columns else pd.Series(["?"] * len(table))
    return [tolerance_label(str(kind), *(table[c].iloc[i] if c in table.columns else None
                                         for c in ("s", "s_e", "s_w")))
            for i, kind in enumerate(kinds)]
