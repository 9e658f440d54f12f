"""halex optics fit ABS [PL] -o out/ | optics composition --edx-counts Cl=..,I=.. | optics gap --size ..."""

from __future__ import annotations

import argparse
import warnings

from halex.cli._common import add_json_option, output_path, report


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="optics_command", metavar="{fit,composition,gap}", required=True)
    f = sub.add_parser("fit", help="absorption edge (exciton peak, onset, Tauc gap) and PL peak fits")
    f.add_argument("absorption", help="absorption spectrum (CSV/TXT, wavelength in nm first); '-' to skip")
    f.add_argument("pl", nargs="?", default=None, help="PL spectrum (optional)")
    f.add_argument("-o", "--output", required=True, type=output_path("folder"),
                   help="output folder (summary.json, optics.png/svg, pl_fit.csv)")
    f.add_argument("--pl-peaks", default="1", help="number of PL peaks, or 'auto': 1–2 Gaussian or split-Gaussian "
                   "peaks chosen by BIC (default 1)")
    f.add_argument("--shape", default="gauss", choices=["gauss", "asym", "voigt"],
                   help="PL peak shape; asym: split Gaussian (own width below and above the maximum)")
    f.add_argument("--column", default=None, help="signal column (number or header name) in both files")
    c = sub.add_parser("composition", help="X_Cl = [Cl]/([Cl]+[I]) x 100 from EDX counts or a model")
    c.add_argument("--edx-counts", default=None, metavar="Cl=N,I=N", help="background-subtracted line counts")
    c.add_argument("--k-factors", default=None, metavar="Cl=k,I=k", help="Cliff-Lorimer k-factors (default 1: uncalibrated)")
    c.add_argument("--model", default=None, help="structure file: composition of the model")
    add_json_option(c)
    c.add_argument("--domain", default=None, help="only atoms of this domain (e.g. perovskite)")
    g = sub.add_parser("gap", help="band gap of cubic NCs versus edge length (effective-mass confinement)")
    g.add_argument("--size", nargs="+", type=float, required=True, metavar="NM", help="edge lengths (nm)")
    g.add_argument("--material", default="CsPbI3", help="CsPbI3 or CsPbBr3 (Yang et al. 2017), ignored with --eg/--mu")
    g.add_argument("--eg", type=float, default=None, help="bulk gap (eV)")
    g.add_argument("--mu", type=float, default=None, help="exciton reduced mass (m0)")
    g.add_argument("--epsilon", type=float, default=None, help="dielectric constant: adds the Coulomb term")
    g.add_argument("-o", "--output", default=None, type=output_path("figure"), help="figure (.png/.svg) of the gap versus size")


def run(args: argparse.Namespace) -> int:
    import logging

    from halex.errors import InputError
    from halex.optics import HC_EV_NM, band_gap_vs_size, parse_counts, x_cl_from_counts, x_cl_from_model

    log = logging.getLogger("halex.optics")
    if args.optics_command == "composition":
        if not args.edx_counts and not args.model:
            raise InputError("give --edx-counts Cl=N,I=N and/or --model FILE")
        out = {}
        if args.edx_counts:
            k = parse_counts(args.k_factors) if args.k_factors else None
            out["edx"] = x_cl_from_counts(parse_counts(args.edx_counts), k_factors=k)
        if args.model:
            from halex.io import read_structure

            out["model"] = x_cl_from_model(read_structure(args.model), domain=args.domain)
        lines = []
        if "edx" in out:
            e = out["edx"]
            lines.append(f"EDX: X_Cl = {e['x_cl_percent']:.1f} ± {e['x_cl_err_percent']:.1f} % "
                         f"({'calibrated' if e['calibrated'] else 'uncalibrated: k-factors 1'}; counting statistics)")
        if "model" in out:
            m = out["model"]
            lines.append(f"model{' ' + m['domain'] if m['domain'] else ''}: X_Cl = {m['x_cl_percent']:.1f} % "
                         f"({m['n_cl']} Cl, {m['n_i']} I)")
        report(args, out, lines)
        return 0
    if args.optics_command == "gap":
        import numpy as np

        sizes = np.array(args.size)
        kw = dict(eg_bulk_eV=args.eg, mu=args.mu) if (args.eg is not None or args.mu is not None) else dict(material=args.material)
        gaps = band_gap_vs_size(sizes, epsilon_r=args.epsilon, **kw)
        print("edge_nm,gap_eV,wavelength_nm")
        for s, e in zip(sizes, gaps):
            print(f"{s:g},{e:.4f},{HC_EV_NM / e:.1f}")
        if args.output:
            from halex.optics.figures import plot_gap_vs_size
            from halex.plotting.figures import save_figure

            grid = np.linspace(max(sizes.min() * 0.8, 2.0), max(sizes.max() * 1.5, 30.0), 200)
            name = args.material if args.eg is None else "user parameters"
            save_figure(plot_gap_vs_size(grid, {name: band_gap_vs_size(grid, epsilon_r=args.epsilon, **kw)}, {}), args.output)
        return 0

    from halex.io import format_uncertain
    from halex.optics.output import analyze_spectra, write_optics

    res = analyze_spectra(None if args.absorption == "-" else args.absorption, args.pl or None, column=args.column,
                          pl_peaks=args.pl_peaks, shape=args.shape)
    write_optics(args.output, res)
    if res.features:
        f = res.features
        exciton = "none" if f["exciton_peak_eV"] is None else (
            f"{format_uncertain(f['exciton_peak_eV'], f['exciton_err_eV'], 'eV')} ({f['exciton_kind']})")
        log.info("absorption: first exciton %s, onset %.3f eV, Tauc %.3f eV", exciton, f["onset_eV"],
                 f["tauc_direct_gap_eV"])
    if res.pl_fit:
        log.info("PL: %d×%s, reduced χ² against the noise %.2f", len(res.pl_fit.peaks), res.pl_fit.shape,
                 res.pl_fit.chi2_noise)
        for p in res.pl_fit.peaks:
            log.info("PL peak %s (%.1f nm), FWHM %s%s", format_uncertain(p.center, p.center_err, "eV"), HC_EV_NM / p.center,
                     format_uncertain(1000 * p.fwhm, 1000 * p.fwhm_err, "meV"),
                     "" if p.determined else " (not determined by the data)")
        top = res.summary["pl"]["maximum_eV"]
        log.info("PL maximum %.4f eV (%.1f nm)", top, HC_EV_NM / top)
    for w in res.summary["warnings"]:
        warnings.warn(w, UserWarning, stacklevel=1)
    log.info("wrote %s", args.output)
    return 0
