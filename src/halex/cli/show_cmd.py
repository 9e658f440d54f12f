"""halex show MODEL -o picture.png: side and top views of a model."""

from __future__ import annotations

import argparse

from halex.cli._common import output_path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="structure file")
    p.add_argument("-o", "--output", required=True, type=output_path("figure"), help="picture (.png, .svg, .pdf)")
    p.add_argument("--color", default="element", help="element (default), domain or layer")
    p.add_argument("--title", default="")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from halex.errors import InputError
    from halex.io import read_structure
    from halex.plotting.figures import save_figure
    from halex.plotting.show import render_model

    if Path(args.output).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise InputError(f"--output must end in .png, .svg or .pdf, got {args.output!r}")
    atoms = read_structure(args.model)
    save_figure(render_model(atoms, color_by=args.color, title=args.title), args.output)
    print(args.output)
    return 0
