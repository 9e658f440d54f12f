"""Benchmark of the default engine: energy+forces time and peak memory versus
atom count, and one relaxation of the 5×5×5 CsPbCl3 nanocube (775 atoms) to the default
fmax, with halex (store + checkpoint every step + trajectory) against bare ASE FIRE on the
same CHGNet calculator (the anchor: what halex adds on top of ASE).

    .venv/bin/python benchmarks/bench_engine.py            # full table (~10 min on 2 cores)
    .venv/bin/python benchmarks/bench_engine.py --quick    # sizes up to 775 atoms, no relaxation

Each size runs in its own process so that peak RSS (ru_maxrss) belongs to that size alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def _one_size(n: int, repeats: int) -> dict:
    from halex.engines import get_engine
    from halex.models import perovskite_nanocrystal

    eng = get_engine("mlip")
    nc = perovskite_nanocrystal((n, n, n), "Cl")
    nc.rattle(0.02, seed=0)
    calc = eng.calculator()
    times = []
    for i in range(repeats + 1):
        a = nc.copy()
        a.positions[0, 0] += 1e-3 * i  # a new structure every call: no calculator cache
        a.calc = calc
        t = time.perf_counter()
        a.get_potential_energy()
        a.get_forces()
        if i:  # first call warms up
            times.append(time.perf_counter() - t)
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return {"n": n, "atoms": len(nc), "median_s": statistics.median(times), "min_s": min(times), "peak_rss_GB": rss_gb}


def _relax_compare(n: int) -> list[dict]:
    import numpy as np
    from ase.optimize import FIRE

    from halex.engines import get_engine
    from halex.models import perovskite_nanocrystal
    from halex.relax import relax
    from halex.store import ResultStore
    from halex.units import DEFAULT_FMAX

    eng = get_engine("mlip")
    nc = perovskite_nanocrystal((n, n, n), "Cl")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        r = relax(nc, eng, store=ResultStore(os.path.join(d, "b.db")), steps=3000)
        rows.append({"code": "halex.relax (store, checkpoint/step, traj)", "atoms": len(nc), "steps": r.nsteps,
                     "wall_s": time.perf_counter() - t, "converged": r.converged, "energy_eV": r.energy})
    a = nc.copy()
    a.calc = eng.calculator()
    opt = FIRE(a, logfile=None)
    t = time.perf_counter()
    ok = opt.run(fmax=DEFAULT_FMAX, steps=3000)
    rows.append({"code": "ASE FIRE + CHGNetCalculator (anchor)", "atoms": len(nc), "steps": opt.nsteps,
                 "wall_s": time.perf_counter() - t, "converged": bool(ok), "energy_eV": float(a.get_potential_energy())})
    del np
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    p.add_argument("--relax-one", type=int, help=argparse.SUPPRESS)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.one:
        print(json.dumps(_one_size(args.one, args.repeats)))
        return
    if args.relax_one:
        print(json.dumps(_relax_compare(args.relax_one)))
        return

    sizes = [2, 3, 4, 5] if args.quick else [2, 3, 4, 5, 6, 7, 8]
    print(f"# halex engine benchmark: mlip (CHGNet), {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}")
    print(f"{'NC':>6} {'atoms':>6} {'E+F median (s)':>15} {'min (s)':>8} {'peak RSS (GB)':>14} {'ms/atom':>8}")
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--repeats", str(args.repeats)],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{n}x{n}x{n:<2} {r['atoms']:>6} {r['median_s']:>15.3f} {r['min_s']:>8.3f} {r['peak_rss_GB']:>14.2f} "
              f"{1000 * r['median_s'] / r['atoms']:>8.2f}", flush=True)
    if args.quick:
        return
    print("\n# relaxation of the 5x5x5 CsPbCl3 nanocube to fmax = 4.5e-4 Ha/Bohr (0.0231 eV/Å), FIRE")
    out = subprocess.run([sys.executable, __file__, "--relax-one", "5"], capture_output=True, text=True, check=True).stdout
    rows = json.loads(out.strip().splitlines()[-1])
    print(f"{'code':<45} {'atoms':>6} {'steps':>6} {'wall (s)':>9} {'s/step':>7} {'converged':>9} {'E (eV)':>14}")
    for r in rows:
        print(f"{r['code']:<45} {r['atoms']:>6} {r['steps']:>6} {r['wall_s']:>9.1f} {r['wall_s'] / max(r['steps'], 1):>7.3f} "
              f"{str(r['converged']):>9} {r['energy_eV']:>14.4f}")


if __name__ == "__main__":
    import sys

    from _results import run_benchmark

    if {"--one", "--relax-one"} & set(sys.argv):  # a measurement in its own process, for the parent run
        sys.exit(main())
    sys.exit(run_benchmark("bench_engine_quick" if "--quick" in sys.argv else "bench_engine", main, fenced=True))
