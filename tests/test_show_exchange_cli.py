"""halex exchange and halex show from the command line."""

import numpy as np
import pytest

from conftest import run_cli
from halex.io import read_structure, write_structure
from halex.models import exchange_log, perovskite_nanocrystal


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_structure(tmp_path_factory.mktemp("ex") / "nc.extxyz", perovskite_nanocrystal((3, 3, 4)))


def test_exchange_cli_combines_operations_in_order(model, tmp_path):
    out = tmp_path / "x.extxyz"
    r = run_cli("exchange", str(model), "--layers", "2", "--from", "bottom", "--interface-monolayer",
                "--alloy", "0.2", "--pattern", "csi-perpendicular", "--seed", "1", "-o", str(out))
    assert r.returncode == 0, r.stderr
    ops = [e["operation"] for e in exchange_log(read_structure(out))]
    assert ops == ["layers", "interface-monolayer", "alloy"]
    start = read_structure(model)
    got = read_structure(out)
    changed = np.flatnonzero(np.array(start.get_chemical_symbols()) != np.array(got.get_chemical_symbols()))
    assert sum(e["count"] for e in exchange_log(got)) == len(changed)
    # one line per operation, each once, then the file
    assert r.stdout.strip().splitlines()[:3] == [f"{e['operation']}: {e['count']} Cl -> I" + (
        f", achieved fraction {e['achieved_fraction']:.3f}" if "achieved_fraction" in e else "") for e in exchange_log(got)]
    assert not [line for line in r.stderr.splitlines() if line.startswith(("layers:", "interface-monolayer:", "alloy:"))]


@pytest.mark.parametrize("args,needle", [
    (["--layers", "9"], "--layers must be an integer in [1, 4]"),
    (["--chalcohalide-layers", "3", "--fraction", "0.5"], "no chalcohalide layers"),
    (["--alloy", "1.5"], "[0, 1]"),
    (["--alloy", "0.2", "--pattern", "zigzag"], "pattern"),
    (["--chalcohalide-layers", "1"], "--fraction"),
    ([], "nothing to do"),
])
def test_exchange_cli_errors(model, tmp_path, args, needle):
    out = tmp_path / "bad.extxyz"
    r = run_cli("exchange", str(model), *args, "-o", str(out))
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("color", ["element", "domain", "layer"])
def test_show_writes_a_picture(model, tmp_path, color):
    out = tmp_path / f"nc_{color}.png"
    r = run_cli("show", str(model), "-o", str(out), "--color", color)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    # the picture shows the atoms in the colours of the chosen mode
    from matplotlib.colors import to_rgb
    from matplotlib.image import imread

    px = imread(out)[..., :3]
    assert min(px.shape[:2]) > 200
    inked = (px < 0.95).any(axis=2).mean()
    assert 0.02 < inked < 0.9, inked
    if color == "element":  # Jmol colours of Cs, Pb and Cl (ASE's table)
        from ase.data import atomic_numbers
        from ase.data.colors import jmol_colors

        wanted = [jmol_colors[atomic_numbers[el]] for el in ("Cs", "Pb", "Cl")]
    elif color == "domain":  # a nanocrystal is all perovskite
        wanted = [to_rgb("#3b75af")]
    else:  # five layers (0-4): at least three clearly different colours
        wanted = []
        colours = np.unique(np.round(px[(px < 0.9).any(axis=2)] * 8), axis=0)
        assert len(colours) >= 3
    for rgb in wanted:
        close = (np.abs(px - np.asarray(rgb)) < 0.08).all(axis=2).mean()
        assert close > 1e-3, (color, rgb, close)


def test_show_errors(model, tmp_path):
    r = run_cli("show", str(model), "-o", str(tmp_path / "x.png"), "--color", "mood")
    assert r.returncode == 2 and "colouring" in r.stderr
    r = run_cli("show", str(model), "-o", str(tmp_path / "x.txt"))
    assert r.returncode == 2 and ".png" in r.stderr
    assert not list(tmp_path.glob("x.*"))
