"""halex stem analyze IMAGE -o out/ | halex stem simulate MODEL -o sim.tif"""

from __future__ import annotations

import argparse

from halex.cli._common import output_path
from halex.units import DEFAULT_SIGNIFICANCE

#: ``stem phase`` options that only ptychography reads, with their defaults (the help strings quote them).
_PTYCHO_DEFAULTS = {"iterations": 10, "defocus": 0.0, "upsample": 1, "ptycho_python": None}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="stem_command", metavar="{analyze,phase,simulate}", required=True)
    a = sub.add_parser("analyze", help="fit every atomic column and measure lattice, tilt, halide identity")
    a.add_argument("image", help=".tif/.tiff, .dm3/.dm4, .emd or .npy")
    a.add_argument("-o", "--output", required=True, type=output_path("folder"), help="output folder (columns.csv, summary.json, figures)")
    a.add_argument("--pixel-size", type=float, default=None, help="Å per pixel (required when the file has no calibration)")
    a.add_argument("--override-calibration", action="store_true", help="use --pixel-size even if the file disagrees")
    a.add_argument("--kind", default=None, choices=["haadf", "phase"],
                   help="image kind (default: the file's kind tag, which halex stem simulate writes; else haadf)")
    a.add_argument("--zone", default="auto", choices=["auto", "001", "101"],
                   help="zone axis of a CsPbX3 image (default auto: read from the columns; a given zone must agree)")
    a.add_argument("--contrast", default="auto", choices=["auto", "bright", "dark"],
                   help="bright columns (HAADF, phase) or dark (ABF); default: detected")
    a.add_argument("--min-separation", type=float, default=1.5, help="closest column distance in Å (default 1.5)")
    a.add_argument("--threshold", type=float, default=4.0, help="candidate peaks: σ above background (default 4)")
    a.add_argument("--significance", type=float, default=DEFAULT_SIGNIFICANCE,
                   help=f"keep columns with A/σ_A above this (default {DEFAULT_SIGNIFICANCE:g})")
    a.add_argument("--background", default="constant", choices=["constant", "plane"])
    a.add_argument("--gain", type=float, default=None, help="detector values per electron (counts = (value − offset)/gain)")
    a.add_argument("--offset", type=float, default=None, help="detector value at zero electrons")
    a.add_argument("--noise", default=None, choices=["poisson", "gaussian"],
                   help="noise model (default: Poisson when the image behaves like counts, else Gaussian, with a flag)")
    a.add_argument("--profile", action="append", default=[], metavar="x0,y0,x1,y1",
                   help="intensity profile along a segment in pixels (repeatable)")
    a.add_argument("--truth", default=None, help="model the image was simulated from: score the analysis against it")
    a.add_argument("--figures", default="all", choices=["none", "basic", "all"],
                   help="figures to draw: basic = column overlay, domain map, spacing histograms and profiles; "
                        "all adds the lattice, row, tilt and X–X–Cs maps (default all)")
    f = sub.add_parser("phase", help="4D-STEM data to a calibrated phase image (centre of mass: iCoM, with CoM and dDPC)")
    f.add_argument("data", help="4D dataset: .npy (+ .json calibration), .h5/.hspy/.emd, .mib, .dm4 (RosettaSciIO)")
    f.add_argument("-o", "--output", required=True, type=output_path("image"), help="phase image (.tif, calibrated)")
    f.add_argument("--method", default="icom", choices=["icom", "ptycho"],
                   help="icom (halex, default) or ptycho (single-slice ptychography by py4DSTEM, GPL, run in its own "
                        "environment: .venv-ptycho from scripts/setup.sh, or --ptycho-python)")
    f.add_argument("--iterations", type=int, default=None,
                   help=f"ptycho: gradient-descent iterations (default {_PTYCHO_DEFAULTS['iterations']})")
    f.add_argument("--defocus", type=float, default=None,
                   help=f"ptycho: probe defocus in Å (default {_PTYCHO_DEFAULTS['defocus']:g})")
    f.add_argument("--upsample", type=int, default=None,
                   help="ptycho: pad the patterns N× for an object sampled N× finer "
                        f"(cost ≈ N²; default {_PTYCHO_DEFAULTS['upsample']})")
    f.add_argument("--ptycho-python", default=None,
                   help="ptycho: Python of an environment with py4DSTEM 0.14 (default $HALEX_PTYCHO_PYTHON or .venv-ptycho)")
    f.add_argument("--scan-step", type=float, default=None, help="probe step in Å (overrides the file)")
    f.add_argument("--detector-pixel", type=float, default=None, help="detector pixel in mrad (overrides the file)")
    f.add_argument("--voltage", type=float, default=None, help="beam voltage in kV (overrides the file)")
    f.add_argument("--semiangle", type=float, default=None, help="probe semi-angle in mrad (overrides the file)")
    s = sub.add_parser("simulate", help="HAADF, phase or 4D-STEM data of a model with Poisson/shot noise")
    s.add_argument("model", help="structure file")
    s.add_argument("-o", "--output", required=True, type=output_path("image"), help="image file (.tif, calibrated) or .npy")
    s.add_argument("--kind", default="haadf", choices=["haadf", "phase", "4d"],
                   help="4d: diffraction patterns (.npy + .json calibration; --voltage, --semiangle, --scan-step)")
    s.add_argument("--zone", default="001", choices=["001", "101"])
    s.add_argument("--probe", default="gaussian", choices=["gaussian", "aperture", "multislice"],
                   help="haadf/phase: Gaussian probe (--probe-fwhm) or an aberration-free aperture probe "
                        "(--voltage, --semiangle; Airy rings); haadf only: multislice, a frozen-phonon PRISM "
                        "calculation with abTEM (extra 'multislice'; small models, minutes; --pixel-size is the scan step)")
    s.add_argument("--frozen-phonons", type=int, default=4, help="multislice: thermal configurations averaged (default 4)")
    s.add_argument("--voltage", type=float, default=200.0, help="4d and aperture probe: kV (default 200)")
    s.add_argument("--semiangle", type=float, default=14.0,
                   help="4d and aperture probe: probe semi-angle in mrad (default 14)")
    s.add_argument("--scan-step", type=float, default=0.2, help="4d: probe step in Å (default 0.2)")
    s.add_argument("--pixel-size", type=float, default=0.1, help="Å (default 0.1)")
    s.add_argument("--probe-fwhm", type=float, default=0.8, help="Å (default 0.8)")
    s.add_argument("--dose", type=float, default=None, help="e/Å² (default: noiseless)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--truth-csv", default=None, help="also write the true columns as CSV")


def _simulate_4d(args: argparse.Namespace, atoms, out) -> int:
    from halex.stem.fourd import simulate_4d, write_4d

    data, cal, truth = simulate_4d(atoms, zone=args.zone, voltage_kV=args.voltage, semiangle_mrad=args.semiangle,
                                   scan_step_A=args.scan_step, dose=args.dose, seed=args.seed)
    write_4d(out, data, cal, {"zone": args.zone, "origin_h_A": truth["h0_A"], "origin_v_A": truth["v0_A"]})
    print(f"{out}: {data.shape[1]}×{data.shape[0]} probe positions at {cal.scan_step_A:g} Å, {data.shape[3]}×{data.shape[2]} "
          f"detector pixels of {cal.detector_mrad:.3g} mrad, {cal.voltage_kV:g} kV, {cal.semiangle_mrad:g} mrad"
          + (f", {args.dose:g} e/Å²" if args.dose else ", noiseless") + f" (calibration in {out.with_suffix('.json').name})")
    return 0


def _phase(args: argparse.Namespace) -> int:
    from pathlib import Path

    from halex.errors import InputError
    from halex.stem.fourd import center_of_mass, ddpc, icom, phase_figure, read_4d
    from halex.stem.io import StemImage, write_image

    out = Path(args.output)
    if out.suffix.lower() not in (".tif", ".tiff"):
        raise InputError(f"--output must be a calibrated .tif/.tiff phase image, got {args.output!r}")
    ptycho_only = [f"--{k.replace('_', '-')}" for k in _PTYCHO_DEFAULTS if getattr(args, k) is not None]
    if args.method != "ptycho" and ptycho_only:
        raise InputError(f"{', '.join(ptycho_only)} apply to --method ptycho only; add --method ptycho or drop them")
    if args.method == "ptycho":
        from halex.stem.ptycho import find_ptycho_python

        find_ptycho_python(args.ptycho_python)  # before reading: a missing environment costs nothing
    data, cal = read_4d(args.data, scan_step=args.scan_step, detector_pixel=args.detector_pixel, voltage=args.voltage,
                        semiangle=args.semiangle)
    if args.method == "ptycho":
        return _ptycho(args, data, cal, out)
    cx, cy = center_of_mass(data, cal)
    phase = icom(cx, cy, cal)
    write_image(out, StemImage(phase, cal.scan_step_A, "phase", str(args.data), {}))
    fig = phase_figure(cx, cy, phase, ddpc(cx, cy, cal), cal, out.with_suffix(".png"))
    ny, nx = phase.shape
    print(f"{out}: iCoM phase, {nx}×{ny} px at {cal.scan_step_A:g} Å, range {phase.min():.3f} … {phase.max():.3f} rad; "
          f"figure {fig.name}; analyse with: halex stem analyze {out} -o OUT")
    return 0


def _ptycho(args: argparse.Namespace, data, cal, out) -> int:
    """``stem phase --method ptycho``: py4DSTEM's phase, written as a calibrated image with a figure."""
    from halex.stem.fourd import ptycho_figure
    from halex.stem.io import StemImage, write_image
    from halex.stem.ptycho import ptychographic_phase

    opt = {k: d if getattr(args, k) is None else getattr(args, k) for k, d in _PTYCHO_DEFAULTS.items()}
    phase, pixel, info = ptychographic_phase(data, cal, iterations=opt["iterations"], defocus_A=opt["defocus"],
                                             upsample=opt["upsample"], python=opt["ptycho_python"])
    write_image(out, StemImage(phase, pixel, "phase", str(args.data), {"method": "ptychography (py4DSTEM "
                                                                        f"{info['py4DSTEM']})"}))
    fig = ptycho_figure(phase, pixel, info["errors"], out.with_suffix(".png"))
    ny, nx = phase.shape
    print(f"{out}: ptychographic phase (py4DSTEM {info['py4DSTEM']}, {len(info['errors'])} iterations), {nx}×{ny} px at "
          f"{pixel:.3g} Å, range {phase.min():.3f} … {phase.max():.3f} rad; figure {fig.name}; "
          f"analyse with: halex stem analyze {out} -o OUT")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    import csv
    from pathlib import Path

    import numpy as np

    from halex.errors import InputError
    from halex.io import atomic_output, read_structure
    from halex.stem.io import write_image
    from halex.stem.simulate import simulate_image

    out = Path(args.output)
    if out.suffix.lower() not in (".tif", ".tiff", ".npy"):
        raise InputError(f"--output must end in .tif, .tiff or .npy, got {args.output!r}")
    atoms = read_structure(args.model)
    if args.kind == "4d":
        return _simulate_4d(args, atoms, out)
    if args.probe == "multislice":
        from halex.stem.multislice import simulate_multislice

        if args.kind != "haadf":
            raise InputError("--probe multislice makes HAADF images only (--kind haadf)")
        img, truth = simulate_multislice(atoms, zone=args.zone, pixel_size=args.pixel_size, voltage_kV=args.voltage,
                                         semiangle_mrad=args.semiangle, frozen_phonons=args.frozen_phonons,
                                         dose=args.dose, seed=args.seed)
    else:
        img, truth = simulate_image(atoms, zone=args.zone, kind=args.kind, pixel_size=args.pixel_size,
                                    probe_fwhm=args.probe_fwhm, dose=args.dose, seed=args.seed, probe=args.probe,
                                    voltage_kV=args.voltage, semiangle_mrad=args.semiangle)
    if out.suffix.lower() == ".npy":
        with atomic_output(out, "wb") as fh:
            np.save(fh, img.data)
    else:
        write_image(out, img)
    if args.truth_csv:
        keys = ["x_px", "y_px", "x_A", "y_A", "kind", "domain", "n_atoms", "n_Pb", "n_Cs", "n_Cl", "n_I", "n_S",
                "iodide_fraction", "amplitude", "width_A", "background"]
        keys = [k for k in keys if k in truth]
        with atomic_output(args.truth_csv, "w") as fh:
            w = csv.writer(fh)
            w.writerow(keys)
            for k in range(len(truth["x_px"])):
                w.writerow([truth[c][k] for c in keys])
    print(f"{out}: {img.shape[1]}×{img.shape[0]} px at {img.pixel_size} Å, {len(truth['x_px'])} columns, "
          f"{args.kind} along [{args.zone}]" + (f", {args.dose:g} e/Å²" if args.dose else ", noiseless"))
    return 0


def _truth_for(args: argparse.Namespace, image) -> dict:
    from halex.errors import AnalysisError
    from halex.io import read_structure
    from halex.stem.simulate import Z_EXPONENT, project_columns

    meta = image.metadata.get("imagej", {})
    if "halex_origin_h" not in meta:
        raise AnalysisError(f"{args.image}: no halex projection origin in the file: --truth works on images written by "
                            "'halex stem simulate' (TIFF)")
    zone = str(meta.get("halex_zone", "")).strip("[]")
    if zone and args.zone != "auto" and zone != args.zone:
        raise AnalysisError(f"the image was simulated along [{zone}], not [{args.zone}]: pass --zone {zone}")
    zone = zone or args.zone
    if zone not in ("001", "101"):
        raise AnalysisError(f"{args.image}: the file does not say its zone axis: give --zone with --truth")
    # project the model as the simulation did and place it with the origin written into the file
    truth = project_columns(read_structure(args.truth), zone, z_exponent=Z_EXPONENT[image.kind])
    truth["x_A"] = truth["h_A"] - float(meta["halex_origin_h"])
    truth["y_A"] = float(meta["halex_origin_v"]) - truth["v_A"]
    truth["x_px"], truth["y_px"] = truth["x_A"] / image.pixel_size, truth["y_A"] / image.pixel_size
    return truth


def _analyze(args: argparse.Namespace) -> int:
    import numpy as np

    from halex.io import format_uncertain
    from halex.plotting.workers import FigureWorkers
    from halex.stem.analysis import analyze_image, line_profile, parse_profile, score_against_truth
    from halex.stem.io import read_image
    from halex.stem.output import write_analysis

    segments = [parse_profile(t) for t in args.profile]
    image = read_image(args.image, pixel_size=args.pixel_size, kind=args.kind, override=args.override_calibration)
    # two processes load matplotlib during the analysis, then draw the basic figures and the maps side by side
    with FigureWorkers({"none": 0, "basic": 1}.get(args.figures, 2)) as workers:
        analysis = analyze_image(image, zone=args.zone, min_separation=args.min_separation, threshold=args.threshold,
                                 significance=args.significance, background=args.background, gain=args.gain,
                                 offset=args.offset, noise=args.noise, contrast=args.contrast)
        for seg in segments:
            analysis.profiles.append(line_profile(analysis, seg))
        score = score_against_truth(analysis, _truth_for(args, image)) if args.truth else None
        written = write_analysis(analysis, args.output, score=score, figures=args.figures, workers=workers)
    s = analysis.summary
    cell = s["cell"]
    print(f"projection: {cell['description']}; pseudo-cubic a = {format_uncertain(cell['a_A'], cell['a_sem_A'], 'Å')} "
          f"(spread {cell['a_sd_A']:.3f} Å)" if np.isfinite(cell["a_A"]) else f"projection: {cell['description']}")
    pops = s["halide_populations"]
    print(f"{s['n_columns']} columns ({s['n_indexed']} on the lattice), sublattices {s['sublattices']}, "
          f"halide columns: {pops['verdict']}" + (f" {s['halides']}" if "populations" in pops["verdict"] else ""))
    for name, d in s["domains"].items():
        a = d["a_x_A"]
        if a.get("mean") is not None:
            fit = (f"; Gaussian fit: centre {format_uncertain(a['gauss_centre'], a['gauss_centre_err'], 'Å')}"
                   if "gauss_centre" in a else "")
            print(f"  {name:<14} a (in-plane) = {format_uncertain(a['mean'], a.get('sem'), 'Å')}{fit}")
    for name, m in s["mismatch"].items():
        print(f"  mismatch {name}: {format_uncertain(m['percent'], m['err_percent'], '%')}"
              + ("" if m.get("significant", True) else " (not significant: within 3 standard errors of 0)"))
    if score is not None:
        print(f"score: {score['matched']} of {score['true_columns']} true columns matched ({score['found']} found)"
              + (f", halide labels {100 * score['halide_accuracy']:.1f} % correct" if "halide_accuracy" in score else ""))
    print(f"wrote {len(written)} files to {args.output}")
    return 0


def run(args: argparse.Namespace) -> int:
    return {"simulate": _simulate, "phase": _phase}.get(args.stem_command, _analyze)(args)
