"""STEM on measured images from another group: SrTiO3 [110] ADF and ABF (Atomap test data).

The images show an oxide perovskite, not a lead halide: halex must find the projected cell
from the columns, measure the lattice parameter, detect the ABF image's dark contrast, and
give no halide label and no second domain. SrTiO3: cubic, a = 3.905 Å.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli

pytest.importorskip("rsciio")
pytest.importorskip("h5py")

DATA = Path(__file__).parent / "data" / "stem"
PIXEL_A = 0.09326  # the files' 0.009326, in nm (tests/data/SOURCES.md)
A_STO = 3.905


@pytest.mark.parametrize("name, contrast", [("ADF", "bright"), ("ABF", "dark")])
def test_srtio3_110_lattice_without_halide_labels(tmp_path, name, contrast):
    path = DATA / f"atomap_SrTiO3_110_{name}.hdf5"
    r = run_cli("stem", "analyze", str(path), "--pixel-size", str(PIXEL_A), "-o", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    cell = s["cell"]
    assert cell["projection"] == "abo3-110"
    assert cell["a_A"] == pytest.approx(A_STO, rel=0.01)
    assert cell["a_sem_A"] < 0.01 and cell["halide_columns_visible"] is False
    assert s["contrast"]["used"] == contrast and s["contrast"]["given"] == "auto"
    assert s["halides"] == {"Cl": 0, "I": 0, "mixed": 0} and s["halide_populations"]["verdict"] == "not measurable"
    assert set(s["domains"]) == {"lattice"} and s["mismatch"] == {}
    # the two brightness classes (Sr–O, Ti) are kept apart, in equal numbers
    subs = s["sublattices"]
    assert abs(subs["bright"] - subs["dim"]) < 0.1 * (subs["bright"] + subs["dim"])
    assert "lattice-only mode" in r.stderr and "pseudo-cubic a = 3.9" in r.stdout


def test_a_given_zone_is_not_forced_onto_an_oxide(tmp_path):
    """--zone 001 on the [110] image: measured as what it is, and said so (once an error that
    hinted at a zone which failed as well)."""
    path = DATA / "atomap_SrTiO3_110_ADF.hdf5"
    r = run_cli("stem", "analyze", str(path), "--pixel-size", str(PIXEL_A), "--zone", "001", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0 and "--zone 001 not applied" in r.stderr, r.stderr[-2000:]
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["cell"]["a_A"] == pytest.approx(A_STO, rel=0.01) and s["halides"]["Cl"] == s["halides"]["I"] == 0


def test_unitless_scale_is_refused_with_the_number(tmp_path):
    r = run_cli("stem", "analyze", str(DATA / "atomap_SrTiO3_110_ADF.hdf5"), "-o", "out", cwd=tmp_path)
    assert r.returncode == 2 and "no unit" in r.stderr and "0.0932627" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_adf_and_abf_agree_column_by_column():
    """The two detectors saw the same columns at the same time: the lattice parameters agree
    within their spreads."""
    from halex.stem.analysis import analyze_image
    from halex.stem.io import read_image

    a = [analyze_image(read_image(DATA / f"atomap_SrTiO3_110_{n}.hdf5", pixel_size=PIXEL_A)).summary["cell"]
         for n in ("ADF", "ABF")]
    assert abs(a[0]["a_A"] - a[1]["a_A"]) < 3 * np.hypot(a[0]["a_sem_A"], a[1]["a_sem_A"]) + 0.005
