"""Analysis of models and data: strain, lattice profiles and tilt (:mod:`halex.analysis.structure`)."""

from halex.analysis.structure import (
    domain_mismatch,
    interfacial_strain,
    lattice_profile,
    octahedral_tilt,
    pair_strain,
    perovskite_pb_pairs,
    strain_by_layer,
    tilt_by_layer,
)

__all__ = [
    "domain_mismatch",
    "interfacial_strain",
    "lattice_profile",
    "octahedral_tilt",
    "pair_strain",
    "perovskite_pb_pairs",
    "strain_by_layer",
    "tilt_by_layer",
]
