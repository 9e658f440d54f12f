"""halex pathway MODEL -o OUT: lattice model, Monte Carlo titration and verdicts (SPEC §7)."""

from __future__ import annotations

import argparse
import logging

from halex.cli._common import add_cluster_options, add_engine_options, output_path

log = logging.getLogger("halex.pathway")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="heterostructure or nanocrystal (extxyz with domain/layer/role)")
    p.add_argument("-o", "--output", required=True, type=output_path("folder"),
                   help="output folder (titration tables, figures, snapshots, summary.json, report.html)")
    add_engine_options(p)
    p.add_argument("--compare-free-nc", action="store_true",
                   help="also run the free-standing perovskite nanocrystal cut from the model")
    p.add_argument("--temperature", type=float, default=None, help="K (default 298.15: room-temperature exchange)")
    p.add_argument("--dmu", nargs=3, type=float, default=None, metavar=("FROM", "TO", "N"),
                   help="Δμ grid in eV (default: the fitted site energies ± 0.3 eV, 41 points)")
    p.add_argument("--fmax", type=float, default=None, help="relaxation threshold of the training set (eV/Å)")
    p.add_argument("--max-steps", type=int, default=1000, help="optimizer steps per training relaxation")
    p.add_argument("--rounds", type=int, default=3, help="active-learning rounds at most (default 3)")
    p.add_argument("--per-round", type=int, default=10, help="configurations added per round (default 10)")
    p.add_argument("--shells", type=int, default=2, help="pair shells of the lattice model (default 2)")
    p.add_argument("--chalcohalide-layers", type=int, default=1, help="chalcohalide layers whose halides are sites")
    p.add_argument("--sweeps", type=int, default=200, help="sampled Monte Carlo sweeps per Δμ (default 200)")
    p.add_argument("--refits", type=int, default=None,
                   help="bootstrap refits of the lattice model, each titrated, that say how often every verdict "
                        "holds (default 20; 0: none)")
    p.add_argument("--workers", type=int, default=1,
                   help="training relaxations on this many local Dask workers (default 1: one after another)")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler, e.g. tcp://host:8786")
    add_cluster_options(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from halex.cli._common import job_spec, make_engine
    from halex.errors import InputError
    from halex.io import read_structure
    from halex.pathway.lattice import halide_lattice
    from halex.pathway.output import verdict_line, write_pathway
    from halex.pathway.uncertainty import DEFAULT_REFITS
    from halex.pathway.workflow import DEFAULT_TEMPERATURE_K, default_dmu_grid, fit_particle, titrate_particle
    from halex.store import default_store_url
    from halex.studies.cluster import for_engine
    from halex.units import DEFAULT_FMAX

    temperature = DEFAULT_TEMPERATURE_K if args.temperature is None else args.temperature
    if not temperature > 0:
        raise InputError(f"--temperature must be > 0 K, got {args.temperature}")
    if args.dmu is not None and not (args.dmu[1] > args.dmu[0] and int(args.dmu[2]) >= 2):
        raise InputError(f"--dmu FROM TO N needs an increasing range (FROM < TO) and N >= 2, got {args.dmu}")
    if args.rounds < 1 or args.per_round < 1 or args.sweeps < 1 or args.workers < 1:
        raise InputError("--rounds, --per-round, --sweeps and --workers must be >= 1")
    refits = DEFAULT_REFITS if args.refits is None else args.refits
    if refits == 1 or refits < 0:
        raise InputError(f"--refits must be 0 (none) or at least 2, got {args.refits}")
    atoms = read_structure(args.model)
    particles = [("particle", atoms)]
    if args.compare_free_nc:
        from halex.studies.exchange import standalone_perovskite

        particles.append(("free-nc", standalone_perovskite(atoms)))
    # a model without halide sites is refused before anything is relaxed
    lattices = [halide_lattice(a, chalcohalide_layers=args.chalcohalide_layers, n_shells=args.shells) for _, a in particles]
    jobs = job_spec(args)
    engine = make_engine(args, cores=jobs.cores if jobs else None)
    engine.require("energy")
    db = args.db or default_store_url()
    _plan(args, engine, particles, lattices, db, jobs.jobs if jobs else args.workers)
    fmax = args.fmax or DEFAULT_FMAX
    from halex.studies.runner import lazy_client

    client = lazy_client(args.scheduler, args.workers, jobs and for_engine(jobs, engine), args.threads)
    try:
        fits = [fit_particle(a, name, engine, db, temperature=temperature, fmax=fmax, rounds=args.rounds,
                             per_round=args.per_round, chalcohalide_layers=args.chalcohalide_layers, n_shells=args.shells,
                             steps=args.max_steps, client=client) for name, a in particles]
    finally:
        if client is not None:
            client.close()  # leaves a cluster given by --scheduler running
    dmus = (np.linspace(args.dmu[0], args.dmu[1], int(args.dmu[2])) if args.dmu is not None
            else default_dmu_grid([f["model"] for f in fits]))  # one grid for every particle, so the curves compare
    results = [titrate_particle(f, dmus, temperature=temperature, sweeps=args.sweeps, refits=refits) for f in fits]
    meta = {"engine": engine.describe(), "store": str(db), "temperature_K": temperature, "fmax_eV_per_A": fmax,
            "rounds": args.rounds, "per_round": args.per_round, "shells": args.shells, "sweeps": args.sweeps,
            "chalcohalide_layers": args.chalcohalide_layers, "refits": refits, "model": str(Path(args.model))}
    report = write_pathway(results, args.output, meta)
    for r in results:
        print(verdict_line(r))
    print(f"report: {report}")
    return 0


def _plan(args: argparse.Namespace, engine, particles, lattices, db: str, workers: int) -> None:
    """One plan line before the first relaxation: the training relaxations at most, and how long
    they take at the steps such relaxations took before, each step priced as measured on the
    store's earlier ones (else by the engine's cost model)."""
    from halex.cli._common import relaxation_history, step_seconds_estimate, steps_estimate
    from halex.io import format_duration
    from halex.pathway.train import n_training_relaxations

    counts = [n_training_relaxations(lat, rounds=args.rounds, per_round=args.per_round) for lat in lattices]
    what = ", ".join(f"{name}: {n} of {len(a)} atoms" for (name, a), n in zip(particles, counts))
    costs = [engine.cost(a) for _, a in particles]
    if any(c is None for c in costs):
        log.info("plan: at most %d training relaxations (%s) with %s", sum(counts), what, engine.name)
        return
    history = relaxation_history(db, engine.name, kind="pathway")
    steps, source = steps_estimate(history, max(len(a) for _, a in particles), kind="pathway")
    measured = [step_seconds_estimate(history, len(a)) for _, a in particles]
    per_step = [m or c.seconds for m, c in zip(measured, costs)]
    total = sum(n * steps * t for n, t in zip(counts, per_step))
    log.info("plan: at most %d training relaxations (%s) with %s: ≈ %s of compute (%d steps each, %s; per step %s), "
             "≈ %s on %d worker(s); peak memory ≈ %.1f GB per worker; relaxations already in the store are not repeated",
             sum(counts), what, engine.name, format_duration(total), steps, source,
             "as measured in the store" if all(measured) else "partly by the cost model" if any(measured)
             else "by the cost model",
             format_duration(total / max(1, workers)), workers, max(c.memory_GB for c in costs))
