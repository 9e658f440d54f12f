"""Benchmark of the orbital analysis (``halex electronic``) against a plain CP2K energy.

The anchor is the same CP2K single point without the orbital projection (halex's
``single_point`` with the cp2k engine, ENERGY_FORCE): the table shows what the
``&PDOS``/``&LDOS`` print and the ``NLUMO`` virtual orbitals cost on top, and the
cost of a cached rerun.

    .venv/bin/python benchmarks/bench_electronic.py             # PbI2 + PbCl2 pair, 200 Ry
    .venv/bin/python benchmarks/bench_electronic.py --nlumo 20
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from ase import Atoms


def _pair() -> Atoms:
    return Atoms("PbI2", positions=[[0, 0, 0], [2.80, 0, 0.35], [-0.70, 2.71, 0.35]]) + \
        Atoms("PbCl2", positions=[[0, 0, 6.5], [2.45, 0, 6.8], [-0.60, 2.38, 6.8]])


def main() -> None:
    from halex.engines import get_engine
    from halex.relax import single_point
    from halex.store import ResultStore
    from halex.studies.electronic import orbital_analysis

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nlumo", type=int, default=4)
    ap.add_argument("--cutoff", type=float, default=200.0)
    args = ap.parse_args()
    eng = get_engine("cp2k", cutoff_ry=args.cutoff, rel_cutoff_ry=40, vacuum=4.0)
    atoms = _pair()
    groups = {"PbI2": [0, 1, 2], "PbCl2": [3, 4, 5]}
    work = Path(tempfile.mkdtemp(prefix="halex-bench-el-"))
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {eng.version}, "
          f"{len(atoms)} atoms, {args.cutoff:.0f} Ry, NLUMO {args.nlumo}")
    t0 = time.perf_counter()
    e_plain = single_point(atoms, eng, store=ResultStore(work / "plain.db")).energy
    plain = time.perf_counter() - t0
    store = ResultStore(work / "el.db")
    t0 = time.perf_counter()
    res = orbital_analysis(atoms, eng, store=store, nlumo=args.nlumo, groups=groups)
    orb = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = orbital_analysis(atoms, eng, store=store, nlumo=args.nlumo, groups=groups)
    cached = time.perf_counter() - t0
    assert again.cached
    de = abs(res.orbitals.meta["energy_eV"] - e_plain)
    print("| run | wall (s) | energy (eV) |")
    print("|---|---|---|")
    print(f"| CP2K energy + forces (anchor, halex single_point) | {plain:.1f} | {e_plain:.5f} |")
    print(f"| halex orbital analysis (energy + PDOS/LDOS + {args.nlumo} virtuals) | {orb:.1f} | "
          f"{res.orbitals.meta['energy_eV']:.5f} |")
    print(f"| halex orbital analysis, cached rerun | {cached:.3f} | |")
    print(f"\n|E_orbitals − E_anchor| = {de:.2e} eV; gap {res.orbitals.gap_eV:.3f} eV; "
          f"orbitals {len(res.orbitals.energies_eV)}; alignment {res.alignment[0]['type']}")
    assert de < 1e-3 and np.isfinite(res.orbitals.gap_eV)


if __name__ == "__main__":
    import sys

    from _results import run_benchmark

    sys.exit(run_benchmark("bench_electronic", main))
