"""Bulk phases with their literature sources (SPEC §2).

This module currently provides the cubic (Pm-3m) perovskites, whose coordinates are
fixed by symmetry (Pb 1a, Cs 1b, X 3d). Every lattice constant carries its source.
"""

from __future__ import annotations

from dataclasses import dataclass

from ase import Atoms

from halex.errors import InputError

__all__ = ["LatticeConstant", "CUBIC_PEROVSKITE_A", "cubic_perovskite", "check_halide"]

HALIDES: tuple[str, ...] = ("Cl", "I")


@dataclass(frozen=True)
class LatticeConstant:
    """A cubic lattice constant in Å with its literature source."""

    value: float
    source: str


#: Experimental cubic lattice constants (Å).
CUBIC_PEROVSKITE_A: dict[str, LatticeConstant] = {
    "Cl": LatticeConstant(5.605, "CsPbCl3, cubic above ~320 K: C. K. Møller, Mat. Fys. Medd. Dan. Vid. Selsk. 32 (1959)"),
    "I": LatticeConstant(6.29, "alpha-CsPbI3 at 634 K: D. M. Trots, S. V. Myagkota, J. Phys. Chem. Solids 69, 2520 (2008)"),
}


def check_halide(halide: str) -> str:
    """Return ``halide`` if it is a supported perovskite halide, else raise InputError."""
    if halide not in HALIDES:
        raise InputError(f"unknown halide {halide!r}: choose one of {', '.join(HALIDES)}")
    return halide


def cubic_perovskite(halide: str = "Cl", *, a: float | None = None) -> Atoms:
    """Cubic CsPbX3 (Pm-3m) unit cell: Pb 1a (0,0,0), Cs 1b (½,½,½), X 3d.

    Parameters
    ----------
    halide
        ``"Cl"`` or ``"I"``.
    a
        Lattice constant in Å; the experimental value of :data:`CUBIC_PEROVSKITE_A`
        when omitted.
    """
    check_halide(halide)
    if a is None:
        a = CUBIC_PEROVSKITE_A[halide].value
    if not a > 0:
        raise InputError(f"lattice constant must be positive, got {a!r}")
    atoms = Atoms(
        f"PbCs{halide}3",
        scaled_positions=[(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0, 0), (0, 0.5, 0), (0, 0, 0.5)],
        cell=[a, a, a],
        pbc=True,
    )
    atoms.info["phase"] = f"CsPb{halide}3-cubic"
    atoms.info["space_group"] = "Pm-3m"
    return atoms
