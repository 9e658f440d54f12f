"""halex pathway-check -o OUT: the lattice model's mixing energy on a periodic CsPb(Cl,I)3 crystal,
against directly relaxed energies at held-out iodide fractions."""

from __future__ import annotations

import argparse

from halex.cli._common import add_engine_options, output_path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, type=output_path("folder"),
                   help="output folder (mixing_check.csv/.json, mixing_check.png)")
    add_engine_options(p)
    p.add_argument("--supercell", nargs=3, type=int, default=(2, 2, 2), metavar=("NA", "NB", "NC"),
                   help="repeats of the cubic cell (default 2 2 2: 24 halide sites)")
    p.add_argument("--per-fraction", type=int, default=4,
                   help="random training configurations at each of x = 1/8, 3/8, 5/8, 7/8 (default 4)")
    p.add_argument("--heldout-per-fraction", type=int, default=2,
                   help="held-out configurations at each of x = 1/4, 1/2, 3/4 (default 2)")
    p.add_argument("--replicas", type=int, default=2, help="rattled starts per configuration, lowest kept (default 2)")
    p.add_argument("--shells", type=int, default=3, help="pair shells of the lattice model (default 3)")
    p.add_argument("--fmax", type=float, default=0.02, help="relaxation threshold (eV/Å, default 0.02)")


def run(args: argparse.Namespace) -> int:
    from halex.cli._common import make_engine
    from halex.errors import InputError
    from halex.pathway.output import write_mixing_check
    from halex.pathway.periodic import mixing_check
    from halex.store import default_store_url

    if min(args.per_fraction, args.heldout_per_fraction, args.replicas, args.shells) < 1 or not args.fmax > 0:
        raise InputError("--per-fraction, --heldout-per-fraction, --replicas and --shells must be >= 1, --fmax > 0")
    engine = make_engine(args)
    engine.require("energy")
    check = mixing_check(engine, args.db or default_store_url(), supercell=tuple(args.supercell),
                         per_fraction=args.per_fraction, test_per_fraction=args.heldout_per_fraction,
                         replicas=args.replicas, n_shells=args.shells, fmax=args.fmax)
    png = write_mixing_check(check, args.output)
    print(f"CV RMSE {check['cv_rmse_meV_per_halide']:.1f} meV per halide; held-out RMSE "
          f"{check['heldout_rmse_meV_per_halide']:.1f} meV per halide; the lattice model "
          f"{'agrees' if check['agrees'] else 'does NOT agree'} ({check['rule']}); {png}")
    return 0
