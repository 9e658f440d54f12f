"""Single points and relaxations, cached in a :class:`~halex.store.ResultStore`.

:func:`relax` moves all (non-fixed) atoms with an ASE optimizer until the largest
residual force is below ``fmax``; the default, 4.5e-4 Ha/Bohr ≈ 0.0231 eV/Å, is the
criterion of the reference DFT study (SPEC §4). With a store:

* the result is keyed on (structure, engine, task); a repeat is a cache hit;
* every ``checkpoint_interval`` steps the current positions, cell and optimizer
  state go into the database in one transaction (``status="running"``); a rerun
  after a crash, Ctrl-C or ``kill -9`` resumes from the last checkpoint. For
  ``FIRE`` and ``BFGS`` (up to :data:`MAX_BFGS_STATE_ATOMS` atoms) the optimizer state
  is restored too, so the resumed path is the uninterrupted one; for other
  optimizers only positions/cell are restored;
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
from halex.engines import Engine, get_engine
from halex.errors import InputError
from halex.store import ResultStore, result_key
from halex.units import DEFAULT_FMAX

__all__ = ["relax", "single_point", "RelaxResult", "OPTIMIZERS", "DEFAULT_FMAX", "MAX_BFGS_STATE_ATOMS"]

log = logging.getLogger("halex.relax")

OPTIMIZERS = ("FIRE", "BFGS", "LBFGS", "BFGSLineSearch")
#: BFGS Hessians (3N × 3N) are checkpointed only up to this many atoms (≈ 16 MB).
MAX_BFGS_STATE_ATOMS = 500

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
    free = forces[~mask]
    return float(np.sqrt((free**2).sum(axis=1)).max()) if len(free) else 0.0


def _optimizer_state(opt, name: str, natoms: int) -> dict[str, Any]:
    if name == "FIRE" and getattr(opt, "vel", None) is not None:
        return {"vel": np.array(opt.vel), "dt": float(opt.dt), "a": float(opt.a), "Nsteps": int(opt.Nsteps)}
    if name == "BFGS" and natoms <= MAX_BFGS_STATE_ATOMS and getattr(opt, "H", None) is not None and opt.pos0 is not None:
        return {"H": np.array(opt.H), "pos0": np.array(opt.pos0), "forces0": np.array(opt.forces0)}
    return {}


def _restore_optimizer(opt, name: str, state: dict[str, Any]) -> None:
    if not state:
        return
    if name == "FIRE" and "vel" in state:
        opt.vel = np.array(state["vel"], dtype=float)
        opt.dt, opt.a, opt.Nsteps = float(state["dt"]), float(state["a"]), int(state["Nsteps"])
    elif name == "BFGS" and "H" in state:
        opt.H = np.array(state["H"], dtype=float)
        opt.pos0 = np.array(state["pos0"], dtype=float)
        opt.forces0 = np.array(state["forces0"], dtype=float)


def _snapshot(atoms: Atoms, energy: float, forces: np.ndarray) -> Atoms:
    snap = atoms.copy()
    snap.set_constraint()
    snap.calc = SinglePointCalculator(snap, energy=energy, forces=np.array(forces))
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


def single_point(
    atoms: Atoms,
    engine: str | Engine = "mlip",
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
    if store is not None:
        row = store.find(key)
        if row is not None:
            log.info("cache hit: row %d (%s)", row.id, key[:12])
            return _from_row(store, row, info)
    work = atoms.copy()
    work.calc = eng.calculator(store.run_dir(key) / "engine" if store is not None else None)
    energy = float(work.get_potential_energy())
    forces = np.array(work.get_forces())
    snap = _snapshot(atoms, energy, forces)
    fmax = _max_force(forces, np.zeros(len(atoms), bool))
    row_id = None
    if store is not None:
        with store.lock():
            row = store.find(key)
            row_id = row.id if row is not None else store.write(
                snap, key=key, status="done",
                kvp=dict(task="energy", engine=info["name"], engine_version=info["version"], label=label, fmax_final=fmax, step=0, converged=True),
                data={"engine": info, "task": task},
            )
    return RelaxResult(atoms=snap, energy=energy, fmax=fmax, nsteps=0, converged=True, key=key, row_id=row_id, engine=info)


def relax(
    atoms: Atoms,
    engine: str | Engine = "mlip",
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
    fmax = check_fmax(fmax)
    if optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise InputError(f"steps must be a non-negative integer, got {steps!r}")
    if not isinstance(checkpoint_interval, (int, np.integer)) or checkpoint_interval < 1:
        raise InputError(f"checkpoint_interval must be a positive integer, got {checkpoint_interval!r}")
    if cell and not np.all(atoms.pbc):
        raise InputError("cell relaxation needs a periodic structure (pbc all True)")
    mask = _fix_mask(atoms, fix)
    eng = get_engine(engine)
    eng.check(atoms)
    info = eng.describe()
    task = {"kind": "relax", "fmax": fmax, "optimizer": optimizer, "fixed": np.flatnonzero(mask).tolist(), "cell": bool(cell)}
    if symmetry:
        task["symmetry"] = True
    key = result_key(atoms, info, task)

    start = atoms.copy()
    step0 = 0
    state: dict[str, Any] = {}
    checkpoint_id = None
    previous_done_id = None
    wall0 = 0.0  # compute seconds already spent by interrupted earlier runs
    if store is not None:
        row = store.find(key)
        if row is not None and (row.get("converged") or row.get("step", 0) >= steps):
            log.info("cache hit: row %d (%s), %d steps, converged=%s", row.id, key[:12], row.get("step", 0), row.get("converged"))
            return _from_row(store, row, info)
        ck = store.find(key, status="running")
        if ck is None and row is not None:  # unconverged earlier result: continue from it
            ck, previous_done_id = row, row.id
        if ck is not None:
            resumed = store.to_atoms(ck)
            start.set_positions(resumed.get_positions())
            start.set_cell(resumed.cell)
            step0 = int(ck.get("step", 0))
            wall0 = float(ck.get("wall_s", 0.0))
            state = dict(ck.data.get("optimizer_state", {})) if ck.get("status") == "running" else {}
            checkpoint_id = ck.id if ck.get("status") == "running" else None
            log.info("resuming %s from step %d (row %d)", key[:12], step0, ck.id)

    work = start.copy()
    constraints = [FixAtoms(mask=mask)] if mask.any() else []
    if symmetry:
        from ase.constraints import FixSymmetry

        constraints.append(FixSymmetry(work, symprec=1e-2))
    work.set_constraint(constraints or None)
    run_dir = store.run_dir(key) if store is not None else None
    work.calc = eng.calculator(run_dir / "engine" if run_dir is not None else None)

    from ase import optimize
    from ase.filters import FrechetCellFilter

    target = FrechetCellFilter(work) if cell else work
    opt = getattr(optimize, optimizer)(target, logfile=None)
    _restore_optimizer(opt, optimizer, state)

    traj_path = None
    if trajectory and run_dir is not None:
        from ase.io.trajectory import Trajectory

        traj_path = run_dir / "relax.traj"
        # a resumed run continues its trajectory; a run from step 0 starts a new one
        traj = Trajectory(str(traj_path), "a" if step0 > 0 else "w", work)
        opt.attach(traj.write, interval=1)

    t0 = time.perf_counter()

    def _fmax(forces: np.ndarray) -> float:
        # with a cell filter the cell degrees of freedom count too, as in ASE's convergence test
        return float(np.sqrt((target.get_forces() ** 2).sum(axis=1)).max()) if cell else _max_force(forces, mask)

    def _observe() -> None:
        step = step0 + opt.nsteps
        energy = float(work.get_potential_energy())
        forces = work.get_forces()
        fm = _fmax(forces)
        log.info("%s step %5d  E = %.6f eV  fmax = %.4f eV/Å  %.1f s", optimizer, step, energy, fm, time.perf_counter() - t0)
        for fn in observers:
            fn(step, work, energy, fm)
        nonlocal checkpoint_id
        if store is not None and opt.nsteps > 0 and step % checkpoint_interval == 0 and fm >= fmax:
            snap = _snapshot(work, energy, forces)
            kvp = dict(task="relax", engine=info["name"], engine_version=info["version"], label=label, step=step, fmax_final=fm, converged=False, fmax_target=fmax,
                       wall_s=wall0 + time.perf_counter() - t0)
            data = {"engine": info, "task": task, "optimizer_state": _optimizer_state(opt, optimizer, len(work))}
            checkpoint_id = store.write(snap, key=key, status="running", kvp=kvp, data=data, id=checkpoint_id)

    opt.attach(_observe, interval=1)
    try:
        remaining = max(0, steps - step0)
        with warnings.catch_warnings():
            # FrechetCellFilter takes scipy.linalg.logm of the deformation gradient; near the
            # identity scipy warns that the result "may be inaccurate" at the 1e-13 level
            warnings.filterwarnings("ignore", message="logm result may be inaccurate")
            opt.run(fmax=fmax, steps=remaining)
    finally:
        if traj_path is not None:
            traj.close()

    energy = float(work.get_potential_energy())
    forces = np.array(work.get_forces())
    fm = _fmax(forces)
    converged = fm < fmax
    nsteps = step0 + opt.nsteps
    final = _snapshot(work, energy, forces)
    for name in atoms.arrays:
        if name not in final.arrays:
            final.new_array(name, np.array(atoms.arrays[name]))
    final.info.update(atoms.info)
    final.info.update(relaxed_with=info["name"], relax_converged=converged, relax_steps=nsteps)

    row_id = None
    if store is not None:
        kvp = dict(task="relax", engine=info["name"], engine_version=info["version"], label=label, step=nsteps, fmax_final=fm, converged=converged, fmax_target=fmax,
                   wall_s=wall0 + time.perf_counter() - t0)
        data = {"engine": info, "task": task, "trajectory": str(traj_path) if traj_path else None, "initial_positions": atoms.get_positions()}
        with store.lock():
            existing = store.find(key)
            if existing is not None and existing.id != previous_done_id and existing.get("converged"):
                row_id = existing.id  # another process finished it first
            else:
                row_id = store.write(final, key=key, status="done", kvp=kvp, data=data, id=previous_done_id)
            stale = [r.id for r in store.rows(hkey=key, status="running")]
            store.delete(stale)
    log.info("%s %s after %d steps: E = %.6f eV, fmax = %.4f eV/Å", optimizer, "converged" if converged else "NOT converged", nsteps, energy, fm)
    return RelaxResult(
        atoms=final, energy=energy, fmax=fm, nsteps=nsteps, converged=converged,
        resumed_from=step0 if step0 else None, key=key, row_id=row_id, engine=info, trajectory=traj_path,
    )
