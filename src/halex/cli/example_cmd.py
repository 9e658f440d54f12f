"""halex example xrd|optics|ta|stem -o DIR: small inputs with known truth to try the analyses on."""

from __future__ import annotations

import argparse

from halex.cli._common import output_path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=["xrd", "optics", "ta", "stem"], help="which analysis the files are for")
    p.add_argument("-o", "--output", required=True, type=output_path("folder"), help="output folder")


def run(args: argparse.Namespace) -> int:
    from halex.examples import write_example

    truth = write_example(args.kind, args.output)
    files = truth.get("files") or [truth["file"]]
    print(f"wrote {', '.join(files)} and truth.json to {args.output}/")
    print(f"try: cd {args.output} && {truth['command']}")
    return 0
