"""Which minimum does each optimizer find, how reproducibly, at what cost, and what does it do to a conclusion?

On a study model (default: perovskite 2×2×2 on 1 chalcohalide layer, 108 atoms, the model
of the study tests; ``--size`` for another) with the default engine, one PyTorch thread,
the default fmax (0.0231 eV/Å): the pristine model, one layer exchanged at the interface,
one at the bottom, and a random 20 % alloy, each relaxed from its built geometry and from
``--starts − 1`` replica starts (every atom displaced by a seeded 0.05 Å Gaussian) with
each ASE optimizer. Per model and optimizer: mean steps, wall time, the lowest energy
relative to the lowest any optimizer found, and the standard deviation over the starts
(the minimum-to-minimum noise a study's replicas sample). Then, from the lowest minima,
the layers study's question ΔE_cum(interface) − ΔE_cum(bottom) (kcal/mol per halide) for
each optimizer: how much the answer depends on the protocol.

    .venv/bin/python benchmarks/bench_minima.py                    # ≈ 15 min on 2 cores
    .venv/bin/python benchmarks/bench_minima.py --size 3 3 3 1 --starts 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _models(size: list[int]) -> dict:
    from halex.models import alloy_perovskite, exchange_interface_monolayer, exchange_layers, heterostructure

    hs = heterostructure(tuple(size[:3]), size[3])
    return {"pristine": hs, "interface-1": exchange_layers(hs, 1), "bottom-1": exchange_layers(hs, 1, start="bottom"),
            "random alloy": alloy_perovskite(exchange_interface_monolayer(hs), 0.2, pattern="random", seed=0)}


def main() -> None:
    import torch

    from halex.relax import OPTIMIZERS, relax
    from halex.studies.starts import replica_start
    from halex.units import EV_KCAL_PER_MOL

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", nargs=4, type=int, default=[2, 2, 2, 1], metavar=("N1", "N2", "N3", "LAYERS"))
    ap.add_argument("--starts", type=int, default=4)
    ap.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS))
    args = ap.parse_args()
    torch.set_num_threads(1)
    models = _models(args.size)
    print(f"Model: heterostructure {args.size[:3]} on {args.size[3]} layer(s), {len(models['pristine'])} atoms; "
          f"{args.starts} starts per model and optimizer; one PyTorch thread.\n")
    print("| model | optimizer | mean steps | wall (s) | lowest − best of all (eV) | SD over starts (eV) | converged |")
    print("|---|---|---|---|---|---|---|")
    found: dict[tuple[str, str], dict] = {}
    for name, model in models.items():
        for opt in args.optimizers:
            t0 = time.perf_counter()
            runs = [relax(replica_start(model, r), optimizer=opt, trajectory=False) for r in range(args.starts)]
            found[(name, opt)] = {"e": np.array([r.energy for r in runs]), "steps": np.mean([r.nsteps for r in runs]),
                                  "wall": time.perf_counter() - t0, "conv": all(r.converged for r in runs)}
        best = min(found[(name, o)]["e"].min() for o in args.optimizers)
        for opt in args.optimizers:
            f = found[(name, opt)]
            print(f"| {name} | {opt} | {f['steps']:.0f} | {f['wall']:.0f} | {f['e'].min() - best:+.3f} | "
                  f"{f['e'].std(ddof=1):.3f} | {f['conv']} |", flush=True)
    x = int((np.array(models["interface-1"].get_chemical_symbols()) == "I").sum())
    print(f"\nΔE_cum(interface-1) − ΔE_cum(bottom-1) from each optimizer's lowest minima ({x} exchanged halides; "
          "the PbX2 references cancel):\n")
    print("| optimizer | interface − bottom (kcal/mol per halide) |\n|---|---|")
    for opt in args.optimizers:
        d = found[("interface-1", opt)]["e"].min() - found[("bottom-1", opt)]["e"].min()
        print(f"| {opt} | {d / x * EV_KCAL_PER_MOL:+.3f} |")


if __name__ == "__main__":
    import sys

    from _results import run_benchmark

    sys.exit(run_benchmark("bench_minima", main))
