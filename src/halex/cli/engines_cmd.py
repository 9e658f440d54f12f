"""halex engines: registered engines and whether they run here."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check", action="store_true", help="also load each engine (slower)")


def run(args: argparse.Namespace) -> int:
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
