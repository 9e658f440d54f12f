"""Energy engines plugged in by name (lazy imports, as ASE's ``ase.io.formats``).

>>> from halex.engines import get_engine, list_engines
>>> sorted(list_engines())
['7net-0', '7net-mf-0', 'chgnet', 'cp2k', 'mlip', 'mlip-tuned']

``"mlip"`` is the embedded default (a universal ML interatomic potential whose
weights ship inside its PyPI package); ``"mlip-tuned"`` is it fine-tuned on the CP2K PBE
exchange energies of the parity dataset (weights inside halex); ``"cp2k"`` runs real PBE DFT; ``"7net-0"`` and
``"7net-mf-0"`` (SevenNet, optional extra ``sevennet``) rescore studies with a second and
third potential.
"""

from __future__ import annotations

import importlib
from typing import Any

from halex.engines.base import Engine
from halex.engines.orbitals import OrbitalSet
from halex.errors import EngineNotFoundError, EngineUnavailableError

__all__ = ["Engine", "OrbitalSet", "get_engine", "list_engines", "register_engine", "DEFAULT_ENGINE",
           "DEFAULT_ORBITAL_ENGINE"]

DEFAULT_ENGINE = "mlip"
#: The default engine of analyses that need electrons (:meth:`Engine.orbitals`).
DEFAULT_ORBITAL_ENGINE = "cp2k"

# name -> "module:ClassName"; modules are imported only when the engine is used.
_REGISTRY: dict[str, str] = {
    "mlip": "halex.engines.mlip:CHGNetEngine",
    "chgnet": "halex.engines.mlip:CHGNetEngine",
    "mlip-tuned": "halex.engines.mlip:CHGNetTunedEngine",
    "cp2k": "halex.engines.cp2k:Cp2kEngine",
    "7net-0": "halex.engines.sevennet:SevenNetEngine",
    "7net-mf-0": "halex.engines.sevennet:SevenNetMFEngine",
}


def list_engines() -> dict[str, str]:
    """Registered engine names and the classes they load."""
    return dict(_REGISTRY)


def register_engine(name: str, target: str) -> None:
    """Register ``"module:Class"`` (an :class:`Engine` subclass) under ``name``."""
    _REGISTRY[name] = target


def get_engine(name: str | Engine = DEFAULT_ENGINE, **settings: Any) -> Engine:
    """Instantiate the engine registered as ``name`` with ``settings``.

    Raises
    ------
    EngineNotFoundError
        ``name`` is not registered.
    EngineUnavailableError
        The engine's Python package cannot be imported.
    """
    if isinstance(name, Engine):
        if settings:
            raise TypeError("settings cannot be given together with an Engine instance")
        return name
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise EngineNotFoundError(
            f"unknown engine {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        ) from None
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineUnavailableError(
            f"engine {name!r} needs a package that is not installed ({exc}); "
            "install halex with its extras: pip install -e '.[all]'"
        ) from None
    cls = getattr(module, class_name)
    engine = cls(**settings)
    engine.name = name if name != "chgnet" else "mlip"
    return engine
