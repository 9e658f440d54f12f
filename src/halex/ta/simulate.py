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
    """Delay axis as a pump–probe stage scans it: linear steps around time zero, then log-spaced."""
    lin = np.arange(t_min_ps, t_linear_ps, step_fs * 1e-3)
    log = np.geomspace(t_linear_ps, t_max_ps, n_log)
    return np.r_[lin, log]


def gaussian_band(wavelength_nm, center_nm: float, fwhm_nm: float, amplitude: float) -> np.ndarray:
    """A Gaussian spectral band (bleach: negative amplitude)."""
    s = fwhm_nm / FWHM_PER_SIGMA
    return amplitude * np.exp(-0.5 * ((np.asarray(wavelength_nm, float) - center_nm) / s) ** 2)


def simulate_ta_map(wavelength_nm, time_ps, das: Sequence[np.ndarray], lifetimes_ps: Sequence[float], *,
                    irf_fwhm_ps: float = 0.23, chirp_ps: Sequence[float] = (0.0,), chirp_center_nm: float | None = None,
                    noise: float = 0.0, seed: int = 0) -> TAMap:
    """``ΔA = Σ_k DAS_k(λ) g(t − t0(λ); τ_k, σ)`` + Gaussian noise of ``noise`` × max|ΔA|.

    ``chirp_ps`` are the coefficients of ``t0(λ)`` in ``u = (λ − center)/100 nm``.
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
