"""``halex pathway``: fit, titrate and judge one particle (and, optionally, its free nanocrystal).

For each particle: build the halide lattice, fit the lattice model by active learning on
relaxed energies (:mod:`halex.pathway.train`), titrate it (forward and backward
semi-grand-canonical sweeps over Δμ; canonical runs at fixed iodide supplied), and answer in
words:

* **which layers convert first**: the layers ordered by the Δμ at which their I fraction
  first reaches 1/2 in the forward sweep (a layer that never does is listed as not converted);
* **a segmented state**: is there a Δμ of the forward sweep at which one perovskite layer is
  ≥ 80 % I while another is ≤ 20 % I (a CsPbI3–CsPbCl3 segment on the chalcohalide)?
* **a jump**: a Δμ interval where the forward and backward X_Cl differ by more than 0.05
  (a two-phase region), with its position and width.

Nothing is tuned to an expected answer; the thresholds are those stated here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from halex.errors import InputError
from halex.pathway.lattice import HalideLattice, halide_lattice
from halex.pathway.mc import anneal, canonical
from halex.pathway.model import LatticeModel
from halex.pathway.titration import layer_groups, titration, two_phase_regions

__all__ = ["conversion_order", "segmented_state", "canonical_titration", "fit_particle", "titrate_particle",
           "default_dmu_grid", "snapshots", "DEFAULT_TEMPERATURE_K", "SEGMENT_HIGH", "SEGMENT_LOW"]

log = logging.getLogger("halex.pathway")

#: Post-synthetic halide exchange of these nanocrystals runs near room temperature; set
#: ``--temperature`` for another protocol.
DEFAULT_TEMPERATURE_K = 298.15
SEGMENT_HIGH, SEGMENT_LOW = 0.8, 0.2


def conversion_order(t: dict[str, Any]) -> list[dict[str, Any]]:
    """Layers by the Δμ at which their forward-sweep I fraction first reaches 1/2 (linear interpolation).

    Examples
    --------
    >>> t = {"dmu_eV": [0.0, 1.0], "layers": ["a", "b"], "i_fraction_forward": [[0.0, 0.0], [1.0, 0.4]]}
    >>> conversion_order(t)
    [{'layer': 'a', 'half_converted_at_dmu_eV': 0.5}, {'layer': 'b', 'half_converted_at_dmu_eV': None}]
    """
    d = np.asarray(t["dmu_eV"], float)
    f = np.asarray(t["i_fraction_forward"], float)
    out = []
    for k, name in enumerate(t["layers"]):
        col = f[:, k]
        hit = np.flatnonzero(col >= 0.5)
        if hit.size == 0:
            at = None
        elif hit[0] == 0:
            at = float(d[0])
        else:
            i = hit[0]
            at = float(d[i - 1] + (0.5 - col[i - 1]) * (d[i] - d[i - 1]) / (col[i] - col[i - 1]))
        out.append({"layer": name, "half_converted_at_dmu_eV": at})
    return sorted(out, key=lambda r: (r["half_converted_at_dmu_eV"] is None, r["half_converted_at_dmu_eV"] or 0.0))


def segmented_state(t: dict[str, Any]) -> dict[str, Any] | None:
    """The first Δμ of the forward sweep with a perovskite layer ≥ 80 % I and another ≤ 20 % I, or None."""
    f = np.asarray(t["i_fraction_forward"], float)
    pv = [k for k, name in enumerate(t["layers"]) if name.startswith("perovskite")]
    for i, dmu in enumerate(t["dmu_eV"]):
        hi = [t["layers"][k] for k in pv if f[i, k] >= SEGMENT_HIGH]
        lo = [t["layers"][k] for k in pv if f[i, k] <= SEGMENT_LOW]
        if hi and lo:
            return {"dmu_eV": float(dmu), "iodide_layers": hi, "chloride_layers": lo}
    return None


def canonical_titration(lattice: HalideLattice, model: LatticeModel, fractions: np.ndarray, *, temperature: float,
                        sweeps: int = 100, seed: int = 0) -> dict[str, Any]:
    """Per-layer I fraction against iodide supplied (fixed n_I, annealed, then sampled)."""
    h, J = model.fields(lattice)
    groups = layer_groups(lattice)
    rows = []
    for k, x in enumerate(fractions):
        n = int(round(float(x) * lattice.n_sites))
        occ = np.zeros(lattice.n_sites, np.int8)
        occ[np.random.default_rng(seed + k).choice(lattice.n_sites, n, replace=False)] = 1
        anneal(occ, h, lattice.indptr, lattice.neighbours, J, t_start=max(2000.0, 4 * temperature),
               t_end=temperature, steps=10, sweeps=20, seed=seed + 100 * k)
        r = canonical(occ, h, lattice.indptr, lattice.neighbours, J, temperature=temperature, sweeps=sweeps, seed=seed + k)
        rows.append([float(r["mean_occ"][m].mean()) for _, m in groups])
    return {"iodide_supplied_fraction": [float(x) for x in fractions], "layers": [g for g, _ in groups],
            "i_fraction": rows}


def fit_particle(atoms: Atoms, name: str, engine, store_url: str, *, temperature: float, fmax: float, rounds: int,
                 per_round: int, chalcohalide_layers: int = 1, n_shells: int = 2, steps: int = 1000,
                 client=None, n_random: int | None = None) -> dict[str, Any]:
    """The particle's halide lattice and its lattice model, fitted by active learning on relaxed energies."""
    from halex.pathway.train import active_learning

    if not temperature > 0:
        raise InputError(f"--temperature must be > 0 K, got {temperature}")
    lattice = halide_lattice(atoms, chalcohalide_layers=chalcohalide_layers, n_shells=n_shells)
    log.info("[pathway] %s: %d halide sites, %d site kinds, %d pair shells", name, lattice.n_sites, len(lattice.kinds),
             len(lattice.shells))
    model, history = active_learning(lattice, engine, store_url, fmax=fmax, temperature=temperature, rounds=rounds,
                                     per_round=per_round, steps=steps, client=client, n_random=n_random)
    return {"name": name, "lattice": lattice, "model": model, "history": history}


def default_dmu_grid(models: list[LatticeModel], n: int = 41, margin: float = 0.3) -> np.ndarray:
    """Δμ from the lowest fitted site energy − ``margin`` to the highest + ``margin`` (eV)."""
    h = np.concatenate([np.asarray(m.site_energy, float) for m in models])
    return np.linspace(float(h.min()) - margin, float(h.max()) + margin, n)


def titrate_particle(fit: dict[str, Any], dmus, *, temperature: float, sweeps: int = 200,
                     refits: int = 0) -> dict[str, Any]:
    """Add the titration curves (Δμ and iodide supplied) and the verdicts to a fitted particle;
    with ``refits`` ≥ 2, also each verdict counted over that many bootstrap refits of the model
    (``verdicts["uncertainty"]``, :func:`halex.pathway.uncertainty.verdict_uncertainty`)."""
    from halex.pathway.uncertainty import verdict_uncertainty

    lattice, model = fit["lattice"], fit["model"]
    t = titration(lattice, model, dmus, temperature=temperature, sweeps=sweeps, equilibrate=max(sweeps // 2, 1))
    can = canonical_titration(lattice, model, np.linspace(0, 1, 11), temperature=temperature)
    verdicts = {"conversion_order": conversion_order(t), "segmented_state": segmented_state(t),
                "two_phase_regions": two_phase_regions(t["dmu_eV"], t["x_cl_forward"], t["x_cl_backward"])}
    verdicts["uncertainty"] = (verdict_uncertainty(fit, verdicts, dmus, temperature=temperature, sweeps=sweeps,
                                                   refits=refits) if refits >= 2 else None)
    return {**fit, "titration": t, "canonical": can, "verdicts": verdicts}


def _dmu_snapshot(lattice: HalideLattice, model: LatticeModel, dmu: float, temperature: float) -> Atoms:
    from halex.pathway.mc import sgc

    h, J = model.fields(lattice)
    occ = np.zeros(lattice.n_sites, np.int8)
    sgc(occ, h, lattice.indptr, lattice.neighbours, J, dmu=dmu, temperature=temperature, sweeps=200, sample_every_sweep=False)
    atoms = lattice.decorate(occ)
    atoms.info["pathway_dmu_eV"] = dmu
    return atoms


def snapshots(result: dict[str, Any], out: Path, temperature: float) -> list[Path]:
    """extxyz snapshots (per-atom arrays kept) where the forward X_Cl passes 0.75, 0.5 and 0.25."""
    from halex.io import write_structure

    t = result["titration"]
    d, x = np.asarray(t["dmu_eV"]), np.asarray(t["x_cl_forward"])
    paths = []
    for target in (0.75, 0.5, 0.25):
        i = int(np.argmin(np.abs(x - target)))
        atoms = _dmu_snapshot(result["lattice"], result["model"], float(d[i]), temperature)
        paths.append(write_structure(out / f"{result['name']}_xcl{int(100 * target)}.extxyz", atoms))
    return paths
