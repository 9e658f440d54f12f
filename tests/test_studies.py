"""Exchange studies end to end on a small heterostructure with the real default engine.

Model: perovskite 2×2×2 on one chalcohalide layer (108 atoms); relaxations to
fmax = 0.1 eV/Å so that the whole module runs in a few minutes on 2 cores.
"""

import csv
import json
import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import HALEX, run_cli
from halex.errors import InputError
from halex.units import EV_KCAL_PER_MOL

FMAX = "0.1"


@pytest.fixture(scope="module")
def hs_file(tmp_path_factory):
    from halex.io import write_structure
    from halex.models import heterostructure

    path = tmp_path_factory.mktemp("hs") / "hs.extxyz"
    write_structure(path, heterostructure((2, 2, 2), 1))
    return path


@pytest.fixture(scope="module")
def all_run(hs_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("all")
    r = run_cli("study", "all", "--model", str(hs_file), "--max-layers", "1", "--percents", "0", "50", "100", "--random-seeds", "2",
                "--replicas", "2", "--seeds", "2",
                "--db", str(out / "halex.db"),
                "--fmax", FMAX, "--workers", "1", "-o", str(out), timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def _f(v):
    return float(v) if v not in ("", None) else None


def test_study_all_writes_tables_figures_report(all_run):
    out = all_run
    layers = _rows(out / "layers" / "layers.csv")
    assert [(r["start"], r["n_layers"]) for r in layers] == [("none", "0"), ("interface", "1"), ("bottom", "1")]
    assert len(_rows(out / "layers" / "layers_difference.csv")) == 1
    chalco = _rows(out / "chalcohalide" / "chalcohalide.csv")
    # --seeds 2: two nested series of site choices; 0 % and 100 % are the same models in both, relaxed once
    assert [(r["seed"], float(r["percent"])) for r in chalco] == [("0", 50.0), ("0", 100.0), ("1", 50.0), ("1", 100.0)]
    assert chalco[0]["from_model"] == chalco[2]["from_model"] == "chalco-0"
    assert chalco[1]["model"] == chalco[3]["model"] == "chalco-100" and chalco[2]["model"] in ("chalco-50", "chalco-50-s1")
    alloy = _rows(out / "alloy" / "alloy.csv")
    patterns = [r["pattern"] for r in alloy]
    assert patterns.count("random") == 2 and {"csi-parallel", "csi-perpendicular", "pbi2-perpendicular"} <= set(patterns)
    assert len(patterns) <= 2 + 2 * 3  # a plane choice identical to an earlier one is not relaxed again
    summary = _rows(out / "alloy" / "alloy_summary.csv")
    assert [r["pattern"] for r in summary][0] == "random"
    # the spread is the sample standard deviation of the random seeds' ΔE, recomputed here
    random_dE = [float(r["dE_kcal_mol"]) for r in alloy if r["pattern"] == "random"]
    assert _f(summary[0]["spread_kcal_mol"]) == pytest.approx(float(np.std(random_dE, ddof=1)), rel=1e-6)
    assert _f(summary[0]["dE_kcal_mol"]) == pytest.approx(float(np.mean(random_dE)), rel=1e-6)
    for sub, stem in (("layers", "layers_energy_strain"), ("chalcohalide", "chalcohalide_energy_strain"), ("alloy", "alloy_energies")):
        for ext in ("png", "svg"):
            assert (out / sub / f"{stem}.{ext}").stat().st_size > 1000
    meta = json.loads((out / "layers" / "layers.json").read_text())["settings"]
    assert meta["engine"]["name"] == "mlip" and meta["pbx2_reference"] == "molecule" and meta["fmax_eV_per_A"] == 0.1
    html = (out / "report.html").read_text()
    assert "layers_energy_strain.png" in html and "alloy_summary" in html and "chalcohalide" in html
    # conclusions over all studies: every row has a verdict; the ordered-pattern intervals are
    # prediction intervals from the random seeds' spread, recomputed here
    from scipy.stats import t

    concl = _rows(out / "conclusions.csv")
    assert {r["study"] for r in concl} == {"layers", "chalcohalide", "alloy"}
    assert all(r["verdict"] in ("holds", "reversed", "not resolved at this noise", "no error estimate") for r in concl)
    # two replicas per model: each row keeps the lower, and the layers verdict has an interval from their spread
    for r in layers:
        e = [float(v) for v in r["replica_energies_eV"].split()]
        assert len(e) == 2 and float(r["energy_eV"]) == pytest.approx(min(e), abs=1e-6)  # 6 decimals in the CSV
        assert _f(r["replica_spread_eV"]) == pytest.approx(float(np.std(e, ddof=1)), rel=1e-3, abs=2e-6)
    (lay,) = [r for r in concl if r["study"] == "layers" and "ΔE_cum" in r["question"]]
    assert lay["verdict"] != "no error estimate" and _f(lay["se"]) > 0 and lay["unit"] == "kcal/mol per halide"
    strain = [r for r in concl if r["study"] == "layers" and "strain(pristine)" in r["question"]]
    assert len(strain) == 2 and all(r["unit"] == "% strain" and _f(r["se"]) > 0 for r in strain)
    # the chalcohalide questions over 2 seeds: t interval of the per-seed differences, recomputed here
    first = {k: [r for r in chalco if r["seed"] == k] for k in ("0", "1")}
    d = [float(v[0]["dE_step_kcal_mol"]) - min(float(r["dE_step_kcal_mol"]) for r in v[1:]) for v in first.values()]
    (ch,) = [r for r in concl if r["study"] == "chalcohalide" and "most favourable" in r["question"]]
    assert _f(ch["value"]) == pytest.approx(np.mean(d), abs=1e-6)
    assert _f(ch["se"]) == pytest.approx(np.std(d, ddof=1) / np.sqrt(2), rel=1e-5, abs=1e-9) and "2 seeds" in ch["method"]
    s_rand = float(np.std(random_dE, ddof=1))
    for r in concl:
        if r["study"] == "alloy" and "lies below the random alloy" in r["question"] and "prediction" in r["method"]:
            assert _f(r["se"]) == pytest.approx(s_rand * np.sqrt(1 + 1 / 2), rel=1e-6)
            half = t.ppf(0.975, 1) * _f(r["se"])
            assert _f(r["ci95_high"]) - _f(r["value"]) == pytest.approx(half, rel=1e-6)
    assert html.index("Conclusions") < html.index("Summary")


def test_energies_follow_the_formula_from_stored_energies(all_run):
    """ΔE recomputed here from the store's rows, independently of the study code."""
    from ase.db import connect

    out = all_run
    db = connect(out / "halex.db")
    energy_of = {}
    for row in db.select():
        label = row.get("label", "")
        if label.startswith(("study ", "reference ")):
            energy_of[label] = row.energy
    e_pbcl2 = energy_of["reference PbCl2 molecule"]
    e_pbi2 = energy_of["reference PbI2 molecule"]

    def kept(name):  # the lowest of the model's replicas (built start "study NAME", perturbed "study NAME~rK")
        return min(e for label, e in energy_of.items() if label == f"study {name}" or label.startswith(f"study {name}~r"))

    layers = {r["model"]: r for r in _rows(out / "layers" / "layers.csv")}
    for start in ("interface", "bottom"):
        row = layers[f"{start}-1"]
        x = int(row["x_total"])
        e1, e0 = kept(f"{start}-1"), kept("pristine")
        expected = ((e1 + x / 2 * e_pbcl2) - (e0 + x / 2 * e_pbi2)) / x * EV_KCAL_PER_MOL
        assert float(row["dE_cum_kcal_mol"]) == pytest.approx(expected, abs=1e-6)
        assert float(row["energy_eV"]) == pytest.approx(e1, abs=1e-6)
    diff = _rows(out / "layers" / "layers_difference.csv")[0]
    assert float(diff["dE_cum_interface_minus_bottom_kcal_mol"]) == pytest.approx(
        float(layers["interface-1"]["dE_cum_kcal_mol"]) - float(layers["bottom-1"]["dE_cum_kcal_mol"]), abs=1e-9)
    chalco = _rows(out / "chalcohalide" / "chalcohalide.csv")
    second = chalco[1]
    e_after, e_before = kept("chalco-100"), kept("chalco-50")
    x = int(second["x_step"])
    expected = ((e_after + x / 2 * e_pbcl2) - (e_before + x / 2 * e_pbi2)) / x * EV_KCAL_PER_MOL
    assert float(second["dE_step_kcal_mol"]) == pytest.approx(expected, abs=1e-6)
    assert float(second["dE_minus_first_step_kcal_mol"]) == pytest.approx(expected - float(chalco[0]["dE_step_kcal_mol"]), abs=1e-6)
    # the two I counts in each series add up to every Cl of the first chalcohalide layer
    meta = json.loads((out / "chalcohalide" / "chalcohalide.json").read_text())["settings"]
    assert meta["seeds"] == [0, 1]
    for k in ("0", "1"):
        assert sum(int(r["x_step"]) for r in chalco if r["seed"] == k) == meta["sites"]


def test_strain_of_a_nanocrystal_against_itself_is_zero():
    from halex.analysis import interfacial_strain, pair_strain, strain_by_layer
    from halex.models import heterostructure
    from halex.studies import standalone_perovskite

    hs = heterostructure((3, 3, 2), 1)
    nc = standalone_perovskite(hs)
    pairs, strain = pair_strain(nc, nc)
    assert len(pairs) > 0 and np.abs(strain).max() < 1e-12
    assert interfacial_strain(nc, nc) == 0.0
    # a known homogeneous expansion gives that strain on every pair
    big = nc.copy()
    big.positions *= 1.02
    assert np.allclose(pair_strain(big, nc)[1], 2.0)
    assert all(v == pytest.approx(2.0) for v in strain_by_layer(big, nc).values())


def test_second_run_is_all_cache_hits(all_run, hs_file, monkeypatch):
    """Rerunning the layers study on the same store never builds a calculator."""
    from halex.engines import get_engine
    from halex.io import read_structure
    from halex.studies import StudySettings, layers_study

    def boom(self, directory=None):
        raise AssertionError("a cached study must not compute")

    monkeypatch.setattr(type(get_engine()), "calculator", boom)  # the default engine, whichever it is
    s = layers_study(read_structure(hs_file), 1, StudySettings(store_url=str(all_run / "halex.db"), fmax=0.1, replicas=2))
    stored = {r["model"]: r for r in _rows(all_run / "layers" / "layers.csv")}
    for row in s.tables["layers"][1:]:
        assert row["dE_cum_kcal_mol"] == pytest.approx(float(stored[row["model"]]["dE_cum_kcal_mol"]), abs=1e-9)


def test_bad_input_fails_before_computing(hs_file, tmp_path):
    from halex.io import read_structure
    from halex.models import perovskite_nanocrystal
    from halex.studies import StudySettings, alloy_study, chalcohalide_study, layers_study

    hs = read_structure(hs_file)
    settings = StudySettings(engine="no-such-engine-is-never-built", store_url=str(tmp_path / "x.db"))
    with pytest.raises(InputError, match="max-layers"):
        layers_study(hs, 5, settings)
    with pytest.raises(InputError, match="--percents"):
        chalcohalide_study(hs, [0, 120], settings)
    with pytest.raises(InputError, match="fraction"):
        alloy_study(hs, 1.5, 3, settings)
    with pytest.raises(InputError, match="exchanges nothing"):
        alloy_study(hs, 0.0, 3, settings)
    with pytest.raises(InputError, match="chalcohalide domain"):
        chalcohalide_study(perovskite_nanocrystal((2, 2, 2)), [0, 100], settings)
    bare = tmp_path / "bare.xyz"
    import ase.io

    ase.io.write(bare, hs, format="xyz")  # plain xyz: no arrays
    from halex.io import write_structure
    from halex.models import heterostructure

    narrow = write_structure(tmp_path / "narrow.extxyz", heterostructure((1, 1, 2), 1))  # one cell wide: no strain
    out = tmp_path / "out"
    for args, needle in [(("layers", "--model", str(bare), "--max-layers", "1"), "per-atom arrays"),
                         (("layers", "--model", str(narrow), "--max-layers", "1", "--db", str(tmp_path / "x.db")),
                          "no in-plane Pb–Pb pairs"),  # refused before a store is opened or anything relaxed
                         (("layers", "--model", str(hs_file), "--max-layers", "1", "--scheduler", "tcp://127.0.0.1:9"),
                          "cannot reach the Dask scheduler")]:
        r = run_cli("study", *args, "-o", str(out), timeout=120)
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()  # nothing written, not even the folder
    assert not list(tmp_path.glob("x.db*"))


def test_bad_input_starts_no_dask_cluster(hs_file, tmp_path, monkeypatch):
    """With local workers the cluster starts with the first relaxation, after all validation:
    bad input never starts (and has to tear down) worker processes."""
    import ase.io

    import halex.studies.runner as runner
    from halex.cli.main import main

    def _no_cluster(*a, **k):
        raise AssertionError("a Dask cluster was started for bad input")

    monkeypatch.setattr(runner, "connect", _no_cluster)
    bare = tmp_path / "bare.xyz"
    ase.io.write(bare, ase.io.read(hs_file), format="xyz")
    for args in (["layers", "--model", str(bare), "--max-layers", "1"], ["layers", "--model", str(hs_file), "--max-layers", "9"],
                 ["alloy", "--model", str(hs_file), "--fraction", "0"], ["all", "--model", str(hs_file), "--percents", "50", "20"]):
        assert main(["study", *args, "--workers", "2", "-o", str(tmp_path / "out")]) == 2, args
    assert not (tmp_path / "out").exists()
    lazy = runner.LazyClient(None, 2)
    with pytest.raises(AssertionError, match="cluster was started"):
        lazy.get()  # only get() connects


@pytest.mark.slow
def test_killed_study_resumes_with_identical_numbers(all_run, hs_file, tmp_path):
    """SIGKILL a layers study after its first relaxations; the rerun completes with the same numbers."""
    out = tmp_path / "killed"
    args = [*HALEX, "study", "layers", "--model", str(hs_file), "--max-layers", "1", "--fmax", FMAX, "--workers", "1", "-o", str(out),
            "--replicas", "2"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = ""
    deadline = time.time() + 600
    while time.time() < deadline:
        line = proc.stdout.readline()
        seen += line
        if "[study] 2/" in line:  # two relaxations done, the third under way
            time.sleep(3)
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, seen[-2000:]
    assert not (out / "layers.csv").exists()
    r = run_cli("study", "layers", "--model", str(hs_file), "--max-layers", "1", "--fmax", FMAX, "--workers", "1", "-o", str(out),
                "--replicas", "2", timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "(from the store)" in r.stderr
    again = {r["model"]: r for r in _rows(out / "layers.csv")}
    ref = {r["model"]: r for r in _rows(all_run / "layers" / "layers.csv")}
    for name in ("pristine", "interface-1", "bottom-1"):  # the same starts (warm from the same parents) as all_run
        assert float(again[name]["energy_eV"]) == pytest.approx(float(ref[name]["energy_eV"]), abs=1e-5)
        assert again[name]["replica_energies_eV"] == ref[name]["replica_energies_eV"]
        assert again[name]["start_from"] == ref[name]["start_from"]


@pytest.mark.slow
def test_two_worker_dask_cluster(all_run, hs_file, tmp_path):
    """The layers study on a 2-worker local Dask cluster gives the inline run's numbers."""
    out = tmp_path / "dask"
    r = run_cli("study", "layers", "--model", str(hs_file), "--max-layers", "1", "--fmax", FMAX, "--workers", "2", "-o", str(out),
                "--replicas", "2", timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "[study] 9/9" in r.stderr
    assert re.search(r"interface-1 .*\(warm from pristine(~r1)?\)", r.stderr), r.stderr[-3000:]
    # per-relaxation step progress travels from the worker processes to the client's log
    assert re.search(r"\[study\] pristine \(\d+ atoms\): step 0 ", r.stderr), r.stderr[-3000:]
    assert re.search(r"\[study\] interface-1 \(\d+ atoms\): step 10 ", r.stderr), r.stderr[-3000:]
    par = {r["model"]: r for r in _rows(out / "layers.csv")}
    ref = {r["model"]: r for r in _rows(all_run / "layers" / "layers.csv")}
    for name in ("pristine", "interface-1", "bottom-1"):
        # same starts and relaxation paths; single- vs multi-threaded PyTorch may differ in the last digits
        assert float(par[name]["energy_eV"]) == pytest.approx(float(ref[name]["energy_eV"]), abs=2e-3)


def test_study_all_plan_fits_defaults_and_refuses_a_stage_that_cannot_run():
    from halex.models import heterostructure
    from halex.studies.exchange import DEFAULT_MAX_LAYERS, plan_all

    small = heterostructure((2, 2, 2), 1)  # 2 perovskite layers
    plan = plan_all(small)
    assert plan["max_layers"] == 1 and "fitted to the model: 1" in plan["notes"][0]
    # at most: layers 2·(1 + 2·1), chalcohalide 2·3 seeds·6 percents, alloy 2·(1 + 5 random + 3 seeds·3 patterns):
    # model + its NC each
    assert plan["relaxations"] == {"layers": 6, "chalcohalide": 36, "alloy": 30}
    with pytest.raises(InputError, match=r"--max-layers 2 exchanges every perovskite layer.*alloy.*--max-layers 1"):
        plan_all(small, max_layers=2)
    assert plan_all(heterostructure((2, 2, 4), 1))["max_layers"] == DEFAULT_MAX_LAYERS
    with pytest.raises(InputError, match="at least 2 perovskite layers"):
        plan_all(heterostructure((2, 2, 1), 1))


def test_a_failing_stage_keeps_the_finished_ones(lj_engine, tmp_path, monkeypatch):
    """study all writes each study when it is finished; a later stage's failure leaves them in
    place and names the stage (real relaxations, with a Lennard-Jones engine for speed)."""
    import halex.studies.exchange as st
    from halex.cli.main import main
    from halex.io import write_structure
    from halex.models import heterostructure

    model = write_structure(tmp_path / "hs.extxyz", heterostructure((2, 2, 2), 1))

    def broken_alloy(*args, **kwargs):
        raise InputError("no Cl left in the perovskite domain: nothing to alloy")

    monkeypatch.setattr(st, "alloy_study", broken_alloy)
    out = tmp_path / "out"
    rc = main(["study", "all", "--model", str(model), "--engine", "test-lj", "--fmax", "0.2", "--workers", "1",
               "--percents", "0", "100", "-o", str(out)])
    assert rc == 2
    for study, table in (("layers", "layers.csv"), ("chalcohalide", "chalcohalide.csv")):
        assert (out / study / table).stat().st_size > 0
    assert not (out / "alloy").exists()
    report = (out / "report.html").read_text()
    assert "layers" in report and "chalcohalide" in report


def test_stage_failure_message_names_the_stage(lj_engine, tmp_path, monkeypatch):
    import halex.studies.exchange as st
    from halex.models import heterostructure
    from halex.studies import StudySettings, all_studies

    def broken_alloy(*args, **kwargs):
        raise InputError("no Cl left")

    monkeypatch.setattr(st, "alloy_study", broken_alloy)
    seen = []
    settings = StudySettings(engine=lj_engine, store_url=str(tmp_path / "s.db"), fmax=0.2)
    with pytest.raises(InputError, match=r"the alloy stage failed: no Cl left \(finished stages, kept: layers, chalcohalide\)"):
        all_studies(heterostructure((2, 2, 2), 1), settings, percents=(0, 100), on_study=seen.append)
    assert [s.name for s in seen] == ["layers", "chalcohalide"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_a_dask_study_with_one_line(hs_file, tmp_path, sig):
    """SIGTERM (what a batch scheduler sends) and SIGINT stop a 2-worker study with one line,
    no traceback and exit 128 + signal; the rerun resumes from the store."""
    out = tmp_path / "sig"
    args = [*HALEX, "study", "layers", "--model", str(hs_file), "--max-layers", "1", "--fmax", FMAX, "--workers", "2",
            "-o", str(out), "--db", str(tmp_path / "sig.db"), "--replicas", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = ""
    deadline = time.time() + 600
    while time.time() < deadline:
        line = proc.stdout.readline()
        seen += line
        if "[study] 1/" in line:  # one relaxation done, others running on the workers
            proc.send_signal(sig)
            break
    rest, _ = proc.communicate(timeout=120)
    seen += rest
    assert proc.returncode == 128 + sig, seen[-3000:]
    assert "Traceback" not in seen and "CommClosedError" not in seen and "distributed." not in seen, seen[-3000:]
    last = seen.strip().splitlines()[-1]
    assert last.startswith("halex: ") and "rerun the same command to resume" in last, seen[-2000:]
    assert "halex: terminated (SIGTERM)" in last if sig == signal.SIGTERM else "halex: interrupted" in last
    r = run_cli("study", "layers", "--model", str(hs_file), "--max-layers", "1", "--fmax", FMAX, "--workers", "1",
                "-o", str(out), "--db", str(tmp_path / "sig.db"), "--replicas", "1", timeout=900)
    assert r.returncode == 0 and "(from the store)" in r.stderr, r.stderr[-3000:]


def test_report_reads_like_a_report(lj_engine, tmp_path):
    """Summary first, settings as a table with a loose fmax flagged, readable headers with units,
    a caption under every figure, and a picture of every relaxed model."""
    from html.parser import HTMLParser

    from halex.models import heterostructure
    from halex.studies import StudySettings, layers_study, write_report, write_study

    settings = StudySettings(engine=lj_engine, store_url=str(tmp_path / "s.db"), fmax=0.2)
    study = layers_study(heterostructure((2, 2, 2), 1), 1, settings)
    write_study(study, tmp_path / "out")
    page = write_report([study], tmp_path / "out", {"layers": "."}).read_text()

    class Parts(HTMLParser):
        def __init__(self):
            super().__init__()
            self.h2, self.th, self.figures, self.captions, self.imgs, self._tag = [], [], 0, 0, [], None

        def handle_starttag(self, tag, attrs):
            self._tag = tag
            self.figures += tag == "figure"
            self.captions += tag == "figcaption"
            if tag == "img":
                self.imgs.append(dict(attrs)["src"])

        def handle_data(self, data):
            if self._tag == "h2" and data.strip():
                self.h2.append(data.strip())
            if self._tag == "th" and data.strip():
                self.th.append(data.strip())

    parts = Parts()
    parts.feed(page)
    assert parts.h2[:3] == ["Conclusions", "Summary", "Settings"]  # the answers first
    assert "no error estimate" in page and "Verdict rule" in page
    assert "favoured start: " + study.meta["favoured_start"] in page
    assert "looser than the default 0.0231 eV/Å" in page
    assert "ΔE cumulative (kcal/mol)" in parts.th and "interfacial strain (%)" in parts.th
    assert not [h for h in parts.th if "_kcal_mol" in h or "_percent" in h]
    assert parts.figures == parts.captions and parts.figures >= len(study.models) + 2
    models = [src for src in parts.imgs if src.startswith("./models/")]
    assert len(models) == len(study.models)
    for src in parts.imgs:
        assert (tmp_path / "out" / src).stat().st_size > 1000, src


def test_study_all_says_its_plan_or_refuses_at_once(tmp_path, monkeypatch, caplog):
    """A stage that cannot run is refused before any worker or relaxation starts; a study
    that can run says first how many relaxations it plans and roughly how long they take."""
    import logging

    import halex.studies.exchange as st
    from halex.cli.main import main

    r = run_cli("study", "all", "--size", "2", "2", "2", "1", "--max-layers", "2", "-o", str(tmp_path / "no"))
    assert r.returncode == 2 and "exchanges every perovskite layer" in r.stderr and "--max-layers 1" in r.stderr
    assert not (tmp_path / "no").exists()

    class NoRun(Exception):
        pass

    def first_stage(*args, **kwargs):  # stop where the first relaxation would start
        raise NoRun

    monkeypatch.setattr(st, "layers_study", first_stage)
    logger = logging.getLogger("halex.study")  # main() resets the root handlers: listen on the logger itself
    logger.addHandler(caplog.handler)
    try:
        with pytest.raises(NoRun):
            main(["study", "all", "--size", "2", "2", "2", "1", "--workers", "1", "--random-seeds", "2",
                  "--percents", "0", "100", "-o", str(tmp_path / "out")])
    finally:
        logger.removeHandler(caplog.handler)
    first = [r.getMessage() for r in caplog.records if r.name == "halex.study"][0]
    # at most layers (1 + 2·1) + chalcohalide 3 seeds·2 + alloy (1 + 2 + 3 seeds·3) = 21 models, each relaxed
    # from 2 replica starts (the default) plus its standalone nanocrystal: 63
    assert first.startswith("plan: 63 relaxations of up to 108 atoms with mlip: ≈ "), first
    assert "peak memory" in first


def test_one_store_for_every_command(lj_engine, tmp_path, monkeypatch, caplog):
    """Without --db every command uses $HALEX_DB (else ./halex.db): a study written into a new
    folder reuses every relaxation an earlier study computed, and says where its store is."""
    import json
    import logging

    from halex.cli.main import main
    from halex.io import write_structure
    from halex.models import heterostructure

    store = tmp_path / "shared.db"
    monkeypatch.setenv("HALEX_DB", str(store))
    model = write_structure(tmp_path / "hs.extxyz", heterostructure((2, 2, 2), 1))
    args = ["study", "layers", "--model", str(model), "--max-layers", "1", "--engine", "test-lj", "--fmax", "0.2",
            "--workers", "1"]
    assert main([*args, "-o", str(tmp_path / "first")]) == 0
    logger = logging.getLogger("halex.study")
    logger.addHandler(caplog.handler)
    try:
        assert main([*args, "-o", str(tmp_path / "second")]) == 0
    finally:
        logger.removeHandler(caplog.handler)
    done = [r.getMessage() for r in caplog.records if " done: " in r.getMessage()]
    assert len(done) == 9 and all("(from the store)" in m for m in done)  # 3 models × 2 replicas + 3 nanocrystals
    meta = json.loads((tmp_path / "second" / "layers.json").read_text())["settings"]
    assert meta["store"] == str(store) and store.is_file()
    assert not (tmp_path / "first" / "halex.db").exists()


def test_replicas_below_one_are_refused_before_anything_runs(hs_file, tmp_path):
    r = run_cli("study", "layers", "--model", str(hs_file), "--max-layers", "1", "--replicas", "0", "--workers", "1",
                "-o", str(tmp_path / "out"), "--db", str(tmp_path / "x.db"))
    assert r.returncode == 2 and "--replicas must be >= 1" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.db").exists()


def _workers_beyond_memory():
    """Local workers whose summed memory estimate for the 108-atom model exceeds this machine."""
    from halex.engines import get_engine
    from halex.engines.base import machine_memory_GB
    from halex.models import heterostructure

    return str(int(machine_memory_GB() / get_engine("mlip").cost(heterostructure((2, 2, 2), 1)).memory_GB) + 1)


@pytest.mark.parametrize("extra, message", [
    (["--optimizer", "Foo"], "unknown --optimizer 'Foo'"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--random-seeds", "1"], "--random-seeds must be an integer >= 2"),
    (["--workers", "MEM"], "GB of memory ("),
])
def test_bad_protocol_or_a_study_too_large_for_memory_is_refused(tmp_path, extra, message):
    """One line, exit 2, nothing written: an unknown optimizer, fewer than one seed or two random
    alloys, or a study whose memory estimate
    (workers × the engine's cost-model memory per model) exceeds the machine; the message says it."""
    extra = [_workers_beyond_memory() if v == "MEM" else v for v in extra]
    r = run_cli("study", "all", "--size", "2", "2", "2", "1", *extra, "-o", str(tmp_path / "out"), "--db", str(tmp_path / "x.db"))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.db").exists()


def test_size_paper_is_the_source_study_depth(tmp_path, monkeypatch):
    """--size paper: 6 perovskite layers, the layers study runs N = 1…5 from both ends; the stages
    after it (monolayer, chalcohalide, alloy) keep one layer of Cl to alloy (plan_all accepts it)."""
    import halex.studies.exchange as st
    from halex.cli.main import main

    seen = {}

    class NoRun(Exception):
        pass

    def first_stage(model, max_layers, settings):
        seen.update(model=model, max_layers=max_layers)
        raise NoRun

    monkeypatch.setattr(st, "layers_study", first_stage)
    with pytest.raises(NoRun):
        main(["study", "all", "--size", "paper", "--workers", "1", "--db", str(tmp_path / "p.db"), "-o", str(tmp_path / "out")])
    model = seen["model"]
    perovskite = model.arrays["domain"] == "perovskite"
    assert int(model.arrays["layer"][perovskite].max()) == 6 and seen["max_layers"] == 5
    assert st.plan_all(model, max_layers=5)["relaxations"]["layers"] == 2 * (1 + 2 * 5)
