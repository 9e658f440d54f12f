"""Optics: Jacobian, peak fits, absorption edge, composition, band-gap models, readers, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli
from halex.errors import FileFormatError, InputError
from halex.optics import (
    HC_EV_NM,
    absorption_features,
    band_gap_vs_composition,
    band_gap_vs_size,
    confinement_energy_eV,
    coulomb_coefficient,
    fit_bowing,
    fit_peaks,
    read_spectrum,
    to_energy,
    x_cl_from_counts,
    x_cl_from_model,
)


def test_jacobian_conserves_the_integral():
    wl = np.linspace(550, 800, 3000)
    y = np.exp(-0.5 * ((wl - 680) / 12) ** 2)
    e, ye = to_energy(wl, y, jacobian=True)
    assert np.trapezoid(ye, e) == pytest.approx(np.trapezoid(y, wl), rel=1e-4)
    e2, y2 = to_energy(wl, y, jacobian=False)
    assert np.allclose(np.sort(y2), np.sort(y)) and np.all(np.diff(e2) > 0)


def test_gaussian_and_voigt_peak_fits():
    e = np.linspace(1.6, 2.1, 600)
    rng = np.random.default_rng(0)
    s1, s2 = 0.030 / 2.3548, 0.050 / 2.3548
    y = 2 * np.exp(-0.5 * ((e - 1.78) / s1) ** 2) + 1 * np.exp(-0.5 * ((e - 1.90) / s2) ** 2) + 0.1
    fit = fit_peaks(e, y + rng.normal(0, 0.01, e.size), n_peaks=2)
    assert [p.center for p in fit.peaks] == pytest.approx([1.78, 1.90], abs=1e-3)
    assert [p.fwhm for p in fit.peaks] == pytest.approx([0.030, 0.050], rel=0.03)
    assert abs(fit.peaks[0].center - 1.78) < 5 * fit.peaks[0].center_err
    from scipy.special import voigt_profile

    v = voigt_profile(e - 1.8, 0.01, 0.012)
    fv = fit_peaks(e, v, n_peaks=1, shape="voigt", baseline=False)
    fg, fl = 2.3548 * 0.01, 2 * 0.012
    assert fv.peaks[0].fwhm == pytest.approx(0.5346 * fl + np.sqrt(0.2166 * fl**2 + fg**2), rel=0.01)
    assert fv.peaks[0].area == pytest.approx(1.0, rel=0.01)


def test_absorption_edge_features():
    e = np.linspace(1.5, 2.4, 900)
    eg = 1.80
    # direct-gap continuum (A·E)² ∝ (E − Eg) → Tauc intercept exactly Eg; plus an exciton peak
    cont = np.sqrt(np.clip(e - eg, 0, None)) / e
    a = cont + 0.4 * np.exp(-0.5 * ((e - 1.95) / 0.02) ** 2) + 0.02
    f = absorption_features(e, a)
    assert f["exciton_peak_eV"] == pytest.approx(1.95, abs=0.005)
    assert f["tauc_direct_gap_eV"] == pytest.approx(eg, abs=0.03)
    # a linear ramp from the baseline: the onset is where it leaves the baseline
    ramp = 0.05 + np.clip(e - 1.9, 0, None) * 2.0
    f2 = absorption_features(e, ramp)
    assert f2["onset_eV"] == pytest.approx(1.9, abs=0.01)


def test_composition_from_counts_and_models():
    r = x_cl_from_counts({"Cl": 1200, "I": 800})
    assert r["x_cl_percent"] == pytest.approx(60.0)
    # error: d x = sqrt((N_I² N_Cl + N_Cl² N_I)) / N²
    assert r["x_cl_err_percent"] == pytest.approx(100 * np.sqrt(800**2 * 1200 + 1200**2 * 800) / 2000**2)
    assert x_cl_from_counts({"Cl": 100, "I": 100}, k_factors={"Cl": 1.0, "I": 3.0})["x_cl_percent"] == pytest.approx(25.0)
    for bad, match in (({"Cl": -1, "I": 5}, "non-negative"), ({"Cl": 5}, "both Cl and I"), ({"Cl": 1, "I": 1, "Xx": 3}, "unknown element"),
                       ({"Cl": 0, "I": 0}, "both zero")):
        with pytest.raises(InputError, match=match):
            x_cl_from_counts(bad)
    from halex.models import heterostructure

    hs = heterostructure((3, 3, 2), 1)
    whole = x_cl_from_model(hs)
    assert whole["x_cl_percent"] == 100.0 and whole["n_i"] == 0
    syms = hs.get_chemical_symbols()
    idx = [i for i, s in enumerate(syms) if s == "Cl" and hs.arrays["domain"][i] == "perovskite"][:5]
    for i in idx:
        syms[i] = "I"
    hs.set_chemical_symbols(syms)
    per = x_cl_from_model(hs, domain="perovskite")
    assert per["n_i"] == 5 and per["x_cl_percent"] == pytest.approx(100 * per["n_cl"] / (per["n_cl"] + 5))
    with pytest.raises(InputError, match="no atoms in domain"):
        x_cl_from_model(hs, domain="vacuum")


def test_band_gap_models():
    # Brus's sphere coefficient (1.786) from the same Monte Carlo routine as the cube's
    assert coulomb_coefficient("sphere") == pytest.approx(1.786, rel=0.005)
    sizes = np.array([4.0, 6.0, 8.0, 12.0, 20.0])
    gaps = band_gap_vs_size(sizes, material="CsPbI3")
    assert np.all(np.diff(gaps) < 0)  # confinement trend
    assert band_gap_vs_size(1000.0, material="CsPbI3") == pytest.approx(1.723, abs=1e-3)  # bulk limit
    assert confinement_energy_eV(5.0, 0.114) / confinement_energy_eV(10.0, 0.114) == pytest.approx(4.0)
    # 3π²ħ²/(2μ m0 L²) for μ = 0.114, L = 10 nm: 3·9.8696·0.0380998/(0.114·100) = 0.0990 eV
    assert confinement_energy_eV(10.0, 0.114) == pytest.approx(0.0990, abs=2e-4)
    with_c = band_gap_vs_size(sizes, material="CsPbI3", epsilon_r=10.0)
    assert np.all(with_c < gaps)
    x = np.linspace(0, 1, 9)
    e = band_gap_vs_composition(x, eg_cl_eV=3.0, eg_i_eV=1.75, bowing_eV=0.4)
    assert e[0] == pytest.approx(1.75) and e[-1] == pytest.approx(3.0)
    fit = fit_bowing(x, e + np.random.default_rng(1).normal(0, 0.002, x.size))
    assert fit["bowing_eV"] == pytest.approx(0.4, abs=0.03)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        band_gap_vs_composition([1.2], eg_cl_eV=3, eg_i_eV=1.7)
    with pytest.raises(InputError, match="unknown material"):
        band_gap_vs_size(5, material="CsPbXx3")


def test_spectrum_readers(tmp_path):
    wl = np.arange(400.0, 500.0, 1.0)
    y = np.linspace(0, 1, wl.size)
    (tmp_path / "a.csv").write_text("Spectrometer export\nWavelength (nm),Abs,Ref\n"
                                    + "\n".join(f"{a},{b},{2 * b}" for a, b in zip(wl[::-1], y[::-1])))
    s = read_spectrum(tmp_path / "a.csv")
    assert np.allclose(s.wavelength_nm, wl) and np.allclose(s.values, y) and s.name == "Abs"
    assert np.allclose(read_spectrum(tmp_path / "a.csv", column="Ref").values, 2 * y)
    (tmp_path / "b.csv").write_text("\n".join(f"{a:.1f};{b:.4f}".replace(".", ",") for a, b in zip(wl, y)))
    assert np.allclose(read_spectrum(tmp_path / "b.csv").values, y, atol=1e-4)
    (tmp_path / "ev.csv").write_text("\n".join(f"{HC_EV_NM / a},{b}" for a, b in zip(wl, y)))
    with pytest.raises(FileFormatError, match="wavelength in nm"):
        read_spectrum(tmp_path / "ev.csv")
    (tmp_path / "nan.csv").write_text("\n".join(f"{a},{'nan' if a == 450 else b}" for a, b in zip(wl, y)))
    with pytest.raises(FileFormatError, match="NaN"):
        read_spectrum(tmp_path / "nan.csv")


def test_cli_optics(tmp_path):
    wl = np.arange(500.0, 800.0, 0.5)
    e = HC_EV_NM / wl
    a = np.sqrt(np.clip(e - 1.80, 0, None)) / e + 0.4 * np.exp(-0.5 * ((e - 1.86) / 0.02) ** 2) + 0.02
    pl_per_ev = 1000 * np.exp(-0.5 * ((e - 1.82) / 0.03) ** 2)
    pl = pl_per_ev * HC_EV_NM / wl**2  # what a spectrometer records per nm
    np.savetxt(tmp_path / "abs.csv", np.column_stack([wl, a]), delimiter=",", header="nm,A", comments="")
    np.savetxt(tmp_path / "pl.csv", np.column_stack([wl, pl]), delimiter=",", header="nm,counts", comments="")
    r = run_cli("optics", "fit", "abs.csv", "pl.csv", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["pl"]["peaks"][0]["center"] == pytest.approx(1.82, abs=1e-3)  # Jacobian applied: no shift
    assert s["pl"]["peaks"][0]["fwhm"] == pytest.approx(0.03 * 2.3548, rel=0.02)
    assert s["absorption"]["exciton_peak_eV"] == pytest.approx(1.86, abs=0.01)
    assert (tmp_path / "out" / "optics.png").stat().st_size > 0
    r = run_cli("optics", "composition", "--edx-counts", "Cl=300,I=100", "--json", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["edx"]["x_cl_percent"] == pytest.approx(75.0)
    # 300 Cl and 100 I counts: 75.0 %, Poisson error 100·√(N_Cl N_I / N³) = 2.2 %
    r = run_cli("optics", "composition", "--edx-counts", "Cl=300,I=100", cwd=tmp_path)
    assert r.stdout.strip() == "EDX: X_Cl = 75.0 ± 2.2 % (uncalibrated: k-factors 1; counting statistics)"
    r = run_cli("optics", "composition", "--edx-counts", "Cl=-3,I=100", cwd=tmp_path)
    assert r.returncode == 2 and "non-negative" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("optics", "fit", "missing.csv", "-o", "bad", cwd=tmp_path)
    assert r.returncode == 2 and not (tmp_path / "bad").exists()
