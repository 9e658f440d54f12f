"""Chirp correction, kinetics and global analysis of transient-absorption maps.

All fits are **variable projection** (Golub & Pereyra, SIAM J. Numer. Anal. 10, 413
(1973)): amplitudes enter linearly and are solved exactly for every trial of the
nonlinear parameters (lifetimes, IRF width, time zero or chirp polynomial), which are
refined by :func:`scipy.optimize.least_squares`. Standard uncertainties of the
nonlinear parameters come from the Jacobian of the projected residual,
``cov = (JᵀJ)⁻¹ · RSS / (N − n_parameters − n_amplitudes)``. Lifetimes and σ are
refined as logarithms (always positive); without user starting values three spreads of
lifetimes are screened on the 24 strongest wavelengths and the best is refined on the
whole map.

Chirp (group-velocity dispersion) is the wavelength dependence of time zero,
``t0(λ) = Σ_k c_k u^k`` with ``u = (λ − λ_c) / 100 nm`` and λ_c the centre of the
probe range. ``estimate_chirp`` finds it from the map (half-rise time of each strong
column, then a robust weighted polynomial fit with 3·MAD clipping); the global fit
refines it together with the lifetimes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from halex.errors import AnalysisError, InputError
from halex.ta.io import TAMap
from halex.ta.model import FWHM_PER_SIGMA, basis, sequential_matrix

__all__ = ["Chirp", "estimate_chirp", "KineticsFit", "fit_kinetics", "GlobalFit", "fit_global", "chirp_corrected"]


@dataclass(frozen=True)
class Chirp:
    """Time zero versus probe wavelength: ``t0(λ) = Σ c_k ((λ − center_nm)/100)^k`` in ps.

    Attributes
    ----------
    coefficients_ps
        Polynomial coefficients c_k (ps) in ``u = (λ − center_nm) / 100 nm``.
    center_nm
        Expansion centre (nm).
    errors_ps
        Standard errors of the coefficients (ps), where fitted.
    points
        The per-wavelength half-rise times an estimate was fitted to.

    Examples
    --------
    >>> Chirp((0.1, 0.3), 500.0)([400.0, 500.0, 600.0]).round(3).tolist()
    [-0.2, 0.1, 0.4]
    """

    coefficients_ps: tuple[float, ...]
    center_nm: float
    errors_ps: tuple[float, ...] | None = None
    points: dict[str, Any] | None = None

    def __call__(self, wavelength_nm) -> np.ndarray:
        u = (np.asarray(wavelength_nm, float) - self.center_nm) / 100.0
        return np.polynomial.polynomial.polyval(u, np.asarray(self.coefficients_ps))


def _check_irf(irf_fwhm_ps):
    if irf_fwhm_ps is not None and not irf_fwhm_ps > 0:
        raise InputError(f"the IRF FWHM must be positive (ps), got {irf_fwhm_ps}; omit it to fit the IRF")


def estimate_chirp(m: TAMap, *, order: int = 2, min_snr: float = 8.0, smooth: int = 3) -> Chirp:
    """Time zero per wavelength from the half-rise of each strong column, fitted by a polynomial.

    Columns whose peak |ΔA| is below ``min_snr`` times the pre-time-zero noise are not
    used; outliers beyond 3·MAD of the polynomial are clipped (repeated to convergence).

    Parameters
    ----------
    m
        The map as measured.
    order
        Polynomial order of t0(λ).
    min_snr
        Columns with a peak below this many noise standard deviations are skipped.
    smooth
        Running-mean width (points) along the delay axis before the half-rise is located.

    Returns
    -------
    Chirp
        With ``points`` holding the wavelengths and half-rise times (ps) it was fitted to.

    Examples
    --------
    >>> import numpy as np
    >>> from halex.ta import default_delays, gaussian_band, simulate_ta_map
    >>> w = np.arange(400.0, 700.0, 5.0)
    >>> m = simulate_ta_map(w, default_delays(), [gaussian_band(w, 500, 40, -1.0)], [20.0], chirp_ps=(0.2, 0.5), seed=1)
    >>> est = estimate_chirp(m, order=1)
    >>> bool(abs(est(600.0)[()] - (0.2 + 0.5 * (600.0 - est.center_nm) / 100)) < 0.05)
    True
    """
    if not 0 <= order <= 5:
        raise InputError(f"chirp polynomial order must lie in 0–5, got {order}")
    t, w, d = m.time_ps, m.wavelength_nm, m.delta_a
    # noise from the earliest delays (well before any chirped time zero)
    pre = t < t[0] + 0.3 * (0.0 - t[0]) if t[0] < 0 else np.zeros(t.size, bool)
    if pre.sum() < 3:
        pre = np.arange(t.size) < max(3, t.size // 20)
    noise = np.std(d[pre], axis=0) + 1e-12
    k = max(1, int(smooth))
    kernel = np.ones(k) / k
    onsets, weights, used = [], [], []
    early = t <= t[0] + 0.5 * (min(t[-1], 50.0) - t[0])
    for j in range(w.size):
        col = np.convolve(d[:, j], kernel, mode="same") if k > 1 else d[:, j]
        sub = col[early]
        jmax = int(np.argmax(np.abs(sub)))
        peak = sub[jmax]
        if abs(peak) < min_snr * noise[j]:
            continue
        y = col * np.sign(peak) / abs(peak)
        above = np.flatnonzero(y[: jmax + 1] >= 0.5)
        if above.size == 0 or above[0] == 0:
            continue
        i = above[0]
        ti = t[i - 1] + (0.5 - y[i - 1]) * (t[i] - t[i - 1]) / (y[i] - y[i - 1])
        onsets.append(ti)
        weights.append(abs(peak) / noise[j])
        used.append(w[j])
    if len(used) < order + 2:
        raise AnalysisError(f"only {len(used)} wavelengths have a clear rise (SNR ≥ {min_snr}); cannot fit a "
                            f"chirp polynomial of order {order}. Give the chirp, lower --chirp-order or min_snr")
    used, onsets, weights = map(np.asarray, (used, onsets, weights))
    center = float(0.5 * (w.min() + w.max()))
    u = (used - center) / 100.0
    keep = np.ones(used.size, bool)
    for _ in range(10):
        c = np.polynomial.polynomial.polyfit(u[keep], onsets[keep], order, w=np.sqrt(weights[keep]))
        r = onsets - np.polynomial.polynomial.polyval(u, c)
        mad = 1.4826 * np.median(np.abs(r[keep] - np.median(r[keep]))) + 1e-6
        new = np.abs(r) <= 3 * mad
        if new.sum() < order + 2 or np.array_equal(new, keep):
            break
        keep = new
    return Chirp(tuple(float(v) for v in c), center, None,
                 {"wavelength_nm": used.tolist(), "t0_ps": onsets.tolist(), "used": keep.tolist()})


def chirp_corrected(m: TAMap, chirp: Chirp) -> TAMap:
    """Map with every column shifted by −t0(λ) (linear interpolation on the delay axis).

    Parameters
    ----------
    m
        The map as measured.
    chirp
        Time zero versus wavelength.

    Returns
    -------
    TAMap
        Same axes; column j holds ``ΔA(t + t0(λ_j), λ_j)``.
    """
    t0 = chirp(m.wavelength_nm)
    out = np.empty_like(m.delta_a)
    for j in range(m.wavelength_nm.size):
        out[:, j] = np.interp(m.time_ps + t0[j], m.time_ps, m.delta_a[:, j], left=np.nan, right=np.nan)
    return TAMap(m.wavelength_nm, m.time_ps, out, {**m.meta, "chirp_corrected": True})


def _amplitudes(b: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Least-squares amplitudes per wavelength: b (n_w, n_t, n_c), d (n_w, n_t) → (n_w, n_c)."""
    g = np.einsum("wtc,wtd->wcd", b, b)
    r = np.einsum("wtc,wt->wc", b, d)
    ridge = 1e-12 * np.trace(g, axis1=1, axis2=2)[:, None, None] * np.eye(g.shape[-1])
    return np.linalg.solve(g + ridge, r[..., None])[..., 0]


def _starts(n: int, t: np.ndarray) -> list[np.ndarray]:
    pos = t[t > 0]
    lo = max(float(np.min(np.diff(t))) * 3, 0.05)
    hi = float(pos.max()) if pos.size else float(t.max())
    out = []
    for span in ((lo * 3, hi / 3), (lo * 10, hi), (lo, hi / 10)):
        out.append(np.geomspace(span[0], span[1], n) if n > 1 else np.array([np.sqrt(span[0] * span[1])]))
    return out


@dataclass
class GlobalFit:
    """Global (all-wavelength) fit of a map: shared lifetimes, IRF and chirp; DAS and EAS.

    Attributes
    ----------
    lifetimes_ps, lifetimes_err_ps
        Lifetimes in ascending order and their standard errors (ps).
    irf_fwhm_ps, irf_fwhm_err_ps, irf_fixed
        Gaussian instrument response FWHM (ps), its error, and whether it was held.
    chirp
        Fitted (or held) time zero versus wavelength.
    das, eas
        Decay- and evolution-associated spectra, shape (n_components [+1], n_wavelengths).
    offset
        A non-decaying component was included (last row).
    wavelength_nm, time_ps, fitted, residual, rms_residual
        Axes, the model map, data − model and its RMS (ΔA units).
    """

    lifetimes_ps: np.ndarray
    lifetimes_err_ps: np.ndarray
    irf_fwhm_ps: float
    irf_fwhm_err_ps: float
    irf_fixed: bool
    chirp: Chirp
    das: np.ndarray  # (n_c, n_w)
    eas: np.ndarray  # (n_c, n_w), sequential scheme in lifetime order
    offset: bool
    wavelength_nm: np.ndarray
    time_ps: np.ndarray
    fitted: np.ndarray
    residual: np.ndarray
    rms_residual: float
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "lifetimes_ps": self.lifetimes_ps.tolist(), "lifetimes_err_ps": self.lifetimes_err_ps.tolist(),
            "irf_fwhm_ps": self.irf_fwhm_ps, "irf_fwhm_err_ps": self.irf_fwhm_err_ps, "irf_fixed": self.irf_fixed,
            "chirp": {"t0_ps_polynomial_coefficients": list(self.chirp.coefficients_ps),
                      "errors_ps": list(self.chirp.errors_ps or []), "center_nm": self.chirp.center_nm,
                      "variable": "u = (wavelength_nm - center_nm) / 100"},
            "offset_component": self.offset, "rms_residual": self.rms_residual,
            "model": "parallel decays (DAS) and the equivalent sequential scheme (EAS), Gaussian IRF", **self.meta,
        }


def fit_global(m: TAMap, n_components: int = 2, *, irf_fwhm_ps: float | None = None, chirp: Chirp | None = None,
               fit_chirp: bool = True, chirp_order: int = 2, offset: bool = False,
               lifetimes_start_ps: Sequence[float] | None = None) -> GlobalFit:
    """Global analysis: ``ΔA(λ, t) = Σ_k DAS_k(λ) g(t − t0(λ); τ_k, σ)``.

    Lifetimes (log-parametrised), the IRF width and the chirp polynomial are refined by
    :func:`scipy.optimize.least_squares`; the DAS are solved exactly at every step.
    Several start sets are screened on the strongest wavelengths first.

    Parameters
    ----------
    m
        The map (delays in ps, wavelengths in nm).
    n_components
        Number of exponential components (1–6).
    irf_fwhm_ps
        Fix the IRF FWHM (ps); fitted when None.
    chirp
        Starting (or fixed, with ``fit_chirp=False``) chirp; estimated from the map when None.
    fit_chirp
        Refine the chirp polynomial with the lifetimes.
    chirp_order
        Order of the estimated chirp when ``chirp`` is None.
    offset
        Add a non-decaying component (its DAS is the long-time spectrum).
    lifetimes_start_ps
        Start lifetimes (ps) instead of the automatic start sets.

    Returns
    -------
    GlobalFit
        Lifetimes with standard errors (ps), IRF, chirp, DAS and EAS, fit and residual.

    Examples
    --------
    >>> import numpy as np
    >>> from halex.ta import default_delays, gaussian_band, simulate_ta_map
    >>> w = np.arange(400.0, 700.0, 5.0)
    >>> m = simulate_ta_map(w, default_delays(), [gaussian_band(w, 500, 40, -1.0)], [20.0], seed=1)
    >>> g = fit_global(m, 1, irf_fwhm_ps=0.23, chirp=Chirp((0.0,), 550.0), fit_chirp=False)
    >>> round(float(g.lifetimes_ps[0]), 2)
    20.0
    """
    if not 1 <= n_components <= 6:
        raise InputError(f"number of global components must lie in 1–6, got {n_components}")
    _check_irf(irf_fwhm_ps)
    if chirp is None:
        chirp = estimate_chirp(m, order=chirp_order)
    t, w, d = m.time_ps, m.wavelength_nm, m.delta_a.T  # d: (n_w, n_t)
    nc = len(chirp.coefficients_ps)
    fix_sigma = irf_fwhm_ps is not None
    sigma0 = (irf_fwhm_ps if fix_sigma else 0.15) / FWHM_PER_SIGMA
    u = (w - chirp.center_nm) / 100.0

    def split(p):
        k = 0
        taus = np.exp(p[k:k + n_components])
        k += n_components
        sigma = sigma0 if fix_sigma else np.exp(p[k])
        k += 0 if fix_sigma else 1
        coeffs = p[k:k + nc] if fit_chirp else np.asarray(chirp.coefficients_ps)
        return taus, sigma, coeffs

    def resid(p, cols=slice(None)):
        taus, sigma, coeffs = split(p)
        t0 = np.polynomial.polynomial.polyval(u[cols], coeffs)
        b = basis(t, t0, taus, sigma, offset=offset)
        a = _amplitudes(b, d[cols])
        return (np.einsum("wtc,wc->wt", b, a) - d[cols]).ravel()

    starts = [np.asarray(lifetimes_start_ps, float)] if lifetimes_start_ps is not None else _starts(n_components, t)
    p0s = []
    for tau0 in starts:
        if tau0.size != n_components or np.any(tau0 <= 0):
            raise InputError(f"give {n_components} positive starting lifetimes")
        p0s.append(np.r_[np.log(tau0), [] if fix_sigma else [np.log(sigma0)], list(chirp.coefficients_ps) if fit_chirp else []])
    sol = least_squares(resid, _screen_starts(resid, p0s, d), method="trf", x_scale="jac", max_nfev=300)
    taus, sigma, coeffs = split(sol.x)
    n_amp = w.size * (n_components + int(offset))
    dof = max(sol.fun.size - sol.x.size - n_amp, 1)
    err = np.sqrt(np.maximum(np.diag(np.linalg.pinv(sol.jac.T @ sol.jac) * (2 * sol.cost / dof)), 0))
    k = n_components + (0 if fix_sigma else 1)
    c_err = tuple(float(v) for v in err[k:k + nc]) if fit_chirp else tuple(0.0 for _ in range(nc))
    final = Chirp(tuple(float(v) for v in coeffs), chirp.center_nm, c_err, chirp.points)
    sig_err = 0.0 if fix_sigma else sigma * err[n_components]
    return _global_result(m, final, taus, taus * err[:n_components], sigma, sig_err, fix_sigma, offset,
                          {"n_components": n_components, "optimizer_nfev": int(sol.nfev), "chi2_dof": int(dof)})


def _screen_starts(resid, p0s: list[np.ndarray], d: np.ndarray) -> np.ndarray:
    """The best of several start vectors, screened on the 24 strongest wavelengths (60 evaluations each)."""
    if len(p0s) == 1:
        return p0s[0]
    strength = np.abs(d).max(axis=1)
    sub = np.sort(np.argsort(strength)[::-1][: min(len(d), 24)])
    screened = [least_squares(lambda p: resid(p, sub), p0, method="trf", x_scale="jac", max_nfev=60) for p0 in p0s]
    return min(screened, key=lambda r: r.cost).x


def _global_result(m: TAMap, chirp: Chirp, taus: np.ndarray, tau_err: np.ndarray, sigma: float, sig_err: float,
                   fix_sigma: bool, offset: bool, meta: dict[str, Any]) -> GlobalFit:
    """DAS (amplitudes solved exactly at the fitted lifetimes), EAS, fit and residual, in lifetime order."""
    t, w, d = m.time_ps, m.wavelength_nm, m.delta_a.T
    order = np.argsort(taus)
    taus_sorted = taus[order]
    b = basis(t, chirp(w), taus_sorted, sigma, offset=offset)
    a = _amplitudes(b, d)  # (n_w, n_c)
    fitted = np.einsum("wtc,wc->wt", b, a)
    eas = np.linalg.solve(sequential_matrix(list(taus_sorted) + ([np.inf] if offset else [])), a.T)
    return GlobalFit(taus_sorted, tau_err[order], float(sigma * FWHM_PER_SIGMA), float(sig_err * FWHM_PER_SIGMA), fix_sigma,
                     chirp, a.T, eas, offset, w, t, fitted.T, (d - fitted).T, float(np.sqrt(np.mean((d - fitted) ** 2))),
                     meta)


@dataclass
class KineticsFit:
    """Fit of one kinetic trace (:func:`fit_kinetics`).

    Attributes
    ----------
    wavelength_nm
        Probe wavelength of the trace (nm; NaN if not given).
    lifetimes_ps, lifetimes_err_ps
        Lifetimes in ascending order and standard errors (ps).
    amplitudes, amplitudes_err
        Amplitude of each component (ΔA units; rises are negative terms).
    t0_ps, t0_err_ps
        Time zero and its error (ps).
    irf_fwhm_ps, irf_fwhm_err_ps, irf_fixed
        Gaussian IRF FWHM (ps), its error, and whether it was held.
    offset
        Amplitude of the non-decaying step, if fitted.
    time_ps, trace, fitted, rms_residual
        The data, the model and the RMS residual.
    """

    wavelength_nm: float
    lifetimes_ps: np.ndarray
    lifetimes_err_ps: np.ndarray
    amplitudes: np.ndarray
    amplitudes_err: np.ndarray
    t0_ps: float
    t0_err_ps: float
    irf_fwhm_ps: float
    irf_fwhm_err_ps: float
    irf_fixed: bool
    offset: float | None
    time_ps: np.ndarray
    trace: np.ndarray
    fitted: np.ndarray
    rms_residual: float

    def summary(self) -> dict[str, Any]:
        return {"wavelength_nm": self.wavelength_nm, "lifetimes_ps": self.lifetimes_ps.tolist(),
                "lifetimes_err_ps": self.lifetimes_err_ps.tolist(), "amplitudes": self.amplitudes.tolist(),
                "amplitudes_err": self.amplitudes_err.tolist(), "t0_ps": self.t0_ps, "t0_err_ps": self.t0_err_ps,
                "irf_fwhm_ps": self.irf_fwhm_ps, "irf_fwhm_err_ps": self.irf_fwhm_err_ps, "irf_fixed": self.irf_fixed,
                "offset": self.offset, "rms_residual": self.rms_residual,
                "model": "sum of exponentials (free-sign amplitudes: rises are negative terms) convolved with a Gaussian IRF"}


def fit_kinetics(time_ps: np.ndarray, trace: np.ndarray, *, n_components: int = 2, irf_fwhm_ps: float | None = None, t0_ps: float = 0.0,
                 fit_t0: bool = True, offset: bool = False, wavelength_nm: float = float("nan"),
                 lifetimes_start_ps: Sequence[float] | None = None) -> KineticsFit:
    """Fit one trace as ``Σ_k A_k g(t − t0; τ_k, σ) [+ A_∞ step]``.

    The amplitudes are solved exactly for every set of lifetimes, t0 and σ; standard
    errors come from the Jacobian of the residuals (``(JᵀJ)⁻¹ s²``).

    Parameters
    ----------
    time_ps, trace
        Delays (ps) and ΔA, 1D of equal length.
    n_components
        Number of exponentials (1–6).
    irf_fwhm_ps
        Fix the IRF FWHM (ps); fitted when None.
    t0_ps, fit_t0
        Time zero (ps), refined unless ``fit_t0=False``.
    offset
        Add a non-decaying step.
    wavelength_nm
        Recorded with the result.
    lifetimes_start_ps
        Start lifetimes (ps) instead of the automatic start sets.

    Returns
    -------
    KineticsFit

    Examples
    --------
    >>> import numpy as np
    >>> from halex.ta.model import exp_conv_gauss
    >>> t = np.linspace(-2, 100, 400)
    >>> y = -exp_conv_gauss(t, 15.0, 0.1)
    >>> round(float(fit_kinetics(t, y, n_components=1).lifetimes_ps[0]), 3)
    15.0
    """
    if not 1 <= n_components <= 6:
        raise InputError(f"number of kinetic components must lie in 1–6, got {n_components}")
    _check_irf(irf_fwhm_ps)
    t = np.asarray(time_ps, float)
    y = np.asarray(trace, float)
    if t.shape != y.shape or t.ndim != 1 or t.size < 2 * n_components + 4:
        raise InputError(f"trace and time axis must be 1D of equal length ≥ {2 * n_components + 4}")
    if not np.all(np.isfinite(y)):
        raise InputError("the kinetic trace holds NaN values")
    fix_sigma = irf_fwhm_ps is not None
    sigma0 = (irf_fwhm_ps if fix_sigma else 0.15) / FWHM_PER_SIGMA

    def split(p):
        taus = np.exp(p[:n_components])
        k = n_components
        sigma = sigma0 if fix_sigma else np.exp(p[k])
        k += 0 if fix_sigma else 1
        t0 = p[k] if fit_t0 else t0_ps
        return taus, sigma, t0

    def design(p):
        taus, sigma, t0 = split(p)
        return basis(t, t0, taus, sigma, offset=offset)

    def resid(p):
        b = design(p)
        a, *_ = np.linalg.lstsq(b, y, rcond=None)
        return b @ a - y

    starts = [np.asarray(lifetimes_start_ps, float)] if lifetimes_start_ps is not None else _starts(n_components, t)
    best = None
    for tau0 in starts:
        p0 = np.r_[np.log(tau0), [] if fix_sigma else [np.log(sigma0)], [t0_ps] if fit_t0 else []]
        sol = least_squares(resid, p0, method="trf", x_scale="jac", max_nfev=400)
        if best is None or sol.cost < best.cost:
            best = sol
    sol = best
    taus, sigma, t0 = split(sol.x)
    b = design(sol.x)
    a, *_ = np.linalg.lstsq(b, y, rcond=None)
    n_lin = b.shape[1]
    dof = max(y.size - sol.x.size - n_lin, 1)
    s2 = 2 * sol.cost / dof
    err = np.sqrt(np.maximum(np.diag(np.linalg.pinv(sol.jac.T @ sol.jac) * s2), 0))
    # amplitude errors at fixed nonlinear parameters (conditional)
    a_err = np.sqrt(np.maximum(np.diag(np.linalg.pinv(b.T @ b) * s2), 0))
    k = n_components
    sig_err = 0.0 if fix_sigma else float(sigma * err[k])
    k += 0 if fix_sigma else 1
    t0_err = float(err[k]) if fit_t0 else 0.0
    order = np.argsort(taus)
    amps = a[:n_components][order]
    amps_err = a_err[:n_components][order]
    fitted = b @ a
    return KineticsFit(float(wavelength_nm), taus[order], (taus * err[:n_components])[order], amps, amps_err,
                       float(t0), t0_err, float(sigma * FWHM_PER_SIGMA), float(sig_err * FWHM_PER_SIGMA), fix_sigma,
                       float(a[-1]) if offset else None, t, y, fitted, float(np.sqrt(np.mean((fitted - y) ** 2))))
