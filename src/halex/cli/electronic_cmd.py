"""halex electronic MODEL -o OUT: frontier orbitals per domain and band alignment (CP2K)."""

from __future__ import annotations

import argparse
from pathlib import Path

from halex.cli._common import add_engine_options, add_json_option, add_yes_option, make_engine, open_store, output_path, plan, report


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_json_option(p)
    add_yes_option(p)
    p.add_argument("model", help="halex model (extxyz with the domain/layer arrays), relaxed or not")
    p.add_argument("-o", "--output", required=True, type=output_path("folder"),
                   help="output folder (orbitals.csv, alignment.csv, summary.json, figure)")
    p.add_argument("--nlumo", type=int, default=20, help="virtual orbitals to compute (default 20)")
    p.add_argument("--threshold", type=float, default=0.4,
                   help="fraction on a domain that makes an orbital an edge candidate of that domain (default 0.4)")
    p.add_argument("--localised", type=float, default=0.6,
                   help="fraction on one domain for the HOMO/LUMO to count as localised there (default 0.6)")
    p.add_argument("--tol", type=float, default=0.1, help="band offset (eV) below which a carrier is shared: quasi-type-II (default 0.1)")
    p.add_argument("--window", type=float, default=3.0, help="figure range around the gap, eV (default 3)")
    add_engine_options(p)
    p.set_defaults(engine="cp2k")
    for a in p._actions:
        if a.dest == "engine":
            a.help = "engine name: cp2k (default; the MLIP engine has no orbitals)"


def run(args: argparse.Namespace) -> int:
    from halex.errors import InputError
    from halex.io import read_structure
    from halex.studies.electronic import orbital_analysis, write_orbitals

    if Path(args.output).is_file():
        raise InputError(f"output {args.output!r} is a file: give a folder")
    if not args.window > 0:
        raise InputError(f"--window must be positive (eV), got {args.window}")
    atoms = read_structure(args.model)
    engine = make_engine(args)
    engine.require("orbitals")
    engine.check(atoms)
    plan(args, engine, atoms, what=f"orbital analysis of {len(atoms)} atoms", calls=1)
    res = orbital_analysis(
        atoms,
        engine,
        store=open_store(args.db),
        nlumo=args.nlumo,
        threshold=args.threshold,
        localised=args.localised,
        tol_eV=args.tol,
        label=args.model,
    )
    write_orbitals(res, args.output, window_eV=args.window)
    f = res.frontier
    data = {"output": str(args.output), "gap_eV": f["gap_eV"], "homo_domain": f["homo_domain"],
            "lumo_domain": f["lumo_domain"], "homo_lumo_type": f["type"],
            "alignment": {f"{r['domain_a']}/{r['domain_b']}": r["type"] for r in res.alignment},
            "cached": res.cached, "row_id": res.row_id}
    lines = [f"HOMO–LUMO gap {f['gap_eV']:.3f} eV; HOMO on {f['homo_domain']}, LUMO on {f['lumo_domain']}: {f['type']}"]
    lines += [f"{r['domain_a']} / {r['domain_b']}: {r['type']} (hole in {r['hole_in']}, electron in {r['electron_in']})"
              for r in res.alignment]
    lines.append(f"wrote {args.output}/ (orbitals.csv, alignment.csv, summary.json, orbitals.png)"
                 f"{'; orbitals from the store' if res.cached else ''}")
    report(args, data, lines)
    return 0
