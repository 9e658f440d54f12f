"""Every energy column of a study's tables, derived from model energies and PbX2 references.

A study's rows record *which* models a ΔE compares and how many halides it exchanges
(``model``, ``from_model``, ``x_step``, ``x_total``, ``x``); this module turns model energies
into the ΔE columns (SPEC §4, :func:`~halex.studies.energies.exchange_energy`). The studies
use it with the study engine's relaxed energies, and rescoring (:mod:`halex.studies.rescore`)
with another engine's single points on the same geometries, so both go through one formula.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from halex.errors import InputError
from halex.studies.energies import exchange_energy

__all__ = ["derive_tables", "favoured_start"]

Tables = dict[str, list[dict[str, Any]]]


def _layers(t: Tables, e: Mapping[str, float], refs: tuple[float, float]) -> None:
    rows = t.get("layers", [])
    for r in rows:
        r["energy_eV"] = e[r["model"]]
        k = int(r["n_layers"])
        if k == 0:
            continue
        prev = "pristine" if k == 1 else f"{r['start']}-{k - 1}"
        r["dE_step_kcal_mol"] = exchange_energy(e[r["model"]], e[prev], r["x_step"], *refs)
        r["dE_cum_kcal_mol"] = exchange_energy(e[r["model"]], e["pristine"], r["x_total"], *refs)
    by = {(r["start"], r["n_layers"]): r for r in rows}
    diff = []
    for k in sorted({r["n_layers"] for r in rows if r["start"] == "interface"}):
        i, b = by[("interface", k)], by[("bottom", k)]
        diff.append({"n_layers": k, "dE_step_interface_minus_bottom_kcal_mol": i["dE_step_kcal_mol"] - b["dE_step_kcal_mol"],
                     "dE_cum_interface_minus_bottom_kcal_mol": i["dE_cum_kcal_mol"] - b["dE_cum_kcal_mol"]})
    t["layers_difference"] = diff


def _chalcohalide(t: Tables, e: Mapping[str, float], refs: tuple[float, float]) -> None:
    first: dict[Any, float] = {}  # the first step of each seed's series
    for r in t.get("chalcohalide", []):
        r["energy_eV"] = e[r["model"]]
        de = exchange_energy(e[r["model"]], e[r["from_model"]], r["x_step"], *refs) if r["x_step"] > 0 else None
        k = r.get("seed", 0)
        if de is not None and k not in first:
            first[k] = de
        r["dE_step_kcal_mol"] = de
        r["dE_minus_first_step_kcal_mol"] = None if de is None or k not in first else de - first[k]


def _alloy(t: Tables, e: Mapping[str, float], refs: tuple[float, float]) -> None:
    rows = t.get("alloy", [])
    for r in rows:
        r["energy_eV"] = e[r["model"]]
        r["dE_kcal_mol"] = exchange_energy(e[r["model"]], e["alloy-base"], r["x"], *refs)
    rand = np.array([r["dE_kcal_mol"] for r in rows if r["pattern"] == "random"])
    mean, spread = float(rand.mean()), float(rand.std(ddof=1)) if rand.size > 1 else float("nan")
    for r in rows:
        r["dE_minus_random_mean_kcal_mol"] = r["dE_kcal_mol"] - mean
    summary = [{"pattern": "random", "n": int(rand.size), "dE_kcal_mol": mean, "spread_kcal_mol": spread,
                "dE_minus_random_mean_kcal_mol": 0.0, "beyond_2_spread": False}]
    for pat in dict.fromkeys(r["pattern"] for r in rows if r["pattern"] != "random"):  # mean over its plane choices
        v = np.array([r["dE_kcal_mol"] for r in rows if r["pattern"] == pat])
        d = float(v.mean()) - mean
        summary.append({"pattern": pat, "n": int(v.size), "dE_kcal_mol": float(v.mean()),
                        "spread_kcal_mol": float(v.std(ddof=1)) if v.size > 1 else None,
                        "dE_minus_random_mean_kcal_mol": d, "beyond_2_spread": bool(abs(d) > 2 * spread)})
    t["alloy_summary"] = summary


_DERIVE = {"layers": _layers, "chalcohalide": _chalcohalide, "alloy": _alloy}


def derive_tables(study: str, tables: Tables, energies: Mapping[str, float], references: tuple[float, float]) -> Tables:
    """Copies of ``tables`` with every energy column computed from ``energies``.

    Parameters
    ----------
    study
        ``"layers"``, ``"chalcohalide"`` or ``"alloy"``.
    tables
        The study's tables; their rows name the models and exchanged-halide counts.
    energies
        Model name → energy (eV), for every model the rows name.
    references
        Energies (eV per formula unit) of the source and target PbX2 (e.g. PbCl2, PbI2).

    Returns
    -------
    dict
        The tables, copied, with ``energy_eV`` and the ``dE_*_kcal_mol`` columns (and, for the
        layers and alloy studies, the ``layers_difference`` and ``alloy_summary`` tables) recomputed.

    Examples
    --------
    >>> rows = [{"percent": 0.0, "model": "c0", "from_model": None, "x_step": 0},
    ...         {"percent": 50.0, "model": "c50", "from_model": "c0", "x_step": 2}]
    >>> t = derive_tables("chalcohalide", {"chalcohalide": rows[1:]}, {"c0": -11.0, "c50": -10.0}, (-5.0, -4.0))
    >>> round(t["chalcohalide"][0]["dE_step_kcal_mol"], 3), rows[1].get("dE_step_kcal_mol")
    (0.0, None)
    """
    if study not in _DERIVE:
        raise InputError(f"unknown study {study!r}: choose one of {', '.join(_DERIVE)}")
    out = {k: [dict(r) for r in v] for k, v in tables.items()}
    try:
        _DERIVE[study](out, energies, references)
    except KeyError as exc:
        raise InputError(f"no energy for model {exc} of the {study} study") from None
    return out


def favoured_start(tables: Tables) -> str:
    """``"interface"`` or ``"bottom"``: the start with the lower ΔE_cum after the most layers.

    Examples
    --------
    >>> favoured_start({"layers": [{"start": "interface", "n_layers": 2, "dE_cum_kcal_mol": -1.0},
    ...                            {"start": "bottom", "n_layers": 2, "dE_cum_kcal_mol": -1.5}]})
    'bottom'
    """
    rows = [r for r in tables.get("layers", []) if r["start"] in ("interface", "bottom")]
    n = max(r["n_layers"] for r in rows)
    by = {r["start"]: r["dE_cum_kcal_mol"] for r in rows if r["n_layers"] == n}
    return "interface" if by["interface"] < by["bottom"] else "bottom"
