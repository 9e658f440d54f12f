"""The halide sites of a particle as a lattice: site environments and pair shells.

A lattice model of Cl/I on a *whole nanoparticle* cannot come from the cluster-expansion
libraries (icet, CLEASE, smol): they need a periodic crystal, and the sites that matter here
(interface, bottom, surface, chalcohalide) are not symmetry-equivalent anyway. halex builds
the lattice from the model's own per-atom arrays instead:

* the **sites** are the halide atoms of the perovskite domain and of the first
  ``chalcohalide_layers`` chalcohalide layers; every other atom is fixed;
* each site has a **kind**, its environment: domain, layer (counted from the interface,
  SPEC §3), role (``X_ax``, ``X_eq``, chalcohalide ``X``) and coordination class: the number
  of Pb within 3.7 Å and of Cs within 4.6 Å, which separates bulk, face, edge and corner
  halides of the particle;
* **pair shells** are the distinct site–site distances of the built model up to a cutoff,
  grouped where consecutive distances differ by less than ``shell_tol``.

Occupations are 0 (Cl, the source halide) and 1 (I, the target halide).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from halex.errors import InputError

__all__ = ["HalideLattice", "halide_lattice", "layer_order"]

_PB_CUT, _CS_CUT = 3.7, 4.6  # Å: first Pb and Cs neighbours of a halide (Pb–X ≈ 2.8–3.2 Å, Cs–X ≈ 4.0 Å)


@dataclass
class HalideLattice:
    """Sites, their kinds and the pair shells of a particle's halide lattice.

    Attributes
    ----------
    atoms
        The model (the built geometry the sites were taken from).
    index
        Atom index of each site.
    kind
        Index into :attr:`kinds` of each site.
    kinds
        Environment labels ``"domain layer role Pb<n> Cs<m>"``.
    layer, domain
        Per site, from the model's arrays.
    shells
        Upper distance (Å) of each pair shell.
    indptr, neighbours, neighbour_shell
        Neighbour lists in CSR form: the neighbours of site ``i`` are
        ``neighbours[indptr[i]:indptr[i + 1]]``, in shell ``neighbour_shell[...]``.
    source, target
        The halides an occupation 0 and 1 stand for.
    """

    atoms: Atoms
    index: np.ndarray
    kind: np.ndarray
    kinds: list[str]
    layer: np.ndarray
    domain: np.ndarray
    shells: np.ndarray
    indptr: np.ndarray
    neighbours: np.ndarray
    neighbour_shell: np.ndarray
    source: str = "Cl"
    target: str = "I"
    pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))

    @property
    def n_sites(self) -> int:
        return int(self.index.size)

    def occupation(self, atoms: Atoms) -> np.ndarray:
        """Occupations (0 source, 1 target) of this lattice's sites in ``atoms`` (same atom order)."""
        if len(atoms) != len(self.atoms):
            raise InputError(f"the model has {len(atoms)} atoms, the lattice was built on {len(self.atoms)}")
        sym = np.array(atoms.get_chemical_symbols())[self.index]
        bad = ~np.isin(sym, [self.source, self.target])
        if bad.any():
            raise InputError(f"site {int(self.index[bad][0])} holds {sym[bad][0]}, not {self.source} or {self.target}")
        return (sym == self.target).astype(np.int8)

    def decorate(self, occ: np.ndarray) -> Atoms:
        """A copy of the model with the sites occupied as ``occ`` (arrays kept)."""
        atoms = self.atoms.copy()
        sym = np.array(atoms.get_chemical_symbols(), dtype=object)
        sym[self.index] = np.where(np.asarray(occ) > 0, self.target, self.source)
        atoms.set_chemical_symbols(list(sym))
        return atoms


def _coordination(atoms: Atoms, sites: np.ndarray) -> np.ndarray:
    """Pb within 3.7 Å and Cs within 4.6 Å of each site (periodic images counted)."""
    from ase.neighborlist import neighbor_list

    sym = np.array(atoms.get_chemical_symbols())
    i, j, d = neighbor_list("ijd", atoms, max(_PB_CUT, _CS_CUT))
    pos_of = np.full(len(atoms), -1)
    pos_of[sites] = np.arange(sites.size)
    out = np.zeros((sites.size, 2), np.int64)
    for col, (el, cut) in enumerate((("Pb", _PB_CUT), ("Cs", _CS_CUT))):
        hit = (pos_of[i] >= 0) & (sym[j] == el) & (d < cut)
        out[:, col] = np.bincount(pos_of[i[hit]], minlength=sites.size)
    return out


def _site_pairs(atoms: Atoms, sites: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Site–site pairs within ``cutoff`` (Å) as (i, j, d) over site indices, both directions.

    In a periodic cell every image within the cutoff is its own entry, so a pair seen
    through two images counts twice, as it does in the infinite crystal; a site's own images
    appear with i == j.
    """
    from ase.neighborlist import neighbor_list

    return neighbor_list("ijd", atoms[sites], cutoff)


def _shells(d: np.ndarray, cutoff: float, tol: float) -> np.ndarray:
    """Upper bounds of the distance shells: sorted distances split where they jump by more than ``tol``."""
    u = np.sort(d[d <= cutoff])
    if u.size == 0:
        return np.zeros(0)
    breaks = np.flatnonzero(np.diff(u) > tol)
    return np.append(u[breaks], u[-1]) + 1e-6


def halide_lattice(atoms: Atoms, *, chalcohalide_layers: int = 1, n_shells: int = 3, cutoff: float = 8.5,
                   shell_tol: float = 0.35, source: str = "Cl", target: str = "I") -> HalideLattice:
    """The halide lattice of a built (or relaxed) model.

    Parameters
    ----------
    atoms
        A halex model (``domain``, ``layer``, ``role`` arrays).
    chalcohalide_layers
        Chalcohalide layers (−1 … −k) whose halides are sites; 0: perovskite only.
    n_shells
        Pair shells kept (the nearest ones).
    cutoff
        Largest pair distance considered (Å).
    shell_tol
        Distances closer than this (Å) fall into one shell.
    source, target
        Halides of occupation 0 and 1.

    Returns
    -------
    HalideLattice

    Raises
    ------
    InputError
        A model without halex arrays or without halide sites.

    Examples
    --------
    >>> from halex.models import perovskite_nanocrystal
    >>> lat = halide_lattice(perovskite_nanocrystal((2, 2, 2), "Cl"))
    >>> lat.n_sites, round(float(lat.shells[0]), 2)
    (36, 3.96)
    """
    from halex.arrays import has_halex_arrays

    if not has_halex_arrays(atoms):
        raise InputError("the model lacks the per-atom arrays domain/layer/role: build it with 'halex build ...'")
    sym = np.array(atoms.get_chemical_symbols())
    dom, lay, role = (atoms.arrays[k] for k in ("domain", "layer", "role"))
    halide = np.isin(sym, [source, target])
    keep = halide & ((dom == "perovskite") | ((dom == "chalcohalide") & (lay >= -chalcohalide_layers)))
    sites = np.flatnonzero(keep)
    if sites.size == 0:
        raise InputError(f"the model has no {source}/{target} halide sites in its perovskite or first "
                         f"{chalcohalide_layers} chalcohalide layer(s)")
    coord = _coordination(atoms, sites)
    labels = [f"{dom[i]} {int(lay[i])} {role[i]} Pb{c[0]} Cs{c[1]}" for i, c in zip(sites, coord)]
    kinds = sorted(set(labels), key=lambda s: (s.split()[0], int(s.split()[1]), s))
    kind = np.array([kinds.index(s) for s in labels], np.int64)
    i, j, d = _site_pairs(atoms, sites, cutoff)
    shells = _shells(d[i < j], cutoff, shell_tol)[:n_shells]
    shell_of = np.searchsorted(shells, d)
    keep = shell_of < len(shells)
    if np.any(keep & (i == j)):  # a site would interact with itself
        raise InputError(f"a halide site lies within {float(shells[-1]):.2f} Å of its own periodic image: repeat the "
                         f"cell (shortest cell length {min(atoms.cell.lengths()):.2f} Å) or keep fewer shells")
    i, j, shell_of = i[keep], j[keep], shell_of[keep]
    order = np.lexsort((shell_of, j, i))
    i, j, shell_of = i[order], j[order], shell_of[order]
    indptr = np.searchsorted(i, np.arange(sites.size + 1)).astype(np.int64)
    pairs = np.stack([i, j, shell_of], axis=1)[i < j].astype(np.int64)
    return HalideLattice(atoms.copy(), sites, kind, kinds, lay[sites].astype(np.int64), dom[sites].astype(str), shells,
                         indptr, j.astype(np.int64), shell_of.astype(np.int64), source, target, pairs)


def layer_order(lattice: HalideLattice) -> list[list[np.ndarray]]:
    """Site masks of whole layers in the orders the exchange studies use.

    Parameters
    ----------
    lattice
        The halide lattice.

    Returns
    -------
    list of list of ndarray
        Perovskite layers from the interface (0, 1, …), from the bottom (…, 1, 0) and, with
        chalcohalide sites, the chalcohalide layers first and then the perovskite from the interface.
    """
    pv = sorted({int(v) for v in lattice.layer[lattice.domain == "perovskite"]})
    ch = sorted({int(v) for v in lattice.layer[lattice.domain == "chalcohalide"]}, reverse=True)

    def mask(domain: str, layer: int) -> np.ndarray:
        return (lattice.domain == domain) & (lattice.layer == layer)

    up = [mask("perovskite", l) for l in pv]
    orders = [up, up[::-1]]
    if ch:
        orders.append([mask("chalcohalide", l) for l in ch] + up)
    return orders
