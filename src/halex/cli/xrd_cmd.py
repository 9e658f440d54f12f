"""halex xrd pattern PHASE | xrd debye MODEL | xrd fit MEASURED --phases ..."""

from __future__ import annotations

import argparse
import warnings

from halex.cli._common import output_path


def _grid_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wavelength", default="CuKa", help="CuKa (Kα1+Kα2, default), CuKa1, MoKa, CoKa, ... or Å")
    p.add_argument("--range", nargs=2, type=float, default=(10.0, 80.0), metavar=("START", "STOP"), help="2θ range (degrees)")
    p.add_argument("--step", type=float, default=0.02, help="2θ step (degrees, default 0.02)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="xrd_command", metavar="{pattern,debye,fit}", required=True)
    a = sub.add_parser("pattern", help="powder pattern of a bulk phase (library name or CIF)")
    a.add_argument("phase", help="phase name (halex phases list) or .cif file")
    a.add_argument("-o", "--output", required=True, type=output_path("csv"),
                   help="CSV file (two_theta_deg,intensity); a PNG is written next to it")
    _grid_options(a)
    a.add_argument("--fwhm", type=float, default=0.08, help="instrument Gaussian FWHM (degrees, default 0.08)")
    a.add_argument("--size", type=float, default=None, help="crystallite size for Scherrer broadening (nm)")
    d = sub.add_parser("debye", help="powder pattern of an atomistic model by the Debye scattering equation")
    d.add_argument("model", help="structure file (finite model, e.g. a relaxed heterostructure)")
    d.add_argument("-o", "--output", required=True, type=output_path("csv"),
                   help="CSV file (two_theta_deg,intensity); a PNG is written next to it")
    _grid_options(d)
    d.add_argument("--bin", type=float, default=0.005, help="pair-distance bin width (Å, default 0.005)")
    d.add_argument("--compare", nargs="*", default=[], metavar="PHASE", help="bulk phases to draw in the figure")
    f = sub.add_parser("fit", help="fit a measured pattern as a mixture of phases")
    f.add_argument("measured", help=".xy/.xye/.csv/.dat/.txt or .xrdml")
    f.add_argument("--phases", nargs="+", required=True, help="phase names or CIF files")
    f.add_argument("-o", "--output", required=True, type=output_path("folder"), help="output folder (fit.csv, summary.json, fit.png/svg)")
    f.add_argument("--wavelength", default=None,
                   help="radiation (CuKa, CuKa1, ... or Å); default: the file's own (XRDML), else CuKa")
    f.add_argument("--range", nargs=2, type=float, default=None, metavar=("START", "STOP"), help="fit window (degrees)")
    f.add_argument("--background", type=int, default=6, help="Chebyshev background terms (default 6)")
    f.add_argument("--fwhm", type=float, default=None, help="fix the instrument FWHM (degrees); refined if omitted")
    f.add_argument("--lattice-range", type=float, default=0.03, help="lattice scale search ±fraction (default 0.03)")


def _figure(out, curves, title):
    from pathlib import Path

    from halex.plotting.figures import save_figure
    from halex.xrd.figures import plot_patterns

    save_figure(plot_patterns(curves, title=title), Path(out).with_suffix(".png"))


def run(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from halex.errors import InputError
    from halex.xrd import bulk_pattern, debye_pattern, fit_pattern, read_pattern, two_theta_grid, write_fit, write_pattern

    log = logging.getLogger("halex.xrd")
    if args.xrd_command in ("pattern", "debye"):
        if Path(args.output).suffix.lower() != ".csv":
            raise InputError(f"--output must be a .csv file, got {args.output!r}")
        x = two_theta_grid(args.range[0], args.range[1], args.step)
    if args.xrd_command == "pattern":
        from halex.phases import load_phase

        atoms = load_phase(args.phase)
        x, y, refl = bulk_pattern(atoms, x, wavelength=args.wavelength, fwhm_instr_deg=args.fwhm, size_nm=args.size)
        write_pattern(args.output, x, y, header={"phase": atoms.info.get("phase"), "source": atoms.info.get("source"),
                                                 "wavelength": args.wavelength, "fwhm_instr_deg": args.fwhm,
                                                 "size_nm": args.size, "intensity": "normalised to max 100"})
        _figure(args.output, {str(atoms.info.get("phase")): (x, y)}, f"{atoms.info.get('phase')} ({args.wavelength})")
        log.info("wrote %s (%d reflections)", args.output, refl.d_A.size)
        return 0
    if args.xrd_command == "debye":
        import time

        from halex.io import read_structure
        from halex.phases import load_phase

        atoms = read_structure(args.model)
        t0 = time.perf_counter()
        x, y = debye_pattern(atoms, x, wavelength=args.wavelength, bin_A=args.bin)
        log.info("Debye pattern of %d atoms in %.2f s", len(atoms), time.perf_counter() - t0)
        write_pattern(args.output, x, y, header={"model": args.model, "natoms": len(atoms), "wavelength": args.wavelength,
                                                 "method": "Debye scattering equation, pair-distance bins "
                                                           f"{args.bin} A", "intensity": "electrons^2 (absolute)"})
        curves = {f"model ({len(atoms)} atoms)": (x, y)}
        for name in args.compare:
            bx, by, _ = bulk_pattern(load_phase(name), x, wavelength=args.wavelength)
            curves[f"bulk {name}"] = (bx, by)
        _figure(args.output, curves, f"Debye pattern: {Path(args.model).name}")
        log.info("wrote %s", args.output)
        return 0
    from halex.io import format_uncertain

    pat = read_pattern(args.measured)
    fit = fit_pattern(pat, args.phases, wavelength=args.wavelength, n_background=args.background,
                      fwhm_instr_deg=args.fwhm, lattice_range=args.lattice_range,
                      two_theta_range=tuple(args.range) if args.range else None)
    write_fit(fit, args.output)
    for p in fit.phases:
        cell = ", ".join(f"{k} = {format_uncertain(v, e, 'Å')}" for k, v, e in zip("abc", p.cell_A, p.cell_err_A))
        print(f"{p.name:<14} weight fraction {format_uncertain(p.weight_fraction, p.weight_fraction_err)}, {cell}, "
              f"size {format_uncertain(p.size_nm, p.size_nm_err, 'nm')}")
    lam = " + ".join(f"{w:g}×{lam:.5f} Å" for lam, w in fit.wavelength)
    print(f"Rwp = {100 * fit.rwp:.2f} %, χ²_red = {fit.chi2_red:.2f}; radiation {lam} ({fit.meta['wavelength_from']}); "
          f"errors × {fit.meta['berar_lelann_factor']:.2f} (Bérar–Lelann); wrote {Path(args.output)}/")
    for text in fit.warnings[1 if fit.warnings and fit.warnings[0].startswith("the phases explain") else 0:]:
        warnings.warn(text, UserWarning, stacklevel=1)
    return 0
