"""The neutrality rule shared by every builder: formal charges and where vacancies go.

Formal oxidation states (SPEC §3): Cs +1, Pb +2, halide −1, S −2. A block of sites cut
from a crystal is rarely neutral; the builders remove ions until the formal charge is
zero, always by the same rule (:func:`pick_vacancies`):

* **lowest coordination first** — an ion with fewer counter-ions nearby (a corner before
  an edge before a face site) is the one a real surface loses first;
* **spread out** — among equally coordinated sites, by farthest-point sampling: each
  next vacancy is the candidate farthest from every vacancy chosen so far (ties go to the
  lowest site index), so vacancies spread over the surface deterministically.

:func:`neutralise_by_coordination` removes ions of one sign (the perovskite's Cs);
:func:`neutralise_mixed` removes cations while the charge is positive and anions while it
is negative (the chalcohalide domain), one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from halex.errors import InputError, StructureError

__all__ = ["FORMAL_CHARGES", "formal_charge", "charge_of", "farthest_point_order", "pick_vacancies",
           "neutralise_mixed"]

#: Formal oxidation states used by the neutrality rule.
FORMAL_CHARGES: dict[str, int] = {"Cs": 1, "Pb": 2, "Cl": -1, "Br": -1, "I": -1, "S": -2}


def charge_of(symbols: Sequence[str]) -> int:
    """Sum of the formal charges of ``symbols`` (Cs +1, Pb +2, halide −1, S −2)."""
    try:
        return int(sum(FORMAL_CHARGES[s] for s in symbols))
    except KeyError as exc:
        raise InputError(f"no formal charge known for element {exc.args[0]!r}") from None


def formal_charge(atoms: Atoms) -> int:
    """Sum of formal charges (Cs +1, Pb +2, halide −1, S −2) of ``atoms``.

    Examples
    --------
    >>> from ase import Atoms
    >>> formal_charge(Atoms("CsPbCl3"))
    0
    """
    return charge_of(atoms.get_chemical_symbols())


def farthest_point_order(points: np.ndarray, count: int, chosen: Sequence[np.ndarray] | np.ndarray = ()) -> list[int]:
    """Indices of ``count`` points picked greedily, each farthest from all chosen so far.

    ``chosen`` are points already picked (Å); the first maximum wins a tie, so the
    order is deterministic.

    Examples
    --------
    >>> import numpy as np
    >>> farthest_point_order(np.array([[0.0, 0, 0], [1, 0, 0], [3, 0, 0]]), 2)
    [0, 2]
    """
    picked: list[int] = []
    if count <= 0:
        return picked
    chosen = np.asarray(chosen, float).reshape(-1, 3)
    if len(chosen):
        dmin = np.min(np.linalg.norm(points[:, None, :] - chosen[None], axis=2), axis=1)
    else:
        dmin = np.full(len(points), np.inf)
    for _ in range(count):
        k = int(np.argmax(np.where(np.isin(np.arange(len(points)), picked), -1.0, dmin)))
        picked.append(k)
        dmin = np.minimum(dmin, np.linalg.norm(points - points[k], axis=1))
    return picked


def pick_vacancies(points: np.ndarray, coordination: np.ndarray, count: int,
                   chosen: Sequence[np.ndarray] | np.ndarray = ()) -> list[int]:
    """``count`` sites to vacate: lowest ``coordination`` first, spread by farthest-point sampling.

    Parameters
    ----------
    points
        Candidate positions (Å), shape (n, 3).
    coordination
        Counter-ions of each candidate (any integer measure; lower goes first).
    count
        How many sites to pick (at most ``n``).
    chosen
        Vacancies already made elsewhere (Å): new ones keep away from them too.

    Returns
    -------
    list of int
        Indices into ``points``, in the order they were picked.
    """
    coordination = np.asarray(coordination)
    if count > len(points):
        raise StructureError(f"cannot make {count} vacancies among {len(points)} candidate sites")
    removed: list[int] = []
    spread = [np.asarray(c, float) for c in np.asarray(chosen, float).reshape(-1, 3)]
    for cn in np.unique(coordination):
        if len(removed) == count:
            break
        cand = np.flatnonzero(coordination == cn)
        order = farthest_point_order(points[cand], min(count - len(removed), len(cand)),
                                     spread + [points[r] for r in removed])
        removed.extend(int(cand[o]) for o in order)
    return removed


def neutralise_mixed(points: np.ndarray, symbols: np.ndarray, coordination: np.ndarray, removable: np.ndarray,
                     *, cation: str, anions: Sequence[str]) -> list[int]:
    """Ions to remove so that ``symbols`` carry no formal charge, one at a time.

    While the charge is positive a ``cation`` is removed, while it is negative the first
    of ``anions`` that is left among the removable sites; each pick is
    :func:`pick_vacancies` of one site of that species, away from the earlier ones.

    Parameters
    ----------
    points, symbols, coordination
        Positions (Å), chemical symbols and counter-ion counts of the candidate ions.
    removable
        Boolean mask of the ions that may go (e.g. outside an interfacial slab).
    cation, anions
        Species removed for a positive and (in order of preference) a negative charge.

    Returns
    -------
    list of int
        Indices of the ions to remove.
    """
    q = charge_of(symbols)
    removed: list[int] = []
    while q != 0:
        left = [a for a in anions if np.any(removable & (symbols == a))] or [anions[-1]]
        species = cation if q > 0 else left[0]
        cand = np.setdiff1d(np.flatnonzero(removable & (symbols == species)), removed)
        if cand.size == 0:
            raise StructureError(f"cannot make the domain neutral (charge {q:+d}): make it thicker")
        lowest = cand[coordination[cand] == coordination[cand].min()]
        removed.append(int(lowest[pick_vacancies(points[lowest], np.zeros(len(lowest)), 1, points[removed])[0]]))
        q -= FORMAL_CHARGES[species]
    return removed
