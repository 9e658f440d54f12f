"""Single points and relaxations, cached in a :class:`~halex.store.ResultStore`.

:func:`relax` moves all (non-fixed) atoms with an ASE optimizer until the largest
residual force is below ``fmax``; the default, 4.5e-4 Ha/Bohr ≈ 0.0231 eV/Å, is the
criterion of the reference DFT study (SPEC §4). With a store:

* the result is keyed on (structure, engine, task); a repeat is a cache hit;
* a :class:`CheckpointObserver`, attached to the optimizer with its own interval
  (ASE's ``Optimizer.attach(fn, interval)``), writes the current positions, cell and
  optimizer state into the database every ``checkpoint_interval`` steps in one
  transaction (``status="running"``); a rerun after a crash, Ctrl-C or ``kill -9``
  resumes from the last checkpoint;
* the optimizer state is ASE's own restart record (the ``restart=`` file every ASE
  optimizer writes each step and reads back on construction), so FIRE, FIRE2, LBFGS, and
  BFGS and BFGSLineSearch up to :data:`MAX_BFGS_STATE_ATOMS` atoms resume on the path of
  the uninterrupted run (above it their 3N × 3N Hessian is not written every step: they
  resume from the checkpoint's positions with a fresh Hessian). ASE's FIRE restart record omits the mixing parameter ``a`` and
  the count of downhill steps ``Nsteps``, and FIRE's constructor resets the time step
  ``dt`` after reading the record (ASE 3.29); halex records those three public
  attributes next to it (:data:`EXTRA_STATE`) and sets them after construction, which
  the exact resume needs;
* the get-or-compute sequence is :meth:`halex.store.ResultStore.get_or_compute`;
* the trajectory is appended to ``<store>.runs/<key>/relax.traj``.

Progress goes to the ``halex.relax`` logger (one line per step: step, energy,
fmax, seconds); observers ``fn(step, atoms, energy, fmax)`` can be attached, as in
ASE's ``Optimizer.attach``.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms

from halex.checks import check_fmax
from halex.engines import DEFAULT_ENGINE, Engine, get_engine
from halex.errors import InputError
from halex.store import Lookup, ResultStore, StoreEntry, result_key
from halex.units import DEFAULT_FMAX

__all__ = ["relax", "single_point", "RelaxResult", "CheckpointObserver", "OPTIMIZERS", "DEFAULT_FMAX",
           "MAX_BFGS_STATE_ATOMS", "EXTRA_STATE"]

log = logging.getLogger("halex.relax")

OPTIMIZERS = ("FIRE", "FIRE2", "BFGS", "LBFGS", "BFGSLineSearch")
#: BFGS and BFGSLineSearch Hessians (3N × 3N) are checkpointed only up to this many atoms (≈ 16 MB).
MAX_BFGS_STATE_ATOMS = 500
#: Public optimizer attributes that ASE's restart record leaves out but an exact resume needs.
EXTRA_STATE: dict[str, tuple[str, ...]] = {"FIRE": ("dt", "a", "Nsteps"), "FIRE2": ("dt", "a", "Nsteps")}
#: Name of the optimizer's restart file inside the run directory.
RESTART_FILE = "optimizer-restart.json"

Observer = Callable[[int, Atoms, float, float], None]


@dataclass
class RelaxResult:
    """Outcome of :func:`relax` or :func:`single_point`.

    Attributes
    ----------
    atoms : Atoms
        Final structure with a SinglePointCalculator (energy in eV, forces in eV/Å)
        and the per-atom arrays of the input.
    energy : float
        Potential energy (eV).
    fmax : float
        Largest residual force on a free atom (eV/Å).
    nsteps : int
        Optimizer steps taken in total (0 for a single point).
    converged : bool
        ``fmax`` below the requested threshold.
    cached : bool
        The result came from the store without computing.
    resumed_from : int or None
        Step of the checkpoint a resumed relaxation started from.
    key, row_id : str, int or None
        Store key and row id (None without a store).
    engine : dict
        Engine name, version and settings.
    trajectory : Path or None
        ASE trajectory file of the relaxation.
    """

    atoms: Atoms
    energy: float
    fmax: float
    nsteps: int
    converged: bool
    cached: bool = False
    resumed_from: int | None = None
    key: str | None = None
    row_id: int | None = None
    engine: dict[str, Any] = field(default_factory=dict)
    trajectory: Path | None = None


def _fix_mask(atoms: Atoms, fix: Sequence[int] | np.ndarray | None) -> np.ndarray:
    mask = np.zeros(len(atoms), dtype=bool)
    if fix is None:
        return mask
    arr = np.asarray(fix)
    if arr.dtype == bool:
        if arr.shape != (len(atoms),):
            raise InputError(f"fixed-atom mask has {arr.size} entries for {len(atoms)} atoms")
        return arr.copy()
    if arr.size and (arr.dtype.kind not in "iu" or arr.min() < -len(atoms) or arr.max() >= len(atoms)):
        raise InputError(f"fixed-atom indices must be integers in [0, {len(atoms)}), got {arr.tolist()[:10]}")
    mask[arr.astype(int)] = True
    return mask


def _max_force(forces: np.ndarray, mask: np.ndarray) -> float:
    """Largest force (eV/Å) on a free atom, in double precision (engines may return float32)."""
    free = np.asarray(forces, dtype=float)[~mask]
    return float(np.sqrt((free**2).sum(axis=1)).max()) if len(free) else 0.0


def _snapshot(atoms: Atoms, energy: float, forces: np.ndarray) -> Atoms:
    snap = atoms.copy()
    snap.set_constraint()
    snap.calc = SinglePointCalculator(snap, energy=energy, forces=np.array(forces, dtype=float))
    return snap


def _from_row(store: ResultStore, row, engine_info: dict[str, Any]) -> RelaxResult:
    atoms = store.to_atoms(row)
    return RelaxResult(
        atoms=atoms,
        energy=float(row.energy),
        fmax=float(row.get("fmax_final", 0.0)),
        nsteps=int(row.get("step", 0)),
        converged=bool(row.get("converged", True)),
        cached=True,
        key=row.hkey,
        row_id=row.id,
        engine=engine_info,
        trajectory=Path(row.data["trajectory"]) if row.data.get("trajectory") else None,
    )


def _result(store: ResultStore | None, look: Lookup, info: dict[str, Any]) -> RelaxResult:
    """The :class:`RelaxResult` of a store lookup: the stored row, or what was computed."""
    if look.cached:
        row = look.row
        log.info("cache hit: row %d (%s), %d steps, converged=%s", row.id, row.hkey[:12], row.get("step", 0),
                 row.get("converged"))
        return _from_row(store, row, info)
    result = look.entry.result
    result.row_id = look.row_id
    return result


def single_point(
    atoms: Atoms,
    engine: str | Engine = DEFAULT_ENGINE,
    *,
    store: ResultStore | None = None,
    label: str | None = None,
) -> RelaxResult:
    """Energy (eV) and forces (eV/Å) of ``atoms``; cached in ``store`` when given.

    ``atoms`` is not modified.
    """
    eng = get_engine(engine)
    eng.check(atoms)
    info = eng.describe()
    task = {"kind": "energy"}
    key = result_key(atoms, info, task)

    def compute(previous) -> StoreEntry:
        work = atoms.copy()
        work.calc = eng.calculator(store.run_dir(key) / "engine" if store is not None else None)
        energy = float(work.get_potential_energy())
        forces = np.array(work.get_forces())
        snap = _snapshot(atoms, energy, forces)
        fm = _max_force(forces, np.zeros(len(atoms), bool))
        kvp = dict(task="energy", engine=info["name"], engine_version=info["version"], label=label, fmax_final=fm,
                   step=0, converged=True)
        result = RelaxResult(atoms=snap, energy=energy, fmax=fm, nsteps=0, converged=True, key=key, engine=info)
        return StoreEntry(snap, kvp, {"engine": info, "task": task}, result=result)

    look = store.get_or_compute(key, compute) if store is not None else Lookup.computed(compute(None))
    return _result(store, look, info)


@dataclass
class _Options:
    """The checked options of one :func:`relax` call."""

    fmax: float
    optimizer: str
    steps: int
    mask: np.ndarray
    cell: bool
    symmetry: bool
    label: str | None
    checkpoint_interval: int
    observers: Sequence[Observer]
    trajectory: bool


def _check_options(atoms: Atoms, *, fmax: float, optimizer: str, steps: int, fix, cell: bool, symmetry: bool,
                   label: str | None, checkpoint_interval: int, observers: Sequence[Observer],
                   trajectory: bool) -> _Options:
    """Validate the options of :func:`relax` before anything is computed."""
    fmax = check_fmax(fmax)
    if optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise InputError(f"steps must be a non-negative integer, got {steps!r}")
    if not isinstance(checkpoint_interval, (int, np.integer)) or checkpoint_interval < 1:
        raise InputError(f"checkpoint_interval must be a positive integer, got {checkpoint_interval!r}")
    if cell and not np.all(atoms.pbc):
        raise InputError("cell relaxation needs a periodic structure (pbc all True)")
    return _Options(fmax, optimizer, int(steps), _fix_mask(atoms, fix), bool(cell), bool(symmetry), label,
                    int(checkpoint_interval), tuple(observers), bool(trajectory))


def _task(opts: _Options) -> dict[str, Any]:
    """The relaxation's part of the result key."""
    task = {"kind": "relax", "fmax": opts.fmax, "optimizer": opts.optimizer,
            "fixed": np.flatnonzero(opts.mask).tolist(), "cell": opts.cell}
    if opts.symmetry:
        task["symmetry"] = True
    return task


def relax(
    atoms: Atoms,
    engine: str | Engine = DEFAULT_ENGINE,
    *,
    fmax: float = DEFAULT_FMAX,
    optimizer: str = "FIRE",
    steps: int = 1000,
    fix: Sequence[int] | np.ndarray | None = None,
    cell: bool = False,
    symmetry: bool = False,
    store: ResultStore | None = None,
    label: str | None = None,
    checkpoint_interval: int = 1,
    observers: Sequence[Observer] = (),
    trajectory: bool = True,
) -> RelaxResult:
    """Relax ``atoms`` until the largest force on a free atom is below ``fmax``.

    Parameters
    ----------
    atoms
        Start structure; not modified. Per-atom arrays are carried to the result.
    engine
        Engine name (``"mlip"``, ``"cp2k"``) or instance.
    fmax
        Convergence threshold in eV/Å (default 4.5e-4 Ha/Bohr = 0.0231 eV/Å).
    optimizer
        One of :data:`OPTIMIZERS` (ASE optimizers).
    steps
        Maximum number of optimizer steps in total (including resumed ones).
    fix
        Indices (or a boolean mask) of atoms held fixed.
    cell
        Also relax the cell (periodic structures; ASE ``FrechetCellFilter``).
    symmetry
        Keep the space group of the start structure (ASE ``FixSymmetry``, spglib
        tolerance 1e-2 Å); constraints already on ``atoms`` are replaced by
        ``fix``/``symmetry``, which are part of the cache key.
    store
        Result store for caching, checkpoints and the trajectory.
    checkpoint_interval
        Write a checkpoint every this many steps.
    observers
        Callables ``fn(step, atoms, energy_eV, fmax_eV_per_A)`` called every step.
    trajectory
        Keep an ASE trajectory of the path (requires a store).

    Returns
    -------
    RelaxResult
    """
    opts = _check_options(atoms, fmax=fmax, optimizer=optimizer, steps=steps, fix=fix, cell=cell, symmetry=symmetry,
                          label=label, checkpoint_interval=checkpoint_interval, observers=observers,
                          trajectory=trajectory)
    eng = get_engine(engine)
    eng.check(atoms)
    info = eng.describe()
    task = _task(opts)
    key = result_key(atoms, info, task)

    def compute(previous) -> StoreEntry:
        return _minimise(atoms, eng, info, task, key, opts, store, previous)

    def finished(row) -> bool:
        return bool(row.get("converged")) or int(row.get("step", 0)) >= opts.steps

    look = (store.get_or_compute(key, compute, accept=finished) if store is not None
            else Lookup.computed(compute(None)))
    return _result(store, look, info)


@dataclass
class _Start:
    """Where a relaxation starts: the structure, the step count and optimizer state so far."""

    atoms: Atoms
    step: int = 0
    wall_s: float = 0.0
    state: dict[str, Any] = field(default_factory=dict)
    checkpoint_id: int | None = None


def _start_point(atoms: Atoms, key: str, store: ResultStore | None, previous) -> _Start:
    """The last checkpoint of ``key``, else an unfinished earlier result, else ``atoms`` itself."""
    start = _Start(atoms.copy())
    ck = store.find(key, status="running") if store is not None else None
    if ck is None and previous is not None:  # unconverged earlier result: continue from it
        ck = previous
    if ck is None:
        return start
    resumed = store.to_atoms(ck)
    start.atoms.set_positions(resumed.get_positions())
    start.atoms.set_cell(resumed.cell)
    start.step = int(ck.get("step", 0))
    start.wall_s = float(ck.get("wall_s", 0.0))
    if ck.get("status") == "running":
        start.state = dict(ck.data.get("optimizer_state", {}))
        start.checkpoint_id = ck.id
    log.info("resuming %s from step %d (row %d)", key[:12], start.step, ck.id)
    return start


def _restart_file(store: ResultStore | None, key: str, optimizer: str, natoms: int) -> Path | None:
    """Path of the optimizer's restart record, or None where no state is kept."""
    if store is None or (optimizer in ("BFGS", "BFGSLineSearch") and natoms > MAX_BFGS_STATE_ATOMS):
        return None
    return store.run_dir(key) / RESTART_FILE


def _make_optimizer(target, optimizer: str, restart: Path | None, state: dict[str, Any]):
    """An ASE optimizer on ``target``, restored from a checkpoint's ``state`` where there is one."""
    from ase import optimize
    from ase.io.jsonio import write_json

    if restart is not None:
        if "restart" in state:
            with open(restart, "w") as fh:  # the optimizer reads its own record back on construction
                write_json(fh, state["restart"])
        elif restart.exists():
            restart.unlink()  # a record newer than the checkpoint would not match its positions
    opt = getattr(optimize, optimizer)(target, logfile=None, restart=None if restart is None else str(restart))
    for name, value in state.get("extra", {}).items():
        setattr(opt, name, value)
    return opt


def _optimizer_state(opt, optimizer: str, restart: Path | None) -> dict[str, Any]:
    """The optimizer's restart record (as ASE writes it) and :data:`EXTRA_STATE`, for a checkpoint."""
    from ase.io.jsonio import read_json

    if restart is None or not restart.exists():
        return {}
    with open(restart) as fh:
        record = read_json(fh, always_array=False)
    extra = {name: getattr(opt, name) for name in EXTRA_STATE.get(optimizer, ()) if hasattr(opt, name)}
    return {"restart": record, "extra": {k: (v.item() if isinstance(v, np.generic) else v) for k, v in extra.items()}}


def _current_fmax(target, work: Atoms, forces: np.ndarray, opts: _Options) -> float:
    """Largest residual force; with a cell filter the cell degrees of freedom count too, as in ASE."""
    if opts.cell:
        return float(np.sqrt((target.get_forces() ** 2).sum(axis=1)).max())
    return _max_force(forces, opts.mask)


class CheckpointObserver:
    """Optimizer observer that writes the current state into the store as a ``running`` row.

    Attach it with its own interval, as ASE's observers are:
    ``opt.attach(CheckpointObserver(...), interval=n)``. Each call writes the positions,
    cell, energy, forces, step, compute time so far and the optimizer's restart record
    (:func:`_optimizer_state`) in one transaction, overwriting the previous checkpoint
    of the same relaxation. Nothing is written at step 0 or once the forces are below
    ``fmax`` (the finished result is written instead).
    """

    def __init__(self, store: ResultStore, key: str, *, opt, target, work: Atoms, opts: _Options,
                 info: dict[str, Any], task: dict[str, Any], start: _Start, restart: Path | None, t0: float) -> None:
        self.store, self.key, self.opt, self.target, self.work = store, key, opt, target, work
        self.opts, self.info, self.task, self.start, self.restart, self.t0 = opts, info, task, start, restart, t0
        self.row_id = start.checkpoint_id

    def __call__(self) -> None:
        if self.opt.nsteps == 0:
            return
        energy = float(self.work.get_potential_energy())
        forces = self.work.get_forces()
        fm = _current_fmax(self.target, self.work, forces, self.opts)
        if fm < self.opts.fmax:
            return
        kvp = dict(task="relax", engine=self.info["name"], engine_version=self.info["version"], label=self.opts.label,
                   step=self.start.step + self.opt.nsteps, fmax_final=fm, converged=False, fmax_target=self.opts.fmax,
                   wall_s=self.start.wall_s + time.perf_counter() - self.t0)
        data = {"engine": self.info, "task": self.task,
                "optimizer_state": _optimizer_state(self.opt, self.opts.optimizer, self.restart)}
        self.row_id = self.store.write(_snapshot(self.work, energy, forces), key=self.key, status="running",
                                       kvp=kvp, data=data, id=self.row_id)


def _prepare(eng: Engine, key: str, opts: _Options, store: ResultStore | None, start: _Start):
    """The working copy with constraints and calculator, the optimizer target and the optimizer."""
    work = start.atoms.copy()
    constraints = [FixAtoms(mask=opts.mask)] if opts.mask.any() else []
    if opts.symmetry:
        from ase.constraints import FixSymmetry

        constraints.append(FixSymmetry(work, symprec=1e-2))
    work.set_constraint(constraints or None)
    work.calc = eng.calculator(store.run_dir(key) / "engine" if store is not None else None)
    from ase.filters import FrechetCellFilter

    target = FrechetCellFilter(work) if opts.cell else work
    restart = _restart_file(store, key, opts.optimizer, len(work))
    return work, target, _make_optimizer(target, opts.optimizer, restart, start.state), restart


def _minimise(atoms: Atoms, eng: Engine, info: dict[str, Any], task: dict[str, Any], key: str, opts: _Options,
              store: ResultStore | None, previous) -> StoreEntry:
    """Run the optimizer (from the last checkpoint, if any) and return the entry to store."""
    start = _start_point(atoms, key, store, previous)
    work, target, opt, restart = _prepare(eng, key, opts, store, start)
    traj = None
    if opts.trajectory and store is not None:
        from ase.io.trajectory import Trajectory

        # a resumed run continues its trajectory; a run from step 0 starts a new one
        traj = Trajectory(str(store.run_dir(key) / "relax.traj"), "a" if start.step > 0 else "w", work)
        opt.attach(traj.write, interval=1)
    t0 = time.perf_counter()

    def progress() -> None:
        step = start.step + opt.nsteps
        energy = float(work.get_potential_energy())
        fm = _current_fmax(target, work, work.get_forces(), opts)
        log.info("%s step %5d  E = %.6f eV  fmax = %.4f eV/Å  %.1f s", opts.optimizer, step, energy, fm,
                 time.perf_counter() - t0)
        for fn in opts.observers:
            fn(step, work, energy, fm)

    opt.attach(progress, interval=1)
    if store is not None:
        opt.attach(CheckpointObserver(store, key, opt=opt, target=target, work=work, opts=opts, info=info, task=task,
                                      start=start, restart=restart, t0=t0), interval=opts.checkpoint_interval)
    try:
        with warnings.catch_warnings():
            # FrechetCellFilter takes scipy.linalg.logm of the deformation gradient; near the
            # identity scipy warns that the result "may be inaccurate" at the 1e-13 level
            warnings.filterwarnings("ignore", message="logm result may be inaccurate")
            opt.run(fmax=opts.fmax, steps=max(0, opts.steps - start.step))
    finally:
        if traj is not None:
            traj.close()
    return _final_entry(atoms, work, target, info, task, opts, start, start.step + opt.nsteps, time.perf_counter() - t0,
                        traj_path=store.run_dir(key) / "relax.traj" if traj is not None else None, key=key)


def _final_entry(atoms: Atoms, work: Atoms, target, info: dict[str, Any], task: dict[str, Any], opts: _Options,
                 start: _Start, nsteps: int, seconds: float, *, traj_path: Path | None, key: str) -> StoreEntry:
    """The relaxed structure with the input's arrays and info, and the row that records it."""
    energy = float(work.get_potential_energy())
    forces = np.array(work.get_forces())
    fm = _current_fmax(target, work, forces, opts)
    converged = fm < opts.fmax
    final = _snapshot(work, energy, forces)
    for name in atoms.arrays:
        if name not in final.arrays:
            final.new_array(name, np.array(atoms.arrays[name]))
    final.info.update(atoms.info)
    final.info.update(relaxed_with=info["name"], relax_converged=converged, relax_steps=nsteps)
    log.info("%s %s after %d steps: E = %.6f eV, fmax = %.4f eV/Å", opts.optimizer,
             "converged" if converged else "NOT converged", nsteps, energy, fm)
    kvp = dict(task="relax", engine=info["name"], engine_version=info["version"], label=opts.label, step=nsteps,
               fmax_final=fm, converged=converged, fmax_target=opts.fmax, wall_s=start.wall_s + seconds)
    data = {"engine": info, "task": task, "trajectory": str(traj_path) if traj_path else None,
            "initial_positions": atoms.get_positions()}
    result = RelaxResult(atoms=final, energy=energy, fmax=fm, nsteps=nsteps, converged=converged,
                         resumed_from=start.step or None, key=key, engine=info, trajectory=traj_path)
    return StoreEntry(final, kvp, data, result=result)
