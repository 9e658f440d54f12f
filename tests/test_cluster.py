"""Batch jobs on a queue system (--cluster): option checks, job scripts, and real runs on a
single-node SLURM started by the test (Debian slurm-wlm + munge)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from ase import Atoms

from conftest import needs_cp2k, run_cli
from halex.errors import InputError
from halex.studies.cluster import JobSpec, check_job_spec, cluster_kwargs, for_engine

HARTREE = 27.21138602  # eV, CODATA 2014 (ASE default units)


@pytest.mark.parametrize("extra, message", [
    (["--cluster", "lsf"], "unknown queue system --cluster 'lsf'; choose one of slurm, pbs"),
    (["--cluster", "slurm", "--scheduler", "tcp://127.0.0.1:1"], "either --cluster"),
    (["--engine", "cp2k", "--mpi-ranks", "64"], "more than the"),
    (["--cluster", "slurm", "--cores", "2", "--engine", "cp2k", "--mpi-ranks", "3"], "of each job (--cores)"),
    (["--cluster", "slurm", "--memory", "lots"], "--memory 'lots' is not an amount of memory"),
    (["--cluster", "pbs", "--walltime", "5h"], "--walltime '5h' must look like HH:MM:SS"),
    (["--cores", "4"], "--cores only apply to batch jobs"),
])
def test_bad_cluster_options_one_line_exit_2(tmp_path, extra, message):
    """Each bad option: one error line, exit 2, before any model is read or job submitted."""
    r = run_cli("study", "layers", "--model", str(tmp_path / "absent.extxyz"), "--max-layers", "1",
                "-o", str(tmp_path / "out"), *extra)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_cluster_without_dask_jobqueue_is_refused(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)  # as if not installed: import fails
    with pytest.raises(InputError, match=r"needs dask-jobqueue: pip install 'halex\[cluster\]'"):
        check_job_spec("slurm", 2, "4GB", "01:00:00")


def test_job_spec_defaults():
    spec = check_job_spec("slurm", None, None, None)
    assert (spec.cores, spec.memory, spec.walltime, spec.jobs) == (1, "4GB", "24:00:00", 1)
    assert check_job_spec("pbs", 8, None, "2-00:00:00", "long", 3).memory == "32GB"


def test_job_scripts_book_the_cores_for_one_task_per_job():
    """The job asks the queue for every core; its Dask worker runs one relaxation at a time."""
    from dask_jobqueue import PBSCluster, SLURMCluster

    for cls, spec, booked in [
        (SLURMCluster, JobSpec("slurm", 16, "64GB", "12:00:00", "compute"), ["#SBATCH --cpus-per-task=16",
                                                                            "#SBATCH -p compute", "#SBATCH -t 12:00:00"]),
        (PBSCluster, JobSpec("pbs", 16, "64GB", "12:00:00", "workq"), ["#PBS -l select=1:ncpus=16:mpiprocs=1:ompthreads=16:mem=64GB",
                                                                      "#PBS -q workq", "#PBS -l walltime=12:00:00"]),
        (SLURMCluster, JobSpec("slurm", 16, "64GB", "12:00:00", mpi_ranks=8), ["#SBATCH --ntasks=8", "#SBATCH --cpus-per-task=2"]),
        (PBSCluster, JobSpec("pbs", 16, "64GB", "12:00:00", mpi_ranks=16), ["#PBS -l select=1:ncpus=16:mpiprocs=16:ompthreads=1:mem=64GB"]),
    ]:
        with cls(**cluster_kwargs(spec)) as cluster:
            script = cluster.job_script()
        for line in booked:
            assert line in script, (line, script)
        assert "--nthreads 1" in script and sys.executable in script
        assert "unset MALLOC_TRIM_THRESHOLD_\nexport DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON=" in script  # no trim threshold
        if spec.mpi_ranks > 1:
            assert "#SBATCH -n 1\n" not in script and script.count("--cpus-per-task") <= 1
    # a site's configured prologue is kept, before halex's lines
    import dask

    with dask.config.set({"jobqueue.slurm.job-script-prologue": ["module load cp2k"]}):
        with SLURMCluster(**cluster_kwargs(JobSpec("slurm", 4, "8GB", "01:00:00"))) as cluster:
            script = cluster.job_script()
    assert "module load cp2k\nunset MALLOC_TRIM_THRESHOLD_" in script, script
    # ... also where a site still configures it under its deprecated name, env-extra
    with dask.config.set({"jobqueue.slurm.env-extra": ["module load cp2k/2024"]}), \
            pytest.warns(FutureWarning, match="env_extra has been renamed"):
        with SLURMCluster(**cluster_kwargs(JobSpec("slurm", 4, "8GB", "01:00:00"))) as cluster:
            script = cluster.job_script()
    assert "module load cp2k/2024\nunset MALLOC_TRIM_THRESHOLD_" in script, script


def _tiny_model(path: Path) -> Path:
    from halex.models import heterostructure

    heterostructure((2, 2, 1), 1).write(path)
    return path


@pytest.mark.slow
def test_study_runs_as_slurm_jobs(tmp_path, slurm):
    """`halex study --cluster slurm`, end to end on a real SLURM: jobs submitted, results in the
    store, report written, every job gone afterwards; a rerun takes everything from the store."""
    model = _tiny_model(tmp_path / "tiny.extxyz")
    db = tmp_path / "study.db"
    args = ["study", "layers", "--model", str(model), "--max-layers", "1", "--replicas", "1", "--seeds", "1",
            "--cluster", "slurm", "--workers", "2", "--cores", "1", "--memory", "3GB", "--walltime", "00:20:00",
            "--queue", "halex", "--db", str(db), "-o", str(tmp_path / "out"), "--fmax", "0.1", "--max-steps", "60"]
    r = run_cli(*args, env=slurm, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "#SBATCH --cpus-per-task=1" in r.stderr and "2 slurm job(s)" in r.stderr  # the job script is logged
    assert (tmp_path / "out" / "report.html").exists()
    assert list((tmp_path / "out" / "jobs").glob("*.err"))  # each job's log lies next to the results
    done = re.findall(r"\[study\] (\d+)/(\d+) done", r.stderr)
    assert done and done[-1][0] == done[-1][1]
    ctl_log = Path(slurm["SLURM_CONF"]).with_name("slurmctld.log").read_text()
    jobs = set(re.findall(r"JobId=(\d+)", ctl_log))
    assert len(jobs) >= 2, ctl_log[-2000:]  # the relaxations ran in SLURM jobs
    assert "#SBATCH -J halex" in r.stderr
    queue = subprocess.run(["squeue", "-h", "-o", "%i %j"], env=slurm, capture_output=True, text=True).stdout
    assert queue.strip() == "", queue  # the study cancels its jobs when it ends
    again = run_cli(*args, env=slurm, timeout=900)
    assert again.returncode == 0 and "(from the store)" in again.stderr


@needs_cp2k
@pytest.mark.slow
@pytest.mark.cp2k
def test_cp2k_profile_reaches_every_slurm_worker(tmp_path, slurm, monkeypatch):
    """The engine object goes to the workers: each relaxation in a 2-core SLURM job ran CP2K on
    2 MPI ranks, read from CP2K's own output header."""
    from halex.engines import get_engine
    from halex.engines.cp2k import Cp2kProfile
    from halex.studies.runner import RelaxTask, lazy_client, run_relaxations

    for k, v in slurm.items():
        monkeypatch.setenv(k, v)
    mols = []
    for x, d in (("Cl", 2.45), ("I", 2.85)):
        m = Atoms(f"Pb{x}2", positions=[[0, 0, 0], [d, 0, 0], [-0.6, d - 0.1, 0.1]])
        m.center(vacuum=4.0)
        mols.append(RelaxTask(f"Pb{x}2", m))
    eng = get_engine("cp2k", profile=Cp2kProfile(mpi_ranks=2, threads=1), cutoff_ry=150, rel_cutoff_ry=30)
    client = lazy_client(None, None, for_engine(check_job_spec("slurm", 2, "4GB", "00:20:00", "halex", 1, str(tmp_path / "jobs")), eng))
    try:
        done, failed = run_relaxations(mols, eng, str(tmp_path / "dft.db"), fmax=0.5, steps=1, optimizer="BFGS",
                                       client=client)
        on_slurm = client.get().run(lambda: __import__("os").environ.get("SLURM_JOB_ID"))
        threads = client.get().run(lambda: __import__("torch").get_num_threads())
    finally:
        client.close()
    assert not failed and set(done) == {"PbCl2", "PbI2"}
    assert all(v for v in on_slurm.values()), on_slurm  # the workers are SLURM jobs
    assert set(threads.values()) == {1}, threads  # 2 cores / 2 MPI ranks
    outputs = sorted((tmp_path).rglob("cp2k.out"))
    assert len(outputs) == 2, outputs
    for out in outputs:
        header = out.read_text(errors="replace")
        assert re.search(r"GLOBAL\| Total number of message passing processes +2\n", header), out
        assert re.search(r"GLOBAL\| Number of threads for this process +1\n", header), out
    assert -34.0 < done["PbCl2"].energy / HARTREE < -33.0  # PBE/DZVP PbCl2, as in the single-process CP2K test


def test_job_threads_plugin_gives_the_worker_the_jobs_cores():
    """Dask's nanny starts workers with one thread; the plugin gives an in-process engine the job's cores."""
    from distributed import Client, LocalCluster

    from halex.studies.job_threads import JobThreads

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as lc, Client(lc) as c:
        def probe():
            import os

            import torch
            return os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()

        assert {t for _, t in c.run(probe).values()} == {1}  # the nanny's one thread
        c.register_plugin(JobThreads(3))
        assert set(c.run(probe).values()) == {("3", 3)}


def test_cores_inside_a_batch_allocation(monkeypatch):
    """Inside a multi-node allocation an MPI run may use every allocated task, not only this node's cores."""
    import os

    from halex.cli._common import allocated_cores

    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    monkeypatch.delenv("PBS_NP", raising=False)
    assert allocated_cores() == os.cpu_count()
    monkeypatch.setenv("SLURM_NTASKS", "256")
    assert allocated_cores() == 256
    monkeypatch.setenv("SLURM_NTASKS", "junk")
    monkeypatch.setenv("PBS_NP", "64")
    assert allocated_cores() == max(64, os.cpu_count())


def test_threads_option_reaches_local_workers():
    """--threads sets the workers' thread count, not only the client's (Dask's nanny would give 1)."""
    from halex.studies.runner import lazy_client

    client = lazy_client(None, 1 + 1, threads=2)
    try:
        got = client.get().run(lambda: __import__("torch").get_num_threads())
    finally:
        client.close()
    assert set(got.values()) == {2}, got


def test_workers_run_without_a_glibc_trim_threshold():
    """Dask's nanny would set MALLOC_TRIM_THRESHOLD_=65536 in every worker, which makes CHGNet
    2.3x slower on 2 cores (docs/studies.md): neither the local workers nor the nanny of a
    batch job (started by the job script's export line, as on a compute node) set it."""
    from halex.studies.runner import lazy_client, worker_environ_export

    def trim():
        return __import__("os").environ.get("MALLOC_TRIM_THRESHOLD_")

    client = lazy_client(None, 1 + 1)
    try:
        got = client.get().run(trim)
        threads = client.get().run(lambda: __import__("os").environ.get("OMP_NUM_THREADS"))
    finally:
        client.close()
    assert set(got.values()) == {None}, got
    assert set(threads.values()) == {"1"}, threads  # the rest of Dask's worker settings stay
    code = ("from distributed import Client, LocalCluster\n"
            "with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=':0') as c, Client(c) as cl:\n"
            "    print(list(cl.run(lambda: __import__('os').environ.get('MALLOC_TRIM_THRESHOLD_')).values()))")
    job = subprocess.run(["bash", "-c", "\n".join([*worker_environ_export(), f"{sys.executable} -c \"{code}\""])],
                         capture_output=True, text=True, timeout=120)
    assert job.stdout.strip() == "[None]", job.stderr[-2000:]
    env = {k: v for k, v in __import__("os").environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    bare = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert bare.stdout.strip() == "['65536']", bare.stderr[-2000:]  # what Dask does without it
