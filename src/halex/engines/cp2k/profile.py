"""How to launch CP2K on this machine: executable, MPI ranks, OpenMP threads, data dir.

The profile never changes a result, so it is not part of the cache key. Defaults
come from the environment so the same study runs on a laptop or a cluster node:

``HALEX_CP2K_EXE``        executable (default ``cp2k.psmp``)
``HALEX_CP2K_MPI_RANKS``  MPI ranks (default: one per core when ``mpirun`` exists, else 1;
                          measured on 2 cores: 2 ranks × 1 thread is 17 % faster than
                          1 rank × 2 threads for a PbCl2 molecule)
``HALEX_CP2K_THREADS``    OpenMP threads per rank (default: cores / ranks)
``HALEX_CP2K_MPIRUN``     MPI launcher command (default ``mpirun``)
``CP2K_DATA_DIR``         basis-set / pseudopotential directory
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from ase.calculators.genericfileio import BaseProfile

from halex.errors import EngineRunError, EngineUnavailableError, InputError

log = logging.getLogger("halex.cp2k")

__all__ = ["Cp2kProfile", "ProgressWatcher", "find_data_dir"]

_DATA_DIR_CANDIDATES = ("/usr/share/cp2k", "/usr/share/cp2k/data", "/usr/local/share/cp2k", "/opt/cp2k/data")


def find_data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Directory holding ``BASIS_MOLOPT`` and ``GTH_POTENTIALS``."""
    candidates = [explicit] if explicit else [os.environ.get("CP2K_DATA_DIR"), *_DATA_DIR_CANDIDATES]
    for c in candidates:
        if c and (Path(c) / "BASIS_MOLOPT").is_file() and (Path(c) / "GTH_POTENTIALS").is_file():
            return Path(c)
    raise EngineUnavailableError(
        "no CP2K data directory with BASIS_MOLOPT and GTH_POTENTIALS found "
        f"(looked in {', '.join(str(c) for c in candidates if c)}); install Debian's cp2k "
        "package (apt-get install cp2k) or set CP2K_DATA_DIR"
    )


_START = {"atoms": re.compile(r"- Atoms:\s+(\d+)"), "basis": re.compile(r"Number of orbital functions:\s+(\d+)"),
          "electrons": re.compile(r"Number of electrons:\s+(\d+)")}
_SCF = re.compile(r"^\s+(\d+)\s+OT\s+\S+\s+\S+\s+(\S+)\s+(\S+)\s+(-?\d+\.\d+)\s+(\S+)\s*$")


class ProgressWatcher:
    r"""Turns CP2K's output, as it is written, into log lines: what runs, then every SCF step.

    ``feed`` takes any chunk of text; lines are parsed when complete. One start line
    (atoms, orbital functions, electrons, launch) and one line per OT SCF step (energy in
    Hartree, its change, the step's wall time) go to the ``halex.cp2k`` logger, so a long
    DFT run is never silent.

    Examples
    --------
    >>> w = ProgressWatcher("2 MPI ranks")
    >>> w.feed("  - Atoms:   3\n Number of electrons:  18\n Number of orbital functions:  39\n")
    >>> w.feed("     1 OT DIIS     0.80E-01    1.7     0.18738663       -32.4953477900 -3.25E+01\n")
    >>> w.started, w.scf_steps
    (True, 1)
    """

    def __init__(self, launch: str = "") -> None:
        self.launch, self.info, self._partial = launch, {}, ""
        self.started, self.scf_steps = False, 0

    def feed(self, text: str) -> None:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line)

    def _line(self, line: str) -> None:
        for key, pattern in _START.items():
            m = pattern.search(line)
            if m and key not in self.info:
                self.info[key] = int(m.group(1))
        if not self.started and len(self.info) == len(_START):
            self.started = True
            log.info("CP2K: %d atoms, %d orbital functions, %d electrons; %s", self.info["atoms"], self.info["basis"],
                     self.info["electrons"], self.launch)
        m = _SCF.match(line)
        if m:
            self.scf_steps += 1
            step, seconds, _conv, energy, change = m.groups()
            log.info("CP2K SCF step %3d  E = %.8f Ha  ΔE = %s Ha  %s s", int(step), float(energy), change, seconds)
        elif "SCF run converged in" in line:
            log.info("CP2K %s", line.strip(" *"))


class Cp2kProfile(BaseProfile):
    """Launch settings for CP2K (ASE ``BaseProfile``)."""

    def __init__(
        self,
        executable: str | None = None,
        *,
        mpi_ranks: int | None = None,
        threads: int | None = None,
        mpirun: str | None = None,
        data_dir: str | os.PathLike | None = None,
    ) -> None:
        exe = executable or os.environ.get("HALEX_CP2K_EXE", "cp2k.psmp")
        path = shutil.which(exe)
        if path is None:
            raise EngineUnavailableError(
                f"CP2K executable {exe!r} not found on PATH: install it (Debian: apt-get install cp2k) "
                "or point HALEX_CP2K_EXE at it"
            )
        try:
            ncores = os.cpu_count() or 1
            default_ranks = ncores if shutil.which(mpirun or os.environ.get("HALEX_CP2K_MPIRUN", "mpirun")) else 1
            self.mpi_ranks = int(mpi_ranks if mpi_ranks is not None else os.environ.get("HALEX_CP2K_MPI_RANKS", default_ranks))
            self.threads = int(threads if threads is not None else os.environ.get("HALEX_CP2K_THREADS", max(1, ncores // self.mpi_ranks)))
        except ValueError as exc:
            raise InputError(f"invalid CP2K MPI ranks / threads: {exc}") from None
        if self.mpi_ranks < 1 or self.threads < 1:
            raise InputError("CP2K MPI ranks and threads must be >= 1")
        self.executable = path
        self.data_dir = find_data_dir(data_dir)
        launcher: list[str] = []
        if self.mpi_ranks > 1:
            mpi = mpirun or os.environ.get("HALEX_CP2K_MPIRUN", "mpirun")
            launcher = [*shlex.split(mpi), "-np", str(self.mpi_ranks)]
            if hasattr(os, "geteuid") and os.geteuid() == 0 and "mpirun" in mpi:
                launcher.append("--allow-run-as-root")  # Open MPI refuses root otherwise
        super().__init__(command=shlex.join([*launcher, path]))

    def get_calculator_command(self, inputfile: str) -> list[str]:
        return ["-i", inputfile]

    def run(self, directory: Path, inputfile: str | None, outputfile: str, errorfile: str | None = None, append: bool = False) -> None:
        """Run CP2K in ``directory``; its start and every SCF step go to the ``halex.cp2k`` log as they happen."""
        argv = self.get_command(inputfile)
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads))
        directory = Path(directory)
        watch = ProgressWatcher(f"{self.mpi_ranks} MPI rank(s) × {self.threads} thread(s) in {directory}")
        with open(directory / outputfile, "ab" if append else "wb") as out, open(directory / (errorfile or "cp2k.err"), "wb") as err:
            start = out.tell()
            proc = subprocess.Popen(argv, cwd=directory, stdout=out, stderr=err, env=env)
            with open(directory / outputfile, "rb") as tail:
                tail.seek(start)
                while proc.poll() is None:
                    watch.feed(tail.read().decode(errors="replace"))
                    time.sleep(0.5)
                watch.feed(tail.read().decode(errors="replace"))
        if proc.returncode != 0:
            tail = (directory / outputfile).read_text(errors="replace").splitlines()[-15:]
            errtail = (directory / (errorfile or "cp2k.err")).read_text(errors="replace").splitlines()[-5:]
            raise EngineRunError(
                f"CP2K exited with code {proc.returncode} in {directory}:\n" + "\n".join(tail + errtail)
            )

    def version(self) -> str:
        try:
            out = subprocess.run([self.executable, "--version"], capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EngineUnavailableError(f"cannot run {self.executable} --version: {exc}") from None
        for line in out.splitlines():
            if "CP2K version" in line:
                return line.split("CP2K version", 1)[1].strip()
        return "unknown"
