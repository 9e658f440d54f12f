"""STEM: image IO with calibration, simulation truth, the column fitter against known
positions and the Cramér–Rao bound, lattice indexing, and the end-to-end analysis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("skimage")
pytest.importorskip("sklearn")
pytest.importorskip("tifffile")

from halex.errors import AnalysisError, CalibrationError, FileFormatError, InputError  # noqa: E402
from halex.models import heterostructure, perovskite_nanocrystal  # noqa: E402
from halex.stem import (  # noqa: E402
    StemImage,
    cramer_rao_bound,
    index_columns,
    measure,
    read_image,
    refine_columns,
    simulate_image,
    write_image,
)
from halex.stem.analysis import analyze_image, score_against_truth  # noqa: E402


@pytest.fixture(scope="module")
def nc():
    return perovskite_nanocrystal((6, 6, 6))


@pytest.fixture(scope="module")
def hs():
    return heterostructure((5, 5, 4), 2)


# --- IO ---------------------------------------------------------------------------------

def test_tiff_round_trip_keeps_calibration(tmp_path):
    data = np.random.default_rng(0).random((40, 50))
    p = write_image(tmp_path / "a.tif", StemImage(data, 0.137, "phase"))
    img = read_image(p, kind="phase")
    assert img.pixel_size == pytest.approx(0.137, rel=1e-5)
    assert np.allclose(img.data, data, atol=1e-6)
    with pytest.raises(CalibrationError, match="disagrees"):
        read_image(p, pixel_size=0.2)
    assert read_image(p, pixel_size=0.2, override=True).pixel_size == 0.2


def test_bad_images_raise_clear_errors(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((32, 32)) + np.eye(32))
    with pytest.raises(CalibrationError, match="no pixel calibration"):
        read_image(tmp_path / "a.npy")
    with pytest.raises(CalibrationError, match="outside"):
        read_image(tmp_path / "a.npy", pixel_size=12.0)  # nm given as Å
    bad = np.ones((32, 32))
    bad[3, 4] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(InputError, match="NaN"):
        read_image(tmp_path / "nan.npy", pixel_size=0.1)
    np.save(tmp_path / "stack.npy", np.random.default_rng(0).random((3, 32, 32)))
    with pytest.raises(InputError, match="2D"):
        read_image(tmp_path / "stack.npy", pixel_size=0.1)
    with pytest.raises(FileFormatError):
        read_image(tmp_path / "missing.tif")
    (tmp_path / "junk.tif").write_text("not a tiff")
    with pytest.raises(FileFormatError):
        read_image(tmp_path / "junk.tif", pixel_size=0.1)


# --- simulation --------------------------------------------------------------------------

def test_simulated_columns_match_the_perovskite_projection(nc):
    _, t = simulate_image(nc, zone="001")
    kinds = {k: int((t["kind"] == k).sum()) for k in np.unique(t["kind"])}
    # 6×6×6 cells viewed along a cube axis: a 13×13 half lattice with Pb+X = 6², Cs = 7²
    # and pure X = 2·6·7 columns
    assert kinds == {"Pb+X": 36, "Cs": 49, "X": 84}
    steps = np.diff(np.sort(t["x_A"]))
    assert np.allclose(steps[steps > 0.5], nc.info["a"] / 2, atol=1e-6)  # column rows a/2 apart


# --- fitter ------------------------------------------------------------------------------

def test_fitter_recovers_noiseless_gaussians_exactly():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:120, 0:120].astype(float)
    cx, cy = np.meshgrid(np.arange(15, 110, 18.0), np.arange(15, 110, 18.0))
    x0 = cx.ravel() + rng.uniform(-2, 2, cx.size)
    y0 = cy.ravel() + rng.uniform(-2, 2, cx.size)
    amp = rng.uniform(50, 150, cx.size)
    img = 5.0 + sum(a * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 3.0**2)) for a, x, y in zip(amp, x0, y0))
    start = np.column_stack([x0 + rng.uniform(-1, 1, x0.size), y0 + rng.uniform(-1, 1, x0.size)])
    fit = refine_columns(img, start, noise="gaussian", noise_sigma=1.0)
    assert fit.converged.all()
    assert np.abs(fit.x - x0).max() < 1e-3 and np.abs(fit.y - y0).max() < 1e-3
    assert np.allclose(fit.width, 3.0, atol=1e-3) and np.allclose(fit.amplitude, amp, rtol=1e-3)


def _precision(nc, kind, dose, seeds):
    errs, bounds, reported = [], [], []
    noise = "poisson" if kind == "haadf" else "gaussian"
    for seed in seeds:
        img, t = simulate_image(nc, kind=kind, dose=dose, seed=seed)
        tp = np.column_stack([t["x_px"], t["y_px"]])
        heavy = np.isin(t["kind"], ["Pb+X", "Cs"])
        fit = refine_columns(img.data, tp + 0.5, noise=noise)
        bx, by = cramer_rao_bound(img.shape, t["x_px"], t["y_px"], t["amplitude"], t["width_A"] / img.pixel_size,
                                  t["background"], noise=noise, noise_sigma=img.metadata["noise_sigma"])
        errs.append(np.concatenate([(fit.x - tp[:, 0])[heavy], (fit.y - tp[:, 1])[heavy]]))
        bounds.append(np.concatenate([bx[heavy], by[heavy]]))
        reported.append(np.concatenate([fit.sigma_x[heavy], fit.sigma_y[heavy]]))
    e, b, r = (np.concatenate(v) for v in (errs, bounds, reported))
    return np.sqrt(np.mean(e**2)) / np.sqrt(np.mean(b**2)), np.sqrt(np.mean(r**2)) / np.sqrt(np.mean(b**2))


@pytest.mark.parametrize("kind, dose", [("haadf", 2e4), ("haadf", 3000), ("phase", 300)])
def test_position_precision_reaches_the_cramer_rao_bound(nc, kind, dose):
    """Pb+X and Cs columns (10 noise realisations, 850 columns): the RMS error is within the
    1.15× of the bound computed for the actual image (position, amplitude, width,
    background unknown) at a medium dose and at the low doses (HAADF 3000 e/Å², phase
    300 e/Å²), and the reported per-column error within 15 % of the bound."""
    ratio, reported = _precision(nc, kind, dose, range(10))
    assert ratio < 1.15, ratio
    assert abs(reported - 1) < 0.15


def test_weak_halide_columns_next_to_bright_ones(nc):
    """[001] pure-Cl columns beside Pb+X columns: no systematic pull from the bright
    neighbours (noiseless: exact), and at a dose where their bound is 0.2 px no column is off
    by more than 1 px (at 1e5 e/Å² the bound of a 6-atom Cl column is 0.6 px, so 2 px
    outliers there are statistics, not fitter error)."""
    img, t = simulate_image(nc, kind="haadf", dose=None)
    x = t["kind"] == "X"
    tp = np.column_stack([t["x_px"], t["y_px"]])
    fit = refine_columns(img.data, tp + 0.5, noise="gaussian")
    assert np.abs(np.r_[fit.x - tp[:, 0], fit.y - tp[:, 1]][np.r_[x, x]]).max() < 0.01
    worst, errs, bounds = 0.0, [], []
    for seed in range(3):
        img, t = simulate_image(nc, kind="haadf", dose=1e6, seed=seed)
        fit = refine_columns(img.data, tp + 0.5, noise="poisson")
        e = np.r_[(fit.x - tp[:, 0])[x], (fit.y - tp[:, 1])[x]]
        worst = max(worst, float(np.abs(e).max()))
        bx, by = cramer_rao_bound(img.shape, t["x_px"], t["y_px"], t["amplitude"], t["width_A"] / img.pixel_size,
                                  t["background"], noise="poisson")
        errs.append(e)
        bounds.append(np.r_[bx[x], by[x]])
    assert worst < 1.0, worst
    assert np.sqrt(np.mean(np.concatenate(errs) ** 2)) < 1.15 * np.sqrt(np.mean(np.concatenate(bounds) ** 2))


def test_halide_labels_at_300_e_per_A2_on_phase_images():
    """Cl/I column labels on phase images at 300 e/Å² of a heterostructure whose two
    perovskite layers at the bottom are exchanged (10 cells thick along the beam):
    ≥ 95 % correct over three noise realisations; pure-X sites where no
    column was significant are measured at their lattice positions."""
    from halex.models.exchange import exchange_layers

    model = exchange_layers(heterostructure((10, 5, 4), 2), 2, start="bottom")
    right = total = 0
    for seed in range(3):
        img, t = simulate_image(model, zone="001", kind="phase", dose=300, seed=seed)
        s = score_against_truth(analyze_image(img, zone="001"), t)
        right += round(s["halide_accuracy"] * s["halide_columns"])
        total += s["halide_columns"]
    assert total >= 80 and right / total >= 0.95, (right, total)


def test_untilted_model_reads_no_tilt(nc):
    """Tilt of an untilted cube at 1e5 e/Å²: the signed Pb–Pb–X angles average to within
    1° of zero (an unsigned mean would read the noise as tilt)."""
    img, t = simulate_image(nc, kind="haadf", dose=1e5, seed=0)
    s = score_against_truth(analyze_image(img, zone="001"), t)
    assert s["measurements"]["tilt_deg"]["mean_abs_diff"] < 1.0


# --- lattice -----------------------------------------------------------------------------

@pytest.mark.parametrize("zone", ["001", "101"])
def test_indexing_and_measurements_on_true_columns(nc, zone):
    _, t = simulate_image(nc, zone=zone)
    idx = index_columns(t["x_A"], t["y_A"], t["weight"], zone)
    truth = np.where(t["kind"] == "Cs", "Cs+X", t["kind"]) if zone == "101" else t["kind"]
    ok = idx.indexed
    assert ok.mean() > 0.9
    assert (idx.sublattice[ok] == truth[ok]).all()
    m = measure(np.column_stack([t["x_A"], t["y_A"]]), idx)
    a = 5.605  # the builder's experimental CsPbCl3 lattice constant
    assert np.nanmean(m["a_x_A"]) == pytest.approx(a, abs=1e-6)
    assert np.nanmean(m["a_y_A"]) == pytest.approx(a, abs=1e-6)
    assert np.nanmax(m["tilt_deg"]) < 1e-6
    if zone == "101":  # arctan(√2) for the untilted cubic structure
        assert np.nanmean(m["xxcs_deg"]) == pytest.approx(np.degrees(np.arctan(np.sqrt(2))), abs=1e-6)


def test_wrong_zone_axis_is_an_error(nc):
    _, t = simulate_image(nc, zone="101")
    with pytest.raises(AnalysisError, match=r"\[001\] perovskite column motif.*check --zone"):
        index_columns(t["x_A"], t["y_A"], t["weight"], "001")


# --- end to end --------------------------------------------------------------------------

def test_analysis_round_trip_on_a_heterostructure(hs):
    img, t = simulate_image(hs, zone="001", kind="haadf", dose=1e5, seed=3)
    a = analyze_image(img, zone="001")
    s = score_against_truth(a, t)
    assert s["positions"]["Pb+X"]["n"] == s["positions"]["Pb+X"]["of"]
    assert s["positions"]["Pb+X"]["max_px"] < 1.0 and s["positions"]["Cs"]["max_px"] < 1.0
    (name, dom), = [(k, v) for k, v in s["domains"].items() if k != "chalcohalide"]
    assert abs(dom["diff_A"]) < 0.02
    # an all-Cl particle shows one population of X columns: no labels, and the domain is not
    # named by a halide; the absolute calibration alone puts the population near pure Cl
    pops = a.summary["halide_populations"]
    assert name == "perovskite" and pops["verdict"] == "single population"
    assert pops["calibrated_iodide_fraction"] < 1 / 3 and "halide_accuracy" not in s
    assert a.summary["cell"]["projection"] == "perovskite-001" and a.summary["cell"]["a_A"] == pytest.approx(5.605, abs=0.02)
    assert s["truth_summary"]["domains"]["chalcohalide"]["columns"] > 0


def _halex(*args, cwd):
    return subprocess.run([sys.executable, "-m", "halex.cli.main", "-q", *args], cwd=cwd, capture_output=True, text=True)


def test_cli_simulate_analyze_and_score(tmp_path, hs):
    from halex.io import write_structure

    write_structure(tmp_path / "hs.extxyz", hs)
    r = _halex("stem", "simulate", "hs.extxyz", "--dose", "1e5", "-o", "sim.tif", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _halex("stem", "analyze", "sim.tif", "--truth", "hs.extxyz", "--profile", "40,120,300,120", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    for f in ("columns.csv", "summary.json", "score.json", "columns_overlay.png", "tilt_map.png", "domain_map.png",
              "spacing_histograms.png", "lattice_map_x.png", "profile_1.csv", "profile_1.png"):
        assert (out / f).stat().st_size > 0, f
    score = json.loads((out / "score.json").read_text())
    assert score["positions"]["Pb+X"]["rms_A"] < 0.02
    header = (out / "columns.csv").read_text().splitlines()[0].split(",")
    assert {"x_px", "y_px", "x_A", "y_A", "sigma_x_A", "sublattice", "domain", "halide", "volume"} <= set(header)
    # what the terminal says is plain text: no numpy reprs, no "± nan", numbers rounded to their error
    assert "np.str_" not in r.stdout and "nan" not in r.stdout.lower()
    summary = json.loads((out / "summary.json").read_text())
    a = summary["domains"]["perovskite"]["a_x_A"]
    from halex.io import format_uncertain

    assert f"perovskite     a (in-plane) = {format_uncertain(a['mean'], a.get('sem'), 'Å')}" in r.stdout
    assert "halide columns: single population" in r.stdout


def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path):
    np.save(tmp_path / "img.npy", np.random.default_rng(0).random((64, 64)))
    r = _halex("stem", "analyze", "img.npy", "-o", "out", cwd=tmp_path)
    assert r.returncode == 2 and "pixel" in r.stderr and "Traceback" not in r.stderr
    r = _halex("stem", "analyze", "img.npy", "--pixel-size", "0.1", "--profile", "1,2,3", "-o", "out", cwd=tmp_path)
    assert r.returncode == 2 and "--profile" in r.stderr
    assert not (tmp_path / "out").exists()
    assert not [p for p in Path(tmp_path).iterdir() if p.name.startswith(".out.tmp")]


def test_the_kind_tag_of_a_halex_tiff_is_honoured(tmp_path, nc):
    """A phase image written by halex is read as a phase image without --kind; asking for the
    other kind is obeyed, with a warning that names the tag."""
    img, _ = simulate_image(nc, kind="phase", dose=300, seed=1)
    path = write_image(tmp_path / "phase.tif", img)
    assert read_image(path).kind == "phase"
    with pytest.warns(UserWarning, match="tagged as a phase image but is analysed as haadf"):
        assert read_image(path, kind="haadf").kind == "haadf"
    untagged = tmp_path / "plain.npy"
    np.save(untagged, img.data)
    assert read_image(untagged, pixel_size=img.pixel_size).kind == "haadf"


# --- the projected cell from the image -----------------------------------------------------

@pytest.mark.parametrize("zone", ["001", "101"])
def test_projected_cell_of_the_perovskite_projections(nc, zone):
    """True columns of a CsPbCl3 cube: the projection with its halide columns, a = 5.605 Å."""
    from halex.stem.cell import projected_cell

    _, t = simulate_image(nc, zone=zone)
    cell = projected_cell(np.column_stack([t["x_A"], t["y_A"]]), t["weight"])
    assert cell.projection == f"perovskite-{zone}" and cell.zone == zone
    assert cell.a_A == pytest.approx(5.605, abs=1e-6) and cell.halide_columns_visible


@pytest.fixture(scope="module")
def srtio3():
    from ase import Atoms

    sto = Atoms("SrTiO3", scaled_positions=[(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5)],
                cell=[3.905] * 3, pbc=True).repeat((7, 7, 4))
    sto.center(vacuum=5.0)
    return sto


@pytest.mark.parametrize("zone, projection", [("001", "abo3-001"), ("101", "abo3-110")])
def test_an_oxide_perovskite_is_measured_not_labelled(srtio3, zone, projection):
    """SrTiO3 (a = 3.905 Å), O columns too weak to be seen: once read as a CsPbX3 [001] image
    with a √2 too large, the A sites split into "Cs" and "Pb+X" and the B sites called mixed
    halide. Now: the ABO3 projection, a within 0.5 %, two brightness classes, no labels."""
    img, _ = simulate_image(srtio3, zone=zone, kind="haadf", dose=1e5, seed=0)
    a = analyze_image(img)
    cell = a.summary["cell"]
    assert cell["projection"] == projection and cell["a_A"] == pytest.approx(3.905, rel=0.005)
    assert set(a.columns["halide"]) == {""} and a.summary["halide_populations"]["verdict"] == "not measurable"
    assert set(a.summary["sublattices"]) <= {"bright", "dim", "unassigned"} and "chalcohalide" not in a.summary["domains"]
    assert any("lattice-only mode" in w for w in a.summary["warnings"])


def test_a_zone_the_image_contradicts_is_an_error(tmp_path, hs):
    from halex.stem.io import write_image

    img, _ = simulate_image(hs, zone="101", kind="haadf", dose=1e5, seed=0)
    write_image(tmp_path / "sim.tif", img)
    r = _halex("stem", "analyze", "sim.tif", "--zone", "001", "-o", "out", cwd=tmp_path)
    assert r.returncode == 2 and "perovskite [101] projection" in r.stderr and "--zone 101" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()


def test_dark_contrast_is_detected_and_never_labelled(hs):
    """The inverted image of a heterostructure (dark columns, as in annular bright field):
    detected as dark, indexed as [001], lattice as from the bright image, no halide labels."""
    import dataclasses

    img, _ = simulate_image(hs, zone="001", kind="haadf", dose=1e5, seed=3)
    dark = analyze_image(dataclasses.replace(img, data=float(img.data.max()) + 10.0 - img.data))
    assert dark.summary["contrast"]["used"] == "dark" and dark.zone == "001"
    assert set(dark.columns["halide"]) == {""} and "dark-contrast" in dark.summary["halide_populations"]["reason"]
    assert dark.summary["cell"]["a_A"] == pytest.approx(5.605, abs=0.02)


def test_an_image_without_a_lattice_is_an_error(tmp_path):
    from scipy import ndimage

    np.save(tmp_path / "blobs.npy", 100 * ndimage.gaussian_filter(np.random.default_rng(1).random((256, 256)), 3))
    r = _halex("stem", "analyze", "blobs.npy", "--pixel-size", "0.1", "-o", "out", cwd=tmp_path)
    assert r.returncode == 2 and "lattice" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_figure_sets(tmp_path, nc):
    """--figures none draws nothing, basic the overlay/domain/histogram figures only, all the maps too."""
    from halex.stem.io import write_image

    img, _ = simulate_image(nc, zone="001", kind="haadf", dose=1e5, seed=0)
    write_image(tmp_path / "sim.tif", img)
    pngs = {}
    for which in ("none", "basic", "all"):
        r = _halex("stem", "analyze", "sim.tif", "--figures", which, "-o", which, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
        pngs[which] = {p.name for p in (tmp_path / which).glob("*.png")}
    assert pngs["none"] == set()
    assert pngs["basic"] == {"columns_overlay.png", "domain_map.png", "spacing_histograms.png"}
    assert pngs["basic"] < pngs["all"] and {"tilt_map.png", "lattice_map_x.png"} <= pngs["all"]


# --- images the fitter's Gaussian model did not make ------------------------------------------

def test_precision_on_aperture_probe_images(nc):
    """HAADF through an aberration-free 20 mrad probe at 200 kV (Airy rings, thermal smearing):
    the Gaussian-column fit stays unbiased and its quoted (Cramér–Rao) errors describe the
    real scatter: RMS error / RMS quoted error 1.02 at 10⁵ e/Å² (measured over 6 noise seeds)."""
    e, q = [], []
    for seed in range(6):
        img, t = simulate_image(nc, kind="haadf", dose=1e5, seed=seed, probe="aperture")
        tp = np.column_stack([t["x_px"], t["y_px"]])
        heavy = np.isin(t["kind"], ["Pb+X", "Cs"])
        fit = refine_columns(img.data, tp + 0.5, noise="poisson")
        e.append(np.r_[(fit.x - tp[:, 0])[heavy], (fit.y - tp[:, 1])[heavy]])
        q.append(np.r_[fit.sigma_x[heavy], fit.sigma_y[heavy]])
    e, q = np.concatenate(e), np.concatenate(q)
    ratio = np.sqrt(np.mean(e**2)) / np.sqrt(np.mean(q**2))
    assert abs(e.mean()) < 0.02 and 0.8 < ratio < 1.3, (e.mean(), ratio)


def test_halide_labels_on_aperture_probe_images():
    """Cl/I labels of a heterostructure with two exchanged bottom layers, imaged through the
    aperture probe: HAADF at 10⁵ e/Å² labels ≥ 95 % right; at 300 e/Å² phase a label, where
    one is given, is right (a population the noise hides is reported as single, not guessed)."""
    from halex.models.exchange import exchange_layers

    model = exchange_layers(heterostructure((10, 5, 4), 2), 2, start="bottom")
    right = total = 0
    for seed in range(2):
        img, t = simulate_image(model, zone="001", kind="haadf", dose=1e5, seed=seed, probe="aperture")
        s = score_against_truth(analyze_image(img, zone="001"), t)
        right += round(s["halide_accuracy"] * s["halide_columns"])
        total += s["halide_columns"]
    assert total >= 80 and right / total >= 0.95, (right, total)
    img, t = simulate_image(model, zone="001", kind="phase", dose=300, seed=1, probe="aperture")
    s = score_against_truth(analyze_image(img, zone="001"), t)
    assert s.get("halide_accuracy", 1.0) >= 0.95


@pytest.mark.parametrize("centres", [(0.0,), (0.0, 1.0), (0.0, 0.5, 1.0)])
def test_1d_mixture_matches_scikit_learn(centres):
    """halex's NumPy 1D mixture chooses the same number of components by BIC as scikit-learn's
    GaussianMixture, with the same BIC (within 0.5) and means (within 0.01); for the other
    component counts its likelihood is at least as high (BIC no more than 0.5 above)."""
    from sklearn.mixture import GaussianMixture

    from halex.stem.mixture import fit_mixture_1d

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(c, 0.08, 150 + 50 * i) for i, c in enumerate(centres)])
    ours = {k: fit_mixture_1d(x, k, seed=0) for k in (1, 2, 3)}
    theirs = {k: GaussianMixture(k, random_state=0, n_init=3).fit(x[:, None]) for k in (1, 2, 3)}
    assert min(ours, key=lambda k: ours[k].bic()) == min(theirs, key=lambda k: theirs[k].bic(x[:, None])) == len(centres)
    for k in (1, 2, 3):
        assert ours[k].bic() <= theirs[k].bic(x[:, None]) + 0.5
    k = len(centres)
    assert ours[k].bic() == pytest.approx(theirs[k].bic(x[:, None]), abs=0.5)
    assert np.allclose(np.sort(ours[k].means), np.sort(theirs[k].means_.ravel()), atol=0.01)
    rank_ours, rank_theirs = (np.argsort(np.argsort(m)) for m in (ours[k].means, theirs[k].means_.ravel()))
    assert (rank_ours[ours[k].predict(x)] == rank_theirs[theirs[k].predict(x[:, None])]).mean() > 0.99


def test_incremental_model_image_equals_a_full_rebuild():
    """The fitter's model image, updated column by column between sweeps, against the image
    rebuilt from every column (and the separable Gaussian against the 2D exponential)."""
    from halex.stem.fit import _ModelImage, _others, _unit_gaussian, _Windows

    rng = np.random.default_rng(3)
    pos = rng.uniform(5, 75, size=(60, 2))
    p = np.column_stack([pos, rng.uniform(1, 5, 60), rng.uniform(1.0, 2.0, 60), np.zeros(60)])
    W, W2 = _Windows((80, 80), pos, 4), _Windows((80, 80), pos, 8)
    direct = np.exp(-((W2.X - p[:, 0, None, None]) ** 2 + (W2.Y - p[:, 1, None, None]) ** 2)
                    / (2 * p[:, 3, None, None] ** 2))
    np.testing.assert_allclose(_unit_gaussian(W2, p), direct, rtol=1e-12, atol=1e-300)
    model = _ModelImage(W, W2, p)
    for _ in range(5):  # a few columns move, brighten or widen per sweep
        k = rng.choice(60, 7, replace=False)
        p[k, :2] += rng.normal(0, 0.3, (7, 2))
        p[k, 2] *= rng.uniform(0.8, 1.2, 7)
        p[k, 3] *= rng.uniform(0.9, 1.1, 7)
        model.update(p)
    rows = np.arange(0, 60, 3)
    got, e_got = model.others(rows)
    ref, e_ref = _others(W, W2, p)
    np.testing.assert_allclose(got, ref[rows], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(e_got, e_ref[rows], rtol=1e-12)


def test_ragged_median_is_numpy_median_per_group():
    from halex.stem.fit import ragged_median

    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 2))
    groups = [list(rng.choice(50, rng.integers(0, 9), replace=False)) for _ in range(40)]
    got = ragged_median(values, groups)
    for g, m in zip(groups, got):
        if g:
            np.testing.assert_allclose(m, np.median(values[g], axis=0), rtol=1e-14)
        else:
            assert np.isnan(m).all()
