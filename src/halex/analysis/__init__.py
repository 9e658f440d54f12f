"""Analysis of models and data: strain, lattice profiles and tilt (:mod:`halex.analysis.structure`);
orbital fractions per domain and band alignment (:mod:`halex.analysis.electronic`)."""

from halex.analysis.electronic import (
    alignment_table,
    band_edges,
    classify_alignment,
    electronic_domains,
    frontier_character,
)
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
    "alignment_table",
    "band_edges",
    "classify_alignment",
    "electronic_domains",
    "frontier_character",
    "domain_mismatch",
    "interfacial_strain",
    "lattice_profile",
    "octahedral_tilt",
    "pair_strain",
    "perovskite_pb_pairs",
    "strain_by_layer",
    "tilt_by_layer",
]
