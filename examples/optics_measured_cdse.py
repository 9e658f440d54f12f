"""First exciton and PL maximum of measured CdSe quantum-dot spectra against the authors' values.

Prints the table of docs/optics.md ("On measured spectra"): every reaction time of the two
syntheses in tests/data/optics (source and licence in tests/data/SOURCES.md), the reported
first-absorption and emission peaks, halex's values, the Stokes shift, and the offsets.

    .venv/bin/python examples/optics_measured_cdse.py
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


def main() -> None:
    print("| synthesis | reaction time | reported absorption peak (nm) | halex first exciton (nm) "
          "| reported emission peak (nm) | halex PL maximum (nm) | Stokes shift (meV) |")
    print("|---|---|---|---|---|---|---|")
    for run, (absorption, emission) in REPORTED.items():
        header = (DATA / f"cdse_run{run}_pl.csv").read_text().splitlines()[0].split(",")[1:]
        d_abs, d_pl = [], []
        for j, col in enumerate(header):
            s = analyze_spectra(DATA / f"cdse_run{run}_uvvis.csv", DATA / f"cdse_run{run}_pl.csv", column=j + 1,
                                pl_peaks="auto").summary
            a = s["absorption"]
            x, x_err = a["exciton_peak_nm"], HC_EV_NM * a["exciton_err_eV"] / a["exciton_peak_eV"] ** 2
            top = HC_EV_NM / s["pl"]["maximum_eV"]
            d_abs.append(x - absorption[j])
            d_pl.append(top - emission[j])
            print(f"| run {run} | {col.strip()} | {absorption[j]:.0f} | {x:.1f} ± {x_err:.1f} | {emission[j]:.1f} | "
                  f"{top:.1f} | {s['stokes_shift_meV']:.0f} |")
        print(f"\nrun {run}: exciton − reported {np.mean(d_abs):+.1f} nm mean, SD {np.std(d_abs):.1f}, "
              f"largest {np.max(np.abs(d_abs)):.1f}; PL maximum − reported {np.mean(d_pl):+.2f} nm mean, "
              f"largest {np.max(np.abs(d_pl)):.2f}\n")


if __name__ == "__main__":
    main()
