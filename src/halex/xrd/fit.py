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
    """Refined quantities of one phase (errors are one standard uncertainty).

    Attributes
    ----------
    name
        Phase name.
    weight_fraction, weight_fraction_err, volume_fraction, volume_fraction_err
        Fractions (0–1) from the scale factors (no micro-absorption correction).
    lattice_scale, lattice_scale_err
        Isotropic lattice scale α (a = α a₀).
    cell_A, cell_err_A
        Refined cell lengths (Å).
    size_nm, size_nm_err
        Scherrer crystallite size (nm; inf when not refined).
    scale, scale_err
        Scale factor (∝ volume in the beam).
    """

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
    """Result of :func:`fit_pattern`.

    Attributes
    ----------
    phases
        One :class:`PhaseResult` per phase.
    two_theta_deg, observed, calculated, background
        The fitted window (degrees) and the patterns.
    components
        Each phase's calculated pattern.
    zero_deg, zero_deg_err, fwhm_instr_deg, fwhm_instr_deg_err
        Zero shift and instrument Gaussian FWHM (degrees 2θ) with their errors.
    rwp, chi2_red
        Weighted profile R factor (fraction) and reduced χ².
    wavelength
        The radiation.
    meta
        Points, parameters and optimizer status.
    """

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


def _check_options(phases, n_background: int, lattice_range: float, size_nm_start: float,
                   fwhm_instr_deg: float | None) -> None:
    """Validate the options of :func:`fit_pattern` before anything is computed."""
    if not phases:
        raise InputError("give at least one phase to fit")
    if not 1 <= n_background <= 20:
        raise InputError(f"n_background must lie in 1–20, got {n_background}")
    if not 0 < lattice_range < 0.2:
        raise InputError(f"lattice_range must lie in (0, 0.2), got {lattice_range}")
    if not size_nm_start > 1:
        raise InputError(f"size_nm_start must exceed 1 nm, got {size_nm_start}")
    if fwhm_instr_deg is not None and not float(fwhm_instr_deg) > 0:
        raise InputError(f"instrument FWHM must be positive, got {fwhm_instr_deg}")


def _window(pattern: Pattern, two_theta_range: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2θ (deg), intensity and σ inside the fit window (σ = √max(I, 1) unless the file gives it)."""
    x, y = pattern.two_theta_deg, pattern.intensity
    keep = np.ones_like(x, bool)
    if two_theta_range is not None:
        keep = (x >= two_theta_range[0]) & (x <= two_theta_range[1])
        if keep.sum() < 10:
            raise InputError(f"2θ window {two_theta_range} holds fewer than 10 points of the pattern")
    x, y = x[keep], y[keep]
    sigma = pattern.sigma[keep] if pattern.sigma is not None else np.sqrt(np.maximum(y, 1.0))
    return x, y, sigma


class _PatternModel:
    """The whole-pattern model of the module doc on one 2θ grid.

    Parameter vector: ``[α_p…, 1/L_p…, zero, w, s_p / scale_p…, c_k…]`` (lattice scales,
    inverse sizes in 1/nm, zero shift and instrument FWHM in degrees, phase scales in
    units of ``scale_p``, Chebyshev background coefficients).
    """

    def __init__(self, refl: list[Reflections], x: np.ndarray, y: np.ndarray, sigma: np.ndarray, lines,
                 n_background: int, fit_size: bool) -> None:
        self.refl, self.x, self.y, self.sigma, self.lines, self.fit_size = refl, x, y, sigma, lines, fit_size
        self.n = len(refl)
        self.n_background = n_background
        self.cheb = _chebyshev(x, n_background)
        self.scale_s = np.ones(self.n)

    def unpack(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float, np.ndarray, np.ndarray]:
        n = self.n
        return p[:n], p[n:2 * n], p[2 * n], p[2 * n + 1], p[2 * n + 2:3 * n + 2], p[3 * n + 2:]

    def column(self, k: int, a: float, il: float, zero: float, w: float) -> np.ndarray:
        """Pattern of phase ``k`` per unit volume² at lattice scale ``a`` and inverse size ``il``."""
        size = 1.0 / il if (self.fit_size and il > 1e-6) else None
        return profile_pattern(self.refl[k], self.x, lines=self.lines, scale_lattice=a, fwhm_instr_deg=w, size_nm=size,
                               zero_deg=zero)

    def basis(self, alpha: np.ndarray, inv_l: np.ndarray, zero: float, w: float) -> np.ndarray:
        return np.column_stack([self.column(k, a, il, zero, w) for k, (a, il) in enumerate(zip(alpha, inv_l))])

    def linear(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Phase scales ≥ 0 and background solved exactly (bounded least squares) for the basis ``b``; χ²."""
        from scipy.optimize import lsq_linear

        norm = np.maximum(b.max(0), 1e-300)
        a_mat = np.column_stack([b / norm, self.cheb]) / self.sigma[:, None]
        lb = np.r_[np.zeros(self.n), -np.inf * np.ones(self.n_background)]
        sol = lsq_linear(a_mat, self.y / self.sigma, bounds=(lb, np.inf), method="bvls")
        return sol.x[:self.n] / norm, sol.x[self.n:], float(np.sum(sol.fun**2))

    def evaluate(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calculated pattern and the per-phase basis at parameters ``p``."""
        alpha, inv_l, zero, w, s, c = self.unpack(p)
        b = self.basis(alpha, inv_l, zero, w)
        return b @ (s * self.scale_s) + self.cheb @ c, b


def _scan_lattice(m: _PatternModel, inv_l: np.ndarray, w0: float, lattice_range: float) -> np.ndarray:
    """Lattice scales located by a coordinate-wise scan (two sweeps) with the linear parameters exact."""
    alpha = np.ones(m.n)
    grid = np.linspace(1 - lattice_range, 1 + lattice_range, int(round(lattice_range / 0.001)) * 2 + 1)
    b = m.basis(alpha, inv_l, 0.0, w0)
    for _sweep in range(2):
        for k in range(m.n):
            costs = []
            for g in grid:
                b[:, k] = m.column(k, g, inv_l[k], 0.0, w0)
                costs.append(m.linear(b)[2])
            alpha[k] = grid[int(np.argmin(costs))]
            b[:, k] = m.column(k, alpha[k], inv_l[k], 0.0, w0)
    return alpha


def _start_and_bounds(m: _PatternModel, alpha: np.ndarray, inv_l: np.ndarray, w0: float, *, fix_w: bool,
                      fit_zero: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start vector (scales in units of ``m.scale_s``, set here) and bounds; fixed parameters get a 1e-12 box."""
    n, nb = m.n, m.n_background
    s0, c0, _ = m.linear(m.basis(alpha, inv_l, 0.0, w0))
    m.scale_s = np.maximum(s0, np.maximum(s0.max(), 1e-300) * 1e-3)
    p0 = np.r_[alpha, inv_l, 0.0, w0, s0 / m.scale_s, c0]
    lo = np.r_[alpha - 0.01, np.zeros(n), -0.5 if fit_zero else -1e-12, 0.005 if not fix_w else w0 - 1e-12,
               np.zeros(n), -np.inf * np.ones(nb)]
    hi = np.r_[alpha + 0.01, np.ones(n) if m.fit_size else np.full(n, 1e-12), 0.5 if fit_zero else 1e-12,
               1.0 if not fix_w else w0 + 1e-12, np.inf * np.ones(n), np.inf * np.ones(nb)]
    return np.clip(p0, lo, hi), lo, hi


def _refine(m: _PatternModel, p0: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Weighted least squares of the free parameters; parameters, covariance, χ²_red, free mask, solution."""
    from scipy.optimize import least_squares

    free = hi - lo > 1e-9

    def resid_free(pf: np.ndarray) -> np.ndarray:
        p = p0.copy()
        p[free] = pf
        return (m.evaluate(p)[0] - m.y) / m.sigma

    sol = least_squares(resid_free, p0[free], bounds=(lo[free], hi[free]), x_scale="jac", method="trf", max_nfev=400)
    p = p0.copy()
    p[free] = sol.x
    chi2_red = float(np.sum(sol.fun**2) / max(m.y.size - int(free.sum()), 1))
    cov = np.zeros((p.size, p.size))
    cov[np.ix_(free, free)] = np.linalg.pinv(sol.jac.T @ sol.jac) * chi2_red
    return p, cov, chi2_red, free, sol


def _fractions(s: np.ndarray, cov_s: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractions ``s w / Σ s w`` and their standard errors by linear propagation of ``cov_s``."""
    def frac(sv: np.ndarray) -> np.ndarray:
        t = sv * weights
        return t / t.sum() if t.sum() > 0 else np.full_like(t, np.nan)

    f0 = frac(s)
    jf = np.zeros((len(s), len(s)))
    for q in range(len(s)):
        h = max(abs(s[q]) * 1e-6, 1e-300)
        sp = s.copy()
        sp[q] += h
        jf[:, q] = (frac(sp) - f0) / h
    return f0, np.sqrt(np.maximum(np.diag(jf @ cov_s @ jf.T), 0))


def _phase_results(m: _PatternModel, loaded: list[tuple[Atoms, str]], p: np.ndarray, cov: np.ndarray) -> list[PhaseResult]:
    """Fractions, cells, sizes and scales of every phase with their standard errors."""
    n = m.n
    err = np.sqrt(np.maximum(np.diag(cov), 0))
    alpha, inv_l, _, _, s_scaled, _ = m.unpack(p)
    s = s_scaled * m.scale_s
    if s.sum() <= 0:
        raise AnalysisError("no phase intensity left after the fit: check the phases and the 2θ range")
    s_idx = np.arange(2 * n + 2, 3 * n + 2)
    cov_s = cov[np.ix_(s_idx, s_idx)] * np.outer(m.scale_s, m.scale_s)
    rho = np.array([r.mass_amu / (r.volume_A3 * a**3) for r, a in zip(m.refl, alpha)])
    wf, wf_err = _fractions(s, cov_s, rho)
    vf, vf_err = _fractions(s, cov_s, np.ones(n))
    results = []
    for k, (atoms, name) in enumerate(loaded):
        cell = atoms.cell.lengths()
        il, il_err = inv_l[k], err[n + k]
        size = 1.0 / il if (m.fit_size and il > 1e-6) else float("inf")
        size_err = il_err / il**2 if np.isfinite(size) else float("nan")
        results.append(PhaseResult(
            name=name, weight_fraction=float(wf[k]), weight_fraction_err=float(wf_err[k]),
            volume_fraction=float(vf[k]), volume_fraction_err=float(vf_err[k]),
            lattice_scale=float(alpha[k]), lattice_scale_err=float(err[k]),
            cell_A=tuple(float(v) for v in cell * alpha[k]), cell_err_A=tuple(float(v) for v in cell * err[k]),
            size_nm=float(size), size_nm_err=float(size_err), scale=float(s[k]), scale_err=float(np.sqrt(cov_s[k, k]))))
    return results


def _load_phases(phases: Sequence[Atoms | str], lines, x: np.ndarray) -> tuple[list[tuple[Atoms, str]], list[Reflections]]:
    """Phases and their reflections down to the d-spacing the window needs; each must reach into it."""
    loaded = [_as_phase(p) for p in phases]
    names = [n for _, n in loaded]
    if len(set(names)) != len(names):
        raise InputError(f"phases given twice: {names}")
    d_min = d_min_for(lines, x[-1], margin_deg=3.0)
    refl = [reflections(a, d_min=d_min) for a, _ in loaded]
    for r, n in zip(refl, names):
        if r.d_A.size == 0 or not np.any(np.degrees(2 * np.arcsin(np.clip(lines[0][0] / (2 * r.d_A), 0, 1))) < x[-1]):
            raise AnalysisError(f"phase {n} has no reflection inside {x[0]:.1f}–{x[-1]:.1f}° 2θ")
    return loaded, refl


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
    fit_zero
        Refine a common 2θ zero shift (degrees, within ±0.5°).
    lattice_range
        Half-width of the lattice-scale search (fraction; α ∈ [1 − r, 1 + r]).
    two_theta_range
        Restrict the fit to this 2θ window (degrees).

    Returns
    -------
    XrdFit
        Phases (weight and volume fractions, cells in Å, sizes in nm, each with its
        standard error), the calculated pattern and its components, zero shift and
        instrument FWHM (degrees), R_wp and χ²_red.

    Examples
    --------
    >>> from halex.phases import load_phase
    >>> from halex.xrd import Pattern, bulk_pattern
    >>> two_theta = np.linspace(15, 50, 1751)
    >>> _, truth, _ = bulk_pattern(load_phase("CsPbCl3"), two_theta, size_nm=25.0)
    >>> fit = fit_pattern(Pattern(two_theta, 100 * truth + 50), ["CsPbCl3"])
    >>> round(fit.phases[0].cell_A[0], 2), fit.phases[0].size_nm > 15
    (5.61, True)
    """
    _check_options(phases, n_background, lattice_range, size_nm_start, fwhm_instr_deg)
    lines = radiation(wavelength)
    x, y, sigma = _window(pattern, two_theta_range)
    loaded, refl = _load_phases(phases, lines, x)
    m = _PatternModel(refl, x, y, sigma, lines, n_background, fit_size)
    fix_w = fwhm_instr_deg is not None
    w0 = float(fwhm_instr_deg) if fix_w else 0.08
    inv_l = np.full(m.n, 1.0 / size_nm_start if fit_size else 0.0)
    alpha = _scan_lattice(m, inv_l, w0, lattice_range)
    p0, lo, hi = _start_and_bounds(m, alpha, inv_l, w0, fix_w=fix_w, fit_zero=fit_zero)
    p, cov, chi2_red, free, sol = _refine(m, p0, lo, hi)
    results = _phase_results(m, loaded, p, cov)
    err = np.sqrt(np.maximum(np.diag(cov), 0))
    _, _, zero, w, s_scaled, c = m.unpack(p)
    calc, b = m.evaluate(p)
    rwp = float(np.sqrt(np.sum(((calc - y) / sigma) ** 2) / np.sum((y / sigma) ** 2)))
    components = {name: b[:, k] * s_scaled[k] * m.scale_s[k] for k, (_, name) in enumerate(loaded)}
    n = m.n
    return XrdFit(results, x, y, calc, m.cheb @ c, components, float(zero), float(err[2 * n]), float(w),
                  float(err[2 * n + 1]), rwp, chi2_red, wavelength,
                  {"n_points": int(y.size), "n_parameters": int(free.sum()), "optimizer_status": int(sol.status)})
