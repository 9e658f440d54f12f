"""Every command of the README's list runs as written, in order, in one empty folder.

Sizes that take long on two cores are made smaller (the substitutions below, and nothing
else); the CP2K lines are cut to one optimizer step at a lower cutoff, so that relaxation
ends unconverged after one step (exit 1, by design) and the orbital analysis runs on its result.
"""

import re
import shlex
import shutil
from pathlib import Path

import pytest

from conftest import run_cli

README = Path(__file__).resolve().parent.parent / "README.md"
#: CP2K on two cores in minutes, not hours: a lower cutoff, a tighter box, a looser SCF
DFT = ["--set", "cutoff_ry=120", "--set", "rel_cutoff_ry=30", "--set", "vacuum=3.0", "--set", "eps_scf=1e-5"]
SMALLER = [
    ("--size 5 5 5", "--size 2 2 2"),
    ("--perovskite 4 4 6 --chalcohalide 2", "--perovskite 2 2 3 --chalcohalide 1"),
    ("--size 2 2 3 1 --engine mlip",
     "--size 2 2 3 1 --engine mlip --fmax 0.1 --percents 0 100 --random-seeds 2 --replicas 1 --seeds 1"),
]


def readme_commands() -> list[str]:
    """The ``halex ...`` lines of the README's first bash block after the set-up, comments removed."""
    text = README.read_text()
    block = re.findall(r"```bash\n(.*?)```", text, flags=re.S)[1]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.startswith("halex ")]


def test_the_readme_lists_the_commands_this_test_runs():
    cmds = readme_commands()
    assert len(cmds) >= 20 and cmds[0] == "halex phases list" and cmds[-1] == "halex --help"
    for old, _ in SMALLER:
        assert any(old in c for c in cmds), old


@pytest.mark.slow
def test_every_readme_command_runs_in_order(tmp_path):
    for cmd in readme_commands():
        for old, new in SMALLER:
            cmd = cmd.replace(old, new)
        args = shlex.split(cmd)[1:]
        allowed = {0}
        if "--engine" in args and args[args.index("--engine") + 1] == "cp2k" or args[0] == "electronic":
            if shutil.which("cp2k.psmp") is None:
                continue
            args += DFT + (["--steps", "1"] if args[0] == "relax" else ["--nlumo", "2"])
            allowed = {0, 1} if args[0] == "relax" else {0}
        r = run_cli(*args, cwd=tmp_path, timeout=1800)
        assert r.returncode in allowed, f"{cmd}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
        assert "Traceback" not in r.stderr, cmd
    for made in ("nc.extxyz", "hs_3I.png", "relaxed.extxyz", "parity/summary.json", "parity/parity.png",
                 "study/report.html", "stem_out/summary.json", "xrd_out/summary.json", "optics_out/summary.json",
                 "ta_out/summary.json", "hs_xrd.csv", "sim.tif"):
        assert (tmp_path / made).stat().st_size > 0, made
