"""Where a study's relaxation starts: warm starts along a series, and replica displacements.

A **warm start** takes the relaxed geometry of the model's parent in the study (the
model one exchange step before it: N − 1 layers for N, the previous chalcohalide
fraction, the unalloyed model for an alloy) and puts the model's own species on it. The
exchange operations of :mod:`halex.models` change species only, never the order or
number of atoms, so a parent and its child share atom indices. Most atoms are then
already near their minimum, and a relaxation needs a fraction of the steps of a start
from the built geometry (measured in ``benchmarks/results/bench_protocol.md``).

A **replica** start adds a seeded Gaussian displacement to every atom, so replicas of a
model sample the minimum-to-minimum noise of the relaxation. In a study the replicas are
chains: replica r of a model is warm-started from replica r of its parent, so their spread
also carries each chain's own history.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from halex.errors import InputError

__all__ = ["warm_start", "replica_start", "REPLICA_RATTLE_A"]

#: standard deviation (Å) of the Gaussian displacement of each atom in a replica start
REPLICA_RATTLE_A = 0.05


def warm_start(template: Atoms, parent: Atoms) -> Atoms:
    """``template`` (species, arrays, info) on the positions and cell of ``parent``.

    Parameters
    ----------
    template
        The model as built (its species are kept).
    parent
        The relaxed parent: same number of atoms, same order and same halex arrays
        (``domain``, ``layer``, ``role``) where both have them.

    Returns
    -------
    Atoms
        A copy of ``template`` with ``parent``'s positions and cell; ``info["warm_start"]``
        is True.

    Raises
    ------
    InputError
        The two do not describe the same atoms.

    Examples
    --------
    >>> from ase.build import molecule
    >>> a = molecule("H2O"); b = a.copy(); b.positions += 0.1
    >>> bool(abs(warm_start(a, b).positions - b.positions).max() == 0)
    True
    """
    if len(template) != len(parent):
        raise InputError(f"a warm start needs the same atoms: the model has {len(template)}, its parent {len(parent)}")
    for name in ("domain", "layer", "role"):
        if name in template.arrays and name in parent.arrays and not np.array_equal(template.arrays[name], parent.arrays[name]):
            raise InputError(f"a warm start needs the same atoms in the same order: the '{name}' arrays differ")
    out = template.copy()
    out.set_cell(parent.cell)
    out.positions = parent.positions
    out.info["warm_start"] = True
    return out


def replica_start(atoms: Atoms, replica: int) -> Atoms:
    """Start ``replica`` of a model: ``atoms`` itself for 0, else every atom displaced by a
    Gaussian of :data:`REPLICA_RATTLE_A` Å per component (seeded by the replica number).

    Parameters
    ----------
    atoms
        The built (or warm) start.
    replica
        0, 1, 2, ...

    Returns
    -------
    Atoms
        A copy (arrays and info kept).

    Examples
    --------
    >>> from ase.build import bulk
    >>> a = bulk("Cu", cubic=True)
    >>> bool(abs(replica_start(a, 1).positions - a.positions).max() > 0)
    True
    """
    out = atoms.copy()
    if replica:
        out.positions += np.random.default_rng(1000 + int(replica)).normal(0.0, REPLICA_RATTLE_A, out.positions.shape)
        out.info["replica"] = int(replica)
    return out
