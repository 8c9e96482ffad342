"""The guarantee-time-biased "> 3 vs <= 3 cycles" analysis: selection, Cox fit, and the first look."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import with_changes
from lifelines import CoxPHFitter
from scipy import stats

from simulator import simulate
from simulator.analysis.continuation import (
    continuation_analysis,
    continuation_rows,
    responders_without_hsct,
)
from simulator.analysis.outcomes import cox_hazard_ratio, remission_duration
from simulator.analysis.targets import format_rows, load_evidence
from simulator.model.kernel import MONTH

NAN = np.nan
# (best_response, hsct, cycles, response_day, progression_day, death_day, censor_day, mrd_negative)
TINY = [
    (1, 0, 5, 30.0, 200.0, 260.0, 700.0, 1),  # selected, > 3: relapse at day 200
    (1, 0, 3, 30.0, NAN, 100.0, 700.0, 0),    # selected, <= 3: death in remission at day 100
    (1, 1, 2, 30.0, 90.0, NAN, 700.0, 1),     # transplanted after relapse: left out
    (0, 0, 3, NAN, 60.0, 80.0, 700.0, 0),     # no CR/CRi: left out
    (1, 0, 4, 51.0, NAN, NAN, 500.0, 1),      # selected, > 3: in remission at the cut-off (day 500)
    (1, 0, 1, 21.0, 300.0, 330.0, 700.0, 1),  # selected, <= 3: relapse at day 300
    (1, 0, 6, 21.0, 400.0, NAN, 700.0, 0),    # selected, > 3: relapse at day 400
]
FIELDS = ("best_response", "hsct", "cycles", "response_day", "progression_day", "death_day", "censor_day",
          "mrd_negative")


def tiny_dataset() -> xr.Dataset:
    columns = dict(zip(FIELDS, map(np.array, zip(*TINY))))
    return xr.Dataset({k: ("patient", v) for k, v in columns.items()}, coords={"patient": np.arange(len(TINY))})


def test_selection_grouping_and_remission_duration_by_hand():
    ds = tiny_dataset()
    np.testing.assert_array_equal(responders_without_hsct(ds), [1, 1, 0, 0, 1, 1, 1])
    time, event = remission_duration(ds)
    keep = [0, 1, 4, 5, 6]
    np.testing.assert_allclose(time[keep], np.array([170.0, 70.0, 449.0, 279.0, 379.0]) / MONTH)
    np.testing.assert_array_equal(event[keep], [True, True, False, True, True])
    r = continuation_analysis(ds)
    assert r.patients == 7
    assert (r.responders_without_hsct.k, r.responders_without_hsct.n) == (5, 6)
    assert (r.more_cycles.k, r.more_cycles.n) == (3, 5)
    assert (r.mrd_more_cycles.k, r.mrd_more_cycles.n) == (2, 3)
    assert (r.mrd_fewer_cycles.k, r.mrd_fewer_cycles.n) == (1, 2)
    expected = cox_hazard_ratio(time[keep], event[keep], np.array([True, False, True, False, True]))
    assert r.hazard_ratio == expected
    assert r.hazard_ratio.events == 4 and 0.0 < r.hazard_ratio.estimate < np.inf


@pytest.fixture(scope="module")
def first_look(label):
    """The S7 analysis on INO-VATE-like patients (label_dosing.yaml is the pooled scenario's
    ``inovate`` cohort), with the fitted relapse-on-treatment effect and without it."""
    fitted = label.parameters.relapse_on_treatment
    assert fitted < 0.0  # the shipped model has a protective effect: the test compares it with none
    return {name: simulate(with_changes(label, parameters={"relapse_on_treatment": value}), N_FIRST_LOOK,
                           seed=2025) for name, value in (("fitted", fitted), ("none", 0.0))}


# At 200,000 patients the log HR has a Monte Carlo SE of 0.008 (HR 0.29 with the effect, 0.28
# without); the SE scales as 1 / sqrt(N), so at 5,000 patients it is about 0.05 and the upper
# 95% bound (about 0.33) lies more than ten SEs below 0.6. The MRD gap (about 39 points) has an
# SE of about 2 points at this N.
N_FIRST_LOOK = 5_000


def test_hazard_ratio_matches_lifelines_on_simulated_selection(first_look):
    ds = first_look["fitted"]
    selected = responders_without_hsct(ds)
    time, event = remission_duration(ds)
    more = ds["cycles"].values[selected] > 3
    ref = CoxPHFitter().fit(pd.DataFrame({"t": time[selected], "e": event[selected], "g": more.astype(float)}),
                            "t", "e", fit_options={"precision": 1e-12})
    hr = continuation_analysis(ds).hazard_ratio
    lo, hi = np.exp(ref.confidence_intervals_.values[0])
    np.testing.assert_allclose([hr.estimate, hr.lower, hr.upper], [ref.hazard_ratios_["g"], lo, hi], rtol=1e-6)


@pytest.mark.parametrize("effect", ["fitted", "none"])
def test_hazard_ratio_well_below_one_with_or_without_an_on_treatment_effect(first_look, effect):
    r = continuation_analysis(first_look[effect])
    assert r.hazard_ratio.log_se < 0.07
    assert r.hazard_ratio.upper < 0.6
    assert r.mrd_more_cycles.estimate - r.mrd_fewer_cycles.estimate > 0.25


def test_rows_set_simulated_beside_published(first_look):
    evidence = load_evidence()
    result = continuation_analysis(first_look["fitted"])
    rows = continuation_rows(result, evidence)
    by_figure = {r.figure: r for r in rows}
    hr = by_figure["remission-duration HR, > 3 vs <= 3 cycles"]
    assert (hr.simulated, hr.simulated_interval) == (result.hazard_ratio.estimate,
                                                     (result.hazard_ratio.lower, result.hazard_ratio.upper))
    published = evidence.continuing_ino_in_remission.remission_duration_hazard_ratio
    # the published interval is the Wald interval the published p implies
    se = math.log(hr.published_interval[1] / hr.published_interval[0]) / (2 * stats.norm.ppf(0.975))
    assert 2 * stats.norm.sf(abs(math.log(published.value)) / se) == pytest.approx(published.p, rel=1e-9)
    mrd = by_figure["MRD negativity, <= 3 cycles"]
    assert mrd.published == 0.61 and mrd.published_interval == pytest.approx(stats.binomtest(11, 18).proportion_ci(
        method="exact"))
    for r in rows:
        assert r.simulated_interval[0] <= r.simulated <= r.simulated_interval[1]
        assert r.published_interval[0] <= r.published <= r.published_interval[1]
        assert r.source in ("S7", "S7 + S8")
    text = format_rows(rows)
    assert max(len(line) for line in text.splitlines()) <= 100 and "0.35 (0.19-0.63)" in text
    words = " ".join(text.split())
    for r in rows:  # each figure, and how its published interval was derived, below the table
        assert r.figure.split(",")[0] in text and r.note in words
