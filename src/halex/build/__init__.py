"""Atomistic models: nanocrystals, heterostructures and exchange operations (pure functions)."""

from halex.build.nanocrystal import perovskite_nanocrystal, formal_charge

__all__ = ["perovskite_nanocrystal", "formal_charge"]
