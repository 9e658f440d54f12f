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

__all__ = ["RADIATION", "bulk_pattern", "profile_pattern", "radiation", "reflections", "two_theta_grid",
           "debye_intensity", "debye_pattern", "form_factor", "pair_histograms",
           "PhaseResult", "XrdFit", "fit_pattern", "Pattern", "check_pattern", "read_pattern", "write_pattern",
           "write_fit"]


def write_fit(fit: XrdFit, out) -> list:
    """Write ``fit.csv``, ``summary.json``, ``fit.png`` and ``fit.svg`` into folder ``out`` (atomically)."""
    import json
    from pathlib import Path

    import numpy as np

    from halex.io import atomic_folder, json_safe
    from halex.plotting.figures import save_figure
    from halex.xrd.figures import plot_fit

    out = Path(out)
    with atomic_folder(out) as tmp:
        cols = {"two_theta_deg": fit.two_theta_deg, "observed": fit.observed, "calculated": fit.calculated,
                "background": fit.background, **{f"phase_{k}": v for k, v in fit.components.items()},
                "difference": fit.observed - fit.calculated}
        with open(tmp / "fit.csv", "w") as fh:
            fh.write(",".join(cols) + "\n")
            np.savetxt(fh, np.column_stack(list(cols.values())), delimiter=",", fmt="%.8g")
        (tmp / "summary.json").write_text(json.dumps(json_safe(fit.summary()), indent=2))
        fig = plot_fit(fit)
        save_figure(fig, tmp / "fit.png", close=False)
        save_figure(fig, tmp / "fit.svg")
    return [out / n for n in ("fit.csv", "summary.json", "fit.png", "fit.svg")]
