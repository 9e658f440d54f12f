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

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from ase.calculators.genericfileio import BaseProfile

from halex.errors import EngineRunError, EngineUnavailableError, InputError

__all__ = ["Cp2kProfile", "find_data_dir"]

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
        argv = self.get_command(inputfile)
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads))
        directory = Path(directory)
        with open(directory / outputfile, "ab" if append else "wb") as out, open(directory / (errorfile or "cp2k.err"), "wb") as err:
            proc = subprocess.run(argv, cwd=directory, stdout=out, stderr=err, env=env)
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
