"""Choose the studies' relaxation protocol by measurement on the studies' own models.

On the default ``study all`` model (``halex build heterostructure``: perovskite 4×4×4 on
2 chalcohalide layers, 729 atoms) with the default engine, one PyTorch thread (as in a
study worker):

1. Cost of one energy + forces call: halex's calculator (energy and forces only) against
   CHGNet's own ``CHGNetCalculator`` default (energy, forces, stress and magnetic moments),
   same structure, same run.
2. Relaxations to the default fmax (0.0231 eV/Å) with FIRE (the old protocol), FIRE2 and
   LBFGS (ASE): the pristine model from the built geometry (cold), and the first
   exchange step of the layers study (1 layer from the interface) cold and warm (from the
   pristine model relaxed with the same optimizer, species swapped); a warm start with the
   replica displacement (0.05 Å) gives the cost of one extra replica.

    .venv/bin/python benchmarks/bench_protocol.py              # ≈ 40 min on 2 cores
    .venv/bin/python benchmarks/bench_protocol.py --size 3 3 3 1   # a smaller model

The table gives steps, wall time, time per step and the final energy; the energy of a
warm start is compared with the cold start of the same model and optimizer.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np


def _call_cost(atoms, engine, repeats: int = 5) -> tuple[float, float]:
    """Mean seconds per call: halex's calculator ("ef") and CHGNet's default task ("efsm")."""
    from chgnet.model.dynamics import CHGNetCalculator

    ours = engine.calculator()
    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet's "will run on cpu" line
        theirs = CHGNetCalculator(model=engine._load(), use_device="cpu", on_isolated_atoms="ignore")
    rng = np.random.default_rng(0)
    times = {}
    for label, calc in (("ef", ours), ("efsm", theirs)):
        work = atoms.copy()
        work.calc = calc
        work.get_forces()  # warm-up
        t0 = time.perf_counter()
        for _ in range(repeats):
            work.positions += rng.normal(0, 1e-3, work.positions.shape)
            work.get_forces()
            work.get_potential_energy()
        times[label] = (time.perf_counter() - t0) / repeats
    return times["ef"], times["efsm"]


def _run(label: str, atoms, engine, optimizer: str) -> dict:
    from halex.relax import relax

    t0 = time.perf_counter()
    r = relax(atoms, engine, optimizer=optimizer, steps=1000, trajectory=False)
    wall = time.perf_counter() - t0
    row = {"run": label, "optimizer": optimizer, "steps": r.nsteps, "wall_s": wall, "s_per_step": wall / max(1, r.nsteps),
           "energy": r.energy, "converged": r.converged, "atoms": r.atoms}
    print(f"| {label} | {optimizer} | {r.nsteps} | {wall:.0f} | {row['s_per_step']:.2f} | {r.energy:.4f} | "
          f"{r.converged} |", flush=True)
    return row


def main() -> None:
    import torch

    from halex.engines import get_engine
    from halex.models import exchange_layers, heterostructure
    from halex.studies.starts import replica_start, warm_start

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", nargs=4, type=int, default=[4, 4, 4, 2], metavar=("N1", "N2", "N3", "LAYERS"))
    ap.add_argument("--optimizers", nargs="+", default=["FIRE", "FIRE2", "LBFGS"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    engine = get_engine("mlip")
    pristine = heterostructure(tuple(args.size[:3]), args.size[3])
    step1 = exchange_layers(pristine, 1, start="interface")
    print(f"Model: heterostructure {args.size[:3]} on {args.size[3]} layers, {len(pristine)} atoms; one PyTorch thread.\n")
    ef, efsm = _call_cost(pristine, engine)
    print("| calculator | s per energy + forces call | ratio |\n|---|---|---|")
    print(f"| CHGNetCalculator default (energy, forces, stress, magmoms) | {efsm:.3f} | 1.00 |")
    print(f"| halex mlip engine (energy, forces) | {ef:.3f} | {efsm / ef:.2f}× faster |\n", flush=True)
    print("| run | optimizer | steps | wall (s) | s per step | final energy (eV) | converged |\n|---|---|---|---|---|---|---|")
    rows = {}
    for opt in args.optimizers:
        rows[("pristine", opt)] = p = _run("pristine, cold", pristine, engine, opt)
        rows[("warm", opt)] = _run("interface-1, warm from pristine", warm_start(step1, p["atoms"]), engine, opt)
    for opt in args.optimizers:
        rows[("cold", opt)] = _run("interface-1, cold", step1, engine, opt)
    best = args.optimizers[1] if len(args.optimizers) > 1 else args.optimizers[0]
    start = replica_start(warm_start(step1, rows[("pristine", best)]["atoms"]), 1)
    rows[("replica", best)] = _run("interface-1, warm + replica displacement", start, engine, best)
    print("\n| optimizer | interface-1: warm − cold energy (eV) | warm steps / cold steps |\n|---|---|---|")
    for opt in args.optimizers:
        w, c = rows[("warm", opt)], rows[("cold", opt)]
        print(f"| {opt} | {w['energy'] - c['energy']:+.4f} | {w['steps']} / {c['steps']} |")
    e = {opt: rows[("cold", opt)]["energy"] for opt in args.optimizers}
    print("\nCold interface-1 energies relative to FIRE (eV): "
          + ", ".join(f"{k} {v - e.get('FIRE', v):+.4f}" for k, v in e.items()))


if __name__ == "__main__":
    import sys

    from _results import run_benchmark

    sys.exit(run_benchmark("bench_protocol", main))
