"""Writing results: atomic files, CSV formatting and run metadata.

Every file is written to a temporary name in the same directory and renamed into place, so an interrupted
run never leaves a half-written file and never destroys a complete one. CSVs are formatted
deterministically: the same config and seed give byte-identical files.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import yaml

from hgc import __version__

FLOAT_FORMAT = "%.10g"


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file + rename); creates parent directories."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
