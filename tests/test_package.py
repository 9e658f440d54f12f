import re

import halex
from conftest import run_cli
from halex.cli.main import COMMANDS
from halex.errors import EngineNotFoundError, HalexError


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


def test_every_error_is_one_cli_line(monkeypatch, capsys):
    """Every exception class halex defines is a HalexError, and the command line turns each one
    into exit code 2 and a single ``halex: error:`` line naming the problem (no traceback)."""
    import inspect

    import halex.errors as errors
    from halex.cli import main as cli

    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, Exception) and c.__module__ == errors.__name__]
    assert len(classes) >= 10 and all(issubclass(c, HalexError) for c in classes)
    for cls in classes:
        def boom(args, cls=cls):
            raise cls(f"the {cls.__name__} text")

        monkeypatch.setattr(cli.importlib.import_module("halex.cli.engines_cmd"), "run", boom)
        assert cli.main(["engines"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"halex: error: the {cls.__name__} text"], (cls, err)
    # KeyError's repr quoting does not leak into the message
    assert str(EngineNotFoundError("no such engine 'x'")) == "no such engine 'x'"


def test_units():
    from halex.units import DEFAULT_FMAX, EV_KCAL_PER_MOL

    # 4.5e-4 Ha/Bohr in eV/Å: 27.211386 / 0.529177 * 4.5e-4 = 0.023140
    assert abs(DEFAULT_FMAX - 0.023140) < 2e-6
    # 1 eV = 23.0605 kcal/mol (CODATA)
    assert abs(EV_KCAL_PER_MOL - 23.0605) < 1e-3


def test_no_function_is_longer_than_80_lines_of_code():
    """Small functions: no function of the package has more than 80 lines besides its docstring."""
    import ast
    from pathlib import Path

    root = Path(halex.__file__).parent
    long = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = node.body[0]
                doc = (first.end_lineno - first.lineno + 1 if isinstance(first, ast.Expr)
                       and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str) else 0)
                if node.end_lineno - node.lineno + 1 - doc > 80:
                    long.append(f"{path.relative_to(root)}:{node.lineno} {node.name}")
    assert not long, long
