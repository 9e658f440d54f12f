"""Cost of rescoring: one energy + forces call with the study engine (CHGNet) and with the
rescoring engines SevenNet-0 and SevenNet-MF-0, on heterostructures of the study sizes, in the
same run, each engine and size in its own process (so peak RSS belongs to it alone).

    .venv/bin/python benchmarks/bench_rescore.py            # 108, 282 and 729 atoms
    .venv/bin/python benchmarks/bench_rescore.py --quick    # 108 and 282 atoms

Rescoring a study costs one such call per relaxed model and per engine (plus the two PbX2
references), against the ~100–400 calls of each relaxation: the last column gives that ratio
for a relaxation of 150 steps.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

ENGINES = ("mlip", "7net-0", "7net-mf-0")
SIZES = {"108": ((2, 2, 2), 1), "282": ((3, 3, 3), 1), "729": ((4, 4, 4), 2)}


def _one(engine: str, size: str, repeats: int) -> dict:
    import torch

    from halex.engines import get_engine
    from halex.models import heterostructure

    torch.set_num_threads(2)
    model = heterostructure(*SIZES[size])
    model.rattle(0.02, seed=0)
    calc = get_engine(engine).calculator()
    times = []
    for i in range(repeats + 1):
        a = model.copy()
        a.positions[0, 0] += 1e-3 * i  # a new structure every call: no calculator cache
        a.calc = calc
        t = time.perf_counter()
        a.get_potential_energy()
        a.get_forces()
        if i:  # the first call warms up
            times.append(time.perf_counter() - t)
    return {"engine": engine, "atoms": len(model), "median_s": statistics.median(times),
            "peak_rss_GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.one:
        print(json.dumps(_one(args.one[0], args.one[1], args.repeats)))
        return
    sizes = ["108", "282"] if args.quick else list(SIZES)
    print("# energy + forces per call, 2 PyTorch threads; ratio against CHGNet measured in the same run\n")
    print("| atoms | engine | s/call (median) | ms/atom | × CHGNet | peak RSS (GB) | rescore / relaxation (150 steps) |")
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        base = None
        for engine in ENGINES:
            out = subprocess.run([sys.executable, __file__, "--one", engine, size, "--repeats", str(args.repeats)],
                                 capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            base = base or r["median_s"]
            print(f"| {r['atoms']} | {engine} | {r['median_s']:.3f} | {1000 * r['median_s'] / r['atoms']:.2f} | "
                  f"{r['median_s'] / base:.2f} | {r['peak_rss_GB']:.2f} | {r['median_s'] / (150 * base):.3f} |", flush=True)


if __name__ == "__main__":
    from _results import run_benchmark

    if "--one" in sys.argv:  # a measurement in its own process, for the parent run
        sys.exit(main())
    sys.exit(run_benchmark("bench_rescore_quick" if "--quick" in sys.argv else "bench_rescore", main, fenced=False))
