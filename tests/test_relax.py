import numpy as np
import pytest

from halex.errors import InputError
from halex.models import perovskite_nanocrystal
from halex.relax import relax


@pytest.fixture(scope="module")
def rattled():
    nc = perovskite_nanocrystal((2, 2, 2))
    nc.rattle(stdev=0.05, seed=1)
    return nc


def test_relax_reaches_fmax_and_keeps_input_unchanged(mlip, rattled, store):
    before = rattled.get_positions().copy()
    seen = []
    r = relax(rattled, mlip, store=store, observers=[lambda step, atoms, e, f: seen.append((step, e, f))])
    np.testing.assert_array_equal(rattled.get_positions(), before)
    assert r.converged and r.fmax < 0.0231
    # the reported fmax is the real max force of the stored structure
    f = r.atoms.get_forces()
    assert abs(np.sqrt((f**2).sum(1)).max() - r.fmax) < 1e-9
    assert seen[0][0] == 0 and seen[-1][0] == r.nsteps
    assert seen[-1][1] < seen[0][1]
    assert r.trajectory is not None and r.trajectory.is_file()
    from ase.io import read

    assert len(read(r.trajectory, ":")) == r.nsteps + 1
    for name in ("domain", "layer", "role"):
        assert np.array_equal(r.atoms.arrays[name], rattled.arrays[name])


def test_fixed_atoms_do_not_move(mlip, rattled):
    fixed = np.flatnonzero(rattled.arrays["layer"] == 0)
    r = relax(rattled, mlip, fix=fixed, steps=15)
    np.testing.assert_allclose(r.atoms.positions[fixed], rattled.positions[fixed], atol=0)
    free = np.setdiff1d(np.arange(len(rattled)), fixed)
    assert np.abs(r.atoms.positions[free] - rattled.positions[free]).max() > 1e-3


def test_step_limit_then_continue(mlip, rattled, store):
    r1 = relax(rattled, mlip, store=store, steps=5)
    assert r1.nsteps == 5 and not r1.converged
    again = relax(rattled, mlip, store=store, steps=5)
    assert again.cached and again.nsteps == 5
    r2 = relax(rattled, mlip, store=store, steps=1000)
    assert r2.resumed_from == 5 and r2.converged and r2.nsteps > 5
    assert store.count(status="done") == 1  # the unconverged row was replaced
    assert store.count(status="running") == 0


@pytest.mark.parametrize("optimizer", ["BFGS", "LBFGS"])
def test_other_optimizers(mlip, rattled, optimizer):
    r = relax(rattled, mlip, optimizer=optimizer, fmax=0.05, steps=300)
    assert r.converged and r.fmax < 0.05


def test_bad_arguments(mlip, rattled):
    with pytest.raises(InputError, match="optimizer"):
        relax(rattled, mlip, optimizer="Newton")
    with pytest.raises(InputError, match="fmax"):
        relax(rattled, mlip, fmax=-1)
    with pytest.raises(InputError, match="periodic"):
        relax(rattled, mlip, cell=True)
    with pytest.raises(InputError, match="indices"):
        relax(rattled, mlip, fix=[10_000])


def test_fresh_run_starts_a_new_trajectory(mlip, rattled, tmp_path):
    """A store deleted by the user (run folder left behind) must not mix old frames in."""
    from ase.io import read

    from halex.store import ResultStore

    db = tmp_path / "t.db"
    r1 = relax(rattled, mlip, store=ResultStore(db), steps=4)
    db.unlink()
    r2 = relax(rattled, mlip, store=ResultStore(db), steps=6)
    assert r2.trajectory == r1.trajectory and not r2.cached
    assert len(read(r2.trajectory, ":")) == r2.nsteps + 1 == 7
