"""Benchmark of the exchange studies.

1. ``halex study all`` on a heterostructure with the default engine and the default
   protocol (FIRE, 2 replicas as warm-started chains along every series): wall time, number of
   relaxations, mean optimizer steps per relaxation, cache-hit rerun time; the three
   result tables are printed after the timing table.
2. In the same run, the layers series (N = 1…3 from both ends) once with the new protocol
   and once with the old one (FIRE, every model from its built geometry, 1 replica), each
   into its own fresh store, so the two are timed on the same machine state.
3. One relaxation of a ≈ 2,000-atom heterostructure (perovskite 6×6×6 on 2 chalcohalide
   layers): wall time, steps, time per step.

    .venv/bin/python benchmarks/bench_study.py                      # default model
    .venv/bin/python benchmarks/bench_study.py --size 3 3 3 1       # a smaller model
    .venv/bin/python benchmarks/bench_study.py --skip-large         # without the 2,000-atom relaxation
    .venv/bin/python benchmarks/bench_study.py --size paper --study-only   # the source study's size (44 min on 2 cores)

The results go to ``results/bench_study.md`` for the default model and to
``results/bench_study_<size>.md`` for any other (``bench_study_paper.md`` for ``--size paper``).
``--study-only`` times ``study all`` and its cached rerun alone, without the protocol
comparison and the 2,000-atom relaxation; the conclusions table is printed in every mode.

"wall" is this invocation's wall clock (after a resume it covers only the remaining work);
"relaxation compute, summed" adds the ``wall_s`` every relaxation row records (summed over
interrupted and resumed runs; with 2 workers it is about twice the wall time).

There is no anchor library that runs these studies, so the table reports halex alone;
the per-call cost against CHGNet's own calculator and the optimizer choice are in
bench_protocol.py, the per-relaxation cost against bare ASE in bench_engine.py.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _study_all(size: list[str], workers: int, fmax: str | None, out: Path | None) -> dict:
    out = out or Path(tempfile.mkdtemp(prefix="halex-bench-study-"))
    cmd = [sys.executable, "-m", "halex.cli.main", "-q", "study", "all", "--size", *size, "--workers", str(workers), "-o", str(out),
           "--db", str(out / "halex.db")]
    if fmax:
        cmd += ["--fmax", fmax]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    rerun = time.perf_counter() - t0
    return {"out": out, "wall_s": wall, "rerun_s": rerun, **_store_figures(out / "halex.db")}


def _store_figures(db: Path) -> dict:
    """Relaxations, mean steps, largest model, summed compute and compute per step of the study rows of ``db``."""
    from ase.db import connect

    rows = [r for r in connect(db).select() if str(r.get("label", "")).startswith("study ") and r.get("status") != "running"]
    steps = [r.get("step", 0) for r in rows]
    compute = sum(float(r.get("wall_s", 0.0)) for r in rows)
    return {"relaxations": len(rows), "mean_steps": sum(steps) / max(1, len(steps)), "atoms": max(r.natoms for r in rows),
            "compute_s": compute, "s_per_step": compute / max(1, sum(steps))}


def _layers_series(size: list[str], workers: int, fmax: str | None, old: bool) -> dict:
    """The layers series (N = 1..3, both ends) with the old or the new protocol, in a fresh store."""
    from halex.io import write_structure
    from halex.models import heterostructure

    out = Path(tempfile.mkdtemp(prefix="halex-bench-series-"))
    model = heterostructure() if size == ["default"] else heterostructure(tuple(int(v) for v in size[:3]), int(size[3]))
    write_structure(out / "model.extxyz", model)
    n_pv = int(model.arrays["layer"][model.arrays["domain"] == "perovskite"].max())
    cmd = [sys.executable, "-m", "halex.cli.main", "-q", "study", "layers", "--model", str(out / "model.extxyz"),
           "--max-layers", str(min(3, n_pv)), "--workers", str(workers), "-o", str(out / "study"), "--db", str(out / "halex.db")]
    cmd += ["--cold", "--optimizer", "FIRE", "--replicas", "1"] if old else []
    if fmax:
        cmd += ["--fmax", fmax]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return {"wall_s": time.perf_counter() - t0, **_store_figures(out / "halex.db")}


def _large() -> dict:
    from halex.models import heterostructure
    from halex.relax import relax

    hs = heterostructure((6, 6, 6), 2)
    t0 = time.perf_counter()
    r = relax(hs, "mlip", steps=1000, trajectory=False)
    wall = time.perf_counter() - t0
    return {"atoms": len(hs), "wall_s": wall, "steps": r.nsteps, "s_per_step": wall / max(1, r.nsteps), "converged": r.converged}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", nargs="+", default=["default"])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--fmax", default=None)
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--study-only", action="store_true",
                    help="time study all and its rerun only: no protocol comparison, no 2,000-atom relaxation")
    ap.add_argument("--out", type=Path, default=None,
                    help="output folder (default: a new temporary one); an interrupted benchmark rerun on the same "
                         "folder resumes from the store, so its wall time then covers only the remaining relaxations")
    return ap


def results_name(argv: list[str]) -> str:
    """``bench_study`` for the default model, ``bench_study_<size>`` for any other."""
    size = _parser().parse_known_args(argv)[0].size
    return "bench_study" if size == ["default"] else "bench_study_" + "_".join(size)


def main() -> None:
    args = _parser().parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    s = _study_all(args.size, args.workers, args.fmax, args.out)
    print("| benchmark | atoms | relaxations | mean steps | wall (s) | relaxation compute, summed (s) | compute per step (s) "
          "| rerun, all cached (s) |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| study all --size {' '.join(args.size)} ({args.workers} workers) | {s['atoms']} | {s['relaxations']} | "
          f"{s['mean_steps']:.0f} | {s['wall_s']:.0f} | {s['compute_s']:.0f} | {s['s_per_step']:.2f} | {s['rerun_s']:.0f} |")
    if not args.study_only:
        _compare_protocols(args)
    _print_tables(s["out"])


def _compare_protocols(args: argparse.Namespace) -> None:
    """The layers series with the old and the new protocol, and the 2,000-atom relaxation."""
    print("\n| layers series, same run | relaxations | mean steps | wall (s) | relaxation compute, summed (s) |")
    print("|---|---|---|---|---|")
    series = {}
    protocols = (("old protocol: FIRE, cold starts, 1 replica", True), ("new protocol: FIRE, 2 warm-started replica chains", False))
    for label, old in protocols:
        series[old] = r = _layers_series(args.size, args.workers, args.fmax, old)
        print(f"| {label} | {r['relaxations']} | {r['mean_steps']:.0f} | {r['wall_s']:.0f} | {r['compute_s']:.0f} |", flush=True)
    o, n = series[True], series[False]
    print(f"\nPer relaxation the new protocol takes {o['compute_s'] / o['relaxations'] / (n['compute_s'] / n['relaxations']):.2f}× "
          f"less compute; the series with 2 replicas costs {n['wall_s'] / o['wall_s']:.2f}× the old single-start series' wall time.\n")
    if not args.skip_large:
        big = _large()
        print(f"| one relaxation, perovskite 6x6x6 + 2 layers (converged {big['converged']}) | {big['atoms']} | 1 | "
              f"{big['steps']} | {big['wall_s']:.0f} | {big['wall_s']:.0f} | {big['s_per_step']:.2f} | |")


def _print_tables(out: Path) -> None:
    """The study's conclusions and result tables, as Markdown."""
    tables = ((".", "conclusions"), ("layers", "layers"), ("chalcohalide", "chalcohalide"), ("alloy", "alloy"),
              ("alloy", "alloy_summary"))
    for sub, table in tables:
        print(f"\n## {table}")
        with open(out / sub / f"{table}.csv") as fh:
            for i, row in enumerate(csv.reader(fh)):
                print("| " + " | ".join(f"{float(v):.3f}" if _num(v) and "." in v else v for v in row) + " |")
                if i == 0:
                    print("|" + "---|" * len(row))


def _num(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


if __name__ == "__main__":
    import sys

    from _results import run_benchmark

    sys.exit(run_benchmark(results_name(sys.argv[1:]), main))
