"""Shared fixtures. Seeds are fixed; the real engines are used (no mocks)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
HALEX = [sys.executable, "-m", "halex.cli.main"]


@pytest.fixture(autouse=True)
def _default_store(tmp_path, monkeypatch):
    """Each test's default result store ($HALEX_DB) is its own, never ./halex.db of the checkout."""
    monkeypatch.setenv("HALEX_DB", str(tmp_path / "default-store.db"))


@pytest.fixture(autouse=True)
def _no_leaked_log_handler():
    """A test that calls the CLI's ``main()`` in-process leaves ``logging.basicConfig``'s handler on
    the root logger, writing to that test's captured stderr; later tests in the same worker then
    log into a closed stream ("--- Logging error ---"). Remove it, and restore the root level."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in root.handlers[:]:
        if type(handler) is logging.StreamHandler:  # basicConfig's; pytest's own handlers are subclasses
            root.removeHandler(handler)
    root.setLevel(level)


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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A throw-away PostgreSQL server on a free local port (skipped if none is installed)."""
    import glob

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
    port = _free_port()
    data = base / "data"
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "halex"], check=True, capture_output=True)
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"), "-o",
                    f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://halex@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _lj_engine_class():
    from ase.calculators.lj import LennardJones

    from halex.engines.base import Engine

    class LJEngine(Engine):
        """A classical engine for tests of the study machinery: ASE's Lennard-Jones calculator.

        Relaxations take milliseconds, so orchestration (stages, partial results, the shared
        store) is tested on real relaxations without the cost of the ML potential; studies
        never know which engine they run on.
        """

        name = "test-lj"
        defaults = {"sigma": 3.2, "epsilon": 0.05, "rc": 8.0}
        version = "ase LennardJones"
        supported_elements = frozenset({"Cs", "Pb", "Cl", "I", "Br", "S"})

        def calculator(self, directory=None):
            s = self.settings
            return LennardJones(sigma=s["sigma"], epsilon=s["epsilon"], rc=s["rc"], smooth=True)

    return LJEngine


def __getattr__(name):  # "conftest:LJEngine", the registry's lazy target, resolves here
    if name == "LJEngine":
        return _lj_engine_class()
    raise AttributeError(name)


@pytest.fixture
def lj_engine():
    """The ``test-lj`` engine, registered by name for one test."""
    from halex.engines import _REGISTRY, get_engine, register_engine

    register_engine("test-lj", "conftest:LJEngine")
    yield get_engine("test-lj")
    _REGISTRY.pop("test-lj", None)


_SLURM_CONF = """ClusterName=halextest
SlurmctldHost={host}
SlurmUser={user}
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={base}/munge.socket
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/slurmctld.log
SlurmdLogFile={base}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=halex Nodes=ALL Default=YES MaxTime=60 State=UP
"""


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A real single-node SLURM on localhost (Debian slurm-wlm + munge), started for the session.

    munged, slurmctld and slurmd run as this user from a temporary directory with their own
    key, sockets, ports and configuration (``SLURM_CONF``, which sbatch/squeue/scancel read);
    everything is stopped and removed afterwards. Yields the environment to run under.
    """
    import getpass
    import socket
    import time

    need = [p for p in ("munged", "slurmctld", "slurmd", "sbatch") if shutil.which(p) is None]
    if need:
        pytest.skip(f"no SLURM here ({', '.join(need)} missing; scripts/test.sh installs slurm-wlm and munge)")
    if os.geteuid() != 0:
        pytest.skip("slurmd must run as root to launch jobs")
    base = Path(tempfile.mkdtemp(prefix="halex-slurm-"))  # short path: the munge socket name must be short
    for d in ("state", "spool"):
        (base / d).mkdir()
    key = base / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    base.chmod(0o755)
    subprocess.run(["munged", "--force", f"--socket={base}/munge.socket", f"--key-file={key}", f"--pid-file={base}/munged.pid",
                    f"--log-file={base}/munged.log", f"--seed-file={base}/munged.seed"], check=True, capture_output=True)
    conf = base / "slurm.conf"
    mem_mb = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * 0.8)
    conf.write_text(_SLURM_CONF.format(host=socket.gethostname().split(".")[0], user=getpass.getuser(), base=base,
                                       ctld_port=_free_port(), d_port=_free_port(), cpus=os.cpu_count() or 1, mem_mb=mem_mb))
    env = dict(os.environ, SLURM_CONF=str(conf))
    try:
        subprocess.run(["slurmctld"], env=env, check=True, capture_output=True)
        subprocess.run(["slurmd"], env=env, check=True, capture_output=True)
        for _ in range(60):  # the node registers within seconds
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout.strip()
            if state == "idle":
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"SLURM node did not come up (state {state!r}):\n" + (base / "slurmctld.log").read_text()[-2000:])
        yield env
    finally:
        subprocess.run(["scancel", "--user", getpass.getuser()], env=env, capture_output=True)
        for name in ("slurmd", "slurmctld", "munged"):
            pid = base / f"{name}.pid"
            if pid.exists():
                try:
                    os.kill(int(pid.read_text()), 15)
                except (ProcessLookupError, ValueError):
                    pass
        time.sleep(1)
        shutil.rmtree(base, ignore_errors=True)
