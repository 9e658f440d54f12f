"""Ptychographic phase from 4D-STEM data through py4DSTEM, in py4DSTEM's own environment.

py4DSTEM (GPL-3) is the maintained open ptychography code of the field, so halex does not
write its own. Its 0.14 releases require ``numpy<2`` and ``scikit-learn<1.5``, which halex's
environment (NumPy 2) cannot hold, so it is neither a core dependency nor an extra: it lives
in a second virtual environment (``bash scripts/setup.sh`` makes ``.venv-ptycho`` beside
``.venv``; any environment with ``pip install py4DSTEM==0.14.18 "numpy<2"`` works, named by
``$HALEX_PTYCHO_PYTHON`` or ``--ptycho-python``). halex writes the data and the calibration to
a temporary folder, runs :mod:`halex.stem._py4dstem_worker` there with that interpreter
(single-slice gradient-descent reconstruction of a potential object, one progress line per
iteration with an ETA) and reads the phase back. No py4DSTEM code is imported into halex.

The probe is known from the calibration (aberration-free, with an optional defocus), so by
default it is held fixed: on simulated data (``tests/test_stem_ptycho.py``) the phase's
correlation with the projected potential after 10 iterations was 0.94 with the fixed probe
and 0.84 with a refined one, and 20 iterations (fixed probe) fit the shot noise: 0.80.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from halex.errors import AnalysisError, InputError

__all__ = ["PTYCHO_PYTHON_ENV", "find_ptycho_python", "ptychographic_phase"]

#: environment variable naming the Python of py4DSTEM's environment
PTYCHO_PYTHON_ENV = "HALEX_PTYCHO_PYTHON"
_WORKER = Path(__file__).with_name("_py4dstem_worker.py")


def find_ptycho_python(explicit: str | os.PathLike | None = None) -> Path:
    """The interpreter of py4DSTEM's environment: ``explicit``, else ``$HALEX_PTYCHO_PYTHON``, else
    ``.venv-ptycho/bin/python`` beside halex's own environment, else the current folder's.

    Raises
    ------
    InputError
        None found, or it cannot import py4DSTEM; the message says how to make one.
    """
    named = explicit or os.environ.get(PTYCHO_PYTHON_ENV)
    candidates = [named] if named else [Path(sys.prefix).parent / ".venv-ptycho" / "bin" / "python",
                                        Path.cwd() / ".venv-ptycho" / "bin" / "python"]
    how = ("make one with `bash scripts/setup.sh` (it builds .venv-ptycho), or `python -m venv ENV && "
           "ENV/bin/pip install py4DSTEM==0.14.18 \"numpy<2\"` and pass --ptycho-python ENV/bin/python "
           f"(or set ${PTYCHO_PYTHON_ENV})")
    for c in candidates:
        if c and Path(c).is_file():
            failure = _import_failure(str(c))
            if failure is None:
                return Path(c)
            raise InputError(f"--method ptycho: {c} cannot import py4DSTEM ({failure}); {how}")
    raise InputError(f"--method ptycho needs py4DSTEM (GPL) in its own environment (it requires numpy<2); {how}")


@functools.lru_cache(maxsize=8)
def _import_failure(python: str) -> str | None:
    """None if ``python`` imports py4DSTEM, else the last line of its error (each interpreter is
    tried once per process: the import takes seconds, and the command checks before and after
    reading the data)."""
    r = subprocess.run([python, "-c", "import py4DSTEM"], capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stderr.strip().splitlines() or ["no message"])[-1]


def ptychographic_phase(data: Any, cal, *, iterations: int = 10, step_size: float = 0.5, defocus_A: float = 0.0,
                        fix_probe: bool = True, upsample: int = 1, rotation_deg: float = 0.0, transpose: bool = False,
                        python: str | os.PathLike | None = None) -> tuple[np.ndarray, float, dict[str, Any]]:
    """Single-slice ptychographic phase of 4D-STEM data (py4DSTEM, in its own environment).

    Parameters
    ----------
    data
        ``[scan_y, scan_x, det_y, det_x]`` diffraction patterns (array or array-like).
    cal
        :class:`halex.stem.fourd.Calibration` (scan step, detector pixel, voltage, semi-angle).
    iterations, step_size
        Gradient-descent iterations and step (py4DSTEM's ``reconstruct``).
    defocus_A
        Probe defocus (Å; positive is underfocus), part of the fixed probe.
    fix_probe
        Hold the probe at the calibration's aberration-free probe (default) or refine it.
    upsample
        Pad the patterns ``upsample``× so the object is sampled that much finer than
        λ/(detector extent); costs about ``upsample²``.
    rotation_deg, transpose
        Rotation and transpose between scan and detector axes (0 and False for halex's
        simulations and aligned detectors).
    python
        Interpreter of py4DSTEM's environment (:func:`find_ptycho_python`).

    Returns
    -------
    tuple
        ``(phase [rad], pixel size [Å], info)``: the object's phase over the scanned field,
        its square pixel and ``info`` (error per iteration, versions).
    """
    if not (isinstance(iterations, int) and 1 <= iterations <= 1000):
        raise InputError(f"--iterations must be an integer in 1–1000, got {iterations!r}")
    if not (isinstance(upsample, int) and 1 <= upsample <= 4):
        raise InputError(f"upsample must be 1–4, got {upsample!r}")
    exe = find_ptycho_python(python)
    from halex.stem.fourd import check_fits_in_memory

    shape = tuple(int(n) for n in np.shape(data))
    # py4DSTEM reconstructs from the whole scan in memory: this copy, its intensities and amplitudes
    check_fits_in_memory(4.0 * float(np.prod(shape)) * 4 * upsample**2, "ptychography (py4DSTEM holds the whole scan "
                         "in memory)", hint="reconstruct a smaller region of the scan, or bin the detector")
    settings = {"scan_step_A": cal.scan_step_A, "detector_mrad": cal.detector_mrad, "voltage_kV": cal.voltage_kV,
                "semiangle_mrad": cal.semiangle_mrad, "defocus_A": float(defocus_A), "iterations": iterations,
                "step_size": float(step_size), "fix_probe": bool(fix_probe), "rotation_deg": float(rotation_deg),
                "transpose": bool(transpose),
                "padded_shape": [upsample * shape[2], upsample * shape[3]] if upsample > 1 else None}
    with tempfile.TemporaryDirectory(prefix="halex-ptycho-") as tmp:
        work = Path(tmp)
        _write_scan(data, work / "data.npy")
        (work / "settings.json").write_text(json.dumps(settings))
        _run_worker(exe, work)
        phase = np.load(work / "phase.npy")
        info = json.loads((work / "result.json").read_text())
    return phase.astype(float), float(info["pixel_A"][0]), info


def _write_scan(data: Any, path: Path, rows: int = 16) -> None:
    """Write ``data`` to ``path`` as float32 ``.npy``, a block of scan rows at a time, so a lazily
    read scan (a memory map or a dask array) is never held whole in halex's process as well."""
    shape = tuple(int(n) for n in np.shape(data))
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    for i in range(0, shape[0], rows):
        out[i:i + rows] = np.asarray(data[i:i + rows], dtype=np.float32)
    out.flush()
    del out


def _run_worker(exe: Path, work: Path) -> None:
    """Run the worker on ``work``, passing its progress lines on as they come; a failure (an
    exit status, or no result written) is raised with the last lines it printed."""
    lines: list[str] = []
    with subprocess.Popen([str(exe), str(_WORKER), str(work)], stderr=subprocess.PIPE, text=True) as proc:
        for line in proc.stderr:
            lines.append(line.rstrip())
            if line.startswith("[ptycho]"):
                print(line.rstrip(), file=sys.stderr, flush=True)
    if proc.returncode != 0 or not (work / "result.json").exists():
        raise AnalysisError("py4DSTEM's reconstruction failed: " + " | ".join(lines[-3:]))
