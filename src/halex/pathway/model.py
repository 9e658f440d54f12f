"""A lattice model of Cl/I on a particle's halide sites, fitted by regularised regression.

The energy of an occupation σ (σ_i = 1: I on site i, 0: Cl) is the exchange-reaction energy of
SPEC §4 summed over the exchanged halides,

    E(σ) = Σ_i h_{kind(i)} σ_i + Σ_{i<j, shell s} J_s σ_i σ_j   (eV),

fitted to ``y(σ) = E_model(σ) − E_model(0) + (n_I / 2)(E_PbCl2 − E_PbI2)``: the energy of
``model(0) + (n_I/2) PbI2 → model(σ) + (n_I/2) PbCl2``, so that an iodide exchange chemical
potential Δμ = 0 means "the reaction is neutral" and Δμ > 0 favours iodide. ``h_kind`` is the
exchange energy of an isolated site of that environment, ``J_s`` the interaction of two I at
shell ``s``. The fit is scikit-learn's ``RidgeCV`` without intercept (E(0) = 0 by construction);
its cross-validated error is reported per exchanged halide.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from halex.errors import InputError
from halex.pathway.lattice import HalideLattice

__all__ = ["LatticeModel", "features", "fit_lattice_model", "bootstrap_lattice_models", "reaction_energy", "per_halide_rmse",
           "error_by_iodide_fraction", "RIDGE_ALPHAS", "IODIDE_FRACTION_BINS"]

log = logging.getLogger("halex.pathway")

#: ridge penalties the fit chooses from, one per decade. The default heterostructure's
#: final training sets chose 100 on this grid, for the particle and its free nanocrystal
#: (docs/pathway.md); the earlier grid ended at 1 and had them both pinned at its end.
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-6, 4, 11))


def reaction_energy(e_config: float, e_pristine: float, n_exchanged: int, e_pbcl2: float, e_pbi2: float) -> float:
    """Energy (eV) of exchanging ``n_exchanged`` halides with PbI2 → PbCl2 (Δμ = 0 reference).

    Parameters
    ----------
    e_config, e_pristine
        Energies (eV) of the configuration and of the pristine particle.
    n_exchanged
        Halides exchanged.
    e_pbcl2, e_pbi2
        Energies (eV) of one PbCl2 and one PbI2 formula unit.

    Returns
    -------
    float
        eV (not per halide).

    Examples
    --------
    >>> reaction_energy(-10.0, -11.0, 2, -5.0, -4.0)   # 1 eV + (2/2)(−5 + 4) eV
    0.0
    """
    return float(e_config - e_pristine + 0.5 * n_exchanged * (e_pbcl2 - e_pbi2))


def per_halide_rmse(predicted: np.ndarray, target: np.ndarray, occupations: np.ndarray) -> float:
    """RMS of (predicted − target) per exchanged halide (the energies' unit; a configuration
    with no iodide counts as one halide).

    Examples
    --------
    >>> per_halide_rmse(np.array([1.0, 0.0]), np.array([0.0, 0.0]), np.array([[1, 1], [0, 0]]))
    0.3535533905932738
    """
    per = (np.asarray(predicted, float) - np.asarray(target, float)) / np.maximum(np.asarray(occupations).sum(axis=1), 1)
    return float(np.sqrt(np.mean(per**2)))


#: iodide fractions of the sites that split the cross-validated error into dilute, low and the rest
IODIDE_FRACTION_BINS = (0.05, 0.15)


def error_by_iodide_fraction(predicted: np.ndarray, target: np.ndarray, occupations: np.ndarray,
                             edges: tuple[float, ...] = IODIDE_FRACTION_BINS) -> list[dict[str, Any]]:
    """Where a fit's error lies: per range of iodide fraction, the configurations, the RMS error
    of the total reaction energy (eV), the RMS error per exchanged halide (meV), and the mean
    signed error, predicted − target (eV: > 0 when those configurations relax lower than the
    model predicts).

    Examples
    --------
    >>> occ = np.array([[1] + [0] * 19, [1] * 20])      # 5 % and 100 % I
    >>> rows = error_by_iodide_fraction(np.array([0.5, 2.0]), np.array([0.0, 2.0]), occ)
    >>> [(r["iodide_fraction"], r["configurations"], r["mean_error_eV"]) for r in rows]
    [('0–5 %', 0, None), ('5–15 %', 1, 0.5), ('15–100 %', 1, 0.0)]
    """
    occ = np.asarray(occupations)
    n_i, frac = occ.sum(axis=1), occ.mean(axis=1)
    err = np.asarray(predicted, float) - np.asarray(target, float)
    bounds = (0.0, *edges, 1.0 + 1e-12)
    out = []
    for lo, hi in zip(bounds, bounds[1:]):
        k = (frac >= lo) & (frac < hi)
        row = {"iodide_fraction": f"{100 * lo:.0f}–{100 * min(hi, 1.0):.0f} %", "configurations": int(k.sum()),
               "rms_eV": None, "rms_meV_per_halide": None, "mean_error_eV": None}
        if k.any():
            row.update(rms_eV=float(np.sqrt(np.mean(err[k] ** 2))), mean_error_eV=float(np.mean(err[k])),
                       rms_meV_per_halide=1000 * float(np.sqrt(np.mean((err[k] / np.maximum(n_i[k], 1)) ** 2))))
        out.append(row)
    return out


def features(lattice: HalideLattice, occ: np.ndarray) -> np.ndarray:
    """Feature vector of an occupation: I count per site kind, then I–I pair count per shell.

    Parameters
    ----------
    lattice
        The halide lattice.
    occ
        Occupation per site (1: I).

    Returns
    -------
    ndarray
        ``len(kinds) + len(shells)`` counts.

    Examples
    --------
    >>> from halex.models import perovskite_nanocrystal
    >>> from halex.pathway.lattice import halide_lattice
    >>> lat = halide_lattice(perovskite_nanocrystal((2, 2, 2), "Cl"), n_shells=2)
    >>> f = features(lat, np.ones(lat.n_sites, np.int8))
    >>> int(f[: len(lat.kinds)].sum()), int(f[len(lat.kinds):].sum()) == len(lat.pairs)
    (36, True)
    """
    occ = np.asarray(occ)
    if occ.shape != (lattice.n_sites,):
        raise InputError(f"an occupation needs {lattice.n_sites} entries, got shape {occ.shape}")
    site = np.bincount(lattice.kind, weights=occ.astype(float), minlength=len(lattice.kinds))
    p = lattice.pairs
    both = (occ[p[:, 0]] > 0) & (occ[p[:, 1]] > 0)
    pair = np.bincount(p[both, 2], minlength=len(lattice.shells)).astype(float)
    return np.concatenate([site, pair])


@dataclass
class LatticeModel:
    """Fitted site energies per kind and pair energies per shell (eV).

    Attributes
    ----------
    site_energy
        ``h`` per site kind (eV): energy of the exchange reaction for one isolated site.
    pair_energy
        ``J`` per shell (eV).
    cv
        Cross-validation report of the fit (``rmse_meV_per_halide``, ``rmse_kcal_mol_per_halide``,
        ``n_configurations``, ``n_terms``, ``alpha``), empty for a model given by hand.
    """

    site_energy: np.ndarray
    pair_energy: np.ndarray
    cv: dict[str, Any]

    def fields(self, lattice: HalideLattice) -> tuple[np.ndarray, np.ndarray]:
        """Per-site field ``h_i`` and per-neighbour-entry coupling ``J`` (CSR, as the lattice)."""
        return (np.asarray(self.site_energy, float)[lattice.kind],
                np.asarray(self.pair_energy, float)[lattice.neighbour_shell])

    def energy(self, lattice: HalideLattice, occ: np.ndarray) -> float:
        """E(σ) in eV."""
        return float(features(lattice, occ) @ np.concatenate([self.site_energy, self.pair_energy]))


def fit_lattice_model(lattice: HalideLattice, occupations: np.ndarray, energies: np.ndarray, *,
                      alphas: tuple[float, ...] = RIDGE_ALPHAS, folds: int = 5) -> LatticeModel:
    """Fit site and pair energies to reaction energies of configurations (RidgeCV, no intercept).

    Parameters
    ----------
    lattice
        The halide lattice.
    occupations
        (n_configurations, n_sites) occupations.
    energies
        Reaction energies ``y(σ)`` in eV (:func:`reaction_energy`).
    alphas
        Ridge penalties tried (eV² per count², the features being counts); the one with the
        lowest leave-one-out error is used. The largest one chosen is logged as a warning
        (``cv["alpha_at_edge"]``): a stronger penalty may fit better. (The smallest, 10⁻⁶, is
        plain least squares for count features; choosing it needs no warning.)
    folds
        K of the K-fold cross-validation that reports the error.

    Returns
    -------
    LatticeModel

    Raises
    ------
    InputError
        Fewer configurations than the model has terms plus two (the message says how many).
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, cross_val_predict

    from halex.units import EV_KCAL_PER_MOL

    occ = np.asarray(occupations)
    y = np.asarray(energies, float)
    X = np.array([features(lattice, o) for o in occ])
    n_terms = X.shape[1]
    if len(y) != len(X):
        raise InputError(f"{len(X)} occupations but {len(y)} energies")
    if len(y) < n_terms + 2:
        raise InputError(f"{len(y)} training configurations are too few for {n_terms} model terms "
                         f"({len(lattice.kinds)} site kinds + {len(lattice.shells)} pair shells): need at least {n_terms + 2}")
    model = RidgeCV(alphas=alphas, fit_intercept=False).fit(X, y)
    pred = cross_val_predict(RidgeCV(alphas=alphas, fit_intercept=False), X, y,
                             cv=KFold(min(folds, len(y)), shuffle=True, random_state=0))
    rmse = per_halide_rmse(pred, y, occ)
    cv = {"rmse_meV_per_halide": 1000 * rmse, "rmse_kcal_mol_per_halide": rmse * EV_KCAL_PER_MOL,
          "n_configurations": int(len(y)), "n_terms": int(n_terms), "alpha": float(model.alpha_), "folds": int(min(folds, len(y))),
          "predicted_eV": pred.tolist(), "target_eV": y.tolist(),
          "error_by_iodide_fraction": error_by_iodide_fraction(pred, y, occ)}
    cv["alpha_at_edge"] = bool(len(alphas) > 1 and model.alpha_ == max(alphas))
    if cv["alpha_at_edge"]:
        log.warning("the ridge penalty chosen by cross-validation, %g, is the largest tried (%g–%g): a stronger one "
                    "may fit better; pass a wider grid (alphas=...)", model.alpha_, min(alphas), max(alphas))
    coef = np.asarray(model.coef_, float)
    return LatticeModel(coef[: len(lattice.kinds)], coef[len(lattice.kinds):], cv)


def bootstrap_lattice_models(lattice: HalideLattice, occupations: np.ndarray, energies: np.ndarray, *, alpha: float,
                             n: int, seed: int = 0) -> list[LatticeModel]:
    """The lattice model refitted on ``n`` bootstrap resamples of its training set.

    Each refit draws as many configurations as the training set holds, with replacement, and
    fits the site and pair energies by ridge regression at the penalty ``alpha`` the full fit
    chose. The spread of anything computed from the refits (a titration, a verdict) is the
    uncertainty that the finite, noisy training set puts on it (Efron & Tibshirani, *An
    Introduction to the Bootstrap*, 1993); the model's own form error is the cross-validated
    RMSE, which the refits do not include.

    Parameters
    ----------
    lattice
        The halide lattice.
    occupations, energies
        The training set of the full fit (:func:`fit_lattice_model`).
    alpha
        Ridge penalty (the full fit's ``cv["alpha"]``).
    n
        Refits.
    seed
        Random seed of the resampling.

    Returns
    -------
    list of LatticeModel
        Refits, each with ``cv = {"bootstrap": k, "alpha": alpha}``.
    """
    from sklearn.linear_model import Ridge

    occ = np.asarray(occupations)
    y = np.asarray(energies, float)
    X = np.array([features(lattice, o) for o in occ])
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        pick = rng.integers(0, len(y), len(y))
        coef = np.asarray(Ridge(alpha=alpha, fit_intercept=False).fit(X[pick], y[pick]).coef_, float)
        out.append(LatticeModel(coef[: len(lattice.kinds)], coef[len(lattice.kinds):], {"bootstrap": k, "alpha": alpha}))
    return out
