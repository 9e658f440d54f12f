"""Femtosecond transient absorption (SPEC §6): ΔA(λ, t) maps, chirp correction, kinetics
with a Gaussian instrument response, global analysis (DAS and sequential EAS) and
comparison of samples."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from halex.ta.fit import Chirp, GlobalFit, KineticsFit, chirp_corrected, estimate_chirp, fit_global, fit_kinetics
from halex.ta.io import TAMap, check_ta_map, read_ta_map, write_ta_map
from halex.ta.model import FWHM_PER_SIGMA, basis, exp_conv_gauss, sequential_matrix, step_conv_gauss
from halex.ta.simulate import default_delays, gaussian_band, simulate_ta_map

__all__ = ["Chirp", "GlobalFit", "KineticsFit", "chirp_corrected", "estimate_chirp", "fit_global", "fit_kinetics",
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
                chirp_order: int = 2, offset: bool = False,
                bandwidth_nm: float = 2.0) -> tuple[Chirp, GlobalFit | None, list[KineticsFit]]:
    """The ``halex ta fit`` workflow: chirp, optional global fit, kinetics at chosen wavelengths.

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
        ``"auto"`` (estimated, then refined by the global fit when one is run),
        ``"none"`` (t0 = 0 everywhere, fitted per trace) or a :class:`Chirp`.
    chirp_order
        Order of the estimated chirp polynomial.
    offset
        Add a non-decaying component.
    bandwidth_nm
        Kinetic traces average over ±bandwidth/2 nm.

    Returns
    -------
    tuple
        ``(chirp, global_fit_or_None, [KineticsFit, ...])``.
    """
    from halex.errors import InputError

    if isinstance(chirp, str):
        if chirp == "auto":
            ch = estimate_chirp(m, order=chirp_order)
        elif chirp == "none":
            ch = Chirp((0.0,), float(0.5 * (m.wavelength_nm.min() + m.wavelength_nm.max())))
        else:
            raise InputError(f"chirp must be 'auto', 'none' or polynomial coefficients, got {chirp!r}")
        fit_ch = chirp == "auto"
    else:
        ch, fit_ch = chirp, False
    g = None
    if global_components:
        g = fit_global(m, global_components, irf_fwhm_ps=irf_fwhm_ps, chirp=ch, fit_chirp=fit_ch, offset=offset)
        ch = g.chirp
    fits = []
    for wl in kinetics:
        y = m.trace(float(wl), bandwidth_nm=bandwidth_nm)
        lt0 = None if g is None or g.lifetimes_ps.size != n_components else g.lifetimes_ps
        fits.append(fit_kinetics(m.time_ps, y, n_components=n_components, irf_fwhm_ps=irf_fwhm_ps,
                                 t0_ps=float(ch(float(wl))), offset=offset, wavelength_nm=float(wl),
                                 lifetimes_start_ps=lt0))
    return ch, g, fits
