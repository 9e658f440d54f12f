"""Transient-absorption maps ΔA(λ, t) from text matrices.

A map file is a matrix whose first row and first column are the two axes. The corner
cell may be empty, hold any number, or hold text such as ``Time in ps`` (a common export:
that row is then the axis row, and its text is read for the unit). Comment lines (``#``,
``%``, ``;``) and text header lines before the matrix are skipped; the delimiter (comma,
semicolon, tab, blanks) is detected; a ``.gz`` file is read through gzip. Which axis is
time is decided by, in order: ``orientation`` given by the user; the axis that holds
negative values (delays before time zero); the axis whose values all lie in 150–3000 (nm).

The time unit comes from ``time_unit`` (CLI ``--time-unit``), else from the file's own
text: a token ``fs``/``ps``/``ns`` in the header lines or the corner cell. It is never
guessed from the numbers or the file name: a file that does not state it is refused with
a message that says to pass the unit.
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

__all__ = ["TAMap", "read_ta_map", "write_ta_map", "check_ta_map", "TIME_UNITS"]

TIME_UNITS = {"fs": 1e-3, "ps": 1.0, "ns": 1e3}


@dataclass(frozen=True)
class TAMap:
    """ΔA on a (time, wavelength) grid: ``delta_a[i, j]`` at ``time_ps[i]``, ``wavelength_nm[j]``.

    Attributes
    ----------
    wavelength_nm
        Probe wavelengths (nm), ascending.
    time_ps
        Pump–probe delays (ps), ascending.
    delta_a
        Absorbance change (the file's units, usually OD or mOD), shape (n_times, n_wavelengths).
    meta
        Source file, time unit found in it and how it was detected.
    """

    wavelength_nm: np.ndarray
    time_ps: np.ndarray
    delta_a: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def trace(self, wavelength_nm: float, *, bandwidth_nm: float = 0.0) -> np.ndarray:
        """Kinetic trace at ``wavelength_nm`` (mean over ±bandwidth/2, else the nearest column)."""
        w = self.wavelength_nm
        if not w.min() - 1 <= wavelength_nm <= w.max() + 1:
            raise InputError(f"wavelength {wavelength_nm} nm lies outside the map ({w.min():g}–{w.max():g} nm)")
        sel = np.abs(w - wavelength_nm) <= bandwidth_nm / 2
        if not sel.any():
            sel = np.abs(w - wavelength_nm) == np.abs(w - wavelength_nm).min()
        return self.delta_a[:, sel].mean(axis=1)


def check_ta_map(wavelength_nm: np.ndarray, time_ps: np.ndarray, delta_a: np.ndarray, *, source: str = "map",
                 meta: dict[str, Any] | None = None) -> TAMap:
    """Validate shapes, finiteness and axis monotonicity; sort ascending axes.

    Parameters
    ----------
    wavelength_nm, time_ps
        Axes (nm, ps); either may be descending.
    delta_a
        ΔA, shape (n_times, n_wavelengths).
    source
        Name used in error messages.
    meta
        Recorded in the map.

    Returns
    -------
    TAMap

    Raises
    ------
    FileFormatError
        Shapes disagree, fewer than 10 delays, non-finite values or non-positive wavelengths.

    Examples
    --------
    >>> import numpy as np
    >>> m = check_ta_map([600.0, 500.0], np.arange(10.0), np.zeros((10, 2)))
    >>> m.wavelength_nm.tolist()
    [500.0, 600.0]
    """
    w = np.asarray(wavelength_nm, float).ravel()
    t = np.asarray(time_ps, float).ravel()
    d = np.asarray(delta_a, float)
    if d.ndim != 2 or d.shape != (t.size, w.size):
        raise FileFormatError(f"{source}: ΔA must have shape (n_times, n_wavelengths) = ({t.size}, {w.size}), got {d.shape}")
    if t.size < 10 or w.size < 1:
        raise FileFormatError(f"{source}: a TA map needs ≥ 10 delays and ≥ 1 wavelength, got {t.size} × {w.size}")
    for name, a in (("time", t), ("wavelength", w), ("ΔA", d)):
        if not np.all(np.isfinite(a)):
            raise FileFormatError(f"{source}: the {name} values hold NaN or infinite entries")
    if descending_axis(t, name="time", source=source):
        t, d = t[::-1], d[::-1]
    if w.size > 1 and descending_axis(w, name="wavelength", source=source):
        w, d = w[::-1], d[:, ::-1]
    if w.min() <= 0:
        raise FileFormatError(f"{source}: wavelengths must be positive (nm)")
    return TAMap(w, t, d, dict(meta or {}))


def read_ta_map(path: str | os.PathLike, *, time_unit: str | None = None, orientation: str | None = None) -> TAMap:
    """Read a ΔA(λ, t) matrix exported by a TA spectrometer.

    The first row and the first column are the axes; comment and header lines are skipped.

    Parameters
    ----------
    path
        Text matrix (CSV, tab- or blank-separated).
    time_unit
        ``"fs"``, ``"ps"`` or ``"ns"``; detected when None.
    orientation
        ``"time-rows"`` (first column = delays, first row = wavelengths) or
        ``"wavelength-rows"``; detected when None.

    Returns
    -------
    TAMap
        Delays converted to ps.

    Raises
    ------
    FileFormatError
        Not a numeric matrix, or axes that cannot be told apart.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"TA map {str(path)!r} does not exist")
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise InputError(f"time unit must be one of {', '.join(TIME_UNITS)}, got {time_unit!r}")
    if orientation not in (None, "time-rows", "wavelength-rows"):
        raise InputError(f"orientation must be 'time-rows' or 'wavelength-rows', got {orientation!r}")
    rows, header_lines = read_numeric_rows(path)
    if len(rows) < 2:
        raise FileFormatError(f"{str(path)!r}: no numeric matrix found; halex reads a text matrix whose first row "
                              "and first column are the delay and wavelength axes")
    widths = {len(r) for r in rows[1:]}
    if len(widths) != 1:
        raise FileFormatError(f"{str(path)!r}: matrix rows have different lengths {sorted(widths)}")
    ncol = widths.pop()
    corner, labelled = _text_axis_row(header_lines, ncol)
    if labelled is not None:
        first, body = labelled, rows
    else:
        first, body = rows[0], rows[1:]
    if {len(r) for r in body} != {ncol}:
        raise FileFormatError(f"{str(path)!r}: matrix rows have different lengths {sorted({len(r) for r in body})}")
    if len(first) == ncol - 1:
        col_axis = np.array(first)
    elif len(first) == ncol:
        col_axis = np.array(first[1:])
    else:
        raise FileFormatError(f"{str(path)!r}: the axis row has {len(first)} values for {ncol - 1} data columns")
    body_a = np.array(body)
    row_axis, data = body_a[:, 0], body_a[:, 1:]
    orientation = orientation or _orientation(row_axis, col_axis, path)
    if orientation == "time-rows":
        t_raw, w, d = row_axis, col_axis, data
    else:
        t_raw, w, d = col_axis, row_axis, data.T
    unit, how = (time_unit, "given") if time_unit is not None else (_unit_from_text(header_lines + [corner], path), "header")
    t = t_raw * TIME_UNITS[unit]
    return check_ta_map(w, t, d, source=repr(str(path)),
                        meta={"source": str(path), "time_unit_file": unit, "time_unit_from": how, "orientation": orientation})


def _text_axis_row(header_lines: list[str], ncol: int) -> tuple[str, list[float] | None]:
    """The axis row of a matrix whose corner cell is text (``Time in ps<TAB>335<TAB>336 …``).

    Returns ``(corner_text, axis_values)`` when the last header line ends in ``ncol - 1``
    numbers after a text that is not a number, else ``("", None)``.
    """
    if not header_lines:
        return "", None
    tokens = [f for f in re.split(r"[,;\t ]+", header_lines[-1].strip()) if f]
    if len(tokens) < ncol:
        return "", None
    lead, tail = tokens[: len(tokens) - (ncol - 1)], tokens[len(tokens) - (ncol - 1):]
    try:
        values = [float(f) for f in tail]
    except ValueError:
        return "", None
    try:
        float(lead[-1])
        return "", None  # a number before the axis: not a text corner cell
    except ValueError:
        return " ".join(lead), values


def _orientation(row_axis: np.ndarray, col_axis: np.ndarray, path: Path) -> str:
    """Which axis runs down the rows: the one with negative values is time, else the one outside 150–3000 nm."""
    def looks_wavelength(a):
        return bool(np.all((a >= 150) & (a <= 3000)))

    if np.any(row_axis < 0) and not np.any(col_axis < 0):
        return "time-rows"
    if np.any(col_axis < 0) and not np.any(row_axis < 0):
        return "wavelength-rows"
    if looks_wavelength(col_axis) and not looks_wavelength(row_axis):
        return "time-rows"
    if looks_wavelength(row_axis) and not looks_wavelength(col_axis):
        return "wavelength-rows"
    raise FileFormatError(f"{str(path)!r}: cannot tell which axis is time; pass orientation "
                          "('time-rows' or 'wavelength-rows', CLI --orientation)")


def _unit_from_text(lines: list[str], path: Path) -> str:
    """The delay unit named in the file's header lines or corner cell (fs, ps or ns)."""
    text = "\n".join(lines).lower()
    found = sorted({u for u in TIME_UNITS if re.search(rf"(?<![a-z]){u}(?![a-z])", text)})
    if len(found) == 1:
        return found[0]
    what = f"names several ({', '.join(found)})" if found else "does not state it"
    raise FileFormatError(f"{str(path)!r}: the delay unit is not known: the file's header {what}; pass it with "
                          "--time-unit fs|ps|ns (API: time_unit=)")


def write_ta_map(path: str | os.PathLike, m: TAMap) -> Path:
    """Write a map as a time-rows CSV matrix (delays in ps, wavelengths in nm), atomically.

    Parameters
    ----------
    path
        Output file.
    m
        The map.

    Returns
    -------
    Path
        ``path``; :func:`read_ta_map` reads it back.
    """
    from halex.io import atomic_output

    path = Path(path)
    with atomic_output(path) as fh:
        fh.write("# delta A map; first column: time (ps), first row: wavelength (nm)\n")
        fh.write("0," + ",".join(f"{v:.6g}" for v in m.wavelength_nm) + "\n")
        np.savetxt(fh, np.column_stack([m.time_ps, m.delta_a]), delimiter=",", fmt="%.8g")
    return path
