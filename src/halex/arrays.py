"""Per-atom arrays that every halex structure carries (SPEC §3).

``domain``
    ``"perovskite"`` or ``"chalcohalide"`` (string array).
``layer``
    Integer index along the stacking axis z counted from the interface: perovskite
    layers 1, 2, ... (1 touches the interface, the highest is the bottom); the
    perovskite's terminal CsX plane facing the chalcohalide (the *interfacial
    monolayer*) is layer 0; chalcohalide layers are -1, -2, ... away from the interface.
``role``
    Crystallographic role: ``"Cs"``, ``"Pb"``, ``"X_ax"`` (halide in a CsX plane,
    axial to Pb along z), ``"X_eq"`` (halide in a PbX2 plane), ``"S"`` and ``"X"``
    (chalcohalide halide).

The arrays live in ``atoms.arrays`` so they follow ASE slicing, copying, extxyz
files and (through :mod:`halex.store`) the result database.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

__all__ = ["HALEX_ARRAYS", "ROLES", "DOMAINS", "has_halex_arrays", "get_arrays", "set_arrays"]

#: Names and NumPy dtypes of the per-atom arrays. String arrays have a fixed width wide
#: enough for every allowed value, so assigning "chalcohalide" in place never truncates.
HALEX_ARRAYS: dict[str, str] = {"domain": "<U16", "layer": "int64", "role": "<U8"}
ROLES: tuple[str, ...] = ("Cs", "Pb", "X_ax", "X_eq", "S", "X")
DOMAINS: tuple[str, ...] = ("perovskite", "chalcohalide")


def has_halex_arrays(atoms: Atoms) -> bool:
    """Return True when all of ``domain``, ``layer`` and ``role`` are present."""
    return all(name in atoms.arrays for name in HALEX_ARRAYS)


def get_arrays(atoms: Atoms) -> dict[str, np.ndarray]:
    """Copies of the halex per-atom arrays present on ``atoms`` (possibly none)."""
    return {name: np.array(atoms.arrays[name]) for name in HALEX_ARRAYS if name in atoms.arrays}


def set_arrays(atoms: Atoms, arrays: dict[str, np.ndarray]) -> None:
    """Attach per-atom arrays to ``atoms`` in place (edge helper for readers)."""
    for name, values in arrays.items():
        values = np.asarray(values)
        if len(values) != len(atoms):
            raise ValueError(f"array {name!r} has {len(values)} entries for {len(atoms)} atoms")
        if name in atoms.arrays:
            del atoms.arrays[name]
        dtype = HALEX_ARRAYS.get(name)
        atoms.new_array(name, values.astype(dtype) if dtype is not None else values)
