"""Speed of halex's lattice Monte Carlo against icet's canonical Monte Carlo (mchammer).

halex: canonical and semi-grand-canonical trials on the halide lattice of a free CsPbCl3
nanocrystal of about 5,600 sites (12 × 12 × 12 octahedra) (pair shells up to the third), one core (numba kernels,
compiled before timing). icet: ``CanonicalEnsemble`` on a periodic CsPb(Cl,I)3 supercell with
the same number of halide sites (12 × 12 × 12 cells, 5,184 sites), a cluster expansion with
pairs to 6 Å, run in its own environment (``bash benchmarks/setup_anchors.sh icet``), same
run. icet cannot take the nanocrystal itself: it needs a periodic structure.

    .venv/bin/python benchmarks/bench_pathway.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ICET = Path(__file__).resolve().parent / ".anchors" / "icet" / "bin" / "python"

ICET_SCRIPT = r"""
import json, time, numpy as np
from ase.build import bulk
from ase import Atoms
from icet import ClusterSpace, ClusterExpansion
from mchammer.calculators import ClusterExpansionCalculator
from mchammer.ensembles import CanonicalEnsemble
a = 5.605
prim = Atoms("CsPbCl3", cell=[a, a, a], pbc=True,
             scaled_positions=[(0.5, 0.5, 0.5), (0, 0, 0), (0.5, 0, 0), (0, 0.5, 0), (0, 0, 0.5)])
cs = ClusterSpace(prim, cutoffs=[6.0], chemical_symbols=[["Cs"], ["Pb"], ["Cl", "I"], ["Cl", "I"], ["Cl", "I"]])
rng = np.random.default_rng(0)
ce = ClusterExpansion(cs, rng.normal(0, 0.02, len(cs)))
st = prim.repeat(12)
sym = np.array(st.get_chemical_symbols()); x = np.flatnonzero(sym == "Cl")
sym[rng.choice(x, x.size // 3, replace=False)] = "I"; st.set_chemical_symbols(list(sym))
calc = ClusterExpansionCalculator(st, ce)
ens = CanonicalEnsemble(structure=st, calculator=calc, temperature=600, dc_filename=None, random_seed=1)
ens.run(2000)
n = 20000; t = time.perf_counter(); ens.run(n); dt = time.perf_counter() - t
print(json.dumps({"sites": int(x.size), "trials": n, "seconds": dt, "orbits": len(cs)}))
"""


def _halex() -> list[dict]:
    import numpy as np

    from halex.models import perovskite_nanocrystal
    from halex.pathway import LatticeModel, canonical, halide_lattice, sgc

    lat = halide_lattice(perovskite_nanocrystal((12, 12, 12), "Cl"), n_shells=3)
    rng = np.random.default_rng(0)
    model = LatticeModel(rng.normal(0, 0.05, len(lat.kinds)), rng.normal(0, 0.02, len(lat.shells)), {})
    h, J = model.fields(lat)
    occ = (rng.random(lat.n_sites) < 0.33).astype(np.int8)
    out = []
    for name, run in (("canonical", lambda s: canonical(occ, h, lat.indptr, lat.neighbours, J, temperature=600.0, sweeps=s,
                                                        sample_every_sweep=False)),
                      ("semi-grand canonical", lambda s: sgc(occ, h, lat.indptr, lat.neighbours, J, dmu=0.0,
                                                             temperature=600.0, sweeps=s, sample_every_sweep=False))):
        run(1)  # compile
        t = time.perf_counter()
        r = run(200)
        dt = time.perf_counter() - t
        out.append({"code": f"halex {name} (nanocrystal)", "sites": lat.n_sites, "trials": r["trials"], "seconds": dt,
                    "neighbours": int(lat.neighbours.size / lat.n_sites)})
    return out


def main() -> None:
    import os

    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    rows = _halex()
    if ICET.exists():
        out = subprocess.run([str(ICET), "-c", ICET_SCRIPT], capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        rows.append({"code": "icet 4 CanonicalEnsemble (periodic supercell)", **r})
    else:
        print(f"icet anchor missing ({ICET}): bash benchmarks/setup_anchors.sh icet\n")
    print("| code | halide sites | trials | s | trials/s | × icet |")
    print("|---|---|---|---|---|---|")
    icet = next((r for r in rows if r["code"].startswith("icet")), None)
    for r in rows:
        rate = r["trials"] / r["seconds"]
        ratio = f"{rate / (icet['trials'] / icet['seconds']):.0f}" if icet else "—"
        print(f"| {r['code']} | {r['sites']} | {r['trials']} | {r['seconds']:.3f} | {rate:,.0f} | {ratio} |")


if __name__ == "__main__":
    from _results import run_benchmark

    sys.exit(run_benchmark("bench_pathway", main))
