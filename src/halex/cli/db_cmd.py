"""halex db list | show ID: what has been computed."""

from __future__ import annotations

import argparse
import json

from halex.cli._common import output_path


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="db_command", metavar="{list,show}", required=True)
    lp = sub.add_parser("list", help="one line per stored result")
    lp.add_argument("selection", nargs="?", default=None, help="ase.db selection, e.g. 'engine=mlip,converged=1'")
    lp.add_argument("--db", default=None, help="result store (default $HALEX_DB, else ./halex.db)")
    lp.add_argument("--all", action="store_true", help="include running checkpoints")
    sp = sub.add_parser("show", help="everything stored for one row")
    sp.add_argument("id", help="row id (see db list)")
    sp.add_argument("--db", default=None, help="result store (default $HALEX_DB, else ./halex.db)")
    sp.add_argument("-o", "--output", type=output_path("structure"), help="export the row's structure (extxyz keeps per-atom arrays)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from halex.errors import StoreError
    from halex.store import ResultStore, default_store_url

    args.db = args.db or default_store_url()

    if "://" not in args.db and not Path(args.db).is_file():
        raise StoreError(f"no result store at {args.db!r}: run a computation first or give --db")
    store = ResultStore(args.db)
    if args.db_command == "list":
        rows = store.rows(args.selection) if args.selection else store.rows()
        header = (f"{'id':>4} {'status':<8} {'task':<7} {'engine':<7} {'formula':<18} {'natoms':>6} {'energy/eV':>15} "
                  f"{'fmax':>8} {'steps':>5} {'conv':>4}  label")
        print(header)
        hidden = 0
        for r in rows:
            if r.get("status") != "done" and not args.all:
                hidden += 1
                continue
            energy = f"{r.energy:15.6f}" if r.get("energy") is not None else f"{'-':>15}"
            print(
                f"{r.id:>4} {r.get('status', '?'):<8} {r.get('task', '?'):<7} {r.get('engine', '?'):<7} {r.formula:<18} "
                f"{r.natoms:>6} {energy} {r.get('fmax_final', float('nan')):8.4f} {r.get('step', 0):>5} "
                f"{'yes' if r.get('converged') else 'no':>4}  {r.get('label', '')}"
            )
        if hidden:
            import sys

            print(f"({hidden} unfinished row{'s' if hidden > 1 else ''} hidden: checkpoints of relaxations that are "
                  "running or were interrupted, which rerunning their command resumes; 'halex db list --all' shows them)",
                  file=sys.stderr)
        elif not rows:
            import sys

            print(f"(the store {args.db} holds no results yet)", file=sys.stderr)
        return 0
    row = store.get_row(args.id)
    data = row.data
    out = {
        "id": row.id,
        "formula": row.formula,
        "natoms": row.natoms,
        "pbc": [bool(x) for x in row.pbc],
        "energy_eV": row.get("energy"),
        **{k: v for k, v in row.key_value_pairs.items()},
        "engine": data.get("engine"),
        "task": data.get("task"),
        "per_atom_arrays": sorted(data.get("arrays", {})),
        "trajectory": data.get("trajectory"),
        "ctime": row.ctime,
    }
    print(json.dumps(out, indent=1, default=str))
    if args.output:
        from halex.io import write_structure

        write_structure(args.output, store.to_atoms(row))
    return 0
