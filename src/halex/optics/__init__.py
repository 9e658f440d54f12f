"""Absorption / photoluminescence spectra, halide composition and band-gap models (SPEC §6)."""

from halex.optics.bandgap import (
                                  MATERIALS,
                                  band_gap_vs_composition,
                                  band_gap_vs_size,
                                  confinement_energy_eV,
                                  coulomb_coefficient,
                                  fit_bowing,
)
from halex.optics.composition import parse_counts, x_cl_from_counts, x_cl_from_model
from halex.optics.edge import absorption_features
from halex.optics.io import Spectrum, check_spectrum, read_spectrum
from halex.optics.spectra import HC_EV_NM, PeakFit, fit_peaks, point_noise, select_peak_model, to_energy

__all__ = ["MATERIALS", "band_gap_vs_composition", "band_gap_vs_size", "confinement_energy_eV", "coulomb_coefficient",
           "fit_bowing", "parse_counts", "x_cl_from_counts", "x_cl_from_model", "Spectrum", "check_spectrum",
           "read_spectrum", "HC_EV_NM", "PeakFit", "absorption_features", "fit_peaks", "point_noise",
           "select_peak_model", "to_energy"]
