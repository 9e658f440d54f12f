"""The command line as a user meets it: good runs, and one clear error for every bad input."""

import json

import numpy as np
import pytest
from ase import Atoms

from conftest import run_cli
from halex.io import write_structure
from halex.models import perovskite_nanocrystal


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    nc = perovskite_nanocrystal((2, 2, 2))
    nc.rattle(0.03, seed=4)
    return write_structure(d / "nc.extxyz", nc)


def _assert_clean_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert r.stderr.strip().splitlines()[-1].startswith("halex: error:")
    for n in needles:
        assert n in r.stderr, (n, r.stderr)


def _bad_inputs(tmp_path):
    overlap = Atoms("PbCl2", positions=[[0, 0, 0], [0.2, 0, 0], [0, 2.8, 0]])
    overlap.center(vacuum=6)
    nonfinite = tmp_path / "nan.extxyz"
    nonfinite.write_text('3\nProperties=species:S:1:pos:R:3 pbc="F F F"\nPb 0 0 0\nCl 2.8 0 0\nCl nan 2.8 0\n')
    alien = Atoms("AmCl3", positions=[[0, 0, 0], [2.7, 0, 0], [0, 2.7, 0], [0, 0, 2.7]])
    alien.center(vacuum=6)
    garbage = tmp_path / "garbage.extxyz"
    garbage.write_bytes(b"\x00\x01 not a structure \xff\n")
    return {
        "overlap": (write_structure(tmp_path / "overlap.extxyz", overlap), "overlapping"),
        "nonfinite": (nonfinite, "non-finite"),
        "alien": (write_structure(tmp_path / "alien.extxyz", alien), "Am"),
        "garbage": (garbage, "cannot read"),
        "missing": (tmp_path / "missing.extxyz", "does not exist"),
    }


@pytest.mark.parametrize("case", ["overlap", "nonfinite", "alien", "garbage", "missing"])
def test_bad_structures(tmp_path, case):
    path, needle = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out.extxyz"
    r = run_cli("relax", str(path), "-o", str(out), "--db", str(tmp_path / "r.db"))
    _assert_clean_error(r, needle)
    assert not out.exists()


@pytest.mark.parametrize("fmax", ["abc", "-1", "0", "nan", "inf"])
def test_invalid_fmax(tmp_path, small_model, fmax):
    out = tmp_path / "out.extxyz"
    r = run_cli("relax", str(small_model), "--fmax", fmax, "-o", str(out), "--db", str(tmp_path / "r.db"))
    _assert_clean_error(r, "fmax")
    assert not out.exists()


def test_other_bad_options(tmp_path, small_model):
    db = str(tmp_path / "r.db")
    _assert_clean_error(run_cli("relax", str(small_model), "--engine", "vasp", "--db", db), "unknown engine 'vasp'", "mlip")
    _assert_clean_error(run_cli("relax", str(small_model), "--steps", "many", "--db", db), "--steps")
    _assert_clean_error(run_cli("relax", str(small_model), "--optimizer", "Newton", "--db", db), "optimizer")
    _assert_clean_error(run_cli("relax", str(small_model), "--fix", "layer:x", "--db", db), "integers")
    _assert_clean_error(run_cli("relax", str(small_model), "--set", "cutoff=3", "--db", db), "unknown setting")
    _assert_clean_error(run_cli("relax", str(small_model), "--db", str(tmp_path / "r.txt")), ".db")
    _assert_clean_error(run_cli("db", "list", "--db", str(tmp_path / "none.db")), "no result store")
    _assert_clean_error(run_cli("build", "nanocrystal", "--size", "0", "2", "2", "-o", str(tmp_path / "x.extxyz")), "size")
    _assert_clean_error(run_cli("build", "nanocrystal", "--halide", "F", "-o", str(tmp_path / "x.extxyz")), "halide")
    assert not (tmp_path / "x.extxyz").exists()
    r = run_cli("relax")  # argparse usage error: still one line, exit 2, no traceback
    _assert_clean_error(r, "model")


def test_build_relax_db_round_trip(tmp_path):
    model = tmp_path / "nc.extxyz"
    r = run_cli("build", "nanocrystal", "--halide", "Cl", "--size", "2", "2", "2", "-o", str(model))
    assert r.returncode == 0 and "Cs20Pb8Cl36" in r.stdout
    db = tmp_path / "r.db"
    out = tmp_path / "relaxed.extxyz"
    r = run_cli("relax", str(model), "--fmax", "0.05", "--fix", "layer:0", "-o", str(out), "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["converged"] and res["fmax_eV_per_A"] < 0.05 and not res["cached"]
    assert "FIRE step     0" in r.stderr  # progress lines: step, energy, fmax
    from halex.io import read_structure

    start, relaxed = read_structure(model), read_structure(out)
    layer0 = start.arrays["layer"] == 0
    np.testing.assert_allclose(relaxed.positions[layer0], start.positions[layer0], atol=1e-9)
    assert np.array_equal(relaxed.arrays["role"], start.arrays["role"])

    listing = run_cli("db", "list", "--db", str(db))
    assert listing.returncode == 0
    lines = listing.stdout.strip().splitlines()
    assert len(lines) == 2 and "Cs20Pb8Cl36" in lines[1] and "mlip" in lines[1]
    shown = run_cli("db", "show", str(res["row_id"]), "--db", str(db), "-o", str(tmp_path / "exported.extxyz"))
    assert shown.returncode == 0
    info = json.loads(shown.stdout)
    assert info["engine"]["name"] == "mlip" and info["task"]["fixed"] == np.flatnonzero(layer0).tolist()
    assert info["per_atom_arrays"] == ["domain", "layer", "role"]
    exported = read_structure(tmp_path / "exported.extxyz")
    np.testing.assert_allclose(exported.positions, relaxed.positions, atol=1e-6)
    _assert_clean_error(run_cli("db", "show", "999", "--db", str(db)), "no row with id 999")

    again = json.loads(run_cli("relax", str(model), "--fmax", "0.05", "--fix", "layer:0", "--db", str(db), "--json").stdout)
    assert again["cached"] and again["row_id"] == res["row_id"]

    e1 = json.loads(run_cli("energy", str(out), "--db", str(db), "--json").stdout)
    assert not e1["cached"]
    # all atoms count in a single point's fmax, including the fixed layer 0
    assert e1["fmax_eV_per_A"] >= res["fmax_eV_per_A"]
    # the single point of the relaxed structure reproduces the relaxation's final energy
    assert e1["energy_eV"] == pytest.approx(res["energy_eV"], abs=1e-3)
    assert json.loads(run_cli("energy", str(out), "--db", str(db), "--json").stdout)["cached"]
    # without --json the same results are sentences with rounded numbers, no JSON
    plain = run_cli("energy", str(out), "--db", str(db)).stdout.strip()
    assert plain.startswith(f"{out}: E = ") and "from the store" in plain and "{" not in plain
    assert f"{e1['energy_eV']:.6f} eV" in plain and len(plain.split("E = ")[1].split(" eV")[0].split(".")[1]) == 6
    plain = run_cli("relax", str(model), "--fmax", "0.05", "--fix", "layer:0", "--db", str(db)).stdout
    assert "converged (from the store)" in plain and f"row {res['row_id']}" in plain and "{" not in plain


def test_engines_command():
    r = run_cli("engines", "--check")
    assert r.returncode == 0
    assert "mlip" in r.stdout and "ok: chgnet" in r.stdout


# every command that writes: its output path is refused while the command line is read,
# before any computation (a bad suffix, a folder that does not exist, a file where a folder goes)
_OUTPUT_CASES = [
    (["relax", "{model}"], "r.xyzz", "unknown output format 'xyzz'"),
    (["relax", "{model}"], "missing/x.extxyz", "does not exist"),
    (["build", "nanocrystal", "--size", "2", "2", "2"], "nc.xyzz", "unknown output format"),
    (["exchange", "{model}", "--layers", "1"], "missing/x.extxyz", "does not exist"),
    (["show", "{model}"], "picture.txt", ".png"),
    (["study", "layers", "--model", "{model}", "--max-layers", "1"], "{model}", "not a folder"),
    (["stem", "simulate", "{model}"], "image.jpg", ".tif"),
    (["xrd", "debye", "{model}"], "pattern.txt", ".csv"),
    (["ta", "fit", "{model}", "--global", "2"], "missing/out", "does not exist"),
    (["optics", "fit", "-"], "missing/out", "does not exist"),
    (["electronic", "{model}"], "missing/out", "does not exist"),
]


@pytest.mark.parametrize("args,output,needle", _OUTPUT_CASES, ids=[" ".join(c[0][:2]) + " " + c[1] for c in _OUTPUT_CASES])
def test_output_path_is_checked_before_computing(tmp_path, small_model, args, output, needle):
    args = [a.format(model=small_model) for a in args]
    out = output.format(model=small_model)
    out = out if out.startswith("/") else str(tmp_path / out)
    store = ["--db", str(tmp_path / "x.db")] if args[0] in ("relax", "study", "electronic") else []
    r = run_cli(*args, "-o", out, *store, cwd=tmp_path)
    _assert_clean_error(r, needle, "-o/--output")
    assert len(r.stderr.strip().splitlines()) == 1  # one line, no usage block
    assert not (tmp_path / "missing").exists() and not list(tmp_path.glob("x.db*"))


def test_help_lists_each_command_once_and_usage_errors_are_one_line():
    r = run_cli("--help")
    assert r.returncode == 0 and r.stdout.count("\n  relax ") + r.stdout.count("\n    relax ") == 1
    r = run_cli("study", "all", "--fmax", "abc", "-o", "out")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "halex: error: argument --fmax: invalid float value: 'abc' (see 'halex study all --help')"]


def test_db_list_says_how_many_rows_it_hides(tmp_path, small_model):
    """A relaxation stopped by its step limit mid-way leaves no running row; a checkpoint does."""
    from halex.io import read_structure
    from halex.relax import relax
    from halex.store import ResultStore

    db = tmp_path / "r.db"
    store = ResultStore(db)
    atoms = read_structure(small_model)

    class Stop(Exception):
        pass

    def stop(step, *_):
        if step == 3:
            raise Stop

    with pytest.raises(Stop):
        relax(atoms, store=store, observers=[stop])
    r = run_cli("db", "list", "--db", str(db))
    assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 1  # the header only
    assert "1 unfinished row hidden" in r.stderr and "--all" in r.stderr
    r = run_cli("db", "list", "--db", str(db), "--all")
    assert "running" in r.stdout and "hidden" not in r.stderr


def test_a_plan_comes_before_the_work(tmp_path, small_model):
    r = run_cli("relax", str(small_model), "--fmax", "0.5", "--db", str(tmp_path / "p.db"))
    assert r.returncode == 0, r.stderr
    first = r.stderr.strip().splitlines()[0]
    assert first.startswith("plan: relaxation of 64 atoms with mlip (64 atoms): ≈ ") and "peak memory ≈ 0.6 GB" in first


@pytest.mark.skipif(__import__("shutil").which("cp2k.psmp") is None, reason="cp2k.psmp not installed")
def test_a_heavy_dft_run_needs_yes_and_says_how_big_it_is(tmp_path):
    """CP2K on a 775-atom nanocube (the README's old example): refused before anything runs,
    with the estimate and the way out; nothing is computed, nothing written."""
    model = write_structure(tmp_path / "big.extxyz", perovskite_nanocrystal((5, 5, 5)))
    out = tmp_path / "r.extxyz"
    r = run_cli("relax", str(model), "--engine", "cp2k", "-o", str(out), "--db", str(tmp_path / "big.db"))
    _assert_clean_error(r, "heavy for this machine", "box 44.0 Å", "--yes", "cluster")
    assert not out.exists() and not (tmp_path / "big.db").exists()
    r = run_cli("electronic", str(model), "-o", str(tmp_path / "el"), "--db", str(tmp_path / "big.db"))
    _assert_clean_error(r, "orbital analysis of 775 atoms is heavy")


def test_a_signal_that_surfaces_as_another_error_still_ends_with_the_interrupt_line(monkeypatch, capsys):
    """A SIGTERM whose KeyboardInterrupt turns into another error while a library unwinds (as
    Dask's as_completed once raised "cannot release un-acquired lock") still gives the one
    interrupt line and exit 128 + 15, not a traceback."""
    import os
    import signal
    import time

    import halex.cli.phases_cmd
    from halex.cli.main import main

    def run(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        finally:
            raise RuntimeError("cannot release un-acquired lock")

    monkeypatch.setattr(halex.cli.phases_cmd, "run", run)
    assert main(["phases", "list"]) == 128 + signal.SIGTERM
    assert "terminated (SIGTERM)" in capsys.readouterr().err
