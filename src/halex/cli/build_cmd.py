"""halex build nanocrystal | heterostructure: atomistic models."""

from __future__ import annotations

import argparse

from halex.cli._common import output_path

# The shipped Pb4S3X2 phases of halex.phases.PHASES, written out so that building the parser does not
# import ASE (tests/test_phases.py checks that the two lists agree).
CHALCOHALIDE_PHASES = ["Pb4S3Cl2", "Pb4S3Cl2-provisional", "Pb4S3I2"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="build_command", metavar="{nanocrystal,heterostructure}", required=True)
    nc = sub.add_parser("nanocrystal", help="CsX-terminated CsPbX3 nanocrystal, charge-neutral")
    nc.add_argument("--halide", default="Cl", help="Cl, Br or I")
    nc.add_argument("--size", nargs=3, default=["3", "3", "3"], metavar=("N1", "N2", "N3"), help="octahedra along x y z")
    nc.add_argument("--a", type=float, default=None, help="Pb-Pb spacing in Å (default: experimental)")
    nc.add_argument("--vacuum", type=float, default=8.0, help="vacuum around the model in Å")
    nc.add_argument("-o", "--output", required=True, type=output_path("structure"))

    hs = sub.add_parser("heterostructure", help="CsPbX3 nanocrystal on a Pb4S3X2 slab (lattice-matched, charge-neutral)")
    hs.add_argument("--perovskite", nargs=3, default=["4", "4", "4"], metavar=("N1", "N2", "N3"),
                    help="perovskite octahedra along x y z, z away from the interface (default 4 4 4)")
    hs.add_argument("--chalcohalide", nargs="+", default=["2"], metavar="N",
                    help="chalcohalide size: LAYERS (half stacking periods, ≈7.7 Å each), or M1 M2 LAYERS with the "
                         "footprint in perovskite cells (default 2: the perovskite's footprint, 2 layers)")
    hs.add_argument("--halide", default="Cl", help="perovskite halide (default Cl)")
    which = hs.add_mutually_exclusive_group()
    which.add_argument("--chalcohalide-phase", default="Pb4S3Cl2", choices=CHALCOHALIDE_PHASES,
                       help="shipped Pb4S3X2 phase (default Pb4S3Cl2: the search protocol validated on Pb4S3I2; "
                            "Pb4S3Cl2-provisional: the earlier search without dispersion, see docs/phases.md)")
    which.add_argument("--chalcohalide-cif", default=None, help="use this Pb4S3X2 CIF instead of a shipped phase")
    hs.add_argument("--a", type=float, default=None, help="perovskite Pb-Pb spacing in Å (default: experimental)")
    hs.add_argument("--incoherent", action="store_true", help="do not strain the chalcohalide onto the perovskite lattice")
    hs.add_argument("--vacuum", type=float, default=8.0, help="vacuum around the model in Å")
    hs.add_argument("-o", "--output", required=True, type=output_path("structure"))


def _ints(values: list[str], option: str, counts: tuple[int, ...]) -> list[int]:
    from halex.errors import InputError

    try:
        out = [int(v) for v in values]
    except ValueError:
        raise InputError(f"{option} takes integers, got {' '.join(values)}") from None
    if len(out) not in counts:
        raise InputError(f"{option} takes {' or '.join(map(str, counts))} integers, got {len(out)}")
    return out


def run(args: argparse.Namespace) -> int:
    from halex.io import write_structure

    if args.build_command == "nanocrystal":
        from halex.models import perovskite_nanocrystal

        atoms = perovskite_nanocrystal(_ints(args.size, "--size", (3,)), args.halide, a=args.a, vacuum=args.vacuum)
    else:
        import json

        from halex.models import heterostructure

        size = _ints(args.perovskite, "--perovskite", (3,))
        ch = _ints(args.chalcohalide, "--chalcohalide", (1, 3))
        atoms = heterostructure(size, ch[-1], halide=args.halide, chalcohalide=args.chalcohalide_cif or args.chalcohalide_phase,
                                lateral=ch[:2] if len(ch) == 3 else None, a=args.a, coherent=not args.incoherent,
                                vacuum=args.vacuum)
        rep = json.loads(atoms.info["epitaxy"])
        print(f"epitaxy: perovskite {rep['perovskite_supercell_A']} on chalcohalide {rep['face']} face "
              f"{rep['chalcohalide_supercell_A']} (rotation {rep['rotation_deg']}°)")
        print(f"mismatch (a_pv - a_ch)/a_pv: {rep['mismatch_percent']} %; applied strain {rep['applied_strain_percent']} %")
        print(f"cation registry rms {rep['registry_rms_A']:.2f} Å, closest interface contact {rep['min_interface_distance_A']:.2f} Å, "
              f"removed for neutrality {rep['removed_for_neutrality']}")
        if "provisional" in atoms.info:
            print(f"note: {atoms.info['provisional']}")
    write_structure(args.output, atoms)
    print(f"{args.output}: {atoms.get_chemical_formula(mode='metal')} ({len(atoms)} atoms)")
    return 0
