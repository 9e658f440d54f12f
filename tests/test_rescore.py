"""Rescoring a study with other engines: analytic cases, verdict withdrawal, real SevenNet, CLI refusal."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes

from conftest import _lj_engine_class, run_cli
from halex.models import heterostructure

#: per-element energies (eV) added by the shifted engine: exchange energies must not see them
SHIFT = {"Cs": -1.3, "Pb": 2.1, "Cl": -0.7, "I": 0.9, "S": -2.2}


class _Transformed(Calculator):
    """Lennard-Jones energy × scale + Σ per-element shifts (forces × scale)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, base, scale: float, shift: dict[str, float]):
        super().__init__()
        self.base, self.scale, self.shift = base, scale, shift

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms.copy()
        a.calc = self.base
        e = a.get_potential_energy()
        self.results = {"energy": self.scale * e + sum(self.shift.get(s, 0.0) for s in a.get_chemical_symbols()),
                        "forces": self.scale * a.get_forces()}


def _variant(name: str, scale: float, shift: dict[str, float]):
    base = _lj_engine_class()

    class Variant(base):
        def calculator(self, directory=None):
            return _Transformed(super().calculator(directory), scale, shift)

    Variant.name = name
    return Variant


ShiftedLJ = _variant("test-lj-shifted", 1.0, SHIFT)
ScaledLJ = _variant("test-lj-scaled", 1.1, {})


@pytest.fixture
def variants(lj_engine):
    from halex.engines import _REGISTRY, register_engine

    register_engine("test-lj-shifted", "test_rescore:ShiftedLJ")
    register_engine("test-lj-scaled", "test_rescore:ScaledLJ")
    yield lj_engine
    _REGISTRY.pop("test-lj-shifted", None)
    _REGISTRY.pop("test-lj-scaled", None)


def _de_columns(rows):
    return [c for c in rows[0] if c.startswith("dE_") and c.endswith("_kcal_mol") and "_engine_spread_" not in c]


def test_rescoring_is_exact_on_analytic_engines(variants, tmp_path):
    """Per-element energy shifts cancel in every exchange energy (the PbX2 references carry them too),
    and an engine that scales every energy by 1.1 scales every ΔE by 1.1, so the engine spread is
    0 and 0.1 |ΔE|; rescoring with the study engine itself gives its own relaxed energies back."""
    from halex.studies import StudySettings, layers_study

    settings = StudySettings(engine=variants, store_url=str(tmp_path / "r.db"), fmax=0.2,
                             rescore=("test-lj-shifted", "test-lj-scaled", "test-lj"))
    study = layers_study(heterostructure((2, 2, 2), 1), 1, settings)
    rows = study.tables["layers"][1:]
    by = {(r["engine"], r["table"], r["model"]): r for r in study.tables["rescore"] if r["table"] == "layers"}
    for r in rows:
        for c in _de_columns(rows):
            assert by[("test-lj-shifted", "layers", r["model"])][c] == pytest.approx(r[c], abs=1e-6)
            assert by[("test-lj-scaled", "layers", r["model"])][c] == pytest.approx(1.1 * r[c], rel=1e-6)
            assert by[("test-lj", "layers", r["model"])][c] == pytest.approx(r[c], abs=1e-9)
            assert r[c.replace("_kcal_mol", "_engine_spread_kcal_mol")] == pytest.approx(0.1 * abs(r[c]), rel=1e-6)
    diff = study.tables["layers_difference"][0]
    assert diff["dE_cum_interface_minus_bottom_engine_spread_kcal_mol"] == pytest.approx(
        0.1 * abs(diff["dE_cum_interface_minus_bottom_kcal_mol"]), rel=1e-6)
    c = _conclusions(study)[0]
    assert c["unit"] == "kcal/mol per halide" and "ΔE_cum(interface) − ΔE_cum(bottom)" in c["question"]
    assert c["engine_spread"] == pytest.approx(0.1 * abs(c["value"]), rel=1e-6)
    assert c["engines_agree"] and "test-lj-scaled" in c["value_by_engine"]
    assert [e["name"] for e in study.meta["rescore"]["engines"]] == ["test-lj-shifted", "test-lj-scaled", "test-lj"]
    # questions about the relaxed geometry (the lattice profile) have one answer for every engine
    profile = [c for c in _conclusions(study) if c["unit"] == "Å per layer"]
    assert profile and all(c["engines_agree"] and c["engine_spread"] == pytest.approx(0.0) for c in profile), profile


def _conclusions(study):
    from halex.studies.conclusions import study_conclusions

    return study_conclusions(study)


def test_a_verdict_is_withdrawn_when_an_engine_disagrees_in_sign():
    from halex.studies.conclusions import _with_engines

    row = {"question": "q", "value": 0.8, "verdict": "holds", "method": "t interval"}
    agree = _with_engines(row, "mlip", {"7net-0": [{"question": "q", "value": 0.3}]})
    assert agree["verdict"] == "holds" and agree["engines_agree"] and agree["engine_spread"] == pytest.approx(0.5)
    flip = _with_engines(row, "mlip", {"7net-0": [{"question": "q", "value": -0.2}]})
    assert flip["verdict"] == "not resolved at this noise" and not flip["engines_agree"] and "7net-0" in flip["method"]
    other = _with_engines(row, "mlip", {"7net-0": [{"question": "another", "value": 0.9}]})
    assert other["verdict"] == "not resolved at this noise" and other["engine_spread"] is None
    assert "7net-0 no answer" in other["value_by_engine"]
    unresolved = _with_engines({**row, "verdict": "not resolved at this noise"}, "mlip",
                               {"7net-0": [{"question": "q", "value": -0.2}]})
    assert unresolved["verdict"] == "not resolved at this noise"
    # answers are matched by question, not by position: an engine that answers fewer questions
    # (or in another order) keeps its answer to this one
    shifted = _with_engines(row, "mlip", {"7net-0": [{"question": "other", "value": -1.0}, {"question": "q", "value": 0.5}]})
    assert shifted["verdict"] == "holds" and shifted["engines_agree"] and shifted["engine_spread"] == pytest.approx(0.3)


def test_unknown_rescore_engine_is_refused_before_anything_is_written(tmp_path):
    from halex.io import write_structure

    write_structure(tmp_path / "hs.extxyz", heterostructure((2, 2, 2), 1))
    r = run_cli("study", "layers", "--model", str(tmp_path / "hs.extxyz"), "--max-layers", "1", "--rescore", "7net-9",
                "--db", str(tmp_path / "x.db"), "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "unknown engine '7net-9'" in r.stderr and "7net-0" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out").exists() and not (tmp_path / "x.db").exists()


@pytest.mark.slow
def test_sevennet_rescores_a_real_study(tmp_path):
    """CHGNet study, rescored by SevenNet-0 and SevenNet-MF-0 (weights from the wheel, no network):
    finite values for every ΔE; the exchange energies of potentials trained on the same PBE data
    agree in sign with CHGNet's and lie within a few kcal/mol of it."""
    pytest.importorskip("sevenn")
    from halex.studies import StudySettings, layers_study

    settings = StudySettings(engine="mlip", store_url=str(tmp_path / "s.db"), fmax=0.1, replicas=2,
                             rescore=("7net-0", "7net-mf-0"))
    study = layers_study(heterostructure((2, 2, 2), 1), 1, settings)
    rows = study.tables["layers"][1:]
    res = [r for r in study.tables["rescore"] if r["table"] == "layers" and r.get("n_layers")]
    assert {r["engine"] for r in res} == {"7net-0", "7net-mf-0"} and len(res) == 2 * len(rows)
    for r in rows:
        assert np.isfinite(r["dE_cum_engine_spread_kcal_mol"]) and 0 <= r["dE_cum_engine_spread_kcal_mol"] < 5
        for o in (x for x in res if x["model"] == r["model"]):
            assert np.sign(o["dE_cum_kcal_mol"]) == np.sign(r["dE_cum_kcal_mol"]), (r, o)
    c = _conclusions(study)[0]
    assert c["value_by_engine"].count(";") == 2 and c["engine_spread"] is not None
    versions = [e["version"] for e in study.meta["rescore"]["engines"]]
    assert versions[0].startswith("sevenn") and "(PBE)" in versions[1]
