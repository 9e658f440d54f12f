"""Femtosecond transient absorption (SPEC §6): ΔA(λ, t) maps, chirp correction, kinetics
with a Gaussian instrument response, global analysis (DAS and sequential EAS) and
comparison of samples."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from halex.ta.fit import (
    Chirp,
    GlobalFit,
    KineticsFit,
    chirp_corrected,
    estimate_chirp,
    fit_global,
    fit_kinetics,
    kept_wavelengths,
    subtract_background,
    time_window,
)
from halex.ta.io import TAMap, check_ta_map, read_ta_map, write_ta_map
from halex.ta.model import FWHM_PER_SIGMA, basis, exp_conv_gauss, sequential_matrix, step_conv_gauss
from halex.ta.simulate import default_delays, gaussian_band, simulate_ta_map

__all__ = ["Chirp", "GlobalFit", "KineticsFit", "chirp_corrected", "estimate_chirp", "fit_global", "fit_kinetics",
           "kept_wavelengths", "subtract_background", "time_window",
           "TAMap", "check_ta_map", "read_ta_map", "write_ta_map", "FWHM_PER_SIGMA", "basis", "exp_conv_gauss",
           "sequential_matrix", "step_conv_gauss", "default_delays", "gaussian_band", "simulate_ta_map",
           "normalised_trace", "analyze_map"]


def normalised_trace(m: TAMap, wavelength_nm: float, *, bandwidth_nm: float = 4.0,
                     align: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Trace at ``wavelength_nm`` divided by its largest-magnitude value (bleaches become +1).

    Parameters
    ----------
    m
        The map.
    wavelength_nm
        Probe wavelength (nm).
    bandwidth_nm
        Average over ±bandwidth/2 nm.
    align
        Shift the delays so that the half-rise is at t = 0 (linear interpolation).

    Returns
    -------
    tuple of numpy.ndarray
        ``(time_ps, normalised ΔA)``.

    Raises
    ------
    AnalysisError
        No signal at that wavelength.
    """
    import numpy as np

    y = m.trace(wavelength_nm, bandwidth_nm=bandwidth_nm)
    peak = y[int(np.argmax(np.abs(y)))]
    if peak == 0:
        from halex.errors import AnalysisError

        raise AnalysisError(f"{m.meta.get('source', 'map')}: no signal at {wavelength_nm} nm")
    yn = y / peak
    t = m.time_ps
    if align:
        i = int(np.argmax(yn >= 0.5))
        if i > 0:
            t0 = t[i - 1] + (0.5 - yn[i - 1]) * (t[i] - t[i - 1]) / (yn[i] - yn[i - 1])
            t = t - t0
    return t, yn


def analyze_map(m: TAMap, *, kinetics: Sequence[float] = (), n_components: int = 2,
                global_components: int | None = None, irf_fwhm_ps: float | None = None, chirp: str | Chirp = "auto",
                chirp_order: int = 2, offset: bool = False, bandwidth_nm: float = 2.0, refine_chirp: bool = False,
                chirp_bound_ps: float = 0.3, artifact: int | None = None, t_range_ps: tuple[float, float] | None = None,
                exclude_nm: Sequence[tuple[float, float]] = (), background: bool = True,
                ) -> tuple[Chirp, GlobalFit | None, list[KineticsFit], TAMap]:
    """The ``halex ta fit`` workflow: chirp, background, optional global fit, kinetics at chosen wavelengths.

    Parameters
    ----------
    m
        The map (delays in ps, wavelengths in nm).
    kinetics
        Wavelengths (nm) whose traces are fitted one by one (in the chirp-corrected frame).
    n_components
        Exponentials per kinetic trace.
    global_components
        Components of a global fit over all wavelengths (None: no global fit).
    irf_fwhm_ps
        Fix the IRF FWHM (ps); fitted when None.
    chirp
        ``"auto"`` (estimated from the map's rise, outside ``exclude_nm``), ``"none"``
        (t0 = 0 everywhere) or a :class:`Chirp`. It is held in the global fit unless
        ``refine_chirp``.
    chirp_order
        Order of the estimated chirp polynomial.
    offset
        Add a non-decaying component.
    bandwidth_nm
        Kinetic traces average over ±bandwidth/2 nm.
    refine_chirp, chirp_bound_ps
        Refine the chirp in the global fit within ± ``chirp_bound_ps`` of the start (ps).
    artifact
        Coherent-artifact order in the global fit (0–2), or None.
    t_range_ps
        Fit window in delay after t0(λ) (ps), for the global and kinetic fits.
    exclude_nm
        Wavelength ranges left out of the chirp estimate and the global fit.
    background
        Subtract each wavelength's mean pre-time-zero ΔA first.

    Returns
    -------
    tuple
        ``(chirp, global_fit_or_None, [KineticsFit, ...], map_fitted)``; ``map_fitted`` is
        the map after background subtraction.
    """
    from halex.errors import InputError

    keep = kept_wavelengths(m.wavelength_nm, exclude_nm)
    if isinstance(chirp, str):
        if chirp == "auto":
            sub = TAMap(m.wavelength_nm[keep], m.time_ps, m.delta_a[:, keep], m.meta)
            ch = estimate_chirp(sub, order=chirp_order, irf_fwhm_ps=irf_fwhm_ps)
        elif chirp == "none":
            ch = Chirp((0.0,), float(0.5 * (m.wavelength_nm.min() + m.wavelength_nm.max())))
        else:
            raise InputError(f"chirp must be 'auto', 'none' or polynomial coefficients, got {chirp!r}")
    else:
        ch = chirp
    if background:
        m, _ = subtract_background(m, ch)
    g = None
    if global_components:
        g = fit_global(m, global_components, irf_fwhm_ps=irf_fwhm_ps, chirp=ch, fit_chirp=refine_chirp,
                       chirp_bound_ps=chirp_bound_ps, offset=offset, artifact=artifact, t_range_ps=t_range_ps,
                       exclude_nm=exclude_nm)
        ch = g.chirp
    fits = []
    windowed = t_range_ps is not None and t_range_ps[0] > 0
    for wl in kinetics:
        y = m.trace(float(wl), bandwidth_nm=bandwidth_nm)
        lt0 = None if g is None or g.lifetimes_ps.size != n_components else g.lifetimes_ps
        irf = irf_fwhm_ps if irf_fwhm_ps is not None or not windowed else (g.irf_fwhm_ps if g else 0.15)
        fits.append(fit_kinetics(m.time_ps, y, n_components=n_components, irf_fwhm_ps=irf, fit_t0=not windowed,
                                 t0_ps=float(ch(float(wl))), offset=offset, wavelength_nm=float(wl),
                                 lifetimes_start_ps=lt0, t_range_ps=t_range_ps))
    return ch, g, fits, m
