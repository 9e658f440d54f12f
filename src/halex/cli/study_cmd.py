"""halex study layers | chalcohalide | alloy | all: exchange studies with tables, figures and a report."""

from __future__ import annotations

import argparse
import logging

from halex.cli._common import add_cluster_options, add_engine_options, output_path

log = logging.getLogger("halex.study")


def _common(p: argparse.ArgumentParser, model_required: bool = True) -> None:
    if model_required:
        p.add_argument("--model", required=True, help="heterostructure (extxyz with domain/layer/role)")
    p.add_argument("-o", "--output", required=True, type=output_path("folder"), help="output folder (tables, figures, models, report.html)")
    add_engine_options(p)  # --engine, --set, --mpi-ranks, --threads, --db: the same as halex relax
    p.add_argument("--fmax", type=float, default=None, help="eV/Å (default 4.5e-4 Ha/Bohr = 0.0231)")
    p.add_argument("--max-steps", type=int, default=1000, help="optimizer steps per relaxation (default 1000)")
    p.add_argument("--reference", choices=["molecule", "bulk"], default="molecule", help="PbX2 references (default molecule)")
    p.add_argument("--workers", type=int, default=None, help="local Dask workers (default: one per core; 1 = no Dask)")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler, e.g. tcp://host:8786")
    add_cluster_options(p)  # --cluster slurm|pbs --cores --memory --walltime --queue; --workers = jobs
    p.add_argument("--seed", type=int, default=0, help="seed for the random choices (default 0)")
    p.add_argument("--replicas", type=int, default=2,
                   help="relaxations of every model from seeded perturbed starts, lowest kept; their spread is the "
                        "minimum-to-minimum noise behind the verdicts (default 2)")
    p.add_argument("--optimizer", default=None,
                   help="ASE optimizer of every relaxation of the study (default FIRE, chosen by measurement: "
                        "docs/studies.md)")
    p.add_argument("--cold", action="store_true",
                   help="start every model from its built geometry instead of its parent's relaxed one (slower)")
    p.add_argument("--seeds", type=int, default=3,
                   help="samples of every free choice of sites: one chalcohalide series per seed, and the planes of "
                        "each ordered alloy pattern when several qualify (default 3; random alloys: --random-seeds)")
    p.add_argument("--rescore", nargs="+", default=[], metavar="ENGINE",
                   help="engines that recompute every ΔE as single points on the relaxed geometries, e.g. 7net-0 "
                        "7net-mf-0: an engine-spread column next to every ΔE (default: none)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="study_command", metavar="{layers,chalcohalide,alloy,all}", required=True)
    s = sub.add_parser("layers", help="Cl->I in 1..N perovskite layers from the interface and from the bottom")
    _common(s)
    s.add_argument("--max-layers", type=int, required=True)
    s = sub.add_parser("chalcohalide", help="interfacial monolayer + I in the first chalcohalide layers, nested steps")
    _common(s)
    s.add_argument("--percents", nargs="+", type=float, default=[0, 20, 40, 60, 80, 100],
                   help="percent I in the first chalcohalide layers, one model per value (default 0 20 ... 100)")
    s.add_argument("--chalcohalide-layers", type=int, default=2)
    s = sub.add_parser("alloy", help="~20 %% of the remaining perovskite Cl: random (several seeds) vs ordered planes")
    _common(s)
    s.add_argument("--fraction", type=float, default=0.2)
    s.add_argument("--random-seeds", type=int, default=5)
    s = sub.add_parser("all", help="layers -> chalcohalide -> alloy on one model, one report")
    _common(s, model_required=False)
    s.add_argument("--model", default=None, help="heterostructure file (default: built from --size)")
    s.add_argument("--size", nargs="+", default=["default"],
                   help="'default' (perovskite 4 4 4 + 2 chalcohalide layers), 'paper' (the source study's depth: "
                        "perovskite 4 4 6, so the layers study runs N = 1…5 from both ends) or N1 N2 N3 LAYERS")
    s.add_argument("--max-layers", type=int, default=None,
                   help="perovskite layers of the layers study (default 3, fewer when the model has fewer than 4; "
                        "5 with --size paper)")
    s.add_argument("--percents", nargs="+", type=float, default=[0, 20, 40, 60, 80, 100],
                   help="percent I of the chalcohalide study (default 0 20 ... 100)")
    s.add_argument("--fraction", type=float, default=0.2)
    s.add_argument("--random-seeds", type=int, default=5)


def _model(args):
    from halex.errors import InputError
    from halex.io import read_structure

    if args.model:
        return read_structure(args.model)
    from halex.models import heterostructure

    if args.size == ["default"]:
        return heterostructure()
    if args.size == ["paper"]:
        from halex.studies.exchange import PAPER_SIZE

        if args.max_layers is None:
            args.max_layers = PAPER_SIZE["max_layers"]
        return heterostructure(PAPER_SIZE["perovskite"], PAPER_SIZE["chalcohalide_layers"])
    try:
        n1, n2, n3, layers = (int(v) for v in args.size)
    except ValueError:
        raise InputError(f"--size must be 'default', 'paper' or four integers N1 N2 N3 LAYERS, got {' '.join(args.size)}") from None
    return heterostructure((n1, n2, n3), layers)


def _relaxations(args: argparse.Namespace, model) -> int:
    """Relaxations the study will run (each model's replicas and its standalone nanocrystal), checking the stages."""
    return _models_and_references(args, model) // 2 * (args.replicas + 1)


def _models_and_references(args: argparse.Namespace, model) -> int:
    """Models and standalone nanocrystals of the study (two per model)."""
    from halex.studies import exchange as st

    c = args.study_command
    if c == "all":
        plan = st.plan_all(model, max_layers=args.max_layers, percents=args.percents, fraction=args.fraction,
                           random_seeds=args.random_seeds, seeds=args.seeds)
        return sum(plan["relaxations"].values())
    if c == "layers":
        return 2 * (1 + 2 * int(args.max_layers))
    if c == "chalcohalide":
        return 2 * args.seeds * len(args.percents)
    return 2 * (1 + int(args.random_seeds) + args.seeds * len(st.ALLOY_ORDERED))


def _plan(args: argparse.Namespace, engine, model, jobs=None) -> None:
    """One plan line before the first relaxation: how many, how large, how long (steps and step time
    from the store's earlier study relaxations when it has them, else typical steps and the engine's
    cost model), and the memory by the cost model."""
    import os

    from halex.cli._common import relaxation_history, step_seconds_estimate, steps_estimate
    from halex.io import format_duration
    from halex.store import default_store_url

    n = _relaxations(args, model)
    cost = engine.cost(model)
    if cost is None:
        log.info("plan: %d relaxations of up to %d atoms with %s", n, len(model), engine.name)
        return
    workers = jobs.jobs if jobs else args.workers or (1 if args.scheduler else os.cpu_count() or 1)
    if jobs is not None:  # each batch job has its own memory
        from dask.utils import parse_bytes

        from halex.errors import InputError

        have = parse_bytes(jobs.memory) / 1e9
        if cost.memory_GB > have:
            raise InputError(f"each relaxation needs ≈ {cost.memory_GB:.1f} GB ({len(model)} atoms, by the {engine.name} "
                             f"engine's cost model), more than --memory {jobs.memory}: ask for more per job")
    elif not args.scheduler:  # local workers share this machine's memory
        from halex.engines.base import machine_memory_GB
        from halex.errors import InputError

        need, have = cost.memory_GB * workers, machine_memory_GB()
        if need > have:
            raise InputError(f"this study needs ≈ {need:.1f} GB of memory ({workers} worker(s) × {cost.memory_GB:.1f} GB for "
                             f"{len(model)} atoms, by the {engine.name} engine's cost model), more than this machine's "
                             f"{have:.1f} GB: use fewer --workers, a smaller --size, or a cluster (--scheduler)")
    db = args.db or default_store_url()
    history = relaxation_history(db, engine.name)
    steps, source = steps_estimate(history, len(model))
    measured = step_seconds_estimate(history, len(model))
    per_step = measured or cost.seconds
    total = per_step * steps * n
    log.info("plan: %d relaxations of up to %d atoms with %s: ≈ %s of compute (%d steps each, %s; %s per step, %s), "
             "≈ %s on %d worker(s); peak memory ≈ %.1f GB per worker", n, len(model), engine.name, format_duration(total),
             steps, source, format_duration(per_step), "as measured in the store" if measured else "by the cost model",
             format_duration(total / max(1, workers)), workers, cost.memory_GB)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from halex.cli._common import job_spec, make_engine
    from halex.errors import InputError
    from halex.studies import StudySettings, write_report, write_study
    from halex.studies import exchange as st
    from halex.studies.cluster import for_engine
    from halex.studies.output import write_conclusions
    from halex.studies.runner import lazy_client

    out = Path(args.output)
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    if args.replicas < 1:
        raise InputError(f"--replicas must be >= 1, got {args.replicas}")
    if args.seeds < 1:
        raise InputError(f"--seeds must be >= 1, got {args.seeds}")
    from halex.relax import OPTIMIZERS

    if args.optimizer is not None and args.optimizer not in OPTIMIZERS:
        raise InputError(f"unknown --optimizer {args.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    from halex.studies.rescore import check_rescore_engines

    check_rescore_engines(args.rescore)  # an unknown engine is refused before the model is built
    jobs = job_spec(args)  # batch jobs are checked here, submitted with the first relaxation
    engine = make_engine(args, cores=jobs.cores if jobs else None)  # the engine object, launch profile included, is what every worker runs
    model = _model(args)
    _plan(args, engine, model, jobs)
    from halex.store import default_store_url

    db = args.db or default_store_url()  # one store for every command: a study reuses what relax or another study computed
    client = lazy_client(args.scheduler, args.workers, jobs and for_engine(jobs, engine), args.threads)  # started with the first relaxation
    settings = StudySettings(engine=engine, store_url=db, fmax=args.fmax, steps=args.max_steps, reference=args.reference,
                             client=client, replicas=args.replicas, optimizer=args.optimizer or st.STUDY_OPTIMIZER,
                             warm=not args.cold, rescore=tuple(args.rescore),
                             seeds=args.seeds)
    written: list = []

    def write(study) -> None:  # each study as soon as it is finished, with the report over all finished ones
        written.append(study)
        if args.study_command == "all":
            write_study(study, out / study.name)
            write_conclusions(written, out)
            write_report(written, out)
        else:
            write_study(study, out)
            write_report(written, out, {study.name: "."})
        log.info("[study] %s study written to %s", study.name, out / study.name if args.study_command == "all" else out)

    try:
        c = args.study_command
        if c == "layers":
            write(st.layers_study(model, args.max_layers, settings))
        elif c == "chalcohalide":
            write(st.chalcohalide_study(model, args.percents, settings, n_layers=args.chalcohalide_layers, seed=args.seed))
        elif c == "alloy":
            write(st.alloy_study(model, args.fraction, args.random_seeds, settings))
        else:
            st.all_studies(model, settings, max_layers=args.max_layers, percents=args.percents, fraction=args.fraction,
                           random_seeds=args.random_seeds, seed=args.seed, on_study=write)
    finally:
        if client is not None:
            client.close()  # leaves a cluster given by --scheduler running
    for s in written:
        for name, rows in s.tables.items():
            if name != "structure":
                print(f"{s.name}/{name}: {len(rows)} rows")
    report = out / "report.html"
    print(f"report: {report}")
    return 0
