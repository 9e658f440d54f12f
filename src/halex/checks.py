"""Validation of structures and parameters before any computing starts."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from halex.errors import InputError, StructureError, UnsupportedElementError

__all__ = ["MIN_DISTANCE", "check_structure", "check_fmax", "check_fraction", "check_elements", "check_size",
           "check_vacuum"]

#: Two atoms closer than this (Å) are treated as overlapping: no chemical bond is
#: shorter than ~0.74 Å (H2), so 0.5 Å only ever means a construction error.
MIN_DISTANCE: float = 0.5


def check_structure(atoms: Atoms, *, min_distance: float = MIN_DISTANCE) -> None:
    """Raise :class:`StructureError` for empty, non-finite or overlapping structures.

    Parameters
    ----------
    atoms
        Structure to check; periodic boundary conditions are honoured.
    min_distance
        Smallest allowed interatomic distance in Å.
    """
    if len(atoms) == 0:
        raise StructureError("the structure has no atoms")
    pos = atoms.get_positions()
    bad = np.flatnonzero(~np.isfinite(pos).all(axis=1))
    if bad.size:
        raise StructureError(
            f"non-finite coordinates (NaN or inf) for atom(s) {bad[:10].tolist()}: "
            "fix the structure file"
        )
    if atoms.pbc.any() and not np.isfinite(atoms.cell.array).all():
        raise StructureError("the cell contains non-finite numbers")
    if atoms.pbc.any() and abs(atoms.cell.volume) < 1e-6:
        raise StructureError("periodic structure with a zero-volume cell: set a cell or pbc=False")
    if len(atoms) < 2:
        return
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, min_distance)
    if len(i):
        k = int(np.argmin(d))
        raise StructureError(
            f"{len(i) // 2} pair(s) of overlapping atoms closer than {min_distance} Å, "
            f"e.g. atoms {i[k]} ({atoms[i[k]].symbol}) and {j[k]} ({atoms[j[k]].symbol}) "
            f"at {d[k]:.3f} Å: remove duplicates or fix the coordinates"
        )


def check_elements(atoms: Atoms, supported: Iterable[str], *, engine: str) -> None:
    """Raise :class:`UnsupportedElementError` if ``atoms`` holds an element outside ``supported``."""
    present = set(atoms.get_chemical_symbols())
    missing = sorted(present - set(supported), key=chemical_symbols.index)
    if missing:
        raise UnsupportedElementError(
            f"engine {engine!r} cannot describe element(s) {', '.join(missing)}; "
            "choose another engine or remove those atoms"
        )


def check_fmax(fmax: float) -> float:
    """Return ``fmax`` (eV/Å) as float, or raise :class:`InputError` if not finite and > 0."""
    try:
        value = float(fmax)
    except (TypeError, ValueError):
        raise InputError(f"fmax must be a number in eV/Å, got {fmax!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"fmax must be a positive finite force in eV/Å, got {fmax!r}")
    return value


def check_fraction(fraction: float, *, name: str = "fraction") -> float:
    """Return ``fraction`` as float, or raise :class:`InputError` if outside [0, 1]."""
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number in [0, 1], got {fraction!r}") from None
    if not (0.0 <= value <= 1.0):
        raise InputError(f"{name} must lie in [0, 1], got {fraction!r}")
    return value


def check_size(size: Sequence[int]) -> tuple[int, int, int]:
    """``size`` as three positive integers (octahedra along x, y, z), else :class:`InputError`."""
    try:
        n = tuple(int(v) for v in size)
    except (TypeError, ValueError):
        raise InputError(f"size must be three positive integers, got {size!r}") from None
    if len(n) != 3 or any(v < 1 for v in n) or any(float(v) != float(s) for v, s in zip(n, size)):
        raise InputError(f"size must be three positive integers (octahedra along x, y, z), got {size!r}")
    return n  # type: ignore[return-value]


def check_vacuum(vacuum: float) -> float:
    """``vacuum`` (Å around a non-periodic model) if it is ≥ 0, else :class:`InputError`."""
    if not vacuum >= 0:
        raise InputError(f"vacuum must be >= 0 Å, got {vacuum!r}")
    return float(vacuum)
