"""CP2K input template and output parser (ASE ``CalculatorTemplate``).

The template writes a ``cp2k.inp`` for an ENERGY_FORCE run, launches it through a
:class:`~halex.engines.cp2k.profile.Cp2kProfile` and parses energy and forces from
the main output. Reference level of theory (SPEC §4, the DFT study it reproduces):
PBE, GTH pseudopotentials, DZVP-MOLOPT-SR-GTH basis, 400 Ry plane-wave cutoff,
non-periodic box with the wavelet Poisson solver and vacuum around the model.
Periodic structures (all three ``pbc`` True) use the periodic Ewald/PW solver and
their own cell (used for bulk PbX2 references).

Successive calls in the same directory restart from the previous wavefunction
(``SCF_GUESS RESTART``), which saves most SCF cycles during a relaxation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.genericfileio import CalculatorTemplate

from halex.errors import EngineRunError, InputError, StructureError
from halex.units import HA_PER_BOHR_EV_PER_A, HARTREE_EV

__all__ = ["Cp2kTemplate", "parse_cp2k_output", "build_input", "box_for", "BOXES"]

#: Non-periodic box rules of :func:`box_for`.
BOXES = ("cell", "extent")

INPUT = "cp2k.inp"
OUTPUT = "cp2k.out"
PROJECT = "halex"

_ENERGY_RE = re.compile(r"ENERGY\|\s+Total FORCE_EVAL \( QS \) energy \[(?:a\.u\.|hartree)\]:\s+(-?\d+\.\d+(?:[EeDd][-+]?\d+)?)")


def box_for(atoms: Atoms, vacuum: float, box: str = "cell") -> tuple[np.ndarray, np.ndarray]:
    """Cubic non-periodic box (Å) and the positions inside it.

    CP2K's wavelet Poisson solver needs a cubic box ("Poisson solver for non cubic cells
    not yet implemented", CP2K 2023.1). ``box="cell"`` (default): a model with an
    orthorhombic cell is computed in a cube whose edge is the longest cell edge, the cell
    centred in it, so the box never changes while the atoms relax, and models built alike
    share one grid (its errors cancel in exchange energies). ``box="extent"``, and any
    model without a cell: a cube of edge (largest extent + 2 × ``vacuum``) rounded up to a
    whole Å, the atoms centred in it; the cost of a step grows with the box
    (``benchmarks/bench_cp2k.py``). Atoms closer than 2 Å to a face of the box are rejected.
    """
    if box not in BOXES:
        raise InputError(f"CP2K box must be 'extent' (the atoms' extent + 2 × vacuum) or 'cell' (the model's cell), got {box!r}")
    pos = atoms.get_positions()
    cell = atoms.cell.array
    if box == "cell" and atoms.cell.rank == 3:
        if np.abs(cell - np.diag(np.diag(cell))).max() > 1e-8:
            raise StructureError(
                "CP2K non-periodic runs need an orthorhombic cell (or none): "
                "give the model an orthorhombic box with atoms.center(vacuum=...)"
            )
        lengths = np.diag(cell)
        edge = float(lengths.max())
        pos = pos + (edge - lengths) / 2.0
    else:
        extent = pos.max(axis=0) - pos.min(axis=0)
        edge = float(np.ceil(extent.max() + 2.0 * vacuum))
        pos = pos - (pos.max(axis=0) + pos.min(axis=0)) / 2.0 + edge / 2.0
    margin = min(pos.min(), (edge - pos).min())
    if margin < 2.0:
        raise StructureError(
            f"atoms lie {margin:.2f} Å from the CP2K box boundary; centre the model with vacuum "
            "(ase.Atoms.center(vacuum=7)) or remove its cell"
        )
    return np.full(3, edge), pos


def _cell_and_poisson(atoms: Atoms, s: Mapping[str, Any]) -> tuple[str, str, np.ndarray]:
    """``&CELL`` lines, ``&POISSON`` lines and the positions (Å) to write: periodic cell or a vacuum box."""
    if bool(np.all(atoms.pbc)):
        cell_block = "\n".join(f"      {v} {x:.10f} {y:.10f} {z:.10f}" for v, (x, y, z) in zip("ABC", atoms.cell.array))
        return cell_block + "\n      PERIODIC XYZ", "      PERIODIC XYZ\n      POISSON_SOLVER PERIODIC", atoms.get_positions()
    box, positions = box_for(atoms, float(s["vacuum"]), str(s.get("box", "cell")))
    return (f"      ABC {box[0]:.6f} {box[1]:.6f} {box[2]:.6f}\n      PERIODIC NONE",
            f"      PERIODIC NONE\n      POISSON_SOLVER {s['poisson_solver']}", positions)


def _vdw(s: Mapping[str, Any], data_dir: Path) -> str:
    """CP2K's own D3(BJ) pair potential with the functional's parameters (``dispersion="d3bj"``), else nothing."""
    if not s.get("dispersion"):
        return ""
    return f"""      &VDW_POTENTIAL
        POTENTIAL_TYPE PAIR_POTENTIAL
        &PAIR_POTENTIAL
          TYPE DFTD3(BJ)
          PARAMETER_FILE_NAME {data_dir / 'dftd3.dat'}
          REFERENCE_FUNCTIONAL {s['xc']}
        &END PAIR_POTENTIAL
      &END VDW_POTENTIAL
"""


def _dft_section(s: Mapping[str, Any], *, data_dir: Path, restart: bool, poisson: str, dft_print: str) -> str:
    """The ``&DFT`` section: basis and potential files, grid, Poisson solver, OT SCF, functional."""
    uks = "    UKS TRUE\n" if s["uks"] or s["multiplicity"] != 1 else ""
    return f"""  &DFT
    BASIS_SET_FILE_NAME {data_dir / s['basis_file']}
    POTENTIAL_FILE_NAME {data_dir / s['potential_file']}
    CHARGE {int(s['charge'])}
    MULTIPLICITY {int(s['multiplicity'])}
{uks}    WFN_RESTART_FILE_NAME {PROJECT}-RESTART.wfn
    &MGRID
      CUTOFF {float(s['cutoff_ry'])}
      REL_CUTOFF {float(s['rel_cutoff_ry'])}
    &END MGRID
    &QS
      EPS_DEFAULT {float(s['eps_default'])}
    &END QS
    &POISSON
{poisson}
    &END POISSON
    &SCF
      EPS_SCF {float(s['eps_scf'])}
      MAX_SCF {int(s['max_scf'])}
      SCF_GUESS {'RESTART' if restart else 'ATOMIC'}
      &OT
        MINIMIZER DIIS
        PRECONDITIONER FULL_SINGLE_INVERSE
      &END OT
      &OUTER_SCF
        EPS_SCF {float(s['eps_scf'])}
        MAX_SCF {int(s['max_outer_scf'])}
      &END OUTER_SCF
      &PRINT
        &RESTART
          BACKUP_COPIES 0
        &END RESTART
      &END PRINT
    &END SCF
    &XC
      &XC_FUNCTIONAL {s['xc']}
      &END XC_FUNCTIONAL
{_vdw(s, data_dir)}    &END XC
{dft_print}  &END DFT
"""


@lru_cache(maxsize=32)
def _entries(path: Path, mtime: float) -> dict[str, list[tuple[str, ...]]]:
    """Names on every element line of a CP2K basis or potential file, by element."""
    out: dict[str, list[tuple[str, ...]]] = {}
    with open(path, errors="replace") as fh:
        for line in fh:
            words = line.split("#", 1)[0].split()
            if len(words) >= 2 and re.fullmatch(r"[A-Z][a-z]?", words[0]) and not words[1][0].isdigit():
                out.setdefault(words[0], []).append(tuple(words[1:]))
    return out


def _names(path: Path, element: str) -> list[tuple[str, ...]]:
    return _entries(path, path.stat().st_mtime).get(element, []) if path.is_file() else []


def kind_basis(data_dir: Path, settings: Mapping[str, Any], element: str) -> str:
    """The basis set name written for ``element``: ``basis_set`` as given, or its ``-qN`` entry.

    Basis families such as ``TZVP-MOLOPT-PBE-GTH`` (``BASIS_MOLOPT_UZH``) list each element
    only with its valence suffix (``TZVP-MOLOPT-PBE-GTH-q4`` for Pb), and CP2K matches names
    exactly. When the basis file has no entry called ``basis_set`` for the element, the
    entry ``basis_set-qN`` is used, N being the valence of the element's ``potential`` in
    the potential file (``GTH-PBE`` is ``GTH-PBE-q4`` for Pb). Otherwise, or when the files
    cannot be read, the name is written as given and CP2K reports what it cannot find.
    """
    name = str(settings["basis_set"])
    basis = _names(data_dir / settings["basis_file"], element)
    if not basis or any(name in line for line in basis):
        return name
    pots = [line for line in _names(data_dir / settings["potential_file"], element) if settings["potential"] in line]
    valences = {m.group(1) for line in pots for w in line if (m := re.search(r"-q(\d+)$", w))}
    if len(valences) == 1:
        candidate = f"{name}-q{valences.pop()}"
        if any(candidate in line for line in basis):
            return candidate
    return name


def build_input(atoms: Atoms, settings: Mapping[str, Any], *, data_dir: Path, restart: bool,
                run_type: str = "ENERGY_FORCE", dft_print: str = "") -> str:
    """Text of a CP2K input for ``atoms`` with ``settings``.

    ``run_type`` is ``ENERGY_FORCE`` (relaxations) or ``ENERGY``; ``dft_print`` is a
    ``&PRINT`` block placed in ``&DFT`` (the orbital analysis adds its ``&PDOS`` there).
    """
    s = settings
    cell_block, poisson, positions = _cell_and_poisson(atoms, s)
    coords = "\n".join(f"      {sym} {x:.10f} {y:.10f} {z:.10f}" for sym, (x, y, z) in zip(atoms.get_chemical_symbols(), positions))
    kinds = "\n".join(
        f"    &KIND {el}\n      BASIS_SET {kind_basis(data_dir, s, el)}\n      POTENTIAL {s['potential']}\n    &END KIND"
        for el in sorted(set(atoms.get_chemical_symbols()))
    )
    dft = _dft_section(s, data_dir=data_dir, restart=restart, poisson=poisson, dft_print=dft_print)
    return f"""&GLOBAL
  PROJECT {PROJECT}
  RUN_TYPE {run_type}
  PRINT_LEVEL LOW
&END GLOBAL
&FORCE_EVAL
  METHOD QS
{dft}  &SUBSYS
    &CELL
{cell_block}
    &END CELL
    &COORD
{coords}
    &END COORD
{kinds}
  &END SUBSYS
  &PRINT
    &FORCES ON
    &END FORCES
  &END PRINT
&END FORCE_EVAL
"""


def parse_cp2k_output(text: str, natoms: int | None = None) -> dict[str, Any]:
    """Energy (eV) and forces (eV/Å) of the last ENERGY_FORCE step of a CP2K output.

    Raises
    ------
    EngineRunError
        No energy in the output, an unconverged SCF, or a force block of the wrong size.
    """
    if "SCF run NOT converged" in text:
        raise EngineRunError("CP2K SCF did not converge: raise max_scf / max_outer_scf or check the structure")
    energies = _ENERGY_RE.findall(text)
    if not energies:
        raise EngineRunError("no 'ENERGY| Total FORCE_EVAL' line in the CP2K output: the run did not finish")
    energy = float(energies[-1].replace("D", "E").replace("d", "e")) * HARTREE_EV

    start = text.rfind("ATOMIC FORCES in [a.u.]")
    if start < 0:
        raise EngineRunError("no 'ATOMIC FORCES' block in the CP2K output")
    rows = []
    for line in text[start:].splitlines()[3:]:
        parts = line.split()
        if not parts or parts[0] == "SUM":
            break
        rows.append([float(v) for v in parts[3:6]])
    forces = np.array(rows) * HA_PER_BOHR_EV_PER_A
    if natoms is not None and len(forces) != natoms:
        raise EngineRunError(f"CP2K force block has {len(forces)} rows for {natoms} atoms")
    return {"energy": energy, "free_energy": energy, "forces": forces}


class Cp2kTemplate(CalculatorTemplate):
    """Write / run / parse for CP2K ENERGY_FORCE calculations."""

    def __init__(self) -> None:
        super().__init__(name="cp2k", implemented_properties=["energy", "free_energy", "forces"])
        self.inputname = INPUT
        self.outputname = OUTPUT
        self._natoms: int | None = None

    def write_input(self, profile, directory, atoms, parameters, properties) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        restart = (directory / f"{PROJECT}-RESTART.wfn").is_file()
        self._natoms = len(atoms)
        text = build_input(atoms, parameters, data_dir=profile.data_dir, restart=restart)
        (directory / INPUT).write_text(text)

    def execute(self, directory, profile) -> None:
        profile.run(Path(directory), INPUT, OUTPUT, errorfile="cp2k.err")

    def read_results(self, directory) -> dict[str, Any]:
        text = (Path(directory) / OUTPUT).read_text(errors="replace")
        return parse_cp2k_output(text, self._natoms)

    def load_profile(self, cfg, **kwargs):  # pragma: no cover - ASE config hook
        from halex.engines.cp2k.profile import Cp2kProfile

        return Cp2kProfile(**kwargs)

