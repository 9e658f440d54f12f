"""Electronic structure of a model: frontier orbitals per domain and band alignment (SPEC §4).

:func:`orbital_analysis` runs one CP2K single point with the orbitals projected on the
model's electronic domains (``chalcohalide`` / ``CsPbCl3`` / ``CsPbI3``, see
:func:`halex.analysis.electronic.electronic_domains`), caches the orbitals in the store
(a rerun computes nothing) and returns them with the per-domain band edges, the
pairwise band alignment and the HOMO/LUMO character. :func:`write_orbitals` writes the
tables and figures. Only engines with electrons can do this (those whose
``capabilities`` include ``"orbitals"``, see :meth:`halex.engines.Engine.orbitals`); any
other engine raises a clear error before anything is computed.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

from halex.analysis.electronic import (
    DOMAIN_ORDER,
    alignment_table,
    band_edges,
    check_localised,
    check_threshold,
    domain_fractions,
    electronic_domains,
    frontier_character,
    projected_dos,
)
from halex.engines import DEFAULT_ORBITAL_ENGINE
from halex.engines.orbitals import OrbitalSet, group_labels
from halex.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from halex.engines import Engine
    from halex.store import ResultStore

__all__ = ["OrbitalAnalysis", "orbital_analysis", "write_orbitals"]

log = logging.getLogger("halex.electronic")


@dataclass
class OrbitalAnalysis:
    """Orbitals of one model and what they say about its domains."""

    orbitals: OrbitalSet
    edges: dict[str, dict[str, Any]]
    alignment: list[dict[str, Any]]
    frontier: dict[str, Any]
    settings: dict[str, Any]
    cached: bool = False
    row_id: int | None = None


def _check_options(nlumo: int, threshold: float, localised: float, tol_eV: float) -> None:
    """Validate the options of :func:`orbital_analysis` before anything is computed."""
    if not isinstance(nlumo, (int, np.integer)) or nlumo < 1:
        raise InputError(f"nlumo must be a whole number >= 1 (virtual orbitals), got {nlumo!r}")
    check_threshold(threshold)
    check_localised(localised)
    if not float(tol_eV) >= 0.0:
        raise InputError(f"tol_eV must be >= 0 eV, got {tol_eV!r}")


def _domain_groups(atoms: Atoms, groups: Mapping[str, Sequence[int]] | None) -> tuple[np.ndarray, list[str]]:
    """Group of every atom and the group names: the electronic domains, or the user's ``groups``."""
    if groups is None:
        domains = electronic_domains(atoms)
        return domains, [d for d in DOMAIN_ORDER if (domains == d).any()]
    return group_labels(groups, len(atoms)), [str(n) for n in groups]


def _cached_orbitals(atoms: Atoms, eng, groups: dict[str, np.ndarray], key: str, nlumo: int, store,
                     label: str | None) -> tuple[OrbitalSet, bool, int | None]:
    """The orbitals of ``atoms`` from the store, or from the engine (then stored)."""
    from halex.store import Lookup, StoreEntry

    info = eng.describe()

    def compute(previous) -> StoreEntry:
        log.info("single point with %d orbital groups (%s), %d virtual orbitals, %d atoms", len(groups),
                 ", ".join(f"{d}: {len(i)}" for d, i in groups.items()), nlumo, len(atoms))
        run_dir = store.run_dir(key) / "orbitals" if store is not None else None
        orbitals = eng.orbitals(atoms, groups, nlumo=int(nlumo), directory=run_dir)
        snap = atoms.copy()
        snap.calc = None
        kvp = dict(task="orbitals", engine=info["name"], engine_version=info["version"], label=label,
                   energy_eV=float(orbitals.meta["energy_eV"]), gap_eV=orbitals.gap_eV)
        data = {"engine": info, "task": {"kind": "orbitals", "nlumo": int(nlumo)}, "orbitals": orbitals.to_dict()}
        return StoreEntry(snap, kvp, data, result=orbitals)

    look = store.get_or_compute(key, compute) if store is not None else Lookup.computed(compute(None))
    if look.cached:
        log.info("orbitals from the store: row %d (%s)", look.row_id, key[:12])
        return OrbitalSet.from_dict(look.row.data["orbitals"]), True, look.row_id
    return look.entry.result, False, look.row_id


def orbital_analysis(
    atoms: Atoms,
    engine: str | Engine = DEFAULT_ORBITAL_ENGINE,
    *,
    store: ResultStore | None = None,
    nlumo: int = 20,
    threshold: float = 0.4,
    localised: float = 0.6,
    tol_eV: float = 0.1,
    groups: Mapping[str, Sequence[int]] | None = None,
    label: str | None = None,
) -> OrbitalAnalysis:
    """Frontier orbitals of ``atoms`` per electronic domain, and the band alignment.

    Parameters
    ----------
    atoms
        A halex model (needs the ``domain`` and ``layer`` arrays), relaxed or not.
    engine
        An engine name or instance that computes orbitals (``capabilities`` holds
        ``"orbitals"``); its settings are the level of theory.
    store
        :class:`~halex.store.ResultStore`: the orbitals are cached under a key of the
        structure, the engine settings, ``nlumo`` and the domain of every atom.
    nlumo
        Virtual orbitals to compute (≥ 1; more if a domain's CBM is missing).
    threshold
        Fraction on a domain (0–1] that makes an orbital an edge candidate of that domain.
    localised
        Fraction on one domain [0.5–1] for the HOMO/LUMO to count as localised there.
    tol_eV
        Band offset below which a carrier counts as shared (quasi-type-II), eV.
    groups
        Name → 0-based atom indices, covering every atom once, instead of the electronic
        domains (e.g. molecules, or a user's own partition of a model).
    label
        Free text recorded with the stored row.

    Returns
    -------
    OrbitalAnalysis
        Orbitals, per-domain band edges (eV), pairwise alignment and HOMO/LUMO character.

    Raises
    ------
    EngineUnavailableError
        The engine has no electrons.
    InputError
        An option is out of range or the groups do not cover every atom once.
    """
    from halex.engines import get_engine
    from halex.store import result_key

    _check_options(nlumo, threshold, localised, tol_eV)
    domains, names = _domain_groups(atoms, groups)
    eng = get_engine(engine)
    eng.require("orbitals")
    eng.check(atoms)
    groups = {d: np.flatnonzero(domains == d) for d in names}
    info = eng.describe()
    key = result_key(atoms, info, {"kind": "orbitals", "nlumo": int(nlumo), "domains": domains.tolist()})
    settings = {"engine": info, "nlumo": int(nlumo), "threshold": float(threshold), "localised": float(localised),
                "tol_eV": float(tol_eV), "domains": {d: int(len(groups[d])) for d in names}}
    orbitals, cached, row_id = _cached_orbitals(atoms, eng, groups, key, nlumo, store, label)
    edges = band_edges(orbitals, threshold)
    return OrbitalAnalysis(orbitals, edges, alignment_table(orbitals, threshold, tol_eV),
                           frontier_character(orbitals, localised), settings, cached, row_id)


def write_orbitals(result: OrbitalAnalysis, out: str | Path, *, window_eV: float = 3.0) -> list[Path]:
    """Write ``orbitals.csv``, ``alignment.csv``, ``summary.json`` and ``orbitals.png/.svg`` into ``out``.

    Written into a temporary folder first and moved into ``out`` when complete.
    ``window_eV`` sets the energy range of the figure around the gap.
    """
    from halex.io import atomic_folder, json_safe

    orb = result.orbitals
    frac = domain_fractions(orb)
    with atomic_folder(out) as tmp:
        with open(tmp / "orbitals.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["mo", "energy_eV", "occupation", *[f"fraction_{g}" for g in orb.groups]])
            for i in range(len(orb.energies_eV)):
                w.writerow([i + 1, f"{orb.energies_eV[i]:.6f}", f"{orb.occupations[i]:.4f}", *[f"{f:.4f}" for f in frac[:, i]]])
        cols = ["domain_a", "domain_b", "type", "dEv_eV", "dEc_eV", "hole_in", "electron_in"]
        with open(tmp / "alignment.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, cols)
            w.writeheader()
            for r in result.alignment:
                w.writerow({k: (f"{r[k]:.4f}" if isinstance(r[k], float) else r[k]) for k in cols})
        summary = {"units": {"energies": "eV", "fractions": "0-1"}, "settings": result.settings,
                   "energy_eV": orb.meta.get("energy_eV"), "homo_lumo": result.frontier, "band_edges": result.edges,
                   "alignment": result.alignment, "cached": result.cached, "row_id": result.row_id}
        (tmp / "summary.json").write_text(json.dumps(json_safe(summary), indent=1))
        _figure(result, tmp, window_eV)
    out = Path(out)
    return [out / n for n in ("orbitals.csv", "alignment.csv", "summary.json", "orbitals.png", "orbitals.svg")]


_COLOURS = {"chalcohalide": "#8c564b", "CsPbCl3": "#1f77b4", "CsPbI3": "#d62728"}


def _figure(result: OrbitalAnalysis, folder: Path, window_eV: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from halex.plotting.figures import new_figure

    orb = result.orbitals
    frac = domain_fractions(orb)
    h, lu = orb.homo, orb.lumo
    lo, hi = orb.energies_eV[h] - window_eV, orb.energies_eV[lu] + window_eV
    sel = np.flatnonzero((orb.energies_eV >= lo) & (orb.energies_eV <= hi))
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(9, 5), sharey=True, gridspec_kw={"width_ratios": [1, 1.4]})
    for i in sel:  # each orbital a horizontal bar split by its domain fractions
        x0 = 0.0
        for g, name in enumerate(orb.groups):
            ax1.plot([x0, x0 + frac[g, i]], [orb.energies_eV[i]] * 2, color=_COLOURS.get(name, f"C{g}"), lw=2,
                     ls="-" if orb.occupations[i] > 0.5 else "--")
            x0 += frac[g, i]
    for g, name in enumerate(orb.groups):
        e = result.edges[name]
        for k in ("vbm_eV", "cbm_eV"):
            if e[k] is not None and lo <= e[k] <= hi:
                ax1.plot([1.02, 1.12], [e[k]] * 2, color=_COLOURS.get(name, f"C{g}"), lw=3)
    ax1.set_xlim(0, 1.15)
    ax1.set_xlabel("domain fraction of each orbital\n(solid occupied, dashed empty; ticks: domain edges)")
    ax1.set_ylabel("orbital energy (eV)")
    e = np.linspace(lo, hi, 800)
    dos = projected_dos(orb, e, sigma_eV=0.05)
    for g, name in enumerate(orb.groups):
        ax2.plot(dos[g], e, color=_COLOURS.get(name, f"C{g}"), label=name)
    ax2.axhline(orb.energies_eV[h], color="k", lw=0.6, ls=":")
    ax2.axhline(orb.energies_eV[lu], color="k", lw=0.6, ls=":")
    ax2.set_xlabel("projected DOS (states/eV, σ = 0.05 eV)")
    ax2.legend(loc="upper right", fontsize=8)
    ax2.set_title(f"gap {orb.gap_eV:.2f} eV, HOMO/LUMO: {result.frontier['type']}", fontsize=9)
    ax1.set_ylim(lo, hi)
    fig.tight_layout()
    fig.savefig(folder / "orbitals.png", dpi=150)
    fig.savefig(folder / "orbitals.svg")
