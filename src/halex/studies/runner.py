"""Run many independent relaxations: inline, on a local Dask cluster, or on any Dask cluster.

Every relaxation goes through :func:`halex.relax.relax` with a :class:`~halex.store.ResultStore`
opened from its URL inside the worker, so results land in the one shared store as they
finish: a rerun (or a run after a crash or Ctrl-C) finds them there and recomputes
nothing; an interrupted relaxation resumes from its last checkpoint.

Dask (``distributed``) is used when more than one worker is asked for or a scheduler
address is given. A local cluster gets one single-threaded worker process per core by
default (Dask's nanny sets ``OMP_NUM_THREADS=1`` in each worker, so PyTorch does not
oversubscribe the cores). For an HPC allocation start the cluster with dask-jobqueue,
e.g. ``SLURMCluster(cores=16, processes=1, memory="64GB")`` with ``cluster.scale(jobs=8)``,
and pass ``cluster.scheduler_address`` (or ``--scheduler tcp://host:8786``). Failed tasks
are retried (``retries``); tasks that still fail are reported and the others are kept.

Progress: the client logs one line per finished task (tasks done / total) and, from the
Dask workers, one line every ``progress_every`` optimizer steps of each running
relaxation (step, energy, fmax). The workers send these as Dask events on the
``halex-progress`` topic (``Worker.log_event``); the client subscribes to it, so the
lines appear in the terminal that runs the study whether the workers are local
processes or jobs on an HPC allocation. Inline runs log every step through
:mod:`halex.relax`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ase import Atoms

from halex.errors import EngineRunError, InputError

__all__ = ["RelaxTask", "TaskResult", "run_relaxations", "connect", "LazyClient", "lazy_client"]

log = logging.getLogger("halex.study")

PROGRESS_TOPIC = "halex-progress"


@dataclass(frozen=True)
class RelaxTask:
    """One relaxation a study needs.

    Attributes
    ----------
    name
        Unique within the study.
    atoms
        The model as built (its species, arrays and, without parents, its start geometry).
    parents
        Names of earlier tasks: the start is the relaxed geometry of the lowest-energy one
        of them with this model's species (:func:`~halex.studies.starts.warm_start`). Empty:
        start from ``atoms``.
    replica
        Replica number: > 0 adds the seeded replica displacement to the start
        (:func:`~halex.studies.starts.replica_start`).
    origin
        Where ``atoms``' geometry came from when it is not the built one and not a parent task
        (e.g. a model relaxed by an earlier study); recorded as the result's ``parent``.
    """

    name: str
    atoms: Atoms
    parents: tuple[str, ...] = ()
    replica: int = 0
    origin: str | None = None


@dataclass
class TaskResult:
    """What a study keeps of one relaxation."""

    name: str
    atoms: Atoms
    energy: float
    nsteps: int
    converged: bool
    cached: bool
    row_id: int | None
    seconds: float
    parent: str | None = None  # the parent task or other origin of the start; None: the built geometry


def _worker_progress(name: str, every: int):
    """An observer that sends every ``every``-th step to the client as a Dask event (None outside a worker)."""
    if every <= 0:
        return None
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not running inside a Dask worker
        return None

    def observer(step: int, atoms: Atoms, energy: float, fmax: float) -> None:
        if step % every == 0:
            worker.log_event(PROGRESS_TOPIC, {"name": name, "step": int(step), "energy": float(energy),
                                              "fmax": float(fmax), "natoms": len(atoms)})

    return observer


def _start(task: RelaxTask, parents: Sequence[TaskResult]) -> tuple[Atoms, str | None]:
    """The start structure of ``task`` and the name of the parent it was warmed from (None: cold)."""
    from halex.studies.starts import replica_start, warm_start

    atoms, parent = task.atoms, task.origin
    if parents:
        best = min(parents, key=lambda r: r.energy)
        atoms, parent = warm_start(task.atoms, best.atoms), best.name
    return replica_start(atoms, task.replica), parent


def _relax_one(task: RelaxTask, engine, store_url: str, fmax: float, steps: int, optimizer: str = "FIRE",
               progress_every: int = 0, *parents: TaskResult) -> TaskResult:
    """Worker side: the start (warm from ``parents``), the store, relax; return the result (picklable).

    ``engine`` is the engine object itself (settings and launch profile travel with it).
    """
    from halex.relax import relax
    from halex.store import ResultStore

    t0 = time.perf_counter()
    atoms, parent = _start(task, parents)
    obs = _worker_progress(task.name, progress_every)
    r = relax(atoms, engine, fmax=fmax, steps=steps, optimizer=optimizer, store=ResultStore(store_url),
              label=f"study {task.name}", observers=(obs,) if obs else ())
    return TaskResult(task.name, r.atoms, r.energy, r.nsteps, r.converged, r.cached, r.row_id,
                      time.perf_counter() - t0, parent)


#: What Dask's nanny must not set in the worker processes it starts. Its default
#: ``distributed.nanny.pre-spawn-environ`` sets ``MALLOC_TRIM_THRESHOLD_=65536``; any explicit
#: trim threshold switches off glibc's adaptive mmap threshold, so every tensor above
#: 128 KiB that CHGNet allocates and frees is a fresh mmap and munmap, with its pages
#: faulted in again on each call: a relaxation step in a worker took 2.4–2.5× as long as
#: without it (``benchmarks/bench_workers.py``; docs/studies.md, "Worker memory settings").
#: ``None`` unsets a variable in that config.
WORKER_ENV_UNSET: tuple[str, ...] = ("MALLOC_TRIM_THRESHOLD_",)


def worker_environ_config() -> dict[str, None]:
    """The Dask config that keeps :data:`WORKER_ENV_UNSET` out of the workers a nanny starts
    here (use it in ``dask.config.set`` around the cluster's creation)."""
    return {f"distributed.nanny.pre-spawn-environ.{name}": None for name in WORKER_ENV_UNSET}


def worker_environ_export() -> list[str]:
    """The same as shell lines for a batch job's script: unset in the job (a queue may copy the
    submitting shell's environment) and kept out by the nanny on the compute node (Dask's
    ``DASK_*`` variables; the dict is merged with the defaults)."""
    unset = ", ".join(f"'{name}': None" for name in WORKER_ENV_UNSET)
    return [f"unset {' '.join(WORKER_ENV_UNSET)}", f'export DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON="{{{unset}}}"']


def connect(scheduler: str | None, workers: int | None):
    """A Dask client: to ``scheduler`` if given, else a new local cluster with ``workers`` processes."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("parallel studies need Dask: pip install -e '.[parallel]' (or run with --workers 1)") from None
    if scheduler:
        try:
            return Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler!r} ({exc}): check the address and that it runs") from None
    n = workers or os.cpu_count() or 1
    quiet_dask()
    import dask

    # the config is read when each nanny is created, here; a nanny also copies its settings into
    # this process's environment before it spawns (so an earlier Dask cluster in this process
    # leaves the threshold behind), and a worker inherits that environment: keep it out meanwhile
    saved = {name: os.environ.pop(name) for name in WORKER_ENV_UNSET if name in os.environ}
    try:
        with dask.config.set(worker_environ_config()):
            # ":0": the dashboard on a free port; None means 8787, and a second study on the
            # same machine then warns that the port is in use
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0")
    finally:
        os.environ.update(saved)
    return Client(cluster)


def quiet_dask(level: str | None = None) -> None:
    """Dask's own log lines (cluster start, worker registration, shutdown) only at warning level.

    The level is set in this process, and the worker processes a local cluster starts log
    errors only (``DASK_LOGGING__DISTRIBUTED``); ``halex -v`` shows everything at info level.
    """
    import logging

    verbose = logging.getLogger().level <= logging.DEBUG
    level = level or ("info" if verbose else "warning")
    # workers: errors only (a cluster stopped mid-task reports each cancelled task as a warning)
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", level if verbose else "error")
    for name in ("distributed", "dask", "tornado", "bokeh"):
        logging.getLogger(name).setLevel(level.upper())


class LazyClient:
    """A Dask client that is created on first use (:meth:`get`), then reused.

    A study validates all of its input and builds its models before the first
    relaxation, so with a lazy client a bad input fails before any cluster process
    starts (and nothing has to be torn down). :meth:`close` closes the client and the
    local cluster it started, if any.
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None, jobs=None,
                 threads: int | None = None) -> None:
        self.scheduler, self.workers, self.jobs, self.threads = scheduler, workers, jobs, threads
        self._client = None

    def get(self):
        """The :class:`distributed.Client` (connecting, or starting the cluster or its batch jobs, now if needed)."""
        if self._client is None:
            threads = self.threads
            if self.jobs is not None:
                from distributed import Client

                from halex.studies.cluster import start_cluster

                self._client = Client(start_cluster(self.jobs))
                threads = threads or max(1, self.jobs.cores // self.jobs.mpi_ranks)
            else:
                self._client = connect(self.scheduler, self.workers)
            if threads:  # the workers' threads, not only this process's (Dask's nanny gives each one 1)
                from halex.studies.job_threads import JobThreads

                self._client.register_plugin(JobThreads(threads))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            cluster = getattr(self._client, "cluster", None)
            self._client.close()
            if cluster is not None and not self.scheduler:
                cluster.close()
            self._client = None


def lazy_client(scheduler: str | None, workers: int | None, jobs=None, threads: int | None = None) -> LazyClient | None:
    """The client a command runs its relaxations with: None for one local worker (inline);
    else a :class:`LazyClient` (``workers`` None: one per core). A given scheduler is
    reached now, so an unreachable one fails before anything is computed or written.
    ``jobs`` (a :class:`~halex.studies.cluster.JobSpec`): batch jobs on a queue system,
    submitted with the first relaxation and cancelled by :meth:`LazyClient.close`.
    ``threads``: each worker's thread count (``OMP_NUM_THREADS``, PyTorch), default 1 on a
    local cluster and the job's cores per MPI rank on batch jobs."""
    if jobs is not None:
        from halex.studies.cluster import check_one_cluster

        check_one_cluster(scheduler, jobs)
        return LazyClient(jobs=jobs, threads=threads)
    if not scheduler and workers == 1:
        return None
    client = LazyClient(scheduler, workers, threads=threads)
    if scheduler:
        client.get()
    return client


def _check_tasks(tasks: Sequence[RelaxTask]) -> None:
    """Unique names, and every parent an earlier task (so the tasks run in the order given)."""
    seen: set[str] = set()
    for t in tasks:
        if t.name in seen:
            raise InputError(f"study task names must be unique ({t.name!r} twice)")
        missing = [p for p in t.parents if p not in seen]
        if missing:
            raise InputError(f"task {t.name!r} warm-starts from {', '.join(missing)}, which must come before it")
        seen.add(t.name)


def run_relaxations(
    tasks: Sequence[RelaxTask],
    engine,
    store_url: str,
    *,
    fmax: float,
    steps: int = 1000,
    optimizer: str = "FIRE",
    client=None,
    retries: int = 1,
    progress_every: int = 10,
) -> tuple[dict[str, TaskResult], dict[str, str]]:
    """Relax every task; return ({name: result}, {name: error message of failed tasks}).

    A task with ``parents`` starts when they have finished, from the relaxed geometry of the
    lowest of them (a warm start); tasks without a common ancestry run concurrently. With
    ``client`` (a :class:`distributed.Client` or a :class:`LazyClient`) the tasks run on its
    workers (a child is submitted with its parents' futures, so Dask starts it as soon as
    they are done), else one after the other in this process. The engine object itself
    goes to the workers, so its settings and launch profile are the ones used there. One
    log line per finished task: tasks done / total, energy, steps, whether it came from the
    store, and an ETA; with a client also one line every ``progress_every`` steps of each
    running relaxation (0: none). A task whose parent failed fails too.
    """
    from halex.engines import get_engine

    _check_tasks(tasks)
    eng = get_engine(engine)
    done: dict[str, TaskResult] = {}
    failed: dict[str, str] = {}
    total = len(tasks)
    t_start = time.perf_counter()

    def _report(res: TaskResult) -> None:
        done[res.name] = res
        finished = len(done) + len(failed)
        computed = sum(not r.cached for r in done.values()) + len(failed)
        log.info("[study] %d/%d done: %s  E = %.4f eV  %d steps%s%s  %.0f s%s", finished, total, res.name,
                 res.energy, res.nsteps, f" (warm from {res.parent})" if res.parent else "",
                 " (from the store)" if res.cached else "", res.seconds,
                 _eta(time.perf_counter() - t_start, computed, total - finished))

    if client is None:
        for t in tasks:
            _run_inline(t, eng, store_url, fmax, steps, optimizer, retries, done, failed, _report)
        return done, failed
    _run_dask(tasks, eng, store_url, fmax, steps, optimizer, retries, progress_every, client, done, failed, _report)
    return done, failed


def _run_inline(t: RelaxTask, eng, store_url: str, fmax: float, steps: int, optimizer: str, retries: int,
                done: dict, failed: dict, report: Callable[[TaskResult], None]) -> None:
    """One task in this process, retried ``retries`` times; a failed parent fails it at once."""
    lost = [p for p in t.parents if p not in done]
    if lost:
        failed[t.name] = f"its parent {', '.join(lost)} failed"
        return
    for attempt in range(retries + 1):
        try:
            report(_relax_one(t, eng, store_url, fmax, steps, optimizer, 0, *(done[p] for p in t.parents)))
            return
        except (KeyboardInterrupt, InputError):
            raise
        except Exception as exc:  # reported, retried, then kept as a failure
            log.warning("[study] %s failed (attempt %d/%d): %s", t.name, attempt + 1, retries + 1, exc)
            if attempt == retries:
                failed[t.name] = f"{type(exc).__name__}: {exc}"


def _run_dask(tasks: Sequence[RelaxTask], eng, store_url: str, fmax: float, steps: int, optimizer: str, retries: int,
              progress_every: int, client, done: dict, failed: dict, report: Callable[[TaskResult], None]) -> None:
    """Submit every task (children with their parents' futures) and collect them as they finish."""
    from distributed import as_completed

    if isinstance(client, LazyClient):
        client = client.get()

    def _progress(event) -> None:
        msg = event[1]
        log.info("[study] %s (%d atoms): step %d  E = %.4f eV  fmax = %.4f eV/Å", msg["name"], msg["natoms"],
                 msg["step"], msg["energy"], msg["fmax"])

    if progress_every > 0:
        client.subscribe_topic(PROGRESS_TOPIC, _progress)
    try:
        by_name: dict[str, Any] = {}
        for t in tasks:
            by_name[t.name] = client.submit(_relax_one, t, eng, store_url, fmax, steps, optimizer, progress_every,
                                            *(by_name[p] for p in t.parents), key=f"halex-{t.name}-{id(t)}",
                                            retries=retries, pure=False)
        names = {fut.key: name for name, fut in by_name.items()}
        for fut in as_completed(list(by_name.values())):
            name = names[fut.key]
            try:
                report(fut.result())
            except Exception as exc:
                failed[name] = f"{type(exc).__name__}: {exc}"
                log.warning("[study] %d/%d FAILED: %s: %s", len(done) + len(failed), len(tasks), name, exc)
    finally:
        if progress_every > 0:
            client.unsubscribe_topic(PROGRESS_TOPIC)


def _eta(elapsed_s: float, computed: int, remaining: int) -> str:
    """``"; ETA 3 min"``: the wall time so far per task *computed* so far, times the tasks left.

    Results served from the store cost nothing, so they are not counted: a resumed study whose
    first results are cache hits would otherwise promise to finish in seconds. Empty when
    nothing is left or nothing has been computed yet.

    Examples
    --------
    >>> _eta(300.0, 2, 4), _eta(0.5, 0, 70), _eta(10.0, 3, 0)
    ('; ETA 10 min', '', '')
    """
    if remaining <= 0 or computed <= 0:
        return ""
    from halex.io import format_duration

    return f"; ETA {format_duration(elapsed_s / computed * remaining)}"


def raise_failures(failed: dict[str, str]) -> None:
    """Raise one :class:`EngineRunError` naming every failed task (results of the others are stored)."""
    if failed:
        lines = "; ".join(f"{k}: {v}" for k, v in failed.items())
        raise EngineRunError(f"{len(failed)} relaxation(s) failed after retries ({lines}); the finished ones are in the "
                             "store, rerun the same command to retry only these")
