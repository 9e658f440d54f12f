"""Training data for the lattice model: relaxed energies of configurations, and active learning.

Every configuration is relaxed with a halex engine through the study runner
(:func:`halex.studies.runner.run_relaxations`): results go to the store, so training data are
cached, shared with every other command and resumable after a crash. The targets are the
exchange-reaction energies of :func:`halex.pathway.model.reaction_energy` with the PbX2
references of the exchange studies.

Round 0 holds the structured configurations the exchange studies make (perovskite layers
exchanged from the interface and from the bottom, the chalcohalide layer filled, each by layer)
and random occupations over the whole range of iodide fractions. Each later round samples new
configurations from the current model's Monte Carlo (semi-grand canonical snapshots across
Δμ at the working temperature), relaxes them and refits; it stops when the cross-validated
error no longer falls by ``min_gain`` or after ``rounds`` rounds.

The model kept is the one fitted to *all* configurations, even when its CV error is higher
than the previous round's: the added configurations are the ones the Monte Carlo visits, and
an earlier model's lower CV error was measured only on configurations the titration does not
ask about. Each round also records the *prospective* error: the previous model's RMSE on the
new configurations before it saw them, the truest test of the model the titration would
otherwise have used.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import numpy as np

from halex.errors import InputError
from halex.pathway.lattice import HalideLattice, layer_order
from halex.pathway.mc import sgc
from halex.pathway.model import LatticeModel, fit_lattice_model, per_halide_rmse, reaction_energy

__all__ = ["structured_configurations", "random_configurations", "relaxed_targets", "active_learning"]

log = logging.getLogger("halex.pathway")


def structured_configurations(lattice: HalideLattice) -> np.ndarray:
    """Whole layers exchanged in order from the interface and from the bottom (the exchange
    studies' configurations), and the chalcohalide sites filled (occupations, one per row)."""
    rows = []
    for order in layer_order(lattice):
        occ = np.zeros(lattice.n_sites, np.int8)
        for mask in order:
            occ = occ.copy()
            occ[mask] = 1
            rows.append(occ)
    out = np.unique(np.array(rows), axis=0) if rows else np.zeros((0, lattice.n_sites), np.int8)
    return out[out.sum(axis=1) > 0]


def random_configurations(lattice: HalideLattice, n: int, seed: int = 0) -> np.ndarray:
    """``n`` random occupations, iodide fractions spread evenly over (0, 1)."""
    rng = np.random.default_rng(seed)
    frac = (np.arange(n) + rng.random(n)) / max(n, 1)
    return (rng.random((n, lattice.n_sites)) < frac[:, None]).astype(np.int8)


def _name(occ: np.ndarray) -> str:
    return "pathway-" + hashlib.sha1(np.packbits(occ).tobytes()).hexdigest()[:12]


def relaxed_targets(lattice: HalideLattice, occupations: np.ndarray, engine, store_url: str, *, fmax: float,
                    steps: int = 1000, client=None, reference: str = "molecule") -> np.ndarray:
    """Reaction energies (eV) of ``occupations`` relaxed with ``engine`` (cached in the store).

    The pristine particle (all source halide) and the PbX2 references are relaxed too; the
    configurations are warm-started from the relaxed pristine particle.
    """
    from halex.store import ResultStore
    from halex.studies.energies import pbx2_reference
    from halex.studies.runner import RelaxTask, raise_failures, run_relaxations

    occs = np.asarray(occupations, np.int8)
    store = ResultStore(store_url)
    e_src = pbx2_reference(lattice.source, engine, mode=reference, store=store, fmax=fmax)
    e_tgt = pbx2_reference(lattice.target, engine, mode=reference, store=store, fmax=fmax)
    pristine = lattice.decorate(np.zeros(lattice.n_sites, np.int8))
    tasks = [RelaxTask("pathway-pristine", pristine)]
    names = []
    for occ in occs:
        name = _name(occ)
        if name not in names:
            tasks.append(RelaxTask(name, lattice.decorate(occ), ("pathway-pristine",)))
            names.append(name)
    done, failed = run_relaxations(tasks, engine, store_url, fmax=fmax, steps=steps, client=client)
    raise_failures(failed)
    e0 = done["pathway-pristine"].energy
    return np.array([reaction_energy(done[_name(o)].energy, e0, int(o.sum()), e_src, e_tgt) for o in occs])


def _mc_samples(lattice: HalideLattice, model: LatticeModel, n: int, temperature: float, seed: int) -> np.ndarray:
    """``n`` snapshots of semi-grand-canonical runs at Δμ spread over the model's own titration range."""
    h, J = model.fields(lattice)
    lo, hi = float(np.min(h)) - 0.1, float(np.max(h)) + 0.1
    out = []
    for k, dmu in enumerate(np.linspace(lo, hi, n)):
        occ = np.zeros(lattice.n_sites, np.int8)
        sgc(occ, h, lattice.indptr, lattice.neighbours, J, dmu=float(dmu), temperature=temperature, sweeps=50,
            seed=seed + k, sample_every_sweep=False)
        out.append(occ.copy())
    return np.array(out)


def active_learning(lattice: HalideLattice, engine, store_url: str, *, fmax: float, temperature: float,
                    n_random: int | None = None, per_round: int = 10, rounds: int = 3, min_gain: float = 0.05,
                    steps: int = 1000, client=None, seed: int = 0) -> tuple[LatticeModel, dict[str, Any]]:
    """Fit the lattice model, adding Monte Carlo samples of the current model until the CV error stops falling.

    Returns
    -------
    (LatticeModel, dict)
        The final model and the training history (``rounds``: configurations and CV RMSE per
        round; ``occupations`` and ``energies_eV`` of the whole training set).

    Raises
    ------
    InputError
        Bad ``rounds`` / ``per_round``.
    """
    if rounds < 1 or per_round < 1:
        raise InputError(f"rounds and per_round must be >= 1, got {rounds}, {per_round}")
    occs = np.concatenate([structured_configurations(lattice),
                           random_configurations(lattice, _n_random(lattice, n_random), seed)])
    y = relaxed_targets(lattice, occs, engine, store_url, fmax=fmax, steps=steps, client=client)
    model = fit_lattice_model(lattice, occs, y)
    history = [{"round": 0, "configurations": int(len(y)), **_cv(model)}]
    log.info("[pathway] round 0: %d configurations, CV RMSE %.1f meV per halide", len(y), model.cv["rmse_meV_per_halide"])
    for r in range(1, rounds):
        new = _mc_samples(lattice, model, per_round, temperature, seed + 1000 * r)
        new = new[new.sum(axis=1) > 0]
        occs = np.concatenate([occs, new])
        y_new = relaxed_targets(lattice, new, engine, store_url, fmax=fmax, steps=steps, client=client)
        y = np.concatenate([y, y_new])
        prospective = _prospective_rmse(lattice, model, new, y_new)
        previous, model = model, fit_lattice_model(lattice, occs, y)
        history.append({"round": r, "configurations": int(len(y)), **_cv(model),
                        "prospective_rmse_meV_per_halide": prospective})
        log.info("[pathway] round %d: %d configurations, CV RMSE %.1f meV per halide; the previous model predicted "
                 "the new ones to %.1f meV per halide", r, len(y), model.cv["rmse_meV_per_halide"], prospective)
        if model.cv["rmse_meV_per_halide"] > (1 - min_gain) * previous.cv["rmse_meV_per_halide"]:
            break
    return model, {"rounds": history, "occupations": occs, "energies_eV": y}


def _n_random(lattice: HalideLattice, n_random: int | None) -> int:
    """Random round-0 configurations: twice the model's terms (site kinds + pair shells), at least 10."""
    return max(2 * (len(lattice.kinds) + len(lattice.shells)), 10) if n_random is None else n_random


def n_training_relaxations(lattice: HalideLattice, *, rounds: int, per_round: int, n_random: int | None = None) -> int:
    """Relaxations :func:`active_learning` asks for at most: the structured and random round-0
    configurations, then ``per_round`` Monte Carlo samples in each later round (fewer when it stops
    early; configurations already in the store are not relaxed again)."""
    return len(structured_configurations(lattice)) + _n_random(lattice, n_random) + (rounds - 1) * per_round


def _prospective_rmse(lattice: HalideLattice, model: LatticeModel, occs: np.ndarray, y: np.ndarray) -> float:
    """RMSE (meV per exchanged halide) of ``model`` on configurations it was not fitted to."""
    pred = np.array([model.energy(lattice, o) for o in occs])
    return 1000 * per_halide_rmse(pred, y, occs)


def _cv(model: LatticeModel) -> dict[str, float]:
    return {k: model.cv[k] for k in ("rmse_meV_per_halide", "rmse_kcal_mol_per_halide", "alpha")}
