"""Absorption and photoluminescence analysis.

* :func:`to_energy` — wavelength → photon energy ``E = hc/λ`` (hc = 1239.841984 eV nm).
  Spectral *densities* (PL counts per nm) are multiplied by the Jacobian
  ``|dλ/dE| = λ²/hc`` so that they become per eV (J. Mooney, P. Kambhampati, J. Phys.
  Chem. Lett. 4, 3316 (2013)); absorbance is a per-photon quantity and is not.
* :func:`fit_peaks` — sum of Gaussian or Voigt peaks on a constant baseline by
  non-linear least squares; standard errors from the covariance scaled by χ²_red.
* :func:`absorption_features` — the excitonic peak (lowest-energy local maximum of the
  smoothed absorbance), the absorption onset (tangent at the steepest point of the
  low-energy edge intersected with the sub-gap baseline), and a direct-gap Tauc
  estimate ((A·E)² above the baseline, linear in E, extrapolated to zero; fitted on the
  continuum 0.05–0.30 eV above the excitonic peak when there is one, else around the
  steepest rise). For strongly excitonic NCs the Tauc number is a rough guide only;
  the exciton peak and the onset are the robust observables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from halex.errors import AnalysisError, InputError

__all__ = ["HC_EV_NM", "to_energy", "Peak", "PeakFit", "fit_peaks", "absorption_features"]

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
    """

    peaks: list[Peak]
    shape: str
    baseline: float
    x: np.ndarray
    y: np.ndarray
    fitted: np.ndarray
    components: list[np.ndarray]
    chi2_red: float


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
    try:
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


def fit_peaks(x: np.ndarray, y: np.ndarray, *, n_peaks: int = 1, shape: str = "gauss", centers: np.ndarray | None = None,
              baseline: bool = True) -> PeakFit:
    """Fit ``n_peaks`` Gaussian or Voigt peaks (x in any unit, e.g. eV) plus a constant.

    Parameters
    ----------
    x, y
        Abscissa (e.g. photon energy in eV) and signal; sorted by x here.
    n_peaks
        Number of peaks (1–8).
    shape
        ``"gauss"`` or ``"voigt"`` (:func:`scipy.special.voigt_profile`).
    centers
        Start centres (x units); default: the ``n_peaks`` most prominent maxima.
    baseline
        Fit a constant baseline.

    Returns
    -------
    PeakFit
        Peaks sorted by centre, each with centre, FWHM and area and their standard errors
        (``curve_fit`` covariance), the fitted curve and its components, χ²_red.

    Examples
    --------
    >>> x = np.linspace(1.6, 2.2, 301)
    >>> y = 5.0 * np.exp(-0.5 * ((x - 1.85) / 0.03) ** 2) + 0.1
    >>> fit = fit_peaks(x, y)
    >>> round(fit.peaks[0].center, 4), round(fit.peaks[0].fwhm, 4)
    (1.85, 0.0706)
    """
    from scipy.optimize import curve_fit

    if shape not in ("gauss", "voigt"):
        raise InputError(f"peak shape must be 'gauss' or 'voigt', got {shape!r}")
    if not 1 <= n_peaks <= 8:
        raise InputError(f"n_peaks must lie in 1–8, got {n_peaks}")
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.shape != y.shape or x.size < 3 * n_peaks + 3:
        raise InputError(f"need matching x, y with at least {3 * n_peaks + 3} points")
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
    peaks, comps = _peaks_from(x, popt, np.sqrt(np.maximum(np.diag(pcov), 0)), n_peaks, shape)
    order = np.argsort([p.center for p in peaks])
    return PeakFit([peaks[i] for i in order], shape, float(popt[-1]) if baseline else 0.0, x, y, fitted,
                   [comps[i] for i in order], chi2)


def absorption_features(energy_eV: np.ndarray, absorbance: np.ndarray, *, smooth_points: int = 5) -> dict[str, Any]:
    """Excitonic peak, onset and Tauc (direct) gap of an absorption spectrum.

    The exciton is the most prominent maximum of the smoothed spectrum above the edge; the
    onset is the tangent at the steepest rise extrapolated to the baseline; the Tauc gap
    is the intercept of ``(A E)²`` against E on the continuum above the exciton (a direct
    allowed transition).

    Parameters
    ----------
    energy_eV
        Photon energies (eV), increasing (:func:`to_energy`).
    absorbance
        Absorbance at each energy.
    smooth_points
        Savitzky–Golay window (points) before derivatives are taken.

    Returns
    -------
    dict
        ``exciton_peak_eV`` (None if no peak), ``onset_eV``, ``tauc_direct_gap_eV``,
        ``steepest_edge_eV`` and their wavelengths (nm), and the baseline.
    """
    from scipy.signal import find_peaks, savgol_filter

    e = np.asarray(energy_eV, float)
    a = np.asarray(absorbance, float)
    if e.size < 15 or np.any(np.diff(e) <= 0):
        raise InputError("absorption spectrum needs ≥ 15 points on an increasing energy axis")
    win = max(5, smooth_points | 1)
    if win >= e.size:
        win = (e.size - 1) | 1 if (e.size - 1) % 2 else e.size - 2
    s = savgol_filter(a, win, 2)
    ds = np.gradient(s, e)
    rng = float(s.max() - s.min())
    if rng <= 0:
        raise AnalysisError("flat absorption spectrum: no edge to analyse")
    # the edge: the lowest-energy region where the absorbance rises above 20 % of its range
    rising = np.flatnonzero(s > s.min() + 0.2 * rng)
    i_edge = int(rising[0])
    peaks, _ = find_peaks(s, prominence=0.02 * rng)
    peaks = peaks[peaks >= i_edge]
    exciton = None
    if peaks.size:
        ip = int(peaks[0])
        lo, hi = max(ip - 3, 0), min(ip + 4, e.size)
        c = np.polyfit(e[lo:hi], a[lo:hi], 2)
        exciton = float(-c[1] / (2 * c[0])) if c[0] < 0 else float(e[ip])
    stop = int(peaks[0]) if peaks.size else min(i_edge + max(5, e.size // 10), e.size - 1)
    seg = slice(max(i_edge - max(5, e.size // 20), 0), stop + 1)
    k = seg.start + int(np.argmax(ds[seg]))
    slope = ds[k]
    base = float(np.median(s[: max(i_edge - 2, 3)]))
    onset = float(e[k] - (s[k] - base) / slope) if slope > 0 else float("nan")
    # Tauc (direct allowed): (A E)^2 ~ (E - Eg). With an excitonic peak the fit uses the
    # continuum above it (exciton + 0.05 to + 0.30 eV); otherwise ±3 points around the
    # steepest rise of (A E)^2
    t = (np.clip(s - base, 0, None) * e) ** 2
    if exciton is not None:
        win = (e >= exciton + 0.05) & (e <= exciton + 0.30)
    else:
        dt = np.gradient(t, e)
        kt = seg.start + int(np.argmax(dt[seg]))
        win = np.zeros(e.size, bool)
        win[max(kt - 3, 0):min(kt + 4, e.size)] = True
    tauc = float("nan")
    if win.sum() >= 3:
        p = np.polyfit(e[win], t[win], 1)
        tauc = float(-p[1] / p[0]) if p[0] > 0 else float("nan")
    return {"exciton_peak_eV": exciton, "exciton_peak_nm": HC_EV_NM / exciton if exciton else None,
            "onset_eV": onset, "onset_nm": HC_EV_NM / onset if onset and onset > 0 else None,
            "tauc_direct_gap_eV": tauc, "steepest_edge_eV": float(e[k]), "baseline": base}
