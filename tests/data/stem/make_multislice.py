"""Regenerate ``multislice_CsPbCl3-I_001.npz``: a frozen-phonon multislice HAADF image (abTEM) of a
small CsPbX3 nanocrystal whose upper two halide layers are iodide, noiseless, with its true columns.

    .venv/bin/python tests/data/stem/make_multislice.py     # needs halex[multislice]; minutes

The tests add Poisson noise to the stored expected image, so the fitter's precision and the
Cl/I labels are scored on an image the Gaussian column model did not make.
"""

from pathlib import Path

import numpy as np

from halex.models import perovskite_nanocrystal
from halex.stem.multislice import simulate_multislice

HERE = Path(__file__).resolve().parent
SETTINGS = {"zone": "001", "pixel_size": 0.25, "frozen_phonons": 2, "interpolation": 2, "seed": 0}


def model():
    """2 × 4 × 4 CsPbCl3 cells (2 along the beam); halides above the middle height are I."""
    nc = perovskite_nanocrystal((2, 4, 4), "Cl")
    z = nc.positions[:, 2]
    sym = np.array(nc.get_chemical_symbols(), dtype=object)
    sym[(sym == "Cl") & (z > z.min() + 0.5 * np.ptp(z) + 0.1)] = "I"
    nc.set_chemical_symbols(list(sym))
    return nc


if __name__ == "__main__":
    img, truth = simulate_multislice(model(), **SETTINGS)
    out = HERE / "multislice_CsPbCl3-I_001.npz"
    np.savez_compressed(out, expected=img.data.astype(np.float32), pixel_size=img.pixel_size,
                        **{f"truth_{k}": np.asarray(v) for k, v in truth.items()})
    print(out, img.data.shape, float(img.data.max()))
