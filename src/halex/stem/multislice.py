"""HAADF images by frozen-phonon multislice (abTEM, optional extra ``multislice``).

:func:`~halex.stem.simulate.simulate_image` draws each atom as a Gaussian (or an aperture
probe over a Gaussian), the very model the column fitter assumes. To test the analysis on
images that model did not make, this module runs a real multislice calculation with abTEM
(Madsen & Susi, Open Res. Europe 1, 24 (2021); GPL-3, so an optional extra imported only
here):

* the model is turned into the image frame of :func:`simulate_image` (beam along the zone
  axis, image x and y as there), so the truth table of
  :func:`~halex.stem.simulate.project_columns` applies unchanged;
* the projected potential is abTEM's (Lobato parametrisation, infinite projection, slices of
  ``slice_thickness``), averaged over ``frozen_phonons`` thermal configurations of isotropic
  RMS displacement ``thermal_sigma`` per direction (0.08 Å ≈ room-temperature U_iso of Pb and
  the halides in CsPbX3), which gives the thermal diffuse scattering HAADF images are made of;
* the probe is aberration-free at ``voltage_kV`` and ``semiangle_mrad``, scanned by PRISM
  (Ophus, Adv. Struct. Chem. Imaging 3, 13 (2017)) with ``interpolation`` (1: exact multislice);
* the detector is an annulus of ``detector_mrad``; the image is the fraction of the probe's
  electrons on it, times ``dose · pixel²`` with Poisson noise when a dose is given.

Cost grows with the image area squared (PRISM beams × grid points): keep models small
(a few nm on a side); this is a test-data generator, not the fast simulator.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from ase import Atoms

from halex.errors import InputError
from halex.stem.io import StemImage
from halex.stem.simulate import project_columns, zone_frame

__all__ = ["simulate_multislice", "image_frame_atoms"]

log = logging.getLogger("halex.stem")


def image_frame_atoms(atoms: Atoms, zone: str, pixel_size: float, margin: float) -> tuple[Atoms, dict[str, float]]:
    """``atoms`` in the image frame: x right, y down (pixel coordinates × ``pixel_size``), z along the beam.

    Returns the rotated model in an orthogonal cell that spans the image (and the model's
    depth plus 1 Å), and the image origin (``h0``, ``v1``, ``nx``, ``ny``) as
    :func:`~halex.stem.simulate.simulate_image` defines it.
    """
    beam, ex, up = zone_frame(zone)
    pos = atoms.get_positions()
    h, v, d = pos @ ex, pos @ up, pos @ beam
    h0, v1 = float(h.min() - margin), float(v.max() + margin)
    nx = int(np.ceil((h.max() + margin - h0) / pixel_size)) + 1
    ny = int(np.ceil((v1 - (v.min() - margin)) / pixel_size)) + 1
    new = Atoms(atoms.numbers, positions=np.column_stack([h - h0, v1 - v, d - d.min() + 0.5]),
                cell=[nx * pixel_size, ny * pixel_size, float(np.ptp(d)) + 1.0], pbc=True)
    return new, {"h0": h0, "v1": v1, "nx": nx, "ny": ny}


def _abtem():
    try:
        import abtem
    except ImportError as exc:
        raise InputError("multislice images need abTEM: pip install 'halex[multislice]'") from exc
    abtem.config.set({"device": "cpu", "fft": "fftw", "precision": "float32"})
    return abtem


def simulate_multislice(atoms: Atoms, *, zone: str = "001", pixel_size: float = 0.2, margin: float = 5.0,
                        voltage_kV: float = 200.0, semiangle_mrad: float = 20.0,
                        detector_mrad: tuple[float, float] = (70.0, 200.0), sampling: float = 0.04,
                        slice_thickness: float = 2.0, frozen_phonons: int = 4, thermal_sigma: float = 0.08,
                        interpolation: int = 1, dose: float | None = None, seed: int = 0,
                        workers: int | None = None) -> tuple[StemImage, dict[str, np.ndarray]]:
    """HAADF image of ``atoms`` by frozen-phonon multislice (PRISM), with the true columns.

    Parameters
    ----------
    atoms
        The model (any size abTEM can afford: a few nm across).
    zone
        ``"001"`` or ``"101"``, as :func:`~halex.stem.simulate.simulate_image`.
    pixel_size
        Scan step (Å): one probe position per image pixel.
    margin
        Vacuum around the model (Å).
    voltage_kV, semiangle_mrad
        Probe (aberration-free).
    detector_mrad
        Inner and outer detector angle (mrad).
    sampling
        Real-space sampling of the potential (Å); the largest angle it resolves must exceed the
        detector's outer angle.
    slice_thickness
        Å.
    frozen_phonons, thermal_sigma
        Configurations averaged, and their RMS displacement per direction (Å).
    interpolation
        PRISM interpolation factor (1: exact).
    dose
        e/Å²; None: the noiseless expected counts per electron·Å² (``dose`` = 1).
    seed
        Seed of the displacements and the noise.
    workers
        Threads of the calculation (default all cores).

    Returns
    -------
    image, truth
        A ``haadf`` :class:`~halex.stem.io.StemImage` in counts, and the column table of
        :func:`~halex.stem.simulate.project_columns` with ``x_px``, ``y_px``, ``x_A``, ``y_A``.

    Raises
    ------
    InputError
        A sampling too coarse for the detector, or bad numbers.
        abTEM not installed (the message names the extra).
    """
    import os

    from halex.stem.fourd import wavelength_A

    if min(pixel_size, sampling, slice_thickness, voltage_kV, semiangle_mrad) <= 0 or frozen_phonons < 1:
        raise InputError("pixel_size, sampling, slice_thickness, voltage and semi-angle must be > 0, frozen_phonons >= 1")
    max_angle = 1000 * wavelength_A(voltage_kV) / (2 * sampling) * 2 / 3  # abTEM's antialiased cutoff (mrad)
    if detector_mrad[1] > max_angle:
        raise InputError(f"a potential sampling of {sampling} Å resolves {max_angle:.0f} mrad, less than the detector's "
                         f"outer {detector_mrad[1]:.0f} mrad: use a finer sampling")
    abtem = _abtem()
    frame, origin = image_frame_atoms(atoms, zone, pixel_size, margin)
    phonons = abtem.FrozenPhonons(frame, num_configs=frozen_phonons, sigmas=thermal_sigma, seed=seed)
    gpts = tuple(int(interpolation * np.ceil(L / (sampling * interpolation))) for L in frame.cell.lengths()[:2])
    potential = abtem.Potential(phonons, gpts=gpts, slice_thickness=slice_thickness, parametrization="lobato",
                                projection="infinite")  # gpts a multiple of the PRISM interpolation factor
    smatrix = abtem.SMatrix(semiangle_cutoff=semiangle_mrad, energy=1e3 * voltage_kV, potential=potential,
                            interpolation=interpolation)
    scan = abtem.GridScan(start=(0.0, 0.0), end=(origin["nx"] * pixel_size, origin["ny"] * pixel_size),
                          sampling=pixel_size)
    detector = abtem.AnnularDetector(inner=detector_mrad[0], outer=detector_mrad[1])
    log.info("[stem] multislice: %d atoms, %d×%d probe positions, %d frozen phonon configurations", len(atoms),
             origin["nx"], origin["ny"], frozen_phonons)
    result = smatrix.scan(scan=scan, detectors=detector).compute(scheduler="threads",
                                                                 num_workers=workers or os.cpu_count(), progress_bar=False)
    frac = np.asarray(result.array, float)
    frac = frac[: origin["nx"], : origin["ny"]].T  # abTEM scans x first: (x, y) -> image rows y
    return _finish(atoms, frac, zone, pixel_size, origin, dose, seed, {
        "voltage_kV": voltage_kV, "semiangle_mrad": semiangle_mrad, "detector_mrad": list(detector_mrad),
        "sampling_A": sampling, "slice_thickness_A": slice_thickness, "frozen_phonons": frozen_phonons,
        "thermal_sigma_A": thermal_sigma, "interpolation": interpolation, "abtem": abtem.__version__})


def _finish(atoms: Atoms, frac: np.ndarray, zone: str, px: float, origin: dict[str, float], dose: float | None,
            seed: int, settings: dict[str, Any]) -> tuple[StemImage, dict[str, np.ndarray]]:
    """Counts (Poisson at ``dose``) and the truth table in image coordinates."""
    scale = 1.0 if dose is None else dose * px * px
    data = scale * frac if dose is None else np.random.default_rng(seed).poisson(scale * frac).astype(float)
    truth = project_columns(atoms, zone)
    truth["x_px"] = (truth["h_A"] - origin["h0"]) / px
    truth["y_px"] = (origin["v1"] - truth["v_A"]) / px
    truth["x_A"], truth["y_A"] = truth["x_px"] * px, truth["y_px"] * px
    meta = {"settings": {**settings, "zone": zone, "pixel_size": px, "dose": dose, "method": "multislice"},
            "zone": zone, "origin_h_A": origin["h0"], "origin_v_A": origin["v1"]}
    return StemImage(data, px, "haadf", "simulated (multislice)", meta), truth
