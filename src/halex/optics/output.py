"""Write absorption / PL results: ``summary.json``, ``pl_fit.csv`` and the optics figure.

:func:`analyze_spectra` reads and fits the spectra (absorption features, PL peaks in
energy with the λ→E Jacobian, the Stokes shift); :func:`write_optics` writes the folder
atomically. Energies are in eV, wavelengths in nm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from halex.errors import InputError
from halex.io import atomic_folder, json_safe
from halex.optics.edge import absorption_features
from halex.optics.io import read_spectrum
from halex.optics.spectra import HC_EV_NM, PeakFit, fit_peaks, select_peak_model, to_energy

__all__ = ["OpticsResult", "analyze_spectra", "write_optics"]


@dataclass
class OpticsResult:
    """Absorption features and PL peak fit of one sample, with the JSON summary."""

    summary: dict[str, Any]
    abs_energy_eV: np.ndarray | None = None
    absorbance: np.ndarray | None = None
    features: dict[str, Any] | None = None
    pl_fit: PeakFit | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def analyze_spectra(absorption: str | Path | None, pl: str | Path | None, *, column: int | str | None = None,
                    pl_peaks: int | str = 1, shape: str = "gauss") -> OpticsResult:
    """Absorption features and PL peaks (energies in eV) from spectrometer exports.

    Parameters
    ----------
    absorption, pl
        Spectrum files (wavelength in nm, first column) or None.
    column
        Data column of the files (default: the first after the wavelength).
    pl_peaks, shape
        Number of PL peaks and their shape (``"gauss"``, ``"asym"`` or ``"voigt"``);
        ``pl_peaks="auto"`` chooses among 1–2 Gaussian or split-Gaussian peaks by BIC.

    Returns
    -------
    OpticsResult
        Its ``summary`` has ``warnings`` (absorption and PL together) besides the numbers.
    """
    res = OpticsResult(summary={})
    warnings: list[str] = []
    if absorption is not None:
        sp = read_spectrum(absorption, column=column)
        res.abs_energy_eV, res.absorbance = to_energy(sp.wavelength_nm, sp.values, jacobian=False)
        res.features = absorption_features(res.abs_energy_eV, res.absorbance)
        res.summary["absorption"] = {"file": str(absorption), **res.features}
        warnings += [f"absorption: {w}" for w in res.features["warnings"]]
    if pl is not None:
        sp = read_spectrum(pl, column=column)
        e, y = to_energy(sp.wavelength_nm, sp.values, jacobian=True)
        if pl_peaks == "auto":
            res.pl_fit = select_peak_model(e, y)
        elif isinstance(pl_peaks, int) or str(pl_peaks).isdigit():
            res.pl_fit = fit_peaks(e, y, n_peaks=int(pl_peaks), shape=shape)
        else:
            raise InputError(f"PL peaks must be a number or 'auto', got {pl_peaks!r}")
        f = res.pl_fit
        res.summary["pl"] = {"file": str(pl), "shape": f.shape, "jacobian": "counts per nm converted to per eV",
                             "peaks": [dict(p.__dict__, center_nm=HC_EV_NM / p.center) for p in f.peaks],
                             "maximum_eV": float(f.x[np.argmax(f.fitted)]), "noise": f.noise,
                             "chi2_noise": f.chi2_noise, "residual_autocorr": f.residual_autocorr,
                             "chi2_red": f.chi2_red, "warnings": f.warnings}
        warnings += [f"PL: {w}" for w in f.warnings if not w.startswith("model chosen")]
        if res.features and res.features.get("exciton_peak_eV"):
            res.summary["stokes_shift_meV"] = 1000 * (res.features["exciton_peak_eV"] - res.summary["pl"]["maximum_eV"])
    if not res.summary:
        raise InputError("give an absorption spectrum and/or a PL spectrum")
    res.summary["warnings"] = warnings
    res.summary["units"] = {"energies": "eV", "wavelengths": "nm"}
    return res


def write_optics(out: str | Path, result: OpticsResult) -> Path:
    """``summary.json``, ``optics.png/.svg`` and (with PL) ``pl_fit.csv`` in the folder ``out``."""
    from halex.optics.figures import plot_optics
    from halex.plotting.figures import save_figure

    with atomic_folder(out) as tmp:
        (tmp / "summary.json").write_text(json.dumps(json_safe(result.summary), indent=2))
        fig = plot_optics(result.abs_energy_eV, result.absorbance, result.features, result.pl_fit)
        save_figure(fig, tmp / "optics.png", close=False)
        save_figure(fig, tmp / "optics.svg")
        if result.pl_fit is not None:
            f = result.pl_fit
            with open(tmp / "pl_fit.csv", "w") as fh:
                fh.write("energy_eV,pl_per_eV,fit\n")
                np.savetxt(fh, np.column_stack([f.x, f.y, f.fitted]), delimiter=",", fmt="%.8g")
    return Path(out)
