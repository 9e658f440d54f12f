"""Debye-equation speed: halex against DebyeCalculator on the same cubic CsPbCl3 NCs (CPU).

    .venv/bin/python benchmarks/bench_xrd.py [--debye-python benchmarks/.anchors/debye/bin/python]

DebyeCalculator (Apache-2.0, PyTorch) runs in its own virtual environment when found
(default benchmarks/.anchors/debye or $HALEX_DEBYE_PYTHON); both compute I(Q) for Q = 1–8 Å⁻¹ in
0.01 Å⁻¹ steps from the same XYZ file. Reported: atoms, wall time (best of N, after
one warm-up), and the correlation of the two I(Q) curves (a check that both computed
the same thing). Also times the whole 2θ pattern (Cu Kα1+Kα2) and a two-phase fit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from halex.models.nanocrystal import perovskite_nanocrystal
from halex.xrd import debye_intensity, debye_pattern

DC = r'''
import json, sys, time, warnings
import numpy as np
warnings.filterwarnings("ignore")
from debyecalculator import DebyeCalculator
calc = DebyeCalculator(qmin=1.0, qmax=8.0, qstep=0.01, device="cpu", biso=0.0)
calc.iq(sys.argv[1])  # warm-up
best = 1e9
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter(); q, iq = calc.iq(sys.argv[1]); best = min(best, time.perf_counter() - t0)
np.save(sys.argv[3], np.c_[q, iq])
print(json.dumps({"wall_s": best}))
'''


#: Python of the anchor's own environment (bash benchmarks/setup_anchors.sh)
ANCHOR_PYTHON = str(Path(__file__).resolve().parent / ".anchors" / "debye" / "bin" / "python")

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--debye-python", default=os.environ.get("HALEX_DEBYE_PYTHON", ANCHOR_PYTHON))
    ap.add_argument("--sizes", nargs="*", type=int, default=[8, 12, 16])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    q = np.arange(1.0, 8.0, 0.01)
    print("| NC (cells) | atoms | halex I(Q) (s) | DebyeCalculator I(Q) (s) | corr(I_halex, I_DC) | halex 2θ pattern Cu Kα1+2 (s) |")
    print("|---|---|---|---|---|---|")
    for n in args.sizes:
        nc = perovskite_nanocrystal((n, n, n))
        debye_intensity(nc, q[:10])  # warm-up (imports, pymatgen tables)
        best = 1e9
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            iq = debye_intensity(nc, q)
            best = min(best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        debye_pattern(nc)
        t_pat = time.perf_counter() - t0
        dc_wall, corr = float("nan"), float("nan")
        py = Path(args.debye_python)
        if py.exists():
            with tempfile.TemporaryDirectory() as tmp:
                xyz = Path(tmp) / "nc.xyz"
                nc.write(xyz, format="xyz")
                (Path(tmp) / "run.py").write_text(DC)
                r = subprocess.run([str(py), str(Path(tmp) / "run.py"), str(xyz), str(args.repeat), str(Path(tmp) / "iq.npy")],
                                   capture_output=True, text=True, timeout=3600)
                if r.returncode == 0:
                    dc_wall = json.loads(r.stdout.strip().splitlines()[-1])["wall_s"]
                    ref = np.load(Path(tmp) / "iq.npy")
                    common = np.interp(q, ref[:, 0], ref[:, 1])
                    corr = float(np.corrcoef(iq, common)[0, 1])
                else:
                    print("DebyeCalculator failed:", r.stderr[-1500:], file=sys.stderr)
        print(f"| {n}x{n}x{n} | {len(nc)} | {best:.2f} | {dc_wall:.2f} | {corr:.4f} | {t_pat:.2f} |")


if __name__ == "__main__":
    import sys

    from _results import run_benchmark

    sys.exit(run_benchmark("bench_xrd", main))
