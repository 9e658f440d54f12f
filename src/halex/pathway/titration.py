"""Titration curves: the particle's Cl fraction and per-layer I fraction against Δμ.

A forward sweep starts from the pristine particle (all Cl) and raises Δμ step by step, each
step starting from the last arrangement; a backward sweep starts from the fully exchanged
particle and lowers it. Where the two disagree the particle has a two-phase (hysteresis)
region: a first-order jump of the kind a miscibility gap produces. :func:`two_phase_regions`
reports its position and width.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from halex.errors import InputError
from halex.pathway.lattice import HalideLattice
from halex.pathway.mc import sgc
from halex.pathway.model import LatticeModel

__all__ = ["titration", "two_phase_regions", "layer_groups"]


def layer_groups(lattice: HalideLattice) -> list[tuple[str, np.ndarray]]:
    """Site masks per layer.

    Parameters
    ----------
    lattice
        The halide lattice.

    Returns
    -------
    list of (str, ndarray)
        (``"domain layer"``, site mask), chalcohalide first, then perovskite from the interface.
    """
    keys = sorted({(d, int(l)) for d, l in zip(lattice.domain, lattice.layer)}, key=lambda k: (k[0] != "chalcohalide", k[1]))
    return [(f"{d} {l}", (lattice.domain == d) & (lattice.layer == l)) for d, l in keys]


def _sweep(lattice: HalideLattice, h, J, dmus, start: int, temperature: float, sweeps: int, equilibrate: int, seed: int):
    occ = np.full(lattice.n_sites, start, np.int8)
    groups = layer_groups(lattice)
    x, per = [], []
    for k, dmu in enumerate(dmus):
        sgc(occ, h, lattice.indptr, lattice.neighbours, J, dmu=float(dmu), temperature=temperature, sweeps=equilibrate,
            seed=seed + 2 * k, sample_every_sweep=False)
        r = sgc(occ, h, lattice.indptr, lattice.neighbours, J, dmu=float(dmu), temperature=temperature, sweeps=sweeps,
                seed=seed + 2 * k + 1)
        x.append(1.0 - float(r["mean_occ"].mean()))
        per.append([float(r["mean_occ"][m].mean()) for _, m in groups])
    return np.array(x), np.array(per)


def titration(lattice: HalideLattice, model: LatticeModel, dmus: Sequence[float], *, temperature: float,
              sweeps: int = 200, equilibrate: int = 100, seed: int = 0) -> dict[str, Any]:
    """Forward and backward semi-grand-canonical sweeps over ``dmus``.

    Parameters
    ----------
    lattice, model
        The halide lattice and its fitted energies.
    dmus
        Increasing Δμ values (eV).
    temperature
        K.
    sweeps, equilibrate
        Sampled and discarded sweeps per Δμ.
    seed
        Random seed.

    Returns
    -------
    dict
        ``dmu_eV``, ``x_cl_forward``, ``x_cl_backward``, ``layers`` (labels) and
        ``i_fraction_forward`` / ``_backward`` (n_Δμ × n_layers).

    Raises
    ------
    InputError
        Fewer than two Δμ values, or not increasing.
    """
    d = np.asarray(dmus, float)
    if d.size < 2 or not np.all(np.diff(d) > 0):
        raise InputError(f"the Δμ range must hold at least two increasing values, got {list(dmus)[:5]}")
    h, J = model.fields(lattice)
    xf, pf = _sweep(lattice, h, J, d, 0, temperature, sweeps, equilibrate, seed)
    xb, pb = _sweep(lattice, h, J, d[::-1], 1, temperature, sweeps, equilibrate, seed + 10**6)
    return {"dmu_eV": d.tolist(), "temperature_K": temperature, "x_cl_forward": xf.tolist(), "x_cl_backward": xb[::-1].tolist(),
            "layers": [g for g, _ in layer_groups(lattice)], "i_fraction_forward": pf.tolist(),
            "i_fraction_backward": pb[::-1].tolist()}


def two_phase_regions(dmu: Sequence[float], x_forward: Sequence[float], x_backward: Sequence[float], *,
                      threshold: float = 0.05) -> list[dict[str, float]]:
    """Δμ intervals where the forward and backward sweeps differ by more than ``threshold`` in X_Cl.

    Parameters
    ----------
    dmu
        Δμ grid (eV).
    x_forward, x_backward
        X_Cl of the two sweeps on that grid.
    threshold
        Smallest difference that counts.

    Returns
    -------
    list of dict
        ``dmu_low_eV``, ``dmu_high_eV``, ``width_eV``, ``jump_x_cl`` per region.

    Examples
    --------
    >>> two_phase_regions([0, 1, 2, 3], [1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0])
    [{'dmu_low_eV': 1.0, 'dmu_high_eV': 1.0, 'width_eV': 0.0, 'jump_x_cl': 1.0}]
    """
    d, f, b = (np.asarray(v, float) for v in (dmu, x_forward, x_backward))
    open_ = np.abs(f - b) > threshold
    out, k = [], 0
    while k < d.size:
        if open_[k]:
            j = k
            while j + 1 < d.size and open_[j + 1]:
                j += 1
            out.append({"dmu_low_eV": float(d[k]), "dmu_high_eV": float(d[j]), "width_eV": float(d[j] - d[k]),
                        "jump_x_cl": float(np.max(np.abs(f[k:j + 1] - b[k:j + 1])))})
            k = j + 1
        else:
            k += 1
    return out
