"""halex energy MODEL: single-point energy (eV) and max force (eV/Å), cached."""

from __future__ import annotations

import argparse

from halex.cli._common import add_engine_options, add_json_option, add_yes_option, make_engine, open_store, plan, report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="structure file")
    p.add_argument("--label", default=None)
    add_engine_options(p)
    add_json_option(p)
    add_yes_option(p)


def run(args: argparse.Namespace) -> int:
    from halex.io import read_structure
    from halex.relax import single_point

    atoms = read_structure(args.model)
    engine = make_engine(args)
    engine.check(atoms)
    plan(args, engine, atoms, what=f"single point of {len(atoms)} atoms", calls=1)
    r = single_point(atoms, engine, store=open_store(args.db), label=args.label or args.model)
    data = {"row_id": r.row_id, "energy_eV": r.energy, "fmax_eV_per_A": r.fmax, "cached": r.cached,
            "engine": r.engine["name"], "engine_version": r.engine["version"]}
    report(args, data, [f"{args.model}: E = {r.energy:.6f} eV, largest force {r.fmax:.4f} eV/Å "
                        f"({r.engine['name']}; row {r.row_id}{', from the store' if r.cached else ''})"])
    return 0
