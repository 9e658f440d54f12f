"""Cl→I exchange operations (SPEC §3): exact, seeded, composable, inputs never modified.

Every operation returns a new :class:`~ase.Atoms` in which the chosen halide sites
carry the new element; positions are unchanged (relax afterwards). Each appends an
entry to ``atoms.info["exchange_log"]`` (a JSON list, so it survives extxyz files and
the result store) with the operation, its parameters, the count ``x`` of exchanged
halides and their indices, which is what the exchange energy of SPEC §4 divides by.

Sites are chosen from the per-atom arrays (``domain``, ``layer``, ``role``) and, for the
plane patterns, from the geometry: each perovskite halide's Pb–X bond axis is the
Cartesian axis of the vector to its nearest Pb (robust to octahedral tilts), and
planes are groups of halides whose coordinate along the plane normal agrees within
a quarter of the Pb–Pb spacing.

Operations
----------
1. :func:`exchange_layers` — all halides of the first N perovskite layers counted from
   the interface (layers 1..N) or from the bottom (the N highest layers).
2. :func:`exchange_interface_monolayer` — the interfacial CsX monolayer (layer 0).
3. :func:`exchange_chalcohalide_layers` — a fraction f of the halides in the first k
   chalcohalide layers (layers −1..−k), chosen at random with a seed.
4. :func:`alloy_perovskite` — a fraction of the perovskite's remaining source halide,
   distributed ``random``, as ``csi-perpendicular`` / ``csi-parallel`` planes (CsX
   planes ⊥ / ∥ to the interface) or ``pbi2-perpendicular`` planes (PbX2 planes ⊥).
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import numpy as np
from ase import Atoms

from halex.arrays import HALEX_ARRAYS
from halex.checks import check_fraction
from halex.errors import InputError

__all__ = [
    "exchange_layers",
    "exchange_interface_monolayer",
    "exchange_chalcohalide_layers",
    "alloy_perovskite",
    "chalcohalide_exchange_series",
    "exchange_log",
    "ALLOY_PATTERNS",
]

log = logging.getLogger("halex.exchange")

HALIDES = ("Cl", "Br", "I")
ALLOY_PATTERNS = ("random", "csi-perpendicular", "csi-parallel", "pbi2-perpendicular")


def exchange_log(atoms: Atoms) -> list[dict[str, Any]]:
    """The list of exchange operations applied to ``atoms`` (oldest first)."""
    raw = atoms.info.get("exchange_log", "[]")
    return json.loads(raw) if isinstance(raw, str) else list(raw)


def _check_model(atoms: Atoms) -> None:
    missing = [name for name in HALEX_ARRAYS if name not in atoms.arrays]
    if missing:
        raise InputError(
            f"the model lacks the per-atom array(s) {', '.join(missing)}: build it with halex "
            "(halex build ...) or add domain/layer/role arrays"
        )


def _check_halides(source: str, target: str) -> None:
    for h in (source, target):
        if h not in HALIDES:
            raise InputError(f"unknown halide {h!r}: choose one of {', '.join(HALIDES)}")
    if source == target:
        raise InputError(f"source and target halide are both {source!r}")


def _apply(atoms: Atoms, indices: np.ndarray, target: str, entry: dict[str, Any]) -> Atoms:
    out = atoms.copy()
    out.calc = None
    indices = np.sort(np.asarray(indices, dtype=int))
    symbols = np.array(out.get_chemical_symbols(), dtype=object)
    symbols[indices] = target
    out.set_chemical_symbols(list(symbols))
    history = exchange_log(atoms)
    history.append({**entry, "target": target, "count": int(len(indices)), "indices": indices.tolist()})
    out.info["exchange_log"] = json.dumps(history)
    log.debug("%s: %d halide(s) -> %s", entry["operation"], len(indices), target)
    return out


def _perovskite_halides(atoms: Atoms, source: str) -> np.ndarray:
    return (atoms.arrays["domain"] == "perovskite") & (np.array(atoms.get_chemical_symbols()) == source)


def exchange_layers(atoms: Atoms, n_layers: int, *, start: str = "interface", source: str = "Cl", target: str = "I") -> Atoms:
    """Exchange every ``source`` halide of ``n_layers`` perovskite layers.

    Parameters
    ----------
    atoms
        Model with ``domain``/``layer``/``role`` arrays.
    n_layers
        Number of perovskite layers (1 ≤ N ≤ number of layers).
    start
        ``"interface"``: layers 1..N; ``"bottom"``: the N layers farthest from the
        interface. The interfacial monolayer (layer 0) is never included: see
        :func:`exchange_interface_monolayer`.
    """
    _check_model(atoms)
    _check_halides(source, target)
    if start not in ("interface", "bottom"):
        raise InputError(f"start must be 'interface' or 'bottom', got {start!r}")
    layers = atoms.arrays["layer"]
    pero = atoms.arrays["domain"] == "perovskite"
    available = np.unique(layers[pero & (layers >= 1)])
    if len(available) == 0:
        raise InputError("the model has no perovskite layers (layer >= 1)")
    if not isinstance(n_layers, (int, np.integer)) or not 1 <= n_layers <= len(available):
        raise InputError(f"n_layers must be an integer in [1, {len(available)}] (the model's perovskite layers), got {n_layers!r}")
    chosen = available[:n_layers] if start == "interface" else available[-n_layers:]
    sel = np.flatnonzero(_perovskite_halides(atoms, source) & np.isin(layers, chosen))
    if len(sel) == 0:
        raise InputError(f"no {source} left in perovskite layers {chosen.tolist()}: nothing to exchange")
    entry = {"operation": "layers", "n_layers": int(n_layers), "start": start, "layers": chosen.tolist(), "source": source}
    return _apply(atoms, sel, target, entry)


def exchange_interface_monolayer(atoms: Atoms, *, source: str = "Cl", target: str = "I") -> Atoms:
    """Exchange the halides of the interfacial CsX monolayer (perovskite layer 0): CsCl → CsI."""
    _check_model(atoms)
    _check_halides(source, target)
    sel = np.flatnonzero(_perovskite_halides(atoms, source) & (atoms.arrays["layer"] == 0))
    if len(sel) == 0:
        raise InputError(f"no {source} in the interfacial monolayer (perovskite layer 0): nothing to exchange")
    return _apply(atoms, sel, target, {"operation": "interface-monolayer", "source": source})


def _count_for(fraction: float, n_sites: int, *, exact: bool, what: str) -> int:
    want = fraction * n_sites
    count = int(np.floor(want + 0.5))
    if abs(want - count) > 1e-9:
        msg = f"{fraction:g} of {n_sites} {what} is {want:.3f} sites, not a whole number"
        if exact:
            raise InputError(msg + ": choose a fraction that is a multiple of 1/" + str(n_sites) + " or allow rounding")
        _warn_once(f"{msg}: rounded to {count} ({count / n_sites:.4f})")
    return count


@functools.lru_cache(maxsize=256)
def _warn_once(message: str) -> None:
    """Log ``message`` as a warning the first time this process meets it: a study builds the
    same fraction of the same model for every seed and replica, and said so 17 times a run."""
    log.warning(message)


def _chalcohalide_sites(atoms: Atoms, n_layers: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(chosen layers −1..−k, indices of their ``source`` halides); InputError if there are none."""
    layers = atoms.arrays["layer"]
    chal = atoms.arrays["domain"] == "chalcohalide"
    available = np.unique(layers[chal & (layers <= -1)])[::-1]  # -1, -2, ...
    if len(available) == 0:
        raise InputError("the model has no chalcohalide layers (domain 'chalcohalide', layer <= -1)")
    if not isinstance(n_layers, (int, np.integer)) or not 1 <= n_layers <= len(available):
        raise InputError(f"n_layers must be an integer in [1, {len(available)}] (the model's chalcohalide layers), got {n_layers!r}")
    chosen = available[:n_layers]
    sites = np.flatnonzero(chal & (np.array(atoms.get_chemical_symbols()) == source) & np.isin(layers, chosen))
    if len(sites) == 0:
        raise InputError(f"no {source} left in chalcohalide layers {chosen.tolist()}: nothing to exchange")
    return chosen, sites


def exchange_chalcohalide_layers(
    atoms: Atoms,
    n_layers: int,
    fraction: float,
    *,
    seed: int | None = 0,
    exact: bool = False,
    source: str = "Cl",
    target: str = "I",
) -> Atoms:
    """Exchange a fraction of the ``source`` halides in the first ``n_layers`` chalcohalide layers.

    The sites are drawn uniformly at random (``numpy.random.default_rng(seed)``) from
    the halides of chalcohalide layers −1..−k that are still ``source``. The count is
    ``round(fraction × sites)``; when that is not exact, the rounding is logged and
    recorded (``exact=True`` refuses instead).
    """
    _check_model(atoms)
    _check_halides(source, target)
    fraction = check_fraction(fraction)
    chosen, sites = _chalcohalide_sites(atoms, n_layers, source)
    count = _count_for(fraction, len(sites), exact=exact, what=f"{source} sites")
    if count == 0:
        raise InputError(f"fraction {fraction:g} of {len(sites)} sites exchanges nothing")
    rng = np.random.default_rng(seed)
    sel = rng.choice(sites, size=count, replace=False)
    entry = {"operation": "chalcohalide-layers", "n_layers": int(n_layers), "layers": chosen.tolist(), "fraction": fraction,
             "achieved_fraction": count / len(sites), "sites": int(len(sites)), "seed": seed, "source": source}
    return _apply(atoms, sel, target, entry)


def _perovskite_pb(atoms: Atoms) -> np.ndarray:
    """Indices of the perovskite domain's Pb (all Pb when the model has no domain array)."""
    mask = atoms.numbers == 82
    if "domain" in atoms.arrays:
        mask &= atoms.arrays["domain"] == "perovskite"
    return np.flatnonzero(mask)


def halide_bond_axes(atoms: Atoms, halides: np.ndarray) -> np.ndarray:
    """Cartesian axis (0, 1, 2) of the Pb–X bond of each halide index in ``halides``.

    Only perovskite Pb count, so the interfacial halides of a heterostructure (which
    also bond to chalcohalide Pb) keep their perovskite bond axis.
    """
    pb = _perovskite_pb(atoms)
    if len(pb) == 0:
        raise InputError("the model has no Pb: cannot find Pb–X bond axes")
    d = atoms.positions[halides][:, None, :] - atoms.positions[pb][None, :, :]
    nearest = np.argmin(np.einsum("ijk,ijk->ij", d, d), axis=1)
    vec = d[np.arange(len(halides)), nearest]
    return np.argmax(np.abs(vec), axis=1)


def _planes(coord: np.ndarray, tol: float) -> list[np.ndarray]:
    """Group indices of ``coord`` into planes whose coordinates differ by less than ``tol``."""
    order = np.argsort(coord)
    groups, current = [], [order[0]]
    for a, b in zip(order[:-1], order[1:]):
        if coord[b] - coord[a] > tol:
            groups.append(np.array(current))
            current = []
        current.append(b)
    groups.append(np.array(current))
    return groups


def alloy_perovskite(
    atoms: Atoms,
    fraction: float,
    *,
    pattern: str = "random",
    seed: int | None = 0,
    axis: int = 0,
    source: str = "Cl",
    target: str = "I",
) -> Atoms:
    """Exchange a fraction of the perovskite domain's remaining ``source`` halide.

    Parameters
    ----------
    fraction
        Fraction of the perovskite's ``source`` halides to exchange, in [0, 1].
    pattern
        ``"random"``: exactly ``round(fraction × N)`` sites drawn uniformly.
        ``"csi-perpendicular"``: whole CsX planes normal to in-plane ``axis`` (they hold
        the halides bonded along ``axis``). ``"csi-parallel"``: whole CsX planes normal to
        z (the axial halides). ``"pbi2-perpendicular"``: whole PbX2 planes normal to
        ``axis`` (the halides bonded along the two other axes in a Pb plane).
        For plane patterns the number of planes is chosen so that the exchanged count
        is the closest achievable to ``fraction × N`` and the planes are drawn at random
        with ``seed``; the achieved fraction is recorded.
    axis
        In-plane axis (0 = x, 1 = y) normal to the perpendicular planes.
    """
    _check_model(atoms)
    _check_halides(source, target)
    fraction = check_fraction(fraction)
    if pattern not in ALLOY_PATTERNS:
        raise InputError(f"unknown pattern {pattern!r}: choose one of {', '.join(ALLOY_PATTERNS)}")
    if axis not in (0, 1):
        raise InputError(f"axis must be 0 (x) or 1 (y), got {axis!r}")
    sites = np.flatnonzero(_perovskite_halides(atoms, source))
    if len(sites) == 0:
        raise InputError(f"no {source} left in the perovskite domain: nothing to alloy")
    target_count = fraction * len(sites)
    rng = np.random.default_rng(seed)
    entry: dict[str, Any] = {"operation": "alloy", "pattern": pattern, "fraction": fraction, "sites": int(len(sites)),
                             "seed": seed, "source": source}
    if pattern == "random":
        count = _count_for(fraction, len(sites), exact=False, what=f"perovskite {source} sites")
        if count == 0:
            raise InputError(f"fraction {fraction:g} of {len(sites)} sites exchanges nothing")
        sel = rng.choice(sites, size=count, replace=False)
    else:
        all_x = np.flatnonzero((atoms.arrays["domain"] == "perovskite") & np.isin(atoms.get_chemical_symbols(), HALIDES))
        bond = halide_bond_axes(atoms, all_x)
        pb = atoms.positions[_perovskite_pb(atoms)]
        spacing = float(np.median(np.sort(np.linalg.norm(pb[:, None] - pb[None], axis=2), axis=1)[:, 1])) if len(pb) > 1 else 6.0
        if pattern == "csi-parallel":
            normal, members = 2, bond == 2
        elif pattern == "csi-perpendicular":
            normal, members = axis, bond == axis
        else:  # pbi2-perpendicular: PbX2 planes normal to `axis` hold halides bonded along the other two axes
            normal, members = axis, bond != axis
        cand = all_x[members]
        planes = [p for p in (cand[g] for g in _planes(atoms.positions[cand, normal], spacing / 4)) if np.isin(p, sites).any()]
        if not planes:
            raise InputError(f"no {pattern} planes with {source} left")
        order = rng.permutation(len(planes))
        counts = np.array([np.isin(planes[i], sites).sum() for i in order])
        cumulative = np.concatenate([[0], np.cumsum(counts)])
        k = int(np.argmin(np.abs(cumulative - target_count)))
        if k == 0:
            raise InputError(
                f"fraction {fraction:g} of {len(sites)} sites is less than half of one {pattern} plane "
                f"({counts.min()} sites): nothing to exchange"
            )
        sel = np.concatenate([planes[i][np.isin(planes[i], sites)] for i in order[:k]])
        coords = [float(atoms.positions[planes[i], normal].mean()) for i in order[:k]]
        entry.update(planes=int(k), plane_normal="xyz"[normal], plane_coordinates_A=coords)
    entry["achieved_fraction"] = len(sel) / len(sites)
    return _apply(atoms, sel, target, entry)


def chalcohalide_exchange_series(
    atoms: Atoms,
    n_layers: int,
    fractions: list[float],
    *,
    seed: int | None = 0,
    source: str = "Cl",
    target: str = "I",
) -> list[Atoms]:
    """Nested series of chalcohalide exchanges: one model per fraction, each containing the last.

    The ``source`` halides of chalcohalide layers −1..−k are put in one random order
    (``numpy.random.default_rng(seed).permutation``); the model for fraction f has the
    first ``round(f × sites)`` of them exchanged, so every step adds iodide to the previous
    model (what a titration does). A fraction of 0 returns an unchanged copy. Each model's
    log records the step from the previous one (count x of that step).
    """
    _check_model(atoms)
    _check_halides(source, target)
    fr = [check_fraction(f) for f in fractions]
    if fr != sorted(fr):
        raise InputError(f"fractions must increase, got {fractions}")
    chosen, sites = _chalcohalide_sites(atoms, n_layers, source)
    order = np.random.default_rng(seed).permutation(sites)
    out, previous, done = [], atoms, 0
    for f in fr:
        count = _count_for(f, len(sites), exact=False, what=f"{source} sites")
        if count > done:
            previous = _apply(
                previous,
                order[done:count],
                target,
                {
                    "operation": "chalcohalide-series",
                    "n_layers": int(n_layers),
                    "layers": chosen.tolist(),
                    "fraction": f,
                    "achieved_fraction": count / len(sites),
                    "sites": int(len(sites)),
                    "seed": seed,
                    "source": source,
                },
            )
            done = count
        else:
            previous = previous.copy()
        out.append(previous)
    return out
