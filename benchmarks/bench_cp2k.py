"""CP2K settings benchmark: SCF steps and seconds per force call, the previous settings against
the current ones, in the same run, for a ~40-atom and a ~100-atom heterostructure.

    .venv/bin/python benchmarks/bench_cp2k.py                      # 43 and 108 atoms, 400 Ry (hours on 2 cores)
    .venv/bin/python benchmarks/bench_cp2k.py --cutoff 150 --sizes 43   # the reduced run of the results file
    .venv/bin/python benchmarks/bench_cp2k.py --cutoff 150 --sizes 108 --cache cp2k108.json   # resumable
    .venv/bin/python benchmarks/bench_cp2k.py --cutoff 150 --sizes 108 --cache cp2k108.json --variants box=extent

``--cache FILE`` keeps each finished settings' two calls (with the date they were timed) in a
JSON file, written atomically after each; a rerun with the same file computes only the
settings not yet in it, so a run of hours survives an interruption. Rows taken from the
cache say when they were timed: compare settings timed under the same conditions.
``--variants`` computes only some settings, to fill the cache a piece at a time; such a
partial run prints its table but leaves ``results/bench_cp2k.md`` alone.

For each model and settings the engine's own calculator makes two force calls in one run
directory, as a relaxation does: the start geometry (atomic guess), then the geometry moved
by a seeded 0.02 Å rattle (wavefunction restart from the first call). Reported per call:
SCF (OT) steps, seconds, and the energy, so that the settings can be seen to reach the
same state. Previous (halex ≤ 0.1): 50 OT steps per outer SCF cycle. Current defaults: 20
(a stalled DIIS restarts sooner, with a fresh preconditioner). Both compute the model in a
cube of its longest cell edge (the builders put 8 Å of vacuum around it). ``box=extent``:
the current defaults in a cube of the atoms' extent + 2 × 7 Å instead.
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import keep_cache, read_cache, run_benchmark  # noqa: E402

SIZES = {43: ((2, 1, 1), 1), 108: ((2, 2, 2), 1)}
#: the chalcohalide of the timed models (the default when the results were measured; the
#: cache is keyed by atom count, and 1-layer models of both Pb4S3Cl2 phases have the same count)
CHALCOHALIDE = "Pb4S3Cl2-provisional"
#: settings compared, in order: halex ≤ 0.1, the current defaults, the smaller box
VARIANTS = {"previous (max_scf 50)": {"max_scf": 50}, "current defaults": {}, "box=extent": {"box": "extent"}}
_OT = re.compile(r"^\s+\d+ OT (?:DIIS|CG|LS|SD)", re.M)


def _calls(atoms, settings: dict, ranks: int, workdir: Path) -> list[dict]:
    """Two force calls in one directory; SCF steps, seconds and energy of each."""
    from halex.engines import get_engine
    from halex.engines.cp2k import Cp2kProfile

    eng = get_engine("cp2k", profile=Cp2kProfile(mpi_ranks=ranks, threads=1), **settings)
    out = []
    second = atoms.copy()
    second.rattle(0.02, seed=1)
    for a in (atoms.copy(), second):
        a.calc = eng.calculator(workdir)
        t = time.perf_counter()
        energy = a.get_potential_energy()
        a.get_forces()
        dt = time.perf_counter() - t
        text = (workdir / "cp2k.out").read_text(errors="replace")  # rewritten by every call
        out.append({"seconds": dt, "scf_steps": len(_OT.findall(text)), "energy_eV": energy})
    return out


def main(argv: list[str] | None = None) -> None:
    from halex.engines import get_engine
    from halex.engines.cp2k.template import box_for
    from halex.models import heterostructure

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", type=int, default=sorted(SIZES), choices=sorted(SIZES))
    p.add_argument("--cutoff", type=float, default=400.0, help="plane-wave cutoff, Ry (default 400, the reference)")
    p.add_argument("--ranks", type=int, default=2, help="MPI ranks (default 2)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="SETTINGS",
                   help=f"settings to compute, in this order (default: all, {', '.join(VARIANTS)}); with --cache, "
                        "a later run adds the others")
    p.add_argument("--cache", type=Path, default=None,
                   help="JSON file keeping each finished settings' calls, so that a rerun resumes (see above)")
    args = p.parse_args(argv)
    done = read_cache(args.cache)
    rel = 60.0 if args.cutoff >= 300 else 30.0
    print(f"CP2K PBE/DZVP-MOLOPT-SR-GTH, cutoff {args.cutoff:g} Ry, REL_CUTOFF {rel:g} Ry, {args.ranks} MPI ranks × 1 thread\n")
    print("| atoms | settings | box edge Å | call | SCF steps | s per call | s per SCF step | E (eV) |")
    print("|---|---|---|---|---|---|---|---|")
    totals = {}
    for n in args.sizes:
        model = heterostructure(*SIZES[n], chalcohalide=CHALCOHALIDE)
        for label in args.variants:
            extra = VARIANTS[label]
            settings = {"cutoff_ry": args.cutoff, "rel_cutoff_ry": rel, **extra}
            eng = get_engine("cp2k", **settings)
            edge = box_for(model, eng.settings["vacuum"], eng.settings["box"])[0][0]
            key = f"{len(model)} atoms, {args.cutoff:g} Ry, {args.ranks} ranks: {label}"
            if key not in done:
                with tempfile.TemporaryDirectory(prefix="halex-bench-cp2k-") as tmp:
                    calls = _calls(model, settings, args.ranks, Path(tmp))
                done[key] = {"timed": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                             "calls": calls}
                keep_cache(args.cache, done)
            calls = done[key]["calls"]
            when = f" (timed {done[key]['timed']})" if args.cache is not None else ""
            for i, c in enumerate(calls, 1):
                print(f"| {len(model)} | {label}{when} | {edge:.1f} | {i} | {c['scf_steps']} | {c['seconds']:.1f} | "
                      f"{c['seconds'] / max(1, c['scf_steps']):.2f} | {c['energy_eV']:.5f} |", flush=True)
            totals[(n, label)] = sum(c["seconds"] for c in calls)
    print()
    first = next(iter(VARIANTS))
    for n in args.sizes:
        for label in [v for v in args.variants if v != first and first in args.variants]:
            print(f"{n} atoms, two force calls: {first} {totals[(n, first)]:.0f} s, {label} {totals[(n, label)]:.0f} s: "
                  f"{totals[(n, first)] / totals[(n, label)]:.2f}× faster")


if __name__ == "__main__":
    if "--variants" in sys.argv:  # a partial run only fills the cache: the results file holds whole runs
        main()
    else:
        run_benchmark("bench_cp2k", main)
