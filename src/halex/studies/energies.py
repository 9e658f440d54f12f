"""Exchange energies (SPEC §4) and the PbX2 references they need.

For a step that turns x halides of a model from Cl into I, with the displaced Cl
leaving as PbCl2 and the I supplied by PbI2,

    HS(x·Cl) + (x/2) PbI2  →  HS(x·I) + (x/2) PbCl2

    ΔE_exchange = [(E_HS(x·I) + E_PbCl2) − (E_HS(x·Cl) + E_PbI2)] / x

where E_PbCl2 and E_PbI2 are the energies of the x/2 formula units that balance the
reaction (SPEC §4 writes them without the count; halex makes the mass balance
explicit so that steps with different x are comparable). Reported in kcal/mol per
exchanged halide; negative means the exchange is favourable.

References: by default isolated PbX2 molecules relaxed in the same non-periodic setting
as the models (SPEC §4); ``"bulk"`` uses the relaxed bulk phases (cotunnite PbCl2,
2H-PbI2) per formula unit. The choice is recorded with every number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms

from halex.errors import InputError
from halex.units import EV_KCAL_PER_MOL

if TYPE_CHECKING:  # pragma: no cover
    from halex.engines import Engine
    from halex.store import ResultStore

__all__ = ["exchange_energy", "pbx2_molecule", "pbx2_reference", "pbx2_reference_structure", "REFERENCE_MODES"]

REFERENCE_MODES = ("molecule", "bulk")

#: Start geometry of the bent PbX2 molecules (Pb–X in Å, X–Pb–X in degrees): gas-phase
#: electron diffraction values are ≈ 2.45 Å / 98° (PbCl2) and 2.80 Å / 100° (PbI2).
_MOLECULE_START = {"Cl": (2.45, 98.0), "Br": (2.60, 99.0), "I": (2.80, 100.0)}


def exchange_energy(e_iodide: float, e_chloride: float, x: int, e_pbcl2_fu: float, e_pbi2_fu: float) -> float:
    """ΔE_exchange in kcal/mol per exchanged halide (SPEC §4).

    ``ΔE = [(E(x·I) + x/2 E_PbCl2) − (E(x·Cl) + x/2 E_PbI2)] / x``: the displaced Cl leaves
    as PbCl2 and the I comes from PbI2, half a formula unit per halide.

    Parameters
    ----------
    e_iodide, e_chloride
        Energies (eV) of the model after and before the step.
    x
        Number of halides exchanged in the step (> 0).
    e_pbcl2_fu, e_pbi2_fu
        Energies (eV) of one PbCl2 and one PbI2 formula unit (molecule or bulk).

    Returns
    -------
    float
        kcal/mol per exchanged halide.

    Examples
    --------
    >>> round(exchange_energy(-10.0, -11.0, 2, -5.0, -4.0), 3)   # (1 eV + 1 × (−1 eV)) / 2 = 0
    0.0
    >>> round(exchange_energy(-10.0, -11.0, 2, -4.0, -4.0), 3)   # 0.5 eV per halide
    11.53
    """
    if x <= 0:
        raise InputError(f"the number of exchanged halides must be positive, got {x}")
    de_ev = ((e_iodide + 0.5 * x * e_pbcl2_fu) - (e_chloride + 0.5 * x * e_pbi2_fu)) / x
    return float(de_ev * EV_KCAL_PER_MOL)


def pbx2_molecule(halide: str, vacuum: float = 8.0) -> Atoms:
    """Bent PbX2 molecule (C2v) in a non-periodic box: the default PbX2 reference.

    Parameters
    ----------
    halide
        ``"Cl"``, ``"Br"`` or ``"I"``.
    vacuum
        Vacuum around it (Å).

    Returns
    -------
    ase.Atoms
        Start geometry (relaxed by :func:`pbx2_reference`).

    Examples
    --------
    >>> pbx2_molecule("I").get_chemical_formula()
    'I2Pb'
    """
    if halide not in _MOLECULE_START:
        raise InputError(f"unknown halide {halide!r}")
    d, angle = _MOLECULE_START[halide]
    half = np.radians(angle / 2)
    atoms = Atoms(f"Pb{halide}2", positions=[(0, 0, 0), (d * np.sin(half), 0, d * np.cos(half)),
                                               (-d * np.sin(half), 0, d * np.cos(half))], pbc=False)
    atoms.center(vacuum=vacuum)
    return atoms


def pbx2_reference_structure(halide: str, engine: str | Engine, *, mode: str = "molecule", store: ResultStore | None = None,
                             fmax: float | None = None) -> tuple[Atoms, float, int]:
    """The relaxed PbX2 reference: its structure, energy (eV) and formula units.

    Parameters
    ----------
    halide
        ``"Cl"`` or ``"I"``.
    engine
        Engine name or instance.
    mode
        ``"molecule"`` (isolated, the same non-periodic setting as the models) or ``"bulk"``
        (the library's PbCl2 / PbI2, cell relaxed).
    store
        Result store (the relaxation is cached).
    fmax
        Relaxation threshold (eV/Å) of the molecule; default 4.5e-4 Ha/Bohr.

    Returns
    -------
    tuple
        (relaxed structure, its energy in eV, PbX2 formula units in it).
    """
    from halex.relax import relax
    from halex.units import DEFAULT_FMAX

    if mode not in REFERENCE_MODES:
        raise InputError(f"unknown reference mode {mode!r}: choose one of {', '.join(REFERENCE_MODES)}")
    fmax = DEFAULT_FMAX if fmax is None else fmax
    if mode == "molecule":
        r = relax(pbx2_molecule(halide), engine, fmax=fmax, steps=500, store=store, label=f"reference Pb{halide}2 molecule")
        return r.atoms, r.energy, 1
    from halex.search.stability import relaxed_reference

    name = {"Cl": "PbCl2", "I": "PbI2"}.get(halide)
    if name is None:
        raise InputError(f"no bulk Pb{halide}2 phase in the library")
    atoms, energy = relaxed_reference(name, engine, store=store)
    return atoms, energy, int(np.sum(atoms.numbers == 82))


def pbx2_reference(halide: str, engine: str | Engine, *, mode: str = "molecule", store: ResultStore | None = None,
                   fmax: float | None = None) -> float:
    """Energy (eV) of one PbX2 formula unit with ``engine``: relaxed molecule or bulk phase.

    Parameters
    ----------
    halide
        ``"Cl"`` or ``"I"``.
    engine
        Engine name or instance.
    mode
        ``"molecule"`` or ``"bulk"`` (:func:`pbx2_reference_structure`).
    store
        Result store (the relaxation is cached).
    fmax
        Relaxation threshold (eV/Å) of the molecule; default 4.5e-4 Ha/Bohr.

    Returns
    -------
    float
        eV per formula unit.
    """
    _, energy, n_fu = pbx2_reference_structure(halide, engine, mode=mode, store=store, fmax=fmax)
    return energy / n_fu
