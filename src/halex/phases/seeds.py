"""Published structures of related frameworks, used only as search seeds (ion substitution).

``PB4S3BR2`` is the Pb4S3Br2 structural model of S. Toso, Q. A. Akkerman, L. Manna et al.,
"Nanocrystals of Lead Chalcohalides: A Series of Kinetically Trapped Metastable
Nanostructures", J. Am. Chem. Soc. 142, 10198 (2020), their Fig. 4d (3D electron
diffraction / XRPD, relaxed by DFT at fixed cell), as distributed in the example CIF
``examples/cifs/Pb4S3Br2_DFT.cif`` of the public nlesc-nano/QD_Builder repository.
Pnma, Z = 4: Pb 4c + 4c + 8d, S 4c + 8d, Br 8d (Pb16S12Br8). The structure search takes
seeds from related lead chalcohalide frameworks by ion substitution; this is one, and the
search also runs random PyXtal candidates next to it so that the seed has to win on
energy.
"""

from __future__ import annotations

from ase import Atoms

__all__ = ["PB4S3BR2", "pb4s3br2"]

#: (cell a, b, c in Å; Wyckoff representatives: element, x, y, z)
PB4S3BR2 = {
    "cell": (8.20261, 14.72212, 8.16986),
    "spacegroup": 62,
    "sites": [
        ("Pb", 0.128131, 0.750000, 0.117896),
        ("Pb", 0.466672, 0.750000, 0.817366),
        ("Pb", 0.794226, 0.941176, 0.936731),
        ("S", 0.807880, 0.750000, 0.999052),
        ("S", 0.634160, 0.885044, 0.646000),
        ("Br", 0.488357, 0.903264, 0.166210),
    ],
    "source": "Toso et al., J. Am. Chem. Soc. 142, 10198 (2020), Fig. 4d model (via nlesc-nano/QD_Builder)",
}


def pb4s3br2() -> Atoms:
    """The Pb4S3Br2 seed structure (36 atoms, Pnma)."""
    from ase.spacegroup import crystal

    sites = PB4S3BR2["sites"]
    a = crystal([s[0] for s in sites], basis=[s[1:] for s in sites], spacegroup=PB4S3BR2["spacegroup"],
                cellpar=[*PB4S3BR2["cell"], 90, 90, 90])
    a.info["source"] = PB4S3BR2["source"]
    return a
