"""Where the frontier orbitals live: per-domain MO weights and band alignment (SPEC §4).

The input is a set of molecular orbitals (energies in eV, occupations) and, for every
orbital, its weight on groups of atoms (from CP2K's Mulliken projection onto atom lists,
see :mod:`halex.engines.cp2k.orbitals`; the container is
:class:`halex.engines.orbitals.OrbitalSet`). Everything here is a pure function of those
numbers and of the model's per-atom arrays.

Definitions
-----------
* **Electronic domains** of a model (:func:`electronic_domains`): ``chalcohalide`` for
  the chalcohalide domain; every perovskite layer (the per-atom ``layer`` array, the
  interfacial monolayer included) is ``CsPbI3`` when at least half of its halides are I,
  else ``CsPbCl3``. A partly alloyed layer therefore counts as CsPbCl3 until it is
  I-rich, the convention of the heterostructure literature (CsPbCl3 / CsPbI3 domains).
* **Domain fraction** of an orbital: its projected weights summed per domain, negative
  Mulliken weights set to zero, normalised to 1 over the domains.
* **Band edges per domain**: the VBM of domain D is the highest occupied orbital with a
  fraction ≥ ``threshold`` (default 0.4) on D; the CBM the lowest unoccupied one. With
  a threshold below 1/2 an orbital shared about equally by two domains is an edge of
  both (their offset is then ≈ 0: a shared carrier), instead of belonging to neither.
* **Alignment of two domains** A, B from their edges (:func:`classify_alignment`), with
  the valence and conduction band offsets ΔE_v = VBM_A − VBM_B and
  ΔE_c = CBM_A − CBM_B:
  *quasi-type-II* when one offset is smaller than ``tol_eV`` (default 0.1 eV, about
  4 kT at room temperature): one carrier is shared by both domains, the other confined;
  otherwise *type-I* when one gap lies inside the other (ΔE_v and ΔE_c of opposite
  sign: both carriers go to the same domain); otherwise *type-II* (staggered: the hole
  goes to the domain with the higher VBM, the electron to the one with the lower CBM).
* **Frontier character** (:func:`frontier_character`): the same question answered from
  the HOMO and LUMO alone, as in cluster DFT studies: an orbital is *localised* on a
  domain holding a fraction ≥ ``localised`` (default 0.6) of it. HOMO and LUMO
  localised on one domain: type-I; on different domains: type-II; one of them spread
  over domains: quasi-type-II.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from halex.engines.orbitals import OrbitalSet, group_labels
from halex.errors import AnalysisError, InputError

__all__ = [
    "DOMAIN_ORDER",
    "OrbitalSet",
    "electronic_domains",
    "group_labels",
    "check_threshold",
    "check_localised",
    "domain_fractions",
    "band_edges",
    "classify_alignment",
    "frontier_character",
    "alignment_table",
    "projected_dos",
]

#: Domains in the order they are reported.
DOMAIN_ORDER = ("chalcohalide", "CsPbCl3", "CsPbI3")


def electronic_domains(atoms: Atoms) -> np.ndarray:
    """Electronic domain of every atom: ``chalcohalide``, ``CsPbCl3`` or ``CsPbI3``.

    Needs the ``domain`` and ``layer`` arrays of halex models (see the module doc for
    the rule). Raises :class:`InputError` for a model without them.
    """
    if "domain" not in atoms.arrays or "layer" not in atoms.arrays:
        raise InputError("the model has no per-atom 'domain'/'layer' arrays: build it with halex "
                         "(halex build heterostructure / nanocrystal) or read a halex extxyz")
    domain = np.asarray(atoms.arrays["domain"]).astype(str)
    layer = np.asarray(atoms.arrays["layer"])
    sym = np.array(atoms.get_chemical_symbols())
    out = np.full(len(atoms), "", dtype="<U12")
    out[domain == "chalcohalide"] = "chalcohalide"
    pero = domain == "perovskite"
    for k in np.unique(layer[pero]):
        sel = pero & (layer == k)
        n_i = int(np.sum(sel & (sym == "I")))
        n_x = int(np.sum(sel & np.isin(sym, ("Cl", "I", "Br"))))
        out[sel] = "CsPbI3" if n_x and n_i >= 0.5 * n_x else "CsPbCl3"
    unknown = sorted(set(domain[out == ""]))
    if unknown:
        raise InputError(f"unknown domain names {unknown}: expected 'perovskite' or 'chalcohalide'")
    return out


def check_threshold(threshold: float) -> float:
    """``threshold`` (fraction that makes an orbital a domain's edge candidate) if in (0, 1]."""
    if not 0.0 < float(threshold) <= 1.0:
        raise InputError(f"threshold must be in (0, 1], got {threshold!r}")
    return float(threshold)


def check_localised(localised: float) -> float:
    """``localised`` (fraction on one domain for a localised HOMO/LUMO) if in [0.5, 1]."""
    if not 0.5 <= float(localised) <= 1.0:
        raise InputError(f"localised must be in [0.5, 1], got {localised!r}")
    return float(localised)


def domain_fractions(orbitals: OrbitalSet) -> np.ndarray:
    """Fraction of every orbital on every group, shape (n_groups, n_mo), columns summing to 1."""
    w = np.clip(orbitals.weights, 0.0, None)
    total = w.sum(axis=0)
    if np.any(total <= 0):
        raise AnalysisError("an orbital has no positive weight on any group: the projection does not cover the model")
    return w / total


def band_edges(orbitals: OrbitalSet, threshold: float = 0.4) -> dict[str, dict[str, Any]]:
    """VBM and CBM (eV) of every group, with the orbital indices and fractions.

    A group without an occupied (unoccupied) orbital of fraction ≥ ``threshold`` gets
    ``None`` for its VBM (CBM): raise ``nlumo`` for missing CBMs.
    """
    check_threshold(threshold)
    frac = domain_fractions(orbitals)
    occupied = orbitals.occupations > 0.5
    edges: dict[str, dict[str, Any]] = {}
    for g, name in enumerate(orbitals.groups):
        own = frac[g] >= threshold
        vb = np.flatnonzero(own & occupied)
        cb = np.flatnonzero(own & ~occupied)
        v = int(vb[-1]) if vb.size else None
        c = int(cb[0]) if cb.size else None
        edges[name] = {
            "vbm_eV": float(orbitals.energies_eV[v]) if v is not None else None,
            "cbm_eV": float(orbitals.energies_eV[c]) if c is not None else None,
            "vbm_mo": v, "cbm_mo": c,
            "vbm_fraction": float(frac[g, v]) if v is not None else None,
            "cbm_fraction": float(frac[g, c]) if c is not None else None,
            "gap_eV": float(orbitals.energies_eV[c] - orbitals.energies_eV[v]) if v is not None and c is not None else None,
        }
    return edges


def classify_alignment(vbm_a: float, cbm_a: float, vbm_b: float, cbm_b: float, tol_eV: float = 0.1) -> dict[str, Any]:
    """Band alignment of two domains from their edges (eV); see the module doc.

    Returns ``{"type", "dEv_eV", "dEc_eV", "hole_in", "electron_in"}`` with ΔE = A − B
    and ``hole_in``/``electron_in`` one of ``"A"``, ``"B"`` or ``"both"``.
    """
    vals = np.array([vbm_a, cbm_a, vbm_b, cbm_b], float)
    if not np.all(np.isfinite(vals)):
        raise InputError("band edges must be finite numbers (eV)")
    if cbm_a <= vbm_a or cbm_b <= vbm_b:
        raise InputError(f"each CBM must lie above its VBM: A {vbm_a:.3f}/{cbm_a:.3f}, B {vbm_b:.3f}/{cbm_b:.3f} eV")
    if not tol_eV >= 0:
        raise InputError(f"tol_eV must be >= 0, got {tol_eV!r}")
    dev, dec = vbm_a - vbm_b, cbm_a - cbm_b
    hole = "both" if abs(dev) < tol_eV else ("A" if dev > 0 else "B")
    electron = "both" if abs(dec) < tol_eV else ("A" if dec < 0 else "B")
    if "both" in (hole, electron):
        kind = "quasi-type-II"
    elif hole == electron:
        kind = "type-I"
    else:
        kind = "type-II"
    return {"type": kind, "dEv_eV": float(dev), "dEc_eV": float(dec), "hole_in": hole, "electron_in": electron}


def frontier_character(orbitals: OrbitalSet, localised: float = 0.6) -> dict[str, Any]:
    """HOMO and LUMO energies, domain fractions and the alignment type they imply."""
    check_localised(localised)
    frac = domain_fractions(orbitals)
    h, lu = orbitals.homo, orbitals.lumo
    hf = {g: float(frac[i, h]) for i, g in enumerate(orbitals.groups)}
    lf = {g: float(frac[i, lu]) for i, g in enumerate(orbitals.groups)}
    h_dom = max(hf, key=hf.get)
    l_dom = max(lf, key=lf.get)
    if hf[h_dom] < localised or lf[l_dom] < localised:
        kind = "quasi-type-II"
    elif h_dom == l_dom:
        kind = "type-I"
    else:
        kind = "type-II"
    return {"homo_eV": float(orbitals.energies_eV[h]), "lumo_eV": float(orbitals.energies_eV[lu]), "gap_eV": orbitals.gap_eV,
            "homo_fractions": hf, "lumo_fractions": lf, "homo_domain": h_dom, "lumo_domain": l_dom, "type": kind}


def alignment_table(orbitals: OrbitalSet, threshold: float = 0.4, tol_eV: float = 0.1) -> list[dict[str, Any]]:
    """Band alignment of every pair of groups that has both edges (rows for a table)."""
    edges = band_edges(orbitals, threshold)
    names = [g for g in orbitals.groups if edges[g]["vbm_eV"] is not None and edges[g]["cbm_eV"] is not None]
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ea, eb = edges[a], edges[b]
            r = classify_alignment(ea["vbm_eV"], ea["cbm_eV"], eb["vbm_eV"], eb["cbm_eV"], tol_eV)
            rows.append({"domain_a": a, "domain_b": b, **r,
                         "hole_in": {"A": a, "B": b}.get(r["hole_in"], "both"),
                         "electron_in": {"A": a, "B": b}.get(r["electron_in"], "both")})
    return rows


def projected_dos(orbitals: OrbitalSet, energies_eV: np.ndarray, sigma_eV: float = 0.1) -> np.ndarray:
    """Gaussian-broadened DOS per group (states/eV, 2 electrons per orbital), shape (n_groups, n_e)."""
    if not sigma_eV > 0:
        raise InputError(f"sigma_eV must be positive, got {sigma_eV!r}")
    e = np.asarray(energies_eV, float)
    g = np.exp(-0.5 * ((e[None, :] - orbitals.energies_eV[:, None]) / sigma_eV) ** 2) / (sigma_eV * np.sqrt(2 * np.pi))
    return 2.0 * domain_fractions(orbitals) @ g
