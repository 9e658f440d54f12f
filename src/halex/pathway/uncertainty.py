"""How far the pathway's verdicts can be trusted.

The lattice model is refitted on bootstrap resamples of its training set
(:func:`~halex.pathway.model.bootstrap_lattice_models`), every refit is titrated on the same
Δμ grid, and each verdict is counted over the refits:

* the Δμ at which each layer is half converted, with its standard deviation over the refits;
* how often the first layer of the full model converts first, and how often the whole
  order is the same;
* for each pair of layers next to each other in the order: how often the refits keep them in
  that order, and whether the Δμ between them is smaller than the model's cross-validated
  error per halide (then the model's form, not only its fit, may swap them);
* how often a segmented state and a two-phase region appear.

A verdict is *resolved* when at least :data:`RESOLVED` of the refits agree with it (for a
yes/no verdict: at least that fraction say yes, or at least that fraction say no). The refits
measure the uncertainty from the finite, noisy training set; the cross-validated RMSE is the
separate error of the model's form, and the two are reported side by side.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from halex.errors import InputError
from halex.pathway.lattice import HalideLattice
from halex.pathway.mc import KB_EV
from halex.pathway.model import LatticeModel, bootstrap_lattice_models
from halex.pathway.titration import titration, two_phase_regions

__all__ = ["verdict_uncertainty", "DEFAULT_REFITS", "RESOLVED"]

log = logging.getLogger("halex.pathway")

#: bootstrap refits per particle by default (each one titration: seconds)
DEFAULT_REFITS = 20
#: the fraction of refits that must agree for a verdict to count as resolved
RESOLVED = 0.9


def _verdicts_of(lattice: HalideLattice, model: LatticeModel, dmus, temperature: float,
                 sweeps: int) -> tuple[dict[str, float | None], bool, bool]:
    """Half-conversion Δμ per layer, segmented state?, two-phase region? of one model's titration."""
    from halex.pathway.workflow import conversion_order, segmented_state

    t = titration(lattice, model, dmus, temperature=temperature, sweeps=sweeps, equilibrate=max(sweeps // 2, 1))
    half = {r["layer"]: r["half_converted_at_dmu_eV"] for r in conversion_order(t)}
    jump = bool(two_phase_regions(t["dmu_eV"], t["x_cl_forward"], t["x_cl_backward"]))
    return half, segmented_state(t) is not None, jump


def _order(half: dict[str, float | None]) -> list[str]:
    """The layers that convert, by their half-conversion Δμ."""
    return sorted((k for k, v in half.items() if v is not None), key=lambda k: half[k])


def _before(half: dict[str, float | None], a: str, b: str) -> bool:
    """Layer ``a`` is half converted at a lower Δμ than ``b`` (a layer that never is comes last)."""
    ha, hb = half.get(a), half.get(b)
    return ha is not None and (hb is None or ha < hb)


def _settled(fraction: float) -> bool:
    return fraction >= RESOLVED or fraction <= 1 - RESOLVED


def verdict_uncertainty(fit: dict[str, Any], verdicts: dict[str, Any], dmus, *, temperature: float, sweeps: int,
                        refits: int = DEFAULT_REFITS, seed: int = 0) -> dict[str, Any]:
    """Count each verdict of a fitted, titrated particle over bootstrap refits of its model.

    Parameters
    ----------
    fit
        A fitted particle (:func:`~halex.pathway.workflow.fit_particle`: ``lattice``, ``model``
        and the training set in ``history``).
    verdicts
        The full model's verdicts (``conversion_order``, ``segmented_state``, ``two_phase_regions``).
    dmus, temperature, sweeps
        The titration's Δμ grid (eV), temperature (K) and sampled sweeps per Δμ.
    refits
        Bootstrap refits (≥ 2).
    seed
        Random seed of the resampling.

    Raises
    ------
    InputError
        ``fit`` without its training set.

    Returns
    -------
    dict
        ``refits``, ``resolved_at``, ``cv_rmse_meV_per_halide``, ``kT_meV``; ``layers`` (each
        layer's half-conversion Δμ, its SD over the refits in eV, and in how many refits it
        converts); ``first_layer``, ``first_layer_agreement``, ``first_layer_resolved``,
        ``same_order``; ``adjacent_pairs`` (``before``, ``after``, ``gap_eV``, ``agreement``,
        ``within_cv_error``); ``segmented_fraction``, ``segmented_resolved``,
        ``jump_fraction``, ``jump_resolved``.
    """
    if "history" not in fit:
        raise InputError("bootstrap refits need the model's training set (fit['history'] with 'occupations' and "
                         "'energies_eV', as fit_particle gives it); pass refits=0 for a model without one")
    lattice, model, history = fit["lattice"], fit["model"], fit["history"]
    members = bootstrap_lattice_models(lattice, history["occupations"], history["energies_eV"],
                                       alpha=model.cv["alpha"], n=refits, seed=seed)
    log.info("[pathway] %s: titrating %d bootstrap refits of the lattice model", fit["name"], refits)
    runs = [_verdicts_of(lattice, m, dmus, temperature, sweeps) for m in members]
    halves = [h for h, _, _ in runs]
    order = [r["layer"] for r in verdicts["conversion_order"] if r["half_converted_at_dmu_eV"] is not None]
    cv_eV = model.cv["rmse_meV_per_halide"] / 1000
    layers = []
    for r in verdicts["conversion_order"]:
        vals = [h[r["layer"]] for h in halves if h.get(r["layer"]) is not None]
        layers.append({"layer": r["layer"], "half_converted_at_dmu_eV": r["half_converted_at_dmu_eV"],
                       "sd_eV": float(np.std(vals, ddof=1)) if len(vals) > 1 else None, "converted_in": len(vals)})
    at = {x["layer"]: x["half_converted_at_dmu_eV"] for x in layers}
    pairs = []
    for a, b in zip(order, order[1:]):
        gap = float(at[b] - at[a])
        pairs.append({"before": a, "after": b, "gap_eV": gap, "agreement": float(np.mean([_before(h, a, b) for h in halves])),
                      "within_cv_error": bool(gap < cv_eV)})
    first = order[0] if order else None
    first_agree = float(np.mean([bool(_order(h)) and _order(h)[0] == first for h in halves])) if first else 0.0
    seg = float(np.mean([s for _, s, _ in runs]))
    jump = float(np.mean([j for _, _, j in runs]))
    return {"refits": refits, "resolved_at": RESOLVED, "cv_rmse_meV_per_halide": model.cv["rmse_meV_per_halide"],
            "kT_meV": 1000 * KB_EV * temperature, "layers": layers, "first_layer": first,
            "first_layer_agreement": first_agree, "first_layer_resolved": bool(first and first_agree >= RESOLVED),
            "same_order": float(np.mean([_order(h) == order for h in halves])), "adjacent_pairs": pairs,
            "segmented_fraction": seg, "segmented_resolved": _settled(seg),
            "jump_fraction": jump, "jump_resolved": _settled(jump)}
