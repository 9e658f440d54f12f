"""Validation of the lattice model on a periodic CsPb(Cl,I)3 crystal: mixing energies at held-out compositions.

The particle's lattice model cannot be checked against exact answers, but the same machinery
(:func:`~halex.pathway.lattice.halide_lattice`, :func:`~halex.pathway.model.fit_lattice_model`)
runs on a periodic supercell of cubic CsPbX3, where the quantity that decides mixing is well
defined: the mixing energy per formula unit,

    ΔE_mix(σ) = [E(σ) − (1 − x) E(CsPbCl3) − x E(CsPbI3)] / n_fu,   x = n_I / N_X,

with every energy fully relaxed (positions and cell, ASE ``FrechetCellFilter``). The check fits
the lattice model to configurations at *some* iodide fractions and compares its mixing energy,

    ΔE_mix,model(σ) = [y(σ) − x y(1)] / n_fu,

with the directly relaxed one at fractions it never saw. ``y`` is the fitted reaction energy of
:mod:`halex.pathway.model`; the PbX2 references only shift the site term by a constant per
exchanged halide, which cancels in ΔE_mix, so they are not computed here.

The verdict rule, fixed before any result was seen: the model **agrees** when the held-out RMSE
of ΔE_mix per exchanged halide is at most twice the model's own cross-validated RMSE per halide
(the error it claims), and the held-out mixing energies have the sign of the direct ones where
the direct value is larger than that error.

Every configuration, the two end members included, starts from the cubic supercell at the
Vegard-law lattice constant between the relaxed cubic end members, with a seeded random
displacement (``rattle``, 0.1 Å): a mixed crystal breaks the cubic symmetry and relaxes into
octahedral tilts, and end members held at the cubic saddle point would make that tilt energy
look like a (large, negative) mixing energy. Each configuration is relaxed from ``replicas``
such starts (the end members from twice as many) and the lowest minimum is kept; the spread
between replicas is reported, because at this size the tilt pattern a relaxation falls into
moves the energy by as much as the mixing energy itself. There is no global tilt search.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from ase import Atoms

from halex.errors import InputError
from halex.pathway.lattice import HalideLattice, halide_lattice
from halex.pathway.model import fit_lattice_model, reaction_energy

__all__ = ["bulk_perovskite", "composition_configurations", "mixing_check", "MIXING_AGREEMENT_FACTOR"]

log = logging.getLogger("halex.pathway")

#: Held-out RMSE allowed, in units of the model's own CV RMSE per halide.
MIXING_AGREEMENT_FACTOR = 2.0


def bulk_perovskite(supercell: tuple[int, int, int] = (2, 2, 2), halide: str = "Cl", a: float | None = None) -> Atoms:
    """A periodic cubic CsPbX3 supercell with the halex per-atom arrays.

    Parameters
    ----------
    supercell
        Repeats of the Pm-3m cell along a, b, c.
    halide
        ``"Cl"``, ``"Br"`` or ``"I"``.
    a
        Lattice constant (Å); default the experimental cubic one.

    Returns
    -------
    Atoms
        ``domain`` perovskite everywhere, ``layer`` 1 (a crystal has no interface), ``role``
        ``X_ax`` for the halide on Pb's c axis, ``X_eq`` for the others.

    Examples
    --------
    >>> atoms = bulk_perovskite((2, 2, 2))
    >>> len(atoms), sorted(set(atoms.arrays["role"].tolist()))
    (40, ['Cs', 'Pb', 'X_ax', 'X_eq'])
    """
    from halex.arrays import set_arrays
    from halex.phases import cubic_perovskite

    if len(supercell) != 3 or min(supercell) < 1:
        raise InputError(f"supercell needs three repeats >= 1, got {supercell}")
    atoms = cubic_perovskite(halide, a=a).repeat(tuple(int(n) for n in supercell))
    role = np.array(["Pb", "Cs", "X_eq", "X_eq", "X_ax"] * (len(atoms) // 5), dtype=object)
    set_arrays(atoms, {"domain": np.full(len(atoms), "perovskite"), "layer": np.ones(len(atoms), int), "role": role})
    return atoms


def composition_configurations(lattice: HalideLattice, fractions, per_fraction: int, seed: int = 0) -> np.ndarray:
    """``per_fraction`` distinct random occupations with exactly round(x N) iodides for each x."""
    rng = np.random.default_rng(seed)
    rows = []
    for x in fractions:
        n = int(round(float(x) * lattice.n_sites))
        seen: set[bytes] = set()
        for _ in range(50 * per_fraction):
            if len(seen) == per_fraction:
                break
            occ = np.zeros(lattice.n_sites, np.int8)
            occ[rng.choice(lattice.n_sites, n, replace=False)] = 1
            if occ.tobytes() not in seen:
                seen.add(occ.tobytes())
                rows.append(occ)
    return np.array(rows, np.int8).reshape(-1, lattice.n_sites)


def _relaxed_energy(lattice: HalideLattice, occ: np.ndarray, a_built: float, a_cl: float, a_i: float, engine, store,
                    *, fmax: float, steps: int, rattle: float, replicas: int) -> tuple[float, bool, float]:
    """Lowest energy (eV) of ``occ`` relaxed with its cell from ``replicas`` seeded rattles of the
    crystal at Vegard's a; also whether that one converged, and the replicas' spread (eV)."""
    import zlib

    from halex.relax import relax

    x = float(np.mean(occ))
    start = lattice.decorate(occ)
    start.set_cell(start.cell * ((1 - x) * a_cl + x * a_i) / a_built, scale_atoms=True)
    found = []
    for rep in range(replicas):
        atoms = start.copy()
        atoms.rattle(rattle, seed=zlib.crc32(np.packbits(occ).tobytes()) + rep)
        r = relax(atoms, engine, fmax=fmax, steps=steps, cell=True, store=store,
                  label=f"pathway mixing check x={x:.3f} replica {rep}", trajectory=False)
        found.append((float(r.energy), bool(r.converged)))
    energies = [e for e, _ in found]
    best = int(np.argmin(energies))
    return found[best][0], found[best][1], float(np.ptp(energies))


def _end_members(engine, store, *, fmax: float, steps: int) -> tuple[float, float]:
    """Relaxed cubic lattice constants (Å) of CsPbCl3 and CsPbI3."""
    from halex.relax import relax

    out = []
    for hal in ("Cl", "I"):
        r = relax(bulk_perovskite((1, 1, 1), hal), engine, fmax=fmax, steps=steps, cell=True, store=store,
                  label=f"pathway mixing check CsPb{hal}3", trajectory=False)
        out.append(float(r.atoms.cell.lengths()[0]))
    return out[0], out[1]


def mixing_check(engine, store_url: str, *, supercell: tuple[int, int, int] = (2, 2, 2),
                 train_fractions=(0.125, 0.375, 0.625, 0.875), test_fractions=(0.25, 0.5, 0.75), per_fraction: int = 4,
                 test_per_fraction: int = 2, n_shells: int = 3, fmax: float = 0.02, steps: int = 600,
                 rattle: float = 0.1, replicas: int = 2, seed: int = 0) -> dict[str, Any]:
    """Fit the lattice model on a periodic CsPb(Cl,I)3 supercell and test its mixing energy at held-out fractions.

    Parameters
    ----------
    engine
        Engine name or instance (energies and stress).
    store_url
        Result store: every relaxation is cached there.
    supercell
        Repeats of the cubic cell; each halide must be farther than the kept shells from its
        own image.
    train_fractions, test_fractions
        Iodide fractions of the training and of the held-out configurations (disjoint).
    per_fraction, test_per_fraction
        Random configurations per fraction.
    n_shells
        Pair shells of the model.
    fmax, steps
        Relaxation threshold (eV/Å) and step limit.
    rattle
        SD (Å) of the seeded random displacement of every start, end members included, so
        that all of them may leave the cubic saddle for a tilted minimum.
    replicas
        Rattled starts per configuration (twice as many for the two end members); the lowest
        relaxed energy is kept and the spread recorded.

    Returns
    -------
    dict
        ``rows`` (x, set, direct and model ΔE_mix in meV per formula unit, converged), ``cv``,
        ``heldout_rmse_meV_per_halide``, ``agrees`` and the rule, the relaxed end-member
        lattice constants, the fitted site and pair energies.

    Raises
    ------
    InputError
        Overlapping training and held-out fractions, or too few training configurations.
    """
    from halex.store import ResultStore
    from halex.studies.runner import _eta

    if replicas < 1:
        raise InputError(f"replicas must be >= 1, got {replicas}")
    if set(np.round(train_fractions, 6)) & set(np.round(test_fractions, 6)):
        raise InputError("training and held-out iodide fractions must differ")
    crystal = bulk_perovskite(supercell)
    a_built = float(crystal.cell.lengths()[0]) / supercell[0]
    lattice = halide_lattice(crystal, chalcohalide_layers=0, n_shells=n_shells)
    store = ResultStore(store_url)
    a_cl, a_i = _end_members(engine, store, fmax=fmax, steps=steps)
    ends = np.array([np.zeros(lattice.n_sites, np.int8), np.ones(lattice.n_sites, np.int8)])
    train = np.concatenate([ends, composition_configurations(lattice, train_fractions, per_fraction, seed)])
    test = composition_configurations(lattice, test_fractions, test_per_fraction, seed + 1)
    occs = np.concatenate([train, test])
    found, t0 = [], time.perf_counter()
    for k, occ in enumerate(occs):
        n_rep = 2 * replicas if k < 2 else replicas  # the end members anchor every mixing energy
        found.append(_relaxed_energy(lattice, occ, a_built, a_cl, a_i, engine, store, fmax=fmax, steps=steps,
                                     rattle=rattle, replicas=n_rep))
        log.info("[pathway] mixing check: %d/%d configurations relaxed%s", k + 1, len(occs),
                 _eta(time.perf_counter() - t0, k + 1, len(occs) - k - 1))
    energies, converged, spread = (np.array(v) for v in zip(*found))
    out = _compare(lattice, occs, energies, converged, len(train), supercell, a_cl, a_i)
    n_fu = lattice.n_sites // 3
    for row, sp in zip(out["rows"], spread):
        row["replica_spread_meV_per_fu"] = float(1000 * sp / n_fu)
    out["replicas"] = replicas
    out["median_replica_spread_meV_per_fu"] = float(1000 * np.median(spread[2:]) / n_fu)
    return out


def _compare(lattice: HalideLattice, occs: np.ndarray, energies: np.ndarray, converged: np.ndarray, n_train: int,
             supercell, a_cl: float, a_i: float) -> dict[str, Any]:
    """Fit on the first ``n_train`` configurations; direct against model ΔE_mix for all of them."""
    n_fu = lattice.n_sites // 3
    y = np.array([reaction_energy(e, energies[0], int(o.sum()), 0.0, 0.0) for o, e in zip(occs, energies)])
    model = fit_lattice_model(lattice, occs[:n_train], y[:n_train])
    x = occs.mean(axis=1)
    pred = np.array([model.energy(lattice, o) for o in occs])
    direct = 1000 * (y - x * y[1]) / n_fu
    fitted = 1000 * (pred - x * pred[1]) / n_fu
    held = np.arange(len(occs)) >= n_train
    n_i = np.maximum(occs.sum(axis=1), 1)
    err = (fitted - direct) * n_fu / n_i  # meV per exchanged halide
    rmse = float(np.sqrt(np.mean(err[held] ** 2)))
    cv = model.cv["rmse_meV_per_halide"]
    clear = np.abs(direct[held] * n_fu / n_i[held]) > cv
    sign_ok = bool(np.all(np.sign(fitted[held][clear]) == np.sign(direct[held][clear])))
    rows = [{"x_I": float(xi), "set": "held-out" if h else "training", "direct_meV_per_fu": float(d),
             "model_meV_per_fu": float(f), "converged": bool(c)}
            for xi, h, d, f, c in zip(x, held, direct, fitted, converged)]
    return {"supercell": list(supercell), "n_sites": lattice.n_sites, "formula_units": n_fu,
            "a_CsPbCl3_A": a_cl, "a_CsPbI3_A": a_i, "rows": rows, "cv_rmse_meV_per_halide": cv,
            "heldout_rmse_meV_per_halide": rmse, "signs_agree": sign_ok,
            "agrees": bool(rmse <= MIXING_AGREEMENT_FACTOR * cv and sign_ok),
            "rule": f"held-out RMSE per exchanged halide <= {MIXING_AGREEMENT_FACTOR:g} x CV RMSE, and the sign of "
                    "every held-out mixing energy larger than the CV error agrees",
            "site_energy_eV": model.site_energy.tolist(), "pair_energy_eV": model.pair_energy.tolist(),
            "shells_A": lattice.shells.tolist(), "kinds": lattice.kinds}
