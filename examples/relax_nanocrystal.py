"""Build a CsPbCl3 nanocrystal, relax it with the default engine, and plot the relaxation.

    .venv/bin/python examples/relax_nanocrystal.py [OUTDIR]

Writes OUTDIR/nc_relaxed.extxyz, OUTDIR/relaxation.png and OUTDIR/results.db (rerun: cache hit).
"""

import sys
from pathlib import Path

import numpy as np
from ase.io import Trajectory

from halex.io import write_structure
from halex.models import perovskite_nanocrystal
from halex.plotting import plot_relaxation, save_figure
from halex.relax import DEFAULT_FMAX, relax
from halex.store import ResultStore

out = Path(sys.argv[1] if len(sys.argv) > 1 else "example-output")
store = ResultStore(out / "results.db")
nc = perovskite_nanocrystal((3, 3, 3), "Cl")
result = relax(nc, "mlip", store=store, label="CsPbCl3 3x3x3")
print(f"{nc.get_chemical_formula(mode='metal')}: {result.nsteps} steps, E = {result.energy:.4f} eV, "
      f"fmax = {result.fmax:.4f} eV/Å, converged = {result.converged}, cached = {result.cached}")
write_structure(out / "nc_relaxed.extxyz", result.atoms)

with Trajectory(str(result.trajectory)) as traj:
    energies = [frame.get_potential_energy() for frame in traj]
    fmaxes = [float(np.linalg.norm(frame.get_forces(), axis=1).max()) for frame in traj]
save_figure(plot_relaxation(energies, fmaxes, fmax_target=DEFAULT_FMAX, title="CsPbCl3 3x3x3"), out / "relaxation.png")
print(f"wrote {out}/nc_relaxed.extxyz and {out}/relaxation.png")
