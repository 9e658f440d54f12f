"""Benchmark of a relaxation inside a Dask worker: Dask's default worker environment against halex's.

Dask's nanny starts every worker process with ``MALLOC_TRIM_THRESHOLD_=65536``
(``distributed.nanny.pre-spawn-environ``). halex's local clusters and batch jobs leave it
out (:data:`halex.studies.runner.WORKER_ENV_UNSET`). This script relaxes the same model for
a fixed number of FIRE steps (fmax 0, so every run does the same work) with the default
engine on one PyTorch thread:

1. in this process (no Dask: the reference);
2. in a one-worker ``LocalCluster`` with Dask's default environment (the anchor);
3. in a one-worker cluster started by :func:`halex.studies.runner.connect` (halex's).

It prints the wall time per step and the worker's user and system CPU time. The runs are
one after another on an otherwise idle machine, so they are compared in the same run.

    .venv/bin/python benchmarks/bench_workers.py                    # 282- and 729-atom models
    .venv/bin/python benchmarks/bench_workers.py --steps 20
"""

from __future__ import annotations

import argparse
import os
import resource
import time

#: glibc reads the variable once, when a process starts: this process's value is the one it
#: started with (a Dask nanny later copies its own settings into this process's environment)
TRIM_AT_START = os.environ.get("MALLOC_TRIM_THRESHOLD_")


def _relax_steps(size: tuple[int, int, int], layers: int, steps: int) -> dict:
    """FIRE for ``steps`` steps on the heterostructure; wall per step and this process's CPU times."""
    import torch
    from ase.optimize import FIRE

    from halex.engines import get_engine
    from halex.models import heterostructure

    torch.set_num_threads(1)
    atoms = heterostructure(size, layers)
    atoms.calc = get_engine("mlip").calculator()
    atoms.get_forces()  # model loaded and first call done before the clock starts
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    FIRE(atoms, logfile=None).run(fmax=0.0, steps=steps)
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    return {"atoms": len(atoms), "s_per_step": wall / steps, "user_s": r1.ru_utime - r0.ru_utime,
            "sys_s": r1.ru_stime - r0.ru_stime, "trim": os.environ.get("MALLOC_TRIM_THRESHOLD_")}


def _in_cluster(halex_env: bool, size, layers: int, steps: int) -> dict:
    from distributed import Client, LocalCluster

    from halex.studies.runner import connect

    client = connect(None, 1) if halex_env else Client(LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None))
    try:
        return client.submit(_relax_steps, size, layers, steps, pure=False).result()
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    from halex.studies.runner import quiet_dask

    quiet_dask()
    print(f"FIRE, {args.steps} steps at fmax 0 (fixed work), default engine, one PyTorch thread.\n")
    print("| model | where | MALLOC_TRIM_THRESHOLD_ | s per step | worker user CPU (s) | worker system CPU (s) | vs this process |")
    print("|---|---|---|---|---|---|---|")
    for size, layers in (((3, 3, 3), 1), ((4, 4, 4), 2)):
        ref = {**_relax_steps(size, layers, args.steps), "trim": TRIM_AT_START}
        runs = [("this process (no Dask)", ref),
                ("Dask LocalCluster, Dask's worker environment", _in_cluster(False, size, layers, args.steps)),
                ("halex local cluster (connect)", _in_cluster(True, size, layers, args.steps))]
        for where, r in runs:
            print(f"| {r['atoms']} atoms | {where} | {r['trim'] or 'unset'} | {r['s_per_step']:.3f} | {r['user_s']:.1f} | "
                  f"{r['sys_s']:.1f} | {r['s_per_step'] / ref['s_per_step']:.2f}× |", flush=True)
        print(f"| | halex against Dask's default | | {runs[1][1]['s_per_step'] / runs[2][1]['s_per_step']:.2f}× faster | | | |",
              flush=True)


if __name__ == "__main__":
    import sys

    from _results import run_benchmark

    sys.exit(run_benchmark("bench_workers", main))
