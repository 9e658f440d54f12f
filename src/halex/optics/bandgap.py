"""Band gap versus size and composition.

**Size** (cube of edge L, effective-mass approximation, infinite walls, electron and
hole each in the (1,1,1) state, correlated motion neglected — the strong-confinement
limit):

.. math::

    E(L) = E_g + \\frac{3 π^2 ħ^2}{2 μ m_0 L^2} - C_{cube} \\frac{e^2}{4 π ε_0 ε_r L}

with ħ²/(2m₀) = 0.0380998 eV nm². The Coulomb term is first-order perturbation theory
and is included only when ``epsilon_r`` is given; ``C_cube`` is computed by
:func:`coulomb_coefficient` (the same routine gives Brus's 1.786 for a sphere of
radius R, L. E. Brus, J. Chem. Phys. 80, 4403 (1984), which the tests check). The
model tends to ``E_g`` for large L. For L beyond ~2 exciton Bohr radii the exciton is
weakly confined and this formula overestimates the shift; quote it accordingly.

**Composition** (CsPb(Cl_xI_{1−x})3, x = X_Cl as a fraction):
``E(x) = x E_Cl + (1 − x) E_I − b x (1 − x)``; :func:`fit_bowing` fits ``E_Cl``,
``E_I`` and ``b`` to the user's measured (x, E) pairs. No default bowing is shipped:
Cl/I alloys phase-separate in bulk and published values do not transfer.

Shipped material parameters (:data:`MATERIALS`): M. Yang et al., ACS Energy Lett. 2,
1621 (2017), magneto-absorption at low temperature (orthorhombic phases): CsPbI3
E_g = 1.723 eV, μ = 0.114 m₀, ε_eff = 10.0; CsPbBr3 E_g = 2.342 eV, μ = 0.126 m₀,
ε_eff = 7.3. Room-temperature gaps of the cubic/γ phases differ by tens of meV; pass
your own ``eg_bulk_eV`` where that matters.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from halex.errors import InputError

__all__ = ["Material", "MATERIALS", "HBAR2_2M0_EV_NM2", "COULOMB_EV_NM", "coulomb_coefficient",
           "confinement_energy_eV", "band_gap_vs_size", "band_gap_vs_composition", "fit_bowing"]

HBAR2_2M0_EV_NM2 = 0.0380998  # ħ²/(2 m0) in eV nm²
COULOMB_EV_NM = 1.439964  # e²/(4π ε0) in eV nm


@dataclass(frozen=True)
class Material:
    eg_bulk_eV: float
    mu: float
    epsilon_r: float
    source: str


_YANG = "M. Yang et al., ACS Energy Lett. 2, 1621 (2017), low-temperature magneto-absorption"
MATERIALS: dict[str, Material] = {
    "CsPbI3": Material(1.723, 0.114, 10.0, _YANG),
    "CsPbBr3": Material(2.342, 0.126, 7.3, _YANG),
}


@functools.lru_cache(maxsize=4)
def coulomb_coefficient(shape: str = "cube", *, n: int = 2**18, seed: int = 7) -> float:
    """⟨1/|r_e − r_h|⟩ × L (cube of edge L) or × R (sphere of radius R) for both carriers
    in the ground state of an infinite well, by importance-sampled Monte Carlo.

    Positions are drawn from the exact ground-state densities (sin² per axis for the
    cube; the sphere's ``sin²(πr/R)/r²`` radial density), so the estimator is the plain
    mean of ``1/|r_e − r_h|``. Statistical error ≈ 0.1 % at the default ``n``.
    """
    rng = np.random.default_rng(seed)
    if shape == "cube":
        # sample sin^2(pi u) on [0, 1] per axis by rejection
        def draw(m):
            out = np.empty(0)
            while out.size < m:
                u = rng.random(2 * m)
                acc = rng.random(2 * m) < np.sin(np.pi * u) ** 2
                out = np.r_[out, u[acc]]
            return out[:m]
        re = np.stack([draw(n) for _ in range(3)], 1)
        rh = np.stack([draw(n) for _ in range(3)], 1)
    elif shape == "sphere":
        def draw(m):
            out = np.empty(0)
            while out.size < m:
                r = rng.random(2 * m)
                acc = rng.random(2 * m) < np.sin(np.pi * r) ** 2  # radial density ∝ sin²(πr) (r² cancels)
                out = np.r_[out, r[acc]]
            r = out[:m]
            v = rng.normal(size=(m, 3))
            return r[:, None] * v / np.linalg.norm(v, axis=1)[:, None]
        re, rh = draw(n), draw(n)
    else:
        raise InputError(f"shape must be 'cube' or 'sphere', got {shape!r}")
    return float(np.mean(1.0 / np.linalg.norm(re - rh, axis=1)))


def confinement_energy_eV(edge_nm: np.ndarray | float, mu: float) -> np.ndarray:
    """Kinetic confinement energy 3π²ħ²/(2 μ m₀ L²) of an electron–hole pair in a cube (eV).

    Parameters
    ----------
    edge_nm
        Cube edge L (nm).
    mu
        Reduced mass (m₀).

    Returns
    -------
    numpy.ndarray
        Energy (eV); it falls as 1/L².

    Examples
    --------
    >>> e = confinement_energy_eV([5.0, 10.0], 0.1)
    >>> round(float(e[0] / e[1]), 6)
    4.0
    """
    L = np.asarray(edge_nm, float)
    if np.any(L <= 0):
        raise InputError("NC edge lengths must be positive (nm)")
    if not mu > 0:
        raise InputError(f"reduced mass must be positive (units of m0), got {mu}")
    return 3 * np.pi**2 * HBAR2_2M0_EV_NM2 / (mu * L**2)


def band_gap_vs_size(edge_nm: np.ndarray | float, *, material: str | None = None, eg_bulk_eV: float | None = None, mu: float | None = None,
                     epsilon_r: float | None = None) -> np.ndarray:
    """Lowest optical transition energy (eV) of a cubic NC of edge ``edge_nm``.

    ``E(L) = E_g + 3π²ħ²/(2 μ m₀ L²) [− c e²/(4π ε₀ ε_r L)]`` (module docstring: the
    confinement term of a particle in a cube, the Coulomb term with the cube's coefficient).

    Parameters
    ----------
    edge_nm
        Cube edge(s) in nm.
    material
        A key of :data:`MATERIALS` (``"CsPbI3"``, ``"CsPbBr3"``), or give the next two.
    eg_bulk_eV, mu
        Bulk gap (eV) and exciton reduced mass (m₀).
    epsilon_r
        Dielectric constant; the Coulomb term is added only when it is given.

    Returns
    -------
    numpy.ndarray
        Transition energies (eV).

    Examples
    --------
    >>> bool(band_gap_vs_size(8.0, material="CsPbI3") > MATERIALS["CsPbI3"].eg_bulk_eV)
    True
    """
    if material is not None:
        if material not in MATERIALS:
            raise InputError(f"unknown material {material!r}: choose one of {', '.join(MATERIALS)} or give eg_bulk_eV and mu")
        mat = MATERIALS[material]
        eg_bulk_eV = mat.eg_bulk_eV if eg_bulk_eV is None else eg_bulk_eV
        mu = mat.mu if mu is None else mu
    if eg_bulk_eV is None or mu is None:
        raise InputError("give material=... or both eg_bulk_eV and mu")
    e = eg_bulk_eV + confinement_energy_eV(edge_nm, mu)
    if epsilon_r is not None:
        if not epsilon_r >= 1:
            raise InputError(f"epsilon_r must be ≥ 1, got {epsilon_r}")
        e = e - coulomb_coefficient("cube") * COULOMB_EV_NM / (epsilon_r * np.asarray(edge_nm, float))
    return e


def band_gap_vs_composition(x_cl: np.ndarray | float, *, eg_cl_eV: float, eg_i_eV: float, bowing_eV: float = 0.0) -> np.ndarray:
    """``E(x) = x E_Cl + (1 − x) E_I − b x(1 − x)`` for chloride fraction x ∈ [0, 1].

    Parameters
    ----------
    x_cl
        Chloride fraction X_Cl / 100 (0 = CsPbI3, 1 = CsPbCl3).
    eg_cl_eV, eg_i_eV
        Gaps of the two end members (eV).
    bowing_eV
        Bowing parameter b (eV).

    Returns
    -------
    numpy.ndarray
        Gap (eV) at each x.

    Examples
    --------
    >>> band_gap_vs_composition([0.0, 0.5, 1.0], eg_cl_eV=3.0, eg_i_eV=1.7, bowing_eV=0.4).round(3).tolist()
    [1.7, 2.25, 3.0]
    """
    x = np.asarray(x_cl, float)
    if np.any((x < 0) | (x > 1)):
        raise InputError("chloride fractions must lie in [0, 1] (give X_Cl / 100)")
    return x * eg_cl_eV + (1 - x) * eg_i_eV - bowing_eV * x * (1 - x)


def fit_bowing(x_cl: np.ndarray, gap_eV: np.ndarray) -> dict[str, float]:
    """Linear least-squares fit of ``E_Cl``, ``E_I`` and ``b`` with standard errors.

    Parameters
    ----------
    x_cl
        Chloride fractions (0–1), at least four.
    gap_eV
        Measured gaps (eV).

    Returns
    -------
    dict
        ``eg_cl_eV``, ``eg_i_eV``, ``bowing_eV`` and their ``*_err_eV`` (residual-scaled).

    Examples
    --------
    >>> x = np.linspace(0, 1, 6)
    >>> r = fit_bowing(x, band_gap_vs_composition(x, eg_cl_eV=3.0, eg_i_eV=1.72, bowing_eV=0.3))
    >>> round(float(r["bowing_eV"]), 6)
    0.3
    """
    x = np.asarray(x_cl, float)
    g = np.asarray(gap_eV, float)
    if x.shape != g.shape or x.size < 4:
        raise InputError("fit_bowing needs ≥ 4 (x, E) pairs of equal length")
    if np.any((x < 0) | (x > 1)):
        raise InputError("chloride fractions must lie in [0, 1]")
    a = np.column_stack([x, 1 - x, -x * (1 - x)])
    p, *_ = np.linalg.lstsq(a, g, rcond=None)
    r = g - a @ p
    s2 = float(r @ r / max(x.size - 3, 1))
    err = np.sqrt(np.diag(np.linalg.pinv(a.T @ a) * s2))
    return {"eg_cl_eV": p[0], "eg_i_eV": p[1], "bowing_eV": p[2],
            "eg_cl_err_eV": err[0], "eg_i_err_eV": err[1], "bowing_err_eV": err[2]}
