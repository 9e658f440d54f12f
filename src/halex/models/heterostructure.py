"""Perovskite–chalcohalide nanocrystal heterostructures (SPEC §3).

A CsPbX3 nanocrystal (:func:`~halex.models.perovskite_nanocrystal`, n1 × n2 × n3
octahedra) sits on a slab of a Pb4S3X2 chalcohalide; the interface plane is normal to z,
the perovskite above (z > 0), the chalcohalide below.

Construction, step by step (every choice is recorded in ``atoms.info["epitaxy"]``):

1. **Epitaxial relation by lattice matching.** The chalcohalide's stacking axis is its
   longest cell vector (b in standard-setting Pnma); its other two vectors span the face
   that meets the perovskite (001) face. pymatgen's Zur–McGill lattice matcher
   (:class:`pymatgen.analysis.interfaces.zsl.ZSLGenerator`) finds the smallest pair of
   coincident supercells; for Pb4S3Cl2 this is the perovskite √2 × √2 cell rotated by 45°
   on the chalcohalide a × c face. The mismatch along each supercell vector is reported
   as (a_perovskite − a_chalcohalide) / a_perovskite × 100 (SPEC §4), with
   a_chalcohalide the chalcohalide spacing per perovskite cell.
2. **Coherent epitaxy** (default): the chalcohalide is strained in-plane by the 2 × 2 map
   that takes its supercell vectors onto the perovskite's, so the two lattices stay in
   registry over any lateral size; the applied principal strains are reported. With
   ``coherent=False`` it is only rotated.
3. **Termination and registry.** Every plane between two distinct atomic levels along
   the stacking axis is a candidate termination. For each, the in-plane shift and the
   height of the slab are chosen on a grid (0.2 Å in-plane, 0.1 Å in height) to put the
   chalcohalide's topmost cation plane (its Pb within a/2, the spacing of the perovskite's
   Pb and Cs planes, of the highest one) as close as possible to the sites the perovskite
   cation subnetwork would occupy if it continued below the interface (Pb at (i, j, −m)a,
   Cs at (i+½, j+½, −m−½)a): the RMS distance to those sites is the *cation registry*
   that is minimised, so the Pb2+/Cs+ subnetwork runs on across the interface.
   Placements that bring interface atoms too close (cation–anion < 2.6 Å, cation–cation
   < 3.4 Å, anion–anion < 3.2 Å), or leave no cation–anion bond (≤ 3.6 Å) across the
   interface, are rejected.
4. **Cut.** The chalcohalide is cut to the lateral footprint of the perovskite (or a
   larger one, ``lateral``) and to ``layers`` chalcohalide layers of half a stacking
   period each (b/2 ≈ 7.7 Å, the repeat of the [Pb4S3X2] sheets), counted from the
   termination: layers −1, −2, … Atoms left with fewer than two counter-ions within
   3.6 Å (Pb: S or halide; S/halide: Pb) are removed, repeatedly.
5. **Neutrality rule.** The perovskite nanocrystal is neutral by its own rule. The
   chalcohalide (formal charges Pb +2, S −2, X −1) is made neutral by removing, outside
   the interfacial slab (3 Å below the termination), Pb while the excess charge is ≥ +1
   and halides while it is ≤ −1 (sulfur only if no halide is left), lowest coordination
   first and spread out by farthest-point sampling, exactly as the nanocrystal builder
   does (one rule for both, :mod:`halex.models.neutrality`). The whole model is then
   neutral.

The result carries ``domain`` / ``layer`` / ``role`` arrays (roles ``Pb``, ``S``, ``X`` in
the chalcohalide) and is checked: formal charge 0 and no two atoms closer than
2.4 Å (else :class:`~halex.errors.StructureError`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms

from halex.arrays import HALEX_ARRAYS
from halex.checks import check_size, check_vacuum
from halex.errors import InputError, StructureError
from halex.models.nanocrystal import MAX_ATOMS, perovskite_nanocrystal
from halex.models.neutrality import FORMAL_CHARGES, formal_charge, neutralise_mixed
from halex.phases import load_phase, perovskite_a

__all__ = ["heterostructure", "check_chalcohalide", "epitaxy_report", "DEFAULT_PEROVSKITE_SIZE", "DEFAULT_CHALCOHALIDE_LAYERS"]

#: Default sizes: ≈ 700 atoms, which the default engine relaxes in minutes on 2 cores.
DEFAULT_PEROVSKITE_SIZE = (4, 4, 4)
DEFAULT_CHALCOHALIDE_LAYERS = 2

CATIONS = ("Pb",)
ANIONS = ("S", "Cl", "Br", "I")
#: Closest allowed contacts across the interface (Å) while placing the chalcohalide.
MIN_CATION_ANION = 2.6
MIN_CATION_CATION = 3.4
MIN_ANION_ANION = 3.2
#: No two atoms of a finished model closer than this (Å): shorter than any Pb–X or Pb–S bond.
MIN_DISTANCE = 2.4
#: Neighbour cutoff (Å) for counting counter-ions (bonds Pb–S ≈ 2.8–3.1, Pb–Cl ≈ 2.8–3.3).
BOND_CUTOFF = 3.6
#: Depth (Å) below the termination counted as the interfacial slab.
INTERFACE_DEPTH = 3.0
#: Beyond these the model is built but not the epitaxy SPEC §1 describes (mismatch well under
#: 1 %, a continuous cation subnetwork), and the builder warns: largest |mismatch| (%) and
#: cation registry RMS (Å). CsPbCl3 on the shipped Pb4S3Cl2: 1.75 % and 0.70 Å.
WARN_MISMATCH_PERCENT = 3.0
WARN_REGISTRY_A = 1.5


def check_chalcohalide(atoms: Atoms) -> str:
    """Check that ``atoms`` is a Pb4S3X2 chalcohalide cell; return the halide X.

    Raises :class:`~halex.errors.StructureError` when the composition is not Pb:S:X =
    4:3:2 with one halide, or the cell is not orthorhombic (all angles 90° within 0.5°).
    """
    from collections import Counter

    counts = Counter(atoms.get_chemical_symbols())
    halides = [h for h in ("Cl", "Br", "I") if counts.get(h)]
    other = sorted(set(counts) - {"Pb", "S", "Cl", "Br", "I"})
    ok = (not other and len(halides) == 1 and counts.get("Pb", 0) > 0
          and counts["Pb"] * 3 == counts.get("S", 0) * 4 and counts["Pb"] * 2 == counts[halides[0]] * 4)
    if not ok:
        raise StructureError(
            f"the chalcohalide must be a Pb4S3X2 phase (Pb:S:X = 4:3:2, one halide X), got {atoms.get_chemical_formula()}: "
            "give a Pb4S3Cl2/Pb4S3Br2/Pb4S3I2 CIF"
        )
    if not atoms.pbc.all() or not np.allclose(atoms.cell.angles(), 90.0, atol=0.5):
        raise StructureError(
            f"the chalcohalide cell must be orthorhombic (Pnma), got angles {np.round(atoms.cell.angles(), 2).tolist()}°"
        )
    return halides[0]


def _zsl_match(a: float, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest coincident supercells of the perovskite (001) face and the face (u, v).

    Returns (film 2×2, substrate 2×2) supercell vectors as rows, in the perovskite frame
    and in the face's own 2D frame (u along x).
    """
    try:
        from pymatgen.analysis.interfaces.zsl import ZSLGenerator
    except ImportError:  # pragma: no cover - depends on the installation
        from halex.errors import EngineUnavailableError

        raise EngineUnavailableError("the heterostructure builder needs pymatgen (a core dependency): pip install -e .") from None
    lu, lv = np.linalg.norm(u), np.linalg.norm(v)
    cos = float(np.dot(u, v) / (lu * lv))
    sub = np.array([[lu, 0.0, 0.0], [lv * cos, lv * np.sqrt(1 - cos**2), 0.0]])
    film = np.array([[a, 0.0, 0.0], [0.0, a, 0.0]])
    gen = ZSLGenerator(max_area_ratio_tol=0.09, max_area=400, max_length_tol=0.05, max_angle_tol=0.01)
    match = next(iter(gen(film, sub, lowest=True)), None)
    if match is None:
        raise StructureError(
            f"no epitaxial match within 5 % between the perovskite (a = {a:.3f} Å) and the chalcohalide face "
            f"({lu:.3f} × {lv:.3f} Å): is this the right chalcohalide?"
        )
    return np.asarray(match.film_sl_vectors)[:, :2], np.asarray(match.substrate_sl_vectors)[:, :2]


def _virtual_site_distance(points: np.ndarray, a: float) -> np.ndarray:
    """Distance (Å) from each point to the nearest site of the continued cation subnetwork.

    Sites: Pb at integer multiples of ``a``, Cs at half-integer ones (the perovskite's
    CsCl-type cation lattice with Pb at the origin).
    """
    d_pb = points - a * np.round(points / a)
    q = points - 0.5 * a
    d_cs = q - a * np.round(q / a)
    return np.minimum(np.linalg.norm(d_pb, axis=-1), np.linalg.norm(d_cs, axis=-1))


def _min_image_pairs(p: np.ndarray, q: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """All p–q distances (Å) minimised over in-plane images of the 2D lattice ``lat2``."""
    shifts = np.array([i * lat2[0] + j * lat2[1] for i in (-1, 0, 1) for j in (-1, 0, 1)])
    shifts3 = np.concatenate([shifts, np.zeros((len(shifts), 1))], axis=1)
    diff = p[:, None, None, :] - q[None, :, None, :] + shifts3[None, None, :, :]
    return np.linalg.norm(diff, axis=-1).min(axis=2)


def _wrap_2d(xy: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    frac = np.linalg.solve(lat2.T, xy.T).T
    return (frac - np.floor(frac)) @ lat2


def _interface_atoms(a: float, film: np.ndarray, halide: str) -> tuple[np.ndarray, np.ndarray]:
    """Positions and symbols of the perovskite's two lowest planes in one film supercell."""
    pts, sym = [], []
    n = int(np.ceil(np.abs(film).max() / a)) + 2
    for i in range(-n, n + 1):
        for j in range(-n, n + 1):
            for off, z, s in (((0.5, 0.5), -0.5, "Cs"), ((0, 0), -0.5, halide), ((0, 0), 0.0, "Pb"),
                              ((0.5, 0), 0.0, halide), ((0, 0.5), 0.0, halide)):
                pts.append(((i + off[0]) * a, (j + off[1]) * a, z * a))
                sym.append(s)
    pts = np.array(pts)
    frac = np.linalg.solve(film.T, pts[:, :2].T).T
    inside = np.all((frac > -1e-6) & (frac < 1 - 1e-6), axis=1)
    return pts[inside], np.array(sym)[inside]


def _oriented_chalcohalide(bulk: Atoms, a: float, coherent: bool) -> tuple[Atoms, dict[str, Any]]:
    """Rotate (and coherently strain) the bulk so its stacking axis is z, matched to the perovskite."""
    cell = bulk.cell.array
    lengths = np.linalg.norm(cell, axis=1)
    w_idx = int(np.argmax(lengths))
    u_idx, v_idx = (k for k in range(3) if k != w_idx)
    u, v, w = cell[u_idx], cell[v_idx], cell[w_idx]
    e1 = u / np.linalg.norm(u)
    ew = w / np.linalg.norm(w)
    e2 = np.cross(ew, e1)
    basis = np.stack([e1, e2, ew])  # rows: chalcohalide frame -> face coordinates
    film, sub = _zsl_match(a, basis[:2] @ u, basis[:2] @ v)
    t = film.T @ np.linalg.inv(sub.T)  # 2x2 map: face coords -> perovskite xy
    if np.linalg.det(t) < 0:  # -f1 is as good a lattice vector as f1: keep a proper rotation
        film = film * np.array([[1.0], [-1.0]])
        t = film.T @ np.linalg.inv(sub.T)
    u_svd, s_svd, vt_svd = np.linalg.svd(t)
    rot2 = u_svd @ vt_svd
    stretch = vt_svd.T @ np.diag(s_svd) @ vt_svd  # t = rot2 @ stretch (polar decomposition)
    m2 = t if coherent else rot2
    m3 = np.eye(3)
    m3[:2, :2] = m2
    transform = m3 @ basis
    out = bulk.copy()
    out.set_cell(cell @ transform.T, scale_atoms=True)
    # rows in-plane, in-plane, stacking (Cartesian positions unchanged), wrapped into the cell
    out.set_cell(out.cell.array[[u_idx, v_idx, w_idx]], scale_atoms=False)
    out.wrap()
    lf = np.linalg.norm(film, axis=1)
    ls = np.linalg.norm(sub, axis=1)
    ncell = lf / a  # length of each film supercell vector in perovskite cells (√2 for the 45° match)
    report = {
        "stacking_axis": "abc"[w_idx],
        "face": "abc"[u_idx] + "abc"[v_idx],
        "perovskite_supercell_A": np.round(film, 4).tolist(),
        "chalcohalide_supercell_A": np.round(sub, 4).tolist(),
        "rotation_deg": round(float(np.degrees(np.arctan2(rot2[1, 0], rot2[0, 0]))), 3),
        "chalcohalide_spacing_per_perovskite_cell_A": np.round(ls / ncell, 4).tolist(),
        "mismatch_percent": np.round((lf - ls) / lf * 100, 3).tolist(),
        "coherent": bool(coherent),
        "applied_strain_percent": np.round((np.linalg.eigvalsh(stretch) - 1) * 100, 3).tolist() if coherent else [0.0, 0.0],
    }
    return out, {"report": report, "film": film, "rot2": rot2, "m2": m2, "stack_length": float(np.linalg.norm(w))}


def _levels(z: np.ndarray, period: float, tol: float = 0.2) -> np.ndarray:
    """Distinct heights (mod ``period``) of ``z``, merged within ``tol``."""
    zs = np.sort(np.mod(z, period))
    levels = [zs[0]]
    for val in zs[1:]:
        if val - levels[-1] > tol:
            levels.append(val)
    if levels[-1] - levels[0] > period - tol and len(levels) > 1:
        levels.pop()
    return np.array(levels)


def _place(oriented: Atoms, a: float, film: np.ndarray, halide: str) -> dict[str, Any]:
    """Termination, in-plane shift and height that continue the cation subnetwork best."""
    period = oriented.cell.array[2, 2]
    # the bulk in one film supercell (in-plane) over two stacking periods
    lat2 = film
    reach = int(np.ceil(np.abs(film).sum(axis=0).max() / oriented.cell.lengths()[:2].min())) + 2
    rep = oriented.repeat((2 * reach + 1, 2 * reach + 1, 2))
    rep.translate(-reach * (oriented.cell.array[0] + oriented.cell.array[1]))
    pos = rep.get_positions()
    sym = np.array(rep.get_chemical_symbols())
    frac2 = np.linalg.solve(lat2.T, pos[:, :2].T).T
    inside = np.all((frac2 >= 0) & (frac2 < 1), axis=1)
    pos, sym = pos[inside], sym[inside]
    iface_pos, iface_sym = _interface_atoms(a, film, halide)
    iface_cation = np.array([FORMAL_CHARGES[s] > 0 for s in iface_sym])

    levels = _levels(pos[:, 2], period)
    gaps = np.diff(np.append(levels, levels[0] + period))
    cuts = levels + gaps / 2  # a termination between each pair of neighbouring levels
    grid = np.arange(0.0, a, 0.2)
    gx, gy = np.meshgrid(grid, grid, indexing="ij")
    shifts2 = np.stack([gx.ravel(), gy.ravel()], axis=1)
    tops = np.arange(-1.6 * a, -0.55 * a, 0.1)
    best: dict[str, Any] | None = None
    for k, cut in enumerate(cuts):
        zc = cut + period  # a cut in the upper copy, with a full period below it
        top = (pos[:, 2] <= zc) & (pos[:, 2] > zc - INTERFACE_DEPTH - 1.0)
        top_sym = sym[top]
        cation = np.isin(top_sym, CATIONS)
        if not cation.any():
            continue
        top_pos = pos[top] - np.array([0.0, 0.0, zc])  # heights relative to the termination
        z_top_cation = top_pos[cation, 2].max()
        sel = cation & (top_pos[:, 2] > z_top_cation - a / 2)  # the topmost cation plane
        # rms over (shift, height) for the interfacial cations, vectorised
        cat = top_pos[sel]
        dz = tops - z_top_cation  # termination height so that the top cation sits at `tops`
        pts = cat[None, None, :, :] + np.concatenate(
            [np.broadcast_to(shifts2[:, None, None, :], (len(shifts2), len(dz), 1, 2)),
             np.broadcast_to(dz[None, :, None, None], (len(shifts2), len(dz), 1, 1))], axis=-1)
        rms = np.sqrt(np.mean(_virtual_site_distance(pts, a) ** 2, axis=-1))
        order = np.argsort(rms, axis=None)
        for flat in order[:400]:
            i_s, i_z = np.unravel_index(flat, rms.shape)
            if best is not None and rms[i_s, i_z] >= best["registry_rms_A"]:
                break
            shift = np.array([*shifts2[i_s], dz[i_z]])
            placed = top_pos + shift
            placed[:, :2] = _wrap_2d(placed[:, :2], lat2)
            d = _min_image_pairs(placed, iface_pos, lat2)
            cation_anion = min(d[cation][:, ~iface_cation].min(initial=9), d[~cation][:, iface_cation].min(initial=9))
            ok = (d[cation][:, iface_cation].min(initial=9) >= MIN_CATION_CATION
                  and d[~cation][:, ~iface_cation].min(initial=9) >= MIN_ANION_ANION
                  # not too close, and bonded to the perovskite rather than floating below it
                  and MIN_CATION_ANION <= cation_anion <= BOND_CUTOFF)
            if ok:
                best = {"termination": k, "cut_fraction": float(np.mod(cut, period) / period),
                        "termination_height_A": float(dz[i_z]), "shift_A": shifts2[i_s].tolist(),
                        "registry_rms_A": float(rms[i_s, i_z]), "min_interface_distance_A": float(d.min()),
                        "cut": float(np.mod(cut, period))}
                break
    if best is None:
        raise StructureError("no termination of the chalcohalide fits under the perovskite without atoms "
                             "closer than the contact limits: check the chalcohalide structure")
    return best


def _counter_ion_counts(pos: np.ndarray, sym: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree

    tree = cKDTree(pos)
    pairs = tree.query_pairs(BOND_CUTOFF, output_type="ndarray")
    cat = np.isin(sym, ("Pb", "Cs"))
    counter = cat[pairs[:, 0]] != cat[pairs[:, 1]]
    # Cs–anion contacts (≥ 3.9 Å in CsPbX3) fall outside the cutoff anyway
    return np.bincount(pairs[counter].ravel(), minlength=len(pos))


def heterostructure(
    perovskite: Sequence[int] = DEFAULT_PEROVSKITE_SIZE,
    layers: int = DEFAULT_CHALCOHALIDE_LAYERS,
    *,
    halide: str = "Cl",
    chalcohalide: str | Atoms = "Pb4S3Cl2",
    lateral: Sequence[int] | None = None,
    a: float | None = None,
    coherent: bool = True,
    vacuum: float = 8.0,
) -> Atoms:
    """Perovskite nanocrystal on a chalcohalide slab, charge-neutral, with halex arrays.

    Parameters
    ----------
    perovskite
        Octahedra (n1, n2, n3) of the CsPbX3 domain along x, y and z (z: away from the
        interface).
    layers
        Thickness of the chalcohalide domain in layers of half its stacking period
        (b/2 ≈ 7.7 Å for Pb4S3Cl2).
    halide
        Perovskite halide (``"Cl"`` for the starting CsPbCl3–Pb4S3Cl2 system).
    chalcohalide
        A library phase name (default ``"Pb4S3Cl2"``, the structure search with the
        protocol validated on Pb4S3I2; ``"Pb4S3Cl2-provisional"`` is the earlier search
        without dispersion), a CIF path, or an ``Atoms`` cell of a Pb4S3X2 phase.
    lateral
        Footprint (m1, m2) of the chalcohalide in perovskite cells, centred under the
        perovskite (default: the perovskite's own n1, n2).
    a
        Perovskite Pb–Pb spacing in Å (default: the experimental cubic lattice constant).
    coherent
        Strain the chalcohalide in-plane onto the perovskite lattice (default) or only
        rotate it.
    vacuum
        Vacuum (Å) around the model (non-periodic).

    Returns
    -------
    ase.Atoms
        Non-periodic model; ``info["epitaxy"]`` (JSON) reports the match, the mismatch,
        the applied strain, the termination, the cation registry and the atoms removed
        for neutrality.
    """
    n1, n2, n3 = check_size(perovskite)
    if isinstance(layers, bool) or not isinstance(layers, (int, np.integer)) or layers < 1:
        raise InputError(f"chalcohalide layers must be a positive integer, got {layers!r}")
    m1, m2 = (n1, n2) if lateral is None else check_size((*lateral, 1))[:2]
    a = perovskite_a(halide, a)
    check_vacuum(vacuum)
    bulk = chalcohalide.copy() if isinstance(chalcohalide, Atoms) else load_phase(chalcohalide)
    ch_halide = check_chalcohalide(bulk)
    _check_model_size(bulk, (n1, n2, n3), (m1, m2), layers, a)

    nc = perovskite_nanocrystal((n1, n2, n3), halide, a=a, vacuum=0.0)
    nc.translate(-nc.positions[nc.numbers == 82].min(axis=0))  # Pb (0, 0, 0) at the origin, interfacial CsX at z = -a/2
    oriented, orient = _oriented_chalcohalide(bulk, a, coherent)
    place = _place(oriented, a, orient["film"], halide)
    pos, sym = _cut_slab(oriented, place, orient["stack_length"], a, (n1, n2), (m1, m2), layers)
    pos, sym, counts, removed_dangling = _drop_dangling(pos, sym, nc)
    pos, sym, removed_by = _neutralise_slab(pos, sym, counts, place["termination_height_A"], ch_halide)
    ch = _label_slab(pos, sym, place["termination_height_A"], orient["stack_length"], layers)

    model = nc + ch
    model.pbc = False
    model.cell = None
    model.center(vacuum=vacuum)
    dmin = _check_model(model)
    report = {**orient["report"], **{k: v for k, v in place.items() if k != "cut"},
              "perovskite_a_A": float(a), "perovskite_size": [n1, n2, n3], "chalcohalide_layers": int(layers),
              "chalcohalide_footprint_cells": [m1, m2], "chalcohalide_phase": bulk.info.get("phase", "user Atoms"),
              "removed_dangling": removed_dangling, "removed_for_neutrality": removed_by,
              "min_distance_A": round(float(dmin), 4)}
    _record(model, bulk, report, f"{n1}x{n2}x{n3}+{layers}", halide, a)
    _warn_poor_epitaxy(report, halide)
    return model


def _warn_poor_epitaxy(report: dict[str, Any], halide: str) -> None:
    """Warn when the lattice match or the cation registry is far from the expected epitaxy."""
    worst = max(abs(m) for m in report["mismatch_percent"])
    rms = report["registry_rms_A"]
    if worst > WARN_MISMATCH_PERCENT or rms > WARN_REGISTRY_A:
        warnings.warn(
            f"CsPb{halide}3 on {report['chalcohalide_phase']}: lattice mismatch "
            f"{' / '.join(f'{m:+.2f}' for m in report['mismatch_percent'])} % and cation registry RMS {rms:.2f} Å "
            f"(expected below {WARN_MISMATCH_PERCENT:g} % and {WARN_REGISTRY_A:g} Å for the epitaxial interface); "
            "is this the chalcohalide you meant?", UserWarning, stacklevel=3)


def _check_model_size(bulk: Atoms, size: tuple[int, int, int], footprint: tuple[int, int], layers: int,
                      a: float) -> None:
    """Refuse a model above :data:`MAX_ATOMS` before any heavy work (footprint volume × bulk density)."""
    n1, n2, n3 = size
    m1, m2 = footprint
    est = len(bulk) / bulk.get_volume() * ((m1 + 1) * a) * ((m2 + 1) * a) * layers * np.max(bulk.cell.lengths()) / 2
    n_pv = 4 * n1 * n2 * n3 + 3 * (n1 * n2 + n2 * n3 + n1 * n3)
    if est + n_pv > MAX_ATOMS:
        raise InputError(f"this heterostructure would have about {int(est + n_pv):,} atoms, more than the {MAX_ATOMS:,} "
                         "halex builds; choose smaller sizes")


def _cut_slab(oriented: Atoms, place: dict[str, Any], period: float, a: float, size: tuple[int, int],
              footprint: tuple[int, int], layers: int) -> tuple[np.ndarray, np.ndarray]:
    """Tile the oriented bulk over the footprint under the perovskite and cut ``layers`` half-periods."""
    (n1, n2), (m1, m2) = size, footprint
    x0, x1 = -0.5 * a - 0.3 + np.floor((n1 - m1) / 2) * a, (np.floor((n1 - m1) / 2) + m1 - 0.5) * a + 0.3
    y0, y1 = -0.5 * a - 0.3 + np.floor((n2 - m2) / 2) * a, (np.floor((n2 - m2) / 2) + m2 - 0.5) * a + 0.3
    # the registry search placed the termination plane at this height (Pb (0,0,0) at the origin)
    z_term = place["termination_height_A"]
    z_bottom = z_term - layers * period / 2
    shift = np.array([*place["shift_A"], z_term - place["cut"]])
    cellv = oriented.cell.array
    corners = np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z_bottom, z_term)]) - shift
    frac = np.linalg.solve(cellv.T, corners.T).T
    lo, hi = np.floor(frac.min(axis=0)).astype(int) - 1, np.ceil(frac.max(axis=0)).astype(int) + 1
    base = oriented.get_positions()
    grid = np.array([[i, j, k] for i in range(lo[0], hi[0]) for j in range(lo[1], hi[1]) for k in range(lo[2], hi[2])])
    pos = (base[None, :, :] + (grid @ cellv)[:, None, :]).reshape(-1, 3) + shift
    sym = np.tile(np.array(oriented.get_chemical_symbols()), len(grid))
    keep = ((pos[:, 0] >= x0) & (pos[:, 0] < x1) & (pos[:, 1] >= y0) & (pos[:, 1] < y1)
            & (pos[:, 2] <= z_term + 1e-6) & (pos[:, 2] > z_bottom + 1e-6))
    return pos[keep], sym[keep]


def _drop_dangling(pos: np.ndarray, sym: np.ndarray, nc: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Remove, repeatedly, slab atoms with fewer than two counter-ions (the perovskite counts too).

    Returns the kept positions and symbols, their counter-ion counts and how many went.
    """
    nc_pos, nc_sym = nc.get_positions(), np.array(nc.get_chemical_symbols())
    removed = 0
    while True:
        counts = _counter_ion_counts(np.concatenate([pos, nc_pos]), np.concatenate([sym, nc_sym]))[: len(pos)]
        bad = counts < 2
        if not bad.any():
            return pos, sym, counts, removed
        removed += int(bad.sum())
        pos, sym = pos[~bad], sym[~bad]


def _neutralise_slab(pos: np.ndarray, sym: np.ndarray, counts: np.ndarray, z_term: float,
                     halide: str) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """The neutrality rule for the chalcohalide domain, outside the interfacial slab."""
    removable = pos[:, 2] < z_term - INTERFACE_DEPTH
    try:
        removed = neutralise_mixed(pos, sym, counts, removable, cation="Pb", anions=(halide, "S"))
    except StructureError as exc:
        raise StructureError(f"the chalcohalide domain: {exc}") from None
    removed_by = {"Pb": 0, "S": 0, halide: 0}
    for i in removed:
        removed_by[str(sym[i])] += 1
    keep = np.setdiff1d(np.arange(len(pos)), removed)
    return pos[keep], sym[keep], removed_by


def _label_slab(pos: np.ndarray, sym: np.ndarray, z_term: float, period: float, layers: int) -> Atoms:
    """The chalcohalide atoms with ``domain``, ``layer`` (−1, −2, … from the interface) and ``role``."""
    layer = -1 - np.floor((z_term - pos[:, 2]) / (period / 2) + 1e-9).astype(int)
    layer = np.maximum(layer, -layers)
    role = np.where(sym == "Pb", "Pb", np.where(sym == "S", "S", "X"))
    ch = Atoms(symbols=list(sym), positions=pos)
    ch.new_array("domain", np.full(len(ch), "chalcohalide", dtype=HALEX_ARRAYS["domain"]))
    ch.new_array("layer", layer.astype(HALEX_ARRAYS["layer"]))
    ch.new_array("role", role.astype(HALEX_ARRAYS["role"]))
    return ch


def _check_model(model: Atoms) -> float:
    """Formal charge 0 and no two atoms closer than :data:`MIN_DISTANCE`; return the closest distance (Å)."""
    from scipy.spatial import cKDTree

    if formal_charge(model) != 0:  # pragma: no cover - guarded by the rules above
        raise StructureError(f"internal error: the model carries a formal charge of {formal_charge(model):+d}")
    dmin = cKDTree(model.positions).query(model.positions, k=2)[0][:, 1].min()
    if dmin < MIN_DISTANCE:
        raise StructureError(f"the model has atoms {dmin:.2f} Å apart (< {MIN_DISTANCE} Å): check the chalcohalide structure")
    return float(dmin)


def _record(model: Atoms, bulk: Atoms, report: dict[str, Any], size: str, halide: str, a: float) -> None:
    """Provenance in ``model.info``: builder, sizes, the epitaxy report (JSON) and the neutrality rule."""
    model.info.clear()
    model.info.update(
        builder="halex.models.heterostructure",
        size=size,
        halide=halide,
        chalcohalide=str(bulk.info.get("phase", "user Atoms")),
        a=float(a),
        epitaxy=json.dumps(report),
        neutrality_rule="perovskite: remove n1+n2+n3+1 lowest-coordinated Cs; chalcohalide: remove Pb (excess +) "
                        "or halide (excess -) outside the interfacial slab, lowest coordination first, farthest-point spread",
    )
    if "provisional" in bulk.info:
        model.info["provisional"] = f"chalcohalide {bulk.info.get('phase')}: {bulk.info['provisional']}"


def epitaxy_report(atoms: Atoms) -> dict[str, Any]:
    """The epitaxy record of a heterostructure built by :func:`heterostructure`."""
    raw = atoms.info.get("epitaxy")
    if raw is None:
        raise InputError("this model has no epitaxy record: it was not built by halex.models.heterostructure")
    return json.loads(raw) if isinstance(raw, str) else dict(raw)
