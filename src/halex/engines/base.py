"""The engine protocol: an ASE calculator plus the settings that define it.

An engine is a small object with a ``name``, a ``version``, JSON-serialisable
``settings`` (every number that can change a result, with defaults filled in) and a
factory :meth:`Engine.calculator` returning a fresh ASE calculator. Studies never
know which engine they run on; the store keys results on
``(structure, engine.describe())``, so changing any setting is a cache miss.

How a program is *launched* (executable, MPI ranks, threads) is not part of the
settings: it cannot change a result and lives in the engine's profile (see
:mod:`halex.engines.cp2k`).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ase import Atoms
from ase.calculators.calculator import BaseCalculator

from halex.checks import check_elements, check_structure
from halex.errors import EngineUnavailableError, InputError

if TYPE_CHECKING:  # pragma: no cover
    from halex.engines.orbitals import OrbitalSet

__all__ = ["Engine", "Cost", "CAPABILITIES", "machine_memory_GB", "is_heavy", "HEAVY_CALL_SECONDS"]

#: One energy + forces call longer than this (s) makes a run heavy: it needs ``--yes``.
HEAVY_CALL_SECONDS = 600.0


def machine_memory_GB() -> float:
    """Physical memory of this machine (GiB)."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not a POSIX system
        return 16.0


def is_heavy(seconds: float, memory_GB: float) -> bool:
    """A call over :data:`HEAVY_CALL_SECONDS`, or over 80 % of this machine's memory."""
    return seconds > HEAVY_CALL_SECONDS or memory_GB > 0.8 * machine_memory_GB()

#: What an engine can compute, and what to tell a user whose engine cannot.
CAPABILITIES: dict[str, str] = {
    "energy": "energies",
    "forces": "forces",
    "orbitals": "molecular orbitals (it has no electrons): use an engine that does, e.g. --engine cp2k",
}


@dataclass(frozen=True)
class Cost:
    """What one energy + forces call of an engine costs on a structure, by the engine's cost model.

    Attributes
    ----------
    seconds
        Wall time of one call on this kind of machine (2 cores), s.
    memory_GB
        Peak memory, GiB.
    detail
        What the estimate rests on (atoms, basis functions, grid), for the plan line.
    heavy
        Too large to run on a laptop-class machine without being asked (``--yes``).
    """

    seconds: float
    memory_GB: float
    detail: str
    heavy: bool = False


class Engine(ABC):
    """Base class of all halex engines.

    Subclasses set :attr:`name` and :attr:`defaults` and implement
    :attr:`version`, :attr:`supported_elements` and :meth:`calculator`. Engines that
    compute more than energies and forces list it in :attr:`capabilities` and override
    the matching method (``"orbitals"``: :meth:`orbitals`).
    """

    #: Registry name of the engine.
    name: str = ""
    #: Default settings; user settings override them key by key.
    defaults: Mapping[str, Any] = {}
    #: Settings accepted but, unlike :attr:`defaults`, recorded only when given, so adding one
    #: leaves the settings (and the store keys) of every earlier result unchanged: name ->
    #: the values it may take.
    optional_settings: Mapping[str, tuple[Any, ...]] = {}
    #: What the engine computes (keys of :data:`CAPABILITIES`).
    capabilities: frozenset[str] = frozenset({"energy", "forces"})

    def __init__(self, **settings: Any) -> None:
        known = set(self.defaults) | set(self.optional_settings)
        unknown = sorted(set(settings) - known)
        if unknown:
            raise InputError(
                f"unknown setting(s) {', '.join(unknown)} for engine {self.name!r}; "
                f"known: {', '.join(sorted(known))}"
            )
        for k, allowed in self.optional_settings.items():
            if settings.get(k) is not None and settings[k] not in allowed:
                raise InputError(f"{k} must be {' or '.join(repr(v) for v in allowed)} (or absent), got {settings[k]!r}")
        merged = {**self.defaults, **{k: v for k, v in settings.items() if k in self.defaults or v is not None}}
        try:
            json.dumps(merged)
        except TypeError as exc:
            raise InputError(f"engine settings must be JSON-serialisable: {exc}") from None
        self._settings = merged

    @property
    def settings(self) -> dict[str, Any]:
        """A copy of the complete settings (defaults filled in)."""
        return json.loads(json.dumps(self._settings))

    @property
    @abstractmethod
    def version(self) -> str:
        """Version string of the code and model/parameters behind the engine."""

    @property
    @abstractmethod
    def supported_elements(self) -> frozenset[str]:
        """Chemical symbols the engine can describe."""

    @abstractmethod
    def calculator(self, directory: str | Path | None = None) -> BaseCalculator:
        """A fresh ASE calculator; file-based engines run inside ``directory``."""

    def check(self, atoms: Atoms) -> None:
        """Raise a :class:`~halex.errors.HalexError` if ``atoms`` cannot be computed."""
        check_structure(atoms)
        check_elements(atoms, self.supported_elements, engine=self.name)

    def require(self, capability: str) -> None:
        """Raise :class:`~halex.errors.EngineUnavailableError` unless the engine can compute ``capability``."""
        if capability not in CAPABILITIES:
            raise InputError(f"unknown capability {capability!r}; known: {', '.join(CAPABILITIES)}")
        if capability not in self.capabilities:
            raise EngineUnavailableError(f"the {self.name!r} engine cannot compute {CAPABILITIES[capability]}")

    def orbitals(
        self,
        atoms: Atoms,
        groups: Mapping[str, Sequence[int]],
        *,
        nlumo: int = 20,
        directory: str | Path | None = None,
    ) -> OrbitalSet:
        """Molecular orbitals of ``atoms`` with their weight on every group of atoms.

        Parameters
        ----------
        atoms
            The model (not modified).
        groups
            Group name → 0-based atom indices; every atom in exactly one group.
        nlumo
            Virtual (unoccupied) orbitals to compute.
        directory
            Run directory of file-based engines (default: a new temporary one).

        Returns
        -------
        OrbitalSet
            Energies (eV), occupations and per-group weights.

        Raises
        ------
        EngineUnavailableError
            The engine has no electrons (the base implementation always raises).
        """
        self.require("orbitals")
        raise NotImplementedError(f"{type(self).__name__} lists 'orbitals' but does not implement Engine.orbitals")

    def cost(self, atoms: Atoms) -> Cost | None:
        """Estimated cost of one energy + forces call on ``atoms`` (None: the engine has no cost model)."""
        return None

    def describe(self) -> dict[str, Any]:
        """``{"name", "version", "settings"}``: recorded with every result."""
        return {"name": self.name, "version": self.version, "settings": self.settings}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._settings!r})"
