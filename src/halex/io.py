"""Structure files at the edge: read with clear errors, write atomically.

Extended XYZ (``.extxyz``/``.xyz``) is the default format because it keeps the
per-atom arrays ``domain``/``layer``/``role`` and ``atoms.info``; any format ASE
reads (CIF, POSCAR, ``.traj``, ...) is accepted on input.

Formats that cannot hold the per-atom arrays (CIF, POSCAR, PDB, ...) get a sidecar file
``<name>.halex.json`` next to them with the arrays and the chemical symbols in order;
:func:`read_structure` restores the arrays from it when the symbols still match, and
warns (keeping the structure without them) when they do not.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from ase import Atoms

from halex.errors import FileFormatError

__all__ = ["read_structure", "write_structure", "atomic_output", "atomic_folder", "read_numeric_rows", "descending_axis",
           "json_safe", "format_uncertain", "format_duration", "sidecar_path", "structure_format", "check_output",
           "OUTPUT_KINDS", "ARRAY_FORMATS"]

#: What an output path may be: a structure file, a folder of results, or a file of one kind
#: (allowed suffixes; None: any the kind's own check accepts).
OUTPUT_KINDS: dict[str, tuple[str, ...] | None] = {
    "structure": None, "folder": None, "figure": (".png", ".svg", ".pdf"), "image": (".tif", ".tiff", ".npy"),
    "csv": (".csv",), "json": (".json",),
}

#: Formats that store the halex per-atom arrays themselves (no sidecar needed).
ARRAY_FORMATS = frozenset({"extxyz"})


def sidecar_path(path: str | os.PathLike) -> Path:
    """The sidecar file that keeps the per-atom arrays of ``path``: ``<path>.halex.json``."""
    path = Path(path)
    return path.with_name(path.name + ".halex.json")


def _read_sidecar(path: Path, atoms: Atoms) -> dict:
    """Per-atom arrays from the sidecar of ``path`` if its symbols match ``atoms``; else {} (with a warning)."""
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    try:
        record = json.loads(side.read_text())
        symbols, arrays = record["symbols"], record["arrays"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        warnings.warn(f"ignoring {side.name}: not a halex array sidecar ({exc})", stacklevel=3)
        return {}
    if list(symbols) != atoms.get_chemical_symbols():
        warnings.warn(f"ignoring {side.name}: its atoms do not match {path.name} (edited after writing?); "
                      "the per-atom domain/layer/role arrays are not restored", stacklevel=3)
        return {}
    return arrays


def read_structure(path: str | os.PathLike, *, index: int | str = -1) -> Atoms:
    """Read one structure from ``path``.

    Raises
    ------
    FileFormatError
        If the file does not exist, is empty or cannot be parsed.
    """
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"structure file {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise FileFormatError(f"structure file {str(path)!r} is empty")
    try:
        atoms = ase.io.read(path, index=index)
    except Exception as exc:  # ASE raises many types for a bad file
        raise FileFormatError(
            f"cannot read structure file {str(path)!r}: {type(exc).__name__}: {exc}. "
            "Give an extended XYZ, CIF, POSCAR or ASE trajectory file"
        ) from None
    if isinstance(atoms, list):  # index was a slice
        raise FileFormatError(f"{str(path)!r}: expected one structure, got {len(atoms)}")
    import numpy as np

    from halex.arrays import HALEX_ARRAYS, set_arrays

    found = {k: atoms.arrays[k] for k in HALEX_ARRAYS if k in atoms.arrays}
    if not found:  # a format without per-atom arrays: the sidecar, if there is one
        found = {k: np.asarray(v) for k, v in _read_sidecar(path, atoms).items() if k in HALEX_ARRAYS}
    # extxyz hands string columns back as object arrays: give them halex's dtypes
    try:
        set_arrays(atoms, found)
    except (TypeError, ValueError) as exc:
        raise FileFormatError(f"{str(path)!r}: malformed per-atom array: {exc}") from None
    return atoms


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "w") -> Iterator:
    """Open a temporary file next to ``path`` and rename it onto ``path`` on success.

    Nothing is left at ``path`` if the block raises, so no half-written output
    ever appears.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs follow the user's umask
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def structure_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The ASE format a structure is written in: ``format``, or from the suffix (``.extxyz`` by default).

    Raises :class:`FileFormatError` when ASE cannot write it, so a command can refuse an
    output path before it computes anything.
    """
    from ase.io.formats import ioformats

    fmt = format
    if fmt is None:
        suffix = Path(path).suffix.lower().lstrip(".")
        fmt = {"xyz": "extxyz", "": "extxyz"}.get(suffix, suffix)
    if fmt not in ioformats or not ioformats[fmt].can_write:
        raise FileFormatError(
            f"cannot write {str(path)!r}: unknown output format {fmt!r}; use .extxyz, .cif, .traj or .vasp"
        )
    return fmt


def check_output(path: str | os.PathLike, kind: str) -> Path:
    """Check an output path before anything is computed; return it.

    Parameters
    ----------
    path
        Where a command will write.
    kind
        A key of :data:`OUTPUT_KINDS`: ``"structure"`` (a format ASE writes), ``"folder"``
        (created if needed, but not over a file), ``"figure"``, ``"image"``, ``"csv"``,
        ``"json"`` (by suffix).

    Raises
    ------
    FileFormatError
        The folder it goes into does not exist, the suffix does not fit, or a folder
        would replace a file.

    Examples
    --------
    >>> check_output("model.extxyz", "structure").name
    'model.extxyz'
    """
    path = Path(path)
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    parent = path.resolve().parent
    if not parent.is_dir():
        raise FileFormatError(f"cannot write {str(path)!r}: the folder {str(parent)!r} does not exist (create it first)")
    if kind == "structure":
        structure_format(path)
    elif kind == "folder":
        if path.exists() and not path.is_dir():
            raise FileFormatError(f"cannot write results into {str(path)!r}: it is a file, not a folder")
    elif path.suffix.lower() not in OUTPUT_KINDS[kind]:
        raise FileFormatError(f"cannot write {str(path)!r}: a {kind} must end in {', '.join(OUTPUT_KINDS[kind])}")
    if kind != "folder" and path.is_dir():
        raise FileFormatError(f"cannot write {str(path)!r}: it is a folder")
    return path


def write_structure(path: str | os.PathLike, atoms: Atoms, *, format: str | None = None) -> Path:
    """Write ``atoms`` to ``path`` atomically (temporary file, then rename).

    The format is guessed from the suffix (``.extxyz`` by default) and must be one
    ASE writes. A format outside :data:`ARRAY_FORMATS` gets the halex per-atom arrays
    in a sidecar ``<path>.halex.json`` (written atomically too). Returns the path written.
    """
    import ase.io
    from ase.io.formats import ioformats

    path = Path(path)
    fmt = structure_format(path, format)
    binary = ioformats[fmt].isbinary
    with atomic_output(path, "wb" if binary else "w") as fh:
        ase.io.write(fh, atoms, format=fmt)
    _write_sidecar(path, atoms, fmt)
    return path


def _write_sidecar(path: Path, atoms: Atoms, fmt: str) -> None:
    """Keep the halex arrays next to a file whose format cannot hold them; remove a stale sidecar otherwise."""
    from halex.arrays import HALEX_ARRAYS

    side = sidecar_path(path)
    arrays = {k: atoms.arrays[k].tolist() for k in HALEX_ARRAYS if k in atoms.arrays}
    if fmt in ARRAY_FORMATS or not arrays:
        with contextlib.suppress(FileNotFoundError):
            side.unlink()
        return
    with atomic_output(side) as fh:
        json.dump({"written_by": "halex", "file": path.name, "format": fmt,
                   "symbols": atoms.get_chemical_symbols(), "arrays": arrays}, fh)


@contextlib.contextmanager
def atomic_folder(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``out``; on success move its files into ``out``.

    A command that writes several files (tables, JSON, figures) writes them into the
    temporary folder; if anything raises, the folder is removed and ``out`` receives
    nothing, so a reader never sees a half-finished result set.
    """
    import shutil

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(tmp.iterdir()):
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_numeric_rows(path: Path, *, comments: str = "#%;!", decimal_comma: bool | str = False,
                      ) -> tuple[list[list[float]], list[str]]:
    """Rows of numbers of a text table, and the text lines before them.

    Blank lines are skipped; lines starting with one of ``comments`` and non-numeric lines
    before the first numeric row are returned (stripped, in order) as the header; fields are
    split on commas, semicolons, tabs or blanks. ``decimal_comma=True`` reads ``400,5``
    as 400.5 (the fields are then split on ``;``, tabs or blanks); ``"auto"`` does so when
    most lines hold a ``;`` and a digit–comma–digit. A non-numeric line after the first
    numeric row raises :class:`FileFormatError` (a footer or a corrupted line). A ``.gz``
    file is read through gzip. Used by the
    XRD, spectrum and transient-absorption readers.
    """
    import re

    if path.suffix.lower() == ".gz":
        import gzip

        with gzip.open(path, "rt", errors="replace") as fh:
            lines = fh.read().splitlines()
    else:
        lines = path.read_text(errors="replace").splitlines()
    if decimal_comma == "auto":
        decimal_comma = sum(1 for ln in lines if ";" in ln and re.search(r"\d,\d", ln)) > len(lines) // 2
    rows: list[list[float]] = []
    header: list[str] = []
    for line in lines:
        s = line.strip()
        if not s:
            continue
        if s[0] in comments:
            header.append(s)
            continue
        if decimal_comma:
            s = s.replace(",", ".")
        try:
            rows.append([float(f) for f in re.split(r"[,;\t ]+", s) if f])
        except ValueError:
            if rows:
                raise FileFormatError(f"{str(path)!r}: non-numeric line inside the data: {line.strip()[:60]!r}") from None
            header.append(s)
    return rows, header


def descending_axis(axis, *, name: str, source: str) -> bool:
    """True if the strictly monotonic ``axis`` runs downwards (the caller reverses it and its
    data), False if it runs upwards; :class:`FileFormatError` naming the first offending
    row if it is not strictly monotonic (repeated or unsorted values)."""
    import numpy as np

    a = np.asarray(axis, float)
    d = np.diff(a)
    if np.all(d > 0):
        return False
    if np.all(d < 0):
        return True
    i = int(np.flatnonzero(d <= 0)[0]) if np.any(d > 0) else int(np.flatnonzero(d >= 0)[0])
    raise FileFormatError(f"{source}: the {name} axis is not strictly monotonic (at row {i + 2}: {a[i]:g} then "
                          f"{a[i + 1]:g}); sort it or remove repeated points")


def json_safe(value):
    """``value`` made strict-JSON friendly, recursively through dicts, lists, tuples and arrays:
    NumPy integers become ``int``, finite floats ``float``, NaN and ±inf ``None``; anything
    else is returned unchanged."""
    import numpy as np

    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value



def format_uncertain(value: float, err: float | None, unit: str = "") -> str:
    """``value ± err unit`` with the error to two significant digits and the value to match.

    Without a finite error the value keeps four significant digits and says so.

    Examples
    --------
    >>> format_uncertain(5.60891, 0.00742, "Å")
    '5.6089 ± 0.0074 Å'
    >>> format_uncertain(-0.4513, float("nan"), "%")
    '-0.4513 % (no error estimate)'
    """
    import math

    unit = f" {unit}" if unit else ""
    if err is None or not math.isfinite(err) or err <= 0:
        return f"{value:.4g}{unit} (no error estimate)"
    if value != 0 and err < 1e-6 * abs(value):  # noiseless data: the error says nothing a person needs
        return f"{value:.6g}{unit} (error below 1 ppm)"
    digits = max(0, 1 - int(math.floor(math.log10(err))))
    return f"{value:.{digits}f} ± {err:.{digits}f}{unit}"


def format_duration(seconds: float) -> str:
    """A duration for a person: seconds below 2 minutes, minutes below 2 hours, then hours.

    Examples
    --------
    >>> format_duration(3.14159), format_duration(95), format_duration(1500), format_duration(30000)
    ('3.1 s', '95 s', '25 min', '8.3 h')
    """
    if seconds < 10:
        return f"{seconds:.2g} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
