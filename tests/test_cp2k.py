"""CP2K engine: input template, parser on a stored real output, and real end-to-end runs."""

import json
import re

import numpy as np
import pytest
from ase import Atoms

from conftest import DATA, needs_cp2k, run_cli
from halex.engines.cp2k import Cp2kEngine, build_input, parse_cp2k_output
from halex.errors import EngineRunError, EngineUnavailableError, InputError, StructureError

HARTREE = 27.21138602  # eV, CODATA 2014 (ASE default units)
BOHR = 0.52917721067  # Å, CODATA 2014


def _pbcl2(vacuum=5.0):
    m = Atoms("PbCl2", positions=[[0, 0, 0], [2.45, 0, 0], [-0.6, 2.35, 0.1]])
    m.center(vacuum=vacuum)
    return m


def test_parser_on_stored_real_output():
    # tests/data/cp2k_pbcl2_energy_force.out: a real CP2K 2023.1 run (PBE, DZVP-MOLOPT-SR-GTH,
    # 200 Ry, wavelet) of a PbCl2 molecule; the numbers below are read off that file
    text = (DATA / "cp2k_pbcl2_energy_force.out").read_text()
    res = parse_cp2k_output(text, natoms=3)
    assert res["energy"] == pytest.approx(-33.583869237307795 * HARTREE, rel=1e-8)
    expected_au = np.array([
        [-0.00656802, -0.01451741, -0.00061773],
        [0.00827141, 0.00151797, 0.00007084],
        [-0.00170436, 0.01299380, 0.00054702],
    ])
    np.testing.assert_allclose(res["forces"], expected_au * HARTREE / BOHR, rtol=1e-8, atol=1e-12)
    with pytest.raises(EngineRunError, match="4 atoms"):
        parse_cp2k_output(text, natoms=4)


def test_parser_errors():
    text = (DATA / "cp2k_pbcl2_energy_force.out").read_text()
    truncated = text[: text.index("ENERGY| Total")]
    with pytest.raises(EngineRunError, match="did not finish"):
        parse_cp2k_output(truncated)
    with pytest.raises(EngineRunError, match="SCF did not converge"):
        parse_cp2k_output(text.replace("SCF run converged", "SCF run NOT converged"))


def test_input_has_reference_level_of_theory(tmp_path):
    text = build_input(_pbcl2(), Cp2kEngine.defaults, data_dir=tmp_path, restart=False)
    for needle in ("&XC_FUNCTIONAL PBE", "BASIS_SET DZVP-MOLOPT-SR-GTH", "POTENTIAL GTH-PBE",
                   "CUTOFF 400.0", "POISSON_SOLVER WAVELET", "PERIODIC NONE", "RUN_TYPE ENERGY_FORCE",
                   "SCF_GUESS ATOMIC", "CHARGE 0"):
        assert needle in text, needle
    abc = [line for line in text.splitlines() if line.strip().startswith("ABC")][0].split()[1:]
    assert len(set(abc)) == 1  # the wavelet solver needs a cubic box
    periodic = Atoms("CsPbCl3", scaled_positions=[[.5, .5, .5], [0, 0, 0], [.5, 0, 0], [0, .5, 0], [0, 0, .5]],
                     cell=[5.6] * 3, pbc=True)
    ptext = build_input(periodic, Cp2kEngine.defaults, data_dir=tmp_path, restart=True)
    assert "PERIODIC XYZ" in ptext and "SCF_GUESS RESTART" in ptext


def test_basis_family_names_resolve_to_the_valence_entry(tmp_path):
    # a basis family listed only with valence suffixes (as BASIS_MOLOPT_UZH is) gets the entry
    # whose -qN matches the element's potential; an exact name is written as given
    (tmp_path / "BASIS").write_text(
        "Pb TZVP-FAM-q4 TZVP-ALIAS-q4\n 1\n Pb TZVP-FAM-q14\n 1\nCl TZVP-FAM-q7\n 1\nCl EXACT\n 1\n")
    (tmp_path / "POT").write_text("Pb GTH-PBE-q4 GTH-PBE\n 2 2\nCl GTH-PBE-q7 GTH-PBE\n 2 5\n")
    settings = {**Cp2kEngine.defaults, "basis_file": "BASIS", "potential_file": "POT", "basis_set": "TZVP-FAM"}
    text = build_input(_pbcl2(), settings, data_dir=tmp_path, restart=False)
    assert "&KIND Pb\n      BASIS_SET TZVP-FAM-q4\n" in text and "&KIND Cl\n      BASIS_SET TZVP-FAM-q7\n" in text
    exact = build_input(_pbcl2(), {**settings, "basis_set": "EXACT"}, data_dir=tmp_path, restart=False)
    assert "&KIND Cl\n      BASIS_SET EXACT\n" in exact
    assert "&KIND Pb\n      BASIS_SET EXACT\n" in exact  # not in the file: as given, for CP2K to report


@needs_cp2k
def test_uzh_basis_family_entries_exist_for_every_element_of_the_chemistry():
    from halex.engines.cp2k import find_data_dir
    from halex.engines.cp2k.template import kind_basis

    settings = {**Cp2kEngine.defaults, "basis_set": "TZV2P-MOLOPT-PBE-GTH", "basis_file": "BASIS_MOLOPT_UZH"}
    names = {el: kind_basis(find_data_dir(), settings, el) for el in ("Cs", "Pb", "Cl", "I", "S")}
    assert names == {"Cs": "TZV2P-MOLOPT-PBE-GTH-q9", "Pb": "TZV2P-MOLOPT-PBE-GTH-q4", "Cl": "TZV2P-MOLOPT-PBE-GTH-q7",
                     "I": "TZV2P-MOLOPT-PBE-GTH-q7", "S": "TZV2P-MOLOPT-PBE-GTH-q6"}


def test_atoms_too_close_to_box_rejected(tmp_path):
    m = _pbcl2(vacuum=1.0)
    with pytest.raises(StructureError, match="box boundary"):
        build_input(m, {**Cp2kEngine.defaults, "box": "cell"}, data_dir=tmp_path, restart=False)
    with pytest.raises(InputError, match="box must be 'extent'"):
        Cp2kEngine(box="sphere")


def test_box_from_the_extent_ignores_the_models_vacuum():
    """The default box is the atoms' extent + 2 × vacuum, whatever vacuum the model's cell carries;
    the previous rule ('cell') takes the longest cell edge."""
    from halex.engines.cp2k.template import box_for

    for cell_vacuum in (1.0, 8.0, 15.0):
        m = _pbcl2(vacuum=cell_vacuum)
        extent = np.ptp(m.positions, axis=0).max()
        edge, pos = box_for(m, 5.0, "extent")
        assert edge[0] == np.ceil(extent + 10.0) and len(set(edge)) == 1
        np.testing.assert_allclose(pos.min(axis=0) + pos.max(axis=0), edge)  # centred
        if cell_vacuum > 2:
            assert box_for(m, 5.0, "cell")[0][0] == pytest.approx(m.cell.lengths().max())


def test_missing_executable(monkeypatch, tmp_path):
    monkeypatch.setenv("HALEX_CP2K_EXE", "/nonexistent/cp2k.psmp")
    with pytest.raises(EngineUnavailableError, match="not found"):
        Cp2kEngine().check(_pbcl2())
    model = tmp_path / "m.extxyz"
    _pbcl2().write(model)
    r = run_cli("relax", str(model), "--engine", "cp2k", "-o", str(tmp_path / "out.extxyz"), "--db", str(tmp_path / "r.db"),
                env={"HALEX_CP2K_EXE": "/nonexistent/cp2k.psmp"})
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out.extxyz").exists()


@needs_cp2k
def test_supported_elements_from_data_files():
    eng = Cp2kEngine()
    assert {"Cs", "Pb", "Cl", "I", "S"} <= eng.supported_elements
    assert eng.version.startswith("CP2K ")


@needs_cp2k
@pytest.mark.slow
@pytest.mark.cp2k
def test_real_cp2k_forces_match_finite_difference(tmp_path):
    """Real cp2k.psmp: analytic forces vs central differences of the energy (h = 2e-3 Å)."""
    eng = Cp2kEngine(cutoff_ry=200, rel_cutoff_ry=40, eps_scf=1e-7)
    m = _pbcl2()
    m.calc = eng.calculator(tmp_path / "run")
    energy = m.get_potential_energy()
    forces = m.get_forces()
    # PBE/DZVP PbCl2: ~ -33.58 Ha
    assert -34.0 * HARTREE < energy < -33.0 * HARTREE
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=2e-3)  # no net force on a free molecule
    h = 2e-3
    for i, k in [(1, 0), (2, 1)]:
        e = []
        for s in (1, -1):
            b = m.copy()
            b.positions[i, k] += s * h
            b.calc = eng.calculator(tmp_path / "run")  # same directory: wavefunction restart
            e.append(b.get_potential_energy())
        fd = -(e[0] - e[1]) / (2 * h)
        assert abs(fd - forces[i, k]) < 5e-3, (i, k, fd, forces[i, k])


@needs_cp2k
@pytest.mark.slow
@pytest.mark.cp2k
def test_cli_relax_with_cp2k(tmp_path):
    model = tmp_path / "pbcl2.extxyz"
    _pbcl2().write(model)
    db = tmp_path / "dft.db"
    args = ["relax", str(model), "--engine", "cp2k", "--set", "cutoff_ry=200", "--set", "rel_cutoff_ry=40",
            "--optimizer", "BFGS", "--steps", "2", "--db", str(db), "-o", str(tmp_path / "out.extxyz"), "--json"]
    r = run_cli(*args)
    assert r.returncode == 1, r.stderr  # 2 steps: stored but not yet converged
    res = json.loads(r.stdout)
    assert res["engine"] == "cp2k" and res["engine_version"].startswith("CP2K") and res["steps"] == 2
    assert "BFGS step     2" in r.stderr
    # a DFT run is never silent: what runs, then every SCF step as CP2K writes it
    assert re.search(r"CP2K: \d+ atoms, \d+ orbital functions, \d+ electrons; \d+ MPI rank", r.stderr), r.stderr[-2000:]
    assert len(re.findall(r"CP2K SCF step +\d+  E = -\d+\.\d+ Ha", r.stderr)) >= 5
    shown = json.loads(run_cli("db", "show", str(res["row_id"]), "--db", str(db)).stdout)
    assert shown["engine"]["settings"]["cutoff_ry"] == 200 and shown["engine"]["settings"]["xc"] == "PBE"
    assert shown["engine"]["settings"]["basis_set"] == "DZVP-MOLOPT-SR-GTH"
    again = json.loads(run_cli(*args).stdout)
    assert again["cached"] and again["energy_eV"] == res["energy_eV"]


def test_progress_watcher_reads_a_real_cp2k_output_as_it_grows(caplog):
    """The recorded CP2K 2023.1 run, fed in uneven chunks as a growing file would be: one start
    line with its atoms, orbital functions and electrons, and one line per SCF step (40 here)."""
    import logging

    from halex.engines.cp2k.profile import ProgressWatcher

    text = (DATA / "cp2k_pbcl2_energy_force.out").read_text()
    watcher = ProgressWatcher("2 MPI ranks")
    with caplog.at_level(logging.INFO, logger="halex.cp2k"):
        for i in range(0, len(text), 997):
            watcher.feed(text[i:i + 997])
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "CP2K: 3 atoms, 39 orbital functions, 18 electrons; 2 MPI ranks"
    scf = [m for m in lines if m.startswith("CP2K SCF step")]
    assert watcher.scf_steps == len(scf) == 40
    assert scf[0].startswith("CP2K SCF step   1  E = -32.49534779 Ha")
    assert lines[-1] == "CP2K SCF run converged in    40 steps"


def test_input_with_d3bj_dispersion(tmp_path):
    text = build_input(_pbcl2(), Cp2kEngine(dispersion="d3bj").settings, data_dir=tmp_path, restart=False)
    assert "TYPE DFTD3(BJ)" in text and "REFERENCE_FUNCTIONAL PBE" in text and "dftd3.dat" in text
    assert "VDW_POTENTIAL" not in build_input(_pbcl2(), Cp2kEngine().settings, data_dir=tmp_path, restart=False)
    assert "dispersion" not in Cp2kEngine().settings  # earlier results keep their store keys
    with pytest.raises(InputError, match="d3bj"):
        Cp2kEngine(dispersion="d4")


@needs_cp2k
@pytest.mark.slow
@pytest.mark.cp2k
def test_real_cp2k_d3bj_energy_equals_the_dftd3_package(tmp_path):
    """CP2K's own D3(BJ)-PBE and the simple-DFT-D3 package (what the ML engine adds) are two
    implementations of one formula: on PbCl2 they agree to 1e-8 Ha (measured: 1.5e-10 Ha)."""
    pytest.importorskip("dftd3")
    from dftd3.ase import DFTD3

    m = _pbcl2()
    m.calc = Cp2kEngine(cutoff_ry=200, rel_cutoff_ry=40, dispersion="d3bj").calculator(tmp_path / "run")
    m.get_potential_energy()
    text = "\n".join(p.read_text() for p in (tmp_path / "run").glob("*.out"))
    cp2k = float(re.findall(r"Dispersion energy:\s+(-?\d+\.\d+)", text)[-1])
    ref = m.copy()
    ref.calc = DFTD3(method="PBE", damping="d3bj")
    assert cp2k == pytest.approx(ref.get_potential_energy() / HARTREE, abs=1e-8)
