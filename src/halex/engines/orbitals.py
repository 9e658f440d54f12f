"""Molecular orbitals projected on groups of atoms: what an engine with electrons returns.

:class:`OrbitalSet` is the result type of :meth:`halex.engines.Engine.orbitals`: orbital
energies (eV), occupations, and each orbital's weight on every group of atoms. It lives
with the engines (not the analysis) because engines produce it; the analysis of where the
frontier orbitals sit is in :mod:`halex.analysis.electronic`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from halex.errors import AnalysisError, InputError

__all__ = ["OrbitalSet", "group_labels"]


@dataclass
class OrbitalSet:
    """Molecular orbitals with their weight on groups of atoms.

    Attributes
    ----------
    energies_eV
        Orbital energies (eV), ascending, shape (n_mo,).
    occupations
        Electrons in each orbital (0–2 closed shell), shape (n_mo,).
    weights
        Projected weight of each orbital on each group, shape (n_groups, n_mo).
    groups
        Group names, one per row of ``weights``.
    meta
        Engine, settings and anything else to record with the numbers.
    """

    energies_eV: np.ndarray
    occupations: np.ndarray
    weights: np.ndarray
    groups: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.energies_eV = np.asarray(self.energies_eV, float)
        self.occupations = np.asarray(self.occupations, float)
        self.weights = np.atleast_2d(np.asarray(self.weights, float))
        self.groups = tuple(self.groups)
        n = len(self.energies_eV)
        if self.occupations.shape != (n,) or self.weights.shape != (len(self.groups), n):
            raise InputError(f"orbital arrays disagree: {n} energies, {self.occupations.shape} occupations, "
                             f"weights {self.weights.shape} for {len(self.groups)} groups")
        if n == 0:
            raise InputError("no orbitals")
        if not np.all(np.diff(self.energies_eV) >= -1e-9):
            raise InputError("orbital energies must be ascending")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (lists of floats), as kept in the result store."""
        return {"energies_eV": self.energies_eV.tolist(), "occupations": self.occupations.tolist(),
                "weights": self.weights.tolist(), "groups": list(self.groups), "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OrbitalSet:
        """Inverse of :meth:`to_dict`; raises :class:`InputError` on a malformed record."""
        try:
            return cls(np.array(data["energies_eV"]), np.array(data["occupations"]), np.array(data["weights"]),
                       tuple(data["groups"]), meta=dict(data.get("meta", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not an orbital record ({exc}): expected energies_eV, occupations, weights, groups") from None

    @property
    def homo(self) -> int:
        """Index of the highest occupied orbital (occupation > 0.5 e)."""
        occ = np.flatnonzero(self.occupations > 0.5)
        if occ.size == 0:
            raise AnalysisError("no occupied orbital in the set")
        return int(occ[-1])

    @property
    def lumo(self) -> int:
        """Index of the lowest unoccupied orbital (raises when none was computed)."""
        i = self.homo + 1
        if i >= len(self.energies_eV):
            raise AnalysisError("no unoccupied orbital in the set: ask the engine for virtual orbitals (nlumo > 0)")
        return i

    @property
    def gap_eV(self) -> float:
        """HOMO–LUMO gap (eV)."""
        return float(self.energies_eV[self.lumo] - self.energies_eV[self.homo])



def group_labels(groups: Mapping[str, Sequence[int]], natoms: int) -> np.ndarray:
    """Group name of every atom from ``{name: 0-based indices}``.

    Raises :class:`InputError` unless every group is non-empty, in range, and the groups
    cover each of the ``natoms`` atoms exactly once.
    """
    labels = np.full(natoms, "", dtype=object)
    for name, idx in groups.items():
        idx = np.asarray(idx, int)
        if idx.size == 0 or idx.min() < 0 or idx.max() >= natoms or np.any(labels[idx] != ""):
            raise InputError(f"group {name!r}: indices must be 0…{natoms - 1}, non-empty, each atom in one group")
        labels[idx] = str(name)
    if np.any(labels == ""):
        raise InputError(f"the groups leave atoms {np.flatnonzero(labels == '')[:10].tolist()} out: every atom needs a group")
    return labels.astype(str)
