"""The default engine fine-tuned on the CP2K PBE parity dataset (halex.engines.tuning, engine mlip-tuned)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli
from halex.engines import get_engine, parity, tuning
from halex.studies.energies import exchange_energy


@pytest.fixture(scope="module")
def dataset():
    return parity.read_dataset()


@pytest.fixture(scope="module")
def tuned():
    return get_engine("mlip-tuned")


def test_folds_split_by_reaction_and_never_show_a_held_out_product(dataset):
    folds = tuning.reaction_folds(dataset["reactions"], 5)
    names = [r["name"] for r in dataset["reactions"]]
    assert sorted(n for f in folds for n in f) == sorted(names)          # every reaction held out exactly once
    by_name = {r["name"]: r for r in dataset["reactions"]}
    for held in folds:
        seen = set(tuning.training_structures(dataset, [n for n in names if n not in held]))
        assert not {by_name[n]["product"] for n in held} & seen
        assert {"PbCl2", "PbI2"} <= seen
        # every family with at least 5 reactions has one reaction in every fold
        big = {f for f in {r["family"] for r in dataset["reactions"]}
               if sum(r["family"] == f for r in dataset["reactions"]) >= 5}
        assert {by_name[n]["family"] for n in held} >= big and len(big) == 3
    with pytest.raises(Exception, match="number of folds"):
        tuning.reaction_folds(dataset["reactions"], 1)


def test_fitted_exchange_energy_is_the_spec_formula(dataset):
    """The differentiable ΔE the fit minimises is SPEC §4's, checked against the study code on the DFT labels."""
    e = {n: s["energy_eV"] for n, s in dataset["structures"].items()}
    for r in dataset["reactions"]:
        ref = exchange_energy(e[r["product"]], e[r["reactant"]], r["x"], e["PbCl2"], e["PbI2"])
        assert tuning._exchange(e, r) == pytest.approx(ref, abs=1e-9)


def test_a_short_fit_lowers_its_training_error_and_trains_only_the_top_layers(dataset):
    octa = [r["name"] for r in dataset["reactions"] if r["family"] == "octahedron"][:3]
    model, hist = tuning.fit_reactions(dataset, octa, epochs=8)
    err = hist["reaction_rmse_kcal_mol"]
    assert err[-1] < 0.8 * err[0]
    base = tuning._load_base()
    changed = {n for (n, p), (_, q) in zip(model.named_parameters(), base.named_parameters())
               if not np.allclose(p.detach().numpy(), q.detach().numpy())}
    assert changed and all(n.startswith(tuning.TRAINABLE) for n in changed)
    with pytest.raises(Exception, match="no such reaction"):
        tuning.fit_reactions(dataset, ["not a reaction"], epochs=1)


def test_shipped_weights_were_fitted_to_the_shipped_dataset_and_beat_the_pretrained_engine_held_out(dataset, tuned):
    meta = tuned.fitted_to()
    assert meta["dataset_sha256"] == tuning.dataset_digest(dataset)   # retune after changing the dataset
    held = meta["held_out"]
    assert held["folds"] >= 5 and held["n"] == len(dataset["reactions"])
    assert held["after"]["mae_kcal_mol"] < 0.6 * held["before"]["mae_kcal_mol"]
    assert held["after"]["max_abs_error_kcal_mol"] < held["before"]["max_abs_error_kcal_mol"]
    # the held-out 'before' column is the pretrained engine's parity, computed independently
    base = parity.parity_summary(parity.parity_table(dataset, get_engine("mlip")))
    assert held["before"]["mae_kcal_mol"] == pytest.approx(base["mae_kcal_mol"], abs=0.02)
    assert "sha256" in tuned.version and tuned.describe()["settings"]["model"] == "cp2k-pbe-parity-1"


def test_tuned_engine_keeps_the_physics_it_was_not_fitted_to(dataset, tuned):
    """Independent checks outside the fit: the CsPbCl3 lattice constant (experiment, cubic phase:
    5.605 Å, Møller 1958; PBE overestimates by 1–3 %) and the DFT forces of every structure."""
    def lattice(engine):
        a = np.linspace(5.55, 5.90, 8)
        e = []
        for x in a:
            atoms = _cspbcl3(x)
            atoms.calc = engine.calculator()
            e.append(atoms.get_potential_energy())
        c = np.polyfit(a, e, 2)
        return -c[1] / (2 * c[0])

    a_tuned, a_base = lattice(tuned), lattice(get_engine("mlip"))
    assert a_tuned == pytest.approx(a_base, rel=0.01)
    assert 5.605 < a_tuned < 5.605 * 1.035
    rms = {}
    for name, eng in (("tuned", tuned), ("base", get_engine("mlip"))):
        d = []
        for rec in dataset["structures"].values():
            atoms = parity._atoms(rec)
            atoms.calc = eng.calculator()
            d.append(atoms.get_forces() - np.asarray(rec["forces_eV_A"]))
        rms[name] = float(np.sqrt(np.mean(np.concatenate(d) ** 2)))
    assert rms["tuned"] <= rms["base"]


def _cspbcl3(a: float):
    from ase import Atoms

    return Atoms("CsPbCl3", scaled_positions=[(0, 0, 0), (.5, .5, .5), (.5, .5, 0), (.5, 0, .5), (0, .5, .5)],
                 cell=[a, a, a], pbc=True)


def test_cli_tune_writes_weights_that_the_engine_loads_and_parity_flags_training_data(tmp_path):
    out = tmp_path / "tune"
    r = run_cli("-q", "engines", "tune", "--folds", "2", "--epochs", "2", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert {p.name for p in out.iterdir()} == {"mlip_tuned.pt", "summary.json", "cv.csv", "cv_parity.png"}
    meta = json.loads((out / "summary.json").read_text())
    assert meta["held_out"]["folds"] == 2 and meta["protocol"]["epochs"] == 2
    r = run_cli("-q", "engines", "parity", "--engine", "mlip-tuned", "--set", f"model={out / 'mlip_tuned.pt'}",
                "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)["summary"]
    assert summary["fitted_to_this_dataset"] and summary["held_out"]["folds"] == 2
    r = run_cli("engines", "tune", "--folds", "1", "-o", str(tmp_path / "x"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--folds" in r.stderr
    r = run_cli("engines", "parity", "--engine", "mlip-tuned", "--set", f"model={tmp_path / 'missing.pt'}")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "not found" in r.stderr
