"""Figure worker processes: jobs run in forked children, results and errors come back in order,
a dead worker costs only speed, and the STEM figures they draw are the bytes drawn in-process."""

import os
import sys

import numpy as np
import pytest

from halex.plotting.workers import FigureWorkers

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="figure workers fork on Linux only")


def _pid_times(k: int) -> tuple[int, int]:
    return os.getpid(), 3 * k


def _fail(message: str) -> None:
    raise ValueError(message)


@linux
def test_jobs_run_in_children_in_order():
    with FigureWorkers(2) as w:
        out = w.map(_pid_times, [(k,) for k in range(5)])
    assert [v for _, v in out] == [0, 3, 6, 9, 12]
    pids = {p for p, _ in out}
    assert os.getpid() not in pids and len(pids) == 2


def test_no_workers_runs_here():
    with FigureWorkers(0) as w:
        assert w.map(_pid_times, [(1,), (2,)]) == [(os.getpid(), 3), (os.getpid(), 6)]


@linux
def test_job_error_is_raised_in_the_caller():
    with FigureWorkers(1) as w, pytest.raises(ValueError, match="no such column"):
        w.map(_fail, [("no such column",)])


@linux
def test_dead_worker_falls_back_to_the_caller():
    with FigureWorkers(1) as w:
        w._procs[0].kill()
        w._procs[0].join()
        assert w.map(_pid_times, [(2,)]) == [(os.getpid(), 6)]


@linux
def test_stem_figures_from_workers_equal_in_process(tmp_path):
    from halex.models import perovskite_nanocrystal
    from halex.stem import simulate_image
    from halex.stem.analysis import analyze_image
    from halex.stem.figures import analysis_figures

    img, _ = simulate_image(perovskite_nanocrystal((6, 6, 6)), zone="001", kind="haadf", dose=1e5, seed=0)
    a = analyze_image(img)
    (tmp_path / "here").mkdir()
    (tmp_path / "forked").mkdir()
    here = analysis_figures(a, tmp_path / "here", "all")
    with FigureWorkers(2) as w:
        forked = analysis_figures(a, tmp_path / "forked", "all", workers=w)
    assert [p.name for p in here] == [p.name for p in forked] and len(here) >= 6
    for p, q in zip(here, forked):
        assert np.array_equal(np.frombuffer(p.read_bytes(), np.uint8), np.frombuffer(q.read_bytes(), np.uint8)), p.name
