"""STEM image readers on a measured file from another group (tests/data/stem, SOURCES.md): the
calibration comes from the file in the right unit, is checked against the microscope's own
record, and a calibration that cannot be atomic-resolution STEM is refused, not used."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from halex.errors import CalibrationError, FileFormatError
from halex.stem import read_image

DATA = Path(__file__).parent / "data" / "stem"
TIA = DATA / "128x128-TEM_search.emi"


def test_tia_calibration_is_read_in_its_unit_and_agrees_with_the_microscope_record():
    pytest.importorskip("rsciio")
    with pytest.raises(CalibrationError) as err:  # a 5 nm-pixel TEM search image is no atomic-resolution image
        read_image(TIA)
    px = float(re.search(r"pixel size ([0-9.]+) Å", str(err.value)).group(1))
    # the .emi's own text: Ceta camera (14 µm pixels), binning 8, magnification 22500×
    text = TIA.read_bytes().decode("latin-1")
    mag = float(re.search(r"<Magnification>(\d+) X</Magnification>", text).group(1))
    binning = int(re.search(r"<Binning>(\d+)</Binning>", text).group(1))
    expected_A = 14e-6 * binning / mag * 1e10
    assert abs(px - expected_A) < 0.1 * expected_A, (px, expected_A)  # projector calibration differs by a few %
    with pytest.raises(CalibrationError, match="disagrees with the file's calibration"):
        read_image(TIA, pixel_size=0.5)


def test_a_missing_reader_package_is_named(monkeypatch, tmp_path):
    import importlib

    real = importlib.import_module

    def no_h5py(name, *args, **kwargs):
        if name.startswith("rsciio."):
            raise ModuleNotFoundError("No module named 'h5py'", name="h5py")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", no_h5py)
    f = tmp_path / "scan.emd"
    f.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(FileFormatError, match="'h5py', which is not installed"):
        read_image(f)


def test_berkeley_emd_unit_n_m_is_a_nanometre():
    from halex.stem.io import _unit_scale

    assert _unit_scale("n_m") == 10.0 and _unit_scale("nm") == 10.0 and _unit_scale("pm") == 0.01
