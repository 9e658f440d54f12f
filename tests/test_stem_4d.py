"""4D-STEM: calibration, centre-of-mass phase (iCoM) against analytic and simulated truth,
the phase image through the column analysis, and bad 4D input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli
from halex.errors import CalibrationError, InputError
from halex.models import perovskite_nanocrystal
from halex.stem.fourd import Calibration, center_of_mass, icom, read_4d, simulate_4d, wavelength_A, write_4d

pytest.importorskip("skimage")


def test_relativistic_wavelength():
    """2.508 pm at 200 kV and 1.969 pm at 300 kV (International Tables C, 4.3.1)."""
    assert wavelength_A(200) == pytest.approx(0.025079, abs=2e-6)
    assert wavelength_A(300) == pytest.approx(0.019687, abs=2e-6)


def test_icom_integrates_an_analytic_phase_gradient():
    """A Gaussian phase bump: its CoM field is λ/(2π)·∇φ exactly; iCoM must give φ back."""
    cal = Calibration(0.2, 1.0, 200.0, 20.0)
    n = 128
    y, x = (np.mgrid[0:n, 0:n] - n / 2) * cal.scan_step_A
    phi = 0.3 * np.exp(-(x**2 + y**2) / (2 * 2.0**2))
    gy, gx = np.gradient(phi, cal.scan_step_A)
    lam = wavelength_A(cal.voltage_kV)
    com_x, com_y = 1e3 * lam / (2 * np.pi) * gx, 1e3 * lam / (2 * np.pi) * gy  # mrad
    back = icom(com_x, com_y, cal)
    assert np.abs(back - (phi - phi.mean())).max() < 0.003


@pytest.fixture(scope="module")
def sim():
    nc = perovskite_nanocrystal((4, 4, 3))
    return nc, *simulate_4d(nc, dose=1e5, seed=1)


def test_icom_of_simulated_4d_data_follows_the_projected_potential(sim):
    _, data, cal, truth = sim
    cx, cy = center_of_mass(data, cal)
    r = np.corrcoef(icom(cx, cy, cal).ravel(), truth["phase_probe"].ravel())[0, 1]
    assert r >= 0.9, r
    # the detector calibration is the simulation's own: 2 × semi-angle fits the cropped pattern
    assert cal.detector_mrad * (data.shape[-1] - 1) / 2 >= 2 * 13.9


def test_phase_image_from_4d_data_gives_the_columns(sim, tmp_path):
    """simulate --kind 4d → phase → analyze: Pb+X, Cs and X columns within 0.1 Å of the model."""
    from scipy.spatial import cKDTree

    from halex.io import write_structure
    from halex.stem.simulate import project_columns

    nc = sim[0]
    write_structure(tmp_path / "nc.extxyz", nc)
    r = run_cli("stem", "simulate", "nc.extxyz", "--kind", "4d", "--dose", "1e5", "-o", "d4.npy", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_cli("stem", "phase", "d4.npy", "-o", "phase.tif", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "phase.png").stat().st_size > 0, r.stderr[-2000:]
    r = run_cli("stem", "analyze", "phase.tif", "--figures", "none", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["image"]["kind"] == "phase" and s["cell"]["projection"] == "perovskite-001"
    meta = json.loads((tmp_path / "d4.json").read_text())
    t = project_columns(nc, "001")
    tx, ty = t["h_A"] - meta["origin_h_A"], -t["v_A"] - meta["origin_v_A"]
    cols = np.genfromtxt(tmp_path / "out" / "columns.csv", delimiter=",", names=True, dtype=None, encoding=None)
    d, j = cKDTree(np.column_stack([tx, ty])).query(np.column_stack([cols["x_A"], cols["y_A"]]))
    for kind in ("Pb+X", "Cs", "X"):
        m = t["kind"][j] == kind
        assert m.sum() >= 4 and d[m].max() < 0.1, (kind, d[m].max())


def test_a_4d_file_is_read_in_row_blocks_with_its_calibration(tmp_path):
    data = np.random.default_rng(0).poisson(3.0, (5, 6, 8, 8)).astype(np.uint16)
    write_4d(tmp_path / "d.npy", data, Calibration(0.3, 2.0, 300.0, 20.0))
    lazy, cal = read_4d(tmp_path / "d.npy")
    assert lazy.shape == data.shape and np.array_equal(lazy[1:3], data[1:3])
    assert cal == Calibration(0.3, 2.0, 300.0, 20.0)
    cx, _ = center_of_mass(lazy, cal, chunk_rows=2)
    ref, _ = center_of_mass(data, cal, chunk_rows=5)
    assert np.allclose(cx, ref)
    assert read_4d(tmp_path / "d.npy", scan_step=0.5)[1].scan_step_A == 0.5


def test_bad_4d_input(tmp_path):
    np.save(tmp_path / "three.npy", np.zeros((4, 4, 4)))
    with pytest.raises(InputError, match="4D dataset needs shape"):
        read_4d(tmp_path / "three.npy", scan_step=0.2, detector_pixel=1, voltage=200, semiangle=20)
    np.save(tmp_path / "rect.npy", np.zeros((3, 3, 8, 6)))
    with pytest.raises(InputError, match="square"):
        read_4d(tmp_path / "rect.npy", scan_step=0.2, detector_pixel=1, voltage=200, semiangle=20)
    np.save(tmp_path / "nocal.npy", np.ones((3, 3, 8, 8)))
    with pytest.raises(CalibrationError, match="--scan-step"):
        read_4d(tmp_path / "nocal.npy")
    raw = (tmp_path / "nocal.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="truncated or inconsistent"):
        read_4d(tmp_path / "cut.npy", scan_step=0.2, detector_pixel=1, voltage=200, semiangle=20)
    for args, text in ((["nocal.npy"], "--scan-step"), (["three.npy", "--scan-step", "0.2", "--detector-pixel", "1",
                                                         "--voltage", "200", "--semiangle", "20"], "4D dataset"),
                       (["nocal.npy", "--method", "ptycho", "--ptycho-python", "no-env/bin/python"], "py4DSTEM"),
                       (["nocal.npy", "--scan-step", "0.2", "--detector-pixel", "1", "--voltage", "200", "--semiangle",
                         "20", "--iterations", "5", "--defocus", "40"], "--iterations, --defocus apply to --method ptycho")):
        r = run_cli("stem", "phase", *args, "-o", "p.tif", cwd=tmp_path)
        assert r.returncode == 2 and text in r.stderr and "Traceback" not in r.stderr, r.stderr[-1500:]
        assert not (tmp_path / "p.tif").exists() and not (tmp_path / "p.png").exists()


def test_a_hyperspy_4d_file_is_read_lazily_with_its_axes(tmp_path):
    """RosettaSciIO path: nm scan axes and mrad detector axes from the file, read as a dask array."""
    hspy = pytest.importorskip("rsciio.hspy")
    data = np.random.default_rng(0).poisson(5, (6, 7, 16, 16)).astype(np.uint16)
    axes = [{"name": n, "size": s, "scale": sc, "offset": 0.0, "units": u, "navigate": nav}
            for n, s, sc, u, nav in (("y", 6, 0.025, "nm", True), ("x", 7, 0.025, "nm", True),
                                     ("ky", 16, 1.5, "mrad", False), ("kx", 16, 1.5, "mrad", False))]
    hspy.file_writer(str(tmp_path / "d.hspy"), {
        "data": data, "axes": axes, "metadata": {"General": {"title": "4d"}, "Signal": {"signal_type": ""}},
        "original_metadata": {}, "tmp_parameters": {}, "attributes": {"_lazy": False},
        "package_info": {"name": "halex", "version": "0"}, "learning_results": {}, "models": {}})
    lazy, cal = read_4d(tmp_path / "d.hspy", voltage=200, semiangle=20)
    assert not isinstance(lazy, np.ndarray) and np.shape(lazy) == data.shape
    assert cal.scan_step_A == pytest.approx(0.25) and cal.detector_mrad == pytest.approx(1.5)
    cx, cy = center_of_mass(lazy, cal, chunk_rows=2)
    assert np.allclose(cx, center_of_mass(data, cal)[0])


def test_a_scan_too_large_to_load_whole_is_refused_with_the_estimate():
    from halex.stem.fourd import check_fits_in_memory

    nbytes = 512 * 512 * 256 * 256 * 2  # 512² probe positions, 256² uint16 patterns
    with pytest.raises(InputError, match=r"≈ 34\.4 GB, more than 50% of the 16\.0 GB available"):
        check_fits_in_memory(nbytes, "scan.mib", available=16e9)
    check_fits_in_memory(1e9, "small.mib", available=16e9)  # fits: no error


MERLIN = __import__("pathlib").Path(__file__).parent / "data" / "stem" / "merlin"


def _raw_merlin_frames(path, n_frames, shape=(256, 256), header=384):
    """The frames of a 1-byte (6-bit counter) Merlin .mib, parsed from the bytes themselves:
    each frame is a 384-byte ASCII header followed by the pixels (independent of RosettaSciIO)."""
    raw = np.fromfile(path, np.uint8).reshape(n_frames, header + shape[0] * shape[1])
    assert raw[0, :3].tobytes() == b"MQ1"
    # rows run bottom-up in the file: RosettaSciIO (and so halex) shows them top-down
    return raw[:, header:].reshape(n_frames, *shape)[:, ::-1].astype(float)


def test_measured_merlin_4d_scan_reads_and_gives_the_centre_of_mass_of_its_raw_frames(tmp_path):
    """A Medipix3 (Merlin) 4 × 2 scan of 256 × 256 frames, 6-bit counters (RosettaSciIO test data):
    read lazily through RosettaSciIO, its CoM equals that of the frames parsed from the raw bytes."""
    pytest.importorskip("rsciio")
    path = MERLIN / "001_4x2_6bit.mib"
    with pytest.raises(CalibrationError, match="--scan-step"):
        read_4d(path)
    data, cal = read_4d(path, scan_step=0.2, detector_pixel=0.25, voltage=200, semiangle=14)
    assert np.shape(data) == (2, 4, 256, 256)  # the header: 8 frames in the acquisition
    frames = _raw_merlin_frames(path, 8)
    assert np.asarray(data).max() <= 63 and np.array_equal(np.asarray(data).reshape(8, 256, 256), frames)
    cx, cy = center_of_mass(data, cal)
    g = np.arange(256) - 127.5
    tot = frames.sum(axis=(1, 2))
    ref_x = (frames.sum(axis=1) @ g) / tot
    ref_y = (frames.sum(axis=2) @ g) / tot
    assert np.allclose(cx.ravel(), 0.25 * (ref_x - ref_x.mean()), atol=1e-9)
    assert np.allclose(cy.ravel(), 0.25 * (ref_y - ref_y.mean()), atol=1e-9)
    r = run_cli("stem", "phase", str(path), "--scan-step", "0.2", "--detector-pixel", "0.25", "--voltage", "200",
                "--semiangle", "14", "-o", str(tmp_path / "p.tif"))
    assert r.returncode == 0, r.stderr
    assert "4×2 px" in r.stdout


def test_measured_merlin_roi_scan_with_a_rectangular_detector_is_refused(tmp_path):
    pytest.importorskip("rsciio")
    r = run_cli("stem", "phase", str(MERLIN / "002_4x2_6bit_roi128.mib"), "--scan-step", "0.2", "--detector-pixel", "0.25",
                "--voltage", "200", "--semiangle", "14", "-o", str(tmp_path / "p.tif"))
    assert r.returncode == 2 and "128×256" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "p.tif").exists()
