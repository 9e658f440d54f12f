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
vacancies over the surface deterministically. For 1×1×1 this yields the Cs4PbX6
cluster; for 5×5×5, Cs200Pb125X450 (775 atoms).

Layers and roles follow :mod:`halex.arrays`, with the interface (for a standalone
nanocrystal: the face that would touch the chalcohalide) at the low-z face.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from halex.arrays import HALEX_ARRAYS
from halex.errors import InputError
from halex.phases import CUBIC_PEROVSKITE_A, check_halide

__all__ = ["perovskite_nanocrystal", "formal_charge", "FORMAL_CHARGES", "MAX_ATOMS"]

#: Largest model the builders make (atoms). The neutrality rule needs an O(N_Cs × N_X)
#: distance table, and no engine here can compute more: 10^5 atoms is ~50× the size the
#: default engine relaxes in minutes.
MAX_ATOMS = 100_000

#: Formal oxidation states used by the neutrality rule.
FORMAL_CHARGES: dict[str, int] = {"Cs": 1, "Pb": 2, "Cl": -1, "Br": -1, "I": -1, "S": -2}


def formal_charge(atoms: Atoms) -> int:
    """Sum of formal charges (Cs +1, Pb +2, halide −1, S −2) of ``atoms``."""
    try:
        return int(sum(FORMAL_CHARGES[s] for s in atoms.get_chemical_symbols()))
    except KeyError as exc:
        raise InputError(f"no formal charge known for element {exc.args[0]!r}") from None


def _check_size(size: Sequence[int]) -> tuple[int, int, int]:
    try:
        n = tuple(int(v) for v in size)
    except (TypeError, ValueError):
        raise InputError(f"size must be three positive integers, got {size!r}") from None
    if len(n) != 3 or any(v < 1 for v in n) or any(float(v) != float(s) for v, s in zip(n, size)):
        raise InputError(f"size must be three positive integers (octahedra along x, y, z), got {size!r}")
    return n  # type: ignore[return-value]


def _lattice_constant(halide: str, a: float | None) -> float:
    """Check ``halide``; return ``a`` (Å) or the experimental cubic lattice constant if None."""
    check_halide(halide)
    if a is None:
        a = CUBIC_PEROVSKITE_A[halide].value
    if not a > 0:
        raise InputError(f"lattice constant must be positive, got {a!r}")
    return a


def _check_vacuum(vacuum: float) -> None:
    if not vacuum >= 0:
        raise InputError(f"vacuum must be >= 0 Å, got {vacuum!r}")


def _farthest_point_order(points: np.ndarray, count: int, chosen: list[np.ndarray]) -> list[int]:
    """Indices of ``count`` points picked greedily, each farthest from all chosen so far."""
    picked: list[int] = []
    if count <= 0:
        return picked
    if chosen:
        dmin = np.min(np.linalg.norm(points[:, None, :] - np.array(chosen)[None], axis=2), axis=1)
    else:
        dmin = np.full(len(points), np.inf)
    for _ in range(count):
        # argmax returns the first (lowest index) maximum: a deterministic tie-break
        k = int(np.argmax(np.where(np.isin(np.arange(len(points)), picked), -1.0, dmin)))
        picked.append(k)
        dmin = np.minimum(dmin, np.linalg.norm(points - points[k], axis=1))
    return picked


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
    n1, n2, n3 = _check_size(size)
    n_pb = n1 * n2 * n3
    n_atoms = ((n1 + 1) * (n2 + 1) * (n3 + 1) - (n1 + n2 + n3 + 1)) + n_pb + (3 * n_pb + n1 * n2 + n2 * n3 + n1 * n3)
    if n_atoms > MAX_ATOMS:
        raise InputError(f"a {n1}x{n2}x{n3} nanocrystal has {n_atoms:,} atoms, more than the {MAX_ATOMS:,} halex builds; choose a smaller size")
    a = _lattice_constant(halide, a)
    _check_vacuum(vacuum)

    ii, jj, kk = np.meshgrid(np.arange(n1), np.arange(n2), np.arange(n3), indexing="ij")
    pb = np.stack([ii.ravel(), jj.ravel(), kk.ravel()], axis=1).astype(float)

    xs = []
    for axis, n_axis in enumerate((n1, n2, n3)):
        rng = [np.arange(n1), np.arange(n2), np.arange(n3)]
        rng[axis] = np.arange(-1, n_axis) + 0.5
        g = np.meshgrid(*rng, indexing="ij")
        pts = np.stack([c.ravel() for c in g], axis=1)
        xs.append((pts, axis))
    x_pos = np.concatenate([p for p, _ in xs])
    x_axis = np.concatenate([np.full(len(p), ax) for p, ax in xs])

    ci, cj, ck = np.meshgrid(np.arange(-1, n1) + 0.5, np.arange(-1, n2) + 0.5, np.arange(-1, n3) + 0.5, indexing="ij")
    cs = np.stack([ci.ravel(), cj.ravel(), ck.ravel()], axis=1)

    # neutrality rule: remove n1+n2+n3+1 Cs, lowest X coordination first, spread out
    n_remove = n1 + n2 + n3 + 1
    d_cs_x = np.linalg.norm(cs[:, None, :] - x_pos[None, :, :], axis=2)
    coordination = np.sum(np.abs(d_cs_x - np.sqrt(0.5)) < 1e-6, axis=1)
    removed: list[int] = []
    for cn in np.unique(coordination):
        if len(removed) == n_remove:
            break
        cand = np.flatnonzero(coordination == cn)
        take = min(n_remove - len(removed), len(cand))
        order = _farthest_point_order(cs[cand], take, [cs[r] for r in removed])
        removed.extend(int(cand[o]) for o in order)
    keep = np.setdiff1d(np.arange(len(cs)), removed)
    cs = cs[keep]

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
        builder="halex.build.perovskite_nanocrystal",
        size=f"{n1}x{n2}x{n3}",
        halide=halide,
        a=float(a),
        neutrality_rule="remove n1+n2+n3+1 lowest-coordinated Cs, farthest-point spread",
    )
    assert formal_charge(atoms) == 0
    return atoms
