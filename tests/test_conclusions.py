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
    assert lowest["se_kcal_mol"] == pytest.approx(np.std([1.0, 1.2, 0.8, 1.1, 0.9], ddof=1) * np.sqrt(2))
