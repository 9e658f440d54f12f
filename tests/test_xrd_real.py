"""XRD on measured patterns from other groups (tests/data/xrd, SOURCES.md): the readers, the
file's own wavelength, per-symmetry cells against published values, weight fractions of a
weighed mixture, and the flags that say when the phase list does not index the pattern."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.spacegroup import crystal

from conftest import run_cli
from halex.errors import FileFormatError, InputError
from halex.xrd import fit_pattern, read_pattern

DATA = Path(__file__).parent / "data" / "xrd"
XRDML = DATA / "In2O3_0p5002-MnCO3_0p5000--8min.xrdml"
PBSO4 = DATA / "PBSO4.XRA"
PBSO4_CIF = DATA / "PbSO4-Wyckoff.cif"
# Published cells (Å): In2O3 bixbyite, Marezio, Acta Cryst. 20, 723 (1966); MnCO3 rhodochrosite,
# Effenberger, Mereiter & Zemann, Z. Kristallogr. 156, 233 (1981); PbSO4 anglesite, the
# Wyckoff cell of the CIF shipped with the IUCr round-robin data (Hill, J. Appl. Cryst. 25, 589 (1992)).
IN2O3_A = 10.117
MNCO3_C_OVER_A = 15.6354 / 4.7682
PBSO4_ABC = (8.48, 5.398, 6.958)


def _in2o3():
    atoms = crystal(["In", "In", "O"], basis=[(0.25, 0.25, 0.25), (-0.03338, 0, 0.25), (0.39083, 0.15465, 0.38203)],
                    spacegroup=206, cellpar=[IN2O3_A] * 3 + [90] * 3)
    atoms.info["phase"] = "In2O3"
    return atoms


def _mnco3():
    atoms = crystal(["Mn", "C", "O"], basis=[(0, 0, 0), (0, 0, 0.25), (0.2726, 0, 0.25)], spacegroup=167,
                    cellpar=[4.7682, 4.7682, 15.6354, 90, 90, 120])
    atoms.info["phase"] = "MnCO3"
    return atoms


def test_gsas_std_reader_on_the_round_robin_file():
    pat = read_pattern(PBSO4)
    assert pat.two_theta_deg.size == 6001
    assert pat.two_theta_deg[[0, -1]].tolist() == pytest.approx([10.0, 160.0])
    assert pat.intensity[:3].tolist() == [179.0, 147.0, 165.0]
    assert pat.sigma[0] == pytest.approx(np.sqrt(179.0))
    assert pat.meta["format"] == "GSAS STD" and "PbSO4" in pat.meta["title"]


def test_xrdml_wavelength_comes_from_the_file_and_a_contradiction_is_refused(tmp_path):
    pat = read_pattern(XRDML)
    assert pat.meta["radiation"] == ((1.540598, 1.0), (1.544426, 0.5))
    mono = tmp_path / "mono.xrdml"  # the same scan declared Kα1-only (a monochromated instrument)
    mono.write_text(XRDML.read_text().replace("<ratioKAlpha2KAlpha1>0.5000", "<ratioKAlpha2KAlpha1>0.0000"))
    one = read_pattern(mono)
    assert one.meta["radiation"] == ((1.540598, 1.0),)
    with pytest.raises(InputError, match="contradicts the file"):
        fit_pattern(one, [_in2o3()], wavelength="CuKa")


def test_orthorhombic_cell_refined_axis_by_axis_on_the_pbso4_round_robin():
    fit = fit_pattern(read_pattern(PBSO4), [str(PBSO4_CIF)], wavelength="CuKa")
    (ph,) = fit.phases
    for got, err, want in zip(ph.cell_A, ph.cell_err_A, PBSO4_ABC):
        assert abs(got - want) < 1e-3 * want, (ph.cell_A, PBSO4_ABC)
        assert 1e-4 < err < 2e-3  # scaled by χ² and by the residual's correlation, not 1e-5
    assert len(set(round(e, 8) for e in ph.cell_err_A)) == 3  # three independent lengths
    assert fit.meta["berar_lelann_factor"] > 2
    assert any("reduced χ²" in w for w in fit.warnings)  # the lab profile is not described to the noise


def test_weighed_mixture_gives_its_fractions_and_published_cells():
    fit = fit_pattern(read_pattern(XRDML), [_in2o3(), _mnco3()])
    assert fit.meta["wavelength_from"] == "file"
    in2o3, mnco3 = fit.phases
    assert abs(in2o3.cell_A[0] - IN2O3_A) < 1e-3 * IN2O3_A
    assert abs(mnco3.cell_A[2] / mnco3.cell_A[0] - MNCO3_C_OVER_A) < 0.01 * MNCO3_C_OVER_A  # c/a refined
    # weighed 0.5002 g : 0.5000 g (file name); no micro-absorption correction
    assert in2o3.weight_fraction == pytest.approx(0.5, abs=0.03)
    assert 0.001 < in2o3.weight_fraction_err < 0.03
    assert not any("explain" in w for w in fit.warnings)  # the two phases index every peak


def test_a_phase_list_that_does_not_index_the_pattern_is_flagged():
    pat = read_pattern(XRDML)
    missing = fit_pattern(pat, [_in2o3()])  # MnCO3 left out: its peaks stay unexplained
    assert any("not explained" in w and "31.4" in w for w in missing.warnings), missing.warnings
    wrong = fit_pattern(pat, ["CsPbCl3"], two_theta_range=(20.0, 50.0))
    assert any("explain only" in w for w in wrong.warnings), wrong.warnings


def test_bruker_raw_reader_agrees_with_the_vendors_own_text_export():
    pat = read_pattern(DATA / "BT86.raw")
    rows = [ln.split() for ln in (DATA / "BT86_.UXD").read_text(errors="replace").splitlines()
            if ln[:1].isdigit()]
    uxd = np.array(rows, float)  # DIFFRAC's conversion of the same file: 2θ (4 significant digits), counts
    assert pat.two_theta_deg.size == uxd.shape[0] == 2374
    assert np.allclose(pat.two_theta_deg, uxd[:, 0], atol=0.0051)  # the export's rounding
    assert np.array_equal(pat.intensity, uxd[:, 1])
    assert pat.meta["radiation"] == ((1.5406, 1.0), (1.54439, 0.5))  # _WL1, _WL2, _WLRATIO of the export


def test_unsupported_formats_are_refused_with_the_list_of_readable_ones(tmp_path):
    bruker = tmp_path / "scan.raw"
    bruker.write_bytes(b"RAW4.00" + bytes(2000))
    with pytest.raises(FileFormatError, match="Bruker format"):
        read_pattern(bruker)
    short = tmp_path / "short.raw"
    short.write_bytes(b"RAW1.01\0" + bytes(100))
    with pytest.raises(FileFormatError, match="too short"):
        read_pattern(short)
    other = tmp_path / "scan.uxd"
    other.write_text("_2THETA=10\n")
    with pytest.raises(FileFormatError, match="xrdml"):
        read_pattern(other)
    r = run_cli("xrd", "fit", str(other), "--phases", "CsPbCl3", "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "unsupported pattern format" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()
