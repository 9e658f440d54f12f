"""Relaxations on an HPC queue: one Dask worker per batch job, through dask-jobqueue.

``halex study … --cluster slurm`` (or ``pbs``) submits ``--workers`` batch jobs, each
asking for ``--cores`` cores, ``--memory`` and ``--walltime`` (on ``--queue``). Each job runs
one Dask worker that takes **one relaxation at a time** and gives it all of the job's cores:
CP2K as ``--mpi-ranks`` MPI ranks (default: one per core) × ``--threads`` OpenMP threads,
which the engine's launch profile carries to the worker. The study's client, in the
terminal that started it, submits the relaxations and collects them as they finish; the
results land in the shared store (``--db``), so a job killed at its walltime loses nothing
that had finished and a rerun resumes.

Why one task per job: a DFT relaxation already uses every core of its job through MPI, so
Dask's default of one task per core would start ``cores`` CP2K runs of ``cores`` ranks each.
The job therefore books ``cores`` CPUs from the queue system (``job_cpu`` on SLURM,
``resource_spec`` on PBS) while its worker has one thread.

The cluster object is dask-jobqueue's (:class:`dask_jobqueue.SLURMCluster`,
:class:`dask_jobqueue.PBSCluster`, BSD-3); halex only translates the options and checks them
before anything is submitted.
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass

from halex.errors import InputError

__all__ = ["QUEUE_SYSTEMS", "JobSpec", "check_job_spec", "check_one_cluster", "cluster_kwargs", "for_engine", "start_cluster"]

log = logging.getLogger("halex.study")

#: Queue systems ``--cluster`` accepts, with their dask-jobqueue cluster class.
QUEUE_SYSTEMS = {"slurm": "SLURMCluster", "pbs": "PBSCluster"}

_WALLTIME = re.compile(r"^(\d+-)?\d{1,3}:\d{2}(:\d{2})?$")


@dataclass(frozen=True)
class JobSpec:
    """What each batch job asks the queue system for.

    Attributes
    ----------
    system
        ``"slurm"`` or ``"pbs"``.
    cores
        CPU cores per job (all of them serve one relaxation at a time).
    memory
        Memory per job, e.g. ``"64GB"`` (Dask's byte-string syntax).
    walltime
        Wall-clock limit per job, ``[D-]HH:MM[:SS]``.
    queue
        Partition (SLURM) or queue (PBS); None: the system's default.
    jobs
        Batch jobs (= Dask workers) to submit.
    log_directory
        Where the jobs write their standard output and error (None: the queue system's default).
    mpi_ranks
        MPI ranks each relaxation launches (the engine's launch profile; 1 for an in-process
        engine). The job books them as tasks, ``cores // mpi_ranks`` CPUs each, so that
        ``mpirun`` inside the job finds its slots.
    """

    system: str
    cores: int
    memory: str
    walltime: str
    queue: str | None = None
    jobs: int = 1
    log_directory: str | None = None
    mpi_ranks: int = 1


def check_job_spec(system: str, cores: int | None, memory: str | None, walltime: str | None,
                   queue: str | None = None, jobs: int | None = None, log_directory: str | None = None) -> JobSpec:
    """Validate the job options; raise :class:`~halex.errors.InputError` with what to fix.

    ``cores`` defaults to 1, ``memory`` to 4 GB per core, ``walltime`` to 24:00:00 and
    ``jobs`` to 1.
    """
    from dask.utils import parse_bytes

    if system not in QUEUE_SYSTEMS:
        raise InputError(f"unknown queue system --cluster {system!r}; choose one of {', '.join(QUEUE_SYSTEMS)}")
    cores = 1 if cores is None else cores
    jobs = 1 if jobs is None else jobs
    if cores < 1 or jobs < 1:
        raise InputError(f"--cores and --workers (batch jobs) must be >= 1, got {cores} and {jobs}")
    memory = memory or f"{4 * cores}GB"
    try:
        if parse_bytes(memory) <= 0:
            raise ValueError
    except (ValueError, TypeError):
        raise InputError(f"--memory {memory!r} is not an amount of memory; write it like 16GB or 500MB") from None
    walltime = walltime or "24:00:00"
    if not _WALLTIME.match(walltime):
        raise InputError(f"--walltime {walltime!r} must look like HH:MM:SS (or D-HH:MM:SS)")
    _cluster_class(system)  # dask-jobqueue installed: refused now, before any model is built
    return JobSpec(system, cores, memory, walltime, queue, jobs, log_directory)


def check_one_cluster(scheduler: str | None, jobs) -> None:
    """Refuse batch jobs (``jobs``) together with a running cluster's ``scheduler``."""
    if scheduler and jobs is not None:
        raise InputError("give either --cluster (halex submits the jobs) or --scheduler (a running cluster), not both")


def _cluster_class(system: str):
    try:
        import dask_jobqueue
    except ImportError:
        raise InputError("--cluster needs dask-jobqueue: pip install 'halex[cluster]' (or start the cluster "
                         "yourself and pass --scheduler)") from None
    return getattr(dask_jobqueue, QUEUE_SYSTEMS[system])


def cluster_kwargs(spec: JobSpec) -> dict:
    """The dask-jobqueue keyword arguments for ``spec``: one single-threaded worker per job
    that books ``spec.cores`` CPUs (see the module notes)."""
    import dask

    from halex.studies.runner import worker_environ_export

    # the site's own prologue (module loads, conda activation) first, then no glibc trim threshold;
    # dask-jobqueue's precedence: job-script-prologue, else the deprecated env-extra
    site = f"jobqueue.{spec.system}"
    prologue = list(dask.config.get(f"{site}.job-script-prologue", None) or dask.config.get(f"{site}.env-extra", None) or [])
    kw = dict(cores=1, processes=1, memory=spec.memory, walltime=spec.walltime, queue=spec.queue,
              python=sys.executable, job_name="halex", log_directory=spec.log_directory,
              scheduler_options={"dashboard_address": ":0"}, job_script_prologue=prologue + worker_environ_export())
    per_rank = max(1, spec.cores // spec.mpi_ranks)
    if spec.system == "slurm" and spec.mpi_ranks == 1:
        kw["job_cpu"] = spec.cores
    elif spec.system == "slurm":  # MPI ranks are SLURM tasks, or mpirun finds one slot
        kw["job_directives_skip"] = ["-n 1", "--cpus-per-task"]
        kw["job_extra_directives"] = [f"--ntasks={spec.mpi_ranks}", f"--cpus-per-task={per_rank}"]
    else:  # PBS Pro / OpenPBS select syntax
        kw["resource_spec"] = (f"select=1:ncpus={spec.cores}:mpiprocs={spec.mpi_ranks}:ompthreads={per_rank}"
                               f":mem={spec.memory}")
    return kw


def for_engine(spec: JobSpec, engine) -> JobSpec:
    """``spec`` with the MPI ranks of ``engine``'s launch profile (1 for an engine without one)."""
    from dataclasses import replace

    ranks = int(getattr(getattr(engine, "profile", None), "mpi_ranks", 1) or 1)
    if ranks > spec.cores:
        raise InputError(f"the engine launches {ranks} MPI ranks, more than the {spec.cores} core(s) of each job (--cores)")
    return replace(spec, mpi_ranks=ranks)


def start_cluster(spec: JobSpec):
    """Start a dask-jobqueue cluster for ``spec`` and submit its jobs; return the cluster.

    The job script is logged so that what was submitted is on record. Jobs may wait in the
    queue: relaxations start as workers arrive. Close the cluster to cancel the jobs.
    """
    from halex.studies.runner import quiet_dask

    cls = _cluster_class(spec.system)
    quiet_dask()
    try:
        cluster = cls(**cluster_kwargs(spec))
    except (OSError, RuntimeError) as exc:
        raise InputError(f"cannot start a {spec.system} cluster ({exc}): is the queue system's client "
                         f"({'sbatch' if spec.system == 'slurm' else 'qsub'}) on PATH and its configuration readable?") from None
    log.info("[cluster] %d %s job(s) of %d core(s), %s, %s; job script:\n%s", spec.jobs, spec.system, spec.cores,
             spec.memory, spec.walltime, cluster.job_script())
    cluster.scale(jobs=spec.jobs)
    return cluster
