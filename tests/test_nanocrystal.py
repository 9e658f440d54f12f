import numpy as np
import pytest

from halex.errors import InputError
from halex.models import formal_charge, perovskite_nanocrystal


@pytest.mark.parametrize("size", [(1, 1, 1), (2, 3, 4), (5, 5, 5), (4, 4, 6)])
def test_counts_and_neutrality(size):
    n1, n2, n3 = size
    nc = perovskite_nanocrystal(size, "Cl")
    sym = np.array(nc.get_chemical_symbols())
    n_pb = n1 * n2 * n3
    n_x = (n1 + 1) * n2 * n3 + n1 * (n2 + 1) * n3 + n1 * n2 * (n3 + 1)
    n_cs = (n1 + 1) * (n2 + 1) * (n3 + 1) - (n1 + n2 + n3 + 1)
    assert (sym == "Pb").sum() == n_pb
    assert (sym == "Cl").sum() == n_x
    assert (sym == "Cs").sum() == n_cs
    assert formal_charge(nc) == 0
    assert n_cs + 2 * n_pb - n_x == 0  # independent check of the neutrality rule


def test_known_compositions():
    assert perovskite_nanocrystal((1, 1, 1)).get_chemical_formula(mode="metal") == "Cs4PbCl6"
    assert len(perovskite_nanocrystal((5, 5, 5))) == 775
    assert len(perovskite_nanocrystal((8, 8, 8))) == 2944


def test_geometry_and_arrays():
    a = 5.605
    nc = perovskite_nanocrystal((3, 3, 3), "Cl", a=a)
    pos = nc.get_positions()
    pb = pos[nc.numbers == 82]
    from scipy.spatial.distance import pdist

    d = pdist(pb)
    assert abs(d.min() - a) < 1e-9
    # every Pb has exactly six Cl at a/2
    cl = pos[nc.numbers == 17]
    dpc = np.linalg.norm(pb[:, None] - cl[None], axis=2)
    assert np.all((np.abs(dpc - a / 2) < 1e-6).sum(axis=1) == 6)
    # arrays
    assert set(nc.arrays["domain"]) == {"perovskite"}
    assert set(nc.arrays["layer"]) == {0, 1, 2, 3}
    roles = nc.arrays["role"]
    assert set(roles[nc.numbers == 17]) == {"X_ax", "X_eq"}
    # axial halides sit directly above/below Pb (same x, y), equatorial ones in Pb planes
    z_pb = np.unique(np.round(pb[:, 2], 6))
    assert np.all(np.isin(np.round(pos[roles == "X_eq", 2], 6), z_pb))
    assert not np.any(np.isin(np.round(pos[roles == "X_ax", 2], 6), z_pb))
    # layer 0 is the low-z terminal CsX plane
    z0 = pos[nc.arrays["layer"] == 0, 2]
    assert np.allclose(z0, z0[0]) and z0[0] < pb[:, 2].min()
    assert not nc.pbc.any()
    # vacuum of 8 Å on every side
    assert np.allclose(pos.min(axis=0), 8.0) and np.allclose(nc.cell.lengths() - pos.max(axis=0), 8.0)


def test_bad_input():
    for bad in [(0, 1, 1), (2, 2), (1.5, 2, 2), ("a", 1, 1)]:
        with pytest.raises(InputError):
            perovskite_nanocrystal(bad)
    with pytest.raises(InputError, match="unknown halide"):
        perovskite_nanocrystal((2, 2, 2), "Xe")


def test_string_arrays_are_wide_enough_for_every_value(tmp_path):
    from halex.io import read_structure, write_structure

    nc = perovskite_nanocrystal((1, 1, 1))
    back = read_structure(write_structure(tmp_path / "nc.extxyz", nc))
    for atoms in (nc, back):
        atoms.arrays["domain"][0] = "chalcohalide"  # in-place assignment must not truncate
        assert atoms.arrays["domain"][0] == "chalcohalide"


def test_bromide_and_size_guard():
    from halex.models.nanocrystal import MAX_ATOMS

    br = perovskite_nanocrystal((2, 2, 2), "Br")
    assert br.get_chemical_formula(mode="metal") == "Cs20Pb8Br36" and formal_charge(br) == 0
    pb = br.positions[br.numbers == 82]
    from scipy.spatial.distance import pdist

    assert abs(pdist(pb).min() - 5.874) < 1e-9  # cubic CsPbBr3, Møller (1958)
    with pytest.raises(InputError, match=f"{MAX_ATOMS:,}"):
        perovskite_nanocrystal((40, 40, 40))
