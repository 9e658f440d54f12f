"""Options shared by several commands."""

from __future__ import annotations

import argparse
import json
from typing import Any

from halex.errors import InputError


def add_engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default="mlip", help="engine name: mlip (default, CHGNet) or cp2k")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="engine setting, repeatable (e.g. --set cutoff_ry=300); values parsed as JSON")
    p.add_argument("--mpi-ranks", type=int, default=None, help="cp2k: MPI ranks (launch profile)")
    p.add_argument("--threads", type=int, default=None, help="threads per process (cp2k: OpenMP; mlip: PyTorch)")
    p.add_argument("--db", default="halex.db", help="result store: SQLite file or postgresql:// URL (default halex.db)")


def parse_settings(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"engine setting {item!r} must look like KEY=VALUE")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def make_engine(args: argparse.Namespace):
    from halex.engines import get_engine

    settings = parse_settings(args.settings)
    if args.mpi_ranks is not None and args.mpi_ranks < 1 or args.threads is not None and args.threads < 1:
        raise InputError("--mpi-ranks and --threads must be >= 1")
    if args.engine == "cp2k":
        from halex.engines.cp2k import Cp2kProfile

        return get_engine("cp2k", profile=Cp2kProfile(mpi_ranks=args.mpi_ranks, threads=args.threads), **settings) \
            if (args.mpi_ranks or args.threads) else get_engine("cp2k", **settings)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return get_engine(args.engine, **settings)


def open_store(url: str):
    from halex.store import ResultStore

    return ResultStore(url)


def output_path(kind: str):
    """argparse ``type=`` for ``-o/--output``: the path is checked (:func:`halex.io.check_output`)
    while the command line is parsed, before anything is computed."""
    def check(text: str) -> str:
        from halex.errors import HalexError
        from halex.io import check_output

        try:
            check_output(text, kind)
        except HalexError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    check.__name__ = f"{kind} path"
    return check


def add_json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout (for scripts)")


def report(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    """The result on stdout: ``lines`` for a person, or ``data`` as JSON with ``--json``."""
    if getattr(args, "json", False):
        from halex.io import json_safe

        print(json.dumps(json_safe(data), indent=1))
    else:
        print("\n".join(lines))
