"""Every benchmark writes its own results file: ``benchmarks/results/<name>.md``.

:func:`run_benchmark` runs a benchmark's ``main`` with its standard output copied into the
results file, under a header that records the date, the command, the machine (processor,
cores, memory) and the versions of Python, halex and the libraries that set the speed.
The file is written atomically when the benchmark finishes, so a results file is always
the complete output of one run; nothing in ``benchmarks/results`` is edited by hand.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import platform
import shlex
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
#: distributions whose versions go into every header (those installed)
VERSIONS = ("halex", "numpy", "scipy", "ase", "torch", "chgnet", "pymatgen", "scikit-image", "dask")


class _Tee(io.TextIOBase):
    def __init__(self, *streams) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()


def _memory_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def header(name: str) -> str:
    """Markdown header: date (UTC), command, machine and versions."""
    versions = []
    for dist in VERSIONS:
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    mem = _memory_gib()
    machine = (f"{platform.machine()} {platform.processor() or ''}".strip() + f", {os.cpu_count()} cores"
               + (f", {mem:.1f} GiB RAM" if mem else "") + f", {platform.system()} {platform.release()}")
    cmd = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])
    return (f"# {name}\n\n"
            f"- date: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}\n"
            f"- command: `{cmd}`\n"
            f"- machine: {machine}\n"
            f"- versions: Python {platform.python_version()}, {', '.join(versions)}\n\n")


def run_benchmark(name: str, main: Callable[[], int | None], *, fenced: bool = False) -> int:
    """Run ``main`` and write its output to ``results/<name>.md``; return its exit code.

    ``fenced`` puts plain-text output in a code block. A benchmark that raises or returns
    non-zero leaves the previous results file in place.
    """
    buf = io.StringIO()
    stdout = sys.stdout
    sys.stdout = _Tee(stdout, buf)
    try:
        code = int(main() or 0)
    finally:
        sys.stdout = stdout
    if code != 0:
        return code
    body = buf.getvalue()
    text = header(name) + (f"```\n{body}```\n" if fenced else body)
    RESULTS.mkdir(exist_ok=True)
    tmp = RESULTS / f".{name}.md.part"
    tmp.write_text(text)
    os.replace(tmp, RESULTS / f"{name}.md")
    print(f"[benchmark] wrote {RESULTS / f'{name}.md'}", file=sys.stderr)
    return 0


def read_cache(cache: Path | None) -> dict:
    """The finished work of an earlier run kept in a JSON cache file (empty without one)."""
    return json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}


def keep_cache(cache: Path | None, done: dict) -> None:
    """Write the finished work to the JSON cache file atomically (nothing without one)."""
    from halex.io import atomic_output

    if cache is not None:
        with atomic_output(cache) as fh:
            json.dump(done, fh, indent=1)
