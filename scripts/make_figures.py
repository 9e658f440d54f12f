"""Regenerate every figure of ``docs/figures`` from the worked examples of the docs pages.

Each page's ```python blocks run as one script in a fresh temporary folder (what
``tests/test_docs.py`` does too); every figure the page shows (``figures/NAME.png``) must
then exist in that folder under the same name, and is copied into ``docs/figures``.
A page whose example does not make one of its figures is an error, so no figure in the
docs can drift from the code that is supposed to make it.

    .venv/bin/python scripts/make_figures.py            # all pages
    .venv/bin/python scripts/make_figures.py stem xrd   # some pages (names without .md)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def page_code(page: Path) -> str:
    """The ```python blocks of ``page`` joined into one script."""
    return "\n\n".join(re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S))


def page_figures(page: Path) -> list[str]:
    """File names of the figures ``page`` shows from ``docs/figures``."""
    return sorted(set(re.findall(r"\(figures/([^)\s]+)\)", page.read_text())))


def run_page(page: Path, workdir: Path, *, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run the example of ``page`` inside ``workdir``."""
    script = workdir / f"{page.stem}_example.py"
    script.write_text(page_code(page))
    return subprocess.run([sys.executable, str(script)], cwd=workdir, capture_output=True, text=True, timeout=timeout)


def missing_figures(page: Path, workdir: Path) -> list[str]:
    """Figures of ``page`` that its example did not write into ``workdir``."""
    return [name for name in page_figures(page) if not (workdir / name).is_file()]


def main(argv: list[str]) -> int:
    pages = [DOCS / f"{n}.md" for n in argv] if argv else sorted(DOCS.glob("*.md"))
    failed = []
    for page in pages:
        if not page_figures(page):
            continue
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            r = run_page(page, work)
            missing = missing_figures(page, work)
            if r.returncode != 0 or missing:
                failed.append(page.name)
                print(f"[figures] {page.name}: FAILED (exit {r.returncode}, missing {missing})\n{r.stderr[-2000:]}")
                continue
            for name in page_figures(page):
                shutil.copyfile(work / name, DOCS / "figures" / name)
        print(f"[figures] {page.name}: {', '.join(page_figures(page))} ({time.perf_counter() - t0:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
