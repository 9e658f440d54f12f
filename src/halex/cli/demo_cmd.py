"""halex demo: bulk lattice constants and a relaxed nanocrystal on the default engine."""

from __future__ import annotations

import argparse

from halex.cli._common import output_path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default="demo-output", type=output_path("folder"), help="output folder (default demo-output/)")
    p.add_argument("--engine", default="mlip", help="engine (default mlip)")
    p.add_argument("--size", nargs=3, type=int, default=[3, 3, 3], metavar=("N1", "N2", "N3"), help="nanocrystal size in octahedra")


def run(args: argparse.Namespace) -> int:
    from halex.demo import run_demo

    summary = run_demo(args.output, engine=args.engine, size=tuple(args.size))
    bulk = summary["bulk"]
    for name, b in bulk.items():
        print(f"{name:8s} a = {b['a_A']:.3f} Å  (experiment {b['a_exp_A']:.3f} Å, {b['deviation_percent']:+.1f} %)")
    nc = summary["nanocrystal"]
    print(f"NC {nc['formula']} ({nc['natoms']} atoms): E = {nc['energy_eV']:.4f} eV, fmax = {nc['fmax_eV_per_A']:.4f} eV/Å, "
          f"{nc['steps']} steps, converged={nc['converged']}, mean Pb–Pb = {nc['pb_pb_mean_A']:.3f} Å")
    print(f"files: {args.output}/summary.json, relaxation.png, pb_pb_distances.png, nc_relaxed.extxyz, halex.db")
    return 0
