"""First exciton and PL maximum of measured CdSe quantum-dot spectra against the authors' values.

Prints the table of docs/optics.md ("On measured spectra"): every reaction time of the two
syntheses in tests/data/optics (source and licence in tests/data/SOURCES.md), the reported
first-absorption and emission peaks, halex's values, the Stokes shift, and the offsets; and
draws both against reaction time.

    .venv/bin/python examples/optics_measured_cdse.py [OUTDIR]

Writes OUTDIR/cdse_measured.png (default OUTDIR: optics-measured).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from halex.optics import HC_EV_NM
from halex.optics.output import analyze_spectra

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_optics_real import DATA, REPORTED  # noqa: E402  (the authors' values live with the test)


def main(out: Path) -> None:
    import matplotlib.pyplot as plt

    from halex.plotting import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6), sharey=True)
    print("| synthesis | reaction time | reported absorption peak (nm) | halex first exciton (nm) "
          "| reported emission peak (nm) | halex PL maximum (nm) | Stokes shift (meV) |")
    print("|---|---|---|---|---|---|---|")
    for run, (absorption, emission) in REPORTED.items():
        header = (DATA / f"cdse_run{run}_pl.csv").read_text().splitlines()[0].split(",")[1:]
        d_abs, d_pl, found = [], [], []
        for j, col in enumerate(header):
            s = analyze_spectra(DATA / f"cdse_run{run}_uvvis.csv", DATA / f"cdse_run{run}_pl.csv", column=j + 1,
                                pl_peaks="auto").summary
            a = s["absorption"]
            x, x_err = a["exciton_peak_nm"], HC_EV_NM * a["exciton_err_eV"] / a["exciton_peak_eV"] ** 2
            top = HC_EV_NM / s["pl"]["maximum_eV"]
            d_abs.append(x - absorption[j])
            d_pl.append(top - emission[j])
            found.append((float(col.split()[0]), x, x_err, top))
            print(f"| run {run} | {col.strip()} | {absorption[j]:.0f} | {x:.1f} ± {x_err:.1f} | {emission[j]:.1f} | "
                  f"{top:.1f} | {s['stokes_shift_meV']:.0f} |")
        print(f"\nrun {run}: exciton − reported {np.mean(d_abs):+.1f} nm mean, SD {np.std(d_abs):.1f}, "
              f"largest {np.max(np.abs(d_abs)):.1f}; PL maximum − reported {np.mean(d_pl):+.2f} nm mean, "
              f"largest {np.max(np.abs(d_pl)):.2f}\n")
        t, x, x_err, top = np.array(found).T
        ax = axes[0] if run == "6" else axes[1]
        ax.plot(t, absorption, "s", mfc="none", color="C0", label="reported absorption peak")
        ax.errorbar(t, x, yerr=x_err, fmt="o", ms=3, color="C0", label="halex first exciton")
        ax.plot(t, emission, "s", mfc="none", color="C3", label="reported emission peak")
        ax.plot(t, top, "o", ms=3, color="C3", label="halex PL maximum")
        ax.set(xlabel="reaction time (s)", title=f"CdSe synthesis, run {run}")
    axes[0].set_ylabel("wavelength (nm)")
    axes[1].legend(fontsize=7)
    out.mkdir(parents=True, exist_ok=True)
    print(f"wrote {save_figure(fig, out / 'cdse_measured.png')}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "optics-measured"))
