"""Conclusions of the exchange studies: intervals against analytic cases, verdicts on constructed ones."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import t

from halex.errors import InputError
from halex.studies import Study
from halex.studies.conclusions import mean_interval, prediction_difference, study_conclusions, verdict


def test_mean_interval_is_the_student_t_interval():
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 0.5, 7)
    r = mean_interval(x)
    se = x.std(ddof=1) / np.sqrt(7)
    assert r["se"] == pytest.approx(se) and r["n"] == 7
    assert r["high"] - r["low"] == pytest.approx(2 * t.ppf(0.975, 6) * se)
    assert mean_interval([4.2])["se"] is None  # one sample: no error estimate
    with pytest.raises(InputError):
        mean_interval([])


def test_intervals_cover_the_truth_at_their_nominal_rate():
    """Coverage on Gaussian noise with known truth: 95 % intervals contain the true difference in
    95 ± 2 % of 2000 trials (mean, and one configuration against five)."""
    rng = np.random.default_rng(0)
    hits_mean = hits_pred = 0
    for _ in range(2000):
        sample = rng.normal(1.0, 0.3, 5)
        r = mean_interval(sample)
        hits_mean += r["low"] <= 1.0 <= r["high"]
        single = rng.normal(0.4, 0.3)  # true difference 0.4 − 1.0 = −0.6
        d = prediction_difference(single, sample)
        hits_pred += d["low"] <= -0.6 <= d["high"]
    assert 0.93 < hits_mean / 2000 < 0.97
    assert 0.93 < hits_pred / 2000 < 0.97


@pytest.mark.parametrize(("low", "high", "expected", "want"), [
    (0.1, 0.8, "positive", "holds"), (-0.8, -0.1, "negative", "holds"),
    (-0.8, -0.1, "positive", "reversed"), (0.1, 0.8, "negative", "reversed"),
    (-0.3, 0.5, "positive", "not resolved at this noise"), (None, None, "negative", "no error estimate"),
])
def test_verdicts_on_constructed_cases(low, high, expected, want):
    assert verdict(low, high, expected=expected) == want


def test_alloy_conclusions_from_a_constructed_study():
    rows = [{"pattern": "random", "dE_kcal_mol": v} for v in (1.0, 1.2, 0.8, 1.1, 0.9)]
    rows += [{"pattern": "far-below", "dE_kcal_mol": -2.0}, {"pattern": "within-noise", "dE_kcal_mol": 1.05}]
    concl = study_conclusions(Study("alloy", {"alloy": rows}, {}))
    by = {r["question"].split(" ")[3]: r for r in concl if "lies below" in r["question"]}
    assert by["far-below"]["verdict"] == "holds"
    assert by["within-noise"]["verdict"] == "not resolved at this noise"
    lowest = [r for r in concl if "is the lowest" in r["question"]][0]
    assert lowest["question"].startswith("far-below") and lowest["verdict"] == "holds"
    assert lowest["se"] == pytest.approx(np.std([1.0, 1.2, 0.8, 1.1, 0.9], ddof=1) * np.sqrt(2))


def test_welch_and_slope_intervals_cover_the_truth_at_their_nominal_rate():
    """Welch difference of means (3 plane choices against 5 random alloys, unequal noise) and the
    least-squares slope of a lattice profile over 6 layers: 95 ± 2 % coverage in 2000 trials."""
    from halex.studies.conclusions import _slope, welch_difference

    rng = np.random.default_rng(1)
    layers = np.arange(1.0, 7.0)
    hits_w = hits_s = 0
    for _ in range(2000):
        w = welch_difference(rng.normal(-0.5, 0.6, 3), rng.normal(0.2, 0.2, 5))
        hits_w += w["low"] <= -0.7 <= w["high"]
        s = _slope(layers, 5.9 + 0.01 * layers + rng.normal(0, 0.02, 6))
        hits_s += s["low"] <= 0.01 <= s["high"]
    assert 0.93 < hits_w / 2000 < 0.97
    assert 0.93 < hits_s / 2000 < 0.97
    exact = _slope(layers, 5.9 + 0.01 * layers + np.array([0.01, -0.01, 0.0, 0.01, -0.01, 0.0]))
    fit = np.polyfit(layers, 5.9 + 0.01 * layers + np.array([0.01, -0.01, 0.0, 0.01, -0.01, 0.0]), 1)
    assert exact["value"] == pytest.approx(fit[0]) and exact["n"] == 6


def _layers_tables(strain_int: float, strain_bot: float, spacing_slope: float):
    reps = {"replica_energies_eV": "-1.0 -0.9"}  # every model's replicas differ by 0.1 eV and by 0.1 % strain
    rows = [{"start": "none", "n_layers": 0, "model": "pristine", "x_total": 0, "interfacial_strain_percent": 1.0},
            {"start": "interface", "n_layers": 1, "model": "interface-1", "x_total": 16, "interfacial_strain_percent": strain_int},
            {"start": "bottom", "n_layers": 1, "model": "bottom-1", "x_total": 16, "interfacial_strain_percent": strain_bot}]
    for r in rows:
        s = r["interfacial_strain_percent"]
        r.update(reps, replica_strains_percent=f"{s:.4f} {s + 0.1:.4f}")
    struct = [{"model": m, "layer": k, "spacing_A": 5.9 + spacing_slope * k + 0.002 * (-1) ** k}
              for m in ("interface-1", "bottom-1") for k in range(-2, 6)]
    diff = [{"n_layers": 1, "dE_cum_interface_minus_bottom_kcal_mol": 0.3}]
    return {"layers": rows, "layers_difference": diff, "structure": struct}


def test_layers_strain_and_profile_questions_on_constructed_cases():
    """Strain: each model's replicas differ by 0.1 % (pooled SD 0.0707 %), so SE = 0.0707 √2 = 0.1;
    bottom 0.5 % below pristine holds, interface 0.05 % above it is unresolved. Profile: a slope of
    +0.02 Å per layer over layers 1–5 holds; one of −0.02 is reversed."""
    concl = study_conclusions(Study("layers", _layers_tables(1.05, 0.5, 0.02), {}))
    by = {r["question"].split(":")[0]: r for r in concl}
    bottom = by["the bottom pathway does not raise the interfacial strain (N = 1)"]
    inter = by["the interface pathway raises the interfacial strain (N = 1)"]
    assert bottom["value"] == pytest.approx(-0.5) and bottom["se"] == pytest.approx(0.1, rel=1e-3)
    assert bottom["verdict"] == "holds" and bottom["unit"] == "% strain"
    assert inter["value"] == pytest.approx(0.05) and inter["verdict"] == "not resolved at this noise"
    prof = [r for r in concl if "lattice spacing grows" in r["question"]]
    assert len(prof) == 2 and all(r["verdict"] == "holds" and r["unit"] == "Å per layer" for r in prof)
    assert prof[0]["value"] == pytest.approx(0.02, abs=0.002) and prof[0]["n_noise_samples"] == 5  # layers 1..5 only
    down = study_conclusions(Study("layers", _layers_tables(1.05, 0.5, -0.02), {}))
    assert all(r["verdict"] == "reversed" for r in down if "lattice spacing grows" in r["question"])


def test_chalcohalide_questions_over_seeds():
    """Three seeds' series: the value is the mean of each series' (first − best later) difference, the
    SE their standard deviation / √3; the strain release likewise."""
    rows = []
    for k, (a, b, c) in enumerate([(-3.0, -1.0, -0.5), (-2.5, -1.2, -0.4), (-2.8, -0.9, -1.1)]):
        for p, de, before, after in ((20.0, a, 2.0, 1.2), (60.0, b, 1.2, 1.0), (100.0, c, 1.0, 0.9 - 0.1 * k)):
            rows.append({"seed": k, "percent": p, "model": f"m{p}-{k}", "from_model": "x", "x_step": 4,
                         "dE_step_kcal_mol": de, "interfacial_strain_before_percent": before,
                         "interfacial_strain_after_percent": after})
    concl = study_conclusions(Study("chalcohalide", {"chalcohalide": rows}, {}))
    energy, strain = concl
    d = np.array([-3.0 - -1.0, -2.5 - -1.2, -2.8 - -1.1])
    assert energy["value"] == pytest.approx(d.mean()) and energy["se"] == pytest.approx(d.std(ddof=1) / np.sqrt(3))
    assert energy["verdict"] == "holds" and "3 seeds" in energy["method"]
    # release 0.8 in the first step; the best later one 0.2, 0.2, 0.3 (the last step releases 0.1 + 0.1 k)
    assert strain["value"] == pytest.approx(np.mean([0.6, 0.6, 0.5])) and strain["verdict"] == "holds"
    assert strain["unit"] == "% strain"


def test_ordered_patterns_with_several_plane_choices_use_welch():
    rows = [{"pattern": "random", "dE_kcal_mol": v} for v in (1.0, 1.2, 0.8, 1.1, 0.9)]
    rows += [{"pattern": "planes", "dE_kcal_mol": v} for v in (-1.0, -1.3, -0.8)]
    (below,) = [r for r in study_conclusions(Study("alloy", {"alloy": rows}, {})) if "lies below" in r["question"]]
    v, w = np.var([-1.0, -1.3, -0.8], ddof=1) / 3, np.var([1.0, 1.2, 0.8, 1.1, 0.9], ddof=1) / 5
    assert below["se"] == pytest.approx(np.sqrt(v + w)) and "Welch" in below["method"] and below["verdict"] == "holds"


def test_layers_figure_has_replica_error_bars_on_energy_and_strain():
    """Each start in one colour on both panels; the cumulative and step ΔE carry √2·SD/x error bars
    (kcal/mol per halide) and the strain the replicas' pooled strain SD; one replica: none."""
    from halex.studies.output import _layers_figure
    from halex.units import EV_KCAL_PER_MOL

    def row(start, n, e, strain, reps, strains):
        return {"start": start, "n_layers": n, "model": f"{start}-{n}", "x_step": 10, "x_total": 10 * max(n, 1),
                "dE_cum_kcal_mol": e, "dE_step_kcal_mol": e, "interfacial_strain_percent": strain,
                "replica_energies_eV": reps, "replica_strains_percent": strains}

    rows = [row("none", 0, None, 1.0, "0.0 0.2", "1.0 1.4"), row("interface", 1, 1.0, 3.0, "5.0 5.2", "3.0 3.4"),
            row("bottom", 1, 0.5, 1.5, "6.0 6.2", "1.5 1.9")]
    fig = _layers_figure({"layers": rows})
    ax1, ax2 = fig.axes[:2]
    sd_e, sd_s = np.sqrt(0.02), np.sqrt(0.08)  # pooled over three models of two replicas each
    bars = [c for c in ax1.containers if c.has_yerr]
    assert len(bars) == 4
    seg = bars[0].lines[2][0].get_segments()[0]
    assert seg[1][1] - seg[0][1] == pytest.approx(2 * sd_e * np.sqrt(2) * EV_KCAL_PER_MOL / 10)
    strain_bars = [c for c in ax2.containers if c.has_yerr]
    assert len(strain_bars) == 2
    seg = strain_bars[0].lines[2][0].get_segments()[0]
    assert seg[1][1] - seg[0][1] == pytest.approx(2 * sd_s)
    colours = {tuple(c.lines[0].get_color()) if not isinstance(c.lines[0].get_color(), str) else c.lines[0].get_color()
               for c in ax2.containers}
    assert len(colours) == 2
    single = [{**r, "replica_energies_eV": "1.0", "replica_strains_percent": "1.0"} for r in rows]
    fig = _layers_figure({"layers": single})
    assert not any(c.has_yerr for ax in fig.axes[:2] for c in ax.containers)
