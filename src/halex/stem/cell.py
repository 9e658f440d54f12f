"""The projected cell of an atomic-resolution image, read from its columns.

Nothing about the crystal is assumed: the cell comes from the columns the fit found.

1. **Column lattice.** The nearest-neighbour vectors of all columns are clustered
   (a k-d tree on the vectors, greedy by population, each centre refined by a mean shift
   in a window of 0.1 × the nearest-neighbour distance). Of the clusters at least 0.35 ×
   as populated as the largest (the majority lattice, not a denser minority phase), the
   pair with the smallest cell that spans all of them as integer combinations is
   Gauss-reduced into the basis ``b1`` (shorter) and ``b2``.
2. **Indexing.** Columns get integer indices on that basis by the breadth-first walk of
   :mod:`halex.stem.lattice`, so slow strain and bending do not break the indexing.
3. **Brightness classes.** The four parity classes ``(i mod 2, j mod 2)`` are compared.
   A class is *empty* when it holds under a quarter of the largest class's columns. Two
   classes are compared locally: every column of one against the median of the other's
   columns within 2.2 |b2|, so a thickness gradient across the particle cancels. They
   *differ* when the median of these differences, for a brightness measure (volume, or
   peak height: inverted bright-field columns differ in height more than in volume), is
   more than 4 standard errors (robust: 1.2533 × 1.4826 MAD / √n) from zero and more
   than 5 % of the class medians.
4. **Projection.** The geometry (square, or a rectangle with sides in the ratio √2) and
   the class pattern select one of :data:`PROJECTIONS`. The pseudo-cubic lattice
   parameter ``a`` is the median length of the lattice steps that join equivalent
   columns in that projection (A–A or B–B), so an alternating shift of the other
   sublattice does not lengthen it. Only the two projections in
   which the pure-anion columns are seen (``perovskite-001``, ``perovskite-101``) allow
   halide labels.

The ABO3 projections are the sanity mode. A HAADF image of SrTiO3 shows the A and B
columns but not the O columns: along [001] a checkerboard of side a/√2, along [110]
a rectangle a/2 × a/√2 whose classes alternate along the short side. An image whose
pseudo-cubic ``a`` lies outside the lead-halide range :data:`HALIDE_A_RANGE` gets no
halide labels either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from halex.errors import AnalysisError

__all__ = ["ProjectedCell", "column_basis", "projected_cell", "PROJECTIONS", "HALIDE_A_RANGE"]

#: projection name -> (description, zone in halex's convention or None, a in units of |b1|,
#: for reference: the measured a comes from the equivalent-site steps, module docstring)
PROJECTIONS: dict[str, tuple[str, str | None, float]] = {
    "perovskite-001": ("perovskite [001] with the pure-anion columns: square half lattice a/2 (B+X, A, X, X)",
                       "001", 2.0),
    "perovskite-101": ("perovskite [101] (≡ ABO3 [110]) with the pure-anion columns: a/(2√2) × a/2 rectangle, "
                       "one parity class empty", "101", 2.0 * np.sqrt(2.0)),
    "abo3-001": ("[001] projection with the anion columns not visible: checkerboard of A and B columns of side a/√2",
                 None, np.sqrt(2.0)),
    "abo3-110": ("[110]/[101] projection with the anion columns not visible: a/2 × a/√2 rectangle of A+X and B "
                 "columns alternating along the short side", None, 2.0),
    "one-class": ("a lattice of columns of one brightness class: which sites are seen cannot be told", None, np.nan),
    "unrecognised": ("no perovskite projection matches the column lattice and its brightness classes", None, np.nan),
}

#: pseudo-cubic lattice parameters (Å) of lead-halide perovskites, with margin for strain
#: and calibration: CsPbCl3 5.61, CsPbBr3 5.87, CsPbI3 6.29 Å (SPEC §2 phases); outside this
#: range the image is not read as a lead-halide perovskite and no halide labels are given
HALIDE_A_RANGE = (5.2, 6.8)


@dataclass(frozen=True)
class ProjectedCell:
    """The projected cell found by :func:`projected_cell` (lengths in Å)."""

    b1: np.ndarray
    b2: np.ndarray
    projection: str
    zone: str | None
    a_A: float
    a_sem_A: float
    a_sd_A: float
    ij: np.ndarray
    indexed: np.ndarray
    parity_class: np.ndarray
    class_counts: list[int]
    class_volume: list[float]
    class_sem: list[float]
    same: list[list[bool]]
    halide_columns_visible: bool
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready summary."""
        return {"projection": self.projection, "description": PROJECTIONS[self.projection][0], "zone": self.zone,
                "column_basis_A": [float(np.linalg.norm(self.b1)), float(np.linalg.norm(self.b2))],
                "basis_angle_deg": float(np.degrees(np.arccos(abs(self.b1 @ self.b2) / (np.linalg.norm(self.b1)
                                                                                     * np.linalg.norm(self.b2))))),
                "a_A": self.a_A, "a_sem_A": self.a_sem_A, "a_sd_A": self.a_sd_A,
                "n_indexed": int(self.indexed.sum()), "class_counts": self.class_counts,
                "class_volume": self.class_volume, "class_sem": self.class_sem,
                "halide_columns_visible": self.halide_columns_visible, "notes": list(self.notes)}


def column_basis(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reduced basis ``(b1, b2)`` of the column lattice from nearest-neighbour vector clusters.

    Parameters
    ----------
    xy
        Column positions, shape (n, 2), any length unit.

    Returns
    -------
    tuple of numpy.ndarray
        ``b1`` (the shorter, x ≥ 0) and ``b2`` (y ≥ 0), both in the units of ``xy``.
    """
    from scipy.spatial import cKDTree

    xy = np.asarray(xy, float)
    if len(xy) < 9:
        raise AnalysisError(f"only {len(xy)} columns: too few to find a lattice (need ≥ 9)")
    d, nb = cKDTree(xy).query(xy, k=min(7, len(xy)))
    d0 = float(np.median(d[:, 1]))
    v = (xy[nb[:, 1:]] - xy[:, None, :]).reshape(-1, 2)
    v = v[np.linalg.norm(v, axis=1) < 2.2 * d0]
    v = np.where(((v[:, 0] < -1e-9) | ((np.abs(v[:, 0]) <= 1e-9) & (v[:, 1] < 0)))[:, None], -v, v)  # fold
    tree = cKDTree(v)
    counts = tree.query_ball_point(v, 0.25 * d0, return_length=True)
    free = np.ones(len(v), bool)
    centres, pops = [], []
    for k in np.argsort(-counts):
        if counts[k] < 0.2 * len(xy):
            break  # no later ball can be larger than its full count
        if not free[k]:
            continue
        ball = [j for j in tree.query_ball_point(v[k], 0.25 * d0) if free[j]]
        free[ball] = False
        if len(ball) < 0.2 * len(xy):
            continue
        c = v[ball].mean(0)
        for _ in range(3):  # mean shift in a tighter window: off-lattice vectors do not pull it
            near = v[tree.query_ball_point(c, 0.1 * d0)]
            c = near.mean(0) if len(near) else c
        centres.append(c)
        pops.append(len(ball))
    if len(centres) < 2:
        raise AnalysisError("the columns form no two-dimensional lattice (fewer than two populated neighbour "
                            "directions); is this an atomic-resolution image along a zone axis?")
    # the majority lattice, not a denser minority phase, sets the basis: of the directions at
    # least 0.35 × as populated as the most populated one, the smallest cell that spans them all
    strong = [c for c, n in zip(centres, pops) if n >= 0.35 * pops[0]]
    while len(strong) >= 2:
        best = _spanning_pair(strong, 0.2 * d0)
        if best is not None:
            break
        strong = strong[:-1]  # the least populated direction is not on the lattice: drop it
    if len(strong) < 2 or best is None:
        raise AnalysisError("the columns' neighbour directions do not form one two-dimensional lattice; is this an "
                            "atomic-resolution image along a zone axis?")
    return _reduce(best[1], best[2])


def _spanning_pair(vectors: list[np.ndarray], tol: float) -> tuple[float, np.ndarray, np.ndarray] | None:
    """``(area, p, q)`` of the non-collinear pair with the smallest cell that gives every vector
    as an integer combination within ``tol``, or None."""
    best = None
    V = np.array(vectors).T
    for i, p in enumerate(vectors):
        for q in vectors[i + 1:]:
            area = abs(p[0] * q[1] - p[1] * q[0])
            if area < 0.5 * np.linalg.norm(p) * np.linalg.norm(q):
                continue
            B = np.column_stack([p, q])
            resid = np.linalg.norm(B @ np.rint(np.linalg.solve(B, V)) - V, axis=0)
            if resid.max() < tol and (best is None or area < best[0] - 1e-9):
                best = (area, p, q)
    return best


def _reduce(b1: np.ndarray, b2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss (Lagrange) reduction of a 2D basis, then ``b1`` with x ≥ 0 and ``b2`` with y ≥ 0."""
    for _ in range(50):
        if np.linalg.norm(b2) < np.linalg.norm(b1):
            b1, b2 = b2, b1
        m = np.rint((b1 @ b2) / (b1 @ b1))
        if m == 0:
            break
        b2 = b2 - m * b1
    b1 = -b1 if b1[0] < 0 or (b1[0] == 0 and b1[1] < 0) else b1
    b2 = -b2 if b2[1] < 0 or (b2[1] == 0 and b2[0] < 0) else b2
    return b1, b2


def _classes(xy: np.ndarray, ij: np.ndarray, ok: np.ndarray, volume: np.ndarray,
             radius: float) -> tuple[np.ndarray, list, list, list, list]:
    """Parity class of every indexed column, the classes' counts, median brightness, its
    standard error, and the pairwise "same brightness" matrix (module docstring).

    Classes are compared locally: each column of class p against the median of the class-q
    columns within ``radius``, so a thickness or background gradient across the particle
    does not hide (or fake) a difference between sublattices.
    """
    from scipy.spatial import cKDTree

    from halex.stem.fit import ragged_median, robust_sd

    cls = np.full(len(ij), -1)
    cls[ok] = 2 * np.mod(ij[ok, 0], 2) + np.mod(ij[ok, 1], 2)
    feats = volume.reshape(len(ij), -1)
    counts = [int((cls == c).sum()) for c in range(4)]
    med = np.full((4, feats.shape[1]), np.nan)
    sem = np.full_like(med, np.nan)
    for c in range(4):
        v = feats[cls == c]
        if len(v):
            med[c] = np.median(v, axis=0)
        if len(v) > 1:
            sem[c] = 1.2533 * robust_sd(v, axis=0) / np.sqrt(len(v))
    same = [[True] * 4 for _ in range(4)]
    trees = {c: cKDTree(xy[cls == c]) for c in range(4) if counts[c]}
    for p in range(4):
        for q in range(p + 1, 4):
            if not (counts[p] and counts[q]):
                continue
            fq = feats[cls == q]
            near = trees[q].query_ball_point(xy[cls == p], radius)
            has = np.array([len(nb) > 0 for nb in near], bool)
            d = feats[cls == p][has] - ragged_median(fq, [nb for nb in near if nb])
            if len(d) < 3:
                continue
            m = np.median(d, axis=0)
            se = 1.2533 * robust_sd(d, axis=0) / np.sqrt(len(d))
            differ = (np.abs(m) > 4.0 * se) & (np.abs(m) > 0.05 * np.maximum(np.abs(med[p]), np.abs(med[q])))
            same[p][q] = same[q][p] = not bool(differ.any())
    return cls, counts, med[:, 0].tolist(), sem[:, 0].tolist(), same


def _projection(b1: np.ndarray, b2: np.ndarray, counts: list[int], same: list[list[bool]]) -> str:
    """Name of the projection (:data:`PROJECTIONS`) that the geometry and class pattern select."""
    ratio = np.linalg.norm(b2) / np.linalg.norm(b1)
    gamma = np.degrees(np.arccos(abs(b1 @ b2) / (np.linalg.norm(b1) * np.linalg.norm(b2))))
    rect = abs(gamma - 90.0) < 8.0
    empty = [c for c in range(4) if counts[c] < 0.25 * max(counts)]
    full = [c for c in range(4) if c not in empty]
    if all(same[p][q] for p in full for q in full):
        return "one-class" if not empty else "unrecognised"
    if rect and abs(ratio - 1.0) < 0.1 and not empty:
        # the two diagonal pairs of the 2 × 2 pattern, {0, 3} and {1, 2} (which pair is which
        # depends on where the walk started): a checkerboard has both pairs uniform; CsPbX3
        # [001] has one pair B+X against A, which differ, and the pure-X pair
        if same[0][3] and same[1][2]:
            return "abo3-001"
        return "perovskite-001"
    if rect and abs(ratio / np.sqrt(2.0) - 1.0) < 0.1:
        if len(empty) == 1:
            return "perovskite-101"
        if not empty and same[0][1] and same[2][3] and not same[0][2]:
            return "abo3-110"
    return "unrecognised"


def _spacings(xy: np.ndarray, ij: np.ndarray, ok: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Lengths of the steps along ``b`` ((1, 0) for b1, (0, 1) for b2) between indexed neighbours."""
    from halex.stem.lattice import _pairs

    a, c = _pairs(ij, ok, (int(b[0]), int(b[1])))
    return np.linalg.norm(xy[c] - xy[a], axis=1) if len(a) else np.zeros(0)


def projected_cell(xy: np.ndarray, volume: np.ndarray, *, tol: float = 0.25) -> ProjectedCell:
    """Find the projected cell of an image from its columns (module docstring).

    Parameters
    ----------
    xy
        Column positions in Å, shape (n, 2) (image x right, y down).
    volume
        Brightness of every column (bright columns large; invert dark-contrast images
        first): the integrated intensity, shape (n,), or several measures, shape (n, k),
        e.g. volume and peak height; two classes differ if any measure differs.
    tol
        A neighbour step matches a basis vector if its residual is below ``tol`` × |b1|.

    Returns
    -------
    ProjectedCell
        The column basis, the projection, the pseudo-cubic ``a`` with its standard error
        and spread (from the local spacings), the class statistics and plain-language notes.

    Raises
    ------
    AnalysisError
        Too few columns, or no lattice among them.
    """
    from halex.stem.lattice import _grow, _lattice_edges, _walk

    xy = np.asarray(xy, float)
    volume = np.asarray(volume, float)
    b1, b2 = column_basis(xy)
    edges = _lattice_edges(xy, b1, b2, tol)
    degree = np.array([len(e) for e in edges])
    ij, ok = _walk(edges, degree >= 2, degree)
    _grow(ij, ok, edges)
    if ok.sum() < 9:
        raise AnalysisError("the column lattice could not be followed over more than a few columns")
    cls, counts, med, sem, same = _classes(xy, ij, ok, volume, 2.2 * float(np.linalg.norm(b2)))
    proj = _projection(b1, b2, counts, same)
    desc, zone, factor = PROJECTIONS[proj]
    notes = []
    # a from lattice steps that join equivalent sites (A–A or B–B), so that an alternating
    # displacement of the other sublattice (a zigzag) cannot lengthen it
    steps = {"perovskite-001": [(2, 0), (0, 2)], "perovskite-101": [(0, 2)], "abo3-001": [(1, 1), (1, -1)],
             "abo3-110": [(2, 0)]}.get(proj, [])
    s = np.concatenate([_spacings(xy, ij, ok, np.array(st)) for st in steps]) if steps else np.zeros(0)
    if len(s) > 1:
        a, sd = float(np.median(s)), float(1.4826 * np.median(np.abs(s - np.median(s))))
        sem_a = 1.2533 * sd / np.sqrt(len(s))
    else:
        a = sd = sem_a = float("nan")
        notes.append(f"{desc}: the column lattice is {np.linalg.norm(b1):.3f} × {np.linalg.norm(b2):.3f} Å; "
                     "no pseudo-cubic lattice parameter is assigned")
    visible = proj in ("perovskite-001", "perovskite-101")
    if not visible:
        notes.append("the pure-anion (halide) column class of a CsPbX3 projection is absent: no halide labels; "
                     "only the lattice of the visible columns is measured")
    elif np.isfinite(a) and not HALIDE_A_RANGE[0] <= a <= HALIDE_A_RANGE[1]:
        visible = False
        notes.append(f"pseudo-cubic a = {a:.3f} Å lies outside the lead-halide perovskite range "
                     f"{HALIDE_A_RANGE[0]}–{HALIDE_A_RANGE[1]} Å (CsPbCl3 5.61, CsPbI3 6.29 Å): read as another "
                     "perovskite, no halide labels")
    return ProjectedCell(b1, b2, proj, zone, a, sem_a, sd, ij, ok, cls, counts, med, sem, same, visible, notes)
