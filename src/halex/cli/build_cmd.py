"""halex build nanocrystal ...: atomistic models."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="build_command", metavar="{nanocrystal}", required=True)
    nc = sub.add_parser("nanocrystal", help="CsX-terminated CsPbX3 nanocrystal, charge-neutral")
    nc.add_argument("--halide", default="Cl", help="Cl, Br or I")
    nc.add_argument("--size", nargs=3, default=["3", "3", "3"], metavar=("N1", "N2", "N3"), help="octahedra along x y z")
    nc.add_argument("--a", type=float, default=None, help="Pb-Pb spacing in Å (default: experimental)")
    nc.add_argument("--vacuum", type=float, default=8.0, help="vacuum around the model in Å")
    nc.add_argument("-o", "--output", required=True)


def run(args: argparse.Namespace) -> int:
    from halex.build import perovskite_nanocrystal
    from halex.errors import InputError
    from halex.io import write_structure

    try:
        size = [int(s) for s in args.size]
    except ValueError:
        raise InputError(f"--size must be three integers, got {' '.join(args.size)}") from None
    atoms = perovskite_nanocrystal(size, args.halide, a=args.a, vacuum=args.vacuum)
    write_structure(args.output, atoms)
    print(f"{args.output}: {atoms.get_chemical_formula(mode='metal')} ({len(atoms)} atoms)")
    return 0
