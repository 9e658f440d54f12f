"""The absorption edge of a nanocrystal spectrum: first exciton, onset, Tauc gap, with flags.

The **first exciton** is located where the absorbance bends most strongly downwards: the
lowest-energy significant minimum of the second derivative d²A/dE² (Savitzky–Golay,
cubic). It is found whether the exciton is a maximum or only a shoulder on the rising
continuum, which is what it is in most colloidal samples (size dispersion broadens it;
the second-derivative convention is the one used for CdSe and perovskite NC sizing
curves, e.g. Yu, Qu, Guo, Peng, Chem. Mater. 15, 2854 (2003); Protesescu et al., Nano
Lett. 15, 3692 (2015)). A minimum counts when it is deeper than five standard deviations of
the second derivative's own noise (the point noise, measured as the scatter about the
smoothed curve, propagated through the filter coefficients). Its uncertainty is the
scatter of the position over 64 redraws of that noise.

The **onset** is the tangent at the steepest point *below the first exciton* extended to
the sub-gap baseline; a tangent on the UV continuum cannot be taken for it. The **Tauc
gap** (direct allowed) is fitted on 0.05–0.30 eV above the exciton (a rough guide for
strongly excitonic NCs). Every feature that cannot be placed is ``None``/NaN with a plain
warning in ``warnings``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from halex.errors import AnalysisError, InputError
from halex.optics.spectra import HC_EV_NM

__all__ = ["absorption_features", "exciton_from_curvature", "matched_exciton"]

#: significance (noise standard deviations of d²A/dE²) a curvature minimum needs
MIN_CURVATURE_SNR = 5.0
#: the Tauc fit's window above the first exciton (eV)
TAUC_WINDOW_EV = (0.05, 0.30)


def _uniform(e: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The spectrum on an evenly spaced energy grid (a wavelength scan is not even in energy)."""
    de = float(np.median(np.diff(e)))
    grid = np.arange(e[0], e[-1] + de / 2, de)
    return grid, np.interp(grid, e, a), de


def _window(n: int, de: float, smooth_eV: float) -> int:
    """Odd Savitzky–Golay window (points) spanning about ``smooth_eV``: at least 7, below n."""
    win = max(7, int(round(smooth_eV / de)) | 1)
    return min(win, (n - 2) | 1 if (n - 2) % 2 else n - 3)


def _curvature(a: np.ndarray, de: float, win: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Smoothed spectrum, its second derivative, the point noise and the noise of d²A/dE²."""
    from scipy.signal import savgol_coeffs, savgol_filter
    from scipy.stats import median_abs_deviation

    s = savgol_filter(a, win, 3)
    d2 = savgol_filter(a, win, 3, deriv=2, delta=de)
    resid = a - s
    noise = float(median_abs_deviation(resid, scale="normal")) * np.sqrt(win / max(win - 4, 1))
    noise_d2 = noise * float(np.linalg.norm(savgol_coeffs(win, 3, deriv=2, delta=de)))
    return s, d2, noise, noise_d2


def _curvature_minima(d2: np.ndarray, start: int, threshold: float) -> np.ndarray:
    """Indices (ascending) of d²A/dE² minima at or above ``start`` deeper than ``threshold``."""
    from scipy.signal import find_peaks

    idx, _ = find_peaks(-d2, height=threshold, prominence=threshold)
    return idx[idx >= start]


def _vertex(e: np.ndarray, y: np.ndarray, i: int) -> float:
    """Parabolic vertex through the three points around index ``i``."""
    if 0 < i < e.size - 1:
        c = np.polyfit(e[i - 1:i + 2], y[i - 1:i + 2], 2)
        if c[0] != 0:
            v = -c[1] / (2 * c[0])
            if e[i - 1] <= v <= e[i + 1]:
                return float(v)
    return float(e[i])


def exciton_from_curvature(energy_eV: np.ndarray, absorbance: np.ndarray, *, smooth_eV: float = 0.04,
                           start_eV: float | None = None, seed: int = 0) -> dict[str, Any] | None:
    """First exciton as the lowest-energy significant minimum of d²A/dE².

    Parameters
    ----------
    energy_eV
        Photon energies (eV), increasing and evenly spaced (see :func:`absorption_features`).
    absorbance
        Absorbance at each energy.
    smooth_eV
        Width (eV) of the Savitzky–Golay window (cubic) of the derivative; keep it below the
        exciton's FWHM.
    start_eV
        Only minima at or above this energy count (the foot of the edge).
    seed
        Seed of the noise redraws behind the uncertainty.

    Returns
    -------
    dict or None
        ``energy_eV``, ``err_eV``, ``kind`` (``"maximum"`` when the absorbance also has a
        local maximum there, else ``"shoulder"``), ``snr`` (depth over the noise of
        d²A/dE²), ``index``; None when no minimum is significant.

    Examples
    --------
    >>> e = np.linspace(1.6, 2.4, 801)
    >>> a = 0.3 * np.exp(-0.5 * ((e - 1.9) / 0.04) ** 2) + np.clip(e - 1.85, 0, None) ** 2
    >>> round(exciton_from_curvature(e, a)["energy_eV"], 3)
    1.9
    """
    e = np.asarray(energy_eV, float)
    a = np.asarray(absorbance, float)
    de = float(np.median(np.diff(e)))
    win = _window(e.size, de, smooth_eV)
    s, d2, noise, noise_d2 = _curvature(a, de, win)
    threshold = MIN_CURVATURE_SNR * max(noise_d2, 1e-12 * float(np.abs(d2).max() + 1e-300))
    start = 0 if start_eV is None else int(np.searchsorted(e, start_eV))
    idx = _curvature_minima(d2, start, threshold)
    if idx.size == 0:
        return None
    i = int(idx[0])
    centre = _vertex(e, d2, i)
    rng = np.random.default_rng(seed)
    half = max(3, win)
    lo, hi = max(i - half, 1), min(i + half + 1, e.size - 1)
    draws = []
    from scipy.signal import savgol_filter

    for _ in range(64):
        d2r = savgol_filter(s + rng.normal(0.0, noise, s.size), win, 3, deriv=2, delta=de)
        j = lo + int(np.argmin(d2r[lo:hi]))
        draws.append(_vertex(e, d2r, j))
    err = float(np.hypot(np.std(draws), de / np.sqrt(12)))
    from scipy.signal import find_peaks

    maxima, _ = find_peaks(s, prominence=3 * noise)
    kind = "maximum" if np.any(np.abs(maxima - i) <= win) else "shoulder"
    return {"energy_eV": centre, "err_eV": err, "kind": kind, "snr": float(-d2[i] / max(noise_d2, 1e-300)),
            "index": i, "dip_width_eV": _dip_width(e, d2, i), "window_eV": win * de}


def _dip_width(e: np.ndarray, d2: np.ndarray, i: int) -> float:
    """Width (eV) of the negative d²A/dE² dip around index ``i``, between its zero crossings
    (2σ for a Gaussian band, 0.85 of its FWHM)."""
    left, right = i, i
    while left > 0 and d2[left - 1] < 0:
        left -= 1
    while right < d2.size - 1 and d2[right + 1] < 0:
        right += 1
    return float(e[right] - e[left])


def matched_exciton(energy_eV: np.ndarray, absorbance: np.ndarray, *, smooth_eV: float = 0.04,
                    start_eV: float | None = None) -> dict[str, Any] | None:
    """First exciton with the derivative window matched to the exciton's own width.

    A window much narrower than the band resolves the noise on it: on broad excitons
    (≈ 150 meV, CdSe at room temperature) a 40 meV window split the dip into several
    minima and the lowest-energy one, a wiggle on the red flank, was taken, up to 16 nm
    off. So the exciton is located first with a ``2 × smooth_eV`` window; the width of its
    dip (between the zero crossings of d²A/dE²) then sets the window, clipped to
    ``smooth_eV … 3 × smooth_eV``, that locates it again, keeping a Savitzky–Golay window
    below the band's FWHM. Where the wide window finds nothing (a narrow, weak exciton),
    the ``smooth_eV`` window is used alone. The error adds half the shift between the two
    windows' positions to the noise error, since the window is a choice.

    Parameters
    ----------
    energy_eV, absorbance, start_eV
        As for :func:`exciton_from_curvature`.
    smooth_eV
        Narrowest window (eV).

    Returns
    -------
    dict or None
        :func:`exciton_from_curvature`'s result, ``window_eV`` being the window used.
    """
    wide = exciton_from_curvature(energy_eV, absorbance, smooth_eV=2 * smooth_eV, start_eV=start_eV)
    if wide is None:
        return exciton_from_curvature(energy_eV, absorbance, smooth_eV=smooth_eV, start_eV=start_eV)
    width = wide["dip_width_eV"]
    window = float(np.clip(width, smooth_eV, 3 * smooth_eV))
    fine = exciton_from_curvature(energy_eV, absorbance, smooth_eV=window, start_eV=wide["energy_eV"] - width / 2)
    if fine is not None and abs(fine["energy_eV"] - wide["energy_eV"]) <= width / 2:
        # the window is a choice: half the shift between the two windows joins the noise error
        shift = abs(fine["energy_eV"] - wide["energy_eV"])
        return fine | {"err_eV": float(np.hypot(fine["err_eV"], shift / 2))}
    return wide


def _onset(e: np.ndarray, s: np.ndarray, ds: np.ndarray, i_foot: int, i_stop: int, base: float) -> tuple[float, int]:
    """Tangent at the steepest point between the foot and ``i_stop`` met with the baseline."""
    seg = slice(max(i_foot, 0), max(i_stop, i_foot + 2) + 1)
    k = seg.start + int(np.argmax(ds[seg]))
    slope = ds[k]
    return (float(e[k] - (s[k] - base) / slope) if slope > 0 else float("nan")), k


def _tauc(e: np.ndarray, s: np.ndarray, base: float, exciton: float | None, k: int) -> float:
    """Direct-allowed Tauc intercept: (A E)² linear in E, 0.05–0.30 eV above the exciton, else
    ±3 points around the steepest rise."""
    t = (np.clip(s - base, 0, None) * e) ** 2
    if exciton is not None:
        win = (e >= exciton + TAUC_WINDOW_EV[0]) & (e <= exciton + TAUC_WINDOW_EV[1])
    else:
        win = np.zeros(e.size, bool)
        win[max(k - 3, 0):min(k + 4, e.size)] = True
    if win.sum() < 3:
        return float("nan")
    p = np.polyfit(e[win], t[win], 1)
    return float(-p[1] / p[0]) if p[0] > 0 else float("nan")


def absorption_features(energy_eV: np.ndarray, absorbance: np.ndarray, *, smooth_eV: float = 0.04) -> dict[str, Any]:
    """First exciton (maximum or shoulder), onset and Tauc (direct) gap of an absorption spectrum.

    Parameters
    ----------
    energy_eV
        Photon energies (eV), increasing (:func:`halex.optics.to_energy`).
    absorbance
        Absorbance at each energy; resampled onto an even energy grid of the median step.
    smooth_eV
        Width (eV) of the Savitzky–Golay windows before derivatives are taken.

    Returns
    -------
    dict
        ``exciton_peak_eV`` (None if none is significant) with ``exciton_err_eV``,
        ``exciton_kind``, ``exciton_snr`` and ``exciton_window_eV`` (the derivative window,
        :func:`matched_exciton`); ``onset_eV`` (below the exciton, NaN if it
        cannot be placed there), ``tauc_direct_gap_eV``, ``steepest_edge_eV``, their
        wavelengths (nm), the baseline and ``warnings`` (plain sentences).

    Examples
    --------
    A shoulder: the continuum rises faster under the exciton than the exciton falls.

    >>> e = np.linspace(1.6, 2.4, 801)
    >>> a = 0.12 * np.exp(-0.5 * ((e - 1.86) / 0.035) ** 2) + 0.09 * np.logaddexp(0, (e - 1.84) / 0.03) + 0.02
    >>> f = absorption_features(e, a)
    >>> round(f["exciton_peak_eV"], 2), f["exciton_kind"], f["onset_eV"] < f["exciton_peak_eV"]
    (1.86, 'shoulder', True)
    """
    from scipy.signal import savgol_filter
    from scipy.stats import median_abs_deviation

    e = np.asarray(energy_eV, float)
    a = np.asarray(absorbance, float)
    if e.size < 15 or np.any(np.diff(e) <= 0):
        raise InputError("absorption spectrum needs ≥ 15 points on an increasing energy axis")
    e, a, de = _uniform(e, a)
    win = _window(e.size, de, smooth_eV)
    s = savgol_filter(a, win, 3)
    rng = float(s.max() - s.min())
    if rng <= 0:
        raise AnalysisError("flat absorption spectrum: no edge to analyse")
    warnings: list[str] = []
    noise = float(median_abs_deviation(a - s, scale="normal"))
    low = float(np.median(s[: max(5, e.size // 20)]))
    # the absorbance starts to rise: 10 noise σ (or 2 % of the range) above the lowest-energy level;
    # never a fraction of the whole range, which a strong UV continuum would push above the exciton
    i_rise = int(np.flatnonzero(s > low + max(10 * noise, 0.02 * rng))[0])
    i_foot = max(i_rise - win, 0)
    ex = matched_exciton(e, a, smooth_eV=smooth_eV, start_eV=float(e[i_foot]))
    if ex is None:
        warnings.append("no first exciton: no curvature minimum of the absorbance stands 5σ above its noise "
                        "(a featureless edge, or too noisy; smooth or average the spectrum)")
    base = float(np.median(s[: max(i_rise - win // 2, 3)]))
    if i_rise < win:
        warnings.append("the spectrum starts on the edge: no sub-gap baseline, the onset is an extrapolation")
    ds = np.gradient(s, e)
    i_edge = int(np.flatnonzero(s > base + 0.2 * (s.max() - base))[0])
    stop = ex["index"] if ex else min(i_edge + max(5, e.size // 10), e.size - 1)
    onset, k = _onset(e, s, ds, i_foot, stop, base)
    if ex and not (np.isfinite(onset) and onset < ex["energy_eV"]):
        warnings.append(f"no onset below the first exciton ({ex['energy_eV']:.3f} eV): the edge below it is not "
                        "resolved")
        onset = float("nan")
    exciton = ex["energy_eV"] if ex else None
    tauc = _tauc(e, s, base, exciton, k)
    floor = onset - 0.1 if np.isfinite(onset) else float(e[0])
    # the continuum edge lies above the exciton by its binding energy, so up to the top of the fitted window
    if np.isfinite(tauc) and not floor <= tauc <= (exciton + TAUC_WINDOW_EV[1] if exciton else float(e[-1])):
        warnings.append(f"no Tauc gap: the direct-gap (A·E)² line extrapolates to {tauc:.3f} eV, below the onset or "
                        "above the fitted window (not a direct-gap edge there)")
        tauc = float("nan")
    return {"exciton_peak_eV": exciton, "exciton_err_eV": ex["err_eV"] if ex else None,
            "exciton_kind": ex["kind"] if ex else None, "exciton_snr": ex["snr"] if ex else None,
            "exciton_window_eV": ex["window_eV"] if ex else None,
            "exciton_peak_nm": HC_EV_NM / exciton if exciton else None,
            "onset_eV": onset, "onset_nm": HC_EV_NM / onset if np.isfinite(onset) and onset > 0 else None,
            "tauc_direct_gap_eV": tauc, "steepest_edge_eV": float(e[k]), "baseline": base, "warnings": warnings}
