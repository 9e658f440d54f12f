"""Unit conversions and shared numerical defaults (CODATA 2014, the default of :mod:`ase.units`).

halex works internally in ASE units: Å, eV, eV/Å. Reported exchange energies are in
kcal/mol. CP2K reads and writes atomic units (Hartree, Bohr).
"""

from __future__ import annotations

from ase import units as _u

#: 1 Hartree in eV
HARTREE_EV: float = _u.Hartree
#: 1 Bohr in Å
BOHR_A: float = _u.Bohr
#: 1 Ha/Bohr in eV/Å
HA_PER_BOHR_EV_PER_A: float = _u.Hartree / _u.Bohr
#: 1 eV (per particle) in kcal/mol
EV_KCAL_PER_MOL: float = 1.0 / (_u.kcal / _u.mol)

#: Default relaxation threshold of the reference DFT study: 4.5e-4 Ha/Bohr (SPEC §4),
#: ≈ 0.0231 eV/Å.
DEFAULT_FMAX_HA_BOHR: float = 4.5e-4
DEFAULT_FMAX: float = DEFAULT_FMAX_HA_BOHR * HA_PER_BOHR_EV_PER_A


#: STEM: a fitted column is kept when its amplitude is this many standard errors above
#: zero (A/σ_A); one default for :func:`halex.stem.fit_columns`, the analysis and the CLI.
DEFAULT_SIGNIFICANCE: float = 3.0


def ev_to_kcal_per_mol(energy_ev: float) -> float:
    """Convert an energy per particle from eV to kcal/mol."""
    return energy_ev * EV_KCAL_PER_MOL
