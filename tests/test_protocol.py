"""The engine protocol, the store's get-or-compute sequence, the checkpoint observer and the
deprecated ``halex.build`` alias."""

import subprocess
import sys

import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from halex.errors import EngineUnavailableError, InputError
from halex.models import perovskite_nanocrystal
from halex.relax import CheckpointObserver, relax
from halex.store import ResultStore, StoreEntry, result_key


def test_build_alias_warns_and_forwards():
    code = ("import warnings; warnings.simplefilter('error')\n"
            "try:\n    import halex.build\nexcept DeprecationWarning as w:\n    print('warned:', w)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "warned: halex.build is deprecated: import halex.models instead" in r.stdout, r.stderr
    with pytest.warns(DeprecationWarning):
        sys.modules.pop("halex.build", None)
        import halex.build
        import halex.build.exchange
    import halex.models

    assert halex.build.exchange is halex.models.exchange
    assert halex.build.heterostructure is halex.models.heterostructure  # the builder function
    assert sys.modules["halex.build.nanocrystal"] is sys.modules["halex.models.nanocrystal"]


def test_engines_declare_capabilities(mlip):
    assert "orbitals" not in mlip.capabilities
    with pytest.raises(EngineUnavailableError, match="no electrons"):
        mlip.require("orbitals")
    with pytest.raises(EngineUnavailableError, match="no electrons"):
        mlip.orbitals(perovskite_nanocrystal((1, 1, 1)), {"all": list(range(11))})
    with pytest.raises(InputError, match="unknown capability"):
        mlip.require("telepathy")
    mlip.require("forces")  # nothing raised
    # CP2K declares orbitals (the class attribute: no CP2K program is needed to read it)
    from halex.engines.cp2k import Cp2kEngine

    assert "orbitals" in Cp2kEngine.capabilities


def _entry(energy: float) -> StoreEntry:
    from ase import Atoms

    atoms = Atoms("Cs", positions=[[0, 0, 0]])
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=np.zeros((1, 3)))
    return StoreEntry(atoms, {"task": "energy", "converged": energy < 0}, {"note": "test"}, result=energy)


def test_get_or_compute_hits_misses_and_replaces(tmp_path):
    store = ResultStore(tmp_path / "s.db")
    calls = []

    def compute(previous):
        calls.append(previous)
        return _entry(+1.0 if len(calls) == 1 else -1.0)

    first = store.get_or_compute("k1", compute)
    assert not first.cached and first.entry.result == 1.0 and calls == [None]
    hit = store.get_or_compute("k1", compute)
    assert hit.cached and hit.row_id == first.row_id and len(calls) == 1
    # a finished row that `accept` rejects is passed to compute and replaced in place
    again = store.get_or_compute("k1", compute, accept=lambda row: row.get("converged"))
    assert not again.cached and calls[1].id == first.row_id and again.row_id == first.row_id
    assert store.count(hkey="k1") == 1 and store.find("k1").energy == pytest.approx(-1.0)
    # checkpoint rows of the key are removed once the result is stored
    store.write(_entry(0.5).atoms, key="k2", status="running", kvp={"step": 3}, data={})
    store.get_or_compute("k2", lambda previous: _entry(-2.0))
    assert store.count(hkey="k2", status="running") == 0 and store.count(hkey="k2", status="done") == 1


def test_get_or_compute_keeps_a_result_another_process_stored_first(tmp_path):
    store = ResultStore(tmp_path / "s.db")
    other = ResultStore(tmp_path / "s.db")

    def compute(previous):  # while this computes, another process stores the same key
        other.write(_entry(-5.0).atoms, key="k", status="done", kvp={"converged": True}, data={})
        return _entry(-3.0)

    look = store.get_or_compute("k", compute)
    assert store.count(hkey="k") == 1 and store.get_row(look.row_id).energy == pytest.approx(-5.0)


@pytest.fixture(scope="module")
def rattled():
    nc = perovskite_nanocrystal((2, 2, 2))
    nc.rattle(stdev=0.06, seed=3)
    return nc


def test_checkpoint_observer_writes_at_its_own_interval(mlip, rattled, tmp_path, monkeypatch):
    store = ResultStore(tmp_path / "c.db")
    steps = []
    real = CheckpointObserver.__call__

    def spy(self):
        before = self.row_id
        real(self)
        if self.row_id is not None and (before is None or self.opt.nsteps):
            steps.append(self.store.get_row(self.row_id).get("step"))

    monkeypatch.setattr(CheckpointObserver, "__call__", spy)
    r = relax(rattled, mlip, store=store, steps=10, checkpoint_interval=4)
    assert not r.converged and r.nsteps == 10
    assert steps == [4, 8]
    assert store.count(status="running") == 0  # checkpoints go once the result is stored


class _Crash(Exception):
    pass


@pytest.mark.parametrize("optimizer", ["FIRE", "FIRE2", "BFGS", "LBFGS"])
def test_resume_from_a_checkpoint_follows_the_uninterrupted_path(mlip, rattled, tmp_path, optimizer):
    """A run that dies after step 12 resumes from its checkpoint (ASE's restart record of the
    optimizer) and ends exactly where an uninterrupted run ends."""
    ref = relax(rattled, mlip, optimizer=optimizer, store=ResultStore(tmp_path / "ref.db"), steps=60)

    def die(step, atoms, energy, fmax):
        if step == 12:
            raise _Crash

    store = ResultStore(tmp_path / "run.db")
    with pytest.raises(_Crash):
        relax(rattled, mlip, optimizer=optimizer, store=store, steps=60, observers=[die])
    assert store.count(status="running") == 1
    res = relax(rattled, mlip, optimizer=optimizer, store=store, steps=60)
    assert res.resumed_from == 11  # the checkpoint of step 11: step 12's observer raised before it
    assert res.nsteps == ref.nsteps and res.converged == ref.converged
    assert res.energy == pytest.approx(ref.energy, abs=1e-6)
    np.testing.assert_allclose(res.atoms.positions, ref.atoms.positions, atol=1e-5)


def test_result_key_ignores_labels_not_geometry():
    nc = perovskite_nanocrystal((1, 1, 1))
    key = result_key(nc, {"name": "x"}, {"kind": "energy"})
    relabelled = nc.copy()
    relabelled.arrays["layer"][:] = 7
    assert result_key(relabelled, {"name": "x"}, {"kind": "energy"}) == key
    moved = nc.copy()
    moved.positions[0, 0] += 1e-3
    assert result_key(moved, {"name": "x"}, {"kind": "energy"}) != key


def test_no_engine_name_outside_the_engines_package():
    """Studies, workflows and analyses are written once for any engine: outside
    ``halex.engines`` (and the command line's option defaults) no code compares or
    passes an engine by its registered name; they use ``DEFAULT_ENGINE`` and capabilities."""
    import ast
    from pathlib import Path

    from halex.engines import list_engines

    names = set(list_engines())
    root = Path(__file__).resolve().parent.parent / "src" / "halex"
    found = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(("engines/", "cli/")):
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in names and id(node) not in docstrings:
                found.append(f"{rel}:{node.lineno} {node.value!r}")
    assert not found, found
