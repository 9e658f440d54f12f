"""A relaxation killed mid-way resumes from its last checkpoint and ends where an
uninterrupted one ends (FIRE state is checkpointed, so the path is the same)."""

import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import HALEX, run_cli
from halex.io import write_structure
from halex.models import perovskite_nanocrystal


def _running_step(db) -> int:
    if not db.exists():
        return -1
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            rows = con.execute(
                "SELECT k.value FROM number_key_values k JOIN text_key_values t ON k.id = t.id "
                "WHERE k.key = 'step' AND t.key = 'status' AND t.value = 'running'"
            ).fetchall()
    except sqlite3.Error:
        return -1
    return int(max(r[0] for r in rows)) if rows else -1


@pytest.fixture(scope="module")
def model_and_reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    nc = perovskite_nanocrystal((3, 3, 3))
    nc.rattle(stdev=0.1, seed=2)
    model = write_structure(d / "model.extxyz", nc)
    r = run_cli("relax", str(model), "--db", str(d / "reference.db"), "--json")
    assert r.returncode == 0, r.stderr
    ref = json.loads(r.stdout)
    assert ref["converged"] and ref["steps"] > 25
    return model, ref


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_relaxation_resumes(tmp_path, model_and_reference, sig):
    model, ref = model_and_reference
    db = tmp_path / "run.db"
    out = tmp_path / "relaxed.extxyz"
    proc = subprocess.Popen([*HALEX, "relax", str(model), "--db", str(db), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while _running_step(db) < 10:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, sig)
    stdout, stderr = proc.communicate(timeout=60)
    killed_at = _running_step(db)
    assert 10 <= killed_at < ref["steps"]
    assert not out.exists(), "no output may be written by an interrupted run"
    if sig == signal.SIGINT:
        assert proc.returncode == 130
        assert "rerun the same command to resume" in stderr and "Traceback" not in stderr
    else:
        assert proc.returncode == -signal.SIGKILL

    r = run_cli("relax", str(model), "--db", str(db), "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["resumed_from_step"] >= killed_at
    assert res["converged"]
    assert res["steps"] == ref["steps"]
    assert res["energy_eV"] == pytest.approx(ref["energy_eV"], abs=1e-5)
    assert out.exists()
    # nothing left running, one finished row, and a third run is a cache hit
    again = json.loads(run_cli("relax", str(model), "--db", str(db), "--json").stdout)
    assert again["cached"] and again["row_id"] == res["row_id"]
    assert _running_step(db) == -1
