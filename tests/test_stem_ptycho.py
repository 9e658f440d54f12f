"""Ptychographic phase through py4DSTEM in its own environment (``.venv-ptycho``, made by
scripts/setup.sh), on 4D data halex simulated from a model with a known projected potential."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from conftest import run_cli
from halex.io import write_structure
from halex.models import perovskite_nanocrystal
from halex.stem.fourd import simulate_4d
from halex.stem.io import read_image

try:
    from halex.stem.ptycho import find_ptycho_python

    find_ptycho_python()
    HAVE_PTYCHO = True
except Exception:  # no py4DSTEM environment on this machine
    HAVE_PTYCHO = False

needs_ptycho = pytest.mark.skipif(not HAVE_PTYCHO, reason="no py4DSTEM environment (bash scripts/setup.sh makes .venv-ptycho)")


@needs_ptycho
@pytest.mark.slow
def test_ptychographic_phase_follows_the_projected_potential_and_gives_the_lattice(tmp_path):
    """simulate --kind 4d → phase --method ptycho → analyze: the phase correlates with the model's
    projected potential, and the analysis finds the model's lattice."""
    nc = perovskite_nanocrystal((4, 4, 3))
    write_structure(tmp_path / "nc.extxyz", nc)
    r = run_cli("stem", "simulate", "nc.extxyz", "--kind", "4d", "--dose", "1e5", "--seed", "1", "-o", "d4.npy",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_cli("stem", "phase", "d4.npy", "--method", "ptycho", "-o", "p.tif", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr.count("[ptycho] iteration") == 10 and "ETA" in r.stderr
    assert (tmp_path / "p.png").stat().st_size > 0
    img = read_image(tmp_path / "p.tif")
    data, cal, truth = simulate_4d(nc, dose=1e5, seed=1)
    assert img.pixel_size == pytest.approx(1 / (data.shape[-1] * cal.detector_mrad * 1e-3 / 0.025079), rel=0.01)
    ref = truth["phase_probe"]
    z = ndimage.zoom(img.data, (ref.shape[0] / img.data.shape[0], ref.shape[1] / img.data.shape[1]), order=3)
    r_ptycho = np.corrcoef(z.ravel(), ref.ravel())[0, 1]
    # iCoM gives 0.97 here; the ptychographic object is sampled at 0.39 Å, λ over the detector's extent
    assert r_ptycho >= 0.9, r_ptycho
    r = run_cli("stem", "analyze", "p.tif", "--figures", "none", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    from scipy.spatial.distance import pdist

    a_model = pdist(nc.positions[nc.numbers == 82]).min()  # the model's Pb–Pb spacing
    assert s["cell"]["projection"] == "perovskite-001"
    assert abs(s["cell"]["a_A"] - a_model) < max(0.02, 4 * s["cell"]["a_sem_A"]), (s["cell"]["a_A"], a_model)


def test_ptycho_bad_input_costs_nothing(tmp_path):
    np.save(tmp_path / "d.npy", np.ones((3, 3, 8, 8), np.float32))
    args = ["stem", "phase", "d.npy", "--method", "ptycho", "--scan-step", "0.2", "--detector-pixel", "2", "--voltage",
            "200", "--semiangle", "14", "-o", "p.tif"]
    r = run_cli(*args, "--ptycho-python", str(tmp_path / "none" / "python"), cwd=tmp_path)
    assert r.returncode == 2 and "py4DSTEM" in r.stderr and ".venv-ptycho" in r.stderr and "Traceback" not in r.stderr
    if HAVE_PTYCHO:
        r = run_cli(*args, "--iterations", "0", cwd=tmp_path)
        assert r.returncode == 2 and "--iterations" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "p.tif").exists()


def test_the_scan_reaches_the_worker_block_by_block_unchanged(tmp_path):
    """A lazily read scan (dask array, memory map) is written for py4DSTEM a block of rows at a
    time, as float32, with every value in place."""
    da = pytest.importorskip("dask.array")
    from halex.stem.ptycho import _write_scan

    data = np.random.default_rng(1).poisson(7, (37, 5, 6, 6)).astype(np.uint16)  # 37 rows: a partial last block
    for i, src in enumerate((da.from_array(data, chunks=(4, 5, 6, 6)), data)):
        _write_scan(src, tmp_path / f"d{i}.npy", rows=16)
        back = np.load(tmp_path / f"d{i}.npy")
        assert back.dtype == np.float32 and np.array_equal(back, data.astype(np.float32))
