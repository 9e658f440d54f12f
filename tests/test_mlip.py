"""The embedded default engine (CHGNet), checked against experiment and calculus."""

import numpy as np
import pytest
from ase import Atoms

from halex.errors import EngineNotFoundError, InputError, UnsupportedElementError
from halex.models import perovskite_nanocrystal
from halex.phases import CUBIC_PEROVSKITE_A, cubic_perovskite
from halex.relax import relax


@pytest.mark.parametrize("halide", ["Cl", "I"])
def test_cubic_lattice_constant_within_3_percent_of_experiment(mlip, halide):
    # experiment: CsPbCl3 5.605 Å (Møller 1959), alpha-CsPbI3 6.29 Å (Trots 2008);
    # a PBE-trained potential overestimates by ~2 %: tolerance 3 %
    start = cubic_perovskite(halide, a=CUBIC_PEROVSKITE_A[halide].value * 0.98)
    r = relax(start, mlip, cell=True, fmax=0.005, optimizer="BFGS")
    assert r.converged
    lengths = r.atoms.cell.lengths()
    assert np.ptp(lengths) < 1e-3  # stays cubic
    a_exp = CUBIC_PEROVSKITE_A[halide].value
    assert abs(lengths.mean() - a_exp) / a_exp < 0.03
    # Pb 1a, Cs 1b and X 3d are fixed by symmetry: the cell relaxes, the fractional positions do not
    np.testing.assert_allclose(r.atoms.get_scaled_positions(wrap=False), start.get_scaled_positions(wrap=False), atol=1e-4)


def test_forces_are_minus_energy_gradient(mlip):
    """Central finite differences (h = 5e-3 Å) vs analytic forces on a Cs4PbCl6 cluster."""
    nc = perovskite_nanocrystal((1, 1, 1), "Cl")
    nc.rattle(stdev=0.08, seed=7)
    nc.calc = mlip.calculator()
    forces = nc.get_forces()
    h = 5e-3
    rng = np.random.default_rng(3)
    for i, k in [(0, 0), (4, 2), *[(int(rng.integers(len(nc))), int(rng.integers(3))) for _ in range(4)]]:
        e = []
        for s in (1, -1):
            b = nc.copy()
            p = b.get_positions()
            p[i, k] += s * h
            b.set_positions(p)
            b.calc = mlip.calculator()
            e.append(b.get_potential_energy())
        fd = -(e[0] - e[1]) / (2 * h)
        assert abs(fd - forces[i, k]) < 1e-2, (i, k, fd, forces[i, k])


def test_registry_errors():
    from halex.engines import get_engine, list_engines

    assert {"mlip", "cp2k"} <= set(list_engines())
    with pytest.raises(EngineNotFoundError, match="unknown engine 'vasp'"):
        get_engine("vasp")
    with pytest.raises(InputError, match="unknown setting"):
        get_engine("mlip", cutoff=3)


def test_unsupported_element(mlip):
    a = Atoms("AmCl3", positions=[[0, 0, 0], [2.6, 0, 0], [0, 2.6, 0], [0, 0, 2.6]])
    with pytest.raises(UnsupportedElementError, match="Am"):
        mlip.check(a)
    assert {"Cs", "Pb", "Cl", "I", "S"} <= mlip.supported_elements


def test_describe_records_version_and_settings(mlip):
    d = mlip.describe()
    assert d["name"] == "mlip"
    assert d["version"].startswith("chgnet ") and "model 0.3.0" in d["version"]
    assert d["settings"] == {"model": "0.3.0", "device": "cpu"}


def test_symmetry_constrained_cell_relaxation_is_quiet_and_keeps_space_group(mlip):
    """FixSymmetry + cell filter (used for bulk phases): no warnings (they are errors here)."""
    import spglib

    a = cubic_perovskite("Cl", a=5.5)
    r = relax(a, mlip, cell=True, symmetry=True, fmax=0.01)
    assert r.converged
    b = r.atoms
    sg = spglib.get_spacegroup((b.cell[:], b.get_scaled_positions(), b.numbers), symprec=1e-3)
    assert sg == "Pm-3m (221)"
    # the symmetry constraint is part of the task: a different cache key
    assert relax(a, mlip, cell=True, fmax=0.01).key != r.key
    # and FixSymmetry really acts: with it, the constrained force is symmetrised
    from ase.constraints import FixSymmetry

    c = cubic_perovskite("Cl", a=5.6)
    c.set_constraint(FixSymmetry(c))
    f = np.zeros((len(c), 3))
    f[0] = [0.3, 0.0, 0.0]  # a force that breaks Pm-3m on Pb
    c.constraints[0].adjust_forces(c, f)
    assert np.abs(f).max() < 1e-12


def test_only_what_is_asked_is_computed(mlip):
    """Energy and forces without stress or magnetic moments (CHGNet's default computes all four),
    with the same numbers; stress when a cell relaxation asks for it."""
    from chgnet.model.dynamics import CHGNetCalculator

    nc = perovskite_nanocrystal((2, 2, 2))
    nc.rattle(0.05, seed=3)
    calc = mlip.calculator()
    nc.calc = calc
    e, f = nc.get_potential_energy(), nc.get_forces()
    assert "stress" not in calc.results and "magmoms" not in calc.results
    full = CHGNetCalculator(model=calc.model, on_isolated_atoms="ignore")
    ref = nc.copy()
    ref.calc = full
    assert e == pytest.approx(ref.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(f, ref.get_forces(), atol=1e-6)
    assert "magmoms" in full.results  # the default task does the extra work
    bulk = cubic_perovskite("Cl")
    bulk.calc = mlip.calculator()
    assert bulk.get_stress().shape == (6,)


@pytest.mark.parametrize("name", ["7net-0", "7net-mf-0"])
@pytest.mark.parametrize(("halide", "a_exp"), [("Cl", 5.605), ("I", 6.29)])
def test_sevennet_lattice_constants_are_pbe_like(name, halide, a_exp):
    """SevenNet-0 and SevenNet-MF-0 (PBE head), weights from the wheel: cubic CsPbX3 within 3 % of
    experiment (CsPbCl3 5.605 Å, α-CsPbI3 6.29 Å) and above it, as PBE is; measured +2.4 % / +1.7 %."""
    pytest.importorskip("sevenn")
    from halex.engines import get_engine
    from halex.phases import cubic_perovskite
    from halex.relax import relax

    engine = get_engine(name)
    assert engine.name == name and engine.version.startswith("sevenn") and {"Cs", "Pb", "Cl", "I", "S"} <= engine.supported_elements
    a = relax(cubic_perovskite(halide), engine, cell=True, fmax=0.005, optimizer="BFGS").atoms.cell.lengths().mean()
    assert 0 < (a - a_exp) / a_exp < 0.03, a


def test_sevennet_refuses_models_that_would_be_downloaded():
    from halex.engines import get_engine
    from halex.errors import InputError

    with pytest.raises(InputError, match="not shipped in the sevenn wheel"):
        get_engine("7net-0", model="7net-omni")


def test_d3bj_dispersion_has_the_argon_c6_and_shrinks_the_perovskite_lattice():
    """``dispersion="d3bj"`` adds Grimme's D3(BJ)-PBE: far apart, two Ar atoms attract as
    −C6/r⁶ with C6 = 64.3 Eh·a0⁶ (the dipole-oscillator-strength value, Kumar & Meath, Mol.
    Phys. 54, 823 (1985)), and the relaxed cubic CsPbCl3 cell moves towards experiment."""
    pytest.importorskip("dftd3")
    import warnings

    from ase.units import Bohr, Hartree

    from halex.engines import get_engine

    d3 = get_engine("mlip", dispersion="d3bj")
    plain = get_engine("mlip")
    assert "dispersion" not in plain.settings and d3.settings["dispersion"] == "d3bj"
    assert "D3(BJ)" in d3.describe()["version"]
    ar = Atoms("Ar2", positions=[(5, 5, 5), (35.0, 5, 5)], cell=[60, 20, 20])  # a box for CHGNet; not periodic
    with warnings.catch_warnings():  # pymatgen: "No Pauling electronegativity for Ar"
        warnings.simplefilter("ignore")
        ar.calc = d3.calculator()
        e_d3 = ar.get_potential_energy()
        ar.calc = plain.calculator()
        e_plain = ar.get_potential_energy()
    c6 = -(e_d3 - e_plain) / Hartree * (30.0 / Bohr) ** 6
    assert c6 == pytest.approx(64.3, rel=0.05)
    a = {name: relax(cubic_perovskite("Cl"), eng, cell=True, fmax=0.005, trajectory=False).atoms.cell.lengths()[0]
         for name, eng in (("plain", plain), ("d3", d3))}
    exp = CUBIC_PEROVSKITE_A["Cl"].value
    assert abs(a["d3"] - exp) < abs(a["plain"] - exp) - 0.05, a
    with pytest.raises(InputError, match="d3bj"):
        get_engine("mlip", dispersion="d4")
