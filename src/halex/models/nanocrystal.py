"""Perovskite nanocrystals: n1 × n2 × n3 corner-sharing PbX6 octahedra, CsX-terminated.

Construction (SPEC §3), in units of the cubic lattice constant ``a``:

* Pb at the integer points (i, j, k), 0 ≤ i < n1, 0 ≤ j < n2, 0 ≤ k < n3;
* X at every corner of every octahedron: points with exactly one half-integer
  coordinate, ``(n1+1) n2 n3 + n1 (n2+1) n3 + n1 n2 (n3+1)`` of them;
* Cs at all half-integer points (i+½, j+½, k+½), -1 ≤ i < n1, ..., so that each face
  is a complete CsX plane: ``(n1+1)(n2+1)(n3+1)`` sites.

With formal charges Cs +1, Pb +2, X −1 this block carries a net charge of
``n1 + n2 + n3 + 1`` (a short sum, see :func:`formal_charge`). **Neutrality rule**:
that many Cs are removed, lowest X-coordination first (corners have 3 X neighbours,
edges 5, faces 8, the interior 12), and among equally coordinated sites by
farthest-point sampling (each next vacancy is the candidate farthest from all
vacancies chosen so far; ties go to the lowest site index), which spreads the
vacancies over the surface deterministically. The rule is
:func:`halex.models.neutrality.pick_vacancies`, shared with the heterostructure builder. For 1×1×1 this yields the Cs4PbX6
cluster; for 5×5×5, Cs200Pb125X450 (775 atoms).

Layers and roles follow :mod:`halex.arrays`, with the interface (for a standalone
nanocrystal: the face that would touch the chalcohalide) at the low-z face.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from halex.arrays import HALEX_ARRAYS
from halex.checks import check_size, check_vacuum
from halex.errors import InputError
from halex.models.neutrality import FORMAL_CHARGES, formal_charge, pick_vacancies
from halex.phases import perovskite_a

__all__ = ["perovskite_nanocrystal", "formal_charge", "FORMAL_CHARGES", "MAX_ATOMS"]

#: Largest model the builders make (atoms). The neutrality rule needs an O(N_Cs × N_X)
#: distance table, and no engine here can compute more: 10^5 atoms is ~50× the size the
#: default engine relaxes in minutes.
MAX_ATOMS = 100_000

def _sites(n1: int, n2: int, n3: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pb, X and Cs sites of the block in units of ``a``, and the axis each X bridges along."""
    ii, jj, kk = np.meshgrid(np.arange(n1), np.arange(n2), np.arange(n3), indexing="ij")
    pb = np.stack([ii.ravel(), jj.ravel(), kk.ravel()], axis=1).astype(float)
    xs, axes = [], []
    for axis, n_axis in enumerate((n1, n2, n3)):
        rng = [np.arange(n1), np.arange(n2), np.arange(n3)]
        rng[axis] = np.arange(-1, n_axis) + 0.5
        g = np.meshgrid(*rng, indexing="ij")
        xs.append(np.stack([c.ravel() for c in g], axis=1))
        axes.append(np.full(len(xs[-1]), axis))
    ci, cj, ck = np.meshgrid(np.arange(-1, n1) + 0.5, np.arange(-1, n2) + 0.5, np.arange(-1, n3) + 0.5, indexing="ij")
    cs = np.stack([ci.ravel(), cj.ravel(), ck.ravel()], axis=1)
    return pb, np.concatenate(xs), np.concatenate(axes), cs


def _neutral_cs(cs: np.ndarray, x_pos: np.ndarray, n_remove: int) -> np.ndarray:
    """The Cs sites kept after the neutrality rule removes ``n_remove`` of them (units of ``a``)."""
    d_cs_x = np.linalg.norm(cs[:, None, :] - x_pos[None, :, :], axis=2)
    coordination = np.sum(np.abs(d_cs_x - np.sqrt(0.5)) < 1e-6, axis=1)
    removed = pick_vacancies(cs, coordination, n_remove)
    return cs[np.setdiff1d(np.arange(len(cs)), removed)]


def perovskite_nanocrystal(
    size: Sequence[int] = (3, 3, 3),
    halide: str = "Cl",
    *,
    a: float | None = None,
    vacuum: float = 8.0,
) -> Atoms:
    """Charge-neutral CsX-terminated CsPbX3 nanocrystal.

    Parameters
    ----------
    size
        Number of PbX6 octahedra along x, y and z (n1, n2, n3 ≥ 1).
    halide
        ``"Cl"``, ``"Br"`` or ``"I"``.
    a
        Pb–Pb spacing in Å (default: experimental cubic lattice constant).
    vacuum
        Vacuum (Å) between the outermost atoms and each face of the (non-periodic) box.

    Returns
    -------
    ase.Atoms
        Non-periodic model with per-atom arrays ``domain``, ``layer``, ``role`` and
        provenance in ``info``.
    """
    n1, n2, n3 = check_size(size)
    n_pb = n1 * n2 * n3
    n_atoms = ((n1 + 1) * (n2 + 1) * (n3 + 1) - (n1 + n2 + n3 + 1)) + n_pb + (3 * n_pb + n1 * n2 + n2 * n3 + n1 * n3)
    if n_atoms > MAX_ATOMS:
        raise InputError(
            f"a {n1}x{n2}x{n3} nanocrystal has {n_atoms:,} atoms, more than the {MAX_ATOMS:,} halex builds; choose a smaller size"
        )
    a = perovskite_a(halide, a)
    check_vacuum(vacuum)

    pb, x_pos, x_axis, cs = _sites(n1, n2, n3)
    # neutrality rule: remove n1+n2+n3+1 Cs, lowest X coordination first, spread out
    cs = _neutral_cs(cs, x_pos, n1 + n2 + n3 + 1)

    positions = np.concatenate([cs, pb, x_pos]) * a
    symbols = ["Cs"] * len(cs) + ["Pb"] * len(pb) + [halide] * len(x_pos)
    role = ["Cs"] * len(cs) + ["Pb"] * len(pb) + ["X_ax" if ax == 2 else "X_eq" for ax in x_axis]
    # z in units of a: PbX2 planes at integer k -> layer k+1; CsX planes at k+1/2 -> layer k+1;
    # the terminal CsX plane at z = -1/2 (facing the interface) is the interfacial monolayer, layer 0.
    z = np.concatenate([cs[:, 2], pb[:, 2], x_pos[:, 2]])
    layer = np.where(z < 0, 0, np.floor(z + 1e-9).astype(int) + 1)

    atoms = Atoms(symbols=symbols, positions=positions, pbc=False)
    atoms.new_array("domain", np.full(len(atoms), "perovskite", dtype=HALEX_ARRAYS["domain"]))
    atoms.new_array("layer", layer.astype(HALEX_ARRAYS["layer"]))
    atoms.new_array("role", np.array(role, dtype=HALEX_ARRAYS["role"]))
    atoms.center(vacuum=vacuum)
    atoms.info.update(
        builder="halex.models.perovskite_nanocrystal",
        size=f"{n1}x{n2}x{n3}",
        halide=halide,
        a=float(a),
        neutrality_rule="remove n1+n2+n3+1 lowest-coordinated Cs, farthest-point spread",
    )
    assert formal_charge(atoms) == 0
    return atoms
