"""STEM images of atomistic models with known truth.

The model is projected along a zone axis, atoms that project within ``column_tol`` of
each other form one atomic column, and the image is a sum of Gaussian probe profiles,
one per atom, weighted by a power of the atomic number:

* **HAADF** (incoherent Z-contrast): weight Z^1.7 (the usual 1.6–2 exponent of
  Rutherford-like high-angle scattering, Pennycook & Jesson, Ultramicroscopy 37, 14
  (1991); Hartel et al., Ultramicroscopy 63, 93 (1996)). Expected counts per pixel are
  ``dose · px² · (background + η·S)`` with η chosen so that the brightest column peak
  scatters ``peak_fraction`` of the probe electrons onto the detector; Poisson noise.
* **Phase** (projected potential, e.g. a ptychographic or iDPC phase): weight Z^0.7 (the
  integrated projected potential of a neutral atom grows roughly as Z^0.6–0.8, Kirkland,
  *Advanced Computing in Electron Microscopy*, 2nd ed., App. C), scaled so the brightest
  column peak is ``peak_phase`` rad; shot noise as Gaussian noise of standard deviation
  ``1 / (2 sqrt(dose · px²))`` rad per pixel, the quantum limit of phase estimation with
  N = dose · px² electrons per pixel (Koppell & Kasevich, Optica 8, 1 (2021)), i.e. an
  ideal phase-contrast detector such as well-sampled ptychography.

This is the fast, seconds-on-2-cores simulator the analysis is scored with; it ignores
channelling and probe spreading with depth (a multislice code such as abTEM, an optional
extra outside halex, does not).

Geometry: halex models stack the domains along z, so both zone axes keep the interface
edge-on and horizontal in the image, perovskite on top: ``"001"`` looks along the model's
x axis (the cubic perovskite [100] ≡ [001]), ``"101"`` along [110] (≡ [101]). Image x runs
along the in-plane axis (y for ``"001"``, [−110]/√2 for ``"101"``), image y runs down
(−z). Pixel centres sit at integer pixel coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms

from halex.errors import InputError, StructureError
from halex.stem.io import _PIXEL_RANGE_A, StemImage, _check_kind

__all__ = ["ZONES", "Z_EXPONENT", "zone_frame", "project_columns", "simulate_image", "SimulationSettings"]

#: zone name -> (beam direction, in-plane image x direction) in the model frame; image y is −z
ZONES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "001": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "101": ((1.0, 1.0, 0.0), (-1.0, 1.0, 0.0)),
}
#: Z exponent of each image kind
Z_EXPONENT = {"haadf": 1.7, "phase": 0.7}
_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


def zone_frame(zone: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors (beam, image-x, image-up) of a zone axis in the model frame."""
    if zone not in ZONES:
        raise InputError(f"unknown zone axis {zone!r}; choose one of {', '.join(ZONES)}")
    beam, ex = (np.asarray(v, float) / np.linalg.norm(v) for v in ZONES[zone])
    return beam, ex, np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class SimulationSettings:
    """Settings of :func:`simulate_image` (lengths in Å, dose in e/Å²).

    Attributes
    ----------
    zone
        Projection, ``"001"`` or ``"101"`` (of the perovskite).
    kind
        ``"haadf"`` (Z^n contrast, Poisson counts) or ``"phase"`` (projected potential, rad).
    pixel_size
        Å per pixel.
    probe_fwhm
        FWHM of the Gaussian column image (Å).
    dose
        Electron dose (e/Å²); None for a noiseless image.
    z_exponent
        Exponent n of the Z^n contrast (default that of ``kind``).
    margin
        Vacuum around the model in the image (Å).
    background
        HAADF background as a fraction of the probe's counts.
    peak_fraction, peak_phase
        Peak-height scale and the phase (rad) of the strongest column (phase images).
    column_tol
        Atoms within this distance (Å) in projection form one column.
    """

    zone: str = "001"
    kind: str = "haadf"
    pixel_size: float = 0.1
    probe_fwhm: float = 0.8
    dose: float | None = None
    z_exponent: float | None = None
    margin: float = 6.0
    background: float = 0.02
    peak_fraction: float = 0.1
    peak_phase: float = 1.0
    column_tol: float = 0.6
    probe: str = "gaussian"
    voltage_kV: float = 200.0
    semiangle_mrad: float = 20.0


def _check_settings(s: SimulationSettings) -> None:
    _check_kind(s.kind)
    zone_frame(s.zone)
    for name in ("pixel_size", "probe_fwhm", "margin", "column_tol", "peak_fraction", "peak_phase"):
        v = getattr(s, name)
        if not np.isfinite(v) or v <= 0:
            raise InputError(f"{name} must be positive, got {v!r}")
    lo, hi = _PIXEL_RANGE_A
    if not lo <= s.pixel_size <= hi:
        raise InputError(f"pixel_size {s.pixel_size} Å is outside {lo}–{hi} Å")
    if s.dose is not None and (not np.isfinite(s.dose) or s.dose <= 0):
        raise InputError(f"dose must be a positive number of e/Å² (or None for a noiseless image), got {s.dose!r}")
    if not 0 <= s.background:
        raise InputError(f"background must be ≥ 0, got {s.background}")
    if s.probe not in ("gaussian", "aperture"):
        raise InputError(f"probe must be 'gaussian' or 'aperture', got {s.probe!r}")


def project_columns(atoms: Atoms, zone: str = "001", *, column_tol: float = 0.6,
                    z_exponent: float = 1.7) -> dict[str, np.ndarray]:
    """Group the atoms of ``atoms`` into columns along ``zone``.

    Returns a table (dict of equal-length arrays) with the projected column position
    ``h_A`` (image x) and ``v_A`` (up) in Å — the Z^n-weighted mean of its atoms, i.e.
    the peak of the summed Gaussians —, ``n_atoms``, counts ``n_Pb``, ``n_Cs``, ``n_Cl``,
    ``n_I``, ``n_S``, ``n_Br``, ``weight`` (Σ Z^n), ``iodide_fraction`` (I/(Cl+I+Br), NaN
    without halide), ``domain`` (majority) and ``kind`` (``Pb+X``, ``Pb``, ``Cs``, ``Cs+X``,
    ``X`` for perovskite columns, ``chalcohalide`` otherwise), and per atom the column
    index in ``atom_column``.

    Parameters
    ----------
    atoms
        Any model.
    zone
        Beam direction in the perovskite frame: ``"001"`` (along z) or ``"101"``.
    column_tol
        Atoms closer than this in projection (Å) share a column.
    z_exponent
        Exponent n of the Z^n weights.

    Returns
    -------
    dict of numpy.ndarray
        The column table above.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    if len(atoms) == 0:
        raise StructureError("the model has no atoms")
    beam, ex, up = zone_frame(zone)
    pos = atoms.get_positions()
    if not np.all(np.isfinite(pos)):
        raise StructureError("the model has non-finite coordinates")
    p2 = np.column_stack([pos @ ex, pos @ up])
    pairs = cKDTree(p2).query_pairs(column_tol, output_type="ndarray")
    n = len(atoms)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)) if len(pairs) else coo_matrix((n, n))
    ncol, label = connected_components(graph, directed=False)
    z = atoms.numbers.astype(float)
    w = z ** z_exponent
    wsum = np.bincount(label, w, ncol)
    h = np.bincount(label, w * p2[:, 0], ncol) / wsum
    v = np.bincount(label, w * p2[:, 1], ncol) / wsum
    sym = np.array(atoms.get_chemical_symbols())
    table: dict[str, np.ndarray] = {"h_A": h, "v_A": v, "n_atoms": np.bincount(label, minlength=ncol), "weight": wsum}
    for el in ("Pb", "Cs", "Cl", "I", "Br", "S"):
        table[f"n_{el}"] = np.bincount(label, sym == el, ncol).astype(int)
    nx = table["n_Cl"] + table["n_I"] + table["n_Br"]
    with np.errstate(invalid="ignore", divide="ignore"):
        table["iodide_fraction"] = np.where(nx > 0, table["n_I"] / np.maximum(nx, 1), np.nan)
    dom = atoms.arrays.get("domain")
    if dom is not None:
        dom = np.asarray(dom).astype(str)
        names = np.unique(dom)
        votes = np.stack([np.bincount(label, dom == d, ncol) for d in names], axis=1)
        table["domain"] = names[votes.argmax(axis=1)]
    else:
        table["domain"] = np.full(ncol, "perovskite" if not table["n_S"].any() else "", dtype=object).astype(str)
    kind = np.full(ncol, "chalcohalide", dtype=object)
    pv = (table["domain"] == "perovskite") & (table["n_S"] == 0)
    has_pb, has_cs, has_x = table["n_Pb"] > 0, table["n_Cs"] > 0, nx > 0
    kind[pv & has_pb & has_x] = "Pb+X"
    kind[pv & has_pb & ~has_x] = "Pb"
    kind[pv & has_cs & ~has_x & ~has_pb] = "Cs"
    kind[pv & has_cs & has_x & ~has_pb] = "Cs+X"
    kind[pv & has_x & ~has_pb & ~has_cs] = "X"
    table["kind"] = kind.astype(str)
    table["atom_column"] = label  # per atom, not per column
    return table


#: r.m.s. thermal displacement in projection (Å) of the object under the aperture probe
THERMAL_SIGMA_A = 0.08


def _aperture_blur(S: np.ndarray, s: SimulationSettings) -> np.ndarray:
    """``S`` convolved with the intensity of an aberration-free probe of ``s.semiangle_mrad``
    at ``s.voltage_kV`` (sampled at the image's pixels, over a ±4 Å window)."""
    from scipy.signal import fftconvolve

    from halex.stem.fourd import _probe

    n = 2 * int(np.ceil(4.0 / s.pixel_size)) + 1  # odd: the probe centre is the middle pixel
    psf = np.abs(_probe(n, s.pixel_size, s.voltage_kV, s.semiangle_mrad)) ** 2
    return np.clip(fftconvolve(S, psf / psf.sum(), mode="same"), 0.0, None)


def simulate_image(atoms: Atoms, settings: SimulationSettings | None = None, *, seed: int | None = 0,
                   **kwargs: Any) -> tuple[StemImage, dict[str, np.ndarray]]:
    """Simulate a HAADF or phase image of ``atoms`` and return it with the true columns.

    Parameters
    ----------
    atoms
        Any model (halex per-atom ``domain`` labels are used for the truth table if present).
    settings
        :class:`SimulationSettings`; keyword arguments override its fields
        (``zone``, ``kind``, ``pixel_size`` Å, ``probe_fwhm`` Å, ``dose`` e/Å² or None for a
        noiseless image, ``z_exponent``, ``margin`` Å, ``background`` (fraction of the
        probe, HAADF), ``peak_fraction``, ``peak_phase`` rad, ``column_tol`` Å, ``probe``
        ``"gaussian"`` (``probe_fwhm``) or ``"aperture"``: the object, smeared by
        :data:`THERMAL_SIGMA_A`, convolved with the intensity of an aberration-free probe of
        ``semiangle_mrad`` at ``voltage_kV``, rings included, which the Gaussian column
        model of the fitter does not describe).
    seed
        Seed of the noise generator.

    Returns
    -------
    image, truth
        The image (``metadata`` holds the settings and the projection) and the column
        table of :func:`project_columns` plus ``x_px``, ``y_px``, ``x_A``, ``y_A`` (image
        coordinates) and the true single-Gaussian parameters ``amplitude``, ``width_A``,
        ``background`` of each column in image units.
    """
    from dataclasses import replace

    s = replace(settings or SimulationSettings(), **kwargs)
    _check_settings(s)
    n_exp = Z_EXPONENT[s.kind] if s.z_exponent is None else float(s.z_exponent)
    truth = project_columns(atoms, s.zone, column_tol=s.column_tol, z_exponent=n_exp)
    beam, ex, up = zone_frame(s.zone)
    pos = atoms.get_positions()
    h, v = pos @ ex, pos @ up
    h0, v1 = h.min() - s.margin, v.max() + s.margin
    px = s.pixel_size
    nx = int(np.ceil((h.max() + s.margin - h0) / px)) + 1
    ny = int(np.ceil((v1 - (v.min() - s.margin)) / px)) + 1
    if nx * ny > 64e6:
        raise InputError(f"image of {ny}×{nx} pixels is too large; use a larger pixel_size")
    # atom centres in pixel coordinates (x right, y down)
    ax, ay = (h - h0) / px, (v1 - v) / px
    # a Gaussian probe, or (probe="aperture") a thermal smearing of 0.08 Å convolved below
    # with the intensity of an aberration-free aperture probe (Airy rings included)
    sigma = (s.probe_fwhm / _FWHM if s.probe == "gaussian" else THERMAL_SIGMA_A) / px
    w = atoms.numbers.astype(float) ** n_exp
    r = int(np.ceil(5 * sigma))
    off = np.arange(-r, r + 1)
    cx, cy = np.rint(ax).astype(int), np.rint(ay).astype(int)
    gx = np.exp(-((cx[:, None] + off[None, :]) - ax[:, None]) ** 2 / (2 * sigma**2))  # (n, k)
    gy = np.exp(-((cy[:, None] + off[None, :]) - ay[:, None]) ** 2 / (2 * sigma**2))
    img = np.zeros(ny * nx)
    for i, dy in enumerate(off):  # separable Gaussians, one row offset at a time
        rows = cy + dy
        cols = cx[:, None] + off[None, :]
        vals = w[:, None] * gy[:, i : i + 1] * gx
        ok = (rows[:, None] >= 0) & (rows[:, None] < ny) & (cols >= 0) & (cols < nx)
        img += np.bincount((rows[:, None] * nx + cols)[ok], vals[ok], ny * nx)
    S = img.reshape(ny, nx)
    if s.probe == "aperture":
        S = _aperture_blur(S, s)
    smax = float(S.max())
    rng = np.random.default_rng(seed)
    if s.kind == "haadf":
        eta = s.peak_fraction / smax
        scale = 1.0 if s.dose is None else s.dose * px * px
        expected = scale * (s.background + eta * S)
        data = expected if s.dose is None else rng.poisson(expected).astype(float)
        amp_scale, bg = scale * eta, scale * s.background
    else:
        eta = s.peak_phase / smax
        expected = eta * S
        noise = None if s.dose is None else 0.5 / np.sqrt(s.dose * px * px)
        data = expected if noise is None else expected + rng.normal(0.0, noise, expected.shape)
        amp_scale, bg = eta, 0.0
    truth["x_px"] = (truth["h_A"] - h0) / px
    truth["y_px"] = (v1 - truth["v_A"]) / px
    truth["x_A"], truth["y_A"] = truth["x_px"] * px, truth["y_px"] * px
    truth["amplitude"] = amp_scale * truth["weight"]
    truth["width_A"] = np.full(len(truth["h_A"]), s.probe_fwhm / _FWHM)
    truth["background"] = np.full(len(truth["h_A"]), bg)
    meta = {"settings": {k: getattr(s, k) for k in s.__dataclass_fields__}, "z_exponent": n_exp,
            "origin_h_A": float(h0), "origin_v_A": float(v1), "noise_sigma": None if s.kind == "haadf" or s.dose is None
            else float(0.5 / np.sqrt(s.dose * px * px)), "zone": s.zone}
    return StemImage(data, px, s.kind, "simulated", meta), truth
