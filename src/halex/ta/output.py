"""Write transient-absorption results: ``summary.json``, CSV tables and figures.

One writer per result, so that the command line and scripts produce the same files:

* :func:`ta_summary` / :func:`write_ta_analysis` — a fitted map (chirp, kinetics,
  global analysis): ``summary.json``, ``kinetics.csv``, ``das.csv``, ``eas.csv`` and the
  map, chirp, kinetics, spectra and residual figures;
* :func:`write_comparison` — normalised kinetics of several samples: a figure and a CSV.

Times are in ps, wavelengths in nm; every folder is written atomically (a temporary
folder renamed when complete).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from halex.io import atomic_folder, atomic_output, json_safe
from halex.ta.fit import Chirp, GlobalFit, KineticsFit
from halex.ta.io import TAMap

__all__ = ["ta_summary", "write_ta_analysis", "write_comparison"]


def ta_summary(m: TAMap, chirp: Chirp, global_fit: GlobalFit | None, fits: list[KineticsFit], *,
               source: str, chirp_source: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """JSON-ready summary of one analysed map (units in the ``units`` entry)."""
    return {"map": source, "time_unit_in_file": m.meta.get("time_unit_file"),
            "time_unit_from": m.meta.get("time_unit_from"), "options": dict(options or {}),
            "warnings": [w for f in fits for w in f.warnings] + (list(global_fit.warnings) if global_fit else []),
            "chirp": {"t0_ps_polynomial_coefficients": list(chirp.coefficients_ps), "center_nm": chirp.center_nm,
                      "errors_ps": list(chirp.errors_ps) if chirp.errors_ps else None,
                      "variable": "u = (wavelength_nm - center_nm) / 100", "source": chirp_source},
            "kinetics": [f.summary() for f in fits], "global": global_fit.summary() if global_fit else None,
            "units": {"time": "ps", "wavelength": "nm", "lifetimes": "ps", "irf_fwhm": "ps"}}


def _write_kinetics(folder: Path, m: TAMap, fits: list[KineticsFit]) -> None:
    from halex.plotting.figures import save_figure
    from halex.ta import figures as tf

    cols = {"time_ps": m.time_ps}
    for f in fits:
        cols[f"trace_{f.wavelength_nm:g}nm"] = f.trace
        cols[f"fit_{f.wavelength_nm:g}nm"] = f.fitted
    with open(folder / "kinetics.csv", "w") as fh:
        fh.write(",".join(cols) + "\n")
        np.savetxt(fh, np.column_stack(list(cols.values())), delimiter=",", fmt="%.8g")
    fig = tf.plot_kinetics(fits)
    save_figure(fig, folder / "kinetics.png", close=False)
    save_figure(fig, folder / "kinetics.svg")


def _write_global(folder: Path, m: TAMap, g: GlobalFit) -> None:
    from halex.plotting.figures import save_figure
    from halex.ta import figures as tf

    names = [f"{tau:.4g}ps" for tau in g.lifetimes_ps] + (["inf"] if g.offset else [])
    tables = [("das", g.das, names), ("eas", g.eas, names)]
    if g.artifact_spectra is not None:
        tables.append(("artifact", g.artifact_spectra, ["irf", "d1", "d2"][: len(g.artifact_spectra)]))
    for kind, arr, cols in tables:
        with open(folder / f"{kind}.csv", "w") as fh:
            fh.write("wavelength_nm," + ",".join(f"{kind}_{n}" for n in cols) + "\n")
            np.savetxt(fh, np.column_stack([g.wavelength_nm, arr.T]), delimiter=",", fmt="%.8g")
    save_figure(tf.plot_spectra(g), folder / "spectra.png")
    if g.artifact_spectra is not None:
        save_figure(tf.plot_artifact(g), folder / "artifact.png")
    save_figure(tf.plot_map(TAMap(g.wavelength_nm, g.time_ps, g.residual), title="residual (data − global fit)"),
                folder / "residual.png")


def write_ta_analysis(out: str | Path, m: TAMap, chirp: Chirp, global_fit: GlobalFit | None, fits: list[KineticsFit],
                      *, source: str, chirp_source: str, options: dict[str, Any] | None = None) -> Path:
    """Write the summary, tables and figures of an analysed map into the folder ``out``.

    Parameters
    ----------
    out
        Output folder (replaced atomically).
    m
        The map as measured.
    chirp, global_fit, fits
        What :func:`halex.ta.analyze_map` returned.
    source, chirp_source
        The map's file name and how the chirp was obtained (recorded in the summary).
    options
        The analysis settings (fit window, excluded wavelengths, artifact, chirp
        refinement, background), recorded in the summary.

    Returns
    -------
    Path
        The folder.
    """
    from halex.plotting.figures import save_figure
    from halex.ta import figures as tf
    from halex.ta.fit import chirp_corrected

    summary = ta_summary(m, chirp, global_fit, fits, source=source, chirp_source=chirp_source, options=options)
    with atomic_folder(out) as tmp:
        (tmp / "summary.json").write_text(json.dumps(json_safe(summary), indent=2))
        save_figure(tf.plot_map(m, title="ΔA (as measured) with t0(λ)", chirp=chirp), tmp / "map.png")
        save_figure(tf.plot_map(chirp_corrected(m, chirp), title="ΔA, chirp corrected"), tmp / "map_corrected.png")
        save_figure(tf.plot_chirp(chirp, m.wavelength_nm), tmp / "chirp.png")
        if fits:
            _write_kinetics(tmp, m, fits)
        if global_fit is not None:
            _write_global(tmp, m, global_fit)
    return Path(out)


def write_comparison(out: str | Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], *,
                     wavelength_nm: float) -> tuple[Path, Path]:
    """Figure ``out`` (.png/.svg/.pdf) of normalised kinetics and the traces as CSV next to it.

    ``curves`` maps a sample label to ``(time_ps, normalised ΔA)``.
    """
    from halex.plotting.figures import save_figure
    from halex.ta import figures as tf

    out = Path(out)
    with atomic_output(out.with_suffix(".csv")) as fh:
        fh.write("sample,time_ps,normalised_delta_a\n")
        for lab, (t, y) in curves.items():
            for ti, yi in zip(t, y):
                fh.write(f"{lab},{ti:.6g},{yi:.6g}\n")
    save_figure(tf.plot_compare(curves, wavelength_nm=wavelength_nm), out)
    return out, out.with_suffix(".csv")
