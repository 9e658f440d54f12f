"""The public API of the analysis and study packages documents itself (numpydoc).

Every public function exported by these packages has ``Parameters`` and ``Returns``
sections and type hints on every argument and the return value; every public class
documents its ``Attributes``. Their ``Examples`` run with ``--doctest-modules``.
"""

import importlib
import inspect

import pytest

PACKAGES = ["halex.stem", "halex.xrd", "halex.ta", "halex.optics", "halex.studies", "halex.pathway"]


def _public(package):
    m = importlib.import_module(package)
    return [(name, getattr(m, name)) for name in m.__all__
            if inspect.isfunction(getattr(m, name)) or inspect.isclass(getattr(m, name))]


@pytest.mark.parametrize("package", PACKAGES)
def test_public_api_has_numpydoc_sections_and_types(package):
    missing = []
    for name, obj in _public(package):
        doc = inspect.getdoc(obj) or ""
        if inspect.isclass(obj):
            if "Attributes\n----------" not in doc:
                missing.append(f"{name}: no Attributes section")
            continue
        for section in ("Parameters\n----------", "Returns\n-------"):
            if section not in doc:
                missing.append(f"{name}: no {section.splitlines()[0]} section")
        sig = inspect.signature(obj)
        untyped = [p for p, v in sig.parameters.items() if v.annotation is inspect.Parameter.empty]
        if untyped or sig.return_annotation is inspect.Signature.empty:
            missing.append(f"{name}: untyped {untyped or 'return'}")
    assert not missing, "\n".join(missing)
