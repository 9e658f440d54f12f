"""Transient absorption: IRF convolution, a synthetic map with known truth, kinetics with a rise,
sequential scheme, readers, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli
from halex.errors import FileFormatError, InputError
from halex.ta import FWHM_PER_SIGMA, TAMap, exp_conv_gauss, fit_global, fit_kinetics, read_ta_map, sequential_matrix, write_ta_map


def _numerical_conv(t, tau, fwhm, t0=0.0, dt=0.0005):
    """exp(-t/tau) H(t) convolved with a Gaussian by brute-force quadrature on a fine grid."""
    s = fwhm / FWHM_PER_SIGMA
    u = np.arange(-8 * s, 8 * s + dt / 2, dt)
    g = np.exp(-0.5 * (u / s) ** 2)
    g /= g.sum()
    tt = np.asarray(t, float)[:, None] - t0 - u[None, :]
    return (np.where(tt >= 0, np.exp(-np.clip(tt, 0, None) / tau), 0.0) * g[None, :]).sum(1)


def test_analytic_irf_convolution_matches_quadrature():
    t = np.linspace(-1, 5, 301)
    for tau in (0.05, 0.3, 2.0, 500.0):
        exact = _numerical_conv(t, tau, 0.23)
        assert np.max(np.abs(exp_conv_gauss(t, tau, 0.23 / FWHM_PER_SIGMA) - exact)) < 2e-3, tau
    # far tails stay finite (no overflow of exp·erfc)
    assert np.all(np.isfinite(exp_conv_gauss(np.array([-50.0, 1e4]), 0.01, 0.1)))


def _known_map(seed=5):
    """2 ps and 500 ps, 230 fs IRF, quadratic chirp, 2 % noise: built by quadrature (not the fit's formula)."""
    w = np.arange(380, 701, 4.0)
    t = np.r_[np.arange(-1.5, 3.0, 0.02), np.geomspace(3.0, 3000.0, 120)]
    center, chirp = 540.0, (0.10, 0.30, 0.25)
    t0 = np.polynomial.polynomial.polyval((w - center) / 100, chirp)
    band = lambda c, f, a: a * np.exp(-0.5 * ((w - c) / (f / FWHM_PER_SIGMA)) ** 2)  # noqa: E731
    das1 = band(405, 20, -10) + band(520, 60, 2)
    das2 = band(650, 30, -8) + band(405, 20, -4)
    d = np.empty((t.size, w.size))
    for j in range(w.size):
        d[:, j] = das1[j] * _numerical_conv(t, 2.0, 0.23, t0[j]) + das2[j] * _numerical_conv(t, 500.0, 0.23, t0[j])
    d += np.random.default_rng(seed).normal(0, 0.02 * np.abs(d).max(), d.shape)
    return TAMap(w, t, d), (center, chirp)


def test_global_fit_recovers_the_known_map():
    m, (center, chirp) = _known_map()
    g = fit_global(m, 2, fit_chirp=True)  # IRF, lifetimes free; chirp estimated, then refined within its bound
    assert g.lifetimes_ps[0] == pytest.approx(2.0, rel=0.02)
    assert g.lifetimes_ps[1] == pytest.approx(500.0, rel=0.02)
    assert g.irf_fwhm_ps == pytest.approx(0.23, rel=0.10)
    truth = np.polynomial.polynomial.polyval((m.wavelength_nm - center) / 100, chirp)
    assert np.max(np.abs(g.chirp(m.wavelength_nm) - truth)) < 0.020  # 20 fs
    # DAS recovered: the 405 nm bleach belongs to the 2 ps component
    j = int(np.argmin(abs(m.wavelength_nm - 405)))
    assert g.das[0, j] == pytest.approx(-10 - 0.0, rel=0.05)
    # error bars are honest to within a factor ~3
    assert abs(g.lifetimes_ps[1] - 500) < 4 * g.lifetimes_err_ps[1] + 1e-9


def test_sequential_scheme_matches_the_rate_equations():
    from scipy.integrate import solve_ivp

    taus = [1.5, 40.0, np.inf]
    k = [1 / 1.5, 1 / 40.0]
    t = np.linspace(0, 100, 400)
    sol = solve_ivp(lambda _t, c: [-k[0] * c[0], k[0] * c[0] - k[1] * c[1], k[1] * c[1]], (0, 100), [1, 0, 0],
                    t_eval=t, rtol=1e-10, atol=1e-12)
    b = sequential_matrix(taus)
    expo = np.stack([np.exp(-t / 1.5), np.exp(-t / 40.0), np.ones_like(t)])
    conc = b.T @ expo  # c_j(t) = Σ_i B[i, j] exp(-k_i t)
    assert np.max(np.abs(conc - sol.y)) < 1e-6


def test_kinetics_with_a_rise_and_fixed_irf():
    t = np.r_[np.arange(-1, 3, 0.01), np.geomspace(3, 1000, 150)]
    s = 0.2 / FWHM_PER_SIGMA
    y = 5 * (exp_conv_gauss(t - 0.1, 80.0, s) - exp_conv_gauss(t - 0.1, 0.6, s))  # 0.6 ps rise, 80 ps decay
    y = y + np.random.default_rng(2).normal(0, 0.02 * np.abs(y).max(), y.size)
    k = fit_kinetics(t, y, n_components=2, irf_fwhm_ps=0.2, wavelength_nm=650)
    assert k.lifetimes_ps == pytest.approx([0.6, 80.0], rel=0.05)
    assert k.amplitudes[0] < 0 < k.amplitudes[1]  # the rise is the negative term
    assert k.t0_ps == pytest.approx(0.1, abs=0.02)
    assert k.irf_fixed and k.irf_fwhm_ps == 0.2
    with pytest.raises(InputError, match="IRF"):
        fit_kinetics(t, y, irf_fwhm_ps=0.0)


def test_reader_orientation_units_and_errors(tmp_path):
    m, _ = _known_map()
    write_ta_map(tmp_path / "a.csv", m)
    a = read_ta_map(tmp_path / "a.csv")
    assert np.allclose(a.delta_a, m.delta_a) and a.meta["time_unit_from"] == "header"
    # wavelength-rows, delays in fs, tab separated, no corner cell
    lines = ["# delays in fs", "\t".join(f"{v * 1000:g}" for v in m.time_ps)]
    lines += [f"{w:g}\t" + "\t".join(f"{v:.8g}" for v in m.delta_a[:, j]) for j, w in enumerate(m.wavelength_nm)]
    (tmp_path / "b.txt").write_text("\n".join(lines))
    b = read_ta_map(tmp_path / "b.txt")
    assert b.meta["orientation"] == "wavelength-rows" and b.meta["time_unit_file"] == "fs"
    assert np.allclose(b.time_ps, m.time_ps) and np.allclose(b.delta_a, m.delta_a, atol=1e-6)
    # NaN, ragged rows, repeated delays
    bad = (tmp_path / "a.csv").read_text().splitlines()
    (tmp_path / "nan.csv").write_text("\n".join(bad[:5] + [bad[5].replace(bad[5].split(",")[3], "nan", 1)] + bad[6:]))
    with pytest.raises(FileFormatError, match="NaN"):
        read_ta_map(tmp_path / "nan.csv")
    (tmp_path / "rag.csv").write_text("\n".join(bad[:5] + [bad[5] + ",1"] + bad[6:]))
    with pytest.raises(FileFormatError, match="lengths"):
        read_ta_map(tmp_path / "rag.csv")
    (tmp_path / "rep.csv").write_text("\n".join(bad[:5] + [bad[4]] + bad[5:]))
    with pytest.raises(FileFormatError, match="monotonic"):
        read_ta_map(tmp_path / "rep.csv")
    with pytest.raises(InputError, match="time unit"):
        read_ta_map(tmp_path / "a.csv", time_unit="min")


def test_cli_fit_and_compare(tmp_path):
    m, _ = _known_map()
    write_ta_map(tmp_path / "map.csv", m)
    m2 = TAMap(m.wavelength_nm, m.time_ps, m.delta_a * 0.5)
    write_ta_map(tmp_path / "map2.csv", m2)
    r = run_cli("ta", "fit", "map.csv", "--irf", "0.23", "--chirp", "auto", "--refine-chirp", "--kinetics", "405", "650",
                "--global", "2", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["global"]["lifetimes_ps"] == pytest.approx([2.0, 500.0], rel=0.02)
    assert s["global"]["irf_fwhm_ps"] == 0.23 and len(s["chirp"]["t0_ps_polynomial_coefficients"]) == 3
    assert [k["wavelength_nm"] for k in s["kinetics"]] == [405.0, 650.0]
    assert {"kinetics.png", "spectra.png", "map_corrected.png", "das.csv", "eas.csv"} <= {p.name for p in (tmp_path / "out").iterdir()}
    r = run_cli("ta", "compare", "map.csv", "map2.csv", "--wavelength", "405", "-o", "cmp.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = (tmp_path / "cmp.csv").read_text().splitlines()[1:]
    a = np.array([float(x.split(",")[2]) for x in rows if x.startswith("map,")])
    b = np.array([float(x.split(",")[2]) for x in rows if x.startswith("map2,")])
    assert np.allclose(a, b, atol=1e-6) and abs(a).max() == pytest.approx(1.0)  # normalised: same kinetics
    r = run_cli("ta", "fit", "map.csv", "--irf", "0", "--kinetics", "405", "-o", "bad", cwd=tmp_path)
    assert r.returncode == 2 and "IRF" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "bad").exists()


def _with_artifact(m, center, chirp, *, width_fwhm=0.21, scale=3.0, seed=11):
    """The known map plus a coherent artifact made apart from the fit's model: the second
    derivative of a Gaussian cross-correlation (a narrower one than the 230 fs IRF) taken by
    finite differences on a 1 fs grid, following the chirp, with a broad spectrum."""
    s = width_fwhm / FWHM_PER_SIGMA
    t0 = np.polynomial.polynomial.polyval((m.wavelength_nm - center) / 100, chirp)
    fine = np.arange(-2.0, 2.0, 0.001)
    g = np.exp(-0.5 * (fine / s) ** 2)
    d2 = np.gradient(np.gradient(g, fine), fine) * s**2  # order one at its extremum
    spectrum = scale * np.abs(m.delta_a).max() * (0.6 + 0.4 * np.cos((m.wavelength_nm - 380) / 90))
    art = np.stack([np.interp(m.time_ps - t0[j], fine, d2, left=0, right=0) for j in range(m.wavelength_nm.size)], 1)
    noise = np.random.default_rng(seed).normal(0, 0.002 * np.abs(m.delta_a).max(), m.delta_a.shape)
    return TAMap(m.wavelength_nm, m.time_ps, m.delta_a + art * spectrum[None, :] + noise)


def test_coherent_artifact_is_modelled_or_windowed_out_and_flagged_otherwise():
    m0, (center, chirp) = _known_map()
    m = _with_artifact(m0, center, chirp)
    # modelled: IRF and its two derivatives as components; the sharp artifact pins time zero, so
    # the chirp is refined with it (held at an estimate the artifact itself has shifted, it fails)
    g = fit_global(m, 2, artifact=2, fit_chirp=True)
    assert g.lifetimes_ps == pytest.approx([2.0, 500.0], rel=0.05)
    assert g.artifact_spectra.shape == (3, m.wavelength_nm.size)
    j = int(np.argmin(abs(m.wavelength_nm - 405)))
    assert g.das[0, j] == pytest.approx(-10.0, rel=0.1)  # the DAS is the decay's, not the artifact's
    # windowed out: the pulse overlap is not fitted
    w = fit_global(m, 2, irf_fwhm_ps=0.23, t_range_ps=(0.5, 3000.0))
    assert w.lifetimes_ps == pytest.approx([2.0, 500.0], rel=0.05)
    assert w.meta["n_points_fitted"] < m.delta_a.size
    # ignored: the fit says so instead of reporting it silently
    bad = fit_global(m, 2)
    assert any("coherent artifact" in text for text in bad.warnings), bad.warnings
    assert not any("coherent artifact" in text for text in g.warnings)


def test_background_before_time_zero_is_subtracted():
    from halex.ta import Chirp, subtract_background

    m, (center, chirp) = _known_map()
    shifted = TAMap(m.wavelength_nm, m.time_ps, m.delta_a + 0.5)  # a constant pre-zero offset (scatter)
    out, n = subtract_background(shifted, Chirp(chirp, center))
    assert n >= 3
    pre = m.time_ps < -1.0
    assert np.abs(out.delta_a[pre].mean()) < 0.05 * 0.5
    assert np.allclose(out.delta_a - m.delta_a, (out.delta_a - m.delta_a)[0], atol=1e-12)  # one constant per column


def test_chirp_estimate_is_not_dragged_by_early_kinetics():
    """A 2 ps decay with a rise at 650 nm moves each column's half-rise late by up to 0.4 ps;
    the local fit places time zero within 20 fs of the truth, with the IRF given or not."""
    from halex.ta import default_delays, estimate_chirp, gaussian_band, simulate_ta_map

    w = np.arange(380.0, 720.0, 4.0)
    das = [gaussian_band(w, 405, 20, -1.0) + gaussian_band(w, 650, 30, 0.5), gaussian_band(w, 650, 30, -1.0)]
    truth = (0.1, 0.3, 0.25)
    m = simulate_ta_map(w, default_delays(), das, [2.0, 500.0], irf_fwhm_ps=0.23, chirp_ps=truth, noise=0.01, seed=4)
    probe = np.arange(384.0, 716.0, 4.0)
    exact = np.polynomial.polynomial.polyval((probe - 0.5 * (w.min() + w.max())) / 100, truth)
    for irf in (0.23, None):
        est = estimate_chirp(m, irf_fwhm_ps=irf)
        assert np.max(np.abs(est(probe) - exact)) < 0.02, (irf, est.coefficients_ps)
    assert est.points["irf_fwhm_ps"] == pytest.approx(0.23, abs=0.06)
