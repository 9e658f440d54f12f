"""Convergence of one CP2K exchange energy in plane-wave cutoff and basis set.

    .venv/bin/python benchmarks/cp2k_convergence.py --cache conv.json      # resumable

The reaction is the parity dataset's ``PbCl2 -> PbClI`` (SPEC §4 form, against the PbCl2 and
PbI2 molecule references): three molecules, the cheapest exchange energy of this chemistry,
at the dataset's geometries (``halex/engines/data/parity_cp2k_pbe.json``). Every other
setting is the CP2K engine's default (PBE, GTH-PBE, wavelet box, EPS_SCF 1e-6).

- **Cutoff**: 300, 400 (the reference) and 600 Ry with the reference basis
  DZVP-MOLOPT-SR-GTH (REL_CUTOFF 60 Ry).
- **Basis**: at 400 Ry, the ``BASIS_MOLOPT_UZH`` family re-optimised for PBE, in increasing
  size: DZVP-, TZVP- and TZV2P-MOLOPT-PBE-GTH (the ``-qN`` entry of each element, matching
  its GTH-PBE potential).

Each structure's single point is kept in ``--cache`` (atomically, as soon as it finishes), so
a run interrupted after hours resumes where it stopped. Printed: the exchange energy of every
setting in kcal/mol per exchanged halide, its change against the reference settings, the
energies, and the seconds per single point.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import keep_cache, read_cache, run_benchmark  # noqa: E402

REACTION = "PbCl2 -> PbClI"
#: settings in the order printed; the first is the reference level of theory
SETTINGS = {
    "400 Ry, DZVP-MOLOPT-SR-GTH (reference)": {},
    "300 Ry, DZVP-MOLOPT-SR-GTH": {"cutoff_ry": 300.0},
    "600 Ry, DZVP-MOLOPT-SR-GTH": {"cutoff_ry": 600.0},
    "400 Ry, TZV2P-MOLOPT-PBE-GTH": {"basis_set": "TZV2P-MOLOPT-PBE-GTH", "basis_file": "BASIS_MOLOPT_UZH"},
    "400 Ry, TZVP-MOLOPT-PBE-GTH": {"basis_set": "TZVP-MOLOPT-PBE-GTH", "basis_file": "BASIS_MOLOPT_UZH"},
    "400 Ry, DZVP-MOLOPT-PBE-GTH": {"basis_set": "DZVP-MOLOPT-PBE-GTH", "basis_file": "BASIS_MOLOPT_UZH"},
}


def _single_point(atoms, settings: dict, ranks: int) -> dict:
    """Energy (eV) and wall time (s) of one CP2K single point in a fresh directory."""
    from halex.engines import get_engine
    from halex.engines.cp2k import Cp2kProfile

    eng = get_engine("cp2k", profile=Cp2kProfile(mpi_ranks=ranks, threads=1), **settings)
    with tempfile.TemporaryDirectory(prefix="halex-cp2k-conv-") as tmp:
        a = atoms.copy()
        a.calc = eng.calculator(tmp)
        t = time.perf_counter()
        energy = a.get_potential_energy()
        return {"energy_eV": float(energy), "seconds": time.perf_counter() - t,
                "timed": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def main(argv: list[str] | None = None) -> None:
    from ase import Atoms

    from halex.engines.parity import REFERENCES, read_dataset
    from halex.studies.energies import exchange_energy

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ranks", type=int, default=2, help="MPI ranks (default 2)")
    p.add_argument("--only", nargs="+", default=list(SETTINGS), choices=list(SETTINGS), metavar="SETTINGS",
                   help="settings to compute (default: all); with --cache a later run adds the others")
    p.add_argument("--cache", type=Path, default=None, help="JSON file keeping every finished single point")
    args = p.parse_args(argv)
    data = read_dataset()
    reaction = next(r for r in data["reactions"] if r["name"] == REACTION)
    names = [reaction["reactant"], reaction["product"], REFERENCES["Cl"], REFERENCES["I"]]
    names = list(dict.fromkeys(names))  # PbCl2 is both the reactant and the Cl reference
    done = read_cache(args.cache)
    total = len(args.only) * len(names)
    t0, k = time.perf_counter(), 0
    for label in args.only:
        for name in names:
            key = f"{label}: {name}"
            k += 1
            if key not in done:
                rec = data["structures"][name]
                atoms = Atoms(rec["symbols"], positions=rec["positions_A"], cell=rec["cell_A"], pbc=rec["pbc"])
                done[key] = _single_point(atoms, SETTINGS[label], args.ranks)
                keep_cache(args.cache, done)
                eta = (time.perf_counter() - t0) / k * (total - k)
                print(f"[convergence] {k}/{total} {key}: {done[key]['energy_eV']:.5f} eV, "
                      f"{done[key]['seconds']:.0f} s; ETA {eta / 60:.0f} min", file=sys.stderr, flush=True)
    print(f"Reaction {REACTION} (x = {reaction['x']}), SPEC §4 against the PbCl2 and PbI2 molecules; "
          f"CP2K PBE/GTH-PBE, {args.ranks} MPI ranks; geometries of the parity dataset\n")
    print("| settings | ΔE (kcal/mol per halide) | − reference | " + " | ".join(f"E({n}) eV" for n in names)
          + " | s per single point |")
    print("|---|---|---|" + "---|" * len(names) + "---|")
    rows = {}
    for label in args.only:
        e = {n: done[f"{label}: {n}"]["energy_eV"] for n in names}
        de = exchange_energy(e[reaction["product"]], e[reaction["reactant"]], reaction["x"],
                             e[REFERENCES["Cl"]], e[REFERENCES["I"]])
        rows[label] = (de, e, sum(done[f"{label}: {n}"]["seconds"] for n in names) / len(names))
    ref = rows.get(next(iter(SETTINGS)), (None,))[0]
    for label, (de, e, secs) in rows.items():
        diff = "" if ref is None else f"{de - ref:+.3f}"
        print(f"| {label} | {de:.3f} | {diff} | " + " | ".join(f"{e[n]:.5f}" for n in names) + f" | {secs:.0f} |")
    cut = [de for label, (de, _, _) in rows.items() if "DZVP-MOLOPT-SR-GTH" in label]
    basis = {label: de for label, (de, _, _) in rows.items() if "MOLOPT-PBE-GTH" in label}
    if len(cut) > 1:
        print(f"\ncutoff ({len(cut)} cutoffs, reference basis): ΔE spans {max(cut) - min(cut):.4f} kcal/mol per halide")
    if ref is not None and basis:
        print("basis (400 Ry): " + "; ".join(f"{label.split(', ')[1]} − reference {de - ref:+.3f}" for label, de in basis.items())
              + " kcal/mol per halide")
    return 0


if __name__ == "__main__":
    if "--only" in sys.argv:  # a partial run only fills the cache: the results file holds whole runs
        sys.exit(main())
    run_benchmark("cp2k_convergence", main)
