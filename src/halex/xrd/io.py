"""Powder patterns at the edge: read measured scans, write calculated ones.

Readers
-------
* two- or three-column text (``.xy``, ``.xye``, ``.csv``, ``.dat``, ``.txt``): 2θ in
  degrees, intensity, optional standard uncertainty; comment lines (``#``, ``!``,
  ``;``) and non-numeric header lines are skipped, the delimiter (comma, semicolon,
  tab or blanks) is detected;
* PANalytical ``.xrdml`` (XRDMeasurement 1.x/2.x): the first ``scan``'s 2θ positions
  (start/end or an explicit list), its ``counts`` or ``intensities`` (multiplied by
  ``beamAttenuationFactors`` when present) and the wavelengths of ``usedWavelength``
  (Kα1 alone when its Kα2/Kα1 ratio is 0), which the fit then uses;
* Bruker DIFFRAC-plus RAW1.01 (``.raw`` starting with ``RAW1.01``): first range, with the
  file's Kα1/Kα2/ratio; other Bruker versions and BRML are refused with what to export;
* GSAS STD, ESD and FXYE constant-step files (written here from the GSAS manual: the format
  is a few fixed-width lines, and no maintained PyPI package reads it without pulling in
  a whole refinement program).

A scan whose 2θ runs downwards is reversed; an axis that is not monotonic, NaNs,
negative intensities or fewer than 10 points raise :class:`~halex.errors.FileFormatError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from halex.errors import FileFormatError, InputError
from halex.io import descending_axis, read_numeric_rows

__all__ = ["Pattern", "read_pattern", "write_pattern", "check_pattern"]


@dataclass(frozen=True)
class Pattern:
    """A powder pattern: 2θ (degrees, increasing), intensity and optional σ (same units).

    Attributes
    ----------
    two_theta_deg
        Scattering angles 2θ (degrees), strictly increasing.
    intensity
        Counts (or any intensity unit).
    sigma
        Standard error of each intensity (same unit), if the file gives it (``.xye``).
    meta
        Source file, radiation and anything the file's header says.
    """

    two_theta_deg: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def check_pattern(two_theta_deg: np.ndarray, intensity: np.ndarray, sigma: np.ndarray | None = None, *,
                  source: str = "pattern", allow_negative: bool = False) -> Pattern:
    """Validate arrays and return a :class:`Pattern` with 2θ increasing.

    Parameters
    ----------
    two_theta_deg, intensity
        2θ (degrees, either order) and intensities of equal length.
    sigma
        Standard errors of the intensities, positive.
    source
        Name used in error messages.
    allow_negative
        Accept negative intensities (background-subtracted data).

    Returns
    -------
    Pattern

    Raises
    ------
    FileFormatError
        Mismatched lengths, fewer than 10 points, non-finite values, a 2θ axis that is
        not strictly monotonic or outside (0, 180)°, negative intensities (unless
        ``allow_negative``), non-positive σ.

    Examples
    --------
    >>> p = check_pattern(np.linspace(40, 20, 11), np.arange(11.0))
    >>> float(p.two_theta_deg[0]), float(p.intensity[0])
    (20.0, 10.0)
    """
    x = np.asarray(two_theta_deg, float).ravel()
    y = np.asarray(intensity, float).ravel()
    s = None if sigma is None else np.asarray(sigma, float).ravel()
    if x.shape != y.shape or (s is not None and s.shape != x.shape):
        raise FileFormatError(f"{source}: 2θ, intensity (and σ) must have the same length, got {x.size}, {y.size}"
                              + ("" if s is None else f", {s.size}"))
    if x.size < 10:
        raise FileFormatError(f"{source}: a powder pattern needs at least 10 points, got {x.size}")
    for name, arr in (("2θ", x), ("intensity", y), ("σ", s)):
        if arr is not None and not np.all(np.isfinite(arr)):
            raise FileFormatError(
                f"{source}: {name} column holds NaN or infinite values (row {int(np.flatnonzero(~np.isfinite(arr))[0]) + 1})"
            )
    if descending_axis(x, name="2θ", source=source):
        x, y = x[::-1], y[::-1]
        s = None if s is None else s[::-1]
    if x[0] <= 0 or x[-1] >= 180:
        raise FileFormatError(f"{source}: 2θ must lie in (0, 180) degrees, got {x[0]:g}–{x[-1]:g}")
    if not allow_negative and np.any(y < 0):
        raise FileFormatError(
            f"{source}: negative intensities (first at 2θ = {x[np.argmax(y < 0)]:g}°); "
            "give raw counts, not a background-subtracted pattern"
        )
    if s is not None and np.any(s <= 0):
        raise FileFormatError(f"{source}: the σ column must be positive")
    return Pattern(x, y, s)


def _read_text(path: Path) -> Pattern:
    rows, _ = read_numeric_rows(path)
    if not rows:
        raise FileFormatError(f"{str(path)!r}: no numeric rows; expected columns 2θ (deg), intensity[, σ]")
    ncol = {len(r) for r in rows}
    if len(ncol) != 1 or min(ncol) < 2:
        raise FileFormatError(f"{str(path)!r}: rows have {sorted(ncol)} columns; expected 2 or 3 (2θ, intensity, σ)")
    a = np.array(rows)
    return check_pattern(a[:, 0], a[:, 1], a[:, 2] if a.shape[1] >= 3 else None, source=repr(str(path)))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _read_xrdml(path: Path) -> Pattern:
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise FileFormatError(f"{str(path)!r}: not a valid XRDML (XML) file: {exc}") from None
    scan = next((el for el in root.iter() if _local(el.tag) == "scan"), None)
    if scan is None:
        raise FileFormatError(f"{str(path)!r}: XRDML file has no <scan>")
    dp = next((el for el in scan.iter() if _local(el.tag) == "dataPoints"), None)
    if dp is None:
        raise FileFormatError(f"{str(path)!r}: XRDML scan has no <dataPoints>")
    counts = atten = None
    x = None
    for el in dp:
        tag = _local(el.tag)
        if tag in ("counts", "intensities") and el.text:
            counts = np.array(el.text.split(), float)
        elif tag == "beamAttenuationFactors" and el.text:
            atten = np.array(el.text.split(), float)
    if counts is None:
        raise FileFormatError(f"{str(path)!r}: XRDML <dataPoints> holds no <counts> or <intensities>")
    for el in dp:
        if _local(el.tag) == "positions" and el.get("axis", "").lower() == "2theta":
            sub = {_local(c.tag): c.text for c in el}
            if "listPositions" in sub and sub["listPositions"]:
                x = np.array(sub["listPositions"].split(), float)
            elif "startPosition" in sub and "endPosition" in sub:
                x = np.linspace(float(sub["startPosition"]), float(sub["endPosition"]), counts.size)
            elif "commonPosition" in sub:
                raise FileFormatError(f"{str(path)!r}: 2θ is fixed in this scan (not a 2θ scan)")
    if x is None:
        raise FileFormatError(f"{str(path)!r}: XRDML scan has no 2Theta <positions>")
    if atten is not None:
        if atten.size != counts.size:
            raise FileFormatError(f"{str(path)!r}: {atten.size} attenuation factors for {counts.size} counts")
        counts = counts * atten
    meta: dict[str, Any] = {}
    for el in root.iter():
        t = _local(el.tag)
        if t in ("kAlpha1", "kAlpha2", "ratioKAlpha2KAlpha1") and el.text:
            meta[t] = float(el.text)
    radiation = declared_radiation(meta.get("kAlpha1"), meta.get("kAlpha2"), meta.get("ratioKAlpha2KAlpha1"))
    if radiation is not None:
        meta["radiation"] = radiation
    pat = check_pattern(x, counts, source=repr(str(path)))
    return Pattern(pat.two_theta_deg, pat.intensity, None, meta)


def declared_radiation(ka1: float | None, ka2: float | None, ratio: float | None) -> tuple[tuple[float, float], ...] | None:
    """The lines a pattern file declares (XRDML ``<usedWavelength>``, Bruker RAW header):
    Kα1 alone when the Kα2/Kα1 ratio is 0 (a monochromated scan), else Kα1 and Kα2 with that ratio.

    Parameters
    ----------
    ka1, ka2
        Wavelengths (Å) as the file gives them (None if absent).
    ratio
        Kα2/Kα1 intensity ratio (None if absent: Kα1 only).

    Returns
    -------
    tuple or None
        ``((λ_Å, weight), ...)``; None when the file names no Kα1.

    Examples
    --------
    >>> declared_radiation(1.540598, 1.544426, 0.0)
    ((1.540598, 1.0),)
    """
    if ka1 is None:
        return None
    ratio = float(ratio or 0.0)
    if ratio > 0 and ka2:
        return ((float(ka1), 1.0), (float(ka2), ratio))
    return ((float(ka1), 1.0),)


#: the pattern formats :func:`read_pattern` reads, by suffix
TEXT_SUFFIXES = (".xy", ".xye", ".csv", ".dat", ".txt")
GSAS_SUFFIXES = (".gsa", ".gsas", ".gss", ".xra", ".fxye", ".raw")
READABLE = "2θ/intensity text (" + ", ".join(TEXT_SUFFIXES) + "), PANalytical .xrdml, Bruker RAW1.01 .raw, " + \
    "GSAS STD/ESD/FXYE (" + ", ".join(GSAS_SUFFIXES) + ")"


def _gsas_bank(lines: list[str], path: Path) -> tuple[int, list[str], str]:
    """Index of the first ``BANK`` line, its fields and the data format (STD, ESD or FXYE)."""
    for i, line in enumerate(lines[:50]):
        if line.startswith("BANK"):
            f = line.split()
            if len(f) < 7:
                break
            kind = f[-1].upper() if f[-1].upper() in ("STD", "ESD", "FXYE", "ALT") else "STD"
            if f[4].upper() not in ("CONST", "CONS"):
                raise FileFormatError(f"{str(path)!r}: GSAS binning {f[4]} is not supported (constant-step "
                                      "CONST/CONS 2θ scans only; time-of-flight data are not X-ray patterns)")
            if kind == "ALT":
                raise FileFormatError(f"{str(path)!r}: GSAS ALT format is not supported (STD, ESD, FXYE)")
            return i, f, kind
    raise FileFormatError(f"{str(path)!r}: no GSAS 'BANK' line in its first 50 lines; not a GSAS powder file "
                          f"(halex reads {READABLE})")


def _read_gsas(path: Path) -> Pattern:
    """GSAS powder data (Larson & Von Dreele, GSAS manual, LAUR 86-748): a title line, a
    ``BANK ibank nchan nrec CONST start step 0 0 FMT`` line (2θ in centidegrees), then in STD
    10 fields of 8 characters (2-digit counter number NCTR, counts; σ = √(counts/NCTR)), in ESD
    5 pairs (intensity, σ), in FXYE free-format rows 2θ (centidegrees), intensity, σ."""
    lines = path.read_text(errors="replace").splitlines()
    i, f, kind = _gsas_bank(lines, path)
    nchan, start, step = int(f[2]), float(f[5]) / 100, float(f[6]) / 100
    body = [ln for ln in lines[i + 1:] if ln.strip() and not ln.startswith("BANK")]
    if kind == "FXYE":
        a = np.array([ln.split()[:3] for ln in body], float)
        x, y, sig = a[:, 0] / 100, a[:, 1], a[:, 2]
    elif kind == "ESD":
        vals = np.array([float(ln[j:j + 8]) for ln in body for j in range(0, 80, 8) if ln[j:j + 8].strip()])
        y, sig = vals[0::2], vals[1::2]
        x = start + step * np.arange(y.size)
    else:
        fields = [ln[j:j + 8] for ln in body for j in range(0, 80, 8) if ln[j:j + 8].strip()]
        nctr = np.array([int(fd[:2]) if fd[:2].strip() else 1 for fd in fields], float)
        y = np.array([float(fd[2:]) for fd in fields])
        sig = np.sqrt(np.maximum(y, 1.0) / np.maximum(nctr, 1.0))
        x = start + step * np.arange(y.size)
    if y.size < nchan:
        raise FileFormatError(f"{str(path)!r}: GSAS bank announces {nchan} points but holds {y.size}")
    x, y, sig = x[:nchan], y[:nchan], sig[:nchan]
    pat = check_pattern(x, y, sig, source=repr(str(path)))
    return Pattern(pat.two_theta_deg, pat.intensity, pat.sigma, {"title": lines[0].strip(), "format": f"GSAS {kind}"})


def _read_bruker_raw(path: Path) -> Pattern:
    """Bruker/Siemens DIFFRAC-plus RAW version 3 (``RAW1.01``), from the field offsets of
    Bruker's published file description: a 712-byte file header (number of ranges at byte 12;
    Kα1, Kα2 and the Kα2/Kα1 ratio as float64 at 624, 632, 648), then per range a 304-byte
    header (steps at 4, start 2θ at 16, step at 176, supplementary-header length at 256)
    followed by the supplementary headers and the counts as float32. The first range is read."""
    import struct

    raw = path.read_bytes()
    if len(raw) < 712 + 304:
        raise FileFormatError(f"{str(path)!r}: too short for a Bruker RAW1.01 file")
    n_ranges = struct.unpack_from("<I", raw, 12)[0]
    ka1, ka2 = struct.unpack_from("<dd", raw, 624)
    ratio = struct.unpack_from("<d", raw, 648)[0]
    header_len, steps = struct.unpack_from("<II", raw, 712)
    if header_len != 304 or n_ranges < 1:
        raise FileFormatError(f"{str(path)!r}: range header of {header_len} bytes ({n_ranges} ranges); "
                              "not a Bruker RAW1.01 scan halex can read")
    start = struct.unpack_from("<d", raw, 712 + 16)[0]
    step = struct.unpack_from("<d", raw, 712 + 176)[0]
    supplementary = struct.unpack_from("<I", raw, 712 + 256)[0]
    offset = 712 + 304 + supplementary
    if offset + 4 * steps > len(raw):
        raise FileFormatError(f"{str(path)!r}: the range announces {steps} steps the file does not hold")
    y = np.frombuffer(raw, "<f4", steps, offset).astype(float)
    x = start + step * np.arange(steps)
    meta: dict[str, Any] = {"format": "Bruker RAW1.01", "n_ranges": int(n_ranges)}
    if 0.1 < ka1 < 5:
        meta["radiation"] = declared_radiation(ka1, ka2, ratio)
    pat = check_pattern(x, y, source=repr(str(path)))
    return Pattern(pat.two_theta_deg, pat.intensity, None, meta)


def read_pattern(path: str | os.PathLike) -> Pattern:
    """Read a measured powder pattern: text, PANalytical XRDML or GSAS (see :data:`READABLE`).

    Parameters
    ----------
    path
        Two or three columns (2θ in degrees, intensity[, σ]) after any header lines
        (``.xy``, ``.xye``, ``.csv``, ``.dat``, ``.txt``), a PANalytical XRDML file, or a GSAS
        STD/ESD/FXYE constant-step file (``.gsa``, ``.gsas``, ``.gss``, ``.xra``, ``.fxye``,
        ``.raw``). Any other suffix, and Bruker binary RAW, is refused with the list of
        readable formats.

    Returns
    -------
    Pattern

    Raises
    ------
    FileFormatError
        The file cannot be read as a pattern.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"pattern file {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise FileFormatError(f"pattern file {str(path)!r} is empty")
    suffix = path.suffix.lower()
    if suffix == ".gz":
        raise FileFormatError(f"{str(path)!r}: decompress the pattern first (halex reads {READABLE})")
    head = path.read_bytes()[:8] if suffix == ".raw" else b""
    if suffix == ".brml" or head[:4] in (b"RAW ", b"RAW2", b"RAW4") or (head[:4] == b"RAW1" and head != b"RAW1.01\0"):
        raise FileFormatError(f"{str(path)!r}: this Bruker format ({head[:7].decode(errors='replace') or 'BRML'}) is "
                              f"not read by halex; export it as .xy from DIFFRAC.EVA (halex reads {READABLE})")
    if head == b"RAW1.01\0":
        pat = _read_bruker_raw(path)
    elif suffix == ".xrdml":
        pat = _read_xrdml(path)
    elif suffix in GSAS_SUFFIXES:
        pat = _read_gsas(path)
    elif suffix in TEXT_SUFFIXES:
        pat = _read_text(path)
    else:
        raise FileFormatError(f"{str(path)!r}: unsupported pattern format {suffix or '(no suffix)'}; "
                              f"halex reads {READABLE}")
    return Pattern(pat.two_theta_deg, pat.intensity, pat.sigma, {**pat.meta, "source": str(path)})


def write_pattern(
    path: str | os.PathLike,
    two_theta_deg: np.ndarray,
    intensity: np.ndarray,
    *,
    header: dict[str, Any] | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write ``two_theta_deg,intensity[,extra...]`` CSV atomically, ``#`` metadata lines first.

    Parameters
    ----------
    path
        Output file; :func:`read_pattern` reads it back.
    two_theta_deg, intensity
        2θ (degrees) and intensities.
    header
        Metadata written as ``# key: value`` lines.
    extra
        Further columns of the same length.

    Returns
    -------
    Path
    """
    from halex.io import atomic_output

    x = np.asarray(two_theta_deg, float)
    cols = {"two_theta_deg": x, "intensity": np.asarray(intensity, float)}
    for k, v in (extra or {}).items():
        cols[k] = np.asarray(v, float)
    if any(c.shape != x.shape for c in cols.values()):
        raise InputError("all pattern columns must have the same length")
    path = Path(path)
    with atomic_output(path) as fh:
        for k, v in (header or {}).items():
            fh.write(f"# {k}: {v}\n")
        fh.write(",".join(cols) + "\n")
        np.savetxt(fh, np.column_stack(list(cols.values())), delimiter=",", fmt="%.8g")
    return path
