"""Detector values are not electron counts: gain and offset, and a flag when the image cannot be counts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import run_cli
from halex.errors import InputError
from halex.models import heterostructure
from halex.stem import simulate_image
from halex.stem.analysis import analyze_image, detector_counts


@pytest.fixture(scope="module")
def counts_image():
    image, _ = simulate_image(heterostructure((4, 4, 3), 1), kind="haadf", dose=1e5, pixel_size=0.1, seed=0)
    return image


def test_raw_detector_values_are_not_fitted_as_counts(counts_image):
    """A raw detector image (offset 10⁴, 3.7 values per electron) of the same counts: without
    gain/offset it is fitted with Gaussian noise and says so; with them the analysis is
    exactly the counts' analysis."""
    ref = analyze_image(counts_image)
    assert ref.summary["fit"]["noise_model"] == "poisson" and ref.summary["warnings"] == []
    raw = dataclasses.replace(counts_image, data=1.0e4 + 3.7 * counts_image.data)
    flagged = analyze_image(raw)
    assert flagged.summary["fit"]["noise_model"] == "gaussian"
    assert any("does not behave like electron counts" in w and "--gain" in w for w in flagged.summary["warnings"])
    fixed = analyze_image(raw, gain=3.7, offset=1.0e4)
    assert fixed.summary["fit"]["noise_model"] == "poisson" and fixed.summary["warnings"] == []
    assert np.allclose(fixed.columns["x_A"], ref.columns["x_A"]) and np.allclose(fixed.columns["sigma_x_A"],
                                                                                   ref.columns["sigma_x_A"], equal_nan=True)


def test_detector_options_are_checked():
    with pytest.raises(InputError, match="gain"):
        detector_counts(np.ones((8, 8)), gain=0.0)
    with pytest.raises(InputError, match="noise model"):
        detector_counts(np.ones((8, 8)), noise="cauchy")
    assert detector_counts(np.ones((8, 8)), noise="gaussian")[1:] == ("gaussian", [])


def test_cli_says_so_and_takes_gain_and_offset(counts_image, tmp_path):
    from halex.stem.io import write_image

    write_image(tmp_path / "raw.tif", dataclasses.replace(counts_image, data=1.0e4 + 3.7 * counts_image.data))
    r = run_cli("stem", "analyze", "raw.tif", "-o", "a", cwd=tmp_path)
    assert r.returncode == 0 and "does not behave like electron counts" in r.stderr, r.stderr[-2000:]
    r = run_cli("stem", "analyze", "raw.tif", "--gain", "3.7", "--offset", "10000", "-o", "b", cwd=tmp_path)
    assert r.returncode == 0 and "electron counts" not in r.stderr, r.stderr[-2000:]


def test_quoted_position_errors_are_checked_against_the_lattice_scatter():
    """Counts fitted as counts: the Pb–Pb spacings scatter as the position errors say. The same
    image in detector units (30 values per electron) forced through a Poisson fit quotes
    errors √30 too small; the scatter check catches it and says which precision to use."""
    image, _ = simulate_image(heterostructure((6, 6, 3), 1), kind="haadf", dose=1e5, pixel_size=0.1, seed=0)
    good = analyze_image(image)
    assert 0.5 <= good.summary["precision"]["ratio"] <= 2.0
    assert not any("scatter" in w for w in good.summary["warnings"])
    bad = analyze_image(dataclasses.replace(image, data=30.0 * image.data), noise="poisson")
    assert bad.summary["precision"]["ratio"] == pytest.approx(np.sqrt(30.0), rel=0.5)
    assert any("spacings (Pb–Pb, or between equivalent columns) scatter" in w for w in bad.summary["warnings"])
