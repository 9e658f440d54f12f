"""Strain, lattice profile, mismatch and octahedral tilt of atomistic models (SPEC §4).

All functions read the per-atom arrays (``domain``, ``layer``) and positions of a model;
they are pure and work on relaxed models, because the pairs they use are found from
the geometry with tolerances wide enough for relaxed lattices.

Definitions
-----------
* **Pb–Pb pairs** of the perovskite: Pb pairs closer than 1.25 × the median
  nearest-neighbour Pb–Pb distance (corner-sharing neighbours, ≈ a).
* **Strain** of each pair against the standalone nanocrystal with the same perovskite
  atoms in the same order: (d_HS − d_ref) / d_ref × 100. Per layer: the mean over the
  in-plane pairs of that layer. **Interfacial strain**: mean |strain| of the in-plane
  pairs of perovskite layer 1.
* **Lattice profile**: mean in-plane Pb–Pb spacing per layer. For chalcohalide layers
  the spacing per perovskite cell is |t| / √2 for Pb pairs separated by the
  chalcohalide lattice vector t ≈ (±a, ±a, 0) (the 45° epitaxy), so both domains are on
  the same scale.
* **Mismatch** between two domains: (a_perovskite − a_other) / a_perovskite × 100 from
  the profile means (perovskite layers 1…n against chalcohalide layer −1).
* **Octahedral tilt**: for every halide bridging two perovskite Pb, 180° − ∠Pb–X–Pb;
  per octahedron the mean over its bridging halides; per layer the mean over its
  octahedra.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from halex.errors import InputError

__all__ = [
    "perovskite_pb_pairs",
    "pair_strain",
    "strain_by_layer",
    "interfacial_strain",
    "require_in_plane_pairs",
    "lattice_profile",
    "domain_mismatch",
    "octahedral_tilt",
    "tilt_by_layer",
]


def _need_arrays(atoms: Atoms) -> None:
    missing = [n for n in ("domain", "layer") if n not in atoms.arrays]
    if missing:
        raise InputError(f"the model lacks the per-atom array(s) {', '.join(missing)}: build it with halex")


def _pb(atoms: Atoms, domain: str = "perovskite") -> np.ndarray:
    _need_arrays(atoms)
    return np.flatnonzero((atoms.numbers == 82) & (atoms.arrays["domain"] == domain))


def perovskite_pb_pairs(atoms: Atoms) -> np.ndarray:
    """Index pairs (i, j), i < j, of corner-sharing perovskite Pb neighbours, shape (n, 2)."""
    from scipy.spatial import cKDTree

    pb = _pb(atoms)
    if len(pb) < 2:
        return np.empty((0, 2), int)
    pos = atoms.positions[pb]
    tree = cKDTree(pos)
    d_nn = tree.query(pos, k=2)[0][:, 1]
    pairs = tree.query_pairs(1.25 * float(np.median(d_nn)), output_type="ndarray")
    return np.sort(pb[pairs], axis=1)


def _in_plane(atoms: Atoms, pairs: np.ndarray) -> np.ndarray:
    v = atoms.positions[pairs[:, 1]] - atoms.positions[pairs[:, 0]]
    same_layer = atoms.arrays["layer"][pairs[:, 0]] == atoms.arrays["layer"][pairs[:, 1]]
    return same_layer & (np.abs(v[:, 2]) < 0.5 * np.linalg.norm(v, axis=1))


def pair_strain(atoms: Atoms, reference: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """Strain (%) of every perovskite Pb–Pb pair of ``atoms`` against ``reference``.

    ``reference`` is the standalone nanocrystal with the same perovskite atoms in the same
    order (e.g. ``atoms[atoms.arrays["domain"] == "perovskite"]`` relaxed on its own).
    Returns (pairs as indices into ``atoms``, strain in %).
    """
    pb = _pb(atoms)
    pb_ref = _pb(reference)
    if len(pb) != len(pb_ref):
        raise InputError(f"the reference has {len(pb_ref)} perovskite Pb, the model {len(pb)}: "
                         "use the standalone nanocrystal of the same size and composition")
    pairs = perovskite_pb_pairs(atoms)
    # map model Pb indices to reference Pb indices by their order within the perovskite
    rank = np.full(len(atoms), -1)
    rank[pb] = np.arange(len(pb))
    ref_pairs = pb_ref[rank[pairs]]
    d = np.linalg.norm(atoms.positions[pairs[:, 1]] - atoms.positions[pairs[:, 0]], axis=1)
    d_ref = np.linalg.norm(reference.positions[ref_pairs[:, 1]] - reference.positions[ref_pairs[:, 0]], axis=1)
    return pairs, (d - d_ref) / d_ref * 100.0


def strain_by_layer(atoms: Atoms, reference: Atoms) -> dict[int, float]:
    """Mean strain (%) of the in-plane Pb–Pb pairs of each perovskite layer."""
    pairs, strain = pair_strain(atoms, reference)
    inp = _in_plane(atoms, pairs)
    layers = atoms.arrays["layer"][pairs[:, 0]]
    return {int(k): float(strain[inp & (layers == k)].mean()) for k in np.unique(layers[inp])}


def require_in_plane_pairs(atoms: Atoms, layer: int = 1) -> None:
    """Raise :class:`InputError` when perovskite ``layer`` has no in-plane Pb–Pb pair (no strain to measure).

    Examples
    --------
    >>> from halex.models import heterostructure
    >>> require_in_plane_pairs(heterostructure((2, 2, 2), 1))
    >>> require_in_plane_pairs(heterostructure((1, 1, 2), 1))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    halex.errors.InputError: perovskite layer 1 has no in-plane Pb–Pb pairs, so its strain is undefined: ...
    """
    _layer_in_plane(atoms, perovskite_pb_pairs(atoms), layer)


def _layer_in_plane(atoms: Atoms, pairs: np.ndarray, layer: int) -> np.ndarray:
    """Mask of ``pairs`` in plane within perovskite ``layer``; :class:`InputError` when there is none."""
    sel = _in_plane(atoms, pairs) & (atoms.arrays["layer"][pairs[:, 0]] == layer)
    if not sel.any():
        raise InputError(f"perovskite layer {layer} has no in-plane Pb–Pb pairs, so its strain is undefined: build the "
                         "model at least 2 perovskite cells wide (halex build heterostructure --perovskite 2 2 N)")
    return sel


def interfacial_strain(atoms: Atoms, reference: Atoms, layer: int = 1) -> float:
    """Mean absolute strain (%) of the in-plane Pb–Pb pairs of the interfacial perovskite layer."""
    pairs, strain = pair_strain(atoms, reference)
    return float(np.abs(strain[_layer_in_plane(atoms, pairs, layer)]).mean())


def lattice_profile(atoms: Atoms) -> dict[int, float]:
    """Mean in-plane Pb–Pb spacing (Å, per perovskite cell) of every layer, both domains."""
    from scipy.spatial import cKDTree

    out: dict[int, float] = {}
    pairs = perovskite_pb_pairs(atoms)
    if len(pairs):
        inp = _in_plane(atoms, pairs)
        d = np.linalg.norm(atoms.positions[pairs[:, 1]] - atoms.positions[pairs[:, 0]], axis=1)
        layers = atoms.arrays["layer"][pairs[:, 0]]
        out.update({int(k): float(d[inp & (layers == k)].mean()) for k in np.unique(layers[inp])})
    ch = _pb(atoms, "chalcohalide")
    if len(ch) > 1 and out:
        # the chalcohalide's (110)-type vector: from the build's lattice constant when recorded
        a = float(atoms.info.get("a", np.median(list(out.values()))))
        pos = atoms.positions[ch]
        tree = cKDTree(pos)
        layers = atoms.arrays["layer"][ch]
        for k in np.unique(layers):
            vals = []
            for t in (np.array([a, a, 0.0]), np.array([a, -a, 0.0])):
                d, j = tree.query(pos[layers == k] + t, distance_upper_bound=0.8)
                hit = np.isfinite(d)
                src = pos[layers == k][hit]
                vals.extend(np.linalg.norm(pos[j[hit]] - src, axis=1) / np.sqrt(2))
            if vals:
                out[int(k)] = float(np.mean(vals))
    return dict(sorted(out.items()))


def domain_mismatch(atoms: Atoms) -> float:
    """(a_perovskite − a_chalcohalide) / a_perovskite × 100 from :func:`lattice_profile`."""
    prof = lattice_profile(atoms)
    pv = [v for k, v in prof.items() if k >= 1]
    ch = prof.get(-1)
    if not pv or ch is None:
        raise InputError("the model needs perovskite layers and a chalcohalide layer -1 for a mismatch")
    a_pv = float(np.mean(pv))
    return (a_pv - ch) / a_pv * 100.0


def octahedral_tilt(atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """Tilt (°) of every perovskite octahedron: mean of 180° − ∠Pb–X–Pb over its bridging halides.

    Returns (Pb indices, tilt in degrees); an octahedron without bridging halides (a 1×1×1
    cluster) gets NaN.
    """
    from scipy.spatial import cKDTree

    pb = _pb(atoms)
    halide = np.flatnonzero(np.isin(atoms.numbers, (17, 35, 53)) & (atoms.arrays["domain"] == "perovskite"))
    tilt = np.full(len(pb), np.nan)
    if len(pb) < 2 or len(halide) == 0:
        return pb, tilt
    pos_pb = atoms.positions[pb]
    tree = cKDTree(pos_pb)
    d_nn = tree.query(pos_pb, k=2)[0][:, 1]
    cutoff = 0.65 * float(np.median(d_nn))  # Pb–X ≈ a/2
    d, j = tree.query(atoms.positions[halide], k=2, distance_upper_bound=cutoff)
    bridging = np.isfinite(d).all(axis=1)
    sums = np.zeros(len(pb))
    counts = np.zeros(len(pb))
    for x, (p1, p2) in zip(halide[bridging], j[bridging]):
        v1 = pos_pb[p1] - atoms.positions[x]
        v2 = pos_pb[p2] - atoms.positions[x]
        angle = np.degrees(np.arccos(np.clip(np.dot(v1, v2) / np.linalg.norm(v1) / np.linalg.norm(v2), -1, 1)))
        for p in (p1, p2):
            sums[p] += 180.0 - angle
            counts[p] += 1
    has = counts > 0
    tilt[has] = sums[has] / counts[has]
    return pb, tilt


def tilt_by_layer(atoms: Atoms) -> dict[int, float]:
    """Mean octahedral tilt (°) of the octahedra of each perovskite layer."""
    pb, tilt = octahedral_tilt(atoms)
    layers = atoms.arrays["layer"][pb]
    return {int(k): float(np.nanmean(tilt[layers == k])) for k in np.unique(layers) if np.isfinite(tilt[layers == k]).any()}
