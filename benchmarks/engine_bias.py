"""Cell error of the default engine on known lead phases (the yardstick of the Pb4S3I2 validation).

Each phase is relaxed with a free cell and its space group kept (fmax 0.01 eV/Å), as the
structure search does, and its cell compared with experiment.

    .venv/bin/python benchmarks/engine_bias.py      # ~1 min on 2 cores
"""

from __future__ import annotations

import numpy as np

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
    print(f"# {eng.describe()['version']}")
    print("| phase | relaxed a, b, c (Å) | vs experiment (%) |")
    print("|---|---|---|")
    for name, cell in EXPERIMENT.items():
        r = relax(load_phase(name), eng, cell=True, symmetry=True, fmax=0.01, steps=1000, trajectory=False)
        lengths = r.atoms.cell.lengths()
        dev = (lengths / np.array(cell) - 1) * 100
        print(f"| {name} | {' / '.join(f'{v:.3f}' for v in lengths)} | {' / '.join(f'{v:+.1f}' for v in dev)} |")


if __name__ == "__main__":
    main()
