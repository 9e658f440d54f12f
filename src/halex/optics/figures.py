"""Optics figures: absorption with its edge analysis, PL with fitted peaks, gap vs size."""

from __future__ import annotations

import numpy as np

from halex.plotting.figures import new_figure

__all__ = ["plot_optics", "plot_gap_vs_size"]


def plot_optics(abs_e=None, abs_a=None, feats=None, pl_fit=None):
    """Absorbance (left axis) and PL (right axis) against photon energy."""
    fig, ax = new_figure(figsize=(6.5, 4))
    if abs_e is not None:
        ax.plot(abs_e, abs_a, color="k", lw=1, label="absorbance")
        if feats:
            if feats.get("exciton_peak_eV"):
                ax.axvline(feats["exciton_peak_eV"], color="C0", ls="--", lw=0.8,
                           label=f"first exciton {feats['exciton_peak_eV']:.3f} eV ({feats.get('exciton_kind') or 'peak'})")
            if feats.get("onset_eV") and np.isfinite(feats["onset_eV"]):
                ax.axvline(feats["onset_eV"], color="C2", ls=":", lw=0.8, label=f"onset {feats['onset_eV']:.3f} eV")
        ax.set_ylabel("absorbance")
    if pl_fit is not None:
        ax2 = ax.twinx() if abs_e is not None else ax
        ax2.plot(pl_fit.x, pl_fit.y, ".", ms=2, color="C3", label="PL")
        ax2.plot(pl_fit.x, pl_fit.fitted, color="C3", lw=1, label="PL fit")
        for k, (p, comp) in enumerate(zip(pl_fit.peaks, pl_fit.components)):
            ax2.plot(pl_fit.x, comp + pl_fit.baseline, lw=0.7, ls="--", color=f"C{4 + k}",
                     label=f"{p.center:.3f}±{p.center_err:.3f} eV, FWHM {1000 * p.fwhm:.0f} meV")
        ax2.set_ylabel("PL (per eV)")
        ax2.legend(fontsize=7, frameon=False, loc="upper right")
    ax.set_xlabel("photon energy (eV)")
    if abs_e is not None:
        ax.legend(fontsize=7, frameon=False, loc="upper left")
    return fig


def plot_gap_vs_size(edge_nm, gaps: dict[str, np.ndarray], bulk: dict[str, float]):
    fig, ax = new_figure(figsize=(5.5, 4))
    for k, (name, g) in enumerate(gaps.items()):
        ax.plot(edge_nm, g, color=f"C{k}", label=name)
        if name in bulk:
            ax.axhline(bulk[name], color=f"C{k}", ls=":", lw=0.8)
    ax.set_xlabel("NC edge length (nm)")
    ax.set_ylabel("lowest transition (eV)")
    ax.legend(fontsize=8, frameon=False)
    return fig
