"""Phase library: every shipped phase loads with its space group and sensible bonds;
computed phases are checked against experiment; the search and tilt generator are real."""

import numpy as np
import pytest

from conftest import run_cli
from halex.errors import FileFormatError, InputError
from halex.phases import PHASES, load_phase
from halex.search.candidates import coordination, space_group

# shortest Pb–X bond expected in each phase (Å): experiment ± engine bias
PB_X_RANGE = {"Cl": (2.7, 3.1), "I": (2.95, 3.35), "S": (2.8, 3.1)}
# in the chalcohalides Pb binds S first and the Pb–halide bonds are longer (Pb4S3Br2:
# shortest Pb–Br 3.08 Å in the published Pb4S3Br2 model, ~0.1 Å more than in PbBr2), so their halide range reaches 0.1 Å further
PB_X_RANGE_CHALCO = {"Cl": (2.7, 3.2), "I": (2.95, 3.45)}


@pytest.mark.parametrize("name", list(PHASES))
def test_phase_loads_with_space_group_and_bonds(name):
    atoms = load_phase(name)
    assert space_group(atoms) == PHASES[name].space_group
    sym = np.array(atoms.get_chemical_symbols())
    halide = "I" if "I" in sym else "Cl" if "Cl" in sym else "S"
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, 4.0)
    pbx = d[(sym[i] == "Pb") & (sym[j] == halide)]
    lo, hi = (PB_X_RANGE_CHALCO if "S" in sym and halide != "S" else PB_X_RANGE)[halide]
    assert lo < pbx.min() < hi, (name, pbx.min())
    assert d.min() > 2.5  # nothing overlaps


def test_computed_phases_against_experiment():
    # PbCl2 cotunnite (Sass et al. 1963): 7.6222, 4.5348, 9.0448 Å; PBE-like engine: within 3 %
    pbcl2 = load_phase("PbCl2")
    assert np.all(np.abs(pbcl2.cell.lengths() / np.array([7.6222, 4.5348, 9.0448]) - 1) < 0.03)
    # Pb in cotunnite: a tricapped trigonal prism, 7 short Pb-Cl bonds plus 2 long caps
    # (~3.7 Å in experiment, stretched a few % by the engine)
    assert set(coordination(pbcl2, "Pb", cutoff=3.3)) == {7}
    assert set(coordination(pbcl2, "Pb", cutoff=4.0)) == {9}
    # gamma-CsPbI3: Pnma, pseudo-cubic a = (V/4)^(1/3) within 3 % of the experimental 6.21 Å
    # (8.62 x 8.86 x 12.52 Å, Sutton et al., ACS Energy Lett. 3, 1787 (2018)), octahedra tilted
    gam = load_phase("CsPbI3-gamma")
    a_pc = (gam.get_volume() / 4) ** (1 / 3)
    assert abs(a_pc / 6.21 - 1) < 0.03
    from ase.neighborlist import neighbor_list

    i, j, d, D = neighbor_list("ijdD", gam, 3.6)
    sym = np.array(gam.get_chemical_symbols())
    # Pb-I-Pb angles: each I bridging two Pb
    angles = []
    for x in np.flatnonzero(sym == "I"):
        vecs = D[(i == x) & (sym[j] == "Pb")]
        if len(vecs) == 2:
            c = vecs[0] @ vecs[1] / np.linalg.norm(vecs[0]) / np.linalg.norm(vecs[1])
            angles.append(np.degrees(np.arccos(np.clip(c, -1, 1))))
    assert len(angles) == 12 and max(angles) < 172  # a-a-c+ tilts survive the relaxation
    # 2H-PbI2: in-plane a within 3 % of 4.558 Å (c is not checked: PBE misses the interlayer dispersion)
    assert abs(load_phase("PbI2").cell.lengths()[0] / 4.558 - 1) < 0.03


def test_tilt_generator_gives_glazer_space_groups():
    from halex.search.generate import gamma_cspbi3_start

    g = gamma_cspbi3_start()
    assert space_group(g) == "Pnma (62)" and len(g) == 20


def test_random_candidates_reproducible_and_constrained():
    from halex.search.candidates import random_candidates

    kw = dict(spacegroup=62, cell=(7.6222, 4.5348, 9.0448), count=3, seed=5, sites=[["4c"], ["4c", "4c"]])
    a = random_candidates({"Pb": 4, "Cl": 8}, **kw)
    b = random_candidates({"Pb": 4, "Cl": 8}, **kw)
    assert len(a) == 3
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.positions, y.positions)
        assert space_group(x, 1e-3).startswith("Pnma") and x.get_chemical_formula() == "Cl8Pb4"
        assert np.allclose(x.get_scaled_positions()[:, 1] % 0.5, 0.25)  # all atoms on 4c mirror planes (y = 1/4, 3/4)


@pytest.mark.slow
def test_search_finds_cotunnite_from_random_candidates(mlip, store):
    """The search machinery on a known answer: PbCl2 from random Pnma 4c candidates."""
    from halex.search.candidates import random_candidates, search_structures

    cands = random_candidates({"Pb": 4, "Cl": 8}, spacegroup=62, cell=(7.6222, 4.5348, 9.0448), count=6, seed=10,
                              sites=[["4c"], ["4c", "4c"]])
    ranked = search_structures([(f"r{k}", c) for k, c in enumerate(cands)], mlip, store=store, refine=1, min_coordination=7)
    best = ranked[0]
    assert best.stage == "refine" and best.space_group == "Pnma (62)"
    assert np.all(np.abs(np.array(best.cell) / np.array([7.6222, 4.5348, 9.0448]) - 1) < 0.03)
    assert best.energy_per_atom <= min(c.energy_per_atom for c in ranked)


def test_load_errors(tmp_path):
    with pytest.raises(InputError, match="unknown phase"):
        load_phase("CsPbBr3-orthorhombic")
    with pytest.raises(FileFormatError, match="does not exist"):
        load_phase(str(tmp_path / "mine.cif"))


def test_phases_list_cli():
    r = run_cli("phases", "list")
    assert r.returncode == 0, r.stderr
    for name in PHASES:
        assert name in r.stdout
    assert "COD 4335639" in r.stdout
    rows = [line for line in r.stdout.splitlines()[1:] if line.strip()]
    columns = {line.index(" " + line.split()[1] + " ") for line in rows}  # where each row's formula starts
    assert len(columns) == 1, "the formula column starts at the same place on every row"


def test_build_offers_every_shipped_chalcohalide():
    from halex.cli.build_cmd import CHALCOHALIDE_PHASES

    assert CHALCOHALIDE_PHASES == [n for n in PHASES if n.startswith("Pb4S3")]


def test_phases_generate_cli_takes_the_shared_engine_and_store_options(tmp_path):
    """phases generate relaxes through the store of --db (a rerun relaxes nothing) and refuses a
    launch profile larger than the machine, like every command with engine options."""
    out, db = tmp_path / "d", tmp_path / "g.db"
    args = ("phases", "generate", "--out", str(out), "--only", "CsPbCl3", "PbS", "CsPbI3-gamma", "--db", str(db))
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert load_phase(str(out / "CsPbCl3_cubic.cif")).cell.lengths() == pytest.approx([5.605] * 3, abs=1e-4)
    assert load_phase(str(out / "PbS_rocksalt.cif")).cell.lengths() == pytest.approx([5.936] * 3, abs=1e-4)
    assert "CsPbI3-gamma" in r.stdout and "Pnma (62)" in r.stdout and "cache hit" not in r.stderr
    again = run_cli(*args)
    assert again.returncode == 0 and "cache hit" in again.stderr and "FIRE step" not in again.stderr
    bad = run_cli("phases", "generate", "--out", str(tmp_path / "d2"), "--only", "PbS", "--mpi-ranks", "99")
    assert bad.returncode == 2 and "is more than the" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "d2").exists()


def test_decomposition_energy_bookkeeping():
    from ase import Atoms

    from halex.errors import InputError
    from halex.search.stability import decomposition_energy

    pbs, pbcl2 = load_phase("PbS"), load_phase("PbCl2")  # Pb4S4 and Pb4Cl8 cells
    refs = {"PbS": (pbs, -40.0), "PbCl2": (pbcl2, -50.0)}
    # Pb16S12Cl8 = 3 PbS cells + 1 PbCl2 cell: 36 atoms, placed 0.9 eV below the tie line
    target = Atoms("Pb16S12Cl8")
    de, coeff = decomposition_energy(3 * -40.0 + -50.0 - 0.9, target, refs)
    assert de == pytest.approx(-0.9 / 36, abs=1e-12)
    assert coeff == pytest.approx({"PbS": 3.0, "PbCl2": 1.0})
    de0, _ = decomposition_energy(2 * -40.0, pbs.repeat((2, 1, 1)), refs)
    assert de0 == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(InputError, match="combination"):
        decomposition_energy(-1.0, Atoms("CsCl"), refs)


@pytest.mark.slow
def test_relaxed_references(mlip, store):
    from halex.search.stability import relaxed_reference

    pbs, e = relaxed_reference("PbS", mlip, store=store)
    # galena a = 5.936 Å; PBE-like engine within 3 %
    assert abs(pbs.cell.lengths()[0] / 5.936 - 1) < 0.03 and space_group(pbs) == "Fm-3m (225)"
    assert e < 0


@pytest.mark.slow
def test_phases_search_cli_seeds_only(tmp_path):
    """halex phases search end to end with the two substitution seeds (no random candidates), with
    the validated protocol's engine and dispersion (the shared --engine/--set options)."""
    pytest.importorskip("dftd3")
    import json

    out = tmp_path / "pb4s3cl2.json"
    r = run_cli("phases", "search", "Pb4S3Cl2", "--random", "0", "--refine", "1", "--engine", "mlip-tuned",
                "--set", "dispersion=d3bj", "--db", str(tmp_path / "s.db"), "-o", str(out))
    assert r.returncode == 0, r.stderr
    ranking = json.loads(out.read_text())["ranking"]
    assert len(ranking) == 2 and ranking[0]["stage"] == "refine" and ranking[0]["space_group"] == "Pnma (62)"
    best = load_phase(str(out.with_suffix(".cif")))
    from collections import Counter

    assert Counter(best.get_chemical_symbols()) == {"Pb": 16, "S": 12, "Cl": 8}
    header = out.with_suffix(".cif").read_text()
    assert "# status: structure search result; trust it only as far as" in header  # the validation it needs
    assert "# engine: mlip-tuned" in header and "D3(BJ)" in header  # --engine and --set reach the record
    bad = run_cli("phases", "search", "Pb4S3Cl2", "--refine", "0", "-o", str(tmp_path / "x.json"))
    assert bad.returncode == 2 and "--refine" in bad.stderr


def test_chalcohalides_carry_their_record_and_status():
    """Each search result ships with how it was made; only the protocol that failed its check is provisional."""
    from pathlib import Path

    import halex.phases

    expected = {  # name: (provisional, status line, engine line)
        "Pb4S3Cl2": (False, "# status: structure search result", "# engine: mlip-tuned chgnet"),
        "Pb4S3Cl2-provisional": (True, "# status: PROVISIONAL", "# engine: mlip chgnet"),
        "Pb4S3I2": (False, "# status: validation", "# engine: mlip-tuned chgnet"),
    }
    for name, (provisional, status, engine) in expected.items():
        atoms = load_phase(name)
        assert PHASES[name].provisional == provisional and ("provisional" in atoms.info) == provisional
        counts = atoms.symbols.formula.count()
        assert counts["Pb"] == 16 and counts["S"] == 12 and counts["I" if "I2" in name else "Cl"] == 8
        header = (Path(halex.phases.__file__).parent / "data" / PHASES[name].file).read_text()
        for needle in (status, engine, "# settings: random=24 seed=1 refine=4", "# energy_above_PbS+PbX2_eV_per_atom", "#   #1:"):
            assert needle in header, (name, needle)
        assert ("D3(BJ)" in header) == (engine != "# engine: mlip chgnet"), name


@pytest.mark.slow
def test_pb4s3i2_validation_against_published_cell(store):
    """The search method on the compound whose cell is published (Pnma, 8.1293, 15.5613, 8.1820 Å).

    Reruns the seed stage of ``halex phases search Pb4S3I2 --engine mlip-tuned --set
    dispersion=d3bj`` (both substitution seeds, fixed-cell screen + free-cell refine) and
    checks (1) it lands on the shipped Pb4S3I2 CIF and (2) the 3 % per axis target
    against the published cell. The shipped file is the full search's best (a random
    PyXtal start, +1.3 / −1.2 / −0.4 %); the seed stage's best, the scaled seed, is the
    same framework 0.003 meV/atom away, 0.25 % from it per axis, so (1) allows 0.5 %.
    The unscaled seed ends 0.07 meV/atom higher at b −3.2 %: the b axis is soft, which
    is why (2) is asserted on the ranked best and the runner-up is reported in the docs.
    Without dispersion the same search gives +8.3 / −1.3 / +3.8 % (docs/phases.md).
    """
    pytest.importorskip("dftd3")
    from halex.engines import get_engine
    from halex.search.generate import PB4S3I2_CELL, chalcohalide_search

    engine = get_engine("mlip-tuned", dispersion="d3bj")
    ranked = chalcohalide_search("I", engine=engine, store=store, n_random=0, refine=2)
    best = ranked[0]
    assert best.space_group == "Pnma (62)" and best.stage == "refine"
    shipped = load_phase("Pb4S3I2").cell.lengths()
    assert np.allclose(best.cell, shipped, rtol=5e-3)
    dev = np.array(best.cell) / np.array(PB4S3I2_CELL) - 1
    assert np.abs(dev).max() < 0.03
    assert abs(np.prod(best.cell) / np.prod(PB4S3I2_CELL) - 1) < 0.03
    assert coordination(best.atoms, "Pb", cutoff=3.6).min() >= 5


def test_shipped_pb4s3i2_meets_the_published_cell():
    """The shipped validation result, against Solid State Sci. 91, 49 (2019): within 3 % per axis."""
    from halex.search.generate import PB4S3I2_CELL

    dev = load_phase("Pb4S3I2").cell.lengths() / np.array(PB4S3I2_CELL) - 1
    assert np.abs(dev).max() < 0.03, dev
