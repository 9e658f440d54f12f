"""Real DFT with CP2K: PBE / GTH / DZVP-MOLOPT-SR-GTH, non-periodic wavelet box.

The engine is split as ASE's file-IO calculators are: :class:`Cp2kTemplate`
(write input, run, parse) and :class:`Cp2kProfile` (executable, MPI ranks,
threads, data directory). Settings (the physics) are recorded with every result
and are part of the cache key; the profile (the launch) is not.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ase.calculators.genericfileio import GenericFileIOCalculator

from halex.engines.base import Cost, Engine, is_heavy
from halex.engines.cp2k.profile import Cp2kProfile, find_data_dir
from halex.engines.cp2k.template import BOXES, Cp2kTemplate, build_input, parse_cp2k_output
from halex.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from ase import Atoms

    from halex.engines.orbitals import OrbitalSet

__all__ = ["Cp2kEngine", "Cp2kProfile", "Cp2kTemplate", "build_input", "parse_cp2k_output", "find_data_dir"]


#: CP2K on more atoms than this is a cluster job (hours per relaxation on 2 cores).
HEAVY_ATOMS = 200


class Cp2kEngine(Engine):
    """CP2K Quickstep engine.

    Settings (defaults = the reference DFT study, SPEC §4)
    ------------------------------------------------------
    xc : "PBE"
    basis_set : "DZVP-MOLOPT-SR-GTH"  (file ``basis_file``)
    potential : "GTH-PBE"             (file ``potential_file``)
    cutoff_ry : 400.0                 auxiliary plane-wave cutoff (Ry)
    rel_cutoff_ry : 60.0              relative cutoff (Ry)
    vacuum : 7.0                      Å on each side of a non-periodic model without a cell, or
                                      with ``box="extent"``
    poisson_solver : "WAVELET"        non-periodic Poisson solver
    box : "cell"                      non-periodic box: a cube of the model's longest cell edge,
                                      the same for every model built alike, so grid errors cancel
                                      in exchange energies; "extent": the atoms' extent + 2 × vacuum
                                      (smaller and faster, but its grid follows each model)
    eps_scf, max_scf, max_outer_scf, eps_default : SCF convergence (``max_scf``: OT steps per
        outer cycle, 20; a stalled DIIS restarts sooner than with halex ≤ 0.1's 50)
    charge, multiplicity, uks : electronic state
    dispersion : optional ``"d3bj"``: CP2K's own D3 with Becke–Johnson damping for the
        functional (``&VDW_POTENTIAL``, ``dftd3.dat`` of the data directory); recorded only
        when given

    The launch profile is built from ``profile`` keyword arguments or the environment
    (see :mod:`halex.engines.cp2k.profile`).
    """

    name = "cp2k"
    capabilities = frozenset({"energy", "forces", "orbitals"})
    optional_settings = {"dispersion": ("d3bj",)}
    defaults = {
        "xc": "PBE",
        "basis_set": "DZVP-MOLOPT-SR-GTH",
        "potential": "GTH-PBE",
        "basis_file": "BASIS_MOLOPT",
        "potential_file": "GTH_POTENTIALS",
        "cutoff_ry": 400.0,
        "rel_cutoff_ry": 60.0,
        "vacuum": 7.0,
        "poisson_solver": "WAVELET",
        "box": "cell",
        "eps_scf": 1.0e-6,
        "max_scf": 20,
        "max_outer_scf": 20,
        "eps_default": 1.0e-12,
        "charge": 0,
        "multiplicity": 1,
        "uks": False,
    }

    def __init__(self, profile: Cp2kProfile | None = None, **settings: Any) -> None:
        super().__init__(**settings)
        s = self._settings
        if not float(s["cutoff_ry"]) > 0 or not float(s["rel_cutoff_ry"]) > 0:
            raise InputError("cutoff_ry and rel_cutoff_ry must be positive (Ry)")
        if not float(s["vacuum"]) >= 3.0:
            raise InputError(f"vacuum must be at least 3 Å around a non-periodic model, got {s['vacuum']!r}")
        if s["box"] not in BOXES:  # refused now, not at the first run (box_for checks it again for direct callers)
            raise InputError(f"box must be 'extent' (the atoms' extent + 2 × vacuum) or 'cell' (the model's cell), got {s['box']!r}")
        self._profile = profile

    @property
    def profile(self) -> Cp2kProfile:
        """Launch profile (created on first use; raises if CP2K is missing)."""
        if self._profile is None:
            self._profile = Cp2kProfile()
        return self._profile

    @cached_property
    def version(self) -> str:  # type: ignore[override]
        return f"CP2K {self.profile.version()}"

    @cached_property
    def supported_elements(self) -> frozenset[str]:  # type: ignore[override]
        """Elements with both the basis set and the pseudopotential in the data files."""
        data = self.profile.data_dir
        basis = _elements_with(data / self._settings["basis_file"], self._settings["basis_set"])
        pots = _elements_with(data / self._settings["potential_file"], self._settings["potential"])
        return frozenset(basis & pots)

    def cost(self, atoms: Atoms) -> Cost:
        """Cost of one energy + forces call (an SCF of ~25 OT steps), by a grid model.

        The time of an OT step on the real-space grid scales with the number of grid points,
        ``V_box · E_cut^(3/2)``: 7 s per step for Cs4PbCl6 in a 21.6 Å box at 150 Ry
        (``tests/test_readme.py``'s run) and 23 s for a 64-atom Cs20Pb8Cl36 cluster in a 24 Å
        box at 400 Ry, both on 2 cores; the constant below lies between those two (5 × 10⁻⁷ s
        per Å³ Ry^1.5). Memory: 7 GB for the second, scaled with the grid. Above
        :data:`HEAVY_ATOMS` atoms a run is *heavy*: minutes per SCF step and gigabytes, the
        work of a cluster.
        """
        from halex.engines.cp2k.template import box_for

        s = self._settings
        periodic = bool(np.all(atoms.pbc))
        volume = float(atoms.get_volume()) if periodic else float(np.prod(box_for(atoms, float(s["vacuum"]), str(s["box"]))[0]))
        grid = volume * float(s["cutoff_ry"]) ** 1.5
        step = 5e-7 * grid
        memory = 0.5 + 7.0 * grid / (13824 * 400**1.5)
        return Cost(seconds=25 * step, memory_GB=memory,
                    detail=f"{len(atoms)} atoms, box {volume ** (1 / 3):.1f} Å, {s['cutoff_ry']:g} Ry: ≈ {step:.0f} s per SCF step",
                    heavy=len(atoms) > HEAVY_ATOMS or is_heavy(25 * step, memory))

    def calculator(self, directory: str | Path | None = None) -> GenericFileIOCalculator:
        if directory is None:
            directory = tempfile.mkdtemp(prefix="halex-cp2k-")
        return GenericFileIOCalculator(
            template=Cp2kTemplate(), profile=self.profile, directory=directory, parameters=self.settings
        )

    def orbitals(
        self,
        atoms: Atoms,
        groups: Mapping[str, Sequence[int]],
        *,
        nlumo: int = 20,
        directory: str | Path | None = None,
    ) -> OrbitalSet:
        """One CP2K single point; orbitals with their Mulliken weight on every group.

        See :func:`halex.engines.cp2k.orbitals.compute_orbitals` (``&PDOS`` with one
        ``&LDOS`` list per group, ``nlumo`` virtual orbitals after the OT SCF).
        """
        from halex.engines.cp2k.orbitals import compute_orbitals

        return compute_orbitals(self, atoms, groups, nlumo=nlumo, directory=directory)


def _elements_with(path: Path, name: str) -> set[str]:
    """Elements having an entry called ``name`` (or ``name-qN``) in a CP2K data file."""
    pattern = re.compile(rf"^\s*([A-Z][a-z]?)\s+(?:\S+\s+)*{re.escape(name)}(?:-q\d+)?(?:\s|$)")
    found: set[str] = set()
    with open(path, errors="replace") as fh:
        for line in fh:
            m = pattern.match(line)
            if m:
                found.add(m.group(1))
    return found
