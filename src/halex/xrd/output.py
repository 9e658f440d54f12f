"""Write a whole-pattern fit: ``fit.csv``, ``summary.json`` and the fit figure."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from halex.io import atomic_folder, json_safe
from halex.xrd.fit import XrdFit

__all__ = ["write_fit"]


def write_fit(fit: XrdFit, out: str | os.PathLike) -> list[Path]:
    """Write ``fit.csv``, ``summary.json``, ``fit.png`` and ``fit.svg`` into folder ``out`` (atomically).

    Parameters
    ----------
    fit
        Result of :func:`halex.xrd.fit_pattern`.
    out
        Output folder.

    Returns
    -------
    list of Path
        The four files. ``fit.csv`` holds 2θ (degrees), observed, calculated, background,
        each phase's component and the difference; ``summary.json`` the refined values
        with their standard errors (:meth:`XrdFit.summary`).
    """
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
