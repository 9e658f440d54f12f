import numpy as np
import pytest
from ase import Atoms

from halex.checks import check_fmax, check_fraction, check_structure
from halex.errors import FileFormatError, InputError, StructureError
from halex.io import read_structure, write_structure


def test_nonfinite_coordinates_rejected():
    a = Atoms("PbCl2", positions=[[0, 0, 0], [2.5, 0, 0], [np.nan, 2.5, 0]])
    with pytest.raises(StructureError, match="non-finite"):
        check_structure(a)


def test_overlap_rejected_including_across_pbc():
    a = Atoms("PbCl", positions=[[0, 0, 0], [0.3, 0, 0]])
    with pytest.raises(StructureError, match="overlapping"):
        check_structure(a)
    # 0.2 Å apart only through the periodic boundary
    b = Atoms("PbCl", positions=[[0.1, 0, 0], [5.8, 0, 0]], cell=[6, 6, 6], pbc=True)
    with pytest.raises(StructureError, match="overlapping"):
        check_structure(b)
    c = Atoms("PbCl", positions=[[0, 0, 0], [2.8, 0, 0]])
    check_structure(c)  # a normal Pb-Cl bond passes


@pytest.mark.parametrize("bad", [0, -0.1, float("nan"), float("inf"), "abc", None])
def test_bad_fmax(bad):
    with pytest.raises(InputError):
        check_fmax(bad)


def test_fraction_bounds():
    assert check_fraction(0) == 0 and check_fraction(1) == 1
    for bad in (-0.01, 1.01, "x"):
        with pytest.raises(InputError):
            check_fraction(bad)


def test_read_errors(tmp_path):
    with pytest.raises(FileFormatError, match="does not exist"):
        read_structure(tmp_path / "missing.extxyz")
    empty = tmp_path / "empty.extxyz"
    empty.write_text("")
    with pytest.raises(FileFormatError, match="empty"):
        read_structure(empty)
    junk = tmp_path / "junk.extxyz"
    junk.write_text("this is not\na structure file\n")
    with pytest.raises(FileFormatError, match="cannot read"):
        read_structure(junk)


def test_write_is_atomic_and_keeps_arrays(tmp_path):
    from halex.models import perovskite_nanocrystal

    nc = perovskite_nanocrystal((2, 2, 2))
    out = write_structure(tmp_path / "nc.extxyz", nc)
    back = read_structure(out)
    for name in ("domain", "layer", "role"):
        assert np.array_equal(back.arrays[name], nc.arrays[name])
    assert back.info["size"] == "2x2x2"
    assert not list(tmp_path.glob("*.part"))

    class Boom(Exception):
        pass

    from halex.io import atomic_output

    with pytest.raises(Boom):
        with atomic_output(tmp_path / "half.txt") as fh:
            fh.write("partial")
            raise Boom
    assert not (tmp_path / "half.txt").exists()
    assert not list(tmp_path.glob("*.part"))
    with pytest.raises(FileFormatError, match="unknown output format"):
        write_structure(tmp_path / "x.nosuchformat", nc)


@pytest.mark.parametrize("suffix", ["cif", "vasp", "traj"])
def test_formats_without_arrays_keep_them_in_a_sidecar(tmp_path, suffix):
    """CIF/POSCAR/traj cannot hold domain/layer/role: the sidecar brings them back, and a
    file whose atoms no longer match its sidecar is read without them, with a warning."""
    from halex.io import sidecar_path
    from halex.models import heterostructure

    hs = heterostructure((2, 2, 1), 1)
    path = write_structure(tmp_path / f"hs.{suffix}", hs)
    assert sidecar_path(path).is_file()
    back = read_structure(path)
    assert len(back) == len(hs)
    for name in ("domain", "layer", "role"):
        np.testing.assert_array_equal(back.arrays[name], hs.arrays[name])
    # the same name rewritten with other atoms but the old sidecar left in place
    other = Atoms("Cs2", positions=[[0, 0, 0], [4, 0, 0]], cell=[8, 8, 8], pbc=True)
    import ase.io

    ase.io.write(path, other, format={"vasp": "vasp", "cif": "cif", "traj": "traj"}[suffix])
    with pytest.warns(UserWarning, match="do not match"):
        bare = read_structure(path)
    assert "domain" not in bare.arrays
    # extxyz keeps the arrays itself and removes a stale sidecar of the same name
    xyz = tmp_path / "hs.extxyz"
    sidecar_path(xyz).write_text("{}")
    write_structure(xyz, hs)
    assert not sidecar_path(xyz).exists()
