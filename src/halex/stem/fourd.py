"""4D-STEM: calibrated datasets, centre-of-mass (CoM, iCoM, DPC) phase, and simulated data.

A 4D dataset is ``data[scan_y, scan_x, det_y, det_x]``: one diffraction pattern per probe
position. Its calibration is the scan step (Å), the detector pixel (mrad), the beam
voltage (kV) and the probe semi-angle (mrad) (:class:`Calibration`).

**Centre of mass** (written in halex: a few array operations, read in chunks of scan rows
so that memory stays bounded). For every pattern the intensity-weighted mean scattering
angle is taken, relative to the mean over the scan (the descan of the unscattered beam):
``CoM = Σ θ I / Σ I`` in mrad. For a phase object φ under a probe of intensity |P|²,
``CoM = λ/(2π) · ∇(φ ⊛ |P|²)`` (Waddell & Chapman 1979; Lazić, Bosch & Lazar,
Ultramicroscopy 160, 265 (2016)).

* **iCoM**: the phase φ ⊛ |P|² (rad) by integrating the CoM field in Fourier space,
  ``Φ(q) = −i (q_x C_x + q_y C_y) / |q|²`` with ``C = F[2π CoM / λ]`` and q = 0 set to 0.
* **dDPC**: the divergence of the CoM field, ∝ the projected charge density.

**Simulation** (:func:`simulate_4d`, for tests and examples): the model is projected along
a zone axis; every atom adds a Gaussian phase of width 0.25 Å and peak
``PHASE_PER_ATOM × (Z/82)^0.7`` rad (the Z^0.7 of halex's phase images: a weak-phase
stand-in for the projected potential, not a Kirkland parametrisation; abTEM is the
multislice option). The probe is an aberration-free aperture of the given semi-angle at
the relativistic wavelength of the voltage; each pattern is ``|F[P(r − r_p) t(r)]|²``
with ``t = exp(iφ)``, cropped to twice the semi-angle, with Poisson counts at a dose.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from halex.errors import CalibrationError, FileFormatError, InputError

__all__ = ["Calibration", "wavelength_A", "read_4d", "center_of_mass", "icom", "ddpc", "simulate_4d", "write_4d",
           "phase_figure", "ptycho_figure", "check_fits_in_memory", "NpyRows", "PHASE_PER_ATOM",
           "MEMORY_FRACTION"]

#: peak phase (rad) of one Pb atom in :func:`simulate_4d`
PHASE_PER_ATOM = 0.04


@dataclass(frozen=True)
class Calibration:
    """Calibration of a 4D dataset: scan step (Å), detector pixel (mrad), voltage (kV), semi-angle (mrad)."""

    scan_step_A: float
    detector_mrad: float
    voltage_kV: float
    semiangle_mrad: float

    def check(self) -> Calibration:
        """Refuse non-positive or implausible values (one line naming the option)."""
        for name, v, lo, hi, opt in (("scan step", self.scan_step_A, 0.005, 50.0, "--scan-step (Å)"),
                                     ("detector pixel", self.detector_mrad, 1e-3, 50.0, "--detector-pixel (mrad)"),
                                     ("voltage", self.voltage_kV, 1.0, 3000.0, "--voltage (kV)"),
                                     ("semi-angle", self.semiangle_mrad, 0.1, 200.0, "--semiangle (mrad)")):
            if not (v is not None and np.isfinite(v) and lo <= v <= hi):
                raise CalibrationError(f"{name} {v!r} is missing or outside {lo}–{hi}: give {opt}")
        return self


def wavelength_A(voltage_kV: float) -> float:
    """Relativistic electron wavelength (Å) at ``voltage_kV``: 12.2643 / √(V (1 + 0.978476e-6 V))."""
    v = 1e3 * float(voltage_kV)
    return float(12.264259 / np.sqrt(v * (1.0 + 0.97847573e-6 * v)))


#: a dataset that has to be loaded whole may use at most this fraction of the available memory
MEMORY_FRACTION = 0.5


def check_fits_in_memory(nbytes: float, what: str, available: float | None = None, *,
                        hint: str = "convert it to .npy (read in row blocks) or a lazily readable format "
                                    "(.hspy, .zspy, .emd)") -> None:
    """Refuse to load ``nbytes`` at once when that exceeds :data:`MEMORY_FRACTION` of the
    available memory (``available`` bytes; default from /proc/meminfo), saying the estimate
    and ``hint`` (what to do instead)."""
    if available is None:
        available = 8e9
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    available = float(line.split()[1]) * 1024.0
        except OSError:
            pass
    if nbytes > MEMORY_FRACTION * available:
        raise InputError(f"{what}: loading it needs ≈ {nbytes / 1e9:.1f} GB, more than {MEMORY_FRACTION:.0%} of the "
                         f"{available / 1e9:.1f} GB available; {hint}")


class NpyRows:
    """A ``.npy`` array read a block of leading-axis rows at a time with plain file reads.

    Unlike a memory map, the pages read are not kept mapped, so the resident memory of a
    pass over a large scan stays at one block.
    """

    def __init__(self, path: Path) -> None:
        try:
            with open(path, "rb") as fh:
                version = np.lib.format.read_magic(fh)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(fh)
                self.offset = fh.tell()
        except (ValueError, OSError) as exc:
            raise FileFormatError(f"{path}: not a NumPy array file ({exc})") from None
        if fortran or dtype.hasobject:
            raise FileFormatError(f"{path}: a C-ordered numeric array is needed (got fortran={fortran}, dtype {dtype})")
        self.path, self.shape, self.dtype = path, tuple(shape), dtype
        self.ndim = len(self.shape)
        row = int(np.prod(self.shape[1:], dtype=np.int64))
        self.row_items = row
        expected = self.offset + row * self.shape[0] * dtype.itemsize if self.shape else 0
        if self.shape and path.stat().st_size < expected:
            raise InputError(f"{path}: the file is shorter than its header's shape {self.shape} says "
                             f"({path.stat().st_size} < {expected} bytes): truncated or inconsistent dimensions")

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self[0:self.shape[0]], dtype=dtype)

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("NpyRows reads contiguous row blocks only")
        a, b, _ = key.indices(self.shape[0])
        n = max(0, b - a)
        with open(self.path, "rb") as fh:
            fh.seek(self.offset + a * self.row_items * self.dtype.itemsize)
            block = np.fromfile(fh, dtype=self.dtype, count=n * self.row_items)
        return block.reshape((n, *self.shape[1:]))


def _sidecar(path: Path) -> dict[str, Any]:
    side = path.with_suffix(".json")
    if side.exists():
        try:
            return dict(json.loads(side.read_text()).get("calibration", {}))
        except (ValueError, AttributeError):
            raise FileFormatError(f"{side}: not a halex 4D calibration file (JSON with 'calibration')") from None
    return {}


def _rsciio_4d(path: Path) -> tuple[Any, dict[str, Any]]:
    """A 4D signal read lazily through RosettaSciIO, with its axis calibration (scan Å, detector mrad or 1/Å)."""
    import importlib

    from halex.stem.io import _RSCIIO, _unit_scale

    modules = {**_RSCIIO, ".mib": "quantumdetector", ".h5": "hspy"}
    suffix = path.suffix.lower()
    if suffix not in modules:
        raise FileFormatError(f"{path}: unknown 4D format {path.suffix!r}; halex reads .npy (+ .json calibration) and, "
                              f"through RosettaSciIO, {', '.join(sorted(modules))}")
    try:
        reader = importlib.import_module(f"rsciio.{modules[suffix]}").file_reader
    except ImportError as exc:
        raise FileFormatError(f"{path}: reading {suffix} files needs the Python package {exc.name or 'rsciio'!r}: "
                              "pip install 'halex[stem-io]'") from None
    try:
        signals = reader(str(path), lazy=True)
    except TypeError:  # this reader cannot read lazily: the whole file would be loaded
        check_fits_in_memory(path.stat().st_size, f"{path} (its reader cannot read in chunks)")
        signals = reader(str(path))
    except Exception as exc:
        raise FileFormatError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    four = [s for s in signals if np.ndim(s["data"]) == 4]
    if not four:
        raise InputError(f"{path}: no 4D dataset in the file (shapes {[np.shape(s['data']) for s in signals]})")
    sig = four[0]
    axes = sig.get("axes", [])
    cal: dict[str, Any] = {}
    if len(axes) == 4:
        s_scale = _unit_scale(axes[0].get("units"))
        if s_scale:
            cal["scan_step_A"] = float(axes[0].get("scale", 0)) * s_scale
        unit = str(axes[3].get("units") or "").strip().lower()
        if unit == "mrad":
            cal["detector_mrad"] = float(axes[3].get("scale", 0))
        elif unit in ("1/a", "1/å", "a^-1", "å^-1", "1/nm", "nm^-1"):
            per_A = float(axes[3].get("scale", 0)) / (10.0 if "nm" in unit else 1.0)
            cal["detector_inv_A"] = per_A
    return sig["data"], cal


def read_4d(path: str | os.PathLike, *, scan_step: float | None = None, detector_pixel: float | None = None,
            voltage: float | None = None, semiangle: float | None = None) -> tuple[Any, Calibration]:
    """Open a 4D dataset without loading it, and its calibration.

    Parameters
    ----------
    path
        ``.npy`` (memory-mapped; calibration from a ``.json`` beside it, as
        :func:`simulate_4d` writes, or from the options), or through RosettaSciIO (read
        lazily): py4DSTEM/HyperSpy ``.h5``/``.hspy``/``.emd``, Merlin ``.mib``, DM4.
    scan_step, detector_pixel, voltage, semiangle
        Å, mrad, kV, mrad; override what the file says.

    Returns
    -------
    tuple
        ``(data, calibration)``; ``data`` indexes as ``[scan_y, scan_x, det_y, det_x]``.

    Raises
    ------
    FileFormatError, InputError, CalibrationError
        Unknown format, not 4D, or a calibration value missing (named).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() == ".npy":
        data = NpyRows(path)
        cal = _sidecar(path)
    else:
        data, cal = _rsciio_4d(path)
    if np.ndim(data) != 4 or min(np.shape(data)) < 2:
        raise InputError(f"{path}: a 4D dataset needs shape (scan_y, scan_x, det_y, det_x), each ≥ 2; got "
                         f"{tuple(np.shape(data))}")
    if np.shape(data)[2] != np.shape(data)[3]:
        raise InputError(f"{path}: the detector is {np.shape(data)[2]}×{np.shape(data)[3]} pixels; halex needs square "
                         "diffraction patterns (check the axis order: scan_y, scan_x, det_y, det_x)")
    given = {"scan_step_A": scan_step, "detector_mrad": detector_pixel, "voltage_kV": voltage, "semiangle_mrad": semiangle}
    cal.update({k: v for k, v in given.items() if v is not None})
    if "detector_mrad" not in cal and "detector_inv_A" in cal and cal.get("voltage_kV"):
        cal["detector_mrad"] = 1e3 * cal["detector_inv_A"] * wavelength_A(cal["voltage_kV"])
    c = Calibration(cal.get("scan_step_A"), cal.get("detector_mrad"), cal.get("voltage_kV"), cal.get("semiangle_mrad"))
    return data, c.check()


def center_of_mass(data: Any, cal: Calibration, *, chunk_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Centre of mass of every diffraction pattern (mrad), relative to its scan mean.

    Read ``chunk_rows`` scan rows at a time (default: rows worth about 256 MB), so a
    memory-mapped or lazy dataset is never loaded whole.

    Returns
    -------
    tuple of numpy.ndarray
        ``(com_x, com_y)`` of shape (scan_y, scan_x), in mrad.
    """
    ny, nx, ky, kx = np.shape(data)
    itemsize = 8 * kx * ky * nx  # one scan row as float64
    rows = chunk_rows or max(1, int(256e6 // itemsize))
    gy, gx = np.mgrid[0:ky, 0:kx].astype(np.float64)
    gx -= (kx - 1) / 2.0
    gy -= (ky - 1) / 2.0
    cx, cy = np.empty((ny, nx)), np.empty((ny, nx))
    for r0 in range(0, ny, rows):
        block = np.asarray(data[r0:r0 + rows], dtype=np.float64)  # a dask block computes here
        tot = block.sum(axis=(2, 3))
        tot = np.where(tot > 0, tot, np.nan)
        cx[r0:r0 + rows] = np.einsum("abij,ij->ab", block, gx) / tot
        cy[r0:r0 + rows] = np.einsum("abij,ij->ab", block, gy) / tot
    if not np.isfinite(cx).any():
        raise InputError("every diffraction pattern is empty (zero counts)")
    cx = np.nan_to_num(cx - np.nanmean(cx))
    cy = np.nan_to_num(cy - np.nanmean(cy))
    return cx * cal.detector_mrad, cy * cal.detector_mrad


def icom(com_x: np.ndarray, com_y: np.ndarray, cal: Calibration) -> np.ndarray:
    """Integrated centre of mass: the phase φ ⊛ |P|² (rad) from the CoM field (module docstring)."""
    lam = wavelength_A(cal.voltage_kV)
    # CoM angle (rad) / λ = spatial frequency (1/Å); ∇φ = 2π × that
    gx = 2 * np.pi * 1e-3 * np.asarray(com_x) / lam
    gy = 2 * np.pi * 1e-3 * np.asarray(com_y) / lam
    ny, nx = gx.shape
    qy = np.fft.fftfreq(ny, d=cal.scan_step_A)[:, None]
    qx = np.fft.fftfreq(nx, d=cal.scan_step_A)[None, :]
    q2 = qx**2 + qy**2
    q2[0, 0] = 1.0
    phi = np.fft.ifft2(-1j * (qx * np.fft.fft2(gx) + qy * np.fft.fft2(gy)) / (2 * np.pi * q2))
    out = phi.real
    return out - out.mean()


def ddpc(com_x: np.ndarray, com_y: np.ndarray, cal: Calibration) -> np.ndarray:
    """Divergence of the CoM field (mrad/Å): ∝ the projected charge density (negative at nuclei)."""
    return np.gradient(com_x, cal.scan_step_A, axis=1) + np.gradient(com_y, cal.scan_step_A, axis=0)


def _phase_grid(atoms, zone: str, dx: float, margin: float) -> tuple[np.ndarray, float, float]:
    """The projected phase of ``atoms`` on a grid of ``dx`` Å (module docstring), with the grid origin (h, v)."""
    from scipy import ndimage

    from halex.stem.simulate import zone_frame

    beam, ex, up = zone_frame(zone)
    pos = atoms.get_positions()
    h, v = pos @ ex, -(pos @ up)  # image y down
    h0, v0 = h.min() - margin, v.min() - margin
    nx = int(np.ceil((h.max() + margin - h0) / dx)) + 1
    ny = int(np.ceil((v.max() + margin - v0) / dx)) + 1
    grid = np.zeros((ny, nx))
    w = PHASE_PER_ATOM * (atoms.get_atomic_numbers() / 82.0) ** 0.7
    fx, fy = (h - h0) / dx, (v - v0) / dx
    ix, iy = np.floor(fx).astype(int), np.floor(fy).astype(int)
    ax, ay = fx - ix, fy - iy
    for ddx, ddy, ww in ((0, 0, (1 - ax) * (1 - ay)), (1, 0, ax * (1 - ay)), (0, 1, (1 - ax) * ay), (1, 1, ax * ay)):
        np.add.at(grid, (iy + ddy, ix + ddx), w * ww)
    s = 0.25 / dx
    grid = ndimage.gaussian_filter(grid, s, mode="constant") * (2 * np.pi * s * s)  # peak w per atom
    return grid, h0, v0


def _probe(n: int, dx: float, voltage_kV: float, semiangle_mrad: float, defocus_A: float = 0.0) -> np.ndarray:
    """Aberration-free probe of ``n × n`` pixels of ``dx`` Å, centred, Σ|P|² = 1."""
    lam = wavelength_A(voltage_kV)
    k = np.fft.fftfreq(n, d=dx)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    aperture = (np.sqrt(k2) * lam <= 1e-3 * semiangle_mrad).astype(complex)
    aperture *= np.exp(-1j * np.pi * lam * defocus_A * k2)
    p = np.fft.fftshift(np.fft.ifft2(aperture))
    return p / np.sqrt((np.abs(p) ** 2).sum())


def simulate_4d(atoms, *, zone: str = "001", voltage_kV: float = 200.0, semiangle_mrad: float = 14.0,
                scan_step_A: float = 0.2, dose: float | None = 1e5, region_A: tuple[float, float, float, float] | None = None,
                window: int = 128, dx: float = 0.1, seed: int = 0) -> tuple[np.ndarray, Calibration, dict[str, Any]]:
    """4D-STEM data of a model (module docstring), with the calibration and the truth.

    Parameters
    ----------
    atoms
        The model (ASE Atoms).
    zone
        ``"001"`` or ``"101"`` (:func:`halex.stem.simulate.zone_frame`).
    voltage_kV, semiangle_mrad
        Beam voltage and probe semi-angle.
    scan_step_A
        Probe step (Å); rounded to a whole number of ``dx``.
    dose
        Electrons per Å² (Poisson counts), or None for the noiseless expectation.
    region_A
        ``(h0, v0, width, height)`` of the scan in the projected frame (Å, image y down);
        default the whole model.
    window, dx
        Simulation window (pixels) and sampling (Å) of the probe and the phase.
    seed
        Noise seed.

    Returns
    -------
    tuple
        ``(data[scan_y, scan_x, det_y, det_x] float32, calibration, truth)``; ``truth``
        holds ``phase`` (the projected phase at the scan positions, rad), ``phase_probe``
        (the same convolved with the probe intensity: what iCoM measures), ``h0_A``,
        ``v0_A`` (the first scan position in the projected frame).
    """
    from scipy.signal import fftconvolve

    Calibration(float(scan_step_A), 1.0, float(voltage_kV), float(semiangle_mrad)).check()  # refuse implausible inputs before simulating
    step = max(1, int(round(scan_step_A / dx)))
    margin = window * dx / 2 + 1.0
    phase, gh0, gv0 = _phase_grid(atoms, zone, dx, margin)
    ny_g, nx_g = phase.shape
    if region_A is None:
        region_A = (gh0 + margin, gv0 + margin, (nx_g - 1) * dx - 2 * margin, (ny_g - 1) * dx - 2 * margin)
    h0, v0, w, hgt = region_A
    i0, j0 = int(round((v0 - gv0) / dx)), int(round((h0 - gh0) / dx))
    nsy, nsx = int(hgt / (step * dx)) + 1, int(w / (step * dx)) + 1
    half = window // 2
    if i0 - half < 0 or j0 - half < 0 or i0 + (nsy - 1) * step + half > ny_g or j0 + (nsx - 1) * step + half > nx_g:
        raise InputError("the scan region and probe window do not fit inside the model's projection plus margin")
    lam = wavelength_A(voltage_kV)
    dk = 1.0 / (window * dx)
    nk = int(np.ceil(2e-3 * semiangle_mrad / lam / dk)) + 1
    c = window // 2
    probe = _probe(window, dx, voltage_kV, semiangle_mrad)
    t = np.exp(1j * phase)
    rng = np.random.default_rng(seed)
    out = np.empty((nsy, nsx, 2 * nk + 1, 2 * nk + 1), np.float32)
    counts = None if dose is None else dose * (step * dx) ** 2
    for a in range(nsy):
        r = i0 + a * step
        wins = np.stack([t[r - half:r + half, j0 + b * step - half:j0 + b * step + half] for b in range(nsx)])
        dp = np.abs(np.fft.fftshift(np.fft.fft2(probe[None] * wins), axes=(1, 2))) ** 2
        dp = dp[:, c - nk:c + nk + 1, c - nk:c + nk + 1]
        out[a] = dp if counts is None else rng.poisson(dp * counts)
    sel = (slice(i0, i0 + (nsy - 1) * step + 1, step), slice(j0, j0 + (nsx - 1) * step + 1, step))
    blurred = fftconvolve(phase, np.abs(probe) ** 2, mode="same")
    truth = {"phase": phase[sel], "phase_probe": blurred[sel], "h0_A": h0, "v0_A": v0}
    return out, Calibration(step * dx, 1e3 * dk * lam, voltage_kV, semiangle_mrad), truth


def write_4d(path: str | os.PathLike, data: np.ndarray, cal: Calibration, extra: dict[str, Any] | None = None) -> Path:
    """Write ``data`` as ``.npy`` with its calibration in a ``.json`` beside it (both atomically)."""
    from halex.io import atomic_output

    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise InputError(f"4D data is written as .npy (with a .json calibration beside it), not {path.suffix!r}")
    with atomic_output(path, "wb") as fh:
        np.save(fh, data, allow_pickle=False)
    with atomic_output(path.with_suffix(".json"), "w") as fh:
        json.dump({"calibration": asdict(cal), **(extra or {})}, fh, indent=1)
    return path


def phase_figure(com_x: np.ndarray, com_y: np.ndarray, phase: np.ndarray, div: np.ndarray, cal: Calibration,
                 path: str | os.PathLike) -> Path:
    """CoM x, CoM y (mrad), iCoM phase (rad) and dDPC panels with a common scale in Å."""
    import matplotlib

    matplotlib.use("Agg")
    from halex.plotting.figures import new_figure, save_figure

    ny, nx = phase.shape
    ext = (0, nx * cal.scan_step_A, ny * cal.scan_step_A, 0)
    fig, axes = new_figure(1, 4, figsize=(15, 4))
    for ax, img, title, cmap in zip(axes, (com_x, com_y, phase, div),
                                    ("CoM x (mrad)", "CoM y (mrad)", "iCoM phase (rad)", "dDPC (mrad/Å)"),
                                    ("RdBu_r", "RdBu_r", "gray", "gray")):
        im = ax.imshow(img, cmap=cmap, extent=ext)
        ax.set_title(title)
        ax.set_xlabel("x (Å)")
        fig.colorbar(im, ax=ax, shrink=0.8)
    axes[0].set_ylabel("y (Å)")
    return save_figure(fig, path)


def ptycho_figure(phase: np.ndarray, pixel_A: float, errors: list[float], path: str | os.PathLike) -> Path:
    """The ptychographic phase (rad, axes in Å) and the reconstruction error per iteration."""
    import matplotlib.pyplot as plt

    from halex.plotting.figures import save_figure

    fig, (ax, ax_err) = plt.subplots(1, 2, figsize=(9.0, 4.0), width_ratios=(1.4, 1))
    ny, nx = phase.shape
    im = ax.imshow(phase, cmap="gray", extent=(0, nx * pixel_A, ny * pixel_A, 0))
    fig.colorbar(im, ax=ax, label="phase (rad)")
    ax.set(xlabel="x (Å)", ylabel="y (Å)", title="ptychographic phase")
    ax_err.plot(np.arange(1, len(errors) + 1), errors, "o-")
    ax_err.set(xlabel="iteration", ylabel="py4DSTEM error", title="convergence")
    fig.tight_layout()
    return save_figure(fig, path)
