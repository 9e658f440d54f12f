import re

import halex
from conftest import run_cli
from halex.cli.main import COMMANDS
from halex.errors import EngineNotFoundError, HalexError, InputError, StructureError


def test_version_matches_metadata():
    from importlib.metadata import version

    assert halex.__version__ == version("halex")
    r = run_cli("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"halex {halex.__version__}"


def test_help_lists_every_command():
    r = run_cli("--help")
    assert r.returncode == 0
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s", r.stdout, re.M), f"{name} missing from --help"


def test_error_hierarchy():
    for cls in (InputError, StructureError, EngineNotFoundError):
        assert issubclass(cls, HalexError)
    assert str(EngineNotFoundError("no such engine 'x'")) == "no such engine 'x'"


def test_units():
    from halex.units import DEFAULT_FMAX, EV_KCAL_PER_MOL

    # 4.5e-4 Ha/Bohr in eV/Å: 27.211386 / 0.529177 * 4.5e-4 = 0.023140
    assert abs(DEFAULT_FMAX - 0.023140) < 2e-6
    # 1 eV = 23.0605 kcal/mol (CODATA)
    assert abs(EV_KCAL_PER_MOL - 23.0605) < 1e-3
