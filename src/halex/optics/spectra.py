"""Absorption and photoluminescence analysis.

* :func:`to_energy` — wavelength → photon energy ``E = hc/λ`` (hc = 1239.841984 eV nm).
  Spectral *densities* (PL counts per nm) are multiplied by the Jacobian
  ``|dλ/dE| = λ²/hc`` so that they become per eV (J. Mooney, P. Kambhampati, J. Phys.
  Chem. Lett. 4, 3316 (2013)); absorbance is a per-photon quantity and is not.
* :func:`fit_peaks` — sum of Gaussian, split-Gaussian (``"asym"``) or Voigt peaks on a
  constant baseline by non-linear least squares. The fit is judged against the data's own
  point noise (:func:`point_noise`): χ² against it and the lag-1 autocorrelation of the
  residual; a residual above √2× the noise, or structured, is flagged in ``warnings``.
  Standard errors are the covariance scaled by the residual and then by
  √((1 + ρ)/(1 − ρ)) for a residual of lag-1 correlation ρ (the effective number of
  independent points), so a model that misses the shape does not quote a precision the
  data do not have.
* :func:`select_peak_model` — 1 or 2 Gaussian or split-Gaussian peaks chosen by BIC.

The absorption edge (first exciton, onset, Tauc gap) is in :mod:`halex.optics.edge`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from halex.errors import AnalysisError, InputError

__all__ = ["HC_EV_NM", "to_energy", "Peak", "PeakFit", "fit_peaks", "point_noise", "select_peak_model", "PL_MODELS"]

HC_EV_NM = 1239.841984


def to_energy(wavelength_nm: np.ndarray, values: np.ndarray, *,
              jacobian: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Wavelength to photon energy, ``E = hc/λ`` (``HC_EV_NM`` = 1239.84 eV nm).

    Parameters
    ----------
    wavelength_nm
        Wavelengths (nm).
    values
        Signal per wavelength.
    jacobian
        Convert a spectral density per nm to per eV (multiply by λ²/hc): right for PL
        counts, wrong for absorbance.

    Returns
    -------
    tuple of numpy.ndarray
        ``(energy_eV, values_per_eV)`` sorted by increasing energy.

    Examples
    --------
    >>> e, _ = to_energy([620.0, 413.28], [1.0, 1.0], jacobian=False)
    >>> e.round(3).tolist()
    [2.0, 3.0]
    """
    w = np.asarray(wavelength_nm, float)
    v = np.asarray(values, float)
    if np.any(w <= 0):
        raise InputError("wavelengths must be positive (nm)")
    e = HC_EV_NM / w
    out = v * w**2 / HC_EV_NM if jacobian else v.copy()
    order = np.argsort(e)
    return e[order], out[order]


def _gauss(x, c, fwhm, area):
    s = fwhm / (2 * np.sqrt(2 * np.log(2)))
    return area / (s * np.sqrt(2 * np.pi)) * np.exp(-0.5 * ((x - c) / s) ** 2)


def _voigt(x, c, sigma, gamma, area):
    from scipy.special import voigt_profile

    return area * voigt_profile(x - c, sigma, gamma)


def _split_gauss(x, c, fwhm_low, fwhm_high, area):
    """Split Gaussian: half-widths differ below and above the mode ``c``; ``area`` is the integral."""
    k = 2 * np.sqrt(2 * np.log(2))
    s_lo, s_hi = fwhm_low / k, fwhm_high / k
    height = area / (np.sqrt(np.pi / 2) * (s_lo + s_hi))
    s_x = np.where(x < c, s_lo, s_hi)
    return height * np.exp(-0.5 * ((x - c) / s_x) ** 2)


def _voigt_fwhm(sigma, gamma):
    fg = 2 * np.sqrt(2 * np.log(2)) * sigma
    fl = 2 * gamma
    return 0.5346 * fl + np.sqrt(0.2166 * fl**2 + fg**2)  # Olivero & Longbothum (1977), 0.02 %


@dataclass(frozen=True)
class Peak:
    """One fitted peak: centre, FWHM, area (x units) with standard errors, and its height."""

    center: float
    center_err: float
    fwhm: float
    fwhm_err: float
    area: float
    area_err: float
    height: float
    fwhm_low: float | None = None
    fwhm_high: float | None = None
    determined: bool = True


@dataclass
class PeakFit:
    """Result of :func:`fit_peaks`.

    Attributes
    ----------
    peaks
        :class:`Peak` objects sorted by centre.
    shape
        ``"gauss"`` or ``"voigt"``.
    baseline
        Fitted constant (signal units).
    x, y, fitted
        The data (sorted by x) and the model.
    components
        Each peak's curve on ``x``.
    chi2_red
        Residual variance per degree of freedom (signal units²).
    noise
        Point noise of the data (signal units), from the scatter of second differences.
    chi2_noise
        Residual variance over ``noise²``: about 1 for a model that describes the data.
    residual_autocorr
        Lag-1 autocorrelation of the residual: near 0 for noise, near 1 for a missed shape.
    warnings
        Plain sentences on what the fit cannot support.
    """

    peaks: list[Peak]
    shape: str
    baseline: float
    x: np.ndarray
    y: np.ndarray
    fitted: np.ndarray
    components: list[np.ndarray]
    chi2_red: float
    noise: float = float("nan")
    chi2_noise: float = float("nan")
    residual_autocorr: float = float("nan")
    warnings: list[str] = field(default_factory=list)


def _start_centres(x: np.ndarray, ys: np.ndarray, n_peaks: int, centers) -> tuple[np.ndarray, np.ndarray]:
    """Start centres and their indices: the ``n_peaks`` most prominent maxima, or ``centers``."""
    from scipy.signal import find_peaks

    if centers is not None:
        c0 = np.asarray(centers, float)
        if c0.size != n_peaks:
            raise InputError(f"give {n_peaks} starting centres, got {c0.size}")
        return c0, np.clip(np.searchsorted(x, c0), 0, x.size - 1)
    idx, props = find_peaks(ys, prominence=0.02 * (ys.max() - ys.min()))
    if idx.size == 0:
        idx = np.array([int(np.argmax(ys))])
        props = {"prominences": np.array([1.0])}
    top = idx[np.argsort(props["prominences"])[::-1][:n_peaks]]
    while top.size < n_peaks:  # fewer visible maxima than requested: spread the rest
        top = np.r_[top, int(np.clip(top[0] + (top.size * 7) % (x.size // 4), 0, x.size - 1))]
    return x[top], top


def _peak_model(n_peaks: int, shape: str, baseline: bool):
    """``f(x, *p)``: the sum of peaks (Gaussian: centre, FWHM, area; Voigt: centre, σ, γ, area) and a constant."""
    def model(xx, *p):
        out = np.full_like(xx, p[-1] if baseline else 0.0)
        for k in range(n_peaks):
            if shape == "gauss":
                c, f, a = p[3 * k:3 * k + 3]
                out = out + _gauss(xx, c, f, a)
            elif shape == "asym":
                c, fl, fh, a = p[4 * k:4 * k + 4]
                out = out + _split_gauss(xx, c, fl, fh, a)
            else:
                c, s, g, a = p[4 * k:4 * k + 4]
                out = out + _voigt(xx, c, s, g, a)
        return out

    return model


def _start_and_bounds(x: np.ndarray, y: np.ndarray, ys: np.ndarray, c0: np.ndarray, top: np.ndarray, shape: str,
                      baseline: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start vector (inside the bounds) and bounds of the peak parameters."""
    from scipy.signal import peak_widths

    span = x[-1] - x[0]
    dx = np.median(np.diff(x))
    import warnings

    try:
        with warnings.catch_warnings():  # a requested peak without a visible maximum has no prominence
            warnings.simplefilter("ignore")
            w0 = np.maximum(peak_widths(ys, top, rel_height=0.5)[0] * dx, 3 * dx)
    except ValueError:
        w0 = np.full(len(c0), span / 10)
    w0 = np.minimum(w0, span / 2)
    h0 = np.maximum(ys[top] - ys.min(), 1e-12 * max(abs(ys).max(), 1e-300))
    p0, lo, hi = [], [], []
    for k in range(len(c0)):
        area = h0[k] * w0[k] * 1.064
        if shape == "gauss":
            p0 += [c0[k], w0[k], area]
            lo += [x[0], dx / 2, 0.0]
            hi += [x[-1], span, np.inf]
        elif shape == "asym":
            p0 += [c0[k], w0[k], w0[k], area]
            lo += [x[0], dx / 2, dx / 2, 0.0]
            hi += [x[-1], span, span, np.inf]
        else:
            p0 += [c0[k], w0[k] / 3.5, w0[k] / 4, area]
            lo += [x[0], dx / 10, 0.0, 0.0]
            hi += [x[-1], span, span, np.inf]
    if baseline:
        p0.append(float(np.percentile(y, 5)))
        lo.append(-np.inf)
        hi.append(np.inf)
    lo_a, hi_a = np.array(lo, float), np.array(hi, float)
    finite = np.isfinite(lo_a)
    p0 = np.array(p0, float)
    p0[finite] = np.maximum(p0[finite], lo_a[finite] + 1e-9 * (np.abs(lo_a[finite]) + 1))
    return np.minimum(p0, hi_a), lo_a, hi_a


def _peaks_from(x: np.ndarray, popt: np.ndarray, perr: np.ndarray, n_peaks: int, shape: str) -> tuple[list[Peak], list[np.ndarray]]:
    """Peaks with standard errors (the Voigt FWHM's by propagation through Olivero–Longbothum) and their curves."""
    peaks, comps = [], []
    for k in range(n_peaks):
        if shape == "gauss":
            c, f, a = popt[3 * k:3 * k + 3]
            ce, fe, ae = perr[3 * k:3 * k + 3]
            comp = _gauss(x, c, f, a)
        elif shape == "asym":
            c, fl, fh, a = popt[4 * k:4 * k + 4]
            ce, fle, fhe, ae = perr[4 * k:4 * k + 4]
            comp = _split_gauss(x, c, fl, fh, a)
            peaks.append(Peak(float(c), float(ce), float((fl + fh) / 2), float(0.5 * np.hypot(fle, fhe)), float(a),
                              float(ae), float(comp.max()), float(fl), float(fh)))
            comps.append(comp)
            continue
        else:
            c, s, g, a = popt[4 * k:4 * k + 4]
            ce, se, ge, ae = perr[4 * k:4 * k + 4]
            f = _voigt_fwhm(s, g)
            eps = 1e-6 * max(f, 1e-12)
            dfs = (_voigt_fwhm(s + eps, g) - f) / eps
            dfg = (_voigt_fwhm(s, g + eps) - f) / eps
            fe = float(np.sqrt((dfs * se) ** 2 + (dfg * ge) ** 2))
            comp = _voigt(x, c, s, g, a)
        peaks.append(Peak(float(c), float(ce), float(f), float(fe), float(a), float(ae), float(comp.max())))
        comps.append(comp)
    return peaks, comps


def point_noise(y: np.ndarray) -> float:
    """Point noise of a smooth, well-sampled signal: the robust scatter of ``y_i − (y_{i−1} + y_{i+1})/2``
    (variance 1.5 σ² for white noise; the curvature of a peak sampled by ≳ 10 points adds little).

    Parameters
    ----------
    y
        Signal, ordered along its axis.

    Returns
    -------
    float
        σ (signal units).

    Examples
    --------
    >>> y = np.sin(np.linspace(0, 3, 3000)) + np.random.default_rng(0).normal(0, 0.01, 3000)
    >>> round(point_noise(y), 3)
    0.01
    """
    from scipy.stats import median_abs_deviation

    y = np.asarray(y, float)
    d = y[1:-1] - 0.5 * (y[:-2] + y[2:])
    return float(median_abs_deviation(d, scale="normal") / np.sqrt(1.5))


def _quality(y: np.ndarray, fitted: np.ndarray, n_par: int) -> tuple[float, float, float, list[str]]:
    """Noise, χ² against it, lag-1 residual autocorrelation and the flags they raise."""
    r = y - fitted
    noise = point_noise(y)
    chi2 = float(np.sum(r**2) / max(y.size - n_par, 1) / max(noise, 1e-300) ** 2)
    rc = r - r.mean()
    rho = float(np.sum(rc[1:] * rc[:-1]) / max(np.sum(rc**2), 1e-300))
    flags = []
    if chi2 > 2 and rho > 0.5:
        flags.append(f"the residual is {np.sqrt(chi2):.1f}× the noise and structured (lag-1 autocorrelation "
                     f"{rho:.2f}): the peak shape misses the data; try --shape asym, more peaks or --pl-peaks auto")
    elif chi2 > 2:
        flags.append(f"the residual is {np.sqrt(chi2):.1f}× the point noise (reduced χ² {chi2:.1f})")
    return noise, chi2, rho, flags


def _undetermined(peaks: list[Peak], x: np.ndarray) -> tuple[list[Peak], list[str]]:
    """The peaks, those the data do not determine marked, and a sentence on each: a centre
    outside the data, or a FWHM or area whose standard error exceeds the value (a component
    fitted to a cut-off tail)."""
    from dataclasses import replace

    out, marked = [], []
    for p in peaks:
        ok = x.min() <= p.center <= x.max() and p.fwhm_err < p.fwhm and p.area_err < p.area
        marked.append(p if ok else replace(p, determined=False))
        if not ok:
            out.append(f"the peak at {p.center:.4g} (FWHM {p.fwhm:.3g} ± {p.fwhm_err:.2g}, area {p.area:.3g} ± "
                       f"{p.area_err:.2g}) is not determined by the data; fit fewer peaks")
    return marked, out


def _inflate(peaks: list[Peak], rho: float) -> list[Peak]:
    """Standard errors × √((1 + ρ)/(1 − ρ)): the effective number of independent points of an
    AR(1) residual (lag-1 correlation ρ), so that a structured residual does not buy precision."""
    if not rho > 0:
        return peaks
    f = float(np.sqrt((1 + rho) / max(1 - rho, 1e-3)))
    from dataclasses import replace

    return [replace(p, center_err=p.center_err * f, fwhm_err=p.fwhm_err * f, area_err=p.area_err * f) for p in peaks]


def fit_peaks(x: np.ndarray, y: np.ndarray, *, n_peaks: int = 1, shape: str = "gauss", centers: np.ndarray | None = None,
              baseline: bool = True) -> PeakFit:
    """Fit ``n_peaks`` Gaussian, split-Gaussian or Voigt peaks (x in any unit, e.g. eV) plus a constant.

    Parameters
    ----------
    x, y
        Abscissa (e.g. photon energy in eV) and signal; sorted by x here.
    n_peaks
        Number of peaks (1–8).
    shape
        ``"gauss"``, ``"asym"`` (split Gaussian: its own FWHM below and above the mode, for
        the low-energy tail of NC emission) or ``"voigt"`` (:func:`scipy.special.voigt_profile`).
    centers
        Start centres (x units); default: the ``n_peaks`` most prominent maxima.
    baseline
        Fit a constant baseline.

    Returns
    -------
    PeakFit
        Peaks sorted by centre, each with centre, FWHM and area and their standard errors
        (``curve_fit`` covariance scaled by the residual, then by the residual's
        autocorrelation), the fitted curve and its components, χ² against the point noise
        and flags.

    Examples
    --------
    >>> x = np.linspace(1.6, 2.2, 301)
    >>> y = 5.0 * np.exp(-0.5 * ((x - 1.85) / 0.03) ** 2) + 0.1
    >>> fit = fit_peaks(x, y)
    >>> round(fit.peaks[0].center, 4), round(fit.peaks[0].fwhm, 4)
    (1.85, 0.0706)
    """
    from scipy.optimize import curve_fit

    if shape not in ("gauss", "asym", "voigt"):
        raise InputError(f"peak shape must be 'gauss', 'asym' or 'voigt', got {shape!r}")
    if not 1 <= n_peaks <= 8:
        raise InputError(f"n_peaks must lie in 1–8, got {n_peaks}")
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.shape != y.shape or x.size < 4 * n_peaks + 3:
        raise InputError(f"need matching x, y with at least {4 * n_peaks + 3} points")
    order = np.argsort(x)
    x, y = x[order], y[order]
    ys = np.convolve(y, np.ones(5) / 5, mode="same")
    c0, top = _start_centres(x, ys, n_peaks, centers)
    p0, lo, hi = _start_and_bounds(x, y, ys, c0, top, shape, baseline)
    model = _peak_model(n_peaks, shape, baseline)
    try:
        popt, pcov = curve_fit(model, x, y, p0=p0, bounds=(lo, hi), maxfev=20000)
    except RuntimeError as exc:
        raise AnalysisError(f"peak fit did not converge ({exc}); try fewer peaks or give --centers") from None
    fitted = model(x, *popt)
    chi2 = float(np.sum((y - fitted) ** 2) / max(x.size - popt.size, 1))
    noise, chi2_noise, rho, flags = _quality(y, fitted, popt.size)
    peaks, comps = _peaks_from(x, popt, np.sqrt(np.maximum(np.diag(pcov), 0)), n_peaks, shape)
    peaks = _inflate(peaks, rho)
    peaks, loose = _undetermined(peaks, x)
    flags += loose
    order = np.argsort([p.center for p in peaks])
    return PeakFit([peaks[i] for i in order], shape, float(popt[-1]) if baseline else 0.0, x, y, fitted,
                   [comps[i] for i in order], chi2, noise, chi2_noise, rho, flags)


#: the PL models :func:`select_peak_model` compares, as (shape, number of peaks)
PL_MODELS = (("gauss", 1), ("asym", 1), ("gauss", 2), ("asym", 2))


def select_peak_model(x: np.ndarray, y: np.ndarray, *, models: tuple[tuple[str, int], ...] = PL_MODELS,
                      baseline: bool = True) -> PeakFit:
    """The PL model with the lowest Bayesian information criterion among ``models``.

    ``BIC = N ln(RSS/N) + k ln N`` (Schwarz, Ann. Stat. 6, 461 (1978)); a model needs
    ΔBIC < −10 ("very strong" evidence, Kass & Raftery, JASA 90, 773 (1995)) against the
    simpler one to be preferred, so a second peak is not invented from noise. A peak the
    data do not determine (centre outside the data, or a FWHM or area error larger than
    the value, as a component fitted to a tail cut off by the detector range) is kept, since
    it shapes the others, but marked ``determined=False`` and named in the warnings.

    Parameters
    ----------
    x, y
        Abscissa (eV) and signal.
    models
        ``(shape, n_peaks)`` pairs, simplest first.
    baseline
        Fit a constant baseline.

    Returns
    -------
    PeakFit
        The chosen fit; ``warnings`` name the model and the BIC of every candidate.
    """
    best, best_bic, table = None, np.inf, []
    for shape, n in models:
        try:
            f = fit_peaks(x, y, n_peaks=n, shape=shape, baseline=baseline)
        except AnalysisError:
            continue
        k = len(f.peaks) * (3 if shape == "gauss" else 4) + int(baseline)
        bic = f.x.size * np.log(max(np.sum((f.y - f.fitted) ** 2), 1e-300) / f.x.size) + k * np.log(f.x.size)
        table.append(f"{n}×{shape} {bic:.0f}")
        if best is None or bic < best_bic - 10:
            best, best_bic = f, bic
    if best is None:
        raise AnalysisError("no PL model converged; give the peak number and shape")
    best.warnings.insert(0, f"model chosen by BIC: {len(best.peaks)}×{best.shape} (BIC {', '.join(table)})")
    return best
