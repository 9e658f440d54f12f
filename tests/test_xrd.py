"""XRD: Debye patterns against analytic and bulk references, Scherrer widths, phase fits, readers, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli
from halex.errors import FileFormatError, HalexError, InputError
from halex.xrd import (
    bulk_pattern,
    check_pattern,
    debye_intensity,
    debye_pattern,
    fit_pattern,
    form_factor,
    profile_pattern,
    read_pattern,
    reflections,
    two_theta_grid,
)

KA1 = 1.54056


def _peak(x, y, center, half=1.2):
    """Apex (parabola through the top 7 points) and FWHM (linear interpolation) of one peak."""
    m = (x > center - half) & (x < center + half)
    xx, yy = x[m], y[m]
    i = int(np.argmax(yy))
    p = np.polyfit(xx[i - 3:i + 4], yy[i - 3:i + 4], 2)
    h = yy[i] / 2
    lft = np.flatnonzero(yy[:i] < h)[-1]
    rgt = i + np.flatnonzero(yy[i:] < h)[0]
    xl = np.interp(h, yy[lft:lft + 2], xx[lft:lft + 2])
    xr = np.interp(h, yy[rgt - 1:rgt + 1][::-1], xx[rgt - 1:rgt + 1][::-1])
    return -p[1] / (2 * p[0]), xr - xl


def test_debye_two_atoms_matches_the_analytic_sum():
    from ase import Atoms

    r = 3.217
    pair = Atoms("PbCl", positions=[(0, 0, 0), (r, 0, 0)])
    q = np.linspace(0.5, 6, 200)
    fpb, fcl = form_factor("Pb", q), form_factor("Cl", q)
    exact = fpb**2 + fcl**2 + 2 * fpb * fcl * np.sin(q * r) / (q * r)
    got = debye_intensity(pair, q, bin_A=0.001)
    # the distance is binned to ±0.0005 Å: relative error ≲ Q·0.0005
    assert np.max(np.abs(got - exact) / exact) < 2e-3


def test_form_factor_at_zero_angle_is_the_electron_count():
    assert form_factor("Pb", np.array([1e-6]))[0] == pytest.approx(82, abs=1e-3)
    assert form_factor("Cl", np.array([1e-6]))[0] == pytest.approx(17, abs=1e-3)
    assert form_factor("Pb", np.array([4.0]))[0] < 82  # falls with angle


def test_bulk_pattern_positions_follow_braggs_law():
    from halex.phases import load_phase

    x = two_theta_grid(10, 60, 0.002)
    _, y, refl = bulk_pattern(load_phase("CsPbCl3"), x, wavelength="CuKa1", fwhm_instr_deg=0.05)
    a = 5.605  # Møller, cubic CsPbCl3
    for hkl in ((1, 1, 0), (2, 0, 0), (2, 1, 1)):
        d = a / np.sqrt(sum(h * h for h in hkl))
        tt = np.degrees(2 * np.arcsin(KA1 / (2 * d)))
        top, _ = _peak(x, y, tt, 0.3)
        assert abs(top - tt) < 0.005, hkl
    # the Kα2 line sits where Bragg's law puts it, at half the Kα1 intensity
    x2, y2, _ = bulk_pattern(load_phase("CsPbCl3"), x, wavelength="CuKa", fwhm_instr_deg=0.03)
    d200 = a / 2
    t1, t2 = (np.degrees(2 * np.arcsin(lam / (2 * d200))) for lam in (KA1, 1.54439))
    i1, i2 = y2[np.argmin(abs(x2 - t1))], y2[np.argmin(abs(x2 - t2))]
    assert i2 / i1 == pytest.approx(0.5, abs=0.05)


@pytest.fixture(scope="module")
def nc_patterns():
    from halex.models.nanocrystal import perovskite_nanocrystal

    x = np.arange(18, 50, 0.004)
    return x, {n: debye_pattern(perovskite_nanocrystal((n, n, n)), x, wavelength="CuKa1")[1] for n in (8, 12)}


def test_debye_peaks_of_a_large_nc_sit_at_the_bulk_positions(nc_patterns):
    from halex.phases import load_phase

    x, ys = nc_patterns
    refl = reflections(load_phase("CsPbCl3"), d_min=1.5)
    for hkl in ("110", "200", "220"):
        d = refl.d_A[[h == hkl for h in refl.hkl].index(True)] if hkl in refl.hkl else None
        assert d is not None, refl.hkl
        tt = np.degrees(2 * np.arcsin(KA1 / (2 * d)))
        top, _ = _peak(x, ys[12], tt)
        assert abs(top - tt) < 0.05, (hkl, top, tt)  # 0.05° 2θ, a tenth of a typical laboratory FWHM


def test_debye_widths_follow_scherrer(nc_patterns):
    """(200) of a cube of n cells: FWHM = 0.886 λ / (n a cos θ) (sinc² line, Langford & Wilson 1978)."""
    x, ys = nc_patterns
    tt = np.degrees(2 * np.arcsin(KA1 / (2 * 5.605 / 2)))
    widths = {}
    for n, y in ys.items():
        _, w = _peak(x, y, tt)
        scherrer = np.degrees(0.8859 * KA1 / (n * 5.605 * np.cos(np.radians(tt / 2))))
        assert w == pytest.approx(scherrer, rel=0.15), n
        widths[n] = w
    assert widths[8] / widths[12] == pytest.approx(12 / 8, rel=0.15)


def _synthetic_mixture(w_a=0.35, seed=1):
    from halex.phases import load_phase

    x = two_theta_grid(12, 70, 0.02)
    ra = reflections(load_phase("CsPbCl3"), d_min=1.2)
    rb = reflections(load_phase("PbCl2"), d_min=1.2)
    pa = profile_pattern(ra, x, lines="CuKa", scale_lattice=1.004, size_nm=25, fwhm_instr_deg=0.07, zero_deg=0.03)
    pb = profile_pattern(rb, x, lines="CuKa", scale_lattice=0.996, size_nm=60, fwhm_instr_deg=0.07, zero_deg=0.03)
    rho_a = ra.mass_amu / (ra.volume_A3 * 1.004**3)
    rho_b = rb.mass_amu / (rb.volume_A3 * 0.996**3)
    v_a = (w_a / rho_a) / (w_a / rho_a + (1 - w_a) / rho_b)
    y = v_a * pa + (1 - v_a) * pb
    y = 6000 * y / y.max() + 400 * np.exp(-(x - 12) / 25) + 80
    return x, np.random.default_rng(seed).poisson(y).astype(float)


def test_two_phase_fit_recovers_known_fractions():
    x, obs = _synthetic_mixture(0.35)
    fit = fit_pattern(check_pattern(x, obs), ["CsPbCl3", "PbCl2"])
    got = {p.name: p for p in fit.phases}
    assert got["CsPbCl3"].weight_fraction == pytest.approx(0.35, abs=0.02)  # two points of weight fraction
    assert got["PbCl2"].weight_fraction == pytest.approx(0.65, abs=0.02)
    assert got["CsPbCl3"].lattice_scale == pytest.approx(1.004, abs=5e-4)
    assert got["PbCl2"].lattice_scale == pytest.approx(0.996, abs=5e-4)
    assert got["CsPbCl3"].size_nm == pytest.approx(25, rel=0.15)
    assert got["CsPbCl3"].weight_fraction_err > 0
    assert fit.chi2_red == pytest.approx(1.0, abs=0.2)  # Poisson noise, correct model


def test_pattern_readers(tmp_path):
    x = np.linspace(10, 80, 200)
    y = 100 + 50 * np.exp(-((x - 30) / 0.2) ** 2)
    (tmp_path / "a.xy").write_text("# header\n2theta intensity\n" + "\n".join(f"{a} {b}" for a, b in zip(x, y)))
    (tmp_path / "b.xye").write_text("\n".join(f"{a}\t{b}\t{np.sqrt(b)}" for a, b in zip(x[::-1], y[::-1])))
    (tmp_path / "c.csv").write_text("two_theta_deg,intensity\n" + "\n".join(f"{a},{b}" for a, b in zip(x, y)))
    for name in ("a.xy", "b.xye", "c.csv"):
        p = read_pattern(tmp_path / name)
        assert np.allclose(p.two_theta_deg, x) and np.allclose(p.intensity, y), name
    assert read_pattern(tmp_path / "b.xye").sigma is not None
    counts = np.arange(200) + 5
    att = np.ones(200)
    att[50] = 10.0
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/2.1"><xrdMeasurement>
<usedWavelength><kAlpha1 unit="Angstrom">1.5405980</kAlpha1><kAlpha2 unit="Angstrom">1.5444260</kAlpha2>
<ratioKAlpha2KAlpha1>0.5</ratioKAlpha2KAlpha1></usedWavelength><scan><dataPoints>
<positions axis="2Theta" unit="deg"><startPosition>10</startPosition><endPosition>80</endPosition></positions>
<positions axis="Omega" unit="deg"><startPosition>5</startPosition><endPosition>40</endPosition></positions>
<beamAttenuationFactors>{" ".join(map(str, att))}</beamAttenuationFactors>
<counts unit="counts">{" ".join(map(str, counts))}</counts></dataPoints></scan></xrdMeasurement></xrdMeasurements>"""
    (tmp_path / "d.xrdml").write_text(xml)
    p = read_pattern(tmp_path / "d.xrdml")
    assert np.allclose(p.two_theta_deg, np.linspace(10, 80, 200))
    assert p.intensity[50] == pytest.approx(550) and p.intensity[51] == 56
    assert p.meta["kAlpha2"] == pytest.approx(1.544426)


@pytest.mark.parametrize("body, match", [
    ("10 1\n11 nan\n" + "\n".join(f"{12 + k} 1" for k in range(12)), "NaN"),
    ("\n".join(f"{10 + (k % 5)} 1" for k in range(20)), "monotonic"),
    ("\n".join(f"{10 + k} {-1 if k == 3 else 1}" for k in range(20)), "negative"),
    ("10 1\n11 2\n", "at least 10"),
    ("nothing numeric here\n", "no numeric"),
])
def test_bad_patterns_are_refused(tmp_path, body, match):
    f = tmp_path / "bad.xy"
    f.write_text(body)
    with pytest.raises(FileFormatError, match=match):
        read_pattern(f)


def test_bad_phase_and_radiation():
    x = two_theta_grid(10, 40, 0.05)
    pat = check_pattern(x, np.ones_like(x))
    with pytest.raises(InputError, match="unknown phase"):
        fit_pattern(pat, ["CsPbXx3"])
    with pytest.raises(InputError, match="unknown radiation"):
        bulk_pattern(__import__("halex.phases", fromlist=["x"]).load_phase("CsPbCl3"), wavelength="CuKz")
    with pytest.raises(HalexError):
        debye_pattern(__import__("ase").Atoms("Pb"), x)


def test_cli_pattern_debye_fit(tmp_path):
    from halex.io import write_structure
    from halex.models.nanocrystal import perovskite_nanocrystal

    r = run_cli("xrd", "pattern", "CsPbCl3", "-o", str(tmp_path / "cl.csv"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "cl.csv").read_text().splitlines()
    assert "two_theta_deg,intensity" in lines and (tmp_path / "cl.png").stat().st_size > 0
    write_structure(tmp_path / "nc.extxyz", perovskite_nanocrystal((4, 4, 4)))
    r = run_cli("xrd", "debye", "nc.extxyz", "-o", "nc.csv", "--compare", "CsPbCl3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert read_pattern(tmp_path / "nc.csv").intensity.max() > 0
    x, obs = _synthetic_mixture(0.5, seed=2)
    np.savetxt(tmp_path / "m.xy", np.column_stack([x, obs]))
    r = run_cli("xrd", "fit", "m.xy", "--phases", "CsPbCl3", "PbCl2", "-o", "fit", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "fit" / "summary.json").read_text())
    w = {p["name"]: p["weight_fraction"] for p in summary["phases"]}
    assert w["CsPbCl3"] == pytest.approx(0.5, abs=0.02)
    assert {"fit.csv", "fit.png", "fit.svg"} <= {p.name for p in (tmp_path / "fit").iterdir()}
    # bad input: exit 2, one line, nothing written
    (tmp_path / "bad.xy").write_text("\n".join(f"{10 + k} {-5}" for k in range(20)))
    r = run_cli("xrd", "fit", "bad.xy", "--phases", "CsPbCl3", "-o", "bad_out", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "negative" in r.stderr
    assert not (tmp_path / "bad_out").exists()
    r = run_cli("xrd", "fit", "m.xy", "--phases", "Unobtainium", "-o", "bad_out", cwd=tmp_path)
    assert r.returncode == 2 and not (tmp_path / "bad_out").exists()
