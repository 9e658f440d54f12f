"""Fit a measured powder pattern as a mixture of phases (whole-pattern fitting).

Model (Rietveld-style, intensities from fixed structures)::

    y(2θ) = Σ_p s_p P_p(2θ; α_p, L_p, z, w) + Σ_k c_k T_k(u)

* ``P_p`` is phase p's pattern per unit cell volume² (:func:`halex.xrd.bulk.profile_pattern`):
  its reflections moved by the scales of the cell lengths the symmetry leaves free (a for
  cubic; a and c for tetragonal, trigonal, hexagonal; a, b, c otherwise; angles held):
  ``d⁻² = (h/α)ᵀ G₀* (h/α)`` with G₀* the reference reciprocal metric, broadened by
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
Uncertainties are the square roots of the covariance diagonal ``(JᵀJ)⁻¹ χ²_red``
(scaled by the fit quality) times the Bérar–Lelann factor √((1 + ρ)/(1 − ρ)) for a
weighted residual of lag-1 correlation ρ (J. Appl. Cryst. 24, 1 (1991)): neighbouring
points of a profile that the model misses are not independent, and without it the
lattice errors come out 10–30× too small. Correlations between parameters are kept: the
fractions' errors follow by linear propagation of the full covariance.

Before the refinement the phases are checked against the pattern: if at their best
lattice scale they explain less than half of the signal above a background-only fit, a
warning says so at once (a wrong phase list), and after it any residual peak above 8σ is
reported as unexplained.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from halex.errors import AnalysisError, InputError
from halex.xrd.bulk import Reflections, d_min_for, profile_pattern, radiation, reflections
from halex.xrd.io import Pattern

__all__ = ["PhaseResult", "XrdFit", "fit_pattern"]

log = logging.getLogger("halex.xrd")


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
        Mean lattice scale (V/V₀)^(1/3).
    cell_A, cell_err_A
        Refined cell lengths (Å): one free length for a cubic phase, a and c for a
        tetragonal, trigonal or hexagonal one, a, b and c for lower symmetry (angles held).
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
        Points, parameters, optimizer status, where the wavelength came from and the
        Bérar–Lelann factor applied to the standard errors.
    warnings
        Plain sentences on what the fit cannot support (phases that do not index the
        pattern, peaks left unexplained, a poor fit).
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
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-ready dictionary with units in the key names."""
        return {
            "phases": [p.__dict__ | {"cell_A": list(p.cell_A), "cell_err_A": list(p.cell_err_A)} for p in self.phases],
            "zero_deg": self.zero_deg, "zero_deg_err": self.zero_deg_err,
            "fwhm_instr_deg": self.fwhm_instr_deg, "fwhm_instr_deg_err": self.fwhm_instr_deg_err,
            "rwp_percent": 100 * self.rwp, "chi2_red": self.chi2_red,
            "wavelength": [list(line) for line in self.wavelength] if not isinstance(self.wavelength, str)
            else self.wavelength, "warnings": list(self.warnings),
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

    Parameter vector: ``[α…, 1/L_p…, zero, w, s_p / scale_p…, c_k…]``: the lattice scales
    of every phase's independent cell lengths (one for cubic, a and c for tetragonal or
    hexagonal, a, b and c otherwise; ``L`` of them in all, angles held), inverse sizes in
    1/nm, zero shift and instrument FWHM in degrees, phase scales in units of
    ``scale_p``, Chebyshev background coefficients.
    """

    def __init__(self, refl: list[Reflections], x: np.ndarray, y: np.ndarray, sigma: np.ndarray, lines,
                 n_background: int, fit_size: bool) -> None:
        self.refl, self.x, self.y, self.sigma, self.lines, self.fit_size = refl, x, y, sigma, lines, fit_size
        self.n = len(refl)
        self.n_background = n_background
        self.cheb = _chebyshev(x, n_background)
        self.scale_s = np.ones(self.n)
        counts = [max(r.axis_groups) + 1 for r in refl]
        starts = np.r_[0, np.cumsum(counts)]
        self.lat = [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:])]
        self.L = int(starts[-1])

    def unpack(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float, np.ndarray, np.ndarray]:
        n, L = self.n, self.L
        return p[:L], p[L:L + n], p[L + n], p[L + n + 1], p[L + n + 2:L + 2 * n + 2], p[L + 2 * n + 2:]

    def axes(self, k: int, a: np.ndarray) -> np.ndarray:
        """Scales of phase ``k``'s three cell lengths from its group scales ``a``."""
        return np.asarray(a, float)[list(self.refl[k].axis_groups)]

    def d_factor(self, k: int, a: np.ndarray) -> float | np.ndarray:
        """d/d₀ of every reflection when the cell lengths scale by ``axes(k, a)``, angles held."""
        r = self.refl[k]
        if len(a) == 1 or r.hkl_index is None:
            return float(a[0])
        h = r.hkl_index
        hs = h / self.axes(k, a)
        return np.sqrt(np.einsum("ni,ij,nj->n", h, r.recip_metric, h) / np.einsum("ni,ij,nj->n", hs, r.recip_metric, hs))

    def column(self, k: int, a: np.ndarray, il: float, zero: float, w: float) -> np.ndarray:
        """Pattern of phase ``k`` per unit volume² at group scales ``a`` and inverse size ``il``."""
        size = 1.0 / il if (self.fit_size and il > 1e-6) else None
        return profile_pattern(self.refl[k], self.x, lines=self.lines, scale_lattice=self.d_factor(k, a),
                               fwhm_instr_deg=w, size_nm=size, zero_deg=zero,
                               volume_scale=float(np.prod(self.axes(k, a))))

    def basis(self, alpha: np.ndarray, inv_l: np.ndarray, zero: float, w: float) -> np.ndarray:
        return np.column_stack([self.column(k, alpha[self.lat[k]], il, zero, w) for k, il in enumerate(inv_l)])

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
    """Lattice scales located by a coordinate-wise scan of each phase's isotropic scale (two
    sweeps) with the linear parameters exact; the refinement then frees the cell lengths."""
    alpha = np.ones(m.L)
    grid = np.linspace(1 - lattice_range, 1 + lattice_range, int(round(lattice_range / 0.001)) * 2 + 1)
    b = m.basis(alpha, inv_l, 0.0, w0)
    for _sweep in range(2):
        for k in range(m.n):
            costs = []
            for g in grid:
                b[:, k] = m.column(k, np.full(m.lat[k].stop - m.lat[k].start, g), inv_l[k], 0.0, w0)
                costs.append(m.linear(b)[2])
            alpha[m.lat[k]] = grid[int(np.argmin(costs))]
            b[:, k] = m.column(k, alpha[m.lat[k]], inv_l[k], 0.0, w0)
    return alpha


def _start_and_bounds(m: _PatternModel, alpha: np.ndarray, inv_l: np.ndarray, w0: float, *, fix_w: bool,
                      fit_zero: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start vector (scales in units of ``m.scale_s``, set here) and bounds; fixed parameters get a 1e-12 box."""
    n, nb = m.n, m.n_background
    s0, c0, _ = m.linear(m.basis(alpha, inv_l, 0.0, w0))  # alpha: all phases' group scales (m.L)
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


def _berar_lelann(m: _PatternModel, p: np.ndarray) -> tuple[float, float]:
    """Lag-1 correlation ρ of the weighted residual and the factor √((1 + ρ)/(1 − ρ)) (≥ 1)."""
    r = (m.evaluate(p)[0] - m.y) / m.sigma
    r = r - r.mean()
    rho = float(np.sum(r[1:] * r[:-1]) / max(np.sum(r**2), 1e-300))
    return rho, float(np.sqrt((1 + rho) / max(1 - rho, 1e-3))) if rho > 0 else 1.0


def _indexing_check(m: _PatternModel, alpha: np.ndarray, inv_l: np.ndarray, w0: float) -> list[str]:
    """Flags, before the refinement, phases that do not explain the pattern's signal."""
    from scipy.optimize import lsq_linear

    chi_bg = float(np.sum(lsq_linear(m.cheb / m.sigma[:, None], m.y / m.sigma).fun ** 2))
    s0, _, chi_start = m.linear(m.basis(alpha, inv_l, 0.0, w0))
    explained = 1.0 - chi_start / max(chi_bg, 1e-300)
    flags = []
    if explained < 0.5:
        flags.append(f"the phases explain only {100 * max(explained, 0):.0f} % of the signal above the background at "
                     "their best lattice scale: the phase list may be wrong or incomplete (check it before "
                     "trusting fractions or cells)")
    for k in np.flatnonzero(s0 <= 0):
        flags.append(f"phase {k + 1} gets no intensity at the start: its reflections are not in the pattern")
    return flags


def _unexplained_peaks(m: _PatternModel, p: np.ndarray, n_sigma: float = 8.0) -> list[str]:
    """Residual peaks no phase accounts for: above ``n_sigma`` (weighted), above 2 % of the
    strongest net peak, and where the phases' own calculated intensity is below a fifth of
    the residual (a misfit of a modelled peak's shape is not an unexplained peak)."""
    from scipy.signal import find_peaks

    calc, b = m.evaluate(p)
    phases = calc - m.cheb @ m.unpack(p)[5]
    resid = m.y - calc
    smooth = np.convolve(resid / m.sigma, np.ones(5) / 5 * np.sqrt(5), mode="same")  # unit variance for white noise
    idx, _ = find_peaks(smooth, height=n_sigma, distance=max(1, int(0.3 / np.median(np.diff(m.x)))))
    net_max = max(float(np.max(m.y - m.cheb @ m.unpack(p)[5])), 1e-300)
    inside = (m.x[idx] > m.x[0] + 0.5) & (m.x[idx] < m.x[-1] - 0.5)  # the window's edges bend the background
    idx = idx[inside & (resid[idx] > 0.02 * net_max) & (phases[idx] < 0.2 * resid[idx])]
    if idx.size == 0:
        return []
    where = ", ".join(f"{m.x[i]:.2f}°" for i in idx[:8])
    return [f"{idx.size} peak(s) are not explained by any phase (2θ = {where}{', …' if idx.size > 8 else ''}): "
            "a missing phase, or a cell or symmetry that does not fit"]


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
    n, L = m.n, m.L
    err = np.sqrt(np.maximum(np.diag(cov), 0))
    alpha, inv_l, _, _, s_scaled, _ = m.unpack(p)
    s = s_scaled * m.scale_s
    if s.sum() <= 0:
        raise AnalysisError("no phase intensity left after the fit: check the phases and the 2θ range")
    s_idx = np.arange(L + n + 2, L + 2 * n + 2)
    cov_s = cov[np.ix_(s_idx, s_idx)] * np.outer(m.scale_s, m.scale_s)
    vol = np.array([np.prod(m.axes(k, alpha[m.lat[k]])) for k in range(n)])
    rho = np.array([r.mass_amu / (r.volume_A3 * v) for r, v in zip(m.refl, vol)])
    wf, wf_err = _fractions(s, cov_s, rho)
    vf, vf_err = _fractions(s, cov_s, np.ones(n))
    results = []
    for k, (atoms, name) in enumerate(loaded):
        cell = atoms.cell.lengths()
        ax, ax_err = m.axes(k, alpha[m.lat[k]]), m.axes(k, err[m.lat[k]])
        idx = np.arange(m.lat[k].start, m.lat[k].stop)
        groups = np.array(m.refl[k].axis_groups)
        jac = np.array([np.sum(groups == g) / 3 * vol[k] ** (1 / 3) / alpha[i] for g, i in enumerate(idx)])
        iso_err = float(np.sqrt(jac @ cov[np.ix_(idx, idx)] @ jac))  # error of (αa αb αc)^(1/3), correlations kept
        il, il_err = inv_l[k], err[L + k]
        size = 1.0 / il if (m.fit_size and il > 1e-6) else float("inf")
        size_err = il_err / il**2 if np.isfinite(size) else float("nan")
        results.append(PhaseResult(
            name=name, weight_fraction=float(wf[k]), weight_fraction_err=float(wf_err[k]),
            volume_fraction=float(vf[k]), volume_fraction_err=float(vf_err[k]),
            lattice_scale=float(vol[k] ** (1 / 3)), lattice_scale_err=iso_err,
            cell_A=tuple(float(v) for v in cell * ax), cell_err_A=tuple(float(v) for v in cell * ax_err),
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


def _lines_for(pattern: Pattern, wavelength: str | float | None) -> tuple[tuple[tuple[float, float], ...], str]:
    """The radiation of the fit and where it came from: the file's own header first; a given
    wavelength that contradicts it (Kα1 differs by > 2·10⁻⁴ Å, or doublet against Kα1 only)
    is an error, not a silent choice."""
    own = pattern.meta.get("radiation")
    if wavelength is None:
        return (tuple(own), "file") if own else (radiation("CuKa"), "default Cu Kα1+Kα2 (the file names none)")
    lines = radiation(wavelength)
    if own:
        own = tuple(own)
        same_doublet = (len(own) > 1) == (len(lines) > 1)
        if abs(own[0][0] - lines[0][0]) > 2e-4 or not same_doublet:
            kind = "Kα1+Kα2" if len(own) > 1 else "Kα1 only (monochromated)"
            raise InputError(f"--wavelength {wavelength} contradicts the file, which was measured with "
                             f"{own[0][0]:.5f} Å, {kind}; leave --wavelength out to use the file's own")
        return own, "file (agrees with the given wavelength)"
    return lines, "given"


def fit_pattern(pattern: Pattern, phases: Sequence[Atoms | str], *, wavelength: str | float | None = None,
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
        Radiation. None: the file's own (XRDML ``<usedWavelength>``), else Cu Kα1+Kα2; a
        given one that contradicts the file raises :class:`InputError`.
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
    lines, lines_from = _lines_for(pattern, wavelength)
    x, y, sigma = _window(pattern, two_theta_range)
    loaded, refl = _load_phases(phases, lines, x)
    m = _PatternModel(refl, x, y, sigma, lines, n_background, fit_size)
    fix_w = fwhm_instr_deg is not None
    w0 = float(fwhm_instr_deg) if fix_w else 0.08
    inv_l = np.full(m.n, 1.0 / size_nm_start if fit_size else 0.0)
    alpha = _scan_lattice(m, inv_l, w0, lattice_range)
    flags = _indexing_check(m, alpha, inv_l, w0)
    for text in flags:
        log.warning("halex: warning: %s", text)
    p0, lo, hi = _start_and_bounds(m, alpha, inv_l, w0, fix_w=fix_w, fit_zero=fit_zero)
    p, cov, chi2_red, free, sol = _refine(m, p0, lo, hi)
    rho, factor = _berar_lelann(m, p)
    cov = cov * factor**2
    results = _phase_results(m, loaded, p, cov)
    flags += _unexplained_peaks(m, p)
    if chi2_red > 4:
        flags.append(f"reduced χ² {chi2_red:.1f}: the profile model (pseudo-Voigt, Scherrer size, no asymmetry, "
                     f"texture or displacement) leaves structure; errors are scaled by it and by the residual's "
                     f"correlation (×{factor:.1f}), but weight fractions and sizes carry model error beyond them")
    err = np.sqrt(np.maximum(np.diag(cov), 0))
    _, _, zero, w, s_scaled, c = m.unpack(p)
    calc, b = m.evaluate(p)
    rwp = float(np.sqrt(np.sum(((calc - y) / sigma) ** 2) / np.sum((y / sigma) ** 2)))
    components = {name: b[:, k] * s_scaled[k] * m.scale_s[k] for k, (_, name) in enumerate(loaded)}
    n, L = m.n, m.L
    return XrdFit(results, x, y, calc, m.cheb @ c, components, float(zero), float(err[L + n]), float(w),
                  float(err[L + n + 1]), rwp, chi2_red, lines,
                  {"n_points": int(y.size), "n_parameters": int(free.sum()), "optimizer_status": int(sol.status),
                   "wavelength_from": lines_from, "residual_lag1_correlation": rho, "berar_lelann_factor": factor},
                  flags)
