"""Writing results: atomic files, CSV formatting and run metadata.

Every file is written to a temporary name in the same directory and renamed into place, so an interrupted
run never leaves a half-written file and never destroys a complete one. Files get the permissions the
user's umask allows (as any file the user creates), not a temporary file's private ``0600``. A file or
directory that cannot be written is a :class:`~hgc.errors.ConfigError` naming it (one line, exit status 2
in the CLI), and the CLI checks its output directory with :func:`prepare_output_dir` *before* computing.
CSVs are formatted deterministically: the same config and seed give byte-identical files.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from hgc import __version__
from hgc.errors import ConfigError

FLOAT_FORMAT = "%.10g"


def _unwritable(path: Path, err: OSError | ValueError) -> ConfigError:
    reason = (getattr(err, "strerror", None) or str(err)) or type(err).__name__
    return ConfigError(f"cannot write here: {reason}", source=path)


def _create_temporary(directory: Path, name: str) -> tuple[int, Path]:
    """A new file ``.<name>.<random>.tmp`` in ``directory`` opened for writing, mode ``0666 & ~umask``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = directory / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file + rename); creates parent directories."""
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temporary(path.parent, path.name)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except (OSError, ValueError) as err:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise _unwritable(path, err) from None
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    return path


def prepare_output_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if needed and check that files can be created in it, by creating
    and removing a probe file. Raises :class:`ConfigError` naming ``path`` when not."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise ConfigError(f"cannot write results to {path}: it exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = _create_temporary(path, "hgc-probe")
        os.close(fd)
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"cannot write results to {path}: {err.strerror or type(err).__name__}") from None
    except ValueError as err:  # e.g. an embedded NUL in the path
        raise ConfigError(f"cannot write results to {path}: {err}") from None
    return path


def integer_columns(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``table`` with ``columns`` as nullable integers (blank cells for missing values), except a column
    holding text such as per-edge tolerances ``1;2;1``, which stays as it is."""
    for column in columns:
        if column in table.columns:
            values = table[column]
            if all(v is None or isinstance(v, (int, np.integer)) or (isinstance(v, float) and v != v)
                   for v in values):
                table[column] = values.astype("Int64")
    return table


def csv_text(table: pd.DataFrame) -> str:
    """The CSV form of ``table``: no index, floats with 10 significant digits, empty cells for missing."""
    return table.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def write_csv(table: pd.DataFrame, path: Path) -> Path:
    return atomic_write_text(path, csv_text(table))


def _plain(value: Any) -> Any:
    """Convert numpy scalars and paths to plain YAML/JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def write_yaml(data: Mapping[str, Any], path: Path) -> Path:
    return atomic_write_text(path, yaml.safe_dump(_plain(data), sort_keys=False))


def write_json(data: Mapping[str, Any], path: Path) -> Path:
    return atomic_write_text(path, json.dumps(_plain(data), indent=2) + "\n")


def run_metadata(command: str, **facts: Any) -> dict[str, Any]:
    """Provenance of a run: hgc version, command, time stamp (UTC), interpreter and library versions."""
    return {
        "hgc_version": __version__,
        "command": command,
        "argv": sys.argv,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "platform": platform.platform(),
        **facts,
    }
