"""Synthetic transient-absorption maps with known truth (tests, benchmarks, docs)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from halex.errors import InputError
from halex.ta.io import TAMap
from halex.ta.model import FWHM_PER_SIGMA, basis

__all__ = ["default_delays", "gaussian_band", "simulate_ta_map"]


def default_delays(t_min_ps: float = -1.5, t_linear_ps: float = 3.0, t_max_ps: float = 3000.0,
                   step_fs: float = 20.0, n_log: int = 150) -> np.ndarray:
    """Delay axis as a pump–probe stage scans it: linear steps around time zero, then log-spaced.

    Parameters
    ----------
    t_min_ps, t_linear_ps, t_max_ps
        First delay, end of the linear part and last delay (ps).
    step_fs
        Step of the linear part (fs).
    n_log
        Number of log-spaced delays up to ``t_max_ps``.

    Returns
    -------
    numpy.ndarray
        Delays in ps, ascending.

    Examples
    --------
    >>> t = default_delays()
    >>> float(t[0]), float(t[-1])
    (-1.5, 3000.0)
    """
    lin = np.arange(t_min_ps, t_linear_ps, step_fs * 1e-3)
    log = np.geomspace(t_linear_ps, t_max_ps, n_log)
    return np.r_[lin, log]


def gaussian_band(wavelength_nm: np.ndarray, center_nm: float, fwhm_nm: float, amplitude: float) -> np.ndarray:
    """A Gaussian spectral band (bleach: negative amplitude).

    Parameters
    ----------
    wavelength_nm
        Wavelength axis (nm).
    center_nm, fwhm_nm
        Band centre and full width at half maximum (nm).
    amplitude
        Peak ΔA.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> gaussian_band([490.0, 500.0, 510.0], 500.0, 20.0, -1.0).round(3).tolist()
    [-0.5, -1.0, -0.5]
    """
    s = fwhm_nm / FWHM_PER_SIGMA
    return amplitude * np.exp(-0.5 * ((np.asarray(wavelength_nm, float) - center_nm) / s) ** 2)


def simulate_ta_map(wavelength_nm: np.ndarray, time_ps: np.ndarray, das: Sequence[np.ndarray], lifetimes_ps: Sequence[float], *,
                    irf_fwhm_ps: float = 0.23, chirp_ps: Sequence[float] = (0.0,), chirp_center_nm: float | None = None,
                    noise: float = 0.0, seed: int = 0) -> TAMap:
    """``ΔA = Σ_k DAS_k(λ) g(t − t0(λ); τ_k, σ)`` + Gaussian noise of ``noise`` × max|ΔA|.

    Parameters
    ----------
    wavelength_nm, time_ps
        Axes (nm, ps).
    das
        One spectrum per component (ΔA units), each of length n_wavelengths.
    lifetimes_ps
        Lifetime of each component (ps; ``np.inf`` for a step).
    irf_fwhm_ps
        Gaussian IRF FWHM (ps).
    chirp_ps, chirp_center_nm
        Coefficients of ``t0(λ)`` in ``u = (λ − center)/100 nm`` (ps); the centre defaults to
        the middle of the wavelength axis.
    noise
        Noise standard deviation as a fraction of max|ΔA|.
    seed
        Seed of the noise.

    Returns
    -------
    TAMap
        With the truth in ``meta``.
    """
    w = np.asarray(wavelength_nm, float)
    t = np.asarray(time_ps, float)
    if len(das) != len(lifetimes_ps):
        raise InputError("give one decay-associated spectrum per lifetime")
    center = float(0.5 * (w.min() + w.max())) if chirp_center_nm is None else chirp_center_nm
    t0 = np.polynomial.polynomial.polyval((w - center) / 100.0, np.asarray(chirp_ps, float))
    b = basis(t, t0, lifetimes_ps, irf_fwhm_ps / FWHM_PER_SIGMA)  # (n_w, n_t, n_c)
    d = np.einsum("wtc,cw->tw", b, np.asarray(das, float))
    if noise:
        rng = np.random.default_rng(seed)
        d = d + rng.normal(0.0, noise * np.abs(d).max(), d.shape)
    return TAMap(w, t, d, {"truth": {"lifetimes_ps": list(lifetimes_ps), "irf_fwhm_ps": irf_fwhm_ps,
                                     "chirp_ps": list(chirp_ps), "chirp_center_nm": center, "noise": noise}})
