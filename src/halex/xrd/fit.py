"""Fit a measured powder pattern as a mixture of phases (whole-pattern fitting).

Model (Rietveld-style, intensities from fixed structures)::

    y(2θ) = Σ_p s_p P_p(2θ; α_p, L_p, z, w) + Σ_k c_k T_k(u)

* ``P_p`` is phase p's pattern per unit cell volume² (:func:`halex.xrd.bulk.profile_pattern`):
  its reflections moved by the isotropic lattice scale ``α_p`` (a = α a₀), broadened by
  the Scherrer size ``L_p`` (Lorentzian) on top of a common Gaussian instrument FWHM
  ``w``, all shifted by a common zero error ``z``;
* ``T_k`` are Chebyshev polynomials in ``u`` ∈ [−1, 1] (background);
* because ``P_p`` is per unit volume, ``s_p`` is proportional to the phase's volume in
  the beam: volume fractions ``v_p = s_p / Σ s`` and weight fractions
  ``w_p = s_p ρ_p / Σ s_q ρ_q`` with ``ρ = M_cell / V_cell``. Micro-absorption and
  preferred orientation are not modelled (state this when quoting fractions of phases
  with very different absorption).

All parameters are refined together by weighted least squares
(:func:`scipy.optimize.least_squares`, σ = √max(I, 1) for counts unless the file gives
σ). The lattice scales are first located by a coarse scan (±``lattice_range``) with the
linear parameters solved exactly, so peaks a few tenths of a degree away are found.
Uncertainties are the square roots of the covariance diagonal ``(JᵀJ)⁻¹ χ²_red``;
those of the fractions follow by linear propagation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from halex.errors import AnalysisError, InputError
from halex.xrd.bulk import Reflections, d_min_for, profile_pattern, radiation, reflections
from halex.xrd.io import Pattern

__all__ = ["PhaseResult", "XrdFit", "fit_pattern"]


@dataclass(frozen=True)
class PhaseResult:
    """Refined quantities of one phase (errors are one standard uncertainty)."""

    name: str
    weight_fraction: float
    weight_fraction_err: float
    volume_fraction: float
    volume_fraction_err: float
    lattice_scale: float
    lattice_scale_err: float
    cell_A: tuple[float, float, float]
    cell_err_A: tuple[float, float, float]
    size_nm: float
    size_nm_err: float
    scale: float
    scale_err: float


@dataclass
class XrdFit:
    """Result of :func:`fit_pattern`."""

    phases: list[PhaseResult]
    two_theta_deg: np.ndarray
    observed: np.ndarray
    calculated: np.ndarray
    background: np.ndarray
    components: dict[str, np.ndarray]
    zero_deg: float
    zero_deg_err: float
    fwhm_instr_deg: float
    fwhm_instr_deg_err: float
    rwp: float
    chi2_red: float
    wavelength: Any
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready dictionary with units in the key names."""
        return {
            "phases": [p.__dict__ | {"cell_A": list(p.cell_A), "cell_err_A": list(p.cell_err_A)} for p in self.phases],
            "zero_deg": self.zero_deg, "zero_deg_err": self.zero_deg_err,
            "fwhm_instr_deg": self.fwhm_instr_deg, "fwhm_instr_deg_err": self.fwhm_instr_deg_err,
            "rwp_percent": 100 * self.rwp, "chi2_red": self.chi2_red, "wavelength": str(self.wavelength),
            "fractions_note": "weight fractions from scale factors x cell mass / cell volume; no micro-absorption correction",
            **self.meta,
        }


def _chebyshev(x: np.ndarray, n: int) -> np.ndarray:
    u = 2 * (x - x[0]) / (x[-1] - x[0]) - 1
    return np.polynomial.chebyshev.chebvander(u, n - 1)


def _as_phase(p) -> tuple[Atoms, str]:
    from halex.phases import load_phase

    if isinstance(p, Atoms):
        return p, str(p.info.get("phase", p.get_chemical_formula()))
    atoms = load_phase(str(p))
    return atoms, str(atoms.info.get("phase", p))


def fit_pattern(pattern: Pattern, phases: Sequence[Atoms | str], *, wavelength: str | float = "CuKa",
                n_background: int = 6, size_nm_start: float = 30.0, fit_size: bool = True,
                fwhm_instr_deg: float | None = None, fit_zero: bool = True, lattice_range: float = 0.03,
                two_theta_range: tuple[float, float] | None = None) -> XrdFit:
    """Refine phase scale factors, lattice scales, crystallite sizes and background.

    Parameters
    ----------
    pattern
        Measured pattern (:func:`halex.xrd.io.read_pattern`).
    phases
        Phase names of the library (``halex phases list``), CIF paths or ``Atoms``.
    wavelength
        Radiation (default Cu Kα1+Kα2).
    n_background
        Number of Chebyshev background terms (1–20).
    size_nm_start
        Starting crystallite size (nm).
    fit_size
        Refine sizes (else only instrument broadening).
    fwhm_instr_deg
        Fix the instrument's Gaussian FWHM (degrees); refined when None.
    lattice_range
        Half-width of the lattice-scale search (fraction; α ∈ [1 − r, 1 + r]).
    two_theta_range
        Restrict the fit to this 2θ window (degrees).
    """
    if not phases:
        raise InputError("give at least one phase to fit")
    if not 1 <= n_background <= 20:
        raise InputError(f"n_background must lie in 1–20, got {n_background}")
    if not 0 < lattice_range < 0.2:
        raise InputError(f"lattice_range must lie in (0, 0.2), got {lattice_range}")
    if not size_nm_start > 1:
        raise InputError(f"size_nm_start must exceed 1 nm, got {size_nm_start}")
    lines = radiation(wavelength)
    x, y = pattern.two_theta_deg, pattern.intensity
    keep = np.ones_like(x, bool)
    if two_theta_range is not None:
        keep = (x >= two_theta_range[0]) & (x <= two_theta_range[1])
        if keep.sum() < 10:
            raise InputError(f"2θ window {two_theta_range} holds fewer than 10 points of the pattern")
    x, y = x[keep], y[keep]
    sigma = pattern.sigma[keep] if pattern.sigma is not None else np.sqrt(np.maximum(y, 1.0))
    loaded = [_as_phase(p) for p in phases]
    names = [n for _, n in loaded]
    if len(set(names)) != len(names):
        raise InputError(f"phases given twice: {names}")
    d_min = d_min_for(lines, x[-1], margin_deg=3.0)
    refl: list[Reflections] = [reflections(a, d_min=d_min) for a, _ in loaded]
    for r, n in zip(refl, names):
        if r.d_A.size == 0 or not np.any(np.degrees(2 * np.arcsin(np.clip(lines[0][0] / (2 * r.d_A), 0, 1))) < x[-1]):
            raise AnalysisError(f"phase {n} has no reflection inside {x[0]:.1f}–{x[-1]:.1f}° 2θ")
    np_ = len(refl)
    cheb = _chebyshev(x, n_background)
    fix_w = fwhm_instr_deg is not None
    w0 = float(fwhm_instr_deg) if fix_w else 0.08
    if not w0 > 0:
        raise InputError(f"instrument FWHM must be positive, got {fwhm_instr_deg}")

    # parameter vector: [alpha_p..., invL_p..., zero, w, s_p..., c_k...]
    def unpack(p):
        alpha = p[:np_]
        inv_l = p[np_:2 * np_]
        zero, w = p[2 * np_], p[2 * np_ + 1]
        s = p[2 * np_ + 2:3 * np_ + 2]
        c = p[3 * np_ + 2:]
        return alpha, inv_l, zero, w, s, c

    def column(k, a, il, zero, w):
        size = 1.0 / il if (fit_size and il > 1e-6) else None
        return profile_pattern(refl[k], x, lines=lines, scale_lattice=a, fwhm_instr_deg=w, size_nm=size, zero_deg=zero)

    def basis(alpha, inv_l, zero, w):
        return np.column_stack([column(k, a, il, zero, w) for k, (a, il) in enumerate(zip(alpha, inv_l))])

    def linear(b):
        from scipy.optimize import lsq_linear

        norm = np.maximum(b.max(0), 1e-300)
        a_mat = np.column_stack([b / norm, cheb]) / sigma[:, None]
        lb = np.r_[np.zeros(np_), -np.inf * np.ones(n_background)]
        sol = lsq_linear(a_mat, y / sigma, bounds=(lb, np.inf), method="bvls")
        return sol.x[:np_] / norm, sol.x[np_:], float(np.sum(sol.fun**2))

    alpha = np.ones(np_)
    inv_l = np.full(np_, 1.0 / size_nm_start if fit_size else 0.0)
    grid = np.linspace(1 - lattice_range, 1 + lattice_range, int(round(lattice_range / 0.001)) * 2 + 1)
    b = basis(alpha, inv_l, 0.0, w0)
    for _sweep in range(2):  # coordinate-wise scan of the lattice scales, linear parameters exact
        for k in range(np_):
            costs = []
            for g in grid:
                b[:, k] = column(k, g, inv_l[k], 0.0, w0)
                costs.append(linear(b)[2])
            alpha[k] = grid[int(np.argmin(costs))]
            b[:, k] = column(k, alpha[k], inv_l[k], 0.0, w0)
    s0, c0, _ = linear(b)
    scale_s = np.maximum(s0, np.maximum(s0.max(), 1e-300) * 1e-3)

    # optimise in scaled units so every parameter is O(1)
    p0 = np.r_[alpha, inv_l, 0.0, w0, s0 / scale_s, c0]
    lo = np.r_[alpha - 0.01, np.zeros(np_), -0.5 if fit_zero else -1e-12, 0.005 if not fix_w else w0 - 1e-12,
               np.zeros(np_), -np.inf * np.ones(n_background)]
    hi = np.r_[alpha + 0.01, np.ones(np_) if fit_size else np.full(np_, 1e-12), 0.5 if fit_zero else 1e-12,
               1.0 if not fix_w else w0 + 1e-12, np.inf * np.ones(np_), np.inf * np.ones(n_background)]
    p0 = np.clip(p0, lo, hi)

    def model(p):
        alpha, inv_l, zero, w, s, c = unpack(p)
        b = basis(alpha, inv_l, zero, w)
        return b @ (s * scale_s) + cheb @ c, b

    def resid(p):
        return (model(p)[0] - y) / sigma

    from scipy.optimize import least_squares

    free = hi - lo > 1e-9
    pf0 = p0[free]

    def resid_free(pf):
        p = p0.copy()
        p[free] = pf
        return resid(p)

    sol = least_squares(resid_free, pf0, bounds=(lo[free], hi[free]), x_scale="jac", method="trf", max_nfev=400)
    p = p0.copy()
    p[free] = sol.x
    dof = max(y.size - int(free.sum()), 1)
    chi2_red = float(np.sum(sol.fun**2) / dof)
    jac = sol.jac
    cov_f = np.linalg.pinv(jac.T @ jac) * chi2_red
    cov = np.zeros((p.size, p.size))
    cov[np.ix_(free, free)] = cov_f
    err = np.sqrt(np.maximum(np.diag(cov), 0))

    alpha, inv_l, zero, w, s_scaled, c = unpack(p)
    s = s_scaled * scale_s
    s_idx = np.arange(2 * np_ + 2, 3 * np_ + 2)
    cov_s = cov[np.ix_(s_idx, s_idx)] * np.outer(scale_s, scale_s)
    calc, b = model(p)
    bg = cheb @ c
    rho = np.array([r.mass_amu / (r.volume_A3 * a**3) for r, a in zip(refl, alpha)])

    def fractions(sv, weights):
        t = sv * weights
        return t / t.sum() if t.sum() > 0 else np.full_like(t, np.nan)

    if s.sum() <= 0:
        raise AnalysisError("no phase intensity left after the fit: check the phases and the 2θ range")

    def propagate(weights):
        f0 = fractions(s, weights)
        jf = np.zeros((np_, np_))
        for q in range(np_):
            h = max(abs(s[q]) * 1e-6, 1e-300)
            sp = s.copy()
            sp[q] += h
            jf[:, q] = (fractions(sp, weights) - f0) / h
        return f0, np.sqrt(np.maximum(np.diag(jf @ cov_s @ jf.T), 0))

    wf, wf_err = propagate(rho)
    vf, vf_err = propagate(np.ones(np_))
    results = []
    for k, ((atoms, name), r) in enumerate(zip(loaded, refl)):
        cell = atoms.cell.lengths()
        a_err = err[k]
        il, il_err = inv_l[k], err[np_ + k]
        size = 1.0 / il if (fit_size and il > 1e-6) else float("inf")
        size_err = il_err / il**2 if np.isfinite(size) else float("nan")
        results.append(PhaseResult(
            name=name, weight_fraction=float(wf[k]), weight_fraction_err=float(wf_err[k]),
            volume_fraction=float(vf[k]), volume_fraction_err=float(vf_err[k]),
            lattice_scale=float(alpha[k]), lattice_scale_err=float(a_err),
            cell_A=tuple(float(v) for v in cell * alpha[k]), cell_err_A=tuple(float(v) for v in cell * a_err),
            size_nm=float(size), size_nm_err=float(size_err), scale=float(s[k]), scale_err=float(np.sqrt(cov_s[k, k]))))
    rwp = float(np.sqrt(np.sum(((calc - y) / sigma) ** 2) / np.sum((y / sigma) ** 2)))
    components = {n: b[:, k] * s[k] for k, n in enumerate(names)}
    return XrdFit(results, x, y, calc, bg, components, float(zero), float(err[2 * np_]), float(w), float(err[2 * np_ + 1]),
                  rwp, chi2_red, wavelength, {"n_points": int(y.size), "n_parameters": int(free.sum()),
                                              "optimizer_status": int(sol.status)})
