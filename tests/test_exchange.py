"""Exchange operations change exactly the intended atoms and nothing else."""

import json

import numpy as np
import pytest

from halex.errors import InputError
from halex.models import (
    ALLOY_PATTERNS,
    alloy_perovskite,
    exchange_chalcohalide_layers,
    exchange_interface_monolayer,
    exchange_layers,
    exchange_log,
    formal_charge,
    perovskite_nanocrystal,
)

A = 5.605


@pytest.fixture(scope="module")
def nc():
    return perovskite_nanocrystal((4, 4, 5), "Cl", a=A)


def _changed(before, after):
    return np.flatnonzero(np.array(before.get_chemical_symbols()) != np.array(after.get_chemical_symbols()))


def _unchanged_except(before, after, idx):
    np.testing.assert_array_equal(after.positions, before.positions)
    for name in ("domain", "layer", "role"):
        np.testing.assert_array_equal(after.arrays[name], before.arrays[name])
    assert set(_changed(before, after)) == set(idx)
    assert formal_charge(after) == 0


@pytest.mark.parametrize("start,expected_layers", [("interface", [1, 2, 3]), ("bottom", [3, 4, 5])])
def test_layers(nc, start, expected_layers):
    before = nc.copy()
    out = exchange_layers(nc, 3, start=start)
    assert nc == before and nc.get_chemical_formula() == before.get_chemical_formula()  # input untouched
    expected = np.flatnonzero((nc.numbers == 17) & np.isin(nc.arrays["layer"], expected_layers))
    _unchanged_except(nc, out, expected)
    # each perovskite layer k holds n1*n2 axial + (n1+1)*n2 + n1*(n2+1) equatorial halides: 16 + 40 = 56
    assert len(expected) == 3 * 56
    entry = exchange_log(out)[-1]
    assert entry["count"] == len(expected) and entry["layers"] == expected_layers
    assert (np.array(out.get_chemical_symbols())[expected] == "I").all()


def test_interface_monolayer_and_composition(nc):
    out = exchange_interface_monolayer(nc)
    expected = np.flatnonzero((nc.numbers == 17) & (nc.arrays["layer"] == 0))
    _unchanged_except(nc, out, expected)
    assert len(expected) == 4 * 4  # one halide above each Pb of the first PbX2 plane
    both = exchange_layers(out, 2, start="bottom")
    log = exchange_log(both)
    assert [e["operation"] for e in log] == ["interface-monolayer", "layers"]
    assert json.loads(both.info["exchange_log"]) == log


def test_random_alloy_exact_and_seeded(nc):
    n_cl = int((nc.numbers == 17).sum())
    a1 = alloy_perovskite(nc, 0.25, pattern="random", seed=3)
    a2 = alloy_perovskite(nc, 0.25, pattern="random", seed=3)
    a3 = alloy_perovskite(nc, 0.25, pattern="random", seed=4)
    assert a1 == a2 and a1 != a3
    assert len(_changed(nc, a1)) == round(0.25 * n_cl)


def _plane_coords(atoms, idx, axis):
    return np.unique(np.round(atoms.positions[idx, axis] / A, 3))


def test_csi_perpendicular_planes(nc):
    out = alloy_perovskite(nc, 0.2, pattern="csi-perpendicular", seed=1)
    ch = _changed(nc, out)
    origin = nc.positions[nc.numbers == 82].min(axis=0)
    x = (nc.positions[ch, 0] - origin[0]) / A
    assert np.allclose(x % 1.0, 0.5, atol=1e-6)  # every I lies in a CsX plane normal to x (half-integer x)
    for xp in np.unique(np.round(x, 3)):  # and each such plane is complete
        plane = np.flatnonzero((np.abs((nc.positions[:, 0] - origin[0]) / A - xp) < 1e-3) & (nc.numbers == 17))
        assert set(plane) <= set(ch)
    # Cs share those planes
    cs_x = (nc.positions[nc.numbers == 55, 0] - origin[0]) / A
    assert set(np.round(x, 3)) <= set(np.round(cs_x, 3))
    n_cl = int((nc.numbers == 17).sum())
    per_plane = 4 * 5  # n2 * n3 halides bonded along x in one plane
    assert len(ch) == per_plane * round(0.2 * n_cl / per_plane)


def test_csi_parallel_and_pbi2_perpendicular(nc):
    par = alloy_perovskite(nc, 0.2, pattern="csi-parallel", seed=2)
    ch = _changed(nc, par)
    assert set(nc.arrays["role"][ch]) == {"X_ax"}  # planes parallel to the interface
    z = nc.positions[ch, 2]
    for zp in np.unique(np.round(z, 3)):
        plane = np.flatnonzero((np.abs(nc.positions[:, 2] - zp) < 1e-3) & (nc.numbers == 17))
        assert set(plane) <= set(ch)
    pbi = alloy_perovskite(nc, 0.2, pattern="pbi2-perpendicular", seed=2)
    ch = _changed(nc, pbi)
    pb_x = np.round(nc.positions[nc.numbers == 82, 0], 3)
    assert set(np.round(nc.positions[ch, 0], 3)) <= set(pb_x)  # halides sit in Pb planes normal to x
    entry = exchange_log(pbi)[-1]
    assert entry["planes"] >= 1 and entry["plane_normal"] == "x"
    # whole Pb planes: every plane normal to x holds the same Cl, and the plane count is the
    # one nearest the 20 % target, so the achieved fraction is exact
    n_cl = int((nc.numbers == 17).sum())
    per_plane = {int(((np.abs(nc.positions[:, 0] - x) < 1e-3) & (nc.numbers == 17)).sum()) for x in np.unique(pb_x)}
    assert len(per_plane) == 1
    (m,) = per_plane
    assert entry["planes"] == round(0.2 * n_cl / m) and len(ch) == entry["planes"] * m
    assert entry["achieved_fraction"] == len(ch) / n_cl


def test_chalcohalide_layers_fraction_and_rounding(nc, caplog):
    # label the two lowest perovskite layers as a stand-in chalcohalide domain to test site selection
    fake = nc.copy()
    low = np.isin(fake.arrays["layer"], [0, 1])
    fake.arrays["domain"][low] = "chalcohalide"
    fake.arrays["layer"][low] = np.where(fake.arrays["layer"][low] == 1, -1, -2)
    sites = np.flatnonzero(low & (fake.numbers == 17))
    out = exchange_chalcohalide_layers(fake, 2, 0.4, seed=1)
    ch = _changed(fake, out)
    assert set(ch) <= set(sites)
    assert len(ch) == round(0.4 * len(sites))
    assert exchange_chalcohalide_layers(fake, 2, 0.4, seed=1) == out
    with pytest.raises(InputError, match="not a whole number"):
        exchange_chalcohalide_layers(fake, 2, 0.33, seed=1, exact=True)
    # rounding is said once per process, not once per seed
    import logging

    with caplog.at_level(logging.WARNING, logger="halex"):
        for seed in range(4):
            exchange_chalcohalide_layers(fake, 2, 0.37, seed=seed)
    rounded = [r for r in caplog.records if r.getMessage().startswith("0.37 of")]
    assert len(rounded) == 1 and "rounded to" in rounded[0].getMessage(), [r.getMessage() for r in rounded]
    with pytest.raises(InputError, match="chalcohalide layers"):
        exchange_chalcohalide_layers(nc, 1, 0.5)
    with pytest.raises(InputError, match=r"\[1, 2\]"):
        exchange_chalcohalide_layers(fake, 3, 0.5)


def test_bad_input(nc):
    with pytest.raises(InputError, match=r"\[1, 5\]"):
        exchange_layers(nc, 6)
    with pytest.raises(InputError):
        exchange_layers(nc, 0)
    with pytest.raises(InputError, match="start"):
        exchange_layers(nc, 1, start="middle")
    for f in (-0.1, 1.5):
        with pytest.raises(InputError, match=r"\[0, 1\]"):
            alloy_perovskite(nc, f)
    with pytest.raises(InputError, match="pattern"):
        alloy_perovskite(nc, 0.2, pattern="stripes")
    with pytest.raises(InputError, match="nothing"):
        alloy_perovskite(nc, 0.0)
    all_i = exchange_layers(exchange_interface_monolayer(nc), 5)
    with pytest.raises(InputError, match="no Cl left"):
        alloy_perovskite(all_i, 0.2)
    bare = nc.copy()
    del bare.arrays["layer"]
    with pytest.raises(InputError, match="per-atom array"):
        exchange_layers(bare, 1)
    with pytest.raises(InputError, match="unknown halide"):
        exchange_layers(nc, 1, target="At")
    assert set(ALLOY_PATTERNS) == {"random", "csi-perpendicular", "csi-parallel", "pbi2-perpendicular"}


def test_log_survives_extxyz(nc, tmp_path):
    from halex.io import read_structure, write_structure

    out = alloy_perovskite(exchange_layers(nc, 2), 0.2, pattern="csi-perpendicular", seed=5)
    back = read_structure(write_structure(tmp_path / "x.extxyz", out))
    assert exchange_log(back) == exchange_log(out)
    assert back.get_chemical_formula() == out.get_chemical_formula()
