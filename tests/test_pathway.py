"""Lattice Monte Carlo of the exchange pathway: exact enumeration, detailed balance, the
Fermi-function limit, a fit round trip through data from another model, hysteresis."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes

from halex.errors import InputError
from halex.models import heterostructure, perovskite_nanocrystal
from halex.pathway import (
    KB_EV,
    LatticeModel,
    canonical,
    features,
    fit_lattice_model,
    halide_lattice,
    sgc,
    titration,
    total_energy,
    two_phase_regions,
)

pytest.importorskip("numba")

#: Lennard-Jones σ (Å) per element of the species-aware classical test engine: I is larger than Cl
SIGMA = {"Cs": 3.4, "Pb": 3.0, "Cl": 3.1, "I": 3.6, "S": 3.0}


class _MixedLJ(Calculator):
    """Lennard-Jones with Lorentz–Berthelot σ per element pair (ε = 0.05 eV, cut at 8 Å, shifted):
    a classical energy that tells Cl from I, so the lattice machinery has something to fit."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        pos = self.atoms.get_positions()
        sig = np.array([SIGMA[s] for s in self.atoms.get_chemical_symbols()])
        d = pos[:, None, :] - pos[None, :, :]
        r = np.linalg.norm(d, axis=-1)
        np.fill_diagonal(r, np.inf)
        s = 0.5 * (sig[:, None] + sig[None, :])
        inside = r < 8.0
        sr6 = np.where(inside, (s / r) ** 6, 0.0)
        cut6 = np.where(inside, (s / 8.0) ** 6, 0.0)
        e = 4 * 0.05 * (sr6**2 - sr6 - (cut6**2 - cut6))
        dedr = np.where(inside, 4 * 0.05 * (-12 * sr6**2 + 6 * sr6) / r, 0.0)
        f = -np.sum((dedr / r)[:, :, None] * d, axis=1)
        self.results = {"energy": 0.5 * float(e.sum()), "forces": f}


def _mixed_engine_class():
    from conftest import _lj_engine_class

    class MixedLJEngine(_lj_engine_class()):
        name = "test-mixed-lj"

        def calculator(self, directory=None):
            return _MixedLJ()

    return MixedLJEngine


def __getattr__(name):  # "test_pathway:MixedLJEngine", the registry's lazy target
    if name == "MixedLJEngine":
        return _mixed_engine_class()
    if name == "NoEnergyEngine":
        return _no_energy_engine_class()
    raise AttributeError(name)


@pytest.fixture
def mixed_engine():
    from halex.engines import _REGISTRY, get_engine, register_engine

    register_engine("test-mixed-lj", "test_pathway:MixedLJEngine")
    yield get_engine("test-mixed-lj")
    _REGISTRY.pop("test-mixed-lj", None)


def _small(seed=0):
    """A real lattice of ≤ 16 sites (a 1×1×2 nanocrystal's halides) with a random model on it."""
    lat = halide_lattice(perovskite_nanocrystal((1, 1, 2), "Cl"), n_shells=2)
    assert lat.n_sites <= 16
    rng = np.random.default_rng(seed)
    model = LatticeModel(rng.normal(0.0, 0.04, len(lat.kinds)), rng.normal(0.0, 0.03, len(lat.shells)), {})
    return lat, model


def _exact(lat, model, dmu, temperature, n_fixed=None):
    """⟨σ_i⟩ by enumerating every occupation (Boltzmann weights of E − Δμ n)."""
    beta = 1 / (KB_EV * temperature)
    occs = np.array(list(itertools.product((0, 1), repeat=lat.n_sites)), np.int8)
    if n_fixed is not None:
        occs = occs[occs.sum(axis=1) == n_fixed]
    H = np.array([model.energy(lat, o) - (0 if n_fixed is not None else dmu * o.sum()) for o in occs])
    w = np.exp(-beta * (H - H.min()))
    return (w[:, None] * occs).sum(axis=0) / w.sum()


def test_lattice_of_the_heterostructure():
    hs = heterostructure((2, 2, 2), 1)
    lat = halide_lattice(hs)
    sym = np.array(hs.get_chemical_symbols())
    pv = (hs.arrays["domain"] == "perovskite") & (sym == "Cl")
    ch = (hs.arrays["domain"] == "chalcohalide") & (hs.arrays["layer"] == -1) & (sym == "Cl")
    assert lat.n_sites == pv.sum() + ch.sum()
    # the first shell holds X–X across an octahedron edge (a/√2 = 3.96 Å) and not the next perovskite
    # distance (a = 5.6 Å); chalcohalide pairs at similar distances join it
    assert 5.605 / np.sqrt(2) < lat.shells[0] < 5.605 - 0.3
    assert {k.split()[0] for k in lat.kinds} == {"perovskite", "chalcohalide"}
    occ = lat.occupation(hs)
    assert occ.sum() == 0 and lat.occupation(lat.decorate(np.ones(lat.n_sites))).sum() == lat.n_sites
    # the CSR lists are symmetric: j in N(i) ⇔ i in N(j), same shell
    rows = np.repeat(np.arange(lat.n_sites), np.diff(lat.indptr))
    fwd = set(zip(rows.tolist(), lat.neighbours.tolist(), lat.neighbour_shell.tolist()))
    assert fwd == {(j, i, s) for i, j, s in fwd}
    with pytest.raises(InputError, match="has no Br/Br halide sites"):
        halide_lattice(hs, source="Br", target="Br")


def test_mc_averages_equal_exact_enumeration():
    """Semi-grand canonical and canonical averages of every site's occupation on a 14-site lattice
    against enumeration of all 2^14 occupations, within 5 standard errors of the MC mean."""
    lat, model = _small()
    h, J = model.fields(lat)
    for dmu in (-0.05, 0.02):
        exact = _exact(lat, model, dmu, 500.0)
        runs = []
        for s in range(6):
            occ = np.zeros(lat.n_sites, np.int8)
            sgc(occ, h, lat.indptr, lat.neighbours, J, dmu=dmu, temperature=500.0, sweeps=500, seed=100 + s,
                sample_every_sweep=False)
            runs.append(sgc(occ, h, lat.indptr, lat.neighbours, J, dmu=dmu, temperature=500.0, sweeps=20000, seed=s)["mean_occ"])
        runs = np.array(runs)
        se = runs.std(axis=0, ddof=1) / np.sqrt(len(runs))
        assert np.all(np.abs(runs.mean(axis=0) - exact) < 5 * se + 2e-3), (runs.mean(axis=0), exact)
    n = lat.n_sites // 3
    exact = _exact(lat, model, 0.0, 500.0, n_fixed=n)
    occ = np.zeros(lat.n_sites, np.int8)
    occ[:n] = 1
    r = canonical(occ, h, lat.indptr, lat.neighbours, J, temperature=500.0, sweeps=100000, seed=3)
    assert occ.sum() == n  # the canonical ensemble keeps the iodide count
    assert np.abs(r["mean_occ"] - exact).max() < 0.01


def test_non_interacting_sites_follow_the_fermi_function():
    """J = 0: ⟨σ_i⟩ = 1 / (1 + exp((h_i − Δμ) / k_B T)), the analytic titration of independent sites."""
    lat = halide_lattice(perovskite_nanocrystal((2, 2, 2), "Cl"))
    model = LatticeModel(np.linspace(-0.08, 0.08, len(lat.kinds)), np.zeros(len(lat.shells)), {})
    h, J = model.fields(lat)
    occ = np.zeros(lat.n_sites, np.int8)
    r = sgc(occ, h, lat.indptr, lat.neighbours, J, dmu=0.01, temperature=400.0, sweeps=40000, seed=1)
    fermi = 1 / (1 + np.exp((h - 0.01) / (KB_EV * 400.0)))
    assert np.abs(r["mean_occ"] - fermi).max() < 0.02


def test_detailed_balance_of_single_trials():
    """One site, one trial from each state: P(Cl→I) / P(I→Cl) = exp(−β(h − Δμ)) (Metropolis)."""
    h, dmu, temperature = np.array([0.03]), 0.0, 300.0
    empty = (np.array([0, 0]), np.zeros(0, np.int64), np.zeros(0))
    up = down = 0
    trials = 20000
    for s in range(trials):
        a = np.zeros(1, np.int8)
        sgc(a, h, *empty, dmu=dmu, temperature=temperature, sweeps=1, seed=s, sample_every_sweep=False)
        up += int(a[0])
        b = np.ones(1, np.int8)
        sgc(b, h, *empty, dmu=dmu, temperature=temperature, sweeps=1, seed=s, sample_every_sweep=False)
        down += 1 - int(b[0])
    assert down == trials  # downhill moves are always accepted
    expected = np.exp(-0.03 / (KB_EV * temperature))
    assert up / down == pytest.approx(expected, abs=4 * np.sqrt(expected * (1 - expected) / trials))


def test_energy_bookkeeping_matches_the_features():
    lat, model = _small(2)
    h, J = model.fields(lat)
    rng = np.random.default_rng(0)
    for _ in range(5):
        occ = rng.integers(0, 2, lat.n_sites).astype(np.int8)
        assert total_energy(occ, h, lat.indptr, lat.neighbours, J) == pytest.approx(model.energy(lat, occ), abs=1e-12)


def test_fit_recovers_a_model_from_data_made_by_a_richer_one():
    """Energies from site + pair terms plus a three-body term and noise the fitted model does not
    have: the fit recovers the site and pair energies and its CV error is that of what it misses."""
    lat = halide_lattice(perovskite_nanocrystal((2, 2, 2), "Cl"), n_shells=2)
    rng = np.random.default_rng(4)
    truth = LatticeModel(rng.normal(-0.1, 0.05, len(lat.kinds)), np.array([0.04, -0.01]), {})
    occs = (rng.random((150, lat.n_sites)) < rng.random((150, 1))).astype(np.int8)
    third = 0.002 * np.array([np.sum(o[: lat.n_sites // 3]) ** 1.5 for o in occs])  # not in the fitted model
    noise = rng.normal(0, 0.005, len(occs))
    y = np.array([truth.energy(lat, o) for o in occs]) + third + noise
    fit = fit_lattice_model(lat, occs, y)
    assert np.abs(fit.pair_energy - truth.pair_energy).max() < 0.005
    assert np.abs(fit.site_energy - truth.site_energy).max() < 0.03
    assert 0 < fit.cv["rmse_meV_per_halide"] < 5 and fit.cv["n_configurations"] == 150
    with pytest.raises(InputError, match="too few for .* need at least"):
        fit_lattice_model(lat, occs[:5], y[:5])
    assert features(lat, occs[0]).shape == (len(lat.kinds) + len(lat.shells),)


def test_titration_finds_the_jump_of_an_attractive_lattice_and_none_without_interactions():
    """Strongly attractive I–I pairs: the forward and backward sweeps split (a first-order jump);
    without interactions the curves coincide."""
    lat = halide_lattice(perovskite_nanocrystal((3, 3, 3), "Cl"), n_shells=1)
    dmus = np.linspace(0.0, 0.6, 13)
    sticky = LatticeModel(np.full(len(lat.kinds), 0.30), np.array([-0.08]), {})
    t = titration(lat, sticky, dmus, temperature=300.0, sweeps=30, equilibrate=30)
    regions = two_phase_regions(t["dmu_eV"], t["x_cl_forward"], t["x_cl_backward"])
    assert regions and regions[0]["jump_x_cl"] > 0.5
    assert t["x_cl_forward"][0] > 0.95 and t["x_cl_forward"][-1] < 0.05
    free = LatticeModel(np.full(len(lat.kinds), 0.30), np.array([0.0]), {})
    t = titration(lat, free, dmus, temperature=300.0, sweeps=60, equilibrate=20)
    assert two_phase_regions(t["dmu_eV"], t["x_cl_forward"], t["x_cl_backward"]) == []
    mid = int(np.argmin(np.abs(dmus - 0.3)))
    assert t["x_cl_forward"][mid] == pytest.approx(0.5, abs=0.06)  # Fermi: half exchanged at Δμ = h
    with pytest.raises(InputError, match="increasing"):
        titration(lat, free, [0.2, 0.1], temperature=300.0)
    with pytest.raises(InputError, match="temperature"):
        titration(lat, free, dmus, temperature=0.0)


def test_pathway_cli_end_to_end_on_a_classical_engine(mixed_engine, tmp_path, capsys):
    """halex pathway on a heterostructure and its free nanocrystal: the training set is relaxed
    through the store (a rerun is all cache hits), and every output is written with its verdicts;
    the plan line before it counts each particle's round-0 configurations exactly."""
    import json
    import re

    from halex.cli.main import main
    from halex.io import write_structure

    write_structure(tmp_path / "hs.extxyz", heterostructure((2, 2, 2), 1))
    args = ["pathway", str(tmp_path / "hs.extxyz"), "--engine", "test-mixed-lj", "--compare-free-nc", "--fmax", "0.2",
            "--rounds", "2", "--per-round", "4", "--sweeps", "20", "--refits", "3", "--db", str(tmp_path / "p.db"),
            "-o", str(tmp_path / "out")]
    assert main(args) == 0
    printed = capsys.readouterr()
    from ase.db import connect

    n_rows = connect(tmp_path / "p.db").count()
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["particles"]) == {"particle", "free-nc"}
    plan = next(line for line in printed.err.splitlines() if line.startswith("plan: at most"))
    for name in ("particle", "free-nc"):  # round 0, then at most 4 Monte Carlo samples in round 1
        planned = int(re.search(rf"{name}: (\d+) of", plan).group(1))
        rounds = summary["particles"][name]["training_rounds"]
        assert planned - 4 == rounds[0]["configurations"] and rounds[-1]["configurations"] <= planned, (plan, rounds)
    part = summary["particles"]["particle"]
    assert part["cv"]["rmse_meV_per_halide"] > 0 and part["training_rounds"][0]["configurations"] > 10
    assert {"conversion_order", "segmented_state", "two_phase_regions", "uncertainty"} <= set(part["verdicts"])
    u = part["verdicts"]["uncertainty"]
    assert u["refits"] == 3 and len(u["layers"]) == len(part["verdicts"]["conversion_order"])
    assert 0 <= u["first_layer_agreement"] <= 1 and u["kT_meV"] == pytest.approx(25.7, abs=0.1)
    assert not any(k.startswith("chalcohalide") for k in summary["particles"]["free-nc"]["site_energy_eV"])
    for f in ("titration.csv", "titration.json", "titration.png", "parity.png", "conversion.png", "layers_particle.png",
              "layers_free-nc.png",
              "report.html", "particle_xcl50.extxyz", "free-nc_xcl25.extxyz"):
        assert (out / f).stat().st_size > 100, f
    from halex.io import read_structure

    snap = read_structure(out / "particle_xcl50.extxyz")
    assert "layer" in snap.arrays and "I" in snap.get_chemical_symbols()
    assert "converts first" in printed.out and "of 3 refits" in printed.out
    assert "bootstrap refits of the lattice model" in (out / "report.html").read_text()
    assert main(args) == 0 and connect(tmp_path / "p.db").count() == n_rows  # rerun: nothing relaxed again


@pytest.mark.parametrize(("extra", "message"), [
    (["--temperature", "0"], "temperature must be > 0"),
    (["--dmu", "0.5", "0.1", "5"], "increasing range"),
    (["--workers", "0"], "--workers must be >= 1"),
    (["--refits", "1"], "--refits must be 0 (none) or at least 2"),
])
def test_pathway_cli_refuses_bad_input(tmp_path, extra, message):
    from conftest import run_cli
    from halex.io import write_structure

    write_structure(tmp_path / "hs.extxyz", heterostructure((2, 2, 2), 1))
    r = run_cli("pathway", str(tmp_path / "hs.extxyz"), *extra, "--db", str(tmp_path / "x.db"), "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.db").exists()


def test_pathway_refuses_a_model_without_halide_sites(tmp_path):
    from conftest import run_cli
    from halex.io import write_structure

    hs = heterostructure((2, 2, 2), 1)
    keep = ~np.isin(hs.get_chemical_symbols(), ["Cl"])
    write_structure(tmp_path / "nohal.extxyz", hs[keep])
    r = run_cli("pathway", str(tmp_path / "nohal.extxyz"), "--db", str(tmp_path / "x.db"), "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "no Cl/I halide sites" in r.stderr


def test_periodic_lattice_counts_every_image_pair():
    """Cubic CsPbX3: each X has 8 X at a/√2, 6 at a and 16 at a√(3/2) (Pm-3m, X on 3d)."""
    from halex.pathway.periodic import bulk_perovskite

    lat = halide_lattice(bulk_perovskite((2, 2, 2)), chalcohalide_layers=0, n_shells=3)
    a = 5.605
    assert lat.n_sites == 24
    assert np.allclose(lat.shells, [a / np.sqrt(2), a, a * np.sqrt(1.5)], atol=1e-3)
    counts = np.array([np.bincount(lat.neighbour_shell[lat.indptr[i]:lat.indptr[i + 1]], minlength=3)
                       for i in range(lat.n_sites)])
    assert (counts == [8, 6, 16]).all()
    f = features(lat, np.ones(lat.n_sites, np.int8))
    assert f[len(lat.kinds):].tolist() == [24 * 8 / 2, 24 * 6 / 2, 24 * 16 / 2]
    with pytest.raises(InputError, match="own periodic image"):
        halide_lattice(bulk_perovskite((1, 1, 1)), chalcohalide_layers=0, n_shells=2)


def _mixing_data(shift_heldout_meV=0.0):
    """Energies of a 2×2×2 crystal from a known site + pair model; held-out rows optionally shifted."""
    from halex.pathway.periodic import bulk_perovskite, composition_configurations

    lat = halide_lattice(bulk_perovskite((2, 2, 2)), chalcohalide_layers=0, n_shells=3)
    truth = LatticeModel(np.array([1.30, 1.30]), np.array([-0.012, 0.004, 0.003]), {})
    ends = np.array([np.zeros(24, np.int8), np.ones(24, np.int8)])
    train = np.concatenate([ends, composition_configurations(lat, (0.125, 0.375, 0.625, 0.875), 4)])
    test = composition_configurations(lat, (0.25, 0.5, 0.75), 2, seed=1)
    occs = np.concatenate([train, test])
    e = np.array([-100.0 + truth.energy(lat, o) for o in occs])
    e[len(train):] += shift_heldout_meV / 1000 * occs[len(train):].sum(axis=1)
    return lat, occs, e, len(train), truth


def test_mixing_check_agrees_with_its_own_model_and_catches_held_out_physics_it_lacks():
    from halex.pathway.periodic import _compare

    lat, occs, e, n_train, truth = _mixing_data()
    r = _compare(lat, occs, e, np.ones(len(e), bool), n_train, (2, 2, 2), 5.7, 6.4)
    assert r["heldout_rmse_meV_per_halide"] < 0.5 and r["agrees"]
    x = occs.mean(axis=1)
    y1 = truth.energy(lat, np.ones(24, np.int8))
    exact = [1000 * (truth.energy(lat, o) - xi * y1) / 8 for o, xi in zip(occs, x)]
    assert np.allclose([row["direct_meV_per_fu"] for row in r["rows"]], exact, atol=1e-6)
    lat, occs, e, n_train, _ = _mixing_data(shift_heldout_meV=40.0)
    bad = _compare(lat, occs, e, np.ones(len(e), bool), n_train, (2, 2, 2), 5.7, 6.4)
    assert bad["heldout_rmse_meV_per_halide"] > 30 and not bad["agrees"]


def _no_energy_engine_class():
    class NoEnergyEngine(_mixed_engine_class()):
        name = "test-no-energy"
        capabilities = frozenset({"forces"})

    return NoEnergyEngine


def test_pathway_refuses_an_engine_that_cannot_give_energies(tmp_path, capsys):
    from halex.cli.main import main
    from halex.engines import _REGISTRY, register_engine
    from halex.io import write_structure

    write_structure(tmp_path / "hs.extxyz", heterostructure((2, 2, 2), 1))
    register_engine("test-no-energy", "test_pathway:NoEnergyEngine")
    try:
        for cmd in (["pathway", str(tmp_path / "hs.extxyz")], ["pathway-check"]):
            assert main([*cmd, "--engine", "test-no-energy", "--db", str(tmp_path / "x.db"),
                         "-o", str(tmp_path / "out")]) == 2
            err = capsys.readouterr().err
            assert "cannot compute energies" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    finally:
        _REGISTRY.pop("test-no-energy", None)
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("extra", [["--replicas", "0"], ["--per-fraction", "0"], ["--supercell", "1", "1", "1"]])
def test_pathway_check_refuses_bad_input(tmp_path, extra):
    from conftest import run_cli

    r = run_cli("pathway-check", *extra, "--db", str(tmp_path / "x.db"), "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.db").exists()


def test_bootstrap_refits_spread_like_the_least_squares_standard_errors():
    """Data from a known model plus Gaussian noise σ: the refits' spread of each site and pair
    energy matches the analytic least-squares standard error √(σ² (XᵀX)⁻¹), and their mean
    the truth."""
    from halex.pathway.model import bootstrap_lattice_models

    lat = halide_lattice(perovskite_nanocrystal((2, 2, 2), "Cl"), n_shells=2)
    rng = np.random.default_rng(7)
    truth = LatticeModel(rng.normal(0.0, 0.1, len(lat.kinds)), np.array([0.03, -0.02]), {})
    occs = (rng.random((200, lat.n_sites)) < rng.random((200, 1))).astype(np.int8)
    sigma = 0.02
    y = np.array([truth.energy(lat, o) for o in occs]) + rng.normal(0, sigma, len(occs))
    refits = bootstrap_lattice_models(lat, occs, y, alpha=1e-8, n=300, seed=1)
    coef = np.array([np.concatenate([m.site_energy, m.pair_energy]) for m in refits])
    X = np.array([features(lat, o) for o in occs])
    se = np.sqrt(np.diag(sigma**2 * np.linalg.inv(X.T @ X)))
    ratio = coef.std(axis=0, ddof=1) / se
    assert 0.75 < np.median(ratio) < 1.3 and ratio.min() > 0.5 and ratio.max() < 2.0
    assert np.all(np.abs(coef.mean(axis=0) - np.concatenate([truth.site_energy, truth.pair_energy])) < 4 * se)


def _layered(step, noise, seed=0):
    """A free nanocrystal's lattice whose site energies rise by ``step`` eV per layer, and a
    fitted particle made from 120 noisy (``noise`` eV) configurations of that model."""
    lat = halide_lattice(perovskite_nanocrystal((2, 2, 3), "Cl"), n_shells=1)
    h = np.array([0.1 + step * int(k.split()[1]) for k in lat.kinds])
    truth = LatticeModel(h, np.array([0.0]), {})
    rng = np.random.default_rng(seed)
    occs = (rng.random((120, lat.n_sites)) < rng.random((120, 1))).astype(np.int8)
    y = np.array([truth.energy(lat, o) for o in occs]) + rng.normal(0, noise, len(occs))
    fit = {"name": "nc", "lattice": lat, "model": fit_lattice_model(lat, occs, y),
           "history": {"occupations": occs, "energies_eV": y, "rounds": []}}
    return fit


def test_verdicts_are_resolved_when_layers_differ_and_not_when_noise_hides_the_difference():
    """Layers 150 meV apart, little noise: every refit converts them in the same order (resolved,
    each step wider than the CV error). Equal layers under heavy noise: the refits disagree on
    the order, and the verdict says it is not resolved."""
    from halex.pathway.uncertainty import verdict_uncertainty
    from halex.pathway.workflow import titrate_particle

    dmus = np.linspace(-0.3, 0.8, 23)
    res = titrate_particle(_layered(0.15, 0.005), dmus, temperature=300.0, sweeps=20, refits=10)
    u = res["verdicts"]["uncertainty"]
    assert len(res["verdicts"]["conversion_order"]) >= 3
    assert u["first_layer_resolved"] and u["first_layer_agreement"] == 1.0 and u["same_order"] == 1.0
    assert all(p["agreement"] == 1.0 and not p["within_cv_error"] for p in u["adjacent_pairs"])
    assert u["jump_fraction"] == 0.0 and u["jump_resolved"]
    assert all(x["sd_eV"] < 0.02 for x in u["layers"])
    fit = _layered(0.0, 0.3, seed=1)
    res = titrate_particle(fit, dmus, temperature=300.0, sweeps=20)
    assert res["verdicts"]["uncertainty"] is None  # no refits asked for
    u = verdict_uncertainty(fit, res["verdicts"], dmus, temperature=300.0, sweeps=20, refits=10)
    assert u["same_order"] < 0.9 and any(p["agreement"] < 0.9 for p in u["adjacent_pairs"])
    assert all(p["within_cv_error"] for p in u["adjacent_pairs"])
    with pytest.raises(InputError, match="training set"):
        verdict_uncertainty({k: v for k, v in fit.items() if k != "history"}, res["verdicts"], dmus,
                            temperature=300.0, sweeps=20)


def test_a_ridge_penalty_at_the_top_of_its_grid_is_flagged(caplog):
    """Pure noise: cross-validation wants the strongest penalty; the fit says it is at the grid's
    top (where the old grid, ending at 1, pinned both default particles)."""
    lat = halide_lattice(perovskite_nanocrystal((2, 2, 2), "Cl"), n_shells=1)
    rng = np.random.default_rng(3)
    occs = (rng.random((60, lat.n_sites)) < 0.5).astype(np.int8)
    y = rng.normal(0, 1.0, len(occs))
    with caplog.at_level("WARNING", logger="halex.pathway"):
        fit = fit_lattice_model(lat, occs, y, alphas=(1e-6, 1e-3, 1.0))
    assert fit.cv["alpha"] == 1.0 and fit.cv["alpha_at_edge"] and "largest tried" in caplog.text
    signal = np.array([LatticeModel(np.full(len(lat.kinds), 0.2), np.array([0.05]), {}).energy(lat, o) for o in occs])
    assert not fit_lattice_model(lat, occs, signal + 0.01 * y).cv["alpha_at_edge"]


def test_the_fit_says_where_its_error_lies_by_iodide_fraction():
    """Data with a collective −0.5 eV relaxation for any iodide, which no site or pair term can
    hold: the cross-validated error by iodide fraction shows those configurations relaxing lower
    than predicted, and the error per halide largest at the dilute end."""
    lat = halide_lattice(perovskite_nanocrystal((2, 2, 2), "Cl"), n_shells=2)
    rng = np.random.default_rng(5)
    truth = LatticeModel(rng.normal(0.1, 0.05, len(lat.kinds)), np.array([0.02, -0.01]), {})
    n = rng.integers(1, lat.n_sites + 1, 150)
    occs = np.array([rng.permutation(np.r_[np.ones(k), np.zeros(lat.n_sites - k)]) for k in n]).astype(np.int8)
    y = np.array([truth.energy(lat, o) for o in occs]) - 0.5 + rng.normal(0, 0.01, len(occs))
    rows = fit_lattice_model(lat, occs, y).cv["error_by_iodide_fraction"]
    assert [r["iodide_fraction"] for r in rows] == ["0–5 %", "5–15 %", "15–100 %"]
    assert sum(r["configurations"] for r in rows) == 150
    dilute, rest = rows[0], rows[-1]
    assert dilute["configurations"] > 0 and dilute["mean_error_eV"] > 0.2
    assert dilute["rms_meV_per_halide"] > 5 * rest["rms_meV_per_halide"]
