"""halex relax MODEL [-o OUT]: relax with an engine; progress on stderr; result stored."""

from __future__ import annotations

import argparse

from halex.cli._common import (
    TYPICAL_STEPS,
    add_engine_options,
    add_json_option,
    add_yes_option,
    make_engine,
    open_store,
    output_path,
    plan,
    report,
)
from halex.units import DEFAULT_FMAX


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_json_option(p)
    add_yes_option(p)
    p.add_argument("model", help="structure file (extxyz, cif, POSCAR, traj)")
    p.add_argument("-o", "--output", type=output_path("structure"),
                   help="write the relaxed structure here (extxyz keeps domain/layer/role)")
    p.add_argument("--fmax", default=str(DEFAULT_FMAX), help=f"max residual force in eV/Å (default {DEFAULT_FMAX:.4f} = 4.5e-4 Ha/Bohr)")
    p.add_argument("--optimizer", default="FIRE", help="FIRE (default), FIRE2, BFGS, LBFGS or BFGSLineSearch")
    p.add_argument("--steps", default="1000", help="maximum optimizer steps (default 1000)")
    p.add_argument("--fix", default=None, help="atoms to hold fixed: comma-separated indices or 'layer:N,M' or 'domain:NAME'")
    p.add_argument("--cell", action="store_true", help="relax the cell too (periodic structures)")
    p.add_argument("--symmetry", action="store_true", help="keep the start structure's space group (ASE FixSymmetry)")
    p.add_argument("--label", default=None, help="label stored with the result")
    p.add_argument("--checkpoint-interval", type=int, default=1, help="checkpoint every N steps (default 1)")
    add_engine_options(p)


def parse_fix(spec: str | None, atoms):
    import numpy as np

    from halex.errors import InputError

    if not spec:
        return None
    if spec.startswith(("layer:", "domain:")):
        name, values = spec.split(":", 1)
        if name not in atoms.arrays:
            raise InputError(f"--fix {spec!r}: the model has no per-atom array {name!r}")
        wanted = [v.strip() for v in values.split(",") if v.strip()]
        arr = atoms.arrays[name]
        if name == "layer":
            try:
                wanted = [int(v) for v in wanted]
            except ValueError:
                raise InputError(f"--fix {spec!r}: layers must be integers") from None
        return np.isin(arr, wanted)
    try:
        return np.array([int(v) for v in spec.split(",") if v.strip()], dtype=int)
    except ValueError:
        raise InputError(f"--fix {spec!r}: give comma-separated atom indices, 'layer:1,2' or 'domain:chalcohalide'") from None


def run(args: argparse.Namespace) -> int:
    from halex.checks import check_fmax
    from halex.errors import InputError
    from halex.io import read_structure, write_structure
    from halex.relax import relax

    fmax = check_fmax(args.fmax)
    try:
        steps = int(args.steps)
    except ValueError:
        raise InputError(f"--steps must be an integer, got {args.steps!r}") from None
    atoms = read_structure(args.model)
    engine = make_engine(args)
    engine.check(atoms)
    plan(args, engine, atoms, what=f"relaxation of {len(atoms)} atoms", calls=min(steps, TYPICAL_STEPS) + 1)
    store = open_store(args.db)
    result = relax(
        atoms,
        engine,
        fmax=fmax,
        optimizer=args.optimizer,
        steps=steps,
        fix=parse_fix(args.fix, atoms),
        cell=args.cell,
        symmetry=args.symmetry,
        store=store,
        label=args.label or args.model,
        checkpoint_interval=args.checkpoint_interval,
    )
    if args.output:
        write_structure(args.output, result.atoms)
    data = {"row_id": result.row_id, "energy_eV": result.energy, "fmax_eV_per_A": result.fmax, "steps": result.nsteps,
            "converged": result.converged, "cached": result.cached, "resumed_from_step": result.resumed_from,
            "engine": result.engine["name"], "engine_version": result.engine["version"], "db": store.url,
            "output": args.output, "trajectory": str(result.trajectory) if result.trajectory else None}
    how = "from the store" if result.cached else (f"resumed from step {result.resumed_from}" if result.resumed_from else "")
    lines = [f"{args.model}: E = {result.energy:.6f} eV, fmax = {result.fmax:.4f} eV/Å after {result.nsteps} "
             f"{args.optimizer} steps, {'converged' if result.converged else 'NOT converged (rerun with more --steps)'}"
             f"{f' ({how})' if how else ''}",
             f"stored as row {result.row_id} of {store.url} ({result.engine['name']} {result.engine['version']})"]
    if args.output:
        lines.append(f"wrote {args.output}")
    report(args, data, lines)
    return 0 if result.converged else 1
