"""DFT parity of an engine on exchange reactions (halex.engines.parity, halex engines parity)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from conftest import run_cli
from halex.engines import parity
from halex.errors import FileFormatError, UnsupportedElementError


def _unrelaxed_dataset(engine):
    """The parity set on its start geometries (products: the built reactant, swapped), unlabelled."""
    starts = parity.parity_starts()
    geoms = dict(starts)
    for name, (reactant, _) in parity._product_sites().items():
        geoms[name] = parity.product_of(name, starts[reactant])
    return parity.new_dataset(geoms, engine, engine)


def test_reaction_set_is_what_the_parity_check_promises():
    reactions = parity.parity_reactions()
    assert len(reactions) >= 12
    assert {r.family for r in reactions} == {"molecule", "octahedron", "perovskite", "chalcohalide"}
    starts = parity.parity_starts()
    for r in reactions:
        p = parity.product_of(r.product, starts[r.reactant])
        a, b = Counter(starts[r.reactant].get_chemical_symbols()), Counter(p.get_chemical_symbols())
        assert len(p) <= 60
        assert a["Cl"] - b["Cl"] == b["I"] - a["I"] == r.x > 0
        np.testing.assert_allclose(p.positions, starts[r.reactant].positions)  # a swap, nothing moved


def test_octahedron_patterns_by_geometry():
    """cis / trans / fac / mer by the I–I distances: √2 and 2 × the Pb–X bond (cubic Cs4PbCl6)."""
    start = parity.parity_starts()["Cs4PbCl6"]
    pb = start.positions[start.symbols == "Pb"][0]
    bond = np.linalg.norm(start.positions[start.symbols == "Cl"][0] - pb)

    def ii(name):
        p = parity.product_of(name, start)
        i = p.positions[p.symbols == "I"]
        return sorted(np.round(np.linalg.norm(i[:, None] - i[None], axis=-1)[np.triu_indices(len(i), 1)] / bond, 3))

    assert ii("Cs4PbCl4I2-cis") == pytest.approx([np.sqrt(2)], abs=1e-3)
    assert ii("Cs4PbCl4I2-trans") == pytest.approx([2.0], abs=1e-3)
    assert ii("Cs4PbCl3I3-fac") == pytest.approx([np.sqrt(2)] * 3, abs=1e-3)
    assert ii("Cs4PbCl3I3-mer") == pytest.approx([np.sqrt(2), np.sqrt(2), 2.0], abs=1e-3)


def test_additive_labels_give_zero_exchange_energy_and_a_self_parity_of_zero(lj_engine):
    """Analytic cases. Labels additive in the species (E = Σ ε_element) make every ΔE exactly 0
    (the PbX2 references balance the swap), so the error is the engine's own ΔE; labels made by
    the engine itself give zero error."""
    data = _unrelaxed_dataset(lj_engine)
    eps = {"Cs": -1.3, "Pb": -2.7, "Cl": -0.9, "I": -0.4, "S": -1.1}
    for rec in data["structures"].values():
        rec["energy_eV"] = sum(eps[s] for s in rec["symbols"])
    rows = parity.parity_table(data, lj_engine)
    assert len(rows) == len(parity.parity_reactions())
    for r in rows:
        assert r["dE_dft_kcal_mol"] == pytest.approx(0.0, abs=1e-9)
        assert r["error_kcal_mol"] == pytest.approx(r["dE_engine_kcal_mol"], abs=1e-9)
    assert max(abs(r["error_kcal_mol"]) for r in rows) > 0.1  # the engine's ΔE is not trivially 0

    from halex.relax import single_point

    for rec in data["structures"].values():
        rec["energy_eV"] = single_point(parity._atoms(rec), lj_engine).energy
    s = parity.parity_summary(parity.parity_table(data, lj_engine))
    assert s["n"] == len(rows) and s["unlabelled"] == 0
    assert s["mae_kcal_mol"] == pytest.approx(0.0, abs=1e-9)


def test_unlabelled_reactions_are_listed_not_scored(lj_engine):
    data = _unrelaxed_dataset(lj_engine)
    for name in ("PbCl2", "PbI2", "PbClI"):
        data["structures"][name]["energy_eV"] = -1.0
    rows = parity.parity_table(data, lj_engine)
    s = parity.parity_summary(rows)
    assert s["n"] == 1 and s["unlabelled"] == len(rows) - 1
    assert [r["reaction"] for r in rows if r["dE_dft_kcal_mol"] is not None] == ["PbCl2 -> PbClI"]


def test_dataset_round_trip_and_bad_files(tmp_path, lj_engine):
    data = _unrelaxed_dataset(lj_engine)
    rec = data["structures"]["PbClI"]
    rec["energy_eV"], rec["forces_eV_A"] = -12.5, [[0.1, 0.0, -0.2]] * 3
    path = parity.write_dataset(tmp_path / "d.json", data)
    back = parity.read_dataset(path)
    assert back["structures"]["PbClI"]["energy_eV"] == -12.5
    assert back["reactions"] == data["reactions"]
    np.testing.assert_allclose(parity._atoms(back["structures"]["Pb4S3Cl2"]).cell,
                               parity._atoms(data["structures"]["Pb4S3Cl2"]).cell, atol=1e-6)
    assert not list(tmp_path.glob("*.part"))
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(FileFormatError, match="not a parity dataset"):
        parity.read_dataset(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(FileFormatError, match="halex-parity-1"):
        parity.read_dataset(tmp_path / "y.json")
    with pytest.raises(FileFormatError, match="--compute"):
        parity.read_dataset(tmp_path / "missing.json")


def test_dataset_that_the_engine_cannot_compute_or_that_is_not_a_swap(tmp_path, lj_engine):
    data = _unrelaxed_dataset(lj_engine)
    data["structures"]["PbClI"]["symbols"][0] = "Og"
    with pytest.raises(UnsupportedElementError, match="PbClI"):
        parity.check_dataset_engine(data, lj_engine)
    data = _unrelaxed_dataset(lj_engine)
    data["structures"]["PbClI"]["symbols"] = ["Pb", "I", "I"]
    with pytest.raises(FileFormatError, match="not the reactant with 1 Cl→I"):
        parity.check_dataset_engine(data, lj_engine)


def test_cli_refuses_a_dataset_the_engine_cannot_compute(tmp_path, lj_engine):
    data = _unrelaxed_dataset(lj_engine)
    data["structures"]["PbClI"]["symbols"][0] = "Og"
    parity.write_dataset(tmp_path / "og.json", data)
    r = run_cli("engines", "parity", "--dataset", str(tmp_path / "og.json"), "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Og" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()
    (tmp_path / "bad.json").write_text("[]")
    r = run_cli("engines", "parity", "--dataset", str(tmp_path / "bad.json"), cwd=tmp_path)
    assert r.returncode == 2 and "not a parity dataset" in r.stderr


def test_shipped_dataset_is_complete_and_its_geometries_are_minima_of_their_engine(mlip):
    """The committed CP2K dataset: the promised reactions, geometry engine recorded, and each
    geometry a minimum of that engine (forces ≤ the relaxation threshold), so the parity is
    reproducible from the file."""
    from halex.relax import single_point

    data = parity.read_dataset()
    assert data["dft"]["name"] == "cp2k" and data["dft"]["settings"]["xc"] == "PBE"
    parity.check_dataset_engine(data, mlip)
    assert len(data["reactions"]) >= 21
    assert data["geometry_engine"]["name"] == mlip.name
    for name in ("PbCl2", "Cs4PbCl6", "Cs4PbI6"):
        f = single_point(parity._atoms(data["structures"][name]), mlip).atoms.get_forces()
        assert np.max(np.linalg.norm(f, axis=1)) < 0.025
    labelled = [s for s in data["structures"].values() if "energy_eV" in s]
    assert labelled, "no DFT labels in the shipped dataset"
    for s in labelled:
        assert np.shape(s["forces_eV_A"]) == (len(s["symbols"]), 3) and s["dft_fmax_eV_A"] >= 0


def test_a_dataset_gains_the_reactions_it_lacks_from_its_stored_reactants(lj_engine):
    """extend_dataset adds reactions that halex defines but the file lacks: products built from
    the stored reactant, relaxed by the dataset's own geometry engine (any other is refused),
    left unlabelled; a second call adds nothing."""
    from halex.errors import InputError

    data = _unrelaxed_dataset(lj_engine)
    new = ["CsPbCl3-222-I4-AX-plane", "CsPbCl3-222-I8-BX2-plane", "Pb4S3Cl2-I3-cluster"]
    data["reactions"] = [r for r in data["reactions"] if r["product"] not in new]
    for n in new:
        del data["structures"][n]
    other = dict(data, geometry_engine={**data["geometry_engine"], "settings": {"epsilon": 1.0}})
    with pytest.raises(InputError, match="extend it with that --engine"):
        parity.extend_dataset(other, lj_engine)
    assert parity.extend_dataset(data, lj_engine, fmax=0.5) == new
    parity.check_dataset_engine(data, lj_engine)  # each product is its reactant with x Cl→I
    x = {r["product"]: r["x"] for r in data["reactions"]}
    assert [x[n] for n in new] == [4, 8, 3]
    # the AX-plane I share one (001) plane with a Cs; the BX2-plane I with a Pb
    for name, cation in (("CsPbCl3-222-I4-AX-plane", "Cs"), ("CsPbCl3-222-I8-BX2-plane", "Pb")):
        a = parity._atoms(data["structures"][name])
        z = a.positions[a.symbols == "I", 2]
        assert np.ptp(z) < 0.5 and np.min(np.abs(a.positions[a.symbols == cation, 2] - z[0])) < 0.5
    assert all("energy_eV" not in data["structures"][n] for n in new)
    assert parity.extend_dataset(data, lj_engine) == []


def test_labelling_writes_each_result_as_it_goes_and_a_rerun_computes_nothing(tmp_path, lj_engine, monkeypatch):
    """label_dataset stores every label in the file at once (an interrupted run keeps them) and skips them on a rerun."""
    import halex.relax

    data = _unrelaxed_dataset(lj_engine)
    keep = {n: data["structures"][n] for n in ("PbCl2", "PbI2", "PbClI", "Cs4PbCl6", "Cs4PbCl5I")}
    data["structures"] = keep
    data["reactions"] = [r for r in data["reactions"] if r["product"] in keep]
    path = tmp_path / "d.json"
    real, calls = halex.relax.single_point, []

    def stop_after_three(atoms, engine, **kw):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(len(atoms))
        return real(atoms, engine, **kw)

    monkeypatch.setattr(halex.relax, "single_point", stop_after_three)
    with pytest.raises(KeyboardInterrupt):
        parity.label_dataset(data, lj_engine, path)
    on_disk = parity.read_dataset(path)
    assert sum("energy_eV" in s for s in on_disk["structures"].values()) == 3 and calls == [3, 3, 3]  # smallest first
    calls.clear()
    monkeypatch.setattr(halex.relax, "single_point", real)
    done = parity.label_dataset(on_disk, lj_engine, path)
    assert all("energy_eV" in s for s in done["structures"].values())
    rows = parity.parity_table(parity.read_dataset(path), lj_engine)
    assert all(r["error_kcal_mol"] == pytest.approx(0.0, abs=1e-9) for r in rows)
