"""halex engines [--check] | engines parity | engines tune: registered engines; DFT parity of an engine;
the default engine fine-tuned on the parity dataset."""

from __future__ import annotations

import argparse

from halex.cli._common import add_engine_options, add_json_option, add_yes_option, output_path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check", action="store_true", help="also load each engine (slower)")
    sub = p.add_subparsers(dest="engines_command", metavar="{parity,tune}")
    pp = sub.add_parser("parity", help="exchange energies of an engine against the reference DFT dataset",
                        description="ΔE_exchange of an engine against the CP2K PBE parity dataset "
                                    "(21 Cl→I reactions, ≤ 40 atoms; docs/engines.md)")
    pp.add_argument("--dataset", default=None, help="parity dataset JSON (default: the one shipped with halex)")
    pp.add_argument("--compute", action="store_true",
                    help="make the dataset (geometries relaxed by --engine) or complete it (reactions it lacks, "
                         "then DFT single points with --dft, each written into --dataset as it finishes: resumable)")
    pp.add_argument("--dft", default="cp2k", help="--compute: the reference engine (default cp2k)")
    pp.add_argument("--dft-set", dest="dft_settings", action="append", default=[], metavar="KEY=VALUE",
                    help="--compute: a setting of the reference engine, repeatable (default: its defaults, 400 Ry)")
    pp.add_argument("-o", "--output", type=output_path("folder"), default=None,
                    help="write parity.csv, summary.json and parity.png here")
    add_json_option(pp)
    add_yes_option(pp)
    add_engine_options(pp)
    tp = sub.add_parser("tune", help="fine-tune the default engine on the DFT parity dataset, with held-out parity",
                        description="Fine-tune CHGNet on the exchange energies and forces of the parity dataset "
                                    "(docs/engines.md, 'mlip-tuned'): a k-fold cross-validation split by "
                                    "reaction gives the held-out parity before and after, then one fit on every "
                                    "reaction gives the weights (OUT/mlip_tuned.pt; use them with "
                                    "--engine mlip-tuned --set model=OUT/mlip_tuned.pt)")
    tp.add_argument("--dataset", default=None, help="labelled parity dataset JSON (default: the one shipped)")
    tp.add_argument("--folds", type=int, default=5, help="cross-validation folds, by reaction (0: no held-out "
                                                         "parity, only the final fit; default 5)")
    # defaults: halex.engines.tuning.DEFAULTS (200, 1e-3, 10, 0.01), filled in by _tune so that
    # building the parser imports nothing of the tuning
    tp.add_argument("--epochs", type=int, default=None, help="full-batch Adam steps (default 200)")
    tp.add_argument("--learning-rate", type=float, default=None, help="Adam step size (default 1e-3)")
    tp.add_argument("--force-weight", type=float, default=None,
                    help="weight of the force MSE ((eV/Å)²) against the ΔE MSE ((kcal/mol)²); default 10")
    tp.add_argument("--anchor-weight", type=float, default=None,
                    help="weight of the L2 distance from the pretrained parameters (default 0.01)")
    tp.add_argument("-o", "--output", type=output_path("folder"), required=True,
                    help="write cv.csv, summary.json, cv_parity.png and mlip_tuned.pt here")
    add_json_option(tp)


def _list(args: argparse.Namespace) -> int:
    from halex.engines import get_engine, list_engines
    from halex.errors import HalexError

    for name, target in list_engines().items():
        status = ""
        if args.check:
            try:
                eng = get_engine(name)
                status = f"ok: {eng.version}"
            except HalexError as exc:
                status = f"unavailable: {exc}"
        print(f"{name:<8} {target:<40} {status}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.engines_command == "parity":
        return _parity(args)
    if args.engines_command == "tune":
        return _tune(args)
    return _list(args)


def _dft_engine(args: argparse.Namespace):
    """The reference engine of ``--dft/--dft-set`` with the launch options (``--mpi-ranks``,
    ``--threads``), built and checked as every command builds its engine."""
    from halex.cli._common import make_engine

    return make_engine(argparse.Namespace(engine=args.dft, settings=args.dft_settings, mpi_ranks=args.mpi_ranks,
                                          threads=args.threads))


def _compute(args: argparse.Namespace, engine, store, path):
    """Make (geometries by ``engine``) or complete (DFT labels) the dataset at ``path``."""
    import logging

    from halex.engines import parity
    from halex.io import format_duration

    dft = _dft_engine(args)
    dft.require("energy")
    if path.exists():
        data = parity.read_dataset(path)
        labelled = any("energy_eV" in s for s in data["structures"].values())
        if labelled and data["dft"] != dft.describe():
            from halex.errors import InputError

            raise InputError(f"{str(path)!r} was labelled with {data['dft'].get('name')} {data['dft'].get('settings')}; "
                             "give the same --dft/--dft-set, or a new --dataset")
        data["dft"] = dft.describe()
        if parity.extend_dataset(data, engine, store=store):  # reactions added to halex since it was made
            parity.write_dataset(path, data)
    else:
        data = parity.new_dataset(parity.relax_geometries(engine, store=store), dft, engine)
        parity.write_dataset(path, data)
    todo = [n for n, s in data["structures"].items() if "energy_eV" not in s]
    parity.check_dataset_engine(data, dft)
    costs = [dft.cost(parity._atoms(data["structures"][n])) for n in todo]
    total = sum(c.seconds for c in costs if c is not None)
    logging.getLogger("halex.plan").info("plan: %d DFT single points with %s, ≈ %s by its cost model", len(todo),
                                         dft.name, format_duration(total))
    if total > 600 and not args.yes:
        from halex.errors import InputError

        raise InputError(f"labelling {len(todo)} structures with {dft.name} takes ≈ {format_duration(total)}: "
                         "add --yes to run it here (it resumes where it stops)")
    return parity.label_dataset(data, dft, path, store=store)


def _parity(args: argparse.Namespace) -> int:
    from pathlib import Path

    from halex.cli._common import make_engine, open_store, report
    from halex.engines import parity

    engine = make_engine(args)
    engine.require("energy")
    store = open_store(args.db)
    path = Path(args.dataset) if args.dataset else parity.DEFAULT_DATASET
    data = _compute(args, engine, store, path) if args.compute else parity.read_dataset(path)
    rows = parity.parity_table(data, engine, store=store)
    summary = parity.parity_summary(rows)
    summary.update(engine=engine.describe(), dft=data["dft"], geometry_engine=data.get("geometry_engine"),
                   dataset=str(path), units="kcal/mol per exchanged halide; error = engine − DFT")
    fitted = engine.fitted_to() if hasattr(engine, "fitted_to") else None
    if fitted and fitted.get("dataset_sha256") == _digest(data):
        summary["fitted_to_this_dataset"] = True
        summary["held_out"] = fitted.get("held_out")
    if args.output:
        _write(args.output, rows, summary, engine.name, data["dft"]["name"])
    report(args, {"summary": summary, "reactions": rows}, _lines(rows, summary, engine.name, data["dft"]["name"]))
    return 0


def _digest(data) -> str:
    from halex.engines.tuning import dataset_digest

    return dataset_digest(data)


def _fmt(v) -> str:
    return "   —  " if v is None else f"{v:+7.2f}"


def _lines(rows, summary, engine: str, dft: str) -> list[str]:
    out = [f"{'reaction':<42} {'x':>2} {dft + ' ΔE':>10} {engine + ' ΔE':>10} {'error':>7}   (kcal/mol per halide)"]
    out += [f"{r['reaction']:<42} {r['x']:>2} {_fmt(r['dE_dft_kcal_mol']):>10} {_fmt(r['dE_engine_kcal_mol']):>10} "
            f"{_fmt(r['error_kcal_mol']):>7}" for r in rows]
    if summary["n"]:
        out.append(f"{engine} vs {dft} on {summary['n']} reactions: MAE {summary['mae_kcal_mol']:.2f}, RMSE "
                   f"{summary['rmse_kcal_mol']:.2f}, max |error| {summary['max_abs_error_kcal_mol']:.2f}, mean error "
                   f"{summary['mean_error_kcal_mol']:+.2f} kcal/mol per exchanged halide")
        if summary["within_family_mae_kcal_mol"] is not None:
            out.append(f"  within a family (each family's mean error removed: what comparing its reactions sees): MAE "
                       f"{summary['within_family_mae_kcal_mol']:.2f}")
        out += [f"  {f}: MAE {s['mae_kcal_mol']:.2f}, max {s['max_abs_error_kcal_mol']:.2f}, mean {s['mean_error_kcal_mol']:+.2f} "
                f"(n = {s['n']})"
                for f, s in summary["by_family"].items()]
    if summary.get("fitted_to_this_dataset"):
        h = summary.get("held_out") or {}
        out.append(f"NOTE: {engine} was fitted to these reactions, so the errors above are training errors. Held out "
                   f"(each reaction scored by a fit that did not see it, {h.get('folds', '?')}-fold by reaction): "
                   f"MAE {h.get('after', {}).get('mae_kcal_mol', float('nan')):.2f}, max "
                   f"{h.get('after', {}).get('max_abs_error_kcal_mol', float('nan')):.2f} kcal/mol per halide")
    if summary["unlabelled"]:
        out.append(f"{summary['unlabelled']} reaction(s) not yet labelled by DFT: complete the dataset with "
                   "'halex engines parity --compute'")
    return out


def _write(out: str, rows, summary, engine: str, dft: str) -> None:
    import csv
    import json

    from halex.engines.parity import parity_figure
    from halex.io import atomic_folder, json_safe

    with atomic_folder(out) as tmp:
        with open(tmp / "parity.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        (tmp / "summary.json").write_text(json.dumps(json_safe(summary), indent=1))
        if summary["n"]:
            parity_figure(rows, tmp / "parity.png", engine=engine, dft=dft)


def _tune(args: argparse.Namespace) -> int:
    import csv
    import json
    import logging
    from pathlib import Path

    from halex.cli._common import report
    from halex.engines import parity, tuning
    from halex.errors import InputError
    from halex.io import atomic_folder, json_safe

    log = logging.getLogger("halex.engines")
    for opt in ("epochs", "learning_rate", "force_weight", "anchor_weight"):
        if getattr(args, opt) is None:
            setattr(args, opt, tuning.DEFAULTS[opt])
    path = Path(args.dataset) if args.dataset else parity.DEFAULT_DATASET
    data = parity.read_dataset(path)
    if args.folds == 1 or args.folds < 0:
        raise InputError(f"--folds must be 0 (no held-out parity) or at least 2, got {args.folds}")
    if args.epochs < 1:
        raise InputError(f"--epochs must be at least 1, got {args.epochs}")
    protocol = {"epochs": args.epochs, "learning_rate": args.learning_rate, "force_weight": args.force_weight,
                "anchor_weight": args.anchor_weight, "seed": tuning.DEFAULTS["seed"], "trainable": list(tuning.TRAINABLE),
                "base_model": "CHGNet 0.3.0"}
    fit_kw = {k: protocol[k] for k in ("epochs", "learning_rate", "force_weight", "anchor_weight", "seed")}
    rows, held = [], None
    if args.folds:
        log.info("held-out parity: %d fits of %d epochs, one per fold of reactions", args.folds, args.epochs)
        rows = tuning.cross_validate(data, args.folds, log_fn=log.info, **fit_kw)
        held = {"folds": args.folds, **tuning.summarize_cv(rows)}
    log.info("final fit on all %d reactions", len(data["reactions"]))
    model, history = tuning.fit_reactions(data, progress=log.info, **fit_kw)
    meta = {"protocol": protocol, "dataset": str(path) if args.dataset else f"shipped ({path.name})",
            "dataset_sha256": tuning.dataset_digest(data), "dft": data["dft"],
            "reactions": [r["name"] for r in data["reactions"]], "held_out": held, "held_out_rows": rows,
            "final_training_rmse_kcal_mol": history["reaction_rmse_kcal_mol"][-1],
            "final_force_rmse_eV_A": history["force_rmse_eV_A"][-1]}
    with atomic_folder(args.output) as tmp:
        tuning.save_model(model, tmp / "mlip_tuned.pt", meta)
        (tmp / "summary.json").write_text(json.dumps(json_safe(meta), indent=1))
        if rows:
            with open(tmp / "cv.csv", "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
            tuning.cv_figure(rows, tmp / "cv_parity.png")
    report(args, {"summary": meta, "held_out_reactions": rows}, _tune_lines(rows, held, meta, args.output))
    return 0


def _tune_lines(rows, held, meta, out) -> list[str]:
    lines = []
    if rows:
        lines.append(f"{'reaction (held out)':<42} {'fold':>4} {'DFT ΔE':>8} {'before':>8} {'after':>8}   "
                     "(error, kcal/mol per halide)")
        lines += [f"{r['reaction']:<42} {r['fold']:>4} {r['dE_dft_kcal_mol']:+8.2f} {r['error_before_kcal_mol']:+8.2f} "
                  f"{r['error_after_kcal_mol']:+8.2f}" for r in rows]
        for when in ("before", "after"):
            s = held[when]
            fam = ", ".join(f"{f} {v:.2f}" for f, v in s["family_mae_kcal_mol"].items())
            lines.append(f"held-out {when:<6}: MAE {s['mae_kcal_mol']:.2f}, max {s['max_abs_error_kcal_mol']:.2f}, mean "
                         f"{s['mean_error_kcal_mol']:+.2f} kcal/mol per halide ({fam})")
    lines.append(f"final fit on {len(meta['reactions'])} reactions: training ΔE RMSE "
                 f"{meta['final_training_rmse_kcal_mol']:.2f} kcal/mol per halide, force RMSE "
                 f"{meta['final_force_rmse_eV_A']:.3f} eV/Å; weights: {out}/mlip_tuned.pt "
                 f"(--engine mlip-tuned --set model={out}/mlip_tuned.pt)")
    return lines
