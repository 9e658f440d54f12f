"""Options shared by several commands."""

from __future__ import annotations

import argparse
import json
from typing import Any

from halex.errors import InputError


def add_engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default="mlip", help="engine name: mlip (default, CHGNet) or cp2k")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="engine setting, repeatable (e.g. --set cutoff_ry=300); values parsed as JSON")
    p.add_argument("--mpi-ranks", type=int, default=None, help="cp2k: MPI ranks (launch profile)")
    p.add_argument("--threads", type=int, default=None, help="threads per process (cp2k: OpenMP; mlip: PyTorch)")
    p.add_argument("--db", default=None, help="result store: SQLite file or postgresql:// URL (default $HALEX_DB, else ./halex.db)")


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    """Batch jobs on an HPC queue (:mod:`halex.studies.cluster`); ``--workers`` is the number of jobs."""
    p.add_argument("--cluster", default=None, metavar="{slurm,pbs}",
                   help="submit the relaxations as batch jobs of this queue system (dask-jobqueue): --workers jobs of "
                        "--cores cores each, one relaxation at a time per job")
    p.add_argument("--cores", type=int, default=None, help="--cluster: cores per job (default 1); cp2k runs one MPI rank per core")
    p.add_argument("--memory", default=None, help="--cluster: memory per job, e.g. 64GB (default 4GB per core)")
    p.add_argument("--walltime", default=None, help="--cluster: wall-clock limit per job, HH:MM:SS (default 24:00:00)")
    p.add_argument("--queue", default=None, help="--cluster: partition (SLURM) or queue (PBS) (default: the system's default)")


def job_spec(args: argparse.Namespace):
    """The :class:`~halex.studies.cluster.JobSpec` of ``--cluster …``, or None without ``--cluster``."""
    if args.cluster is None:
        given = [o for o in ("cores", "memory", "walltime", "queue") if getattr(args, o) is not None]
        if given:
            raise InputError(f"--{', --'.join(given)} only apply to batch jobs: add --cluster slurm|pbs")
        return None
    from pathlib import Path

    from halex.studies.cluster import check_job_spec, check_one_cluster

    check_one_cluster(getattr(args, "scheduler", None), args.cluster)

    logs = Path(args.output) / "jobs" if getattr(args, "output", None) else None  # each job's stdout/stderr
    return check_job_spec(args.cluster, args.cores, args.memory, args.walltime, args.queue, args.workers,
                          str(logs) if logs else None)


def parse_settings(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"engine setting {item!r} must look like KEY=VALUE")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def allocated_cores() -> int:
    """Cores this command may use: inside a batch allocation its task count (``SLURM_NTASKS``,
    ``PBS_NP``; an MPI run may span nodes), else this machine's."""
    import os

    for var in ("SLURM_NTASKS", "PBS_NP"):
        try:
            n = int(os.environ.get(var, ""))
        except ValueError:
            continue
        if n > 0:
            return max(n, os.cpu_count() or 1)
    return os.cpu_count() or 1


def make_engine(args: argparse.Namespace, cores: int | None = None):
    """The engine of ``--engine/--set/--mpi-ranks/--threads``, launch profile included.

    ``cores``: the cores each relaxation gets (a batch job's ``--cores``; default this
    machine's). More MPI ranks × threads than that is refused; on a batch job CP2K runs
    one rank per core unless told otherwise.
    """

    from halex.engines import get_engine

    settings = parse_settings(args.settings)
    if args.mpi_ranks is not None and args.mpi_ranks < 1 or args.threads is not None and args.threads < 1:
        raise InputError("--mpi-ranks and --threads must be >= 1")
    have = cores or allocated_cores()
    if (args.mpi_ranks or 1) * (args.threads or 1) > have:
        raise InputError(f"--mpi-ranks {args.mpi_ranks or 1} × --threads {args.threads or 1} is more than the "
                         f"{have} core(s) {'of each job (--cores)' if cores else 'here'}: use fewer")
    if args.engine == "cp2k":
        from halex.engines.cp2k import Cp2kProfile

        ranks = args.mpi_ranks or (cores // (args.threads or 1) if cores else None)
        return get_engine("cp2k", profile=Cp2kProfile(mpi_ranks=ranks, threads=args.threads or (1 if cores else None)),
                          **settings) if (ranks or args.threads) else get_engine("cp2k", **settings)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return get_engine(args.engine, **settings)


def open_store(url: str | None):
    """The result store at ``url``, or the default one (:func:`halex.store.default_store_url`)."""
    from halex.store import ResultStore, default_store_url

    return ResultStore(url or default_store_url())


def output_path(kind: str):
    """argparse ``type=`` for ``-o/--output``: the path is checked (:func:`halex.io.check_output`)
    while the command line is parsed, before anything is computed."""
    def check(text: str) -> str:
        from halex.errors import HalexError
        from halex.io import check_output

        try:
            check_output(text, kind)
        except HalexError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    check.__name__ = f"{kind} path"
    return check


def add_json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout (for scripts)")


def report(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    """The result on stdout: ``lines`` for a person, or ``data`` as JSON with ``--json``."""
    if getattr(args, "json", False):
        from halex.io import json_safe

        print(json.dumps(json_safe(data), indent=1))
    else:
        print("\n".join(lines))


#: optimizer steps a relaxation from a built geometry typically takes (the default model's
#: starts from the built geometry took 224–420 FIRE steps, benchmarks/results/bench_study.md):
#: ``halex relax``'s plan
TYPICAL_STEPS = 300
#: optimizer steps a study relaxation takes on average with warm-started replica chains (the
#: default-size ``study all``: 100 FIRE steps over 84 relaxations, benchmarks/results/bench_study.md):
#: a study plan's estimate when the store has no earlier study relaxations of similar size
TYPICAL_STUDY_STEPS = 100


#: optimizer steps a pathway training relaxation takes (random Cl/I occupations warm-started
#: from the relaxed pristine particle: median 267, 94–373 FIRE steps over 17 configurations of
#: the default heterostructure): a pathway plan's estimate without earlier ones in the store
TYPICAL_PATHWAY_STEPS = 270
#: which store rows price which plan: label prefix, prefixes left out, and the fallback steps
_STEP_SOURCES = {"study": ("study ", ("study pathway-",), TYPICAL_STUDY_STEPS),
                 "pathway": ("study pathway-", (), TYPICAL_PATHWAY_STEPS)}


def relaxation_history(db_url: str, engine_name: str, *, kind: str = "study") -> list[tuple[int, int, float | None]]:
    """``(atoms, steps, wall seconds or None)`` of every finished, converged relaxation of ``kind``
    (study steps, or pathway training configurations, told apart by their labels) in the store
    with this engine, read in one pass: what :func:`steps_estimate` and
    :func:`step_seconds_estimate` price a plan from. Empty for a store that does not exist (which
    is not created) or cannot be read: the command itself reports that."""
    from pathlib import Path

    prefix, skip, _ = _STEP_SOURCES[kind]
    if "://" not in db_url and not Path(db_url).is_file():
        return []
    try:
        from ase.db import connect

        rows = connect(db_url).select(task="relax", engine=engine_name, status="done", converged=True)
        return [(r.natoms, r.get("step"), r.get("wall_s")) for r in rows if r.get("step") is not None
                and str(r.get("label", "")).startswith(prefix) and not str(r.get("label", "")).startswith(skip)]
    except Exception:
        return []


def _near(history: list, n_atoms: int) -> list:
    """The relaxations in ``history`` of models with 0.5–2 × ``n_atoms`` atoms."""
    return [h for h in history if 0.5 * n_atoms <= h[0] <= 2 * n_atoms]


def steps_estimate(history: list, n_atoms: int, *, kind: str = "study") -> tuple[int, str]:
    """Optimizer steps to price a study (or pathway) relaxation at, and where the number comes from.

    The median step count of the relaxations in ``history`` (from :func:`relaxation_history`
    with the same ``kind`` and engine) on models of 0.5–2 × ``n_atoms`` atoms, when there are
    at least 5 of them; else :data:`TYPICAL_STUDY_STEPS` or :data:`TYPICAL_PATHWAY_STEPS`.
    """
    import numpy as np

    steps = [h[1] for h in _near(history, n_atoms)]
    if len(steps) < 5:
        return _STEP_SOURCES[kind][2], "typical"
    return int(np.median(steps)), f"median of {len(steps)} earlier {kind} relaxations in the store"


def step_seconds_estimate(history: list, n_atoms: int) -> float | None:
    """Seconds per optimizer step of an ``n_atoms`` model as measured on the relaxations in
    ``history`` (from :func:`relaxation_history`) of models with 0.5–2 × ``n_atoms`` atoms
    (median of wall time per step, scaled linearly by atoms), when there are at least 5 with a
    recorded wall time; else None (use the cost model).

    The measured time includes the conditions those relaxations ran under (workers, threads),
    which is what a rerun on the same machine meets; the engine's cost model is a generic bound.
    """
    import numpy as np

    per = [float(wall) / steps * n_atoms / atoms for atoms, steps, wall in _near(history, n_atoms) if wall and steps]
    return float(np.median(per)) if len(per) >= 5 else None


def add_yes_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--yes", action="store_true", help="run even when the plan says the run is heavy for this machine")


def plan(args: argparse.Namespace, engine, atoms, *, what: str, calls: int) -> None:
    """Say what a command will compute and what it will cost, before it starts; refuse a heavy run without --yes.

    The estimate is the engine's cost model (:meth:`halex.engines.Engine.cost`, documented
    in docs/engines.md) times the number of energy + forces calls.
    """
    import logging

    from halex.io import format_duration

    cost = engine.cost(atoms)
    log = logging.getLogger("halex.plan")
    if cost is None:
        log.info("plan: %s, %d atoms with %s (no cost model for this engine)", what, len(atoms), engine.name)
        return
    total = cost.seconds * calls
    log.info("plan: %s with %s (%s): ≈ %s per energy+forces call, ≈ %s for %d call%s; peak memory ≈ %.1f GB",
             what, engine.name, cost.detail, format_duration(cost.seconds), format_duration(total), calls, "s" * (calls > 1),
             cost.memory_GB)
    if cost.heavy and not getattr(args, "yes", False):
        raise InputError(f"this {what} is heavy for this machine: ≈ {format_duration(total)} and ≈ {cost.memory_GB:.1f} GB of "
                         f"memory by the cost model ({cost.detail}); run it on a cluster (docs/studies.md, cluster runs), "
                         "make the model or the settings smaller, or add --yes to run it here")
