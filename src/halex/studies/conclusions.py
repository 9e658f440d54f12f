"""Conclusions of the exchange studies: each question answered with a value, its standard
error, a 95 % interval and one verdict.

Verdict rule (:data:`VERDICT_RULE`): a conclusion *holds* when its 95 % interval lies
entirely on the side the question asks for, is *reversed* when it lies entirely on the
other side, and is *not resolved at this noise* when it contains zero. A value whose noise
was not sampled (fewer than two seeds or replicas behind it) gets *no error estimate*: it
is reported, never called a result.

Intervals (Student t, analytic):

* a mean over n configurations (seeds): ``x̄ ± t_{0.975, n−1} s/√n``;
* one configuration against the mean of n others (an ordered alloy pattern against the
  random alloys): ``x − x̄ ± t_{0.975, n−1} s √(1 + 1/n)``, the prediction interval, which
  takes the single configuration to scatter as much as the sampled ones do;
* two single configurations against each other: ``x₁ − x₂ ± t_{0.975, n−1} s √2`` with s from
  the n sampled configurations;
* a combination of relaxed energies ``Σ c_m E_m`` (the layers and chalcohalide questions):
  ``± t s_rep √Σc²`` with ``s_rep`` the replicas' pooled standard deviation (the
  minimum-to-minimum noise of relaxations from perturbed starts); with one relaxation per
  model there is no error estimate.

Engine noise: after rescoring with other engines (``--rescore``), a conclusion that holds
(or is reversed) with the study engine is *not resolved at this noise* if any rescoring engine
puts its value on the other side of zero; each engine's value and their spread are reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from halex.errors import InputError

__all__ = ["VERDICT_RULE", "VERDICTS", "mean_interval", "prediction_difference", "verdict", "study_conclusions"]

VERDICTS = ("holds", "reversed", "not resolved at this noise", "no error estimate")
VERDICT_RULE = ("holds: the 95 % interval lies entirely on the side the question asks for; reversed: entirely on "
                "the other side; not resolved at this noise: the interval contains 0, or a rescoring engine puts the "
                "value on the other side of 0; no error estimate: fewer than two seeds or replicas sample the noise")
LEVEL = 0.95


def _t(n: int, level: float) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, n - 1))


def mean_interval(values: Sequence[float], *, level: float = LEVEL) -> dict[str, Any]:
    """Mean, standard error and Student-t interval of ``values`` (one per seed or replica).

    Parameters
    ----------
    values
        Samples (e.g. kcal/mol per halide).
    level
        Confidence level of the interval.

    Returns
    -------
    dict
        ``value``, ``se``, ``low``, ``high``, ``n`` (``se``/``low``/``high`` None when n < 2).

    Examples
    --------
    >>> r = mean_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    >>> round(r["value"], 3), round(r["se"], 4), round(r["high"] - r["value"], 4)
    (3.0, 0.7071, 1.9632)
    """
    x = np.asarray(values, float)
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise InputError("need at least one finite value for an interval")
    if x.size < 2:
        return {"value": float(x[0]), "se": None, "low": None, "high": None, "n": 1}
    se = float(x.std(ddof=1) / np.sqrt(x.size))
    h = _t(x.size, level) * se
    return {"value": float(x.mean()), "se": se, "low": float(x.mean() - h), "high": float(x.mean() + h), "n": int(x.size)}


def prediction_difference(value: float, sample: Sequence[float], *, level: float = LEVEL, single: bool = False) -> dict[str, Any]:
    """``value − mean(sample)`` (or, with ``single``, a difference of two single configurations)
    with the prediction-interval standard error of the module doc.

    Parameters
    ----------
    value
        The single configuration's value, or the difference of two single configurations.
    sample
        Values of the n sampled configurations that measure the configuration-to-configuration noise.
    level
        Confidence level.
    single
        ``value`` is already a difference of two single configurations: SE = s √2.

    Returns
    -------
    dict
        ``value``, ``se``, ``low``, ``high``, ``n`` (the sample size behind s).

    Examples
    --------
    >>> r = prediction_difference(-1.0, [0.0, 1.0, 2.0])
    >>> round(r["value"], 3), round(r["se"], 4)
    (-2.0, 1.1547)
    """
    x = np.asarray(sample, float)
    d = float(value) if single else float(value - x.mean())
    if x.size < 2:
        return {"value": d, "se": None, "low": None, "high": None, "n": int(x.size)}
    s = float(x.std(ddof=1))
    se = s * (np.sqrt(2.0) if single else np.sqrt(1.0 + 1.0 / x.size))
    h = _t(x.size, level) * se
    return {"value": d, "se": float(se), "low": d - h, "high": d + h, "n": int(x.size)}


def verdict(low: float | None, high: float | None, *, expected: str) -> str:
    """The verdict of :data:`VERDICT_RULE` for an interval and the sign the question expects.

    Parameters
    ----------
    low, high
        Interval bounds (None: no error estimate).
    expected
        ``"positive"`` or ``"negative"``: the side on which the conclusion holds.

    Returns
    -------
    str
        One of :data:`VERDICTS`.

    Examples
    --------
    >>> verdict(0.2, 0.9, expected="positive"), verdict(-0.5, 0.3, expected="positive")
    ('holds', 'not resolved at this noise')
    """
    if expected not in ("positive", "negative"):
        raise InputError(f"expected must be 'positive' or 'negative', got {expected!r}")
    if low is None or high is None:
        return "no error estimate"
    above, below = low > 0, high < 0
    if (above and expected == "positive") or (below and expected == "negative"):
        return "holds"
    if above or below:
        return "reversed"
    return "not resolved at this noise"


def _row(study: str, question: str, r: dict[str, Any], expected: str, method: str) -> dict[str, Any]:
    return {"study": study, "question": question, "value_kcal_mol": r["value"], "se_kcal_mol": r["se"],
            "ci95_low_kcal_mol": r["low"], "ci95_high_kcal_mol": r["high"], "n_noise_samples": r["n"],
            "method": method, "verdict": verdict(r["low"], r["high"], expected=expected)}


def _pooled_replica_sd(rows: list[dict[str, Any]]) -> tuple[float | None, int]:
    """Pooled standard deviation (eV) of the replicas of every model in ``rows`` and its degrees of freedom."""
    ss, dof = 0.0, 0
    for r in rows:
        e = [float(v) for v in str(r.get("replica_energies_eV") or "").split()]
        if len(e) > 1:
            ss += float(np.sum((np.asarray(e) - np.mean(e)) ** 2))
            dof += len(e) - 1
    return (float(np.sqrt(ss / dof)), dof) if dof else (None, 0)


def _energy_combination(value: float, coeffs: Sequence[float], sd_eV: float | None, dof: int, level: float = LEVEL) -> dict[str, Any]:
    """A ΔE combination ``Σ c_m E_m`` (kcal/mol per halide) with each model energy scattering by
    ``sd_eV`` independently: SE = sd · √Σc² (c in kcal/mol per halide per eV), t with ``dof``."""
    if sd_eV is None:
        return {"value": value, "se": None, "low": None, "high": None, "n": 1}
    se = sd_eV * float(np.sqrt(np.sum(np.square(coeffs))))
    h = _t(dof + 1, level) * se  # dof degrees of freedom
    return {"value": value, "se": se, "low": value - h, "high": value + h, "n": dof + 1}


def _replica_method(sd: float | None, dof: int) -> str:
    if sd is None:
        return "one relaxation per model: no replicas sample the minimum-to-minimum noise (run with --replicas ≥ 2)"
    return (f"t interval; each model's energy taken to scatter by the replicas' pooled SD {1000 * sd:.0f} meV "
            f"({dof} degrees of freedom), the kept lowest replica scatters less")


def _layers(study) -> list[dict[str, Any]]:
    from halex.units import EV_KCAL_PER_MOL

    by = {(r["start"], r["n_layers"]): r for r in study.tables.get("layers", [])}
    sd, dof = _pooled_replica_sd(study.tables.get("layers", []))
    rows = []
    for d in study.tables.get("layers_difference", []):
        x = by[("interface", d["n_layers"])]["x_total"]  # the same halides exchanged from either end
        r = _energy_combination(d["dE_cum_interface_minus_bottom_kcal_mol"], [EV_KCAL_PER_MOL / x, -EV_KCAL_PER_MOL / x],
                                sd, dof)
        rows.append(_row("layers", f"exchange from the bottom favoured over the interface (N = {d['n_layers']}): "
                         "ΔE_cum(interface) − ΔE_cum(bottom) > 0", r, "positive", _replica_method(sd, dof)))
    return rows


def _chalcohalide(study) -> list[dict[str, Any]]:
    from halex.units import EV_KCAL_PER_MOL

    steps = [r for r in study.tables.get("chalcohalide", []) if r.get("dE_step_kcal_mol") is not None]
    if len(steps) < 2:
        return []
    first = steps[0]
    other = min(steps[1:], key=lambda r: r["dE_step_kcal_mol"])
    coeff: dict[str, float] = {}
    for row, sign in ((first, 1.0), (other, -1.0)):  # ΔE_step ∝ (E_model − E_from) / x_step
        for name, c in ((row["model"], 1.0), (row.get("from_model"), -1.0)):
            coeff[str(name)] = coeff.get(str(name), 0.0) + sign * c * EV_KCAL_PER_MOL / row["x_step"]
    sd, dof = _pooled_replica_sd(study.tables.get("chalcohalide", []))
    r = _energy_combination(first["dE_step_kcal_mol"] - other["dE_step_kcal_mol"], list(coeff.values()), sd, dof)
    return [_row("chalcohalide", f"the first step (to {first['percent']:g} %) is the most favourable: "
                 f"ΔE_step(first) − ΔE_step(to {other['percent']:g} %) < 0", r, "negative", _replica_method(sd, dof))]


def _alloy(study) -> list[dict[str, Any]]:
    rows_t = study.tables.get("alloy", [])
    rand = [r["dE_kcal_mol"] for r in rows_t if r["pattern"] == "random"]
    ordered = {r["pattern"]: r["dE_kcal_mol"] for r in rows_t if r["pattern"] != "random"}
    method = (f"t prediction interval: one ordered configuration against {len(rand)} random alloys, whose spread "
              "measures the configuration-to-configuration noise")
    out = [_row("alloy", f"the ordered pattern {p} lies below the random alloy: ΔE({p}) − mean ΔE(random) < 0",
                prediction_difference(e, rand), "negative", method) for p, e in ordered.items()]
    if len(ordered) >= 2:
        (p1, e1), (p2, e2) = sorted(ordered.items(), key=lambda kv: kv[1])[:2]
        out.append(_row("alloy", f"{p1} is the lowest ordered pattern: ΔE({p1}) − ΔE({p2}) < 0",
                        prediction_difference(e1 - e2, rand, single=True), "negative",
                        f"t interval of two single configurations, s from {len(rand)} random alloys"))
    return out


def study_conclusions(study) -> list[dict[str, Any]]:
    """The conclusions one study can answer, as table rows (module doc for the method and rule).

    Parameters
    ----------
    study
        A finished :class:`~halex.studies.exchange.Study`.

    Returns
    -------
    list of dict
        ``study``, ``question``, ``value_kcal_mol``, ``se_kcal_mol``, ``ci95_low_kcal_mol``,
        ``ci95_high_kcal_mol``, ``n_noise_samples``, ``method``, ``verdict``; after rescoring
        (:mod:`halex.studies.rescore`) also ``value_by_engine``, ``engine_spread_kcal_mol`` and
        ``engines_agree``, and a verdict of *holds* or *reversed* becomes *not resolved at this
        noise* when another engine puts the value on the other side of zero.
    """
    rows = {"layers": _layers, "chalcohalide": _chalcohalide, "alloy": _alloy}.get(study.name, lambda s: [])(study)
    rescored = (study.meta or {}).get("rescore", {}).get("conclusions")
    if rescored:
        primary = str((study.meta.get("engine") or {}).get("name", "study engine"))
        rows = [_with_engines(r, i, primary, rescored) for i, r in enumerate(rows)]
    return rows


def _with_engines(row: dict[str, Any], i: int, primary: str, rescored: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A conclusion row with each engine's value, their spread, and the verdict withdrawn where an engine
    puts the value on the other side of zero (or answers another question)."""
    values: dict[str, float | None] = {primary: row["value_kcal_mol"]}
    for name, answers in rescored.items():
        a = answers[i] if i < len(answers) else None
        values[name] = a["value_kcal_mol"] if a is not None and a["question"] == row["question"] else None
    nums = [v for v in values.values() if v is not None]
    out = {**row, "value_by_engine": "; ".join(f"{k} {'another question' if v is None else format(v, '+.3g')}"
                                               for k, v in values.items()),
           "engine_spread_kcal_mol": float(max(nums) - min(nums)) if len(nums) == len(values) else None}
    differ = [k for k, v in values.items() if v is None or (v > 0) != (row["value_kcal_mol"] > 0)]
    out["engines_agree"] = not differ
    if differ and row["verdict"] in ("holds", "reversed"):
        out["verdict"] = "not resolved at this noise"
        out["method"] = f"{row['method']}; withdrawn: {', '.join(differ)} put(s) the value on the other side of 0"
    return out
