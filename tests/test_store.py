import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from halex.errors import StoreError
from halex.models import perovskite_nanocrystal
from halex.relax import relax, single_point
from halex.store import ResultStore, result_key


def test_key_depends_on_structure_engine_and_task():
    a = perovskite_nanocrystal((1, 1, 1))
    eng = {"name": "mlip", "version": "1", "settings": {"model": "0.3.0"}}
    k = result_key(a, eng, {"kind": "energy"})
    assert k == result_key(a.copy(), eng, {"kind": "energy"})
    b = a.copy()
    b.positions[0, 0] += 1e-4
    assert result_key(b, eng, {"kind": "energy"}) != k
    assert result_key(a, {**eng, "settings": {"model": "0.2.0"}}, {"kind": "energy"}) != k
    assert result_key(a, eng, {"kind": "relax"}) != k
    c = a.copy()
    c.arrays["layer"][:] = 9  # labels do not change energies, so not the key
    assert result_key(c, eng, {"kind": "energy"}) == k


def test_cache_hit_costs_nothing(mlip, store, monkeypatch):
    nc = perovskite_nanocrystal((2, 2, 2))
    r1 = single_point(nc, mlip, store=store)
    assert not r1.cached
    n_rows = store.count()

    def _no_calculator(*args, **kwargs):
        raise AssertionError("a cache hit must not build a calculator")

    monkeypatch.setattr(mlip, "calculator", _no_calculator)
    r2 = single_point(nc, mlip, store=store)
    assert r2.cached and r2.row_id == r1.row_id
    assert r2.energy == r1.energy
    np.testing.assert_array_equal(r2.atoms.get_forces(), r1.atoms.get_forces())
    assert store.count() == n_rows


def test_arrays_and_info_survive_the_store(mlip, store):
    nc = perovskite_nanocrystal((2, 2, 2))
    r = relax(nc, mlip, store=store, steps=3)
    back = store.to_atoms(store.get_row(r.row_id))
    for name in ("domain", "layer", "role"):
        assert np.array_equal(back.arrays[name], nc.arrays[name]), name
    assert back.arrays["role"].dtype.kind == "U"
    assert back.info["size"] == "2x2x2"
    assert back.get_potential_energy() == pytest.approx(r.energy)


def test_bad_store_paths(tmp_path):
    with pytest.raises(StoreError, match=".db"):
        ResultStore(tmp_path / "results.txt")
    bogus = tmp_path / "bogus.db"
    bogus.write_text("not sqlite at all, definitely")
    with pytest.raises(StoreError, match="not an SQLite"):
        ResultStore(bogus)
    st = ResultStore(tmp_path / "ok.db")
    with pytest.raises(StoreError, match="no row with id 42"):
        st.get_row(42)


def test_two_concurrent_writers_do_not_corrupt(tmp_path):
    db = tmp_path / "shared.db"
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator
        from halex.store import ResultStore
        st = ResultStore({str(db)!r})
        w = int(sys.argv[1])
        for i in range(40):
            a = Atoms("PbCl2", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.5, i * 0.01]])
            a.new_array("role", np.array(["Pb", "X", "X"]))
            a.calc = SinglePointCalculator(a, energy=-float(i), forces=np.zeros((3, 3)))
            with st.lock():
                st.write(a, key=f"w{{w}}-{{i}}", status="done", kvp={{"task": "energy", "writer": w}}, data={{}})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(w)]) for w in (1, 2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    st = ResultStore(db)
    assert st.count() == 80
    assert st.count(writer=1) == 40 and st.count(writer=2) == 40
    for w in (1, 2):
        for i in (0, 39):
            row = st.find(f"w{w}-{i}")
            assert row.energy == -float(i)
            assert list(st.to_atoms(row).arrays["role"]) == ["Pb", "X", "X"]
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_arrays_read_from_extxyz_survive_the_store(mlip, store, tmp_path):
    from halex.io import read_structure, write_structure

    path = write_structure(tmp_path / "nc.extxyz", perovskite_nanocrystal((1, 1, 1)))
    atoms = read_structure(path)
    r = single_point(atoms, mlip, store=store)
    back = store.to_atoms(store.get_row(r.row_id))
    assert list(back.arrays["role"]) == list(atoms.arrays["role"])
    assert list(back.arrays["layer"]) == list(atoms.arrays["layer"])


def test_postgresql_store_works_the_same_way(mlip, postgres_url, tmp_path):
    st = ResultStore(postgres_url, workdir=tmp_path / "runs")
    nc = perovskite_nanocrystal((1, 1, 1))
    r1 = relax(nc, mlip, store=st, steps=4)
    assert r1.nsteps == 4 and not r1.converged
    assert relax(nc, mlip, store=st, steps=4).cached
    back = st.to_atoms(st.get_row(r1.row_id))
    assert list(back.arrays["role"]) == list(nc.arrays["role"])
    assert np.array_equal(back.arrays["layer"], nc.arrays["layer"])
    r2 = relax(nc, mlip, store=st, steps=500)
    assert r2.resumed_from == 4 and r2.converged
    assert st.count(status="done") == 1 and st.count(status="running") == 0
    # the same code path as SQLite: a second process sees the row
    out = subprocess.run([sys.executable, "-m", "halex.cli.main", "db", "list", "--db", postgres_url],
                         capture_output=True, text=True, check=True).stdout
    assert "Cs4PbCl6" in out


@pytest.mark.timeout(60)
def test_stale_lock_file_of_a_killed_writer_does_not_block(tmp_path):
    """A process killed mid-write used to leave ASE's 'X.db.lock' behind and hang every rerun."""
    from ase.build import molecule

    from halex.store import ResultStore

    url = tmp_path / "r.db"
    ResultStore(url).write(molecule("H2O"), key="a", status="done", kvp={"task": "t"}, data={})
    (tmp_path / "r.db.lock").write_text("")  # what SIGKILL during a write leaves
    store = ResultStore(url)
    store.write(molecule("H2O"), key="b", status="done", kvp={"task": "t"}, data={})
    assert store.find("b") is not None


def test_a_finished_relaxation_keeps_the_row_id_of_its_checkpoint(tmp_path, mlip):
    """The first relaxation in a new store is row 1 while it runs and when it is done
    (``halex db show 1`` after the README's first relaxation)."""
    from halex.models import perovskite_nanocrystal
    from halex.relax import relax
    from halex.store import ResultStore

    store = ResultStore(tmp_path / "fresh.db")
    nc = perovskite_nanocrystal((2, 2, 2))
    nc.rattle(0.05, seed=1)
    r = relax(nc, mlip, store=store, fmax=0.1)
    assert r.nsteps > 1 and r.row_id == 1
    assert [row.id for row in store.rows()] == [1]


def test_study_plan_prices_steps_from_earlier_study_relaxations_in_the_store(tmp_path, monkeypatch):
    import ase.db
    from ase.build import molecule
    from ase.db import connect

    from halex.cli._common import TYPICAL_PATHWAY_STEPS, TYPICAL_STUDY_STEPS, relaxation_history, step_seconds_estimate, steps_estimate

    db = tmp_path / "s.db"

    def est(engine="mlip", n=3, kind="study"):
        return steps_estimate(relaxation_history(str(db), engine, kind=kind), n, kind=kind)

    assert est() == (TYPICAL_STUDY_STEPS, "typical") and not db.exists()
    with connect(db) as c:
        for k, steps in enumerate([40, 60, 80, 100, 120, 5000]):
            c.write(molecule("H2O"), task="relax", engine="mlip", status="done", converged=True, step=steps,
                    label=f"study m{k}" if k < 5 else "relax by hand")
        c.write(molecule("C6H6"), task="relax", engine="mlip", status="done", converged=True, step=7, label="study big")
        for k, steps in enumerate([300, 310, 320, 330, 340, 350]):  # pathway training relaxations price pathway plans only
            c.write(molecule("H2O"), task="relax", engine="mlip", status="done", converged=True, step=steps,
                    label=f"study pathway-{k:012x}")
    assert est() == (80, "median of 5 earlier study relaxations in the store")
    assert est("cp2k")[0] == TYPICAL_STUDY_STEPS
    assert est(kind="pathway") == (325, "median of 6 earlier pathway relaxations in the store")
    assert est("cp2k", kind="pathway") == (TYPICAL_PATHWAY_STEPS, "typical")
    assert est(n=12) == (TYPICAL_STUDY_STEPS, "typical")  # only the 12-atom row is within 0.5-2x of 12 atoms
    # seconds per step as measured: median of wall/step, scaled by atoms; None without 5 timed rows
    assert step_seconds_estimate(relaxation_history(str(db), "mlip"), 3) is None
    with connect(db) as c:
        for k, (steps, wall, mol) in enumerate([(10, 1.0, "H2O"), (10, 2.0, "H2O"), (20, 3.0, "H2O"), (10, 4.0, "NH3"),
                                                (5, 5.0, "H2O")]):
            c.write(molecule(mol), task="relax", engine="mlip", status="done", converged=True, step=steps, wall_s=wall,
                    label=f"study t{k}")
    # per step and scaled to 3 atoms: 0.1, 0.2, 0.15, 0.3, 1.0 s -> median 0.2 s
    assert step_seconds_estimate(relaxation_history(str(db), "mlip"), 3) == pytest.approx(0.2)
    assert step_seconds_estimate(relaxation_history(str(db), "mlip", kind="pathway"), 3) is None
    # one plan reads the store once: the history is read once and priced twice
    opened = []
    monkeypatch.setattr(ase.db, "connect", lambda *a, **k: opened.append(a) or connect(*a, **k))
    history = relaxation_history(str(db), "mlip")
    assert (steps_estimate(history, 3), step_seconds_estimate(history, 3)) == (est(), pytest.approx(0.2))
    assert len(opened) == 2  # this history, and the one est() read to compare


def test_the_same_relaxation_started_twice_at_once_is_computed_once(tmp_path, mlip):
    """Two study steps whose warm starts give the same structure used to relax it side by
    side in one run folder and overwrite each other's optimizer record (a JSONDecodeError
    in a batch-job study); the second now waits for the first and reads its result."""
    import threading

    from ase.io import read

    nc = perovskite_nanocrystal((2, 2, 2))
    nc.rattle(0.05, seed=3)
    url = tmp_path / "r.db"
    ready, results, errors = threading.Barrier(2), [None, None], []

    def run(i: int) -> None:
        ready.wait()
        try:
            results[i] = relax(nc, mlip, store=ResultStore(url), fmax=0.05)
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    computed = [r for r in results if not r.cached]
    assert len(computed) == 1 and computed[0].converged and computed[0].nsteps > 2
    assert results[0].row_id == results[1].row_id and results[0].energy == results[1].energy
    store = ResultStore(url)
    assert store.count(status="done") == 1 and store.count(status="running") == 0
    key = store.get_row(results[0].row_id).hkey
    assert len(read(store.run_dir(key) / "relax.traj", ":")) == computed[0].nsteps + 1


def test_many_openers_of_a_new_store_at_once_all_succeed(tmp_path):
    """ASE creates a new file's tables one statement at a time; an opener in between used to
    fail with "no such table: information"."""
    import threading

    for trial in range(6):
        url = tmp_path / f"new-{trial}.db"
        ready, errors = threading.Barrier(6), []

        def open_and_read() -> None:
            ready.wait()
            try:
                ResultStore(url).find("nothing")
            except Exception as exc:  # reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=open_and_read) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors[:1]
        assert ResultStore(url).count() == 0
