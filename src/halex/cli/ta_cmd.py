"""halex ta fit MAP -o out/ | halex ta compare A B ... --wavelength 405 -o cmp.png"""

from __future__ import annotations

import argparse
import logging
import warnings

from halex.cli._common import output_path

log = logging.getLogger("halex.ta")


def _map_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--time-unit", default=None, choices=["fs", "ps", "ns"], help="delay unit of the file (detected if omitted)")
    p.add_argument("--orientation", default=None, choices=["time-rows", "wavelength-rows"],
                   help="which axis runs down the rows (detected if omitted)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="ta_command", metavar="{fit,compare}", required=True)
    f = sub.add_parser("fit", help="chirp correction, kinetics at chosen wavelengths, global analysis")
    f.add_argument("map", help="ΔA(λ, t) text matrix (first row and column are the axes)")
    f.add_argument("-o", "--output", required=True, type=output_path("folder"), help="output folder (summary.json, CSV tables, figures)")
    _map_options(f)
    f.add_argument("--irf", type=float, default=None, help="fix the IRF FWHM in ps (fitted if omitted)")
    f.add_argument("--chirp", default="auto", help="auto (default), none, or t0 polynomial c0,c1,...[@center_nm] in ps "
                                                  "of u = (λ - center)/100 nm")
    f.add_argument("--chirp-order", type=int, default=2, help="order of the automatic chirp polynomial (default 2)")
    f.add_argument("--kinetics", nargs="*", type=float, default=[], metavar="NM", help="wavelengths to fit (nm)")
    f.add_argument("--components", type=int, default=2, help="exponentials per kinetic trace (default 2)")
    f.add_argument("--global", dest="global_", type=int, default=None, metavar="N",
                   help="global analysis with N components over all wavelengths")
    f.add_argument("--offset", action="store_true", help="add a non-decaying component")
    f.add_argument("--bandwidth", type=float, default=2.0, help="average kinetics over ±bandwidth/2 nm (default 2)")
    f.add_argument("--t-range", nargs=2, type=float, default=None, metavar=("TMIN", "TMAX"),
                   help="fit only delays TMIN..TMAX ps after each wavelength's time zero (e.g. 0.3 2000 leaves the "
                        "pulse overlap and its coherent artifact out)")
    f.add_argument("--exclude-wavelengths", nargs="+", default=[], metavar="LO-HI", type=_nm_range,
                   help="wavelength ranges left out of the chirp estimate and the global fit, e.g. 380-405 (pump scatter)")
    f.add_argument("--artifact", type=int, default=None, choices=[0, 1, 2],
                   help="model the coherent artifact in the global fit as the IRF and its derivatives up to this order")
    f.add_argument("--refine-chirp", action="store_true",
                   help="refine the estimated chirp in the global fit, within --chirp-bound of the estimate "
                        "(default: the estimate is held)")
    f.add_argument("--chirp-bound", type=float, default=0.3, metavar="PS",
                   help="largest change of t0(λ) the chirp refinement may make (ps, default 0.3)")
    f.add_argument("--no-background", action="store_true",
                   help="do not subtract each wavelength's mean ΔA before time zero")
    c = sub.add_parser("compare", help="normalised kinetics of several samples on one plot")
    c.add_argument("maps", nargs="+", help="ΔA maps")
    c.add_argument("--wavelength", type=float, required=True, help="probe wavelength (nm)")
    c.add_argument("-o", "--output", required=True, type=output_path("figure"),
                   help="figure (.png/.svg); a CSV with the traces is written next to it")
    c.add_argument("--labels", nargs="*", default=None, help="legend labels (default: file names)")
    c.add_argument("--bandwidth", type=float, default=4.0, help="average over ±bandwidth/2 nm (default 4)")
    c.add_argument("--no-align", action="store_true", help="do not shift each trace's half-rise to t = 0")
    _map_options(c)


def _nm_range(text: str) -> tuple[float, float]:
    """``380-405`` → (380.0, 405.0) for --exclude-wavelengths."""
    lo, sep, hi = text.partition("-")
    try:
        r = (float(lo), float(hi))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a wavelength range is LO-HI in nm, like 380-405, got {text!r}") from None
    if not sep or not 0 < r[0] < r[1]:
        raise argparse.ArgumentTypeError(f"a wavelength range is LO-HI in nm with 0 < LO < HI, like 380-405, got {text!r}")
    return r


def _parse_chirp(text: str, m):
    from halex.errors import InputError
    from halex.ta import Chirp

    if text in ("auto", "none"):
        return text
    body, _, center = text.partition("@")
    try:
        coeffs = tuple(float(v) for v in body.split(","))
        c = float(center) if center else float(0.5 * (m.wavelength_nm.min() + m.wavelength_nm.max()))
    except ValueError:
        raise InputError(f"--chirp must be auto, none or numbers like 0.1,0.3,0.25@540, got {text!r}") from None
    return Chirp(coeffs, c)


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from halex.errors import InputError
    from halex.ta import normalised_trace, read_ta_map
    from halex.ta.output import write_comparison

    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise InputError(f"--output must be a .png, .svg or .pdf file, got {args.output!r}")
    labels = args.labels or [Path(p).stem for p in args.maps]
    if len(labels) != len(args.maps):
        raise InputError(f"{len(labels)} labels for {len(args.maps)} maps")
    curves = {}
    for path, lab in zip(args.maps, labels):
        m = read_ta_map(path, time_unit=args.time_unit, orientation=args.orientation)
        curves[lab] = normalised_trace(m, args.wavelength, bandwidth_nm=args.bandwidth, align=not args.no_align)
    fig, table = write_comparison(out, curves, wavelength_nm=args.wavelength)
    log.info("wrote %s and %s", fig, table)
    return 0


def _log_results(fits, g) -> None:
    from halex.io import format_uncertain

    def taus(f):
        return ", ".join(format_uncertain(t, e, "ps") for t, e in zip(f.lifetimes_ps, f.lifetimes_err_ps))

    for f in fits:
        irf = f"{1000 * f.irf_fwhm_ps:.0f} fs" + (" (held)" if f.irf_fixed else f" ± {1000 * f.irf_fwhm_err_ps:.0f} fs")
        log.info("%g nm: tau = %s; IRF FWHM = %s", f.wavelength_nm, taus(f), irf)
    if g is not None:
        irf = (f"{1000 * g.irf_fwhm_ps:.0f} fs (held)" if g.irf_fixed
               else f"{1000 * g.irf_fwhm_ps:.0f} ± {1000 * g.irf_fwhm_err_ps:.0f} fs")
        chirp = "refined within its bound" if g.meta.get("chirp_refined") else "held at its estimate"
        log.info("global: tau = %s; IRF FWHM = %s; chirp %s; residual / noise = %.2f (reduced chi2 %.2g) over %d points",
                 taus(g), irf, chirp, g.reduced_chi2 ** 0.5, g.reduced_chi2, g.meta.get("n_points_fitted", 0))


def run(args: argparse.Namespace) -> int:
    from halex.errors import InputError
    from halex.ta import analyze_map, read_ta_map
    from halex.ta.output import write_ta_analysis

    if args.ta_command == "compare":
        return _compare(args)
    if args.irf is not None and not args.irf > 0:
        raise InputError(f"--irf (IRF FWHM) must be positive, in ps, got {args.irf}")
    if not args.kinetics and not args.global_:
        raise InputError("nothing to fit: give --kinetics NM ... and/or --global N")
    m = read_ta_map(args.map, time_unit=args.time_unit, orientation=args.orientation)
    log.info("map %s: %d delays (%.3g to %.3g ps, unit %s from %s) x %d wavelengths (%.0f-%.0f nm)", args.map,
             m.time_ps.size, m.time_ps.min(), m.time_ps.max(), m.meta["time_unit_file"], m.meta["time_unit_from"],
             m.wavelength_nm.size, m.wavelength_nm.min(), m.wavelength_nm.max())
    chirp = _parse_chirp(args.chirp, m)
    options = {"t_range_ps": tuple(args.t_range) if args.t_range else None, "exclude_nm": args.exclude_wavelengths,
               "artifact": args.artifact, "refine_chirp": args.refine_chirp, "chirp_bound_ps": args.chirp_bound,
               "background": not args.no_background}
    ch, g, fits, mfit = analyze_map(m, kinetics=args.kinetics, n_components=args.components,
                                    global_components=args.global_, irf_fwhm_ps=args.irf, chirp=chirp,
                                    chirp_order=args.chirp_order, offset=args.offset, bandwidth_nm=args.bandwidth,
                                    **options)
    write_ta_analysis(args.output, mfit, ch, g, fits, source=str(args.map), chirp_source=args.chirp,
                      options=options)
    _log_results(fits, g)
    for w in [w for f in fits for w in f.warnings] + (g.warnings if g is not None else []):
        warnings.warn(w, UserWarning, stacklevel=1)
    log.info("wrote %s", args.output)
    return 0
