"""Stability of a compound against decomposition into reference phases.

For Pb4S3X2 the relevant decomposition is Pb4S3X2 → 3 PbS + PbX2, so

    ΔE_dec = [E(Pb4S3X2) − 3 E(PbS) − E(PbX2)] / 9      (eV/atom)

with every energy from the same engine on relaxed structures. ΔE_dec < 0 means the
compound lies below the PbS–PbX2 tie line (stable against that decomposition); > 0 is
its energy above that hull (metastable). The general form solves the composition of
``atoms`` as a non-negative combination of the reference compositions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np
from ase import Atoms

from halex.engines import DEFAULT_ENGINE, Engine
from halex.errors import InputError

__all__ = ["decomposition_energy", "relaxed_reference"]


def decomposition_energy(energy_eV: float, atoms: Atoms, references: Mapping[str, tuple[Atoms, float]]) -> tuple[float, dict[str, float]]:
    """Energy (eV/atom) of ``atoms`` relative to a combination of reference phases.

    Parameters
    ----------
    energy_eV
        Total energy of ``atoms`` (eV).
    references
        ``name -> (atoms, total energy in eV)`` of each relaxed reference phase.

    Returns
    -------
    (ΔE in eV/atom, {reference name: number of its cells in the combination})
    """
    elements = sorted(set(atoms.get_chemical_symbols()) | {s for a, _ in references.values() for s in a.get_chemical_symbols()})
    def vec(a: Atoms) -> np.ndarray:
        c = Counter(a.get_chemical_symbols())
        return np.array([c.get(e, 0) for e in elements], float)

    names = list(references)
    matrix = np.stack([vec(references[n][0]) for n in names], axis=1)
    target = vec(atoms)
    coeff, *_ = np.linalg.lstsq(matrix, target, rcond=None)
    if np.abs(matrix @ coeff - target).max() > 1e-6 or (coeff < -1e-9).any():
        raise InputError(f"{atoms.get_chemical_formula()} is not a non-negative combination of {', '.join(names)}")
    e_ref = sum(c * references[n][1] for c, n in zip(coeff, names))
    return (energy_eV - e_ref) / len(atoms), {n: float(c) for n, c in zip(names, coeff)}


def relaxed_reference(name: str, engine: str | Engine = DEFAULT_ENGINE, *, store=None) -> tuple[Atoms, float]:
    """A library phase relaxed (cell and positions, symmetry kept) with ``engine``."""
    from halex.phases import load_phase
    from halex.relax import relax

    r = relax(load_phase(name), engine, cell=True, symmetry=True, fmax=0.01, steps=2000, store=store, label=f"reference {name}")
    return r.atoms, r.energy
