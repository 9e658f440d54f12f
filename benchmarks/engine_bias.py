"""Cell error of the default engine on known lead phases (the yardstick of the Pb4S3I2 validation).

Each phase is relaxed with a free cell and its space group kept (fmax 0.01 eV/Å), as the
structure search does, and its cell compared with experiment. The table goes into
``benchmarks/results/engine_bias.md`` and, between its markers, into ``docs/phases.md``
(``tests/test_docs.py`` checks that the two agree).

    .venv/bin/python benchmarks/engine_bias.py      # ~1 min on 2 cores
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

DOCS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "phases.md"
START, END = "<!-- engine-bias table: benchmarks/engine_bias.py -->", "<!-- end engine-bias table -->"

#: experimental cells (Å): COD 4335639; Noda et al. (1983); Sass et al. (1963); Palosz (1990)
EXPERIMENT = {
    "CsPbCl3": (5.605, 5.605, 5.605),
    "CsPbI3-alpha": (6.29, 6.29, 6.29),
    "CsPbI3-delta": (10.4342, 4.7905, 17.7610),
    "PbS": (5.936, 5.936, 5.936),
    "PbCl2": (7.6222, 4.5348, 9.0448),
    "PbI2": (4.558, 4.558, 6.986),
}


def main() -> None:
    from halex.engines import get_engine
    from halex.phases import load_phase
    from halex.relax import relax

    eng = get_engine("mlip")
    lines = [f"Engine: {eng.describe()['version']}", "",
             "| phase | relaxed a, b, c (Å) | experiment a, b, c (Å) | cell vs experiment (%) |", "|---|---|---|---|"]
    for name, cell in EXPERIMENT.items():
        r = relax(load_phase(name), eng, cell=True, symmetry=True, fmax=0.01, steps=1000, trajectory=False)
        lengths = r.atoms.cell.lengths()
        dev = (lengths / np.array(cell) - 1) * 100
        lines.append(f"| {name} | {' / '.join(f'{v:.3f}' for v in lengths)} | {' / '.join(f'{v:g}' for v in cell)} "
                     f"| {' / '.join(f'{v:+.1f}' for v in dev)} |")
    table = "\n".join(lines)
    print(table)
    text = DOCS_PAGE.read_text()
    block = re.compile(re.escape(START) + ".*?" + re.escape(END), flags=re.S)
    if not block.search(text):
        raise SystemExit(f"{DOCS_PAGE} has no engine-bias markers")
    DOCS_PAGE.write_text(block.sub(lambda _: f"{START}\n{table}\n{END}", text))


if __name__ == "__main__":
    import sys

    from _results import run_benchmark

    sys.exit(run_benchmark("engine_bias", main))
