"""Draw figures in forked processes that load matplotlib while the caller computes.

Importing matplotlib and drawing a first figure (font cache, glyph layout) cost about
1 s on the 2-core reference machine, a third of a whole ``halex stem analyze`` of a
3,000-column image. Python threads cannot overlap that with the analysis (both hold the
GIL; measured: no gain), so :class:`FigureWorkers` forks processes at the start of a
command. They import matplotlib and draw a throw-away figure while the parent computes,
then each draws a share of the figures when the results exist. With two workers the
figures of a STEM analysis leave the critical path almost entirely
(``benchmarks/bench_stem.py``).

Fork exists on Linux only, as far as this module trusts it (macOS forks unsafely under
some system frameworks, Windows not at all); elsewhere, or with ``n=0``, every job runs in
the calling process, as it would without workers.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["FigureWorkers", "warm_up_matplotlib"]


def warm_up_matplotlib() -> None:
    """Import matplotlib's Agg figure stack and draw one small figure into memory (loads
    the font cache and lays out glyphs, so that the first real figure draws at full speed)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import mpl_toolkits.axes_grid1.anchored_artists  # noqa: F401  (scale bars of the STEM maps)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    ax = fig.subplots()
    ax.imshow([[0.0, 1.0], [1.0, 0.0]], cmap="gray")
    ax.scatter([0, 1], [1, 0], c=[0, 1])
    ax.set_title("x (Å) 0123456789 ±")
    fig.savefig(io.BytesIO(), format="png", dpi=40)


def _serve(conn) -> None:
    """Worker loop: warm up, then run ``(fn, args)`` jobs until ``None`` or the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    try:
        warm_up_matplotlib()
    except Exception:  # noqa: BLE001 - a failed warm-up only costs speed; the job reports real errors
        pass
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        fn, args = job
        try:
            conn.send((True, fn(*args)))
        except Exception as exc:  # noqa: BLE001 - sent back and raised in the parent
            try:
                conn.send((False, exc))
            except Exception:  # noqa: BLE001 - an exception that does not pickle
                conn.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


def _fork_context():
    if not sys.platform.startswith("linux") or "fork" not in mp.get_all_start_methods():
        return None
    return mp.get_context("fork")


class FigureWorkers:
    """``n`` forked figure processes, started on entering the context and stopped on leaving it.

    Parameters
    ----------
    n
        Number of worker processes; 0 (or a platform without a trusted fork) runs every
        job in the calling process.

    Examples
    --------
    >>> with FigureWorkers(2) as workers:      # doctest: +SKIP
    ...     result = expensive_analysis()       # the workers import matplotlib meanwhile
    ...     paths = workers.map(draw, [(result, "a"), (result, "b")])
    """

    def __init__(self, n: int = 2):
        self.n = max(0, int(n))
        self._procs: list = []
        self._conns: list = []

    def __enter__(self) -> FigureWorkers:
        ctx = _fork_context()
        for _ in range(self.n if ctx is not None else 0):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_serve, args=(child,), daemon=True)
            p.start()
            child.close()
            self._procs.append(p)
            self._conns.append(parent)
        return self

    def __exit__(self, *exc) -> None:
        for c in self._conns:
            try:
                c.send(None)
                c.close()
            except OSError:
                pass
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join()
        self._procs, self._conns = [], []

    def map(self, fn: Callable[..., Any], jobs: Sequence[tuple]) -> list[Any]:
        """``[fn(*args) for args in jobs]``, the jobs spread over the workers (round robin).

        ``fn`` must be a module-level function and the arguments picklable. A job whose
        worker has died runs here instead; an exception a job raised is raised here.
        """
        sent: list[tuple[int, Any]] = []
        results: list[Any] = [None] * len(jobs)
        for i, args in enumerate(jobs):
            if not self._conns:
                results[i] = fn(*args)
                continue
            conn = self._conns[i % len(self._conns)]
            try:
                conn.send((fn, tuple(args)))
                sent.append((i, conn))
            except (OSError, ValueError):
                results[i] = fn(*args)
        for i, conn in sent:
            try:
                ok, value = conn.recv()
            except (EOFError, OSError):
                results[i] = fn(*jobs[i])
                continue
            if not ok:
                raise value
            results[i] = value
        return results
