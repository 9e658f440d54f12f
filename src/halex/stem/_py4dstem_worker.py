"""Single-slice ptychography with py4DSTEM, run in py4DSTEM's own environment.

halex starts this file with the interpreter of a separate environment (py4DSTEM 0.14 needs
``numpy<2``; halex needs NumPy 2), so it imports only NumPy and py4DSTEM, never halex.

    python _py4dstem_worker.py WORKDIR

``WORKDIR/data.npy`` holds the 4D data ``[scan_y, scan_x, det_y, det_x]`` and
``WORKDIR/settings.json`` the calibration and the reconstruction settings; the worker writes
``WORKDIR/phase.npy`` (the object's phase in rad, cropped to the scanned field) and
``WORKDIR/result.json`` (its pixel size in Å, the error per iteration, the versions), and
one line per iteration on stderr.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(workdir: str) -> None:
    import numpy as np
    import py4DSTEM
    from py4DSTEM.process.phase import SingleslicePtychography

    work = Path(workdir)
    s = json.loads((work / "settings.json").read_text())
    dc = py4DSTEM.DataCube(data=np.load(work / "data.npy", mmap_mode="r"))
    dc.calibration.set_R_pixel_size(s["scan_step_A"])
    dc.calibration.set_R_pixel_units("A")
    dc.calibration.set_Q_pixel_size(s["detector_mrad"])
    dc.calibration.set_Q_pixel_units("mrad")
    ptycho = SingleslicePtychography(datacube=dc, energy=1e3 * s["voltage_kV"], semiangle_cutoff=s["semiangle_mrad"],
                                     polar_parameters={"C10": -s["defocus_A"]}, object_type="potential",
                                     device="cpu", verbose=False)
    pad = s.get("padded_shape")
    ptycho = ptycho.preprocess(plot_center_of_mass=False, plot_rotation=False, plot_probe_overlaps=False,
                               force_com_rotation=s["rotation_deg"], force_com_transpose=s["transpose"],
                               padded_diffraction_intensities_shape=tuple(pad) if pad else None)
    errors, t0 = [], time.perf_counter()
    for i in range(s["iterations"]):
        ptycho = ptycho.reconstruct(num_iter=1, step_size=s["step_size"], fix_probe=s["fix_probe"], progress_bar=False,
                                    reset=i == 0)
        errors.append(float(ptycho.error))
        elapsed = time.perf_counter() - t0
        print(f"[ptycho] iteration {i + 1}/{s['iterations']}  error {errors[-1]:.5f}  {elapsed:.1f} s; "
              f"ETA {elapsed / (i + 1) * (s['iterations'] - i - 1):.0f} s", file=sys.stderr, flush=True)
    phase = np.asarray(ptycho.object_cropped, dtype=np.float32)
    np.save(work / "phase.npy", phase)
    result = {"pixel_A": [float(v) for v in ptycho.sampling], "errors": errors, "py4DSTEM": py4DSTEM.__version__,
              "numpy": np.__version__}
    (work / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
