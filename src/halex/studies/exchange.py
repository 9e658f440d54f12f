"""The three exchange studies of SPEC §3–§4: layers, chalcohalide, alloy (and all of them).

Each study builds the models it needs with :mod:`halex.models`, relaxes every one of
them and the standalone perovskite nanocrystal of each (the same perovskite atoms cut
out of the model, for the strain of SPEC §4) through
:func:`~halex.studies.runner.run_relaxations` (cached in the store, concurrent with
Dask), and turns the energies into tables. A :class:`Study` holds the tables as lists
of rows; :mod:`halex.studies.output` writes them (CSV, JSON, figures, report.html).

Definitions (kcal/mol per exchanged halide, see :mod:`halex.studies.energies`):

* **layers**: Cl→I in perovskite layers 1…N from the interface and, separately, from
  the bottom. ΔE_step from the model with k−1 layers exchanged, ΔE_cum from the pristine
  model, interface − bottom differences of both, interfacial strain of every model.
* **chalcohalide**: on a model with its interfacial CsCl monolayer exchanged (in
  ``all``: on top of the favoured layers result, i.e. the start whose N-layer ΔE_cum is
  lower), I replaces Cl in the first two chalcohalide layers in a nested series
  0 → 20 → … → 100 %; ΔE of each step, its difference to the first step, interfacial
  strain before → after.
* **alloy**: ≈ 20 % of the perovskite's remaining Cl exchanged at random (several seeds)
  and as CsI planes ⊥, CsI planes ∥, PbI2 planes ⊥ to the interface; ΔE of each from the
  unalloyed model, difference to the random mean, and the random spread (sample standard
  deviation), with a flag when |difference| exceeds twice the spread.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from halex.engines import DEFAULT_ENGINE
from halex.errors import InputError
from halex.studies.derive import derive_tables, favoured_start
from halex.studies.rescore import check_rescore_engines, rescore_study
from halex.studies.starts import REPLICA_RATTLE_A, replica_start, warm_start

#: The optimizer of every study relaxation (chosen by measurement, see docs/studies.md).
STUDY_OPTIMIZER = "FIRE"

__all__ = ["StudySettings", "Study", "layers_study", "chalcohalide_study", "alloy_study", "all_studies", "plan_all",
           "standalone_perovskite", "DEFAULT_MAX_LAYERS", "replica_start", "STUDY_OPTIMIZER"]

log = logging.getLogger("halex.study")


@dataclass
class StudySettings:
    """How every relaxation of a study is run.

    Attributes
    ----------
    engine
        Engine name or instance (any halex engine; studies never depend on which).
    store_url
        SQLite path or ``postgresql://`` URL reachable from every worker.
    fmax
        Relaxation threshold (eV/Å); None for the default 4.5e-4 Ha/Bohr.
    steps
        Optimizer steps per relaxation at most.
    reference
        PbX2 references: ``"molecule"`` (default, as in the source study) or ``"bulk"``.
    client
        A :class:`distributed.Client`, a :class:`~halex.studies.runner.LazyClient`
        (connects with the first relaxation) or None (run inline).
    retries
        Retries of a failed relaxation.
    source, target
        The exchange (``"Cl"`` → ``"I"``).
    replicas
        Relaxations of every model, as independent chains: replica r of a model starts from
        replica r of its parent (or, without one, from the built geometry), every atom
        displaced for r ≥ 1 by a seeded Gaussian of :data:`REPLICA_RATTLE_A` per Cartesian
        component. The lowest final energy is kept; the spread of the replicas is the
        minimum-to-minimum noise behind the verdicts.
    optimizer
        ASE optimizer of every relaxation of the study (one protocol for all models).
    warm
        Start every model from the relaxed geometry of its parent in the study (the model
        one exchange step before it), see :mod:`halex.studies.starts`; False: every model
        from its built geometry.
    rescore
        Engine names that recompute every ΔE as single points on the relaxed geometries
        (:mod:`halex.studies.rescore`): an engine-spread column next to every ΔE.
    seeds
        Samples of every step with a free choice of sites: the chalcohalide series (one nested
        series per seed) and the ordered alloy patterns (which planes, when several qualify).
        Random alloys have their own count (``random_seeds``). Identical models are relaxed once.
    """

    engine: Any = DEFAULT_ENGINE
    store_url: str = "halex.db"
    fmax: float | None = None
    steps: int = 1000
    reference: str = "molecule"
    client: Any = None
    retries: int = 1
    source: str = "Cl"
    target: str = "I"
    replicas: int = 1
    optimizer: str = STUDY_OPTIMIZER
    warm: bool = True
    rescore: tuple[str, ...] = ()
    seeds: int = 3

    def __post_init__(self) -> None:
        """Refuse bad replicas, an unknown optimizer or rescoring engine here, before a study computes anything."""
        from halex.relax import OPTIMIZERS
        from halex.studies.rescore import check_rescore_engines

        check_rescore_engines(self.rescore)
        self.rescore = tuple(self.rescore)
        if isinstance(self.replicas, bool) or not isinstance(self.replicas, (int, np.integer)) or self.replicas < 1:
            raise InputError(f"--replicas must be an integer >= 1, got {self.replicas!r}")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, (int, np.integer)) or self.seeds < 1:
            raise InputError(f"--seeds must be an integer >= 1, got {self.seeds!r}")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")

    def describe(self) -> dict[str, Any]:
        from halex.engines import get_engine
        from halex.units import DEFAULT_FMAX

        return {"engine": get_engine(self.engine).describe(), "fmax_eV_per_A": self.fmax or DEFAULT_FMAX,
                "max_steps": self.steps, "pbx2_reference": self.reference, "store": str(self.store_url),
                "exchange": f"{self.source}->{self.target}", "replicas": self.replicas,
                "replica_rattle_A": REPLICA_RATTLE_A, "optimizer": self.optimizer,
                "starts": "warm (replica r from the parent's replica r, relaxed)" if self.warm else "built geometry",
                "rescore_engines": list(self.rescore), "seeds": self.seeds}


@dataclass
class Study:
    """Tables (lists of row dicts) and metadata of one study; units are in the column names.

    Attributes
    ----------
    name
        ``"layers"``, ``"chalcohalide"`` or ``"alloy"``.
    tables
        Table name → rows (``dE_*_kcal_mol``, ``*_percent``, ``*_A``, ``*_deg`` columns).
    meta
        Settings (:meth:`StudySettings.describe`), PbX2 reference energies and the
        study's own choices (e.g. ``favoured_start``).
    models
        The relaxed models by name (the kept replica of each).
    replicas
        Every replica of each model as relaxed (replica r at index r), where the study keeps them.
    """

    name: str
    tables: dict[str, list[dict[str, Any]]]
    meta: dict[str, Any]
    models: dict[str, Atoms] = field(default_factory=dict)
    replicas: dict[str, list[Atoms]] = field(default_factory=dict)


def standalone_perovskite(atoms: Atoms, vacuum: float = 8.0) -> Atoms:
    """The perovskite domain of ``atoms`` on its own (same atoms, same order), centred in vacuum.

    This is the strain reference of SPEC §4: the standalone nanocrystal of the same size
    and composition.

    Parameters
    ----------
    atoms
        A heterostructure (needs the ``domain`` array).
    vacuum
        Vacuum around it (Å).

    Returns
    -------
    ase.Atoms

    Examples
    --------
    >>> from halex.models import heterostructure
    >>> hs = heterostructure((2, 2, 2), 1)
    >>> nc = standalone_perovskite(hs)
    >>> sorted(set(nc.arrays["domain"].tolist())), len(nc) == int((hs.arrays["domain"] == "perovskite").sum())
    (['perovskite'], True)
    """
    nc = atoms[atoms.arrays["domain"] == "perovskite"]
    nc.calc = None
    nc.pbc = False
    nc.center(vacuum=vacuum)
    return nc


def _check_model(atoms: Atoms, settings: StudySettings | None = None) -> None:
    """Refuse a model without halex arrays or a perovskite domain, one whose interfacial layer has no
    in-plane Pb–Pb pair (no strain), or one a rescoring engine cannot compute."""
    from halex.analysis.structure import require_in_plane_pairs
    from halex.arrays import has_halex_arrays

    if not has_halex_arrays(atoms):
        raise InputError("the model lacks the per-atom arrays domain/layer/role: build it with 'halex build ...'")
    if not (atoms.arrays["domain"] == "perovskite").any():
        raise InputError("the model has no perovskite domain")
    require_in_plane_pairs(atoms)  # every study reports the interfacial strain: refuse before relaxing anything
    if settings is not None:
        check_rescore_engines(settings.rescore, atoms)


def _tasks(models: dict[str, Atoms], parents: dict[str, str | None], settings: StudySettings,
           warm_from: dict[str, tuple[Atoms | list[Atoms], str]] | None = None) -> list:
    """The relaxations of ``models``: ``settings.replicas`` per model and the standalone perovskite
    of each heterostructure.

    Replicas are independent chains. A model without a parent (or with ``settings.warm``
    False) starts from its built geometry, its replicas r ≥ 1 from that geometry displaced
    (:func:`replica_start`). Replica r of a model with a parent starts from replica r of the
    parent as relaxed, with the model's species (:func:`warm_start`), displaced for r ≥ 1; the
    lowest replica is kept. The replicas' spread so measures the minimum-to-minimum noise
    including each chain's own history, and the displacement keeps two chains apart even where
    their parents fell into the same minimum. ``warm_from`` gives a model relaxed geometries
    from outside the study (one, or one per replica) and their label, in place of a parent.
    """
    from halex.studies.runner import RelaxTask

    def names(n: str) -> tuple[str, ...]:
        return tuple(n if r == 0 else f"{n}~r{r}" for r in range(settings.replicas))

    tasks = []
    for name, atoms in models.items():
        parent = parents.get(name) if settings.warm else None
        outside = (warm_from or {}).get(name) if settings.warm else None
        for r, task in enumerate(names(name)):
            if outside is not None:  # chain r of a geometry relaxed elsewhere (or that geometry, displaced)
                geoms = outside[0] if isinstance(outside[0], list) else [outside[0]]
                k = r if r < len(geoms) else 0
                tasks.append(RelaxTask(task, replica_start(warm_start(atoms, geoms[k]), r),
                                       origin=outside[1] + (f"~r{k}" if k else "")))
            elif parent is None:  # the built geometry, then displaced copies of it
                tasks.append(RelaxTask(task, replica_start(atoms, r)))
            else:  # chain r: the parent's replica r as relaxed, displaced for r >= 1
                tasks.append(RelaxTask(task, atoms, (names(parent)[r],), r))
        if (atoms.arrays["domain"] == "chalcohalide").any():
            nc_parent = (f"{parent}/nc",) if parent and (models[parent].arrays["domain"] == "chalcohalide").any() else ()
            tasks.append(RelaxTask(f"{name}/nc", standalone_perovskite(atoms), nc_parent))
    return tasks


def _relax_all(models: dict[str, Atoms], settings: StudySettings, parents: dict[str, str | None] | None = None,
               warm_from: dict[str, tuple[Atoms | list[Atoms], str]] | None = None
               ) -> tuple[dict[str, Any], dict[str, Any], dict[str, list]]:
    """Relax every model (``settings.replicas`` starts, the lowest kept) and its standalone perovskite;
    ``parents`` maps a model to the model it is warm-started from (earlier in ``models``),
    ``warm_from`` to a geometry relaxed outside the study (see :func:`_tasks`).
    Returns ({name: kept result}, {name: nc result}, {name: [every replica's result]})."""
    from halex.studies.runner import raise_failures, run_relaxations
    from halex.units import DEFAULT_FMAX

    tasks = _tasks(models, parents or {}, settings, warm_from)
    done, failed = run_relaxations(tasks, settings.engine, str(settings.store_url), fmax=settings.fmax or DEFAULT_FMAX,
                                   steps=settings.steps, optimizer=settings.optimizer, client=settings.client,
                                   retries=settings.retries)
    raise_failures(failed)
    res, runs = {}, {}
    for n in models:
        runs[n] = [done[n if r == 0 else f"{n}~r{r}"] for r in range(settings.replicas)]
        res[n] = min(runs[n], key=lambda x: x.energy)
    nc = {n: done.get(f"{n}/nc", done[n]) for n in models}  # a bare nanocrystal is its own reference
    return res, nc, runs


def _start_column(name: str, res: dict[str, Any]) -> dict[str, Any]:
    """The row column that records where the kept relaxation of ``name`` started."""
    return {"start_from": res[name].parent or "built geometry"}


def _replica_columns(runs: list, nc: Atoms) -> dict[str, Any]:
    """Row columns of a model's replicas: their energies with their sample standard deviation (eV),
    and their interfacial strains (%), the minimum-to-minimum noise of the strain questions."""
    energies = [float(r.energy) for r in runs]
    return {"replica_energies_eV": " ".join(f"{e:.6f}" for e in energies),
            "replica_spread_eV": float(np.std(energies, ddof=1)) if len(energies) > 1 else None,
            "replica_strains_percent": " ".join(f"{_istrain(r.atoms, nc):.4f}" for r in runs)}


def _references(settings: StudySettings) -> tuple[float, float]:
    from halex.studies.energies import pbx2_reference

    store = _store(settings)
    return (pbx2_reference(settings.source, settings.engine, mode=settings.reference, store=store, fmax=settings.fmax),
            pbx2_reference(settings.target, settings.engine, mode=settings.reference, store=store, fmax=settings.fmax))


def _store(settings: StudySettings):
    from halex.store import ResultStore

    return ResultStore(settings.store_url)


def _count(atoms: Atoms, element: str) -> int:
    return int(np.sum(np.array(atoms.get_chemical_symbols()) == element))


def _structure_rows(name: str, relaxed: Atoms, reference: Atoms) -> list[dict[str, Any]]:
    from halex.analysis.structure import lattice_profile, strain_by_layer, tilt_by_layer

    prof = lattice_profile(relaxed)
    strain = strain_by_layer(relaxed, reference)
    tilt = tilt_by_layer(relaxed)
    return [{"model": name, "layer": k, "spacing_A": round(prof.get(k, np.nan), 5),
             "strain_percent": round(strain.get(k, np.nan), 4), "tilt_deg": round(tilt.get(k, np.nan), 3)}
            for k in sorted(set(prof) | set(strain) | set(tilt))]


def _istrain(relaxed: Atoms, reference: Atoms) -> float:
    from halex.analysis.structure import interfacial_strain

    return round(interfacial_strain(relaxed, reference), 4)


def _mismatch(relaxed: Atoms) -> float | None:
    from halex.analysis.structure import domain_mismatch

    try:
        return round(domain_mismatch(relaxed), 4)
    except InputError:
        return None


def layers_study(model: Atoms, max_layers: int, settings: StudySettings) -> Study:
    """Cl→I layer by layer from the interface and from the bottom (module docstring).

    Parameters
    ----------
    model
        The pristine heterostructure (halex arrays).
    max_layers
        Exchange 1…N perovskite layers (N ≤ the model's perovskite layers).
    settings
        How every relaxation runs (:class:`StudySettings`).

    Returns
    -------
    Study
        Tables ``layers`` (ΔE_step and ΔE_cum in kcal/mol per halide, interfacial strain
        and mismatch in %), ``layers_difference`` (interface − bottom) and ``structure``
        (per-layer spacing, strain and tilt); ``meta["favoured_start"]``.

    Raises
    ------
    InputError
        ``max_layers`` outside [1, layers], or a model without halex arrays (before
        anything is computed).
    """
    from halex.models import exchange_layers

    _check_model(model, settings)
    n_avail = int(model.arrays["layer"][model.arrays["domain"] == "perovskite"].max())
    if isinstance(max_layers, bool) or not isinstance(max_layers, (int, np.integer)) or not 1 <= max_layers <= n_avail:
        raise InputError(f"--max-layers must be an integer in [1, {n_avail}] (the model's perovskite layers), got {max_layers!r}")
    models = {"pristine": model.copy()}
    for start in ("interface", "bottom"):
        for k in range(1, max_layers + 1):
            models[f"{start}-{k}"] = exchange_layers(model, k, start=start, source=settings.source, target=settings.target)
    e_src, e_tgt = _references(settings)
    parents = {f"{st}-{k}": "pristine" if k == 1 else f"{st}-{k - 1}" for st in ("interface", "bottom")
               for k in range(1, max_layers + 1)}
    res, nc, reps = _relax_all(models, settings, parents)
    rows, struct = [], []
    for name in models:
        struct += _structure_rows(name, res[name].atoms, nc[name].atoms)
    for start in ("interface", "bottom"):
        prev_name = "pristine"
        for k in range(1, max_layers + 1):
            name = f"{start}-{k}"
            x_tot = _count(models[name], settings.target) - _count(model, settings.target)
            x_step = _count(models[name], settings.target) - _count(models[prev_name], settings.target)
            rows.append({"start": start, "n_layers": k, "model": name, "x_step": x_step, "x_total": x_tot,
                         "energy_eV": None, "dE_step_kcal_mol": None, "dE_cum_kcal_mol": None,
                         "interfacial_strain_percent": _istrain(res[name].atoms, nc[name].atoms),
                         "mismatch_percent": _mismatch(res[name].atoms), "converged": res[name].converged,
                         **_start_column(name, res), **_replica_columns(reps[name], nc[name].atoms)})
            prev_name = name
    pristine_row = {"start": "none", "n_layers": 0, "model": "pristine", "x_step": 0, "x_total": 0, "energy_eV": None,
                    "dE_step_kcal_mol": None, "dE_cum_kcal_mol": None,
                    "interfacial_strain_percent": _istrain(res["pristine"].atoms, nc["pristine"].atoms),
                    "mismatch_percent": _mismatch(res["pristine"].atoms), "converged": res["pristine"].converged,
                    **_start_column("pristine", res), **_replica_columns(reps["pristine"], nc["pristine"].atoms)}
    tables = derive_tables("layers", {"layers": [pristine_row] + rows}, {n: r.energy for n, r in res.items()}, (e_src, e_tgt))
    favoured = favoured_start(tables)
    meta = {**settings.describe(), "max_layers": max_layers, "favoured_start": favoured,
            "reference_energies_eV_per_formula_unit": {f"Pb{settings.source}2": e_src, f"Pb{settings.target}2": e_tgt}}
    relaxed = {n: r.atoms for n, r in res.items()}
    relaxed["favoured"] = res[f"{favoured}-{max_layers}"].atoms
    study = Study("layers", {**tables, "structure": struct}, meta, relaxed, {n: [r.atoms for r in reps[n]] for n in reps})
    return rescore_study(study, settings)


def _check_percents(percents: Sequence[float]) -> list[float]:
    try:
        pct = [float(p) for p in percents]
    except (TypeError, ValueError):
        raise InputError(f"--percents must be percentages, got {percents!r}") from None
    if len(pct) < 2 or any(not 0 <= p <= 100 for p in pct) or pct != sorted(pct) or len(set(pct)) != len(pct):
        raise InputError(f"--percents must be at least two increasing percentages in [0, 100], got {list(percents)}")
    return pct


def _check_alloy(fraction: float, random_seeds: int) -> float:
    from halex.checks import check_fraction

    fraction = check_fraction(fraction)
    if fraction == 0:
        raise InputError("--fraction 0 exchanges nothing")
    if isinstance(random_seeds, bool) or not isinstance(random_seeds, (int, np.integer)) or random_seeds < 2:
        raise InputError(f"--random-seeds must be an integer >= 2 (a spread needs two), got {random_seeds!r}")
    return fraction


def chalcohalide_study(model: Atoms, percents: Sequence[float], settings: StudySettings, *, n_layers: int = 2,
                       seed: int = 0, exchange_monolayer: bool = True,
                       warm_from: tuple[Atoms | list[Atoms], str] | None = None) -> Study:
    """I/Cl in the first chalcohalide layers in a nested series of fractions (percent).

    Parameters
    ----------
    model
        A heterostructure (in ``all``: the favoured layers result).
    percents
        At least two increasing percentages in [0, 100]; each model adds I to the previous
        one (a nested series).
    settings
        How every relaxation runs (:class:`StudySettings`).
    n_layers
        Chalcohalide layers from the interface that take part.
    seed
        Seed of the site choice of the first series; ``settings.seeds`` series use seeds
        ``seed, seed + 1, …``.
    exchange_monolayer
        Exchange the interfacial CsCl monolayer first.
    warm_from
        Relaxed geometries of the same atoms, one or one per replica (chain r starts from the
        r-th), and their label, for the first model to start from, e.g. the favoured model of
        the layers study (``settings.warm``).

    Returns
    -------
    Study
        Table ``chalcohalide``: ΔE of each step (kcal/mol per halide), its difference to
        the first step, interfacial strain before → after (%), and ``structure``.
    """
    from halex.models import chalcohalide_exchange_series, exchange_interface_monolayer

    _check_model(model, settings)
    pct = _check_percents(percents)
    if not (model.arrays["domain"] == "chalcohalide").any():
        raise InputError("the model has no chalcohalide domain: build a heterostructure (halex build heterostructure)")
    base = exchange_interface_monolayer(model, source=settings.source, target=settings.target) if exchange_monolayer else model
    seeds = [seed + i for i in range(settings.seeds)]
    models: dict[str, Atoms] = {}
    parents: dict[str, str] = {}
    chains, sites = {}, {}
    for k in seeds:  # one nested series per seed of the site choice; identical models are relaxed once
        series = chalcohalide_exchange_series(base, n_layers, [p / 100 for p in pct], seed=k, source=settings.source,
                                              target=settings.target)
        chain = []
        for p, m in zip(pct, series):
            name = _same_model(models, m) or f"chalco-{p:g}" + ("" if k == seeds[0] else f"-s{k}")
            if name not in models:
                models[name] = m
                if chain:
                    parents[name] = chain[-1]
            chain.append(name)
        chains[k], sites[k] = chain, json.loads(series[-1].info["exchange_log"])[-1].get("sites")
    e_src, e_tgt = _references(settings)
    firsts = {c[0] for c in chains.values()}
    res, nc, reps = _relax_all(models, settings, parents, {n: warm_from for n in firsts} if warm_from is not None else None)
    rows, struct = [], []
    for name in models:
        struct += _structure_rows(name, res[name].atoms, nc[name].atoms)
    istrain = {n: _istrain(res[n].atoms, nc[n].atoms) for n in models}  # "after" of a step is "before" of the next
    for k, chain in chains.items():
        for prev, name, p in zip(chain[:-1], chain[1:], pct[1:]):
            x = _count(models[name], settings.target) - _count(models[prev], settings.target)
            rows.append({"seed": k, "percent": p, "model": name, "from_model": prev, "x_step": x, "energy_eV": None,
                         "dE_step_kcal_mol": None, "dE_minus_first_step_kcal_mol": None,
                         "interfacial_strain_before_percent": istrain[prev],
                         "interfacial_strain_after_percent": istrain[name],
                         "converged": res[name].converged, **_start_column(name, res),
                         **_replica_columns(reps[name], nc[name].atoms)})
    tables = derive_tables("chalcohalide", {"chalcohalide": rows}, {n: r.energy for n, r in res.items()}, (e_src, e_tgt))
    meta = {**settings.describe(), "percents": pct, "n_layers": n_layers, "seed": seed, "seeds": seeds,
            "interface_monolayer_exchanged": exchange_monolayer, "sites": sites[seeds[0]],
            "sites_by_seed": {str(k): v for k, v in sites.items()},
            "reference_energies_eV_per_formula_unit": {f"Pb{settings.source}2": e_src, f"Pb{settings.target}2": e_tgt}}
    return rescore_study(Study("chalcohalide", {**tables, "structure": struct}, meta, {n: r.atoms for n, r in res.items()}),
                         settings)


def _same_model(models: dict[str, Atoms], atoms: Atoms) -> str | None:
    """The name of a model in ``models`` with the same species on the same sites as ``atoms``, if any."""
    for name, m in models.items():
        if len(m) == len(atoms) and np.array_equal(m.numbers, atoms.numbers) and np.allclose(m.positions, atoms.positions):
            return name
    return None


ALLOY_ORDERED = ("csi-perpendicular", "csi-parallel", "pbi2-perpendicular")


def alloy_study(model: Atoms, fraction: float, random_seeds: int, settings: StudySettings, *,
                warm_from: tuple[Atoms | list[Atoms], str] | None = None) -> Study:
    """Random vs ordered alloying of the perovskite's remaining source halide.

    Parameters
    ----------
    model
        A heterostructure with Cl left in its perovskite domain.
    fraction
        Fraction of that Cl to exchange (0, 1); plane patterns use whole planes.
    random_seeds
        Random alloys (≥ 2, for a spread).
    settings
        How every relaxation runs (:class:`StudySettings`).
    warm_from
        Relaxed geometries of the same atoms, one or one per replica, and their label, for
        the unalloyed model to start from (``settings.warm``).

    Returns
    -------
    Study
        Tables ``alloy`` (ΔE per model, achieved fraction) and ``alloy_summary`` (random
        mean and sample standard deviation, each pattern's difference to the random mean,
        and whether it exceeds twice the spread).
    """
    from halex.models import alloy_perovskite

    _check_model(model, settings)
    fraction = _check_alloy(fraction, random_seeds)
    models = {"alloy-base": model.copy()}
    for s in range(random_seeds):
        models[f"random-{s}"] = alloy_perovskite(model, fraction, pattern="random", seed=s, source=settings.source, target=settings.target)
    for pat in ALLOY_ORDERED:  # which planes, when several qualify: settings.seeds choices, identical ones once
        for k in range(settings.seeds):
            m = alloy_perovskite(model, fraction, pattern=pat, seed=k, source=settings.source, target=settings.target)
            if _same_model(models, m) is None:
                models[pat if k == 0 else f"{pat}-s{k}"] = m
    e_src, e_tgt = _references(settings)
    res, nc, reps = _relax_all(models, settings, {n: "alloy-base" for n in models if n != "alloy-base"},
                               {"alloy-base": warm_from} if warm_from is not None else None)
    rows, struct = [], []
    for name in models:
        struct += _structure_rows(name, res[name].atoms, nc[name].atoms)
    for name, m in models.items():
        if name == "alloy-base":
            continue
        x = _count(m, settings.target) - _count(model, settings.target)
        entry = json.loads(m.info["exchange_log"])[-1]
        rows.append({"pattern": entry["pattern"], "seed": entry["seed"], "model": name, "x": x,
                     "achieved_fraction": entry["achieved_fraction"], "energy_eV": None, "dE_kcal_mol": None,
                     "interfacial_strain_percent": _istrain(res[name].atoms, nc[name].atoms), "converged": res[name].converged,
                     **_start_column(name, res), **_replica_columns(reps[name], nc[name].atoms)})
    tables = derive_tables("alloy", {"alloy": rows}, {n: r.energy for n, r in res.items()}, (e_src, e_tgt))
    meta = {**settings.describe(), "fraction": fraction, "random_seeds": random_seeds,
            "reference_energies_eV_per_formula_unit": {f"Pb{settings.source}2": e_src, f"Pb{settings.target}2": e_tgt}}
    return rescore_study(Study("alloy", {**tables, "structure": struct}, meta, {n: r.atoms for n, r in res.items()}), settings)


#: ``--max-layers`` of ``study all`` when not given: up to this many, fewer if the model is smaller.
DEFAULT_MAX_LAYERS = 3
#: ``study all --size paper``: the source study's depth, 6 perovskite layers, so that the layers study
#: exchanges N = 1…5 from either end and the alloy stage keeps one layer of Cl; the footprint and the
#: chalcohalide are those of the default model.
PAPER_SIZE = {"perovskite": (4, 4, 6), "chalcohalide_layers": 2, "max_layers": 5}


def plan_all(model: Atoms, *, max_layers: int | None = None, percents: Sequence[float] = (0, 20, 40, 60, 80, 100),
             fraction: float = 0.2, random_seeds: int = 5, chalcohalide_layers: int = 2, seeds: int = 3) -> dict[str, Any]:
    """Check that every stage of :func:`all_studies` can run on ``model``, before anything is computed.

    Parameters
    ----------
    model
        The pristine heterostructure.
    max_layers
        Perovskite layers of the layers study; None: ``DEFAULT_MAX_LAYERS``, or fewer so that
        Cl is left for the alloy stage (a note says so).
    percents, fraction, random_seeds, chalcohalide_layers
        As in :func:`all_studies`.
    seeds
        Site-choice samples (:attr:`StudySettings.seeds`).

    Returns
    -------
    dict
        ``max_layers``, ``chalcohalide_layers`` (fitted to the model), ``relaxations`` per
        stage (models plus their standalone nanocrystals) and ``notes`` (the fitted defaults).

    Raises
    ------
    InputError
        A stage cannot run on this model; the message names the stage and the option to change.

    Examples
    --------
    >>> from halex.models import heterostructure
    >>> plan = plan_all(heterostructure((2, 2, 2), 1))
    >>> plan["max_layers"], plan["notes"][0][:38]
    (1, '--max-layers fitted to the model: 1 (i')
    """
    _check_model(model)
    pct = _check_percents(percents)
    _check_alloy(fraction, random_seeds)
    chal = model.arrays["domain"] == "chalcohalide"
    if not chal.any():
        raise InputError("study all needs a heterostructure (a chalcohalide domain)")
    n_pv = int(model.arrays["layer"][model.arrays["domain"] == "perovskite"].max())
    notes = []
    if max_layers is None:
        max_layers = min(DEFAULT_MAX_LAYERS, n_pv - 1)
        if max_layers < 1:
            raise InputError(f"study all: the model has {n_pv} perovskite layer(s); the layers study exchanges some and "
                             "the alloy stage needs Cl left in others: build at least 2 perovskite layers")
        if max_layers < DEFAULT_MAX_LAYERS:
            notes.append(f"--max-layers fitted to the model: {max_layers} (it has {n_pv} perovskite layers, and the "
                         "alloy stage needs one left with Cl)")
    elif isinstance(max_layers, bool) or not isinstance(max_layers, (int, np.integer)) or not 1 <= max_layers <= n_pv:
        raise InputError(f"--max-layers must be an integer in [1, {n_pv}] (the model's perovskite layers), got {max_layers!r}")
    elif max_layers == n_pv:
        raise InputError(f"study all: --max-layers {max_layers} exchanges every perovskite layer, so the alloy stage would "
                         f"find no Cl to alloy: use --max-layers {n_pv - 1} or fewer, or a model with more layers")
    n_chal = min(chalcohalide_layers, len(np.unique(model.arrays["layer"][chal])))
    if n_chal < chalcohalide_layers:
        notes.append(f"the model has {n_chal} chalcohalide layer(s): the chalcohalide study uses {n_chal}")
    relaxations = {"layers": 2 * (1 + 2 * max_layers), "chalcohalide": 2 * seeds * len(pct),
                   "alloy": 2 * (1 + random_seeds + seeds * len(ALLOY_ORDERED))}  # at most: identical models run once
    return {"max_layers": int(max_layers), "chalcohalide_layers": int(n_chal), "relaxations": relaxations, "notes": notes}


def all_studies(model: Atoms, settings: StudySettings, *, max_layers: int | None = None,
                percents: Sequence[float] = (0, 20, 40, 60, 80, 100), fraction: float = 0.2, random_seeds: int = 5,
                seed: int = 0, chalcohalide_layers: int = 2,
                on_study: Callable[[Study], None] | None = None) -> list[Study]:
    """layers → chalcohalide (on the favoured layers result) → alloy (on the chalcohalide study's start).

    Every stage is checked first (:func:`plan_all`), so a stage that cannot run on the model
    fails before anything is computed. ``on_study`` is called with each study as soon as it
    is finished (the command line writes its tables, figures and report there), so a later
    stage that fails leaves the finished ones in place; its error names the stage.

    Parameters
    ----------
    model
        The pristine heterostructure.
    settings
        How every relaxation runs (:class:`StudySettings`).
    max_layers
        Perovskite layers of the layers study (None: fitted, see :func:`plan_all`).
    percents, fraction, random_seeds, seed, chalcohalide_layers
        As in :func:`chalcohalide_study` and :func:`alloy_study`.
    on_study
        Called with each finished study.

    Returns
    -------
    list of Study
        The three studies in order.
    """
    from halex.errors import HalexError
    from halex.models import exchange_interface_monolayer, exchange_layers

    plan = plan_all(model, max_layers=max_layers, percents=percents, fraction=fraction, random_seeds=random_seeds,
                    chalcohalide_layers=chalcohalide_layers, seeds=settings.seeds)
    for note in plan["notes"]:
        log.info("[study] %s", note)
    log.debug("[study] plan: %s relaxations (%s)", sum(plan["relaxations"].values()),
             ", ".join(f"{k} {v}" for k, v in plan["relaxations"].items()))
    max_layers, studies = plan["max_layers"], []

    def stage(name: str, run: Callable[[], Study]) -> Study:
        try:
            study = run()
        except HalexError as exc:
            done = ", ".join(s.name for s in studies) or "none"
            raise type(exc)(f"the {name} stage failed: {exc} (finished stages, kept: {done})") from None
        studies.append(study)
        if on_study is not None:
            on_study(study)
        return study

    layers = stage("layers", lambda: layers_study(model, max_layers, settings))
    fav = layers.meta["favoured_start"]
    start = exchange_layers(model, max_layers, start=fav, source=settings.source, target=settings.target)
    # the next stages start from the favoured model as the layers study relaxed it: chain r from its replica r
    warm_from = (layers.replicas.get(f"{fav}-{max_layers}") or layers.models[f"{fav}-{max_layers}"], f"layers {fav}-{max_layers}")
    base = f"{fav} {max_layers} layers (favoured) + interfacial monolayer"

    def chalcohalide() -> Study:
        study = chalcohalide_study(start, percents, settings, n_layers=plan["chalcohalide_layers"], seed=seed,
                                   warm_from=warm_from)
        study.meta["base"] = base
        return study

    def alloy() -> Study:
        study = alloy_study(exchange_interface_monolayer(start, source=settings.source, target=settings.target),
                            fraction, random_seeds, settings, warm_from=warm_from)
        study.meta["base"] = base
        return study

    stage("chalcohalide", chalcohalide)
    stage("alloy", alloy)
    return studies
