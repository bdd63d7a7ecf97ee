"""Shared fixtures: small configs written to temporary files, and a CLI runner."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write YAML text (dedented) to ``tmp_path/<name>`` and return the path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def cli() -> Callable[..., object]:
    """Invoke ``hgc`` in-process; returns click's Result (exit_code, stdout, stderr)."""
    from hgc.cli import main

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=True)

    return invoke
