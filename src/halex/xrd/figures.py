"""XRD figures: patterns against references, fit with residuals."""

from __future__ import annotations

import numpy as np

from halex.plotting.figures import new_figure

__all__ = ["plot_patterns", "plot_fit"]


def plot_patterns(curves: dict[str, tuple[np.ndarray, np.ndarray]], *, title: str = "", sticks=None):
    """Overlay normalised patterns (max = 100), offset for legibility; ``sticks`` = {name: (2θ, I)}."""
    fig, ax = new_figure(figsize=(7, 4))
    for k, (name, (x, y)) in enumerate(curves.items()):
        ymax = float(np.max(y)) or 1.0
        ax.plot(x, 100 * np.asarray(y) / ymax + 110 * k, lw=1, label=name)
    for k, (name, (x, y)) in enumerate((sticks or {}).items()):
        y = np.asarray(y, float)
        ax.vlines(x, -15 - 10 * k, -15 - 10 * k + 8 * y / (y.max() or 1), lw=0.8, color=f"C{k + len(curves)}", label=f"{name} reflections")
    ax.set_xlabel("2θ (degrees)")
    ax.set_ylabel("intensity (normalised, offset)")
    ax.legend(fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    return fig


def plot_fit(fit):
    """Observed, calculated, background and phase components; difference curve below."""
    fig, (ax, ad) = new_figure(2, 1, figsize=(8, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    x = fit.two_theta_deg
    ax.plot(x, fit.observed, ".", ms=2, color="k", label="observed")
    ax.plot(x, fit.calculated, lw=1, color="C3", label=f"calculated (Rwp {100 * fit.rwp:.1f} %)")
    ax.plot(x, fit.background, lw=0.8, color="0.5", label="background")
    for k, p in enumerate(fit.phases):
        ax.plot(x, fit.components[p.name] + fit.background, lw=0.8, color=f"C{k}",
                label=f"{p.name}: w = {p.weight_fraction:.3f}({1000 * p.weight_fraction_err:.0f}), "
                      f"L = {p.size_nm:.0f} nm")
    ax.set_ylabel("intensity (counts)")
    ax.legend(fontsize=7, frameon=False)
    ad.plot(x, fit.observed - fit.calculated, lw=0.7, color="C0")
    ad.axhline(0, color="0.5", lw=0.5)
    ad.set_xlabel("2θ (degrees)")
    ad.set_ylabel("obs − calc")
    return fig
