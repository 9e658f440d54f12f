"""Small example inputs with known truth for every analysis: ``halex example KIND -o DIR``.

Each writer makes the files a newcomer needs to try a command, and a ``truth.json`` with
the numbers the analysis should find. They are simulated by models independent of the
analyses that read them where halex has one (the Debye-free bulk pattern, rate equations
for TA, Gaussian-column images for STEM, analytic band shapes for optics); the tests of
each technique hold the analyses to the truth on these files and on real measured ones.

* ``xrd``: ``measured.xy``, a Cu Kα powder pattern of a 30 : 70 (weight) mixture of
  CsPbCl3 (25 nm) and PbCl2 (60 nm) with Poisson noise;
* ``optics``: ``abs.csv`` (absorbance: a √(E − E_g) continuum with an exciton at 1.86 eV)
  and ``pl.csv`` (a 1.82 eV emission recorded per nm);
* ``ta``: ``map.dat``, a ΔA(λ, t) matrix (delays in ps) with a 2 ps and a 500 ps
  component, a 230 fs instrument response and a chirp;
* ``stem``: ``hs_haadf.tif``, a calibrated HAADF image of a small CsPbCl3–Pb4S3Cl2 model at
  a dose of 10⁵ e/Å², and the model itself as ``hs.extxyz``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from halex.errors import InputError
from halex.io import atomic_folder

__all__ = ["EXAMPLES", "write_example"]


def _xrd(folder: Path) -> dict[str, Any]:
    from halex.phases import load_phase
    from halex.xrd import profile_pattern, reflections, two_theta_grid, write_pattern

    x = two_theta_grid(12, 70, 0.02)
    ra, rb = reflections(load_phase("CsPbCl3"), d_min=1.2), reflections(load_phase("PbCl2"), d_min=1.2)
    pa = profile_pattern(ra, x, size_nm=25, fwhm_instr_deg=0.07)
    pb = profile_pattern(rb, x, size_nm=60, fwhm_instr_deg=0.07)
    rho_a, rho_b = ra.mass_amu / ra.volume_A3, rb.mass_amu / rb.volume_A3
    v_a = (0.3 / rho_a) / (0.3 / rho_a + 0.7 / rho_b)  # weight 30 % -> volume fraction
    y = 5000 * (v_a * pa + (1 - v_a) * pb) / (v_a * pa + (1 - v_a) * pb).max() + 200
    counts = np.random.default_rng(0).poisson(y).astype(float)
    write_pattern(folder / "measured.xy", x, counts, header={"radiation": "Cu Ka1+Ka2", "simulated": "halex example xrd"})
    return {"file": "measured.xy", "phases": {"CsPbCl3": {"weight_fraction": 0.3, "size_nm": 25},
                                              "PbCl2": {"weight_fraction": 0.7, "size_nm": 60}},
            "instrument_fwhm_deg": 0.07, "command": "halex xrd fit measured.xy --phases CsPbCl3 PbCl2 -o xrd_out/"}


def _optics(folder: Path) -> dict[str, Any]:
    from halex.optics import HC_EV_NM

    wl = np.arange(500.0, 800.0, 0.5)
    e = HC_EV_NM / wl
    absorbance = np.sqrt(np.clip(e - 1.80, 0, None)) / e + 0.4 * np.exp(-0.5 * ((e - 1.86) / 0.02) ** 2) + 0.02
    pl_per_nm = 1000 * np.exp(-0.5 * ((e - 1.82) / 0.03) ** 2) * HC_EV_NM / wl**2
    for name, values, column in (("abs.csv", absorbance, "absorbance"), ("pl.csv", pl_per_nm, "counts")):
        with open(folder / name, "w") as fh:
            fh.write(f"wavelength_nm,{column}\n")
            np.savetxt(fh, np.column_stack([wl, values]), delimiter=",", fmt="%.6g")
    return {"files": ["abs.csv", "pl.csv"], "gap_eV": 1.80, "exciton_eV": 1.86, "pl_peak_eV": 1.82,
            "pl_fwhm_eV": 0.03 * 2 * np.sqrt(2 * np.log(2)), "command": "halex optics fit abs.csv pl.csv -o optics_out/"}


def _ta(folder: Path) -> dict[str, Any]:
    from halex.ta import default_delays, gaussian_band, simulate_ta_map, write_ta_map

    w = np.arange(380.0, 720.0, 4.0)
    das = [gaussian_band(w, 405, 20, -1.0) + gaussian_band(w, 650, 30, 0.5), gaussian_band(w, 650, 30, -1.0)]
    m = simulate_ta_map(w, default_delays(), das, [2.0, 500.0], irf_fwhm_ps=0.23, chirp_ps=(0.1, 0.3, 0.25),
                        noise=0.01, seed=4)
    write_ta_map(folder / "map.dat", m)
    return {"file": "map.dat", "lifetimes_ps": [2.0, 500.0], "irf_fwhm_ps": 0.23,
            "chirp_ps": {"coefficients": [0.1, 0.3, 0.25], "center_nm": float(0.5 * (w.min() + w.max())),
                         "variable": "u = (wavelength_nm - center_nm) / 100"},
            "command": "halex ta fit map.dat --irf 0.23 --kinetics 405 650 --global 2 -o ta_out/"}


def _stem(folder: Path) -> dict[str, Any]:
    from halex.io import write_structure
    from halex.models import heterostructure
    from halex.stem import simulate_image
    from halex.stem.io import write_image

    hs = heterostructure((4, 4, 3), 1)
    image, truth = simulate_image(hs, kind="haadf", dose=1e5, pixel_size=0.1, seed=0)
    write_image(folder / "hs_haadf.tif", image)
    write_structure(folder / "hs.extxyz", hs)
    return {"files": ["hs_haadf.tif", "hs.extxyz"], "pixel_size_A": image.pixel_size, "dose_e_per_A2": 1e5,
            "columns": int(len(truth["x_A"])), "perovskite_a_A": float(hs.info["a"]),
            "command": "halex stem analyze hs_haadf.tif --truth hs.extxyz -o stem_out/"}


#: kind -> writer of its files (returns the truth)
EXAMPLES: dict[str, Callable[[Path], dict[str, Any]]] = {"xrd": _xrd, "optics": _optics, "ta": _ta, "stem": _stem}


def write_example(kind: str, out: str | Path) -> dict[str, Any]:
    """Write the example inputs of ``kind`` and their ``truth.json`` into the folder ``out``.

    Parameters
    ----------
    kind
        ``"xrd"``, ``"optics"``, ``"ta"`` or ``"stem"``.
    out
        Output folder (written atomically).

    Returns
    -------
    dict
        The truth: what the analysis of these files should find, and the command to run.

    Examples
    --------
    >>> import tempfile
    >>> truth = write_example("optics", tempfile.mkdtemp())
    >>> truth["pl_peak_eV"], truth["files"]
    (1.82, ['abs.csv', 'pl.csv'])
    """
    if kind not in EXAMPLES:
        raise InputError(f"unknown example {kind!r}; choose one of {', '.join(EXAMPLES)}")
    with atomic_folder(out) as tmp:
        truth = EXAMPLES[kind](tmp)
        (tmp / "truth.json").write_text(json.dumps(truth, indent=1))
    return truth
