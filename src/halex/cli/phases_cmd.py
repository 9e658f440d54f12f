"""halex phases list | generate: the bulk phase library."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="phases_command", metavar="{list,generate}", required=True)
    sub.add_parser("list", help="every shipped phase: formula, space group (spglib), cell, source, status")
    g = sub.add_parser("generate", help="recompute the generated phases with an engine and write their CIFs")
    g.add_argument("--out", required=True, help="folder for the CIFs")
    g.add_argument("--only", nargs="*", default=None, help="phase names (default: all generated)")
    g.add_argument("--engine", default="mlip")
    g.add_argument("--db", default=None, help="result store for the relaxations (default <out>/phases.db)")


def run(args: argparse.Namespace) -> int:
    from halex.phases import PHASES, load_phase
    from halex.phases.search import space_group

    if args.phases_command == "list":
        print(f"{'name':<14} {'formula':<12} {'space group':<13} {'a':>8} {'b':>8} {'c':>8} {'status':<48} source")
        for name, ph in PHASES.items():
            atoms = load_phase(name)
            a, b, c = atoms.cell.lengths()
            print(f"{name:<14} {atoms.get_chemical_formula(mode='metal'):<12} {space_group(atoms):<13} {a:8.4f} {b:8.4f} {c:8.4f} {ph.status:<48} {ph.source}")
        return 0
    from pathlib import Path

    from halex.errors import InputError
    from halex.phases.generate import GENERATED, generate_phase, write_phase_cif
    from halex.store import ResultStore

    names = args.only or list(GENERATED)
    unknown = [n for n in names if n not in GENERATED]
    if unknown:
        raise InputError(f"cannot generate {', '.join(unknown)}: generated phases are {', '.join(GENERATED)}")
    out = Path(args.out)
    store = ResultStore(args.db or out / "phases.db")
    for n in names:
        atoms, meta = generate_phase(n, engine=args.engine, store=store)
        header = {"halex phase": n, "space group (spglib)": space_group(atoms), **{k: v for k, v in meta.items() if k != "engine"}}
        if "engine" in meta:
            header["engine"] = f"{meta['engine']['name']} ({meta['engine']['version']})"
        path = write_phase_cif(out / PHASES[n].file, atoms, header)
        print(f"{n}: {path} {space_group(atoms)} cell {atoms.cell.lengths().round(4).tolist()}")
    return 0
