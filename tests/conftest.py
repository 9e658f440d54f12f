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


@pytest.fixture(scope="session")
def postgres_url():
    """A throw-away PostgreSQL server on a free local port (skipped if none is installed)."""
    import glob
    import socket

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("no PostgreSQL server binaries (Debian package postgresql)")
    try:
        import ase_db_backends  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("halex[postgres] extra not installed")
    bindir = Path(bins[-1]).parent
    import tempfile

    # not under pytest's tmp root: that is private to the current user, and the server
    # may have to run as 'postgres'
    base = Path(tempfile.mkdtemp(prefix="halex-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        import pwd

        try:
            uid = pwd.getpwnam("postgres").pw_uid
        except KeyError:
            pytest.skip("running as root and no 'postgres' user to start a server")
        os.chown(base, uid, -1)
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = base / "data"
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "halex"], check=True, capture_output=True)
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"), "-o",
                    f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://halex@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
