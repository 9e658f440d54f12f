"""Every docs page has a worked example that runs as written and makes the figures the page shows.

The ```python blocks of one page share a namespace and run in a fresh folder; each figure a
page shows (``figures/NAME.png``) must be written there under that name by the example, which
is how ``scripts/make_figures.py`` regenerates ``docs/figures``.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
_spec = importlib.util.spec_from_file_location("make_figures", ROOT / "scripts" / "make_figures.py")
make_figures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_figures)

PAGES = sorted(DOCS.glob("*.md"))
#: pages whose example needs the CP2K program
NEEDS_CP2K = {"engines.md", "electronic.md"}


def test_every_page_has_a_runnable_example():
    missing = [p.name for p in PAGES if not make_figures.page_code(p).strip()]
    assert not missing, f"pages without a ```python example: {missing}"


def test_every_figure_file_is_shown_and_every_shown_figure_exists():
    shown = {name for p in PAGES for name in make_figures.page_figures(p)}
    files = {f.name for f in (DOCS / "figures").glob("*.png")}
    assert shown - files == set(), f"figures shown but not in docs/figures: {sorted(shown - files)}"
    assert files - shown == set(), f"stale figures no page shows: {sorted(files - shown)}"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_doc_examples_run_and_make_their_figures(page, tmp_path):
    if page.name in NEEDS_CP2K:
        import shutil

        if shutil.which("cp2k.psmp") is None:
            pytest.skip("cp2k.psmp not installed")
    r = make_figures.run_page(page, tmp_path, timeout=900)
    assert r.returncode == 0, f"{page.name} example failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    missing = make_figures.missing_figures(page, tmp_path)
    assert not missing, f"{page.name}: the example does not write {missing}"


EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_run(example, tmp_path):
    r = subprocess.run([sys.executable, str(example), str(tmp_path / "out")], cwd=tmp_path, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert any((tmp_path / "out").glob("*.png"))


def test_engine_bias_table_in_the_docs_is_the_benchmarks_output():
    """docs/phases.md shows the table benchmarks/engine_bias.py wrote, not a hand-edited copy."""
    page = (DOCS / "phases.md").read_text()
    start, end = "<!-- engine-bias table: benchmarks/engine_bias.py -->", "<!-- end engine-bias table -->"
    shown = page.split(start)[1].split(end)[0].strip()
    result = (ROOT / "benchmarks" / "results" / "engine_bias.md").read_text()
    assert shown and shown in result
    assert "- date: " in result and "- versions: Python " in result and "- machine: " in result


def test_cp2k_convergence_in_the_docs_is_the_benchmarks_output():
    """Every exchange energy of benchmarks/results/cp2k_convergence.md is the one docs/engines.md quotes."""
    page = (DOCS / "engines.md").read_text()
    section = page.split("### Convergence of an exchange energy in cutoff and basis")[1].split("\n## ")[0]
    result = (ROOT / "benchmarks" / "results" / "cp2k_convergence.md").read_text()
    rows = [line.split("|") for line in result.splitlines() if line.startswith("| 400 Ry") or line.startswith("| 300 Ry")
            or line.startswith("| 600 Ry")]
    assert len(rows) == 6
    for cells in rows:
        settings, de = cells[1].strip(), float(cells[2])
        basis = settings.split(", ")[1].split(" ")[0]
        assert basis in section, settings
        assert f"{de:.3f}".replace("-", "−") in section, (settings, de)
