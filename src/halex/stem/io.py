"""STEM images at the edge: read TIFF, DM3/DM4, Velox and Berkeley EMD, FEI TIA, HyperSpy and
NumPy files with their pixel calibration; write calibrated TIFF atomically.

Calibration policy: the pixel size comes from the file's metadata or from the user,
never from a guess. A file without a usable calibration and no ``pixel_size`` given is
a :class:`~halex.errors.CalibrationError`; a given ``pixel_size`` that disagrees with the
file's by more than 2 % is an error too (one of them is wrong), unless
``override=True``. Pixel sizes outside 0.005–5 Å are rejected as a likely unit mistake.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from halex.errors import CalibrationError, FileFormatError, InputError
from halex.io import atomic_output

__all__ = ["StemImage", "read_image", "write_image", "check_image", "IMAGE_KINDS"]

log = logging.getLogger(__name__)

IMAGE_KINDS = ("haadf", "phase")
#: length units found in microscope metadata, in Å
_UNITS_A = {"a": 1.0, "å": 1.0, "angstrom": 1.0, "angstroms": 1.0, "\u212b": 1.0, "nm": 10.0, "n_m": 10.0,
            "nanometer": 10.0, "nanometers": 10.0, "nanometre": 10.0, "nanometres": 10.0, "pm": 0.01, "p_m": 0.01,
            "µm": 1e4, "um": 1e4, "u_m": 1e4, "micron": 1e4, "\u03bcm": 1e4, "m": 1e10, "cm": 1e8, "mm": 1e7}
#: RosettaSciIO reader module by file suffix
_RSCIIO = {".dm3": "digitalmicrograph", ".dm4": "digitalmicrograph", ".emd": "emd", ".ser": "tia", ".emi": "tia",
           ".hspy": "hspy", ".hdf5": "hspy", ".zspy": "zspy"}
_PIXEL_RANGE_A = (0.005, 5.0)


@dataclass(frozen=True)
class StemImage:
    """A calibrated 2D image.

    Attributes
    ----------
    data
        2D float64 array, row index = y (down), column index = x (right); pixel centres at
        integer coordinates.
    pixel_size
        Pixel size in Å (square pixels).
    kind
        ``"haadf"`` (counts, Poisson statistics) or ``"phase"`` (radians, Gaussian noise).
    source
        Where it came from (file path or ``"simulated"``).
    metadata
        Anything else worth keeping (dose, zone axis, probe, ...).
    """

    data: np.ndarray
    pixel_size: float
    kind: str = "haadf"
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape  # type: ignore[return-value]


def check_image(data: Any, *, name: str = "image") -> np.ndarray:
    """Return ``data`` as a finite 2D float64 array or raise :class:`InputError`."""
    arr = np.asarray(data)
    if arr.dtype.kind not in "iufb":
        raise InputError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    arr = np.squeeze(arr.astype(np.float64))
    if arr.ndim != 2:
        raise InputError(f"{name}: expected a 2D image, got shape {np.shape(data)}; pick one frame of a stack first")
    if min(arr.shape) < 16:
        raise InputError(f"{name}: image of shape {arr.shape} is too small (need at least 16×16 pixels)")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InputError(f"{name}: {int(bad.sum())} pixel(s) are NaN or infinite; crop or inpaint them first")
    if np.ptp(arr) == 0:
        raise InputError(f"{name}: image is constant (no contrast)")
    return arr


def _check_kind(kind: str) -> str:
    if kind not in IMAGE_KINDS:
        raise InputError(f"unknown image kind {kind!r}; choose one of {', '.join(IMAGE_KINDS)}")
    return kind


def _unit_scale(unit: Any) -> float | None:
    u = str(unit or "").strip().lower().replace("\\u00c5", "å")
    return _UNITS_A.get(u)


def _resolve_pixel(meta_A: float | None, given: float | None, path: str, override: bool) -> float:
    if given is not None:
        if not np.isfinite(given) or given <= 0:
            raise CalibrationError(f"pixel size must be a positive number of Å, got {given!r}")
        if meta_A is not None and abs(given - meta_A) > 0.02 * meta_A and not override:
            raise CalibrationError(
                f"{path}: the given pixel size {given:g} Å disagrees with the file's calibration {meta_A:.5g} Å; "
                "drop --pixel-size to use the file's, or pass --override-calibration to use yours")
        px = float(given)
    elif meta_A is None:
        raise CalibrationError(f"{path}: the file carries no pixel calibration; give the pixel size in Å "
                               "(--pixel-size / pixel_size=)")
    else:
        px = float(meta_A)
    lo, hi = _PIXEL_RANGE_A
    if not lo <= px <= hi:
        raise CalibrationError(f"{path}: pixel size {px:g} Å is outside {lo}–{hi} Å (a unit mistake? the value "
                               "must be in Å, e.g. 0.1 for 10 pm pixels)")
    return px


def _read_tiff(path: Path) -> tuple[np.ndarray, float | None, dict]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        data = page.asarray()
        meta: dict[str, Any] = {}
        ij = tif.imagej_metadata or {}
        unit = ij.get("unit")
        xres = page.tags.get("XResolution")
        yres = page.tags.get("YResolution")
        px = None
        if xres is not None and yres is not None:
            xr = xres.value[0] / xres.value[1] if xres.value[1] else 0.0
            yr = yres.value[0] / yres.value[1] if yres.value[1] else 0.0
            # only an explicit length unit (ImageJ/Fiji "unit") makes XResolution a calibration;
            # "72 dpi" from an office program is not one
            scale = _unit_scale(unit) if unit else None
            if scale is not None and xr > 0 and yr > 0:
                px_x, px_y = scale / xr, scale / yr
                if abs(px_x - px_y) > 1e-3 * px_x:
                    raise CalibrationError(f"{path}: non-square pixels ({px_x:g} × {px_y:g} Å) are not supported; "
                                           "resample the image to square pixels")
                px = px_x
        meta["imagej"] = {k: v for k, v in ij.items() if isinstance(v, (str, int, float))}
    return data, px, meta


def _check_zarr(path: Path) -> None:
    """RosettaSciIO reads .zspy with zarr 2 only; abTEM (the ``multislice`` extra) needs zarr >= 3.1."""
    if path.suffix.lower() != ".zspy":
        return
    try:
        import zarr
    except ImportError:
        return
    if int(zarr.__version__.split(".")[0]) >= 3:
        raise FileFormatError(f"{path}: RosettaSciIO reads .zspy files with zarr 2, and zarr {zarr.__version__} is "
                              "installed (abTEM, the multislice extra, needs zarr >= 3.1): read it in an environment "
                              "with pip install 'zarr<3', or save it as .hspy")


def _read_rsciio(path: Path) -> tuple[np.ndarray, float | None, dict]:
    import importlib

    suffix = path.suffix.lower()
    try:
        file_reader = importlib.import_module(f"rsciio.{_RSCIIO[suffix]}").file_reader
    except ImportError as exc:
        missing = exc.name or "rsciio"
        raise FileFormatError(f"{path}: reading {suffix} files needs the Python package {missing!r}, which is not "
                              f"installed: pip install 'halex[stem-io]' (RosettaSciIO, h5py, zarr), or save the image "
                              "as TIFF with its calibration") from None
    _check_zarr(path)
    try:
        signals = file_reader(str(path))
    except Exception as exc:
        raise FileFormatError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    images = [s for s in signals if np.squeeze(np.asarray(s["data"])).ndim == 2]
    if not images:
        shapes = [np.shape(s["data"]) for s in signals]
        raise FileFormatError(f"{path}: no 2D image in the file (signals of shape {shapes})")
    sig = images[0]
    axes = [a for a in sig.get("axes", []) if a.get("size", 2) > 1]
    px = None
    if len(axes) >= 2:
        scales = []
        for ax in axes[-2:]:
            unit_scale = _unit_scale(ax.get("units"))
            scales.append(None if unit_scale is None else float(ax.get("scale", 0)) * unit_scale)
        if all(s is not None and s > 0 for s in scales):
            if abs(scales[0] - scales[1]) > 1e-3 * scales[0]:
                raise CalibrationError(f"{path}: non-square pixels ({scales[0]:g} × {scales[1]:g} Å) are not supported")
            px = scales[0]
    meta = {"signal": str(sig.get("metadata", {}).get("General", {}).get("title", "")), "n_signals": len(signals)}
    if px is None and len(axes) >= 2 and not any(ax.get("units") for ax in axes[-2:]):
        bare = float(axes[-1].get("scale", 1.0))
        if bare != 1.0:
            meta["scale_without_unit"] = bare
    return np.asarray(sig["data"]), px, meta


def read_image(path: str | os.PathLike, *, pixel_size: float | None = None, kind: str | None = None,
               override: bool = False) -> StemImage:
    """Read a STEM image with its calibration.

    Parameters
    ----------
    path
        ``.tif``/``.tiff`` (ImageJ or OME calibration); through RosettaSciIO ``.dm3``/``.dm4``,
        ``.emd`` (Velox or Berkeley; unit ``n_m`` understood), FEI TIA ``.ser``/``.emi``,
        HyperSpy ``.hspy``/``.hdf5``/``.zspy``; or ``.npy`` (no calibration: give ``pixel_size``).
    pixel_size
        Pixel size in Å; required when the file carries none.
    kind
        ``"haadf"`` or ``"phase"``; default: what the file says (the ``kind`` tag halex
        writes into its TIFFs), else ``"haadf"``. A ``kind`` that contradicts the file's
        tag is used, with a warning.
    override
        Use ``pixel_size`` even when it disagrees with the file's calibration.

    Returns
    -------
    StemImage
        Data as float64 and the pixel size in Å.

    Raises
    ------
    FileFormatError, CalibrationError, InputError
    """
    if kind is not None:
        _check_kind(kind)
    path = Path(path)
    suffix = path.suffix.lower()
    if not (path.is_file() or (suffix == ".zspy" and path.is_dir())):  # a .zspy is a zarr folder
        raise FileFormatError(f"image file {str(path)!r} does not exist")
    try:
        if suffix in (".tif", ".tiff"):
            data, px_meta, meta = _read_tiff(path)
        elif suffix in _RSCIIO:
            data, px_meta, meta = _read_rsciio(path)
        elif suffix == ".npy":
            data, px_meta, meta = np.load(path, allow_pickle=False), None, {}
        else:
            raise FileFormatError(f"{path}: unknown image format {suffix!r}; halex reads .tif/.tiff, "
                                  f"{', '.join(sorted(_RSCIIO))} (RosettaSciIO) and .npy")
    except (FileFormatError, CalibrationError):
        raise
    except Exception as exc:
        raise FileFormatError(f"cannot read image {str(path)!r}: {type(exc).__name__}: {exc}") from None
    arr = check_image(data, name=str(path))
    if px_meta is None and pixel_size is None and "scale_without_unit" in meta:
        raise CalibrationError(f"{path}: the file's axes have a scale ({meta['scale_without_unit']:g} per pixel) but no "
                               "unit; give the pixel size in Å (--pixel-size / pixel_size=), e.g. "
                               f"{10 * meta['scale_without_unit']:g} if the scale is in nm")
    px = _resolve_pixel(px_meta, pixel_size, str(path), override)
    if px_meta is None:
        log.info("%s: no calibration in the file, using the given pixel size %.4g Å", path, px)
    return StemImage(arr, px, _resolve_kind(kind, meta, str(path)), str(path), meta)


def _resolve_kind(kind: str | None, meta: dict[str, Any], source: str) -> str:
    """The image kind: the caller's, else the file's ``kind`` tag, else HAADF."""
    tagged = str(meta.get("imagej", {}).get("kind", "")).lower() or None
    if tagged not in (None, *IMAGE_KINDS):
        tagged = None
    if kind is None:
        return tagged or "haadf"
    if tagged and tagged != kind:
        warnings.warn(f"{source} is tagged as a {tagged} image but is analysed as {kind}, as asked", stacklevel=3)
    return kind


def write_image(path: str | os.PathLike, image: StemImage) -> Path:
    """Write ``image`` as a 32-bit float ImageJ TIFF calibrated in nm (opens calibrated in Fiji).

    Parameters
    ----------
    path
        ``.tif``/``.tiff`` (calibrated) or ``.npy`` (data only).
    image
        The image; its ``kind`` is kept in the TIFF description.

    Returns
    -------
    Path

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> img = StemImage(np.arange(1024.0).reshape(32, 32), 0.137, "haadf", "example")
    >>> path = write_image(pathlib.Path(tempfile.mkdtemp()) / "x.tif", img)
    >>> round(read_image(path).pixel_size, 6)
    0.137
    """
    import tifffile

    path = Path(path)
    px_nm = image.pixel_size / 10.0
    meta: dict[str, Any] = {"unit": "nm", "kind": image.kind}
    m = image.metadata
    if "origin_h_A" in m:  # simulated: where the model's projection sits, for --truth scoring
        meta.update(halex_origin_h=m["origin_h_A"], halex_origin_v=m["origin_v_A"], halex_zone=f"[{m.get('zone', '')}]")
    import io

    buf = io.BytesIO()
    tifffile.imwrite(buf, image.data.astype(np.float32), imagej=True, resolution=(1.0 / px_nm, 1.0 / px_nm),
                     metadata=meta)
    with atomic_output(path, "wb") as fh:
        fh.write(buf.getvalue())
    return path
