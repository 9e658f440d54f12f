"""Transient-absorption figures: maps, chirp, kinetics with fits, DAS/EAS, sample comparison."""

from __future__ import annotations

import numpy as np

from halex.plotting.figures import new_figure

__all__ = ["plot_map", "plot_chirp", "plot_kinetics", "plot_spectra", "plot_artifact", "plot_compare"]


def _symlog(ax, t):
    ax.set_xscale("symlog", linthresh=1.0, linscale=1.0)
    ax.set_xlim(t.min(), t.max())


def plot_map(m, *, title: str = "ΔA", chirp=None):
    """ΔA(λ, t) as a colour map (symlog delay axis), with the chirp curve t0(λ) if given."""
    fig, ax = new_figure(figsize=(6.5, 4.5))
    d = m.delta_a
    v = np.nanpercentile(np.abs(d), 99.5) or 1.0
    pc = ax.pcolormesh(m.wavelength_nm, m.time_ps, d, cmap="RdBu_r", vmin=-v, vmax=v, shading="auto")
    ax.set_yscale("symlog", linthresh=1.0)
    if chirp is not None:
        ax.plot(m.wavelength_nm, chirp(m.wavelength_nm), color="k", lw=1, label="t0(λ)")
        ax.legend(fontsize=8, loc="upper right")
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylabel("delay (ps)")
    ax.set_title(title)
    fig.colorbar(pc, ax=ax, label="ΔA")
    return fig


def plot_chirp(chirp, wavelength_nm):
    """Measured half-rise times and the fitted t0(λ) polynomial."""
    fig, ax = new_figure(figsize=(5.5, 3.5))
    if chirp.points:
        pw, pt, used = (np.asarray(chirp.points[k]) for k in ("wavelength_nm", "t0_ps", "used"))
        ax.plot(pw[used], 1000 * pt[used], ".", ms=4, label="half-rise per wavelength")
        if (~used).any():
            ax.plot(pw[~used], 1000 * pt[~used], "x", ms=4, color="0.5", label="clipped")
    ax.plot(wavelength_nm, 1000 * chirp(wavelength_nm), color="C3", label="t0(λ) polynomial")
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylabel("time zero (fs)")
    ax.legend(fontsize=8, frameon=False)
    return fig


def plot_kinetics(fits):
    """Traces and fits (one panel per wavelength, symlog delay axis), residuals below."""
    n = len(fits)
    fig, axes = new_figure(2, n, figsize=(4.5 * n, 4.5), squeeze=False, sharex="col",
                           gridspec_kw={"height_ratios": [3, 1]})
    for k, f in enumerate(fits):
        ax, ar = axes[0, k], axes[1, k]
        ax.plot(f.time_ps, f.trace, ".", ms=2, color="k", label=f"{f.wavelength_nm:g} nm")
        lab = ", ".join(f"{tau:.3g}±{e:.2g} ps" for tau, e in zip(f.lifetimes_ps, f.lifetimes_err_ps))
        ax.plot(f.time_ps, f.fitted, color="C3", lw=1, label=f"τ = {lab}\nIRF {1000 * f.irf_fwhm_ps:.0f} fs")
        ax.legend(fontsize=7, frameon=False)
        ax.set_ylabel("ΔA")
        ar.plot(f.time_ps, f.trace - f.fitted, lw=0.6)
        ar.axhline(0, color="0.5", lw=0.5)
        ar.set_xlabel("delay (ps)")
        _symlog(ar, f.time_ps)
    return fig


def _visible_limits(arrays: list[np.ndarray]) -> tuple[float, float]:
    """y limits that show the spectra, not one spike: the 0.5–99.5 % range of all values, padded by 10 %."""
    v = np.concatenate([np.ravel(a) for a in arrays])
    v = v[np.isfinite(v)]
    if v.size == 0:
        return -1.0, 1.0
    lo, hi = np.percentile(v, [0.5, 99.5])
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    pad = 0.1 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def plot_spectra(g):
    """Decay- and evolution-associated spectra of a global fit, at the scale of the spectra themselves.

    The coherent-artifact amplitudes (if modelled) are not drawn here (see :func:`plot_artifact`):
    they can be ten times larger than the DAS and would flatten them.
    """
    fig, (a1, a2) = new_figure(1, 2, figsize=(10, 3.8))
    names = [f"{tau:.3g} ps" for tau in g.lifetimes_ps] + (["∞"] if g.offset else [])
    for k, name in enumerate(names):
        a1.plot(g.wavelength_nm, g.das[k], ".-", ms=2, lw=1, label=f"DAS {name}")
        a2.plot(g.wavelength_nm, g.eas[k], ".-", ms=2, lw=1, label=f"EAS {k + 1} ({name})")
    for ax, arr, title in ((a1, g.das, "decay-associated spectra"), (a2, g.eas, "evolution-associated spectra (sequential)")):
        ax.axhline(0, color="0.5", lw=0.5)
        ax.set_ylim(*_visible_limits([arr]))
        ax.set_xlabel("wavelength (nm)")
        ax.set_ylabel("amplitude (ΔA)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, frameon=False)
    return fig


def plot_artifact(g):
    """Amplitude spectra of the coherent-artifact terms (IRF and its derivatives), apart from the DAS."""
    fig, ax = new_figure(figsize=(5.5, 3.5))
    for k, arr in enumerate(g.artifact_spectra):
        ax.plot(g.wavelength_nm, arr, ".-", ms=2, lw=1, label=["IRF", "1st derivative", "2nd derivative"][k])
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylabel("amplitude (ΔA)")
    ax.set_title("coherent artifact (pulse overlap)", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    return fig


def plot_compare(curves: dict[str, tuple[np.ndarray, np.ndarray]], *, wavelength_nm: float):
    """Normalised kinetics of several samples on one symlog plot."""
    fig, ax = new_figure(figsize=(6, 4))
    tmin, tmax = np.inf, -np.inf
    for name, (t, y) in curves.items():
        ax.plot(t, y, lw=1, label=name)
        tmin, tmax = min(tmin, t.min()), max(tmax, t.max())
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(tmin, tmax)
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set_xlabel("delay (ps)")
    ax.set_ylabel("normalised ΔA")
    ax.set_title(f"kinetics at {wavelength_nm:g} nm")
    ax.legend(fontsize=8, frameon=False)
    return fig
