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
probe range. ``estimate_chirp`` finds it from the map (half-rise of each strong column
as a first guess, then a local fit of an IRF-convolved step plus fast exponentials so that
early kinetics do not bias it, then a robust weighted polynomial fit with 3·MAD clipping);
the global fit holds it, or refines it within a bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from halex.errors import AnalysisError, InputError
from halex.ta.io import TAMap
from halex.ta.model import FWHM_PER_SIGMA, basis, exp_conv_gauss, sequential_matrix, step_conv_gauss

__all__ = ["Chirp", "estimate_chirp", "KineticsFit", "fit_kinetics", "GlobalFit", "fit_global", "chirp_corrected",
           "subtract_background", "kept_wavelengths", "time_window", "lifetime_warnings"]


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


def _half_rise_onsets(t: np.ndarray, d: np.ndarray, min_snr: float, smooth: int):
    """First guess of time zero per column: where the smoothed column first reaches half its
    early peak. Returns (column indices, onsets in ps, SNR weights)."""
    pre = t < t[0] + 0.3 * (0.0 - t[0]) if t[0] < 0 else np.zeros(t.size, bool)
    if pre.sum() < 3:
        pre = np.arange(t.size) < max(3, t.size // 20)
    noise = np.std(d[pre], axis=0) + 1e-12
    k = max(1, int(smooth))
    early = t <= t[0] + 0.5 * (min(t[-1], 50.0) - t[0])
    cols, onsets, weights = [], [], []
    for j in range(d.shape[1]):
        col = np.convolve(d[:, j], np.ones(k) / k, mode="same") if k > 1 else d[:, j]
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
        onsets.append(t[i - 1] + (0.5 - y[i - 1]) * (t[i] - t[i - 1]) / (y[i] - y[i - 1]))
        cols.append(j)
        weights.append(abs(peak) / noise[j])
    return np.asarray(cols, int), np.asarray(onsets, float), np.asarray(weights, float)


#: lifetimes (ps) of the local model that absorbs each column's early kinetics
_LOCAL_TAUS = (0.5, 5.0, 50.0)


def _local_onset(t: np.ndarray, y: np.ndarray, guess: float, sigma: float) -> tuple[float, float]:
    """Time zero of one column by a local fit: offset + IRF-convolved step + three
    IRF-convolved exponentials (0.5, 5, 50 ps), amplitudes linear, t0 scanned within
    ±1 ps of the guess (20 fs, then 2 fs steps). A growing or decaying signal in the first
    picoseconds no longer moves time zero, as it moves a half-rise. Returns (t0, RSS)."""
    win = (t > guess - 1.5) & (t < guess + 5.0)
    tt, yy = t[win], y[win]
    if tt.size < len(_LOCAL_TAUS) + 4:
        return guess, 0.0

    def rss(grid):  # residual sum of squares of the linear fit at every trial t0 (batched SVD)
        x = np.stack([np.ones((grid.size, tt.size)), step_conv_gauss(tt[None] - grid[:, None], sigma)]
                     + [exp_conv_gauss(tt[None] - grid[:, None], tau, sigma) for tau in _LOCAL_TAUS], -1)
        u, sv, _ = np.linalg.svd(x, full_matrices=False)
        proj = np.einsum("gnk,n->gk", u, yy) * (sv > 1e-9 * sv[:, :1])
        return yy @ yy - np.sum(proj**2, axis=1)

    best, r = guess, np.zeros(1)
    for step, span in ((0.02, 1.0), (0.002, 0.03)):
        grid = np.arange(best - span, best + span + step / 2, step)
        r = rss(grid)
        best = float(grid[int(np.argmin(r))])
    return best, float(r.min())


#: IRF FWHMs (ps) tried when the chirp estimate is not given one
_IRF_TRIALS = (0.05, 0.08, 0.12, 0.17, 0.23, 0.3, 0.4, 0.5)


def _local_irf(t: np.ndarray, d: np.ndarray, cols: np.ndarray, guesses: np.ndarray, weights: np.ndarray) -> float:
    """IRF FWHM (ps) of the local model: the trial that fits the 12 strongest columns best."""
    top = np.argsort(weights)[::-1][:12]
    total = [sum(_local_onset(t, d[:, cols[i]], guesses[i], f / FWHM_PER_SIGMA)[1] for i in top) for f in _IRF_TRIALS]
    return _IRF_TRIALS[int(np.argmin(total))]


def estimate_chirp(m: TAMap, *, order: int = 2, min_snr: float = 8.0, smooth: int = 3,
                   irf_fwhm_ps: float | None = None) -> Chirp:
    """Time zero per wavelength from a local fit of each strong column, fitted by a polynomial.

    Each column whose peak |ΔA| reaches ``min_snr`` times the pre-time-zero noise gets a
    first guess from its half-rise, then a local fit (offset, IRF-convolved step and
    0.5/5/50 ps exponentials, amplitudes linear) places time zero so that fast rises or
    decays in the first picoseconds do not bias it. The onsets are fitted by a weighted
    polynomial with outliers beyond 3·MAD clipped (repeated to convergence).

    Parameters
    ----------
    m
        The map as measured.
    order
        Polynomial order of t0(λ).
    min_snr
        Columns with a peak below this many noise standard deviations are skipped.
    smooth
        Running-mean width (points) along the delay axis for the half-rise guess.
    irf_fwhm_ps
        IRF FWHM (ps) of the local model. None: the one of 0.05–0.5 ps that fits the 12
        strongest columns best (a wrong width shifts time zero by tens of fs).

    Returns
    -------
    Chirp
        With ``points`` holding the wavelengths and time zeros (ps) it was fitted to.

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
    from scipy.stats import median_abs_deviation

    if not 0 <= order <= 5:
        raise InputError(f"chirp polynomial order must lie in 0–5, got {order}")
    _check_irf(irf_fwhm_ps)
    t, w, d = m.time_ps, m.wavelength_nm, m.delta_a
    cols, guesses, weights = _half_rise_onsets(t, d, min_snr, smooth)
    if cols.size < order + 2:
        raise AnalysisError(f"only {cols.size} wavelengths have a clear rise (SNR ≥ {min_snr}); cannot fit a "
                            f"chirp polynomial of order {order}. Give the chirp, lower --chirp-order or min_snr")
    if irf_fwhm_ps is None:
        irf_fwhm_ps = _local_irf(t, d, cols, guesses, weights)
    sigma = irf_fwhm_ps / FWHM_PER_SIGMA
    onsets = np.array([_local_onset(t, d[:, j], g, sigma)[0] for j, g in zip(cols, guesses)])
    used = w[cols]
    center = float(0.5 * (w.min() + w.max()))
    u = (used - center) / 100.0
    keep = np.ones(used.size, bool)
    for _ in range(10):
        c = np.polynomial.polynomial.polyfit(u[keep], onsets[keep], order, w=np.sqrt(weights[keep]))
        r = onsets - np.polynomial.polynomial.polyval(u, c)
        mad = median_abs_deviation(r[keep], scale="normal") + 1e-6
        new = np.abs(r) <= 3 * mad
        if new.sum() < order + 2 or np.array_equal(new, keep):
            break
        keep = new
    return Chirp(tuple(float(v) for v in c), center, None,
                 {"wavelength_nm": used.tolist(), "t0_ps": onsets.tolist(), "used": keep.tolist(),
                  "irf_fwhm_ps": float(irf_fwhm_ps)})


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


def subtract_background(m: TAMap, chirp: Chirp, *, before_ps: float = 0.5) -> tuple[TAMap, int]:
    """Subtract, per wavelength, the mean ΔA of the delays ending ``before_ps`` before its time zero.

    Signal before time zero is not photo-induced by this pump pulse: scattered pump light,
    a long-lived remainder of the previous pulse, a baseline drift. Standard TA
    pre-processing removes it (as KiMoPack's ``Background`` does).

    Parameters
    ----------
    m
        The map as measured.
    chirp
        Time zero per wavelength.
    before_ps
        Margin (ps) before t0(λ) where the pre-zero window ends.

    Returns
    -------
    tuple
        ``(map, n_points)``: the corrected map and the fewest pre-zero delays used at any
        wavelength (0: nothing subtracted, the map has no delays before time zero).
    """
    t0 = chirp(m.wavelength_nm)
    pre = m.time_ps[:, None] < (t0 - before_ps)[None, :]
    n = int(pre.sum(axis=0).min())
    if n < 3:
        return m, 0
    base = np.where(pre, m.delta_a, 0.0).sum(axis=0) / pre.sum(axis=0)
    return TAMap(m.wavelength_nm, m.time_ps, m.delta_a - base[None, :], {**m.meta, "background_subtracted": True}), n


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
        Time zero versus wavelength: held at its estimate, or refined within its bound.
    das, eas
        Decay- and evolution-associated spectra, shape (n_components [+1], n_wavelengths).
    offset
        A non-decaying component was included (last row of ``das``/``eas``).
    artifact_spectra
        Amplitudes of the coherent-artifact terms (IRF, 1st, 2nd derivative), shape
        (order + 1, n_wavelengths), or None.
    wavelength_nm, time_ps, fitted, residual, rms_residual
        Axes of the fitted wavelengths, the model map, data − model (NaN outside the fit
        window) and its RMS over the window (ΔA units).
    noise
        Noise standard deviation per wavelength, from the delays before time zero (ΔA).
    reduced_chi2
        Mean of (residual / noise)² over the window: ≈ 1 for a model that leaves only noise.
    warnings
        What the data do not support, in words (also written to ``summary.json``).
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
    artifact_spectra: np.ndarray | None = None
    noise: np.ndarray | None = None
    reduced_chi2: float = float("nan")
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "lifetimes_ps": self.lifetimes_ps.tolist(), "lifetimes_err_ps": self.lifetimes_err_ps.tolist(),
            "irf_fwhm_ps": self.irf_fwhm_ps, "irf_fwhm_err_ps": self.irf_fwhm_err_ps, "irf_fixed": self.irf_fixed,
            "chirp": {"t0_ps_polynomial_coefficients": list(self.chirp.coefficients_ps),
                      "errors_ps": list(self.chirp.errors_ps or []), "center_nm": self.chirp.center_nm,
                      "variable": "u = (wavelength_nm - center_nm) / 100"},
            "offset_component": self.offset, "rms_residual": self.rms_residual,
            "reduced_chi2": self.reduced_chi2, "warnings": list(self.warnings),
            "artifact_terms": 0 if self.artifact_spectra is None else len(self.artifact_spectra),
            "model": "parallel decays (DAS) and the equivalent sequential scheme (EAS), Gaussian IRF"
                     + (", coherent artifact as the IRF and its derivatives" if self.artifact_spectra is not None else ""),
            **self.meta,
        }


def kept_wavelengths(wavelength_nm: np.ndarray, exclude_nm: Sequence[tuple[float, float]] = ()) -> np.ndarray:
    """Boolean mask of the wavelengths outside every excluded range ``(lo, hi)`` (nm, inclusive).

    Parameters
    ----------
    wavelength_nm
        Probe wavelengths (nm).
    exclude_nm
        Ranges to leave out, e.g. ``[(380, 405)]`` for pump scatter around 400 nm.

    Returns
    -------
    numpy.ndarray
        True where the wavelength is kept.

    Examples
    --------
    >>> kept_wavelengths(np.array([370.0, 390.0, 410.0]), [(380, 405)]).tolist()
    [True, False, True]
    """
    w = np.asarray(wavelength_nm, float)
    keep = np.ones(w.size, bool)
    for lo, hi in exclude_nm:
        if not lo < hi:
            raise InputError(f"an excluded wavelength range must run from low to high, got {lo:g}-{hi:g} nm")
        keep &= ~((w >= lo) & (w <= hi))
    if keep.sum() < 2:
        raise InputError(f"the excluded ranges leave {int(keep.sum())} of {w.size} wavelengths; at least 2 are needed")
    return keep


def time_window(time_ps: np.ndarray, t0_ps: np.ndarray, t_range_ps: tuple[float, float] | None) -> np.ndarray:
    """Weights (1 inside, 0 outside) of the delays ``t − t0(λ)`` within ``t_range_ps``; shape (n_w, n_t).

    The window is in the chirp-corrected frame: ``(0.3, 2000)`` keeps 0.3–2000 ps after
    each wavelength's own time zero.

    Parameters
    ----------
    time_ps
        Delays of the map (ps), shape (n_t,).
    t0_ps
        Time zero per wavelength (ps), shape (n_w,) or a scalar.
    t_range_ps
        ``(lo, hi)`` in delay after time zero (ps), or None for every delay.

    Returns
    -------
    numpy.ndarray
        Weights, shape (n_w, n_t).

    Examples
    --------
    >>> time_window(np.array([-1.0, 0.5, 1.0, 5.0]), np.array([0.0, 0.6]), (0.3, 3.0)).tolist()
    [[0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0]]
    """
    tt = np.asarray(time_ps, float)[None, :] - np.atleast_1d(np.asarray(t0_ps, float))[:, None]
    if t_range_ps is None:
        return np.ones_like(tt)
    lo, hi = t_range_ps
    if not lo < hi:
        raise InputError(f"the fit window must run from early to late, got {lo:g} to {hi:g} ps")
    return ((tt >= lo) & (tt <= hi)).astype(float)


def fit_global(m: TAMap, n_components: int = 2, *, irf_fwhm_ps: float | None = None, chirp: Chirp | None = None,
               fit_chirp: bool = False, chirp_bound_ps: float = 0.3, chirp_order: int = 2, offset: bool = False,
               artifact: int | None = None, t_range_ps: tuple[float, float] | None = None,
               exclude_nm: Sequence[tuple[float, float]] = (),
               lifetimes_start_ps: Sequence[float] | None = None) -> GlobalFit:
    """Global analysis: ``ΔA(λ, t) = Σ_k DAS_k(λ) g(t − t0(λ); τ_k, σ) [+ artifact]``.

    Lifetimes (log-parametrised) and the IRF width are refined by
    :func:`scipy.optimize.least_squares`; the DAS (and artifact amplitudes) are solved
    exactly at every step. Several start sets are screened on the strongest wavelengths.

    **Chirp.** By default the chirp is *held* at its data-driven estimate
    (:func:`estimate_chirp`, from the half-rise of every strong column). On measured maps
    a freely refined chirp polynomial trades time zero against lifetimes and runs away
    from the data (a red-edge t0 moved by −8 ps on a published Ru-complex map, while its
    lifetimes came out 30× too short). ``fit_chirp=True`` refines it within a hard bound:
    the refined t0(λ) never leaves the start curve by more than ``chirp_bound_ps`` at any
    fitted wavelength (coefficient k is bounded by ``chirp_bound_ps / (n u_max^k)``), and a
    warning says when a bound is reached.

    Parameters
    ----------
    m
        The map (delays in ps, wavelengths in nm).
    n_components
        Number of exponential components (1–6).
    irf_fwhm_ps
        Fix the IRF FWHM (ps); fitted when None.
    chirp
        Starting (held unless ``fit_chirp``) chirp; estimated from the map when None.
    fit_chirp, chirp_bound_ps
        Refine the chirp within ± ``chirp_bound_ps`` (ps) of the start curve.
    chirp_order
        Order of the estimated chirp when ``chirp`` is None.
    offset
        Add a non-decaying component (its DAS is the long-time spectrum).
    artifact
        Model the coherent artifact as the IRF and its derivatives up to this order
        (0–2; :func:`halex.ta.model.artifact_columns`); None: no artifact term.
    t_range_ps
        Fit only delays ``t − t0(λ)`` in this window (ps), e.g. ``(0.3, 2000)`` to leave
        the pulse overlap out.
    exclude_nm
        Wavelength ranges left out of the fit, e.g. ``[(380, 405)]`` for pump scatter.
    lifetimes_start_ps
        Start lifetimes (ps) instead of the automatic start sets.

    Returns
    -------
    GlobalFit
        Lifetimes with standard errors (ps), IRF, chirp, DAS and EAS, artifact spectra,
        fit, residual, noise, reduced χ² and warnings.

    Examples
    --------
    >>> import numpy as np
    >>> from halex.ta import default_delays, gaussian_band, simulate_ta_map
    >>> w = np.arange(400.0, 700.0, 5.0)
    >>> m = simulate_ta_map(w, default_delays(), [gaussian_band(w, 500, 40, -1.0)], [20.0], seed=1)
    >>> g = fit_global(m, 1, irf_fwhm_ps=0.23, chirp=Chirp((0.0,), 550.0))
    >>> round(float(g.lifetimes_ps[0]), 2)
    20.0
    """
    _check_global_options(n_components, irf_fwhm_ps, artifact, chirp_bound_ps, t_range_ps)
    keep = kept_wavelengths(m.wavelength_nm, exclude_nm)
    sub = TAMap(m.wavelength_nm[keep], m.time_ps, m.delta_a[:, keep], m.meta)
    if chirp is None:
        chirp = estimate_chirp(sub, order=chirp_order, irf_fwhm_ps=irf_fwhm_ps)
    prob = _GlobalProblem(sub, n_components, irf_fwhm_ps, chirp, fit_chirp, chirp_bound_ps, offset, artifact, t_range_ps)
    starts = [np.asarray(lifetimes_start_ps, float)] if lifetimes_start_ps is not None else _starts(n_components, m.time_ps)
    p0s = [prob.start(tau0) for tau0 in starts]
    lo, hi = prob.bounds()
    sol = least_squares(prob.residual, _screen_starts(prob.residual, p0s, prob.d, (lo, hi)), bounds=(lo, hi),
                        method="trf", x_scale="jac", max_nfev=300)
    meta = {"n_components": n_components, "optimizer_nfev": int(sol.nfev), "chirp_refined": bool(fit_chirp),
            "chirp_bound_ps": chirp_bound_ps if fit_chirp else None, "artifact_order": artifact,
            "t_range_ps": list(t_range_ps) if t_range_ps else None,
            "excluded_nm": [list(r) for r in exclude_nm], "n_points_fitted": int(prob.mask.sum())}
    return _global_result(prob, sol, meta)


def _check_global_options(n_components, irf_fwhm_ps, artifact, chirp_bound_ps, t_range_ps) -> None:
    if not 1 <= n_components <= 6:
        raise InputError(f"number of global components must lie in 1–6, got {n_components}")
    _check_irf(irf_fwhm_ps)
    if artifact is not None and artifact not in (0, 1, 2):
        raise InputError(f"the coherent-artifact order must be 0, 1 or 2 (IRF and its derivatives), got {artifact}")
    if not chirp_bound_ps > 0:
        raise InputError(f"the chirp bound must be positive (ps), got {chirp_bound_ps}")
    if artifact is not None and t_range_ps is not None and t_range_ps[0] > 0:
        raise InputError(f"the fit window starts at {t_range_ps[0]:g} ps, after the pulse overlap, so a coherent-artifact "
                         "term has nothing to fit: use --artifact or --t-range, not both")


class _GlobalProblem:
    """The variable-projection residual of a global fit, with its parameter vector layout and bounds."""

    def __init__(self, m, n, irf, chirp, fit_chirp, bound, offset, artifact, t_range):
        self.t, self.w, self.n, self.offset, self.artifact = m.time_ps, m.wavelength_nm, n, offset, artifact
        self.chirp, self.fit_chirp, self.bound = chirp, fit_chirp, bound
        self.fix_sigma = irf is not None
        self.sigma0 = (irf if self.fix_sigma else 0.15) / FWHM_PER_SIGMA
        self.u = (self.w - chirp.center_nm) / 100.0
        self.mask = time_window(self.t, chirp(self.w), t_range)
        if self.mask.sum(axis=1).min() < n + 2:
            raise InputError(f"the fit window keeps only {int(self.mask.sum(axis=1).min())} delays at some wavelength; "
                             f"{n + 2} are needed for {n} components")
        self.d_raw = m.delta_a.T  # (n_w, n_t)
        self.d = self.d_raw * self.mask

    def split(self, p):
        n = self.n
        taus = np.exp(p[:n])
        sigma = self.sigma0 if self.fix_sigma else np.exp(p[n])
        k = n + (0 if self.fix_sigma else 1)
        coeffs = p[k:] if self.fit_chirp else np.asarray(self.chirp.coefficients_ps)
        return taus, sigma, coeffs

    def design(self, p, rows=slice(None)):
        taus, sigma, coeffs = self.split(p)
        t0 = np.polynomial.polynomial.polyval(self.u[rows], coeffs)
        b = basis(self.t, t0, taus, sigma, offset=self.offset, artifact=self.artifact)
        return b * self.mask[rows, :, None]

    def residual(self, p, rows=slice(None)):
        b = self.design(p, rows)
        a = _amplitudes(b, self.d[rows])
        return (np.einsum("wtc,wc->wt", b, a) - self.d[rows]).ravel()

    def start(self, tau0):
        if tau0.size != self.n or np.any(tau0 <= 0):
            raise InputError(f"give {self.n} positive starting lifetimes")
        return np.r_[np.log(tau0), [] if self.fix_sigma else [np.log(self.sigma0)],
                     list(self.chirp.coefficients_ps) if self.fit_chirp else []]

    def bounds(self):
        """Lifetimes 1 fs–1 s, IRF FWHM 5 fs–5 ps, chirp coefficients within the bound of the start curve."""
        lo = [np.log(1e-3)] * self.n + ([] if self.fix_sigma else [np.log(0.005 / FWHM_PER_SIGMA)])
        hi = [np.log(1e12)] * self.n + ([] if self.fix_sigma else [np.log(5.0 / FWHM_PER_SIGMA)])
        if self.fit_chirp:
            c = np.asarray(self.chirp.coefficients_ps)
            umax = max(float(np.abs(self.u).max()), 1e-3)
            step = self.bound / (c.size * umax ** np.arange(c.size))
            lo, hi = lo + list(c - step), hi + list(c + step)
        return np.asarray(lo), np.asarray(hi)


def _screen_starts(resid, p0s: list[np.ndarray], d: np.ndarray, bounds) -> np.ndarray:
    """The best of several start vectors, screened on the 24 strongest wavelengths (60 evaluations each)."""
    if len(p0s) == 1:
        return p0s[0]
    strength = np.abs(d).max(axis=1)
    sub = np.sort(np.argsort(strength)[::-1][: min(len(d), 24)])
    screened = [least_squares(lambda p: resid(p, sub), p0, bounds=bounds, method="trf", x_scale="jac", max_nfev=60)
                for p0 in p0s]
    return min(screened, key=lambda r: r.cost).x


def _global_result(prob: _GlobalProblem, sol, meta: dict[str, Any]) -> GlobalFit:
    """DAS (amplitudes solved exactly at the fitted lifetimes), EAS, artifact, errors and flags, in lifetime order."""
    n = prob.n
    taus, sigma, coeffs = prob.split(sol.x)
    n_dec = n + int(prob.offset)
    n_amp = prob.w.size * (n_dec + (0 if prob.artifact is None else prob.artifact + 1))
    dof = max(int(prob.mask.sum()) - sol.x.size - n_amp, 1)
    err = np.sqrt(np.maximum(np.diag(np.linalg.pinv(sol.jac.T @ sol.jac) * (2 * sol.cost / dof)), 0))
    k = n + (0 if prob.fix_sigma else 1)
    c_err = tuple(float(v) for v in err[k:]) if prob.fit_chirp else tuple(0.0 for _ in prob.chirp.coefficients_ps)
    chirp = Chirp(tuple(float(v) for v in coeffs), prob.chirp.center_nm, c_err, prob.chirp.points)
    order = np.argsort(taus)
    p_sorted = np.r_[np.log(taus[order]), sol.x[n:]]
    b = prob.design(p_sorted)
    a = _amplitudes(b, prob.d)  # (n_w, n_c)
    full = basis(prob.t, chirp(prob.w), taus[order], sigma, offset=prob.offset, artifact=prob.artifact)
    fitted = np.einsum("wtc,wc->wt", full, a)
    resid = np.where(prob.mask > 0, prob.d - fitted * prob.mask, np.nan)
    eas = np.linalg.solve(sequential_matrix(list(taus[order]) + ([np.inf] if prob.offset else [])), a[:, :n_dec].T)
    noise = _pre_zero_noise(prob.t, prob.d_raw, chirp(prob.w), sigma)
    chi2 = float(np.nanmean((resid / noise[:, None]) ** 2))
    sig_err = 0.0 if prob.fix_sigma else sigma * err[n]
    g = GlobalFit(taus[order], (taus * err[:n])[order], float(sigma * FWHM_PER_SIGMA), float(sig_err * FWHM_PER_SIGMA),
                  prob.fix_sigma, chirp, a[:, :n_dec].T, eas, prob.offset, prob.w, prob.t, fitted.T, resid.T,
                  float(np.sqrt(np.nanmean(resid ** 2))), {**meta, "chi2_dof": dof},
                  a[:, n_dec:].T if prob.artifact is not None else None, noise, chi2)
    g.warnings.extend(_global_warnings(prob, g, sol))
    return g


def lifetime_warnings(lifetimes_ps, errors_ps, t_last_ps: float, irf_fwhm_ps: float, *, where: str = "") -> list[str]:
    """Flags for lifetimes the data cannot support: longer than 3× the last delay, undetermined
    (standard error ≥ value), or shorter than a third of the IRF FWHM.

    Examples
    --------
    >>> lifetime_warnings([0.01, 5.0, 1e5], [0.001, 0.1, 10.0], 2000.0, 0.12)[0][:29]
    'the lifetime 0.01 ps is below'
    """
    out = []
    for tau, e in zip(lifetimes_ps, errors_ps):
        if tau > 3 * t_last_ps:
            out.append(f"{where}a lifetime of {tau:.3g} ps is more than 3× the last delay fitted ({t_last_ps:.3g} ps): "
                       "it is not measured by these data; treat it as a non-decaying offset (--offset)")
        elif not e < tau:
            out.append(f"{where}the lifetime {tau:.3g} ps is not determined (standard error {e:.2g} ps): fewer "
                       "components may describe the data")
        elif tau < irf_fwhm_ps / 3:
            out.append(f"{where}the lifetime {tau:.3g} ps is below a third of the IRF FWHM ({irf_fwhm_ps:.3g} ps): it "
                       "is not resolved and may be a coherent artifact (--artifact 2 or --t-range)")
    return out


def _pre_zero_noise(t: np.ndarray, d: np.ndarray, t0: np.ndarray, sigma: float) -> np.ndarray:
    """Noise SD per wavelength from the delays well before its time zero (≥ 5 points), else from
    the point-to-point scatter of the late half of the trace (MAD of first differences / √2)."""
    from scipy.stats import median_abs_deviation

    out = np.empty(d.shape[0])
    for j in range(d.shape[0]):
        pre = np.isfinite(d[j]) & (t < t0[j] - max(5 * sigma, 0.5))
        if pre.sum() >= 5:
            out[j] = np.std(d[j, pre], ddof=1)
        else:
            late = d[j, t.size // 2:]
            dif = np.diff(late[np.isfinite(late)])
            out[j] = median_abs_deviation(dif, scale="normal") / np.sqrt(2) if dif.size > 4 else np.nan
    good = np.isfinite(out) & (out > 0)
    fill = float(np.median(out[good])) if good.any() else 1.0
    return np.where(good, out, fill)


def _global_warnings(prob: _GlobalProblem, g: GlobalFit, sol) -> list[str]:
    """Plain-language flags for what the fit cannot support."""
    out = lifetime_warnings(g.lifetimes_ps, g.lifetimes_err_ps, float(prob.t[prob.mask.any(axis=0)].max()),
                            g.irf_fwhm_ps)
    if g.reduced_chi2 > 2:
        out.append(f"the residual is {np.sqrt(g.reduced_chi2):.1f}× the pre-time-zero noise (reduced χ² "
                   f"{g.reduced_chi2:.2g}): the model leaves structure in the data; see residual.png")
    if prob.artifact is None and np.isfinite(g.residual).any():
        tt = prob.t[None, :] - g.chirp(prob.w)[:, None]
        near = (np.abs(tt) < 2 * g.irf_fwhm_ps) & (prob.mask > 0)
        r = g.residual.T
        if near.sum() > 3 and (~near & (prob.mask > 0)).sum() > 3:
            ratio = np.sqrt(np.nanmean(r[near] ** 2) / np.nanmean(r[~near & (prob.mask > 0)] ** 2))
            if ratio > 3:
                out.append(f"the residual around time zero is {ratio:.1f}× that elsewhere: a coherent artifact; model "
                           "it (--artifact 2) or leave the pulse overlap out (--t-range 0.3 …)")
    if prob.fit_chirp:
        lo, hi = prob.bounds()
        k = prob.n + (0 if prob.fix_sigma else 1)
        if np.any(np.isclose(sol.x[k:], lo[k:], rtol=0, atol=1e-6 * prob.bound)
                  | np.isclose(sol.x[k:], hi[k:], rtol=0, atol=1e-6 * prob.bound)):
            out.append(f"the chirp refinement reached its bound (±{prob.bound:g} ps from the estimate): the fit "
                       "pulls time zero away from the measured rise; hold the chirp (the default)")
    return out


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
        The data, the model and the RMS residual (over the fit window).
    warnings
        What the trace cannot support (:func:`lifetime_warnings`).
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
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"wavelength_nm": self.wavelength_nm, "warnings": list(self.warnings), "lifetimes_ps": self.lifetimes_ps.tolist(),
                "lifetimes_err_ps": self.lifetimes_err_ps.tolist(), "amplitudes": self.amplitudes.tolist(),
                "amplitudes_err": self.amplitudes_err.tolist(), "t0_ps": self.t0_ps, "t0_err_ps": self.t0_err_ps,
                "irf_fwhm_ps": self.irf_fwhm_ps, "irf_fwhm_err_ps": self.irf_fwhm_err_ps, "irf_fixed": self.irf_fixed,
                "offset": self.offset, "rms_residual": self.rms_residual,
                "model": "sum of exponentials (free-sign amplitudes: rises are negative terms) convolved with a Gaussian IRF"}


def fit_kinetics(time_ps: np.ndarray, trace: np.ndarray, *, n_components: int = 2, irf_fwhm_ps: float | None = None, t0_ps: float = 0.0,
                 fit_t0: bool = True, offset: bool = False, wavelength_nm: float = float("nan"),
                 lifetimes_start_ps: Sequence[float] | None = None,
                 t_range_ps: tuple[float, float] | None = None) -> KineticsFit:
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
    t_range_ps
        Fit only the delays ``t − t0_ps`` in this window (ps); the model is still
        evaluated on every delay. With a window that starts after the pulse overlap, hold
        the IRF (``irf_fwhm_ps``) and time zero (``fit_t0=False``): the data cannot tell them.

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
    sel = time_window(t, np.array([t0_ps]), t_range_ps)[0] > 0
    if sel.sum() < 2 * n_components + 4:
        raise InputError(f"the fit window keeps {int(sel.sum())} delays; {2 * n_components + 4} are needed")

    def split(p):
        taus = np.exp(p[:n_components])
        k = n_components
        sigma = sigma0 if fix_sigma else np.exp(p[k])
        k += 0 if fix_sigma else 1
        t0 = p[k] if fit_t0 else t0_ps
        return taus, sigma, t0

    def design(p, tt=t[sel]):
        taus, sigma, t0 = split(p)
        return basis(tt, t0, taus, sigma, offset=offset)

    def resid(p):
        b = design(p)
        a, *_ = np.linalg.lstsq(b, y[sel], rcond=None)
        return b @ a - y[sel]

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
    a, *_ = np.linalg.lstsq(b, y[sel], rcond=None)
    n_lin = b.shape[1]
    dof = max(int(sel.sum()) - sol.x.size - n_lin, 1)
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
    fitted = design(sol.x, t) @ a
    where = f"{wavelength_nm:g} nm: " if np.isfinite(wavelength_nm) else ""
    flags = lifetime_warnings(taus[order], (taus * err[:n_components])[order], float(t[sel].max()),
                              sigma * FWHM_PER_SIGMA, where=where)
    return KineticsFit(float(wavelength_nm), taus[order], (taus * err[:n_components])[order], amps, amps_err,
                       float(t0), t0_err, float(sigma * FWHM_PER_SIGMA), float(sig_err * FWHM_PER_SIGMA), fix_sigma,
                       float(a[-1]) if offset else None, t, y, fitted, float(np.sqrt(np.mean((fitted - y)[sel] ** 2))),
                       flags)
