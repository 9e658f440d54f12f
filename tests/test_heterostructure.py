"""Heterostructure builder: epitaxy, neutrality, geometry, arrays, continuity, errors."""

import json

import numpy as np
import pytest
from scipy.spatial import cKDTree

from conftest import run_cli
from halex.errors import InputError, StructureError
from halex.models import (
    epitaxy_report,
    exchange_chalcohalide_layers,
    formal_charge,
    heterostructure,
    perovskite_nanocrystal,
)
from halex.phases import load_phase


@pytest.fixture(scope="module")
def hs():
    return heterostructure((3, 3, 2), 2)


def _sym(m):
    return np.array(m.get_chemical_symbols())


def _interface_continuity(m):
    """Longest bond (Å) from an interfacial CsX halide to a chalcohalide Pb, and the height (Å)
    of the first perovskite Pb plane above the top chalcohalide Pb."""
    sym, pos, dom, lay = _sym(m), m.positions, m.arrays["domain"], m.arrays["layer"]
    ch_pb = cKDTree(pos[(dom == "chalcohalide") & (sym == "Pb")])
    d0 = ch_pb.query(pos[(lay == 0) & np.isin(sym, ["Cl", "Br", "I"])])[0]
    gap = pos[(dom == "perovskite") & (sym == "Pb"), 2].min() - pos[(dom == "chalcohalide") & (sym == "Pb"), 2].max()
    return d0.max(), gap


@pytest.mark.parametrize("size, layers", [((1, 1, 1), 1), ((2, 3, 2), 1), ((3, 3, 3), 3), ((5, 4, 2), 2)])
def test_neutral_and_perovskite_stoichiometry(size, layers):
    m = heterostructure(size, layers)
    assert formal_charge(m) == 0
    dom = m.arrays["domain"]
    # the perovskite domain is exactly the standalone nanocrystal of that size
    nc = perovskite_nanocrystal(size)
    assert m[dom == "perovskite"].get_chemical_formula() == nc.get_chemical_formula()
    ch = m[dom == "chalcohalide"]
    assert formal_charge(ch) == 0 and set(ch.get_chemical_symbols()) == {"Pb", "S", "Cl"}
    assert sorted(set(m.arrays["layer"][dom == "chalcohalide"])) == list(range(-layers, 0))
    assert sorted(set(m.arrays["layer"][dom == "perovskite"])) == list(range(0, size[2] + 1))
    # no two atoms closer than 2.4 Å (shorter than any Pb–X or Pb–S bond)
    d = cKDTree(m.positions).query(m.positions, k=2)[0][:, 1]
    assert d.min() >= 2.4


def test_bond_lengths_and_interface_continuity(hs):
    sym, pos, dom, lay = _sym(hs), hs.positions, hs.arrays["domain"], hs.arrays["layer"]
    pb = cKDTree(pos[sym == "Pb"])
    d_s = pb.query(pos[sym == "S"])[0]
    d_cl = pb.query(pos[sym == "Cl"])[0]
    # every anion bonded to a Pb at a sensible distance (Pb-S 2.8-3.0 in PbS/Pb4S3Cl2, Pb-Cl 2.8-3.1)
    assert 2.5 <= d_s.min() and d_s.max() <= 3.3
    assert 2.6 <= d_cl.min() and d_cl.max() <= 3.5
    # continuity: every halide of the interfacial CsCl monolayer bonds to a chalcohalide Pb,
    # which sits where the next perovskite Pb plane would be (one cell below the first)
    longest, gap = _interface_continuity(hs)
    assert longest < 3.6
    assert gap == pytest.approx(hs.info["a"], abs=0.3)
    # chalcohalide layers are b/2 slabs below the interface, in order
    z_top = pos[dom == "chalcohalide", 2].max()
    period = max(load_phase("Pb4S3Cl2").cell.lengths())  # the stacking axis b of the shipped CIF
    for k in (1, 2):
        z = pos[lay == -k, 2]
        assert (z <= z_top - (k - 1) * period / 2 + 1e-6).all() and (z > z_top - k * period / 2 - 0.1).all()


def test_epitaxy_report_matches_the_cells(hs):
    r = epitaxy_report(hs)
    bulk = load_phase("Pb4S3Cl2")
    a_ch, b_ch, c_ch = bulk.cell.lengths()
    a = hs.info["a"]
    # 45° relation: perovskite √2 x √2 cell on the chalcohalide a x c face, stacking along b
    assert r["stacking_axis"] == "b" and abs(r["rotation_deg"]) % 90 == pytest.approx(45.0, abs=1e-6)
    spacing = sorted(r["chalcohalide_spacing_per_perovskite_cell_A"])
    assert spacing == pytest.approx(sorted([a_ch / np.sqrt(2), c_ch / np.sqrt(2)]), abs=1e-3)
    mism = sorted(r["mismatch_percent"])
    assert mism == pytest.approx(sorted([(a - a_ch / np.sqrt(2)) / a * 100, (a - c_ch / np.sqrt(2)) / a * 100]), abs=1e-2)
    assert abs(mism[0]) < 3 and r["coherent"]
    assert "provisional" not in hs.info  # the default phase passed its validation
    old = heterostructure((3, 3, 2), 2, chalcohalide="Pb4S3Cl2-provisional")
    assert "PROVISIONAL" in old.info["provisional"]  # models from the provisional phase say so


def test_coherent_chalcohalide_takes_the_perovskite_lattice(hs):
    """Coherent epitaxy: chalcohalide atoms repeat with the perovskite's √2a in-plane period."""
    sym, pos, dom = _sym(hs), hs.positions, hs.arrays["domain"]
    a = hs.info["a"]
    ch = pos[(dom == "chalcohalide") & (sym == "Pb")]
    tree = cKDTree(ch)
    shift = np.array([a, a, 0.0])  # the (110) perovskite vector is a chalcohalide lattice vector
    d, _ = tree.query(ch + shift)
    inside = (ch[:, 0] + a < ch[:, 0].max() - 1) & (ch[:, 1] + a < ch[:, 1].max() - 1)
    assert inside.sum() >= 4 and d[inside].max() < 1e-6
    inco = heterostructure((3, 3, 2), 2, coherent=False)
    assert not epitaxy_report(inco)["coherent"]


def test_deterministic_and_inputs_untouched():
    bulk = load_phase("Pb4S3Cl2")
    before = bulk.positions.copy()
    m1 = heterostructure((2, 2, 2), 1, chalcohalide=bulk)
    m2 = heterostructure((2, 2, 2), 1, chalcohalide=bulk)
    assert np.array_equal(bulk.positions, before)
    assert m1 == m2 and (m1.arrays["layer"] == m2.arrays["layer"]).all()


def test_lateral_footprint_and_user_cif(tmp_path):
    import ase.io

    wide = heterostructure((2, 2, 2), 1, lateral=(4, 4))
    narrow = heterostructure((2, 2, 2), 1)
    n_wide = (wide.arrays["domain"] == "chalcohalide").sum()
    n_narrow = (narrow.arrays["domain"] == "chalcohalide").sum()
    assert n_wide > 2.5 * n_narrow
    cif = tmp_path / "mine.cif"
    ase.io.write(cif, load_phase("Pb4S3Cl2"))
    mine = heterostructure((2, 2, 2), 1, chalcohalide=str(cif))
    assert np.allclose(mine.positions, narrow.positions, atol=1e-4)
    assert "provisional" not in mine.info  # a user's CIF is the user's responsibility


def test_round_trips_keep_arrays(hs, tmp_path):
    import ase.io

    from halex.store import ResultStore

    path = tmp_path / "hs.extxyz"
    ase.io.write(path, hs)
    back = ase.io.read(path)
    for name in ("domain", "layer", "role"):
        assert (back.arrays[name] == hs.arrays[name]).all()
    assert json.loads(back.info["epitaxy"]) == epitaxy_report(hs)
    store = ResultStore(tmp_path / "s.db")
    row_id = store.write(hs, key="k", status="done", kvp={"task": "test"}, data={})
    again = store.to_atoms(store.get_row(row_id))
    for name in ("domain", "layer", "role"):
        assert (again.arrays[name] == hs.arrays[name]).all()


def test_chalcohalide_exchange_on_a_real_model(hs):
    out = exchange_chalcohalide_layers(hs, 1, 0.5, seed=3)
    changed = np.flatnonzero(_sym(out) != _sym(hs))
    sites = np.flatnonzero((hs.arrays["domain"] == "chalcohalide") & (hs.arrays["layer"] == -1) & (_sym(hs) == "Cl"))
    assert set(changed) <= set(sites) and len(changed) == int(np.floor(0.5 * len(sites) + 0.5))  # halves round up (logged)
    assert (_sym(out)[changed] == "I").all()
    assert np.array_equal(out.positions, hs.positions)


def test_bad_input(tmp_path):
    with pytest.raises(InputError, match="positive integer"):
        heterostructure((2, 2, 2), 0)
    with pytest.raises(InputError, match="three positive integers"):
        heterostructure((2, 0, 2), 1)
    with pytest.raises(InputError, match="unknown halide"):
        heterostructure((2, 2, 2), 1, halide="F")
    with pytest.raises(InputError, match="more than"):
        heterostructure((60, 60, 60), 1)
    with pytest.raises(StructureError, match="Pb4S3X2"):
        heterostructure((2, 2, 2), 1, chalcohalide="PbCl2")
    tilted = load_phase("Pb4S3Cl2")
    tilted.set_cell(tilted.cell.cellpar()[:3].tolist() + [90, 95, 90], scale_atoms=True)
    with pytest.raises(StructureError, match="orthorhombic"):
        heterostructure((2, 2, 2), 1, chalcohalide=tilted)


def test_cli_build_heterostructure(tmp_path):
    out = tmp_path / "hs.extxyz"
    r = run_cli("build", "heterostructure", "--perovskite", "2", "2", "2", "--chalcohalide", "1", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "mismatch" in r.stdout and "PROVISIONAL" not in r.stdout
    import ase.io

    m = ase.io.read(out)
    assert formal_charge(m) == 0 and "chalcohalide" in set(m.arrays["domain"])
    assert epitaxy_report(m)["chalcohalide_phase"] == "Pb4S3Cl2"
    old = tmp_path / "old.extxyz"
    r = run_cli("build", "heterostructure", "--perovskite", "2", "2", "2", "--chalcohalide", "1",
                "--chalcohalide-phase", "Pb4S3Cl2-provisional", "-o", str(old))
    assert r.returncode == 0 and "note: chalcohalide Pb4S3Cl2-provisional: PROVISIONAL" in r.stdout, r.stderr
    assert epitaxy_report(ase.io.read(old))["chalcohalide_phase"] == "Pb4S3Cl2-provisional"
    bad = tmp_path / "bad.extxyz"
    for args, needle in [(("--chalcohalide", "1", "2"), "1 or 3 integers"),
                         (("--chalcohalide-cif", str(tmp_path / "none.cif")), "does not exist"),
                         (("--perovskite", "2", "x", "2"), "integers"),
                         (("--chalcohalide-phase", "Pb4S3Cl2", "--chalcohalide-cif", "x.cif"), "not allowed with")]:
        r = run_cli("build", "heterostructure", *args, "-o", str(bad))
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr
        assert not bad.exists()


@pytest.mark.parametrize("pattern, normal", [("csi-perpendicular", 0), ("pbi2-perpendicular", 0), ("csi-parallel", 2)])
def test_alloy_planes_in_a_heterostructure(pattern, normal):
    """Plane patterns in a heterostructure stay in the perovskite, on whole perovskite planes."""
    from halex.models import alloy_perovskite

    hs = heterostructure((4, 4, 4), 1)
    out = alloy_perovskite(hs, 0.2, pattern=pattern, seed=2)
    changed = np.flatnonzero(_sym(out) != _sym(hs))
    assert len(changed) > 0 and (hs.arrays["domain"][changed] == "perovskite").all()
    a = hs.info["a"]
    pb = hs.positions[(hs.arrays["domain"] == "perovskite") & (_sym(hs) == "Pb")]
    # coordinate along the plane normal in units of a from the Pb lattice: CsX planes sit
    # at half-integers, PbX2 planes at integers
    u = (hs.positions[changed, normal] - pb[:, normal].min()) / a
    offset = 0.0 if pattern == "pbi2-perpendicular" else 0.5
    assert np.allclose((u - offset) % 1.0 * (1 - (u - offset) % 1.0), 0, atol=1e-6)
    planes = np.unique(np.round(u * 2) / 2)
    # whole planes: every perovskite Cl in a chosen plane with the right bond axis is exchanged
    n_exchanged = sum(((np.abs((hs.positions[:, normal] - pb[:, normal].min()) / a - p) < 0.01)
                       & (_sym(out) == "I")).sum() for p in planes)
    assert n_exchanged == len(changed)


def test_a_chalcohalide_far_from_epitaxy_is_named_in_a_warning(tmp_path):
    """Pb4S3I2 under CsPbCl3 (3.9 % mismatch along one axis) is built, with a warning that
    says both numbers, and the command line shows it as one line; the shipped Pb4S3Cl2 builds
    silently (warnings are errors in this suite)."""
    from pathlib import Path

    import halex.phases
    from conftest import run_cli

    with pytest.warns(UserWarning, match=r"CsPbCl3 on Pb4S3I2.*-3\.88 % and cation registry RMS 0\.5\d Å"):
        heterostructure((2, 2, 2), 1, chalcohalide="Pb4S3I2")
    heterostructure((2, 2, 2), 1)  # no warning
    cif = Path(halex.phases.__file__).parent / "data" / "Pb4S3I2_search.cif"
    r = run_cli("build", "heterostructure", "--perovskite", "2", "2", "2", "--chalcohalide", "1",
                "--chalcohalide-cif", str(cif), "-o", str(tmp_path / "m.extxyz"))
    assert r.returncode == 0, r.stderr
    warned = [line for line in r.stderr.splitlines() if line.startswith("halex: warning: CsPbCl3 on")]
    assert len(warned) == 1 and "-3.88 %" in warned[0] and "UserWarning" not in r.stderr


def test_the_validated_chalcohalide_has_the_closer_interface():
    """The default Pb4S3Cl2 (the search protocol validated on Pb4S3I2) builds a neutral model
    with the same interface as the earlier provisional search result: every halide of the
    interfacial CsCl monolayer bonded to a chalcohalide Pb one cell below the first perovskite
    Pb plane, and a closer cation registry (docs/phases.md: 0.45 against 0.70 Å rms on
    3 × 3 × 3 on 2 layers). The registry is scored on the chalcohalide's topmost cation plane:
    counting Pb down to a fixed 3 Å instead took in the next plane of this cell (b shorter by
    0.56 Å, 2.98 Å below) and chose a termination 6.3 Å down with 0.89 Å rms.
    """
    from halex.models.heterostructure import epitaxy_report

    new = heterostructure((3, 3, 3), 2)
    old = heterostructure((3, 3, 3), 2, chalcohalide="Pb4S3Cl2-provisional")
    charge = sum({"Cs": 1, "Pb": 2, "Cl": -1, "S": -2}[s] for s in new.get_chemical_symbols())
    assert charge == 0 and "provisional" not in new.info and "provisional" in old.info
    assert set(new.arrays["domain"]) == {"perovskite", "chalcohalide"}
    r_new, r_old = epitaxy_report(new), epitaxy_report(old)
    assert r_new["chalcohalide_phase"] == "Pb4S3Cl2"
    assert r_new["termination"] == r_old["termination"]
    assert r_new["registry_rms_A"] < r_old["registry_rms_A"] < 0.75
    for model in (new, old):
        longest, gap = _interface_continuity(model)
        assert longest < 3.0
        assert gap == pytest.approx(model.info["a"], abs=0.1)
    # coherent epitaxy on CsPbCl3 (5.605 Å): the validated cell is smaller in-plane, so it is stretched
    assert min(r_new["applied_strain_percent"]) > 0 > max(r_old["applied_strain_percent"])


def test_a_poorly_matched_chalcohalide_still_bonds_to_the_perovskite():
    """CsPbI3 (a = 6.29 Å) on Pb4S3Cl2 has no good registry (warned); the placement still has to
    bond across the interface. Registry alone once put this slab 6.95 Å below the perovskite
    with no bond at all, a model of two separate particles."""
    with pytest.warns(UserWarning, match=r"cation registry RMS 2\.\d+ Å"):
        m = heterostructure((3, 3, 3), 2, halide="I")
    dom, sym = m.arrays["domain"], _sym(m)
    cation = np.isin(sym, ["Cs", "Pb"])
    per, ch = dom == "perovskite", dom == "chalcohalide"
    d_a = cKDTree(m.positions[per & cation]).query(m.positions[ch & ~cation])[0].min()
    d_b = cKDTree(m.positions[per & ~cation]).query(m.positions[ch & cation])[0].min()
    assert min(d_a, d_b) <= 3.6
