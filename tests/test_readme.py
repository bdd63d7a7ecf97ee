"""Every example in the README runs: shell blocks as scripts, Python blocks as programs, YAML blocks are
validated as configs or sweep files. The README cannot drift from the code."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
SKIPPED_COMMANDS = ("pip install", "python3 -m pytest", "python -m pytest")
"""Set-up lines: CI itself installs the project and runs the tests."""
INSTALL_PREFIX = re.compile(r"^\s*(python3? -m )?pip install [^&]*&&\s*")
"""The install step of a set-up line; the command after it is run."""


def blocks(kind: str) -> list[tuple[int, str]]:
    text = README.read_text()
    out = []
    for match in FENCE.finditer(text):
        if match.group(1) == kind:
            line = text.count("\n", 0, match.start()) + 1
            out.append((line, match.group(2)))
    return out


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory holding a copy of the bundled configs, as a user's checkout would."""
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    shutil.copytree(REPO / "benchmarks", tmp_path / "benchmarks")
    return tmp_path


def run_shell(script: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    prelude = textwrap.dedent(f"""\
        set -euo pipefail
        hgc() {{ "{sys.executable}" -m hgc "$@"; }}
        python3() {{ "{sys.executable}" "$@"; }}
        python() {{ "{sys.executable}" "$@"; }}
        trap 'jobs -p | xargs -r kill 2>/dev/null; wait 2>/dev/null' EXIT
        """)
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run(["bash", "-c", prelude + script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("line, script", blocks("bash"), ids=lambda v: f"line{v}" if isinstance(v, int) else "")
def test_shell_examples_run(line, script, workdir):
    rows = [INSTALL_PREFIX.sub("", row) for row in script.splitlines()]   # `pip install ... && hgc ...`
    kept = "\n".join(row for row in rows if not row.strip().startswith(SKIPPED_COMMANDS))
    if not kept.strip():
        pytest.skip("set-up commands only")
    proc = run_shell(kept, workdir)
    assert proc.returncode == 0, f"README line {line} failed:\n{kept}\n--- stderr ---\n{proc.stderr[-3000:]}"


@pytest.mark.parametrize("line, program", blocks("python"), ids=lambda v: f"line{v}" if isinstance(v, int) else "")
def test_python_examples_run(line, program, workdir):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", program], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"README line {line} failed:\n{proc.stderr[-3000:]}"


@pytest.mark.parametrize("line, text", blocks("yaml"), ids=lambda v: f"line{v}" if isinstance(v, int) else "")
def test_yaml_examples_are_valid(line, text, workdir):
    from hgc.config import config_from_mapping, load_config
    from hgc.sweep import expand_points, sweep_from_mapping

    raw = yaml.safe_load(text)
    configs = workdir / "configs"
    if "base" in raw or "grid" in raw:
        expand_points(sweep_from_mapping(raw, source=configs / "readme-sweep.yaml"))
    elif "topology" in raw:
        config_from_mapping(raw, base_dir=configs)
    else:  # a section on its own: valid on top of the quick-start config
        base = dict(load_config(configs / "quickstart.yaml").raw)
        config_from_mapping({**base, **raw}, base_dir=configs)
