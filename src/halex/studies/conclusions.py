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

__all__ = ["VERDICT_RULE", "VERDICTS", "mean_interval", "prediction_difference", "welch_difference", "verdict",
           "study_conclusions"]

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


ENERGY_UNIT = "kcal/mol per halide"


def _row(study: str, question: str, r: dict[str, Any], expected: str, method: str, unit: str = ENERGY_UNIT) -> dict[str, Any]:
    return {"study": study, "question": question, "value": r["value"], "unit": unit, "se": r["se"],
            "ci95_low": r["low"], "ci95_high": r["high"], "n_noise_samples": r["n"],
            "method": method, "verdict": verdict(r["low"], r["high"], expected=expected)}


def _pooled_replica_sd(rows: list[dict[str, Any]], column: str = "replica_energies_eV") -> tuple[float | None, int]:
    """Pooled standard deviation of the replicas of every model in ``rows`` (eV, or the unit of
    ``column``) and its degrees of freedom; each model counted once."""
    ss, dof, seen = 0.0, 0, set()
    for r in rows:
        if r.get("model") in seen:
            continue
        seen.add(r.get("model"))
        e = [float(v) for v in str(r.get(column) or "").split()]
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


def _replica_method(sd: float | None, dof: int, strain: bool = False) -> str:
    if sd is None:
        return "one relaxation per model: no replicas sample the minimum-to-minimum noise (run with --replicas ≥ 2)"
    what, amount = ("interfacial strain", f"{sd:.3g} % strain") if strain else ("energy", f"{1000 * sd:.0f} meV")
    return (f"t interval; each model's {what} taken to scatter by the replicas' pooled SD {amount} "
            f"({dof} degrees of freedom), the kept lowest replica scatters less")


def _layers(study) -> list[dict[str, Any]]:
    from halex.units import EV_KCAL_PER_MOL

    table = study.tables.get("layers", [])
    by = {(r["start"], r["n_layers"]): r for r in table}
    sd, dof = _pooled_replica_sd(table)
    rows = []
    for d in study.tables.get("layers_difference", []):
        x = by[("interface", d["n_layers"])]["x_total"]  # the same halides exchanged from either end
        r = _energy_combination(d["dE_cum_interface_minus_bottom_kcal_mol"], [EV_KCAL_PER_MOL / x, -EV_KCAL_PER_MOL / x],
                                sd, dof)
        rows.append(_row("layers", f"exchange from the bottom favoured over the interface (N = {d['n_layers']}): "
                         "ΔE_cum(interface) − ΔE_cum(bottom) > 0", r, "positive", _replica_method(sd, dof)))
    return rows + _layers_strain(table, by) + _layers_profile(study)


def _layers_strain(table: list[dict[str, Any]], by: dict) -> list[dict[str, Any]]:
    """Interfacial strain: bottom pathway ≤ pristine < interface pathway, for each N."""
    sd, dof = _pooled_replica_sd(table, "replica_strains_percent")
    method = _replica_method(sd, dof, strain=True)
    p0 = by.get(("none", 0))
    rows = []
    for (start, n), r in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0] != "bottom")):
        if p0 is None or start not in ("interface", "bottom") or r.get("interfacial_strain_percent") is None:
            continue
        value = r["interfacial_strain_percent"] - p0["interfacial_strain_percent"]
        q = (f"the bottom pathway does not raise the interfacial strain (N = {n}): strain(bottom) − strain(pristine) ≤ 0"
             if start == "bottom" else
             f"the interface pathway raises the interfacial strain (N = {n}): strain(interface) − strain(pristine) > 0")
        rows.append(_row("layers", q, _energy_combination(value, [1.0, -1.0], sd, dof),
                         "negative" if start == "bottom" else "positive", method, unit="% strain"))
    return rows


def _slope(layers: np.ndarray, spacing: np.ndarray, level: float = LEVEL) -> dict[str, Any]:
    """Least-squares slope of spacing against layer with its standard error and t interval (n − 2 dof)."""
    from scipy.stats import linregress

    if layers.size < 2:
        return {"value": float("nan"), "se": None, "low": None, "high": None, "n": int(layers.size)}
    fit = linregress(layers, spacing)
    if layers.size < 3:
        return {"value": float(fit.slope), "se": None, "low": None, "high": None, "n": 2}
    h = _t(layers.size - 1, level) * float(fit.stderr)  # _t(n) uses n − 1 dof; a slope has n − 2
    return {"value": float(fit.slope), "se": float(fit.stderr), "low": float(fit.slope - h), "high": float(fit.slope + h),
            "n": int(layers.size)}


def _layers_profile(study) -> list[dict[str, Any]]:
    """Does the in-plane Pb–Pb spacing grow away from the chalcohalide after exchange (slope over perovskite layers)?"""
    struct = study.tables.get("structure", [])
    n_max = max((r["n_layers"] for r in study.tables.get("layers", [])), default=0)
    rows = []
    for start in ("interface", "bottom"):
        name = f"{start}-{n_max}"
        pts = [(r["layer"], r["spacing_A"]) for r in struct
               if r["model"] == name and r["layer"] >= 1 and r.get("spacing_A") is not None and np.isfinite(r["spacing_A"])]
        if len(pts) < 2:
            continue
        lay, sp = (np.asarray(v, float) for v in zip(*pts))
        rows.append(_row("layers", f"after exchange from the {start} (N = {n_max}) the in-plane lattice spacing grows away "
                         "from the chalcohalide: slope of spacing against perovskite layer > 0", _slope(lay, sp), "positive",
                         f"least-squares slope over {len(pts)} perovskite layers, t interval from its residuals "
                         f"({len(pts) - 2} degrees of freedom)", unit="Å per layer"))
    return rows


def _by_seed(steps: list[dict[str, Any]]) -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = {}
    for r in steps:
        out.setdefault(r.get("seed", 0), []).append(r)
    return {k: v for k, v in out.items() if len(v) >= 2}


def _chalcohalide(study) -> list[dict[str, Any]]:
    steps = [r for r in study.tables.get("chalcohalide", []) if r.get("dE_step_kcal_mol") is not None]
    series = _by_seed(steps)
    if not series:
        return []
    first_pct = next(iter(series.values()))[0]["percent"]
    if len(series) >= 2:  # configurational noise sampled: t over the seeds' series
        de = [s[0]["dE_step_kcal_mol"] - min(r["dE_step_kcal_mol"] for r in s[1:]) for s in series.values()]
        rel = [_release(s[0]) - max(_release(r) for r in s[1:]) for s in series.values()]
        method = (f"t interval over {len(series)} seeds of the site choice (each series' value includes its own "
                  "minimum-to-minimum noise)")
        e_r, s_r, m_e, m_s = mean_interval(de), mean_interval(rel), method, method
    else:
        e_r, m_e = _step_difference(steps, "replica_energies_eV")
        s_r, m_s = _step_difference(steps, "replica_strains_percent")
    return [_row("chalcohalide", f"the first step (to {first_pct:g} %) is the most favourable: "
                 "ΔE_step(first) − min ΔE_step(later) < 0", e_r, "negative", m_e),
            _row("chalcohalide", f"the first step (to {first_pct:g} %) releases the most interfacial strain: "
                 "release(first) − max release(later) > 0, release = strain before − after", s_r, "positive", m_s,
                 unit="% strain")]


def _release(r: dict[str, Any]) -> float:
    return float(r["interfacial_strain_before_percent"]) - float(r["interfacial_strain_after_percent"])


def _step_difference(steps: list[dict[str, Any]], column: str) -> tuple[dict[str, Any], str]:
    """One series: first step against the best later one, with the replicas' pooled noise of ``column``."""
    from halex.units import EV_KCAL_PER_MOL

    first = steps[0]
    energy = column == "replica_energies_eV"
    if energy:
        other = min(steps[1:], key=lambda r: r["dE_step_kcal_mol"])
        value = first["dE_step_kcal_mol"] - other["dE_step_kcal_mol"]
    else:
        other = max(steps[1:], key=_release)
        value = _release(first) - _release(other)
    coeff: dict[str, float] = {}
    for row, sign in ((first, 1.0), (other, -1.0)):  # ΔE_step ∝ (E_model − E_from) / x; release = s_from − s_model
        for name, c in ((row["model"], 1.0), (row.get("from_model"), -1.0)):
            c = sign * c * (EV_KCAL_PER_MOL / row["x_step"] if energy else -1.0)
            coeff[str(name)] = coeff.get(str(name), 0.0) + c
    sd, dof = _pooled_replica_sd(steps, column)
    method = _replica_method(sd, dof, strain=not energy)
    return _energy_combination(value, list(coeff.values()), sd, dof), method


def welch_difference(a: Sequence[float], b: Sequence[float], *, level: float = LEVEL) -> dict[str, Any]:
    """``mean(a) − mean(b)`` with the Welch standard error and Welch–Satterthwaite t interval.

    Examples
    --------
    >>> r = welch_difference([1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0, 4.0])
    >>> round(r["value"], 3), round(r["se"], 4)
    (0.0, 0.9129)
    """
    x, y = np.asarray(a, float), np.asarray(b, float)
    d = float(x.mean() - y.mean())
    if x.size < 2 or y.size < 2:
        return {"value": d, "se": None, "low": None, "high": None, "n": int(x.size + y.size)}
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = float(np.sqrt(vx + vy))
    if se == 0:
        return {"value": d, "se": 0.0, "low": d, "high": d, "n": int(x.size + y.size)}
    nu = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    from scipy.stats import t

    h = float(t.ppf(0.5 + level / 2, nu)) * se
    return {"value": d, "se": se, "low": d - h, "high": d + h, "n": int(x.size + y.size)}


def _alloy(study) -> list[dict[str, Any]]:
    rows_t = study.tables.get("alloy", [])
    rand = [r["dE_kcal_mol"] for r in rows_t if r["pattern"] == "random"]
    ordered: dict[str, list[float]] = {}
    for r in rows_t:
        if r["pattern"] != "random":
            ordered.setdefault(r["pattern"], []).append(r["dE_kcal_mol"])
    out = []
    for p, v in ordered.items():
        if len(v) >= 2:
            res, method = welch_difference(v, rand), (f"Welch t interval: {len(v)} plane choices of {p} against "
                                                      f"{len(rand)} random alloys")
        else:
            res, method = prediction_difference(v[0], rand), (f"t prediction interval: one ordered configuration against "
                                                              f"{len(rand)} random alloys, whose spread measures the "
                                                              "configuration-to-configuration noise")
        out.append(_row("alloy", f"the ordered pattern {p} lies below the random alloy: ΔE({p}) − mean ΔE(random) < 0",
                        res, "negative", method))
    if len(ordered) >= 2:
        (p1, v1), (p2, v2) = sorted(ordered.items(), key=lambda kv: float(np.mean(kv[1])))[:2]
        if len(v1) >= 2 and len(v2) >= 2:
            res, method = welch_difference(v1, v2), "Welch t interval over the two patterns' plane choices"
        else:
            res = prediction_difference(float(np.mean(v1) - np.mean(v2)), rand, single=True)
            method = f"t interval of two single configurations, s from {len(rand)} random alloys"
        out.append(_row("alloy", f"{p1} is the lowest ordered pattern: ΔE({p1}) − ΔE({p2}) < 0", res, "negative", method))
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
        ``study``, ``question``, ``value``, ``unit``, ``se``, ``ci95_low``, ``ci95_high``,
        ``n_noise_samples``, ``method``, ``verdict``; after rescoring
        (:mod:`halex.studies.rescore`) also ``value_by_engine``, ``engine_spread`` and
        ``engines_agree``, and a verdict of *holds* or *reversed* becomes *not resolved at this
        noise* when another engine puts the value on the other side of zero.
    """
    rows = {"layers": _layers, "chalcohalide": _chalcohalide, "alloy": _alloy}.get(study.name, lambda s: [])(study)
    rescored = (study.meta or {}).get("rescore", {}).get("conclusions")
    if rescored:
        primary = str((study.meta.get("engine") or {}).get("name", "study engine"))
        rows = [_with_engines(r, primary, rescored) for r in rows]
    return rows


def _with_engines(row: dict[str, Any], primary: str, rescored: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A conclusion row with each engine's value, their spread, and the verdict withdrawn where an engine
    puts the value on the other side of zero (or does not answer the question).

    Each engine's answer is found by the question's text, so a question one engine cannot answer
    leaves the others' answers in place."""
    values: dict[str, float | None] = {primary: row["value"]}
    for name, answers in rescored.items():
        by_question = {a["question"]: a["value"] for a in answers}
        values[name] = by_question.get(row["question"])
    nums = [v for v in values.values() if v is not None]
    out = {**row, "value_by_engine": "; ".join(f"{k} {'no answer' if v is None else format(v, '+.3g')}"
                                               for k, v in values.items()),
           "engine_spread": float(max(nums) - min(nums)) if len(nums) == len(values) else None}
    differ = [k for k, v in values.items() if v is None or (v > 0) != (row["value"] > 0)]
    out["engines_agree"] = not differ
    if differ and row["verdict"] in ("holds", "reversed"):
        out["verdict"] = "not resolved at this noise"
        out["method"] = f"{row['method']}; withdrawn: {', '.join(differ)} put(s) the value on the other side of 0"
    return out
