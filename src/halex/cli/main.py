"""``halex`` entry point: sub-commands registered by name, imported lazily.

Every :class:`~halex.errors.HalexError` is printed as one line ``halex: error: ...``
with exit status 2; Ctrl-C exits with 130 and a hint that rerunning resumes.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import warnings
from collections.abc import Sequence

from halex import __version__
from halex.errors import HalexError

# command name -> (module, one-line help); modules expose add_arguments(parser) and run(args)
COMMANDS: dict[str, tuple[str, str]] = {
    "relax": ("halex.cli.relax_cmd", "relax a structure with an engine (cached, resumable)"),
    "energy": ("halex.cli.energy_cmd", "single-point energy and forces of a structure (cached)"),
    "db": ("halex.cli.db_cmd", "inspect the result store: db list / db show ID"),
    "engines": ("halex.cli.engines_cmd", "list the energy engines and whether they can run here"),
    "phases": ("halex.cli.phases_cmd", "bulk phase library: phases list / phases generate"),
    "build": ("halex.cli.build_cmd", "build atomistic models: build nanocrystal / build heterostructure"),
    "exchange": ("halex.cli.exchange_cmd", "Cl->I exchange operations on a model (layers, monolayer, chalcohalide, alloy)"),
    "study": ("halex.cli.study_cmd", "exchange studies: study layers / chalcohalide / alloy / all (Dask, cached, report)"),
    "pathway": ("halex.cli.pathway_cmd", "exchange pathway: lattice model + Monte Carlo titration, heterostructure vs free NC"),
    "pathway-check": ("halex.cli.pathway_check_cmd", "validate the pathway lattice model on a periodic CsPb(Cl,I)3 crystal"),
    "electronic": ("halex.cli.electronic_cmd", "frontier orbitals per domain and band alignment (CP2K): electronic MODEL -o OUT"),
    "stem": ("halex.cli.stem_cmd", "STEM images: stem simulate MODEL / stem analyze IMAGE (columns, lattice, tilt, Cl/I)"),
    "xrd": ("halex.cli.xrd_cmd", "powder XRD: xrd pattern PHASE / xrd debye MODEL / xrd fit MEASURED --phases ..."),
    "optics": ("halex.cli.optics_cmd", "absorption/PL: optics fit ABS [PL] / optics composition --edx-counts ..."),
    "ta": ("halex.cli.ta_cmd", "transient absorption: ta fit MAP (chirp, kinetics, global) / ta compare A B ..."),
    "show": ("halex.cli.show_cmd", "render a model to PNG/SVG coloured by element, domain or layer"),
    "example": ("halex.cli.example_cmd", "small example inputs with known truth: example xrd|optics|ta|stem -o DIR"),
    "demo": ("halex.cli.demo_cmd", "run the demo on the embedded default engine"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line, exit 2, no usage block: what is wrong and where the options are listed."""
        self.exit(2, f"halex: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="halex",
        description="halex: halide exchange in perovskite-chalcohalide nanocrystal heterostructures",
        epilog="Run 'halex COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"halex {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug output")
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


class _Stop:
    """SIGINT and SIGTERM (what a batch scheduler sends) end a command the same way: as an interrupt.

    The first signal raises :class:`KeyboardInterrupt` where the command is, so stored results
    stay and the clean-up runs; the logs of the shutting-down Dask cluster are silenced, since
    a cluster torn down mid-task reports every closed connection as an error.
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum, frame) -> None:
        if self.signum is not None:  # a second signal while cleaning up: ignore it, clean-up is under way
            return
        self.signum = signum
        for name in ("distributed", "tornado", "asyncio"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        raise KeyboardInterrupt


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings of halex for a person: one ``halex: warning:`` line, no source location."""
    print(f"halex: warning: {message}", file=sys.stderr if file is None else file)


def _interrupted(stop: _Stop) -> int:
    """The one line and the exit status (128 + signal) of a command ended by a signal."""
    name = {signal.SIGTERM: "terminated (SIGTERM)"}.get(stop.signum, "interrupted")
    print(f"halex: {name}; results already stored are kept, rerun the same command to resume", file=sys.stderr)
    return 128 + (stop.signum or signal.SIGINT)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    warnings.showwarning = _show_warning
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)
    for noisy in ("matplotlib", "PIL", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stop = _Stop()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except HalexError as exc:
        print(f"halex: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _interrupted(stop)
    except Exception:
        if stop.signum is None:
            raise
        # the interrupt surfaced inside a library's lock or wait, whose unwinding then failed
        # (Dask's as_completed: "cannot release un-acquired lock"); it is still the signal
        return _interrupted(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
