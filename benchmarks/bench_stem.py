"""Benchmark of the STEM column fitter.

1. Precision: position RMS error of Pb+X and Cs columns on simulated HAADF and phase images
   of a 6×6×6 CsPbCl3 cube, over 10 noise realisations, against the Cramér–Rao bound of
   the same image (position, amplitude, width and background unknown).
2. Speed: refinement of all columns of a 1024×1024 phase image of a large model
   (≈ 3,000 columns), started from the true positions + 0.5 px; columns per second.
3. End to end: ``halex stem analyze`` in a fresh Python on a 790 × 790 HAADF image with
   ≈ 2,800 columns, for each ``--figures`` set, against Atomap's find + refine.
   Atomap (GPL, optional) is timed on the same image and starts, run from its own virtual
   environment ($HALEX_ATOMAP_PYTHON, default benchmarks/.anchors/atomap/bin/python).

    .venv/bin/python benchmarks/bench_stem.py
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

ATOMAP = r"""
import json, sys, time, warnings
import numpy as np
warnings.filterwarnings("ignore")
import atomap.api as am
img = np.load(sys.argv[1]); pos = np.load(sys.argv[2])
sub = am.Sublattice(pos, image=img)
sub.find_nearest_neighbors()
t0 = time.perf_counter()
sub.refine_atom_positions_using_2d_gaussian(show_progressbar=False)
dt = time.perf_counter() - t0
print(json.dumps({"wall_s": dt, "n": len(pos), "x": [float(a.pixel_x) for a in sub.atom_list],
                  "y": [float(a.pixel_y) for a in sub.atom_list]}))
"""


#: Python of the anchor's own environment (bash benchmarks/setup_anchors.sh)
ANCHOR_PYTHON = str(Path(__file__).resolve().parent / ".anchors" / "atomap" / "bin" / "python")

def _precision(kind: str, dose: float) -> tuple[float, float, int]:
    from halex.models import perovskite_nanocrystal
    from halex.stem import cramer_rao_bound, refine_columns, simulate_image

    nc = perovskite_nanocrystal((6, 6, 6))
    e, b = [], []
    for seed in range(10):
        img, t = simulate_image(nc, kind=kind, dose=dose, seed=seed)
        tp = np.column_stack([t["x_px"], t["y_px"]])
        heavy = np.isin(t["kind"], ["Pb+X", "Cs"])
        noise = "poisson" if kind == "haadf" else "gaussian"
        fit = refine_columns(img.data, tp + 0.5, noise=noise)
        bx, by = cramer_rao_bound(img.shape, t["x_px"], t["y_px"], t["amplitude"], t["width_A"] / img.pixel_size,
                                  t["background"], noise=noise, noise_sigma=img.metadata["noise_sigma"])
        e.append(np.concatenate([(fit.x - tp[:, 0])[heavy], (fit.y - tp[:, 1])[heavy]]))
        b.append(np.concatenate([bx[heavy], by[heavy]]))
    e, b = np.concatenate(e), np.concatenate(b)
    return float(np.sqrt(np.mean(e**2))), float(np.sqrt(np.mean(b**2))), len(e) // 2


def _atomap(data: np.ndarray, start: np.ndarray, truth: np.ndarray, python: str) -> str:
    """Atomap's 2D-Gaussian refinement (its own venv: GPL, optional) on the same image and starts."""
    if not Path(python).exists():
        return "| Atomap | not installed (GPL, optional): set HALEX_ATOMAP_PYTHON to a venv with atomap | | | |"
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "img.npy", data)
        np.save(Path(tmp) / "pos.npy", start)
        (Path(tmp) / "run.py").write_text(ATOMAP)
        r = subprocess.run([python, str(Path(tmp) / "run.py"), str(Path(tmp) / "img.npy"), str(Path(tmp) / "pos.npy")],
                           capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        return f"| Atomap | failed: {r.stderr.strip().splitlines()[-1][:80] if r.stderr.strip() else r.returncode} | | | |"
    res = json.loads(r.stdout.strip().splitlines()[-1])
    err = np.hypot(np.array(res["x"]) - truth[:, 0], np.array(res["y"]) - truth[:, 1])
    return (f"| Atomap 0.4 refine_atom_positions_using_2d_gaussian | same image, {res['n']} columns | {res['n']} | "
            f"{res['wall_s']:.1f} | {res['n'] / res['wall_s']:.0f} (RMS error {np.sqrt(np.mean(err**2)) / np.sqrt(2):.3f} px) |")


def _speed() -> tuple[int, float, tuple[int, int]]:
    from halex.phases import load_phase
    from halex.stem import refine_columns, simulate_image

    # a 6-cell thick CsPbCl3 slab of 27×27 cells (the NC builder's neutrality search is
    # quadratic in the atom count; the fitter only needs the columns)
    slab = load_phase("CsPbCl3").repeat((6, 27, 27))
    slab.pbc = False
    img, t = simulate_image(slab, kind="phase", dose=1e4, pixel_size=0.15, margin=3.0)
    tp = np.column_stack([t["x_px"], t["y_px"]]) + 0.5
    refine_columns(img.data[:200, :200], tp[(tp[:, 0] < 190) & (tp[:, 1] < 190)], noise="gaussian")  # warm-up
    wall = np.inf
    for _ in range(3):  # best of three
        t0 = time.perf_counter()
        fit = refine_columns(img.data, tp, noise="gaussian")
        wall = min(wall, time.perf_counter() - t0)
    truth = tp - 0.5
    rms = float(np.sqrt(np.mean((fit.x - truth[:, 0]) ** 2 + (fit.y - truth[:, 1]) ** 2) / 2))
    return len(tp), wall, img.shape, rms, (img.data, tp, truth)


ATOMAP_FIND = r"""
import json, sys, time, warnings
import numpy as np
warnings.filterwarnings("ignore")
t0 = time.perf_counter()
import atomap.api as am
import hyperspy.api as hs
img = np.load(sys.argv[1])
t1 = time.perf_counter()
pos = am.get_atom_positions(hs.signals.Signal2D(img), separation=int(sys.argv[2]))
sub = am.Sublattice(pos, image=img)
sub.find_nearest_neighbors()
sub.refine_atom_positions_using_2d_gaussian(show_progressbar=False)
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "find_refine_s": t2 - t1, "n": len(pos)}))
"""


def _atomap_find_refine(data: np.ndarray, separation_px: int, python: str) -> str:
    """Atomap's own find + refine on the end-to-end image (its venv; GPL, optional)."""
    if not Path(python).exists():
        return "| Atomap find + refine | not installed (GPL, optional) | | | |"
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "img.npy", data)
        (Path(tmp) / "run.py").write_text(ATOMAP_FIND)
        r = subprocess.run([python, str(Path(tmp) / "run.py"), str(Path(tmp) / "img.npy"), str(separation_px)],
                           capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        return f"| Atomap find + refine | failed: {r.stderr.strip().splitlines()[-1][:80] if r.stderr.strip() else r.returncode} | | | |"
    res = json.loads(r.stdout.strip().splitlines()[-1])
    wall = res["import_s"] + res["find_refine_s"]
    return (f"| Atomap 0.4 get_atom_positions + 2D-Gaussian refine (imports {res['import_s']:.1f} s) | same image | "
            f"{res['n']} | {wall:.1f} | {res['n'] / wall:.0f} |")


def _end_to_end() -> list[str]:
    """``halex stem analyze`` as a user runs it (a fresh Python, imports, fit, analysis,
    files and figures) on a 790 × 790 HAADF image of a 4 × 26 × 26-cell CsPbCl3 crystal
    (≈ 2,800 columns), for each ``--figures`` set; best of two."""
    import subprocess
    import sys

    from halex.models import perovskite_nanocrystal
    from halex.stem import simulate_image, write_image

    img, t = simulate_image(perovskite_nanocrystal((4, 26, 26)), kind="haadf", dose=1e5, pixel_size=0.2, seed=0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        write_image(Path(tmp) / "big.tif", img)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import halex.cli.main"], check=True)
        start = time.perf_counter() - t0
        for figs in ("none", "basic", "all"):
            wall = np.inf
            for k in range(2):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "halex.cli.main", "-q", "stem", "analyze", "big.tif", "--figures",
                                figs, "-o", f"out_{figs}_{k}"], cwd=tmp, check=True, capture_output=True)
                wall = min(wall, time.perf_counter() - t0)
            n = len((Path(tmp) / f"out_{figs}_0" / "columns.csv").read_text().splitlines()) - 1
            rows.append(f"| halex stem analyze --figures {figs} | {img.shape[1]}×{img.shape[0]} | {n} | {wall:.2f} | "
                        f"{n / wall:.0f} |")
    rows.append(f"| (Python start + `import halex.cli.main`) | | | {start:.2f} | |")
    # Atomap's separation is in pixels: 0.7 × the 2.8 Å half-lattice step at 0.2 Å per pixel
    rows.append(_atomap_find_refine(img.data, 10, os.environ.get("HALEX_ATOMAP_PYTHON", ANCHOR_PYTHON)))
    return rows


def main() -> None:
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| image | dose (e/Å²) | columns × realisations | RMS error (px) | Cramér–Rao bound (px) | ratio |")
    print("|---|---|---|---|---|---|")
    for kind, dose in (("haadf", 1e5), ("haadf", 3000), ("phase", 1e4), ("phase", 300)):
        err, bound, n = _precision(kind, dose)
        print(f"| {kind} | {dose:g} | {n} | {err:.4f} | {bound:.4f} | {err / bound:.3f} |")
    n, wall, shape, rms, (data, start, truth) = _speed()
    print("\n| fitter | image | columns | wall (s) | columns/s |")
    print("|---|---|---|---|---|")
    print(f"| halex refine_columns | {shape[1]}×{shape[0]} | {n} | {wall:.2f} | {n / wall:.0f} (RMS error {rms:.3f} px) |")
    print(_atomap(data, start, truth, os.environ.get("HALEX_ATOMAP_PYTHON", ANCHOR_PYTHON)))
    print("\n| end to end | image | columns | wall (s) | columns/s |")
    print("|---|---|---|---|---|")
    for row in _end_to_end():
        print(row)


if __name__ == "__main__":
    import sys

    from _results import run_benchmark

    sys.exit(run_benchmark("bench_stem", main))
