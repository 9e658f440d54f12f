"""``halex example KIND``: the example inputs exist, say their truth, and the analysis finds it.

These are the files the README's commands run on. The truth of XRD and STEM comes from
halex's own simulators (profile functions, Gaussian columns), so these tests check the
commands end to end; the techniques' own tests check the analyses on physically simulated
and real measured data.
"""

import json

import pytest

from conftest import run_cli


def _example(tmp_path, kind):
    r = run_cli("example", kind, "-o", str(tmp_path / kind))
    assert r.returncode == 0, r.stderr
    truth = json.loads((tmp_path / kind / "truth.json").read_text())
    assert truth["command"] in r.stdout
    return tmp_path / kind, truth


def test_xrd_example_fit_finds_the_fractions(tmp_path):
    folder, truth = _example(tmp_path, "xrd")
    r = run_cli(*truth["command"].split()[1:], cwd=folder)
    assert r.returncode == 0, r.stderr
    s = json.loads((folder / "xrd_out" / "summary.json").read_text())
    for p in s["phases"]:
        want = truth["phases"][p["name"]]
        assert abs(p["weight_fraction"] - want["weight_fraction"]) < max(3 * p["weight_fraction_err"], 0.005)
        assert p["size_nm"] == pytest.approx(want["size_nm"], rel=0.05)


def test_optics_example_fit_finds_the_peak_and_the_gap(tmp_path):
    folder, truth = _example(tmp_path, "optics")
    r = run_cli(*truth["command"].split()[1:], cwd=folder)
    assert r.returncode == 0, r.stderr
    s = json.loads((folder / "optics_out" / "summary.json").read_text())
    assert s["pl"]["peaks"][0]["center"] == pytest.approx(truth["pl_peak_eV"], abs=1e-3)
    assert s["pl"]["peaks"][0]["fwhm"] == pytest.approx(truth["pl_fwhm_eV"], rel=0.02)
    assert s["absorption"]["exciton_peak_eV"] == pytest.approx(truth["exciton_eV"], abs=0.01)
    assert s["absorption"]["tauc_direct_gap_eV"] == pytest.approx(truth["gap_eV"], abs=0.03)


def test_ta_example_fit_finds_the_lifetimes(tmp_path):
    folder, truth = _example(tmp_path, "ta")
    r = run_cli(*truth["command"].split()[1:], cwd=folder)
    assert r.returncode == 0, r.stderr
    g = json.loads((folder / "ta_out" / "summary.json").read_text())["global"]
    for got, err, want in zip(g["lifetimes_ps"], g["lifetimes_err_ps"], truth["lifetimes_ps"]):
        assert abs(got - want) < max(4 * err, 0.01 * want), (got, err, want)


def test_stem_example_analysis_finds_the_lattice(tmp_path):
    folder, truth = _example(tmp_path, "stem")
    r = run_cli(*truth["command"].split()[1:], cwd=folder)
    assert r.returncode == 0, r.stderr
    s = json.loads((folder / "stem_out" / "summary.json").read_text())
    # an all-Cl particle: one X population, so the domain is not named by a halide
    assert s["halide_populations"]["verdict"] == "single population"
    a = s["domains"]["perovskite"]["a_x_A"]
    assert abs(a["mean"] - truth["perovskite_a_A"]) < max(3 * a["sem"], 0.01)


def test_unknown_example_is_one_clear_error(tmp_path):
    r = run_cli("example", "nmr", "-o", str(tmp_path / "x"))
    assert r.returncode == 2 and "invalid choice: 'nmr'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()
