"""Engine noise: every ΔE of a study recomputed with other engines on the same relaxed geometries.

``halex study … --rescore 7net-0 7net-mf-0`` takes every model the study relaxed (the kept
lowest replica) and the relaxed PbX2 references, computes single-point energies with each
rescoring engine (cached in the store like every result), and derives every ΔE column again
through :func:`halex.studies.derive.derive_tables`, the formula the study itself used.

What is added to the study:

* next to every ``dE_*_kcal_mol`` column, ``dE_*_engine_spread_kcal_mol``: the largest minus
  the smallest value over the study engine and every rescoring engine (:data:`SPREAD_RULE`);
* a ``rescore`` table: each engine's value of every ΔE;
* ``meta["rescore"]``: the engines (name, version, settings), their PbX2 reference energies
  and their answers to each conclusion, which :mod:`halex.studies.conclusions` reports as
  ``value_by_engine`` and ``engine_spread_kcal_mol`` and uses in the verdict.

The rescoring engines see geometries relaxed by another potential, so their energies include
their own relaxation energy from those geometries; for potentials trained on the same PBE data
this is small against the differences the studies compare, but it is part of the spread.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from halex.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from ase import Atoms

    from halex.studies.exchange import Study, StudySettings

__all__ = ["rescore_study", "check_rescore_engines", "engine_spread_columns", "SPREAD_RULE"]

log = logging.getLogger("halex.studies")

SPREAD_RULE = "engine spread: the largest minus the smallest value over the study engine and every rescoring engine"
_DE = re.compile(r"^dE(_.*)?_kcal_mol$")


def check_rescore_engines(names: Sequence[str], model: Atoms | None = None) -> list:
    """The rescoring engines, refused before anything is computed if unknown or unable to run ``model``.

    Raises
    ------
    EngineNotFoundError
        An unknown engine name (the message lists the registered ones).
    EngineUnavailableError, UnsupportedElementError
        The engine's package is missing, or it cannot describe the model's elements.
    """
    from halex.engines import get_engine

    if isinstance(names, str):
        raise InputError("rescore engines must be a list of names, e.g. ['7net-0']")
    engines = [get_engine(n) for n in names]
    if model is not None:
        for e in engines:
            e.check(model)
    return engines


def _single_points(models: dict[str, Atoms], engine, store, what: str) -> dict[str, float]:
    from halex.relax import single_point

    out, t0 = {}, time.perf_counter()
    for i, (name, atoms) in enumerate(models.items(), 1):
        out[name] = single_point(atoms, engine, store=store, label=f"rescore {what}/{name}").energy
        left = (time.perf_counter() - t0) / i * (len(models) - i)
        log.info("[rescore] %s %s: %d/%d single points (ETA %.0f s)", engine.name, what, i, len(models), left)
    return out


def _references(engine, settings: StudySettings, store) -> tuple[float, float]:
    """The rescoring engine's single points on the study engine's relaxed PbX2 references (eV per formula unit)."""
    from halex.relax import single_point
    from halex.studies.energies import pbx2_reference_structure

    refs = []
    for halide in (settings.source, settings.target):
        atoms, _, n_fu = pbx2_reference_structure(halide, settings.engine, mode=settings.reference, store=store,
                                                  fmax=settings.fmax)
        refs.append(single_point(atoms, engine, store=store, label=f"rescore reference Pb{halide}2").energy / n_fu)
    return refs[0], refs[1]


def engine_spread_columns(primary: dict[str, list[dict[str, Any]]],
                          others: Sequence[dict[str, list[dict[str, Any]]]]) -> dict[str, list[dict[str, Any]]]:
    """``primary``'s tables with a ``dE_*_engine_spread_kcal_mol`` column after every ΔE column.

    The spread is max − min over ``primary`` and ``others`` (the same tables from other
    engines, row for row); None where any engine has no value.

    Examples
    --------
    >>> t = engine_spread_columns({"a": [{"dE_kcal_mol": -1.0, "x": 2}]}, [{"a": [{"dE_kcal_mol": -0.4, "x": 2}]}])
    >>> [(k, round(v, 3)) for k, v in t["a"][0].items()]
    [('dE_kcal_mol', -1.0), ('dE_engine_spread_kcal_mol', 0.6), ('x', 2)]
    """
    out = {}
    for name, rows in primary.items():
        new_rows = []
        for i, row in enumerate(rows):
            new = {}
            for col, v in row.items():
                new[col] = v
                if _DE.match(col) and "_engine_spread_" not in col:
                    vals = [v] + [o[name][i].get(col) for o in others]
                    ok = all(isinstance(x, (int, float)) for x in vals)
                    new[col.replace("_kcal_mol", "_engine_spread_kcal_mol")] = float(max(vals) - min(vals)) if ok else None
            new_rows.append(new)
        out[name] = new_rows
    return out


def rescore_study(study: Study, settings: StudySettings) -> Study:
    """``study`` with its ΔE recomputed by every engine of ``settings.rescore`` (module doc).

    Parameters
    ----------
    study
        A finished study (its ``models`` are the relaxed geometries).
    settings
        The study's settings; ``settings.rescore`` names the engines (empty: ``study`` unchanged).

    Returns
    -------
    Study
        The same study with engine-spread columns, a ``rescore`` table and ``meta["rescore"]``.
    """
    from halex.studies.conclusions import study_conclusions
    from halex.studies.derive import derive_tables
    from halex.studies.exchange import Study, _store

    if not settings.rescore:
        return study
    store = _store(settings)
    base = {k: v for k, v in study.tables.items() if k not in ("structure", "rescore")}
    models = {n: a for n, a in study.models.items() if n != "favoured"}
    per_engine, rescore_rows, meta = [], [], {"engines": [], "spread_rule": SPREAD_RULE, "conclusions": {}}
    for engine in check_rescore_engines(settings.rescore):
        energies = _single_points(models, engine, store, study.name)
        refs = _references(engine, settings, store)
        tables = derive_tables(study.name, base, energies, refs)
        per_engine.append(tables)
        for tname, rows in tables.items():
            for r in rows:
                key = {k: r[k] for k in ("model", "pattern", "start", "n_layers", "percent") if k in r}
                rescore_rows.append({"engine": engine.name, "table": tname, **key,
                                     **{c: v for c, v in r.items() if _DE.match(c)}})
        meta["engines"].append({**engine.describe(), "reference_energies_eV_per_formula_unit":
                                {f"Pb{settings.source}2": refs[0], f"Pb{settings.target}2": refs[1]}})
        # the geometry (structure table) is the study engine's for every engine, so questions about
        # it (the lattice profile) get the same answer from every engine instead of none
        geometry = {k: study.tables[k] for k in ("structure",) if k in study.tables}
        meta["conclusions"][engine.name] = [{"question": c["question"], "value": c["value"]}
                                            for c in study_conclusions(Study(study.name, {**tables, **geometry}, study.meta))]
    tables = {**engine_spread_columns(base, per_engine), "rescore": rescore_rows}
    if "structure" in study.tables:
        tables["structure"] = study.tables["structure"]
    return Study(study.name, tables, {**study.meta, "rescore": meta}, study.models, study.replicas)
