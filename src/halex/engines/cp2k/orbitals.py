"""Molecular orbitals projected on groups of atoms, from a CP2K single point.

CP2K's ``&PDOS`` print key with one ``&LDOS`` list per group writes, for every
molecular orbital, its energy, occupation and Mulliken weight on the atoms of the list
(split by angular momentum; halex sums the components). With the OT solver the
``NLUMO`` virtual orbitals are computed after the SCF. This is CP2K doing the quantum
chemistry; halex only writes the lists, reads the files and keeps the numbers
(:class:`halex.engines.orbitals.OrbitalSet`).

The file format (CP2K 2023.1)::

    # Projected DOS for list 1 of 2 atoms, at iteration step i = 0, E(Fermi) =    -0.256865 a.u.
    #     MO Eigenvalue [a.u.]      Occupation                 s                 p                 d
           1         -0.725296        2.000000        0.12067990        0.05914096        0.03113574
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from halex.engines.orbitals import OrbitalSet, group_labels
from halex.errors import EngineRunError, FileFormatError, InputError
from halex.units import HARTREE_EV

__all__ = ["pdos_print_block", "read_pdos", "parse_energy", "compute_orbitals"]

_HEADER = re.compile(r"#\s*Projected DOS for (?:list|atomic kind)\s+(\S+).*E\(Fermi\)\s*=\s*(\S+)\s*a\.u\.")
_ENERGY_RE = re.compile(r"ENERGY\|\s+Total FORCE_EVAL \( QS \) energy \[(?:a\.u\.|hartree)\]:\s+(-?\d+\.\d+(?:[EeDd][-+]?\d+)?)")


def pdos_print_block(lists: Sequence[Sequence[int]], nlumo: int) -> str:
    """``&PRINT &PDOS`` block with one ``&LDOS`` per list of 0-based atom indices."""
    if nlumo < 0:
        raise InputError(f"nlumo must be >= 0, got {nlumo!r}")
    ldos = []
    for idx in lists:
        idx = [int(i) + 1 for i in idx]
        if not idx:
            raise InputError("an atom group for the orbital projection is empty")
        # CP2K reads long keyword lines; 20 indices per LIST keyword keeps them short (LIST may repeat)
        chunks = "\n".join("          LIST " + " ".join(map(str, idx[i:i + 20])) for i in range(0, len(idx), 20))
        ldos.append(f"        &LDOS\n{chunks}\n        &END LDOS")
    return ("    &PRINT\n      &PDOS\n        NLUMO {n}\n        ADD_LAST NUMERIC\n{ldos}\n      &END PDOS\n    &END PRINT\n"
            .format(n=int(nlumo), ldos="\n".join(ldos)))


def read_pdos(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Energies (eV), occupations, summed weights and E_Fermi (eV) from one CP2K ``.pdos`` file."""
    path = Path(path)
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise FileFormatError(f"cannot read the CP2K PDOS file {path}: {exc}") from None
    m = _HEADER.match(lines[0]) if lines else None
    if m is None:
        raise FileFormatError(f"{path} is not a CP2K PDOS file (no 'Projected DOS' header)")
    rows = []
    for n, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        try:
            rows.append([float(v) for v in parts])
        except ValueError:
            raise FileFormatError(f"{path}, line {n}: not numbers: {line.strip()[:60]!r}") from None
    if not rows or len({len(r) for r in rows}) != 1 or len(rows[0]) < 4:
        raise FileFormatError(f"{path}: no orbital rows, or rows of different length")
    a = np.array(rows)
    return a[:, 1] * HARTREE_EV, a[:, 2], a[:, 3:].sum(axis=1), float(m.group(2)) * HARTREE_EV


def parse_energy(text: str) -> float:
    """Total energy (eV) of a CP2K ENERGY run; raises on an unconverged or unfinished SCF."""
    if "SCF run NOT converged" in text:
        raise EngineRunError("CP2K SCF did not converge: raise max_scf / max_outer_scf or check the structure")
    found = _ENERGY_RE.findall(text)
    if not found:
        raise EngineRunError("no 'ENERGY| Total FORCE_EVAL' line in the CP2K output: the run did not finish")
    return float(found[-1].replace("D", "E").replace("d", "e")) * HARTREE_EV


def compute_orbitals(engine, atoms: Atoms, groups: Mapping[str, Sequence[int]], *, nlumo: int = 20,
                     directory: str | Path | None = None) -> OrbitalSet:
    """Single point with CP2K; orbitals with their weight on every group of atoms.

    Parameters
    ----------
    engine
        A :class:`halex.engines.cp2k.Cp2kEngine` (its settings are the level of theory).
    atoms
        The model (closed shell unless the engine's ``multiplicity``/``uks`` say otherwise).
    groups
        Group name → 0-based atom indices; every atom must be in exactly one group.
    nlumo
        Virtual orbitals to compute (the CBM of a domain needs one that lives there).
    directory
        Run directory (default: a new temporary one).
    """
    from halex.engines.cp2k.template import INPUT, OUTPUT, PROJECT, build_input

    if engine.settings.get("uks") or int(engine.settings.get("multiplicity", 1)) != 1:
        raise InputError("the orbital analysis handles closed-shell (restricted) runs only: use multiplicity=1, uks=False")
    group_labels(groups, len(atoms))  # every atom in exactly one group
    names = list(groups)
    lists = [np.asarray(groups[g], int) for g in names]
    engine.check(atoms)
    directory = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="halex-cp2k-orbitals-"))
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob(f"{PROJECT}-list*.pdos"):
        old.unlink()
    profile = engine.profile
    text = build_input(atoms, engine.settings, data_dir=profile.data_dir, restart=(directory / f"{PROJECT}-RESTART.wfn").is_file(),
                       run_type="ENERGY", dft_print=pdos_print_block(lists, nlumo))
    (directory / INPUT).write_text(text)
    profile.run(directory, INPUT, OUTPUT, errorfile="cp2k.err")
    energy = parse_energy((directory / OUTPUT).read_text(errors="replace"))
    weights, ref = [], None
    for i in range(1, len(names) + 1):
        files = sorted(directory.glob(f"{PROJECT}-list{i}-*.pdos"))
        if not files:
            raise EngineRunError(f"CP2K wrote no PDOS file for group {names[i - 1]!r} in {directory}")
        e, occ, w, efermi = read_pdos(files[-1])
        if ref is None:
            ref = (e, occ, efermi)
        elif len(e) != len(ref[0]) or np.abs(e - ref[0]).max() > 1e-6:
            raise EngineRunError("CP2K PDOS files list different orbitals")
        weights.append(w)
    e, occ, efermi = ref
    return OrbitalSet(e, occ, np.array(weights), names,
                      meta={"engine": engine.describe(), "energy_eV": energy, "fermi_eV": efermi, "nlumo": int(nlumo),
                            "projection": "Mulliken, CP2K &PDOS/&LDOS"})
