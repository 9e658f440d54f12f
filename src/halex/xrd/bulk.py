"""Bulk powder patterns of crystalline phases (SPEC §6).

Reflection positions and intensities come from pymatgen's
:class:`~pymatgen.analysis.diffraction.xrd.XRDCalculator` (kinematic structure factors
with its tabulated atomic form factors and the Lorentz–polarisation factor
``(1 + cos² 2θ) / (sin² θ cos θ)``). halex adds what a lab pattern needs:

* the Cu Kα1/Kα2 doublet (``"CuKa"`` = Kα1 1.54056 Å and Kα2 1.54439 Å at intensity
  ratio 0.5; pymatgen's own ``"CuKa"`` is a single averaged line);
* a peak profile: Thompson–Cox–Hastings pseudo-Voigt (P. Thompson, D. E. Cox,
  J. B. Hastings, J. Appl. Cryst. 20, 79 (1987)) whose Gaussian FWHM is the instrument's
  and whose Lorentzian FWHM is the Scherrer size broadening
  ``β = K λ / (L cos θ)`` (radians of 2θ) plus a microstrain term ``4 ε tan θ``;
* per-volume normalisation: a phase's intensities are ``m |F|² LP / V_cell²`` so that
  the scale factors of a mixture are proportional to the phases' volume fractions
  (used by :mod:`halex.xrd.fit`).

The Scherrer constant defaults to ``K = 0.89``; for cubes the exact value depends on the
reflection (0.886 for h00 from the sinc² line shape, J. I. Langford, A. J. C. Wilson,
J. Appl. Cryst. 11, 102 (1978)).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from halex.errors import InputError

__all__ = ["RADIATION", "radiation", "Reflections", "reflections", "pseudo_voigt", "tch_mix",
           "profile_pattern", "bulk_pattern", "two_theta_grid", "d_min_for", "SCHERRER_K"]

#: Named X-ray lines: list of (wavelength Å, relative intensity). Kα1/Kα2 wavelengths
#: from pymatgen's table (Bearden 1967); Kα2/Kα1 = 0.5.
RADIATION: dict[str, tuple[tuple[float, float], ...]] = {
    "CuKa": ((1.54056, 1.0), (1.54439, 0.5)),
    "CuKa1": ((1.54056, 1.0),),
    "MoKa": ((0.70930, 1.0), (0.71359, 0.5)),
    "MoKa1": ((0.70930, 1.0),),
    "CoKa": ((1.78896, 1.0), (1.79285, 0.5)),
    "CoKa1": ((1.78896, 1.0),),
}
SCHERRER_K = 0.89
#: peaks are evaluated within this many FWHM of their centre (the Lorentzian tail beyond
#: holds < 1.1 % of a pure Lorentzian's area and is taken up by the background)
WINDOW_FWHM = 30.0


def radiation(spec: str | float) -> tuple[tuple[float, float], ...]:
    """Lines of a named radiation (``"CuKa"``, ``"CuKa1"``, ...) or one wavelength in Å.

    Parameters
    ----------
    spec
        A key of :data:`RADIATION` or a wavelength (Å).

    Returns
    -------
    tuple
        ``((wavelength_A, relative_weight), ...)``.

    Examples
    --------
    >>> radiation(1.5406)
    ((1.5406, 1.0),)
    """
    if isinstance(spec, str):
        if spec in RADIATION:
            return RADIATION[spec]
        try:
            spec = float(spec)
        except ValueError:
            raise InputError(f"unknown radiation {spec!r}: choose one of {', '.join(RADIATION)} or give a wavelength in Å") from None
    lam = float(spec)
    if not 0.1 <= lam <= 5.0:
        raise InputError(f"X-ray wavelength must lie in 0.1–5 Å, got {lam:g}")
    return ((lam, 1.0),)


@dataclass(frozen=True)
class Reflections:
    """Reflections of one phase: d-spacings (Å), ``m |F|²`` (electrons², multiplicity
    included, Lorentz–polarisation removed), Miller indices and the cell volume (Å³).

    ``hkl_index`` (n, 3) are the indices of one reflection of each family, ``recip_metric``
    the reciprocal metric tensor G* (Å⁻²) of the cell, so that ``d⁻² = hᵀ G* h``, and
    ``axis_groups`` which cell lengths the symmetry ties together (cubic ``(0, 0, 0)``,
    tetragonal/hexagonal ``(0, 0, 1)``, lower ``(0, 1, 2)``)."""

    d_A: np.ndarray
    f2: np.ndarray
    hkl: tuple[str, ...]
    volume_A3: float
    mass_amu: float
    name: str
    hkl_index: np.ndarray | None = None
    recip_metric: np.ndarray | None = None
    axis_groups: tuple[int, int, int] = (0, 0, 0)


def axis_groups(lengths: np.ndarray, crystal_system: str) -> tuple[int, int, int]:
    """Which cell lengths move together under the symmetry: all three in a cubic cell, the
    equal pair in a tetragonal, trigonal or hexagonal one, none otherwise.

    Parameters
    ----------
    lengths
        a, b, c (Å) of the cell as given.
    crystal_system
        pymatgen's name (``"cubic"``, ``"tetragonal"``, ``"hexagonal"``, ``"trigonal"``, ...).

    Returns
    -------
    tuple of int
        Group number of each axis, numbered from 0 in order of first appearance.

    Examples
    --------
    >>> axis_groups(np.array([4.76, 4.76, 15.6]), "trigonal")
    (0, 0, 1)
    >>> axis_groups(np.array([8.48, 5.40, 6.96]), "orthorhombic")
    (0, 1, 2)
    """
    if crystal_system == "cubic":
        return (0, 0, 0)
    if crystal_system in ("tetragonal", "trigonal", "hexagonal"):
        groups: list[int] = []
        for i in range(3):
            same = [j for j in range(i) if abs(lengths[i] - lengths[j]) < 1e-5 * lengths[j]]
            groups.append(groups[same[0]] if same else (max(groups) + 1 if groups else 0))
        return tuple(groups)  # type: ignore[return-value]
    return (0, 1, 2)


def _lp(theta: np.ndarray) -> np.ndarray:
    return (1 + np.cos(2 * theta) ** 2) / (np.sin(theta) ** 2 * np.cos(theta))


@functools.lru_cache(maxsize=32)
def _reflections_cached(key: str, symbols: tuple[str, ...], cell: tuple, frac: tuple, d_min: float, name: str) -> Reflections:
    from pymatgen.analysis.diffraction.xrd import XRDCalculator
    from pymatgen.core import Lattice, Structure

    lattice = Lattice(np.array(cell).reshape(3, 3))
    struct = Structure(lattice, list(symbols), np.array(frac).reshape(-1, 3))
    lam = 1.0  # any wavelength: 2θ range set by d_min
    tt_max = float(np.degrees(2 * np.arcsin(min(lam / (2 * d_min), 1.0))))
    pat = XRDCalculator(wavelength=lam).get_pattern(struct, scaled=False, two_theta_range=(0.5, tt_max))
    theta = np.radians(np.asarray(pat.x)) / 2
    f2 = np.asarray(pat.y) / _lp(theta)
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    hkl = tuple(" ".join("".join(str(i) for i in h["hkl"]) for h in fam[:1]) for fam in pat.hkls)
    # one (h, k, l) per family; pymatgen writes hexagonal indices as (h, k, i, l)
    idx = np.array([[fam[0]["hkl"][j] for j in ((0, 1, 3) if len(fam[0]["hkl"]) == 4 else (0, 1, 2))]
                    for fam in pat.hkls], float).reshape(-1, 3)
    with warnings.catch_warnings():  # spglib's own deprecation notice about its error handling
        warnings.simplefilter("ignore", DeprecationWarning)
        system = SpacegroupAnalyzer(struct, symprec=1e-3).get_crystal_system()
    return Reflections(np.asarray(pat.d_hkls, float), f2, hkl, float(lattice.volume),
                       float(struct.composition.weight), name, idx, np.linalg.inv(lattice.metric_tensor),
                       axis_groups(np.array(lattice.abc), system))


def reflections(atoms: Atoms, *, d_min: float = 0.9) -> Reflections:
    """All reflections of a periodic structure with d ≥ ``d_min`` Å (pymatgen structure factors).

    Parameters
    ----------
    atoms
        Periodic structure.
    d_min
        Smallest d-spacing (Å).

    Returns
    -------
    Reflections
        d-spacings (Å), multiplicities, |F|² (electrons²), hkl labels, cell volume (Å³)
        and mass (amu).

    Examples
    --------
    >>> from halex.phases import load_phase
    >>> r = reflections(load_phase("CsPbCl3"), d_min=2.0)
    >>> round(float(r.d_A.max()), 3)   # (100): a = 5.605 Å
    5.605
    """
    if not all(atoms.pbc) or atoms.cell.rank != 3:
        raise InputError("bulk reflections need a periodic structure with a full 3D cell; "
                         "use halex.xrd.debye_pattern for a finite model")
    if not d_min > 0:
        raise InputError(f"d_min must be positive, got {d_min}")
    name = str(atoms.info.get("phase", atoms.get_chemical_formula()))
    return _reflections_cached(
        name, tuple(atoms.get_chemical_symbols()), tuple(np.asarray(atoms.cell).ravel().round(8)),
        tuple(atoms.get_scaled_positions().ravel().round(8)), float(d_min), name)


def d_min_for(lines, two_theta_max_deg: float, *, margin_deg: float) -> float:
    """Smallest d-spacing (Å) whose reflection of the shortest line falls below
    ``two_theta_max_deg + margin_deg`` (the margin keeps peak tails at the grid's end)."""
    lam_min = min(lam for lam, _ in lines)
    return float(lam_min / (2 * np.sin(np.radians(min(two_theta_max_deg + margin_deg, 179) / 2))))


def tch_mix(fwhm_g, fwhm_l):
    """Thompson–Cox–Hastings total FWHM and Lorentzian fraction η of a pseudo-Voigt."""
    g, lo = np.asarray(fwhm_g, float), np.asarray(fwhm_l, float)
    f = (g**5 + 2.69269 * g**4 * lo + 2.42843 * g**3 * lo**2 + 4.47163 * g**2 * lo**3
         + 0.07842 * g * lo**4 + lo**5) ** 0.2
    q = np.divide(lo, f, out=np.zeros_like(f), where=f > 0)
    eta = 1.36603 * q - 0.47719 * q**2 + 0.11116 * q**3
    return f, np.clip(eta, 0.0, 1.0)


def pseudo_voigt(x, fwhm, eta):
    """Unit-area pseudo-Voigt: η·Lorentzian + (1 − η)·Gaussian of equal FWHM."""
    x, fwhm, eta = np.asarray(x, float), np.asarray(fwhm, float), np.asarray(eta, float)
    u = 2 * x / fwhm
    lor = 2 / (np.pi * fwhm) / (1 + u**2)
    gau = 2 / fwhm * np.sqrt(np.log(2) / np.pi) * np.exp(-np.log(2) * u**2)
    return eta * lor + (1 - eta) * gau


def two_theta_grid(start: float = 10.0, stop: float = 80.0, step: float = 0.02) -> np.ndarray:
    """Evenly spaced 2θ grid in degrees (inclusive of ``stop`` within rounding).

    Parameters
    ----------
    start, stop, step
        Degrees 2θ.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> two_theta_grid(10, 11, 0.25).tolist()
    [10.0, 10.25, 10.5, 10.75, 11.0]
    """
    if not (0 < start < stop < 180) or not 0 < step < (stop - start):
        raise InputError(f"2θ range must satisfy 0 < start < stop < 180 with 0 < step < stop - start; got {start}, {stop}, {step}")
    return np.arange(start, stop + step / 2, step)


def profile_pattern(refl: Reflections, two_theta_deg: np.ndarray, *,
                    lines: str | float | Sequence[tuple[float, float]] = "CuKa", scale_lattice: float | np.ndarray = 1.0,
                    fwhm_instr_deg: float = 0.08, size_nm: float | None = None, strain: float = 0.0,
                    zero_deg: float = 0.0, scherrer_k: float = SCHERRER_K, per_volume: bool = True,
                    volume_scale: float | None = None) -> np.ndarray:
    """Profile a phase's reflections onto a 2θ grid.

    Parameters
    ----------
    refl
        From :func:`reflections`.
    two_theta_deg
        Grid (degrees).
    lines
        Radiation spec (name or wavelength, see :func:`radiation`) or explicit
        ``((λ_Å, weight), ...)``.
    scale_lattice
        Isotropic lattice scale factor α (d → α d; cell volume → α³ V), or one factor per
        reflection (an anisotropic change of cell; give ``volume_scale`` with it).
    fwhm_instr_deg
        Gaussian FWHM of the instrument (degrees 2θ, constant).
    size_nm
        Crystallite size L for the Scherrer (Lorentzian) broadening; None = no size broadening.
    strain
        Microstrain ε: Lorentzian FWHM ``4 ε tan θ`` (radians).
    zero_deg
        Zero shift added to every peak position (degrees).
    per_volume
        Divide by ``V_cell²`` so that scale factors are proportional to volume fractions.
    volume_scale
        V / V₀ of the changed cell; default ``scale_lattice³``.

    Returns
    -------
    numpy.ndarray
        Intensity ``Σ_k w_λ m|F|² LP(θ_k) pV(2θ − 2θ_k)`` (per unit cell volume² if ``per_volume``).
    """
    x = np.asarray(two_theta_deg, float)
    if isinstance(lines, (str, float, int)):
        lines = radiation(lines)
    elif lines and isinstance(lines[0], str):
        lines = radiation(lines[0])
    if not np.all((np.asarray(scale_lattice) > 0.5) & (np.asarray(scale_lattice) < 2)):
        raise InputError(f"lattice scale must lie in (0.5, 2), got {scale_lattice}")
    if size_nm is not None and not size_nm > 0:
        raise InputError(f"crystallite size must be positive (nm), got {size_nm}")
    if not fwhm_instr_deg > 0:
        raise InputError(f"instrument FWHM must be positive (degrees), got {fwhm_instr_deg}")
    d = refl.d_A * np.asarray(scale_lattice, float)
    y = np.zeros_like(x)
    for lam, w in lines:
        arg = lam / (2 * d)
        ok = arg < 1
        theta = np.arcsin(arg[ok])
        tt = np.degrees(2 * theta) + zero_deg
        inten = w * refl.f2[ok] * _lp(theta)
        lor = np.zeros_like(theta)
        if size_nm is not None:
            lor = lor + np.degrees(scherrer_k * lam / (10 * size_nm * np.cos(theta)))
        if strain:
            lor = lor + np.degrees(4 * abs(strain) * np.tan(theta))
        fwhm, eta = tch_mix(np.full_like(theta, fwhm_instr_deg), lor)
        # each peak is evaluated within ±WINDOW_FWHM of its centre (sparse, then summed)
        i0 = np.searchsorted(x, tt - WINDOW_FWHM * fwhm)
        i1 = np.searchsorted(x, tt + WINDOW_FWHM * fwhm)
        n = i1 - i0
        if n.sum() == 0:
            continue
        owner = np.repeat(np.arange(tt.size), n)
        idx = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(i0, n)
        vals = inten[owner] * pseudo_voigt(x[idx] - tt[owner], fwhm[owner], eta[owner])
        y += np.bincount(idx, weights=vals, minlength=x.size)
    if per_volume:
        vs = float(scale_lattice) ** 3 if volume_scale is None else float(volume_scale)
        y /= (refl.volume_A3 * vs) ** 2
    return y


def bulk_pattern(atoms: Atoms, two_theta_deg: np.ndarray | None = None, *, wavelength: str | float = "CuKa", fwhm_instr_deg: float = 0.08,
                 size_nm: float | None = None, strain: float = 0.0, normalize: bool = True) -> tuple[np.ndarray, np.ndarray, Reflections]:
    """Powder pattern of a bulk phase on a 2θ grid (default 10–80°, 0.02° steps).

    Structure factors from pymatgen (:func:`reflections`), Lorentz–polarisation factor,
    Kα doublet and pseudo-Voigt profiles (:func:`profile_pattern`).

    Parameters
    ----------
    atoms
        A periodic structure (a library phase: :func:`halex.phases.load_phase`).
    two_theta_deg
        2θ grid (degrees); default :func:`two_theta_grid`.
    wavelength
        Radiation name or wavelength in Å (:func:`radiation`).
    fwhm_instr_deg
        Gaussian instrument FWHM (degrees 2θ).
    size_nm
        Crystallite size (nm) for Scherrer broadening; None for none.
    strain
        Microstrain ε (Lorentzian FWHM 4 ε tan θ).
    normalize
        Scale the maximum to 100.

    Returns
    -------
    tuple
        ``(two_theta_deg, intensity, reflections)``.

    Examples
    --------
    >>> from halex.phases import load_phase
    >>> x, y, refl = bulk_pattern(load_phase("CsPbCl3"), two_theta_grid(20, 35, 0.01))
    >>> round(float(x[np.argmax(y)]), 1)   # (110) of cubic CsPbCl3, a = 5.605 Å, Cu Kα1
    22.4
    """
    x = two_theta_grid() if two_theta_deg is None else np.asarray(two_theta_deg, float)
    lines = radiation(wavelength)
    refl = reflections(atoms, d_min=d_min_for(lines, x[-1], margin_deg=2.0))
    y = profile_pattern(refl, x, lines=lines, fwhm_instr_deg=fwhm_instr_deg, size_nm=size_nm, strain=strain,
                        per_volume=False)
    if normalize and y.max() > 0:
        y = 100 * y / y.max()
    return x, y, refl
