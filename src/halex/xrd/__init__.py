"""Powder X-ray diffraction (SPEC §6): bulk phase patterns, Debye patterns of atomistic
models, whole-pattern phase-fraction fits, and readers for measured scans.

* :func:`bulk_pattern` — a library phase or CIF, any radiation (Cu Kα1/Kα2 by default);
* :func:`debye_pattern` — a finite model by the Debye scattering equation;
* :func:`fit_pattern` — phase fractions, lattice scales and crystallite sizes with errors;
* :func:`read_pattern` / :func:`write_pattern` — ``.xy``/``.xye``/``.csv``/``.xrdml`` in,
  CSV (``two_theta_deg,intensity``) out.
"""

from halex.xrd.bulk import RADIATION, bulk_pattern, profile_pattern, radiation, reflections, two_theta_grid
from halex.xrd.debye import debye_intensity, debye_pattern, form_factor, pair_histograms
from halex.xrd.fit import PhaseResult, XrdFit, fit_pattern
from halex.xrd.io import Pattern, check_pattern, read_pattern, write_pattern
from halex.xrd.output import write_fit

__all__ = ["RADIATION", "bulk_pattern", "profile_pattern", "radiation", "reflections", "two_theta_grid",
           "debye_intensity", "debye_pattern", "form_factor", "pair_histograms",
           "PhaseResult", "XrdFit", "fit_pattern", "Pattern", "check_pattern", "read_pattern", "write_pattern",
           "write_fit"]
