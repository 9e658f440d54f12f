"""Regenerate ``multislice_CsPbCl3-I_001.npz``: a frozen-phonon multislice HAADF image (abTEM) of a
small CsPbX3 nanocrystal whose upper two halide layers are I, noiseless, with its true columns.

    .venv/bin/python tests/data/stem/make_multislice.py                 # needs halex[multislice]; ~15 min
    .venv/bin/python tests/data/stem/make_multislice.py --columns-only  # only the phonon-averaged columns

Besides the static truth (``truth_*``: the columns of the model as built), the file holds
``phonon_x_px`` / ``phonon_y_px``: the Z^1.7-weighted mean position of each heavy (Pb+X, Cs)
column's atoms averaged over the frozen-phonon configurations the image was computed with
(abTEM's own displacements, same seed). A finite phonon ensemble displaces the columns by a
few hundredths of an Å; that is where the image's columns really are.

The tests add Poisson noise to the stored expected image, so the fitter's precision and the
Cl/I labels are scored on an image the Gaussian column model did not make.
"""

import sys
from pathlib import Path

import numpy as np

from halex.models import perovskite_nanocrystal
from halex.stem.multislice import image_frame_atoms, simulate_multislice

HERE = Path(__file__).resolve().parent
OUT = HERE / "multislice_CsPbCl3-I_001.npz"
SETTINGS = {"zone": "001", "pixel_size": 0.25, "frozen_phonons": 2, "interpolation": 2, "seed": 0}
MARGIN = 5.0  # simulate_multislice's default


def model():
    """2 × 4 × 4 CsPbCl3 cells (2 along the beam); halides above the middle height are I."""
    nc = perovskite_nanocrystal((2, 4, 4), "Cl")
    z = nc.positions[:, 2]
    sym = np.array(nc.get_chemical_symbols(), dtype=object)
    sym[(sym == "Cl") & (z > z.min() + 0.5 * np.ptp(z) + 0.1)] = "I"
    nc.set_chemical_symbols(list(sym))
    return nc


def phonon_averaged_columns(truth):
    """Column centres (px) averaged over the image's frozen-phonon configurations."""
    import abtem

    px = SETTINGS["pixel_size"]
    frame, _ = image_frame_atoms(model(), SETTINGS["zone"], px, MARGIN)
    configs = list(abtem.FrozenPhonons(frame, num_configs=SETTINGS["frozen_phonons"], sigmas=0.08,
                                       seed=SETTINGS["seed"]))
    moved = np.mean([c.positions[:, :2] for c in configs], axis=0) / px
    still = frame.positions[:, :2] / px
    w = frame.numbers.astype(float) ** 1.7
    out = []
    for c in np.column_stack([truth["x_px"], truth["y_px"]]):
        near = np.linalg.norm(still - c, axis=1) < 0.6 / px
        out.append((moved[near] * w[near, None]).sum(axis=0) / w[near].sum())
    return np.array(out)


if __name__ == "__main__":
    if "--columns-only" in sys.argv:
        old = dict(np.load(OUT))
        expected, px = old.pop("expected"), float(old.pop("pixel_size"))
        truth = {k[6:]: v for k, v in old.items() if k.startswith("truth_")}
    else:
        img, truth = simulate_multislice(model(), margin=MARGIN, **SETTINGS)
        expected, px = img.data.astype(np.float32), img.pixel_size
    ph = phonon_averaged_columns(truth)
    np.savez_compressed(OUT, expected=expected, pixel_size=px, phonon_x_px=ph[:, 0], phonon_y_px=ph[:, 1],
                        **{f"truth_{k}": np.asarray(v) for k, v in truth.items()})
    print(OUT, expected.shape, float(expected.max()))
