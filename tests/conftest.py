"""Shared fixtures. Seeds are fixed; the real engines are used (no mocks)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
HALEX = [sys.executable, "-m", "halex.cli.main"]


@pytest.fixture(scope="session")
def mlip():
    """One CHGNet engine for the whole session (the model loads once)."""
    from halex.engines import get_engine

    return get_engine("mlip")


@pytest.fixture
def store(tmp_path):
    from halex.store import ResultStore

    return ResultStore(tmp_path / "results.db")


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``halex ARGS`` in a subprocess (as a user would)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([*HALEX, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


needs_cp2k = pytest.mark.skipif(shutil.which("cp2k.psmp") is None, reason="cp2k.psmp not installed (scripts/setup.sh installs it)")
