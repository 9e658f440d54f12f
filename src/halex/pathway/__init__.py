"""The exchange pathway (SPEC §7): a lattice model of Cl/I on the particle's own halide sites,
fitted to relaxed energies, and Monte Carlo titration curves.

Modules follow the data's path: :mod:`~halex.pathway.lattice` (sites, environments, pair
shells) → :mod:`~halex.pathway.model` (the fitted energy) → :mod:`~halex.pathway.mc`
(semi-grand canonical, canonical and annealing kernels) → :mod:`~halex.pathway.titration`
(forward/backward sweeps, two-phase regions).
"""

from halex.pathway.lattice import HalideLattice, halide_lattice, layer_order
from halex.pathway.mc import KB_EV, anneal, canonical, sgc, total_energy
from halex.pathway.model import LatticeModel, features, fit_lattice_model, reaction_energy
from halex.pathway.titration import layer_groups, titration, two_phase_regions

__all__ = ["HalideLattice", "halide_lattice", "layer_order", "LatticeModel", "features", "fit_lattice_model", "reaction_energy",
           "sgc", "canonical", "anneal", "total_energy", "KB_EV", "titration", "two_phase_regions", "layer_groups"]
