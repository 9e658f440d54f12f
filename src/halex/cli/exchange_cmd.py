"""halex exchange MODEL ... -o OUT: Cl→I exchange operations (SPEC §3).

Several operations may be combined in one call; they are applied in the order
--layers, --interface-monolayer, --chalcohalide-layers, --alloy.
"""

from __future__ import annotations

import argparse
import contextlib
import re

from halex.cli._common import output_path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model with domain/layer/role arrays (extxyz)")
    p.add_argument("-o", "--output", required=True, type=output_path("structure"), help="exchanged model (extxyz)")
    p.add_argument("--layers", type=int, default=None, help="exchange all halides of N perovskite layers")
    p.add_argument("--from", dest="start", default="interface", choices=["interface", "bottom"], help="count --layers from here")
    p.add_argument("--interface-monolayer", action="store_true", help="exchange the interfacial CsX monolayer (layer 0)")
    p.add_argument("--chalcohalide-layers", type=int, default=None, help="exchange in the first K chalcohalide layers ...")
    p.add_argument("--fraction", type=float, default=None, help="... this fraction of their halides (0-1)")
    p.add_argument("--exact", action="store_true", help="refuse fractions that need rounding instead of rounding them")
    p.add_argument(
        "--alloy",
        type=float,
        default=None,
        metavar="FRACTION",
        help="exchange this fraction of the perovskite's remaining halide",
    )
    p.add_argument(
        "--pattern", default="random", help="alloy pattern: random, csi-perpendicular, csi-parallel, pbi2-perpendicular"
    )
    p.add_argument("--axis", default="x", choices=["x", "y"], help="normal of the perpendicular planes")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--source", default="Cl", help="halide replaced (default Cl)")
    p.add_argument("--target", default="I", help="halide put in (default I)")


@contextlib.contextmanager
def _as_option(**names: str):
    """Errors of the model functions name their parameters; on the command line, name the options."""
    from halex.errors import InputError

    try:
        yield
    except InputError as exc:
        text = str(exc)
        for param, option in names.items():
            text = re.sub(rf"\b{param}\b", option, text)
        raise InputError(text) from None


def run(args: argparse.Namespace) -> int:
    from halex.errors import InputError
    from halex.io import read_structure, write_structure
    from halex.models import (
        alloy_perovskite,
        exchange_chalcohalide_layers,
        exchange_interface_monolayer,
        exchange_layers,
        exchange_log,
    )

    if args.layers is None and not args.interface_monolayer and args.chalcohalide_layers is None and args.alloy is None:
        raise InputError("nothing to do: give --layers, --interface-monolayer, --chalcohalide-layers or --alloy")
    if (args.chalcohalide_layers is None) != (args.fraction is None):
        raise InputError("--chalcohalide-layers and --fraction go together")
    atoms = read_structure(args.model)
    n_before = len(exchange_log(atoms))
    kw = {"source": args.source, "target": args.target}
    if args.layers is not None:
        with _as_option(n_layers="--layers", start="--from"):
            atoms = exchange_layers(atoms, args.layers, start=args.start, **kw)
    if args.interface_monolayer:
        atoms = exchange_interface_monolayer(atoms, **kw)
    if args.chalcohalide_layers is not None:
        with _as_option(n_layers="--chalcohalide-layers", fraction="--fraction"):
            atoms = exchange_chalcohalide_layers(atoms, args.chalcohalide_layers, args.fraction, seed=args.seed,
                                                 exact=args.exact, **kw)
    if args.alloy is not None:
        with _as_option(fraction="--alloy", pattern="--pattern", axis="--axis"):
            atoms = alloy_perovskite(atoms, args.alloy, pattern=args.pattern, seed=args.seed, axis="xy".index(args.axis),
                                     **kw)
    write_structure(args.output, atoms)
    for e in exchange_log(atoms)[n_before:]:
        extra = f", achieved fraction {e['achieved_fraction']:.3f}" if "achieved_fraction" in e else ""
        print(f"{e['operation']}: {e['count']} {e['source']} -> {e['target']}{extra}")
    print(f"{args.output}: {atoms.get_chemical_formula(mode='metal')}")
    return 0
