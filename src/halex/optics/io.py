"""Spectrometer exports (absorption, PL) at the edge.

A spectrum file is a text table: header lines (any text), then rows of numbers; the
first column is the wavelength in nm, the others are signals (the first by default, or
the one named/numbered by ``column``). Delimiters: comma, semicolon, tab or blanks; a
semicolon-separated file with decimal commas (``400,5;0,123``) is read too. A descending
wavelength axis is reversed; a non-monotonic one, NaNs, or wavelengths outside
150–3000 nm (an energy or wavenumber axis) raise :class:`~halex.errors.FileFormatError`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from halex.errors import FileFormatError, InputError
from halex.io import descending_axis, read_numeric_rows

__all__ = ["Spectrum", "read_spectrum", "check_spectrum"]


@dataclass(frozen=True)
class Spectrum:
    """A spectrum on an increasing wavelength axis (nm).

    Attributes
    ----------
    wavelength_nm
        Wavelengths (nm), increasing.
    values
        Signal (absorbance, counts, ...), one per wavelength.
    name
        Column name of the signal.
    meta
        Source file and reading details.
    """

    wavelength_nm: np.ndarray
    values: np.ndarray
    name: str = "signal"
    meta: dict[str, Any] = field(default_factory=dict)


def check_spectrum(wavelength_nm: np.ndarray, values: np.ndarray, *, name: str = "signal",
                   source: str = "spectrum") -> Spectrum:
    """Validate a spectrum and return it on an increasing wavelength axis.

    Parameters
    ----------
    wavelength_nm, values
        Wavelengths (nm, either order) and signal of equal length.
    name
        Name of the signal.
    source
        Name used in error messages.

    Returns
    -------
    Spectrum

    Raises
    ------
    FileFormatError
        Lengths disagree, fewer than 5 points, non-finite values, or non-positive wavelengths.

    Examples
    --------
    >>> check_spectrum([700.0, 600.0, 500.0, 450.0, 400.0], [0, 1, 2, 3, 4]).wavelength_nm.tolist()
    [400.0, 450.0, 500.0, 600.0, 700.0]
    """
    w = np.asarray(wavelength_nm, float).ravel()
    v = np.asarray(values, float).ravel()
    if w.shape != v.shape:
        raise FileFormatError(f"{source}: wavelength and signal lengths differ ({w.size} vs {v.size})")
    if w.size < 5:
        raise FileFormatError(f"{source}: a spectrum needs at least 5 points, got {w.size}")
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(v))):
        raise FileFormatError(f"{source}: NaN or infinite values in the data")
    if descending_axis(w, name="wavelength", source=source):
        w, v = w[::-1], v[::-1]
    if w[0] < 150 or w[-1] > 3000:
        raise FileFormatError(f"{source}: first column spans {w[0]:g}–{w[-1]:g}; expected a wavelength in nm (150–3000)")
    return Spectrum(w, v, name)


def read_spectrum(path: str | os.PathLike, *, column: int | str | None = None) -> Spectrum:
    """Read a spectrometer CSV/TXT export (wavelength in nm in the first column).

    Comment and header lines are skipped; decimal commas (``400,5;0,12``) are recognised.

    Parameters
    ----------
    path
        The file.
    column
        Data column (index counted after the wavelength, or header name); default the first.

    Returns
    -------
    Spectrum

    Raises
    ------
    FileFormatError
        Not a numeric table, or the column does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"spectrum file {str(path)!r} does not exist")
    rows, lines = read_numeric_rows(path, comments="#%!", decimal_comma="auto")
    text = [ln for ln in lines if ln[0] not in "#%!"]
    # column names: the last text line before the data, split on the data's delimiter
    header = ([h.strip() for h in re.split(r"[,;\t]" if re.search(r"[,;\t]", text[-1]) else r"\s+", text[-1]) if h.strip()]
              if text else [])
    if not rows:
        raise FileFormatError(f"{str(path)!r}: no numeric data rows")
    widths = {len(r) for r in rows}
    if len(widths) != 1 or min(widths) < 2:
        raise FileFormatError(f"{str(path)!r}: rows have {sorted(widths)} columns; expected wavelength + ≥ 1 signal")
    a = np.array(rows)
    names = header[1:a.shape[1]] if len(header) >= a.shape[1] else [f"column {k}" for k in range(1, a.shape[1])]
    if column is None:
        k = 1
    elif isinstance(column, int) or str(column).isdigit():
        k = int(column)
        if not 1 <= k < a.shape[1]:
            raise InputError(f"column {k} does not exist: {str(path)!r} has signal columns 1–{a.shape[1] - 1}")
    else:
        if column not in names:
            raise InputError(f"no column named {column!r} in {str(path)!r}; columns: {', '.join(names)}")
        k = names.index(column) + 1
    sp = check_spectrum(a[:, 0], a[:, k], name=names[k - 1] if names else "signal", source=repr(str(path)))
    return Spectrum(sp.wavelength_nm, sp.values, sp.name, {"source": str(path), "column": k})
