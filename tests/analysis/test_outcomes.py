"""Summaries against independent implementations (lifelines, scipy)."""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from scipy import stats

from simulator import simulate, summarize
from simulator.analysis.outcomes import (
    clopper_pearson,
    cox_hazard_ratio,
    cumulative_incidence,
    kaplan_meier,
    km_median,
    km_median_of_runs,
    km_survival_at,
    median_ci,
    median_ci_of_runs,
    protocol_pfs,
    remission_duration,
)
from simulator.model import kernel as K
from simulator.model.kernel import MONTH


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (82, 161), (160, 177)])
def test_clopper_pearson_matches_scipy(k, n):
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    assert np.allclose(clopper_pearson(k, n), (ci.low, ci.high), atol=1e-12)


def test_km_matches_lifelines_on_simulated_data(label):
    ds = simulate(label, n_patients=3000, seed=21)
    for var, ev in (("os_months", "os_event"), ("pfs_months", "pfs_event")):
        t, e = ds[var].values, ds[ev].values.astype(bool)
        kmf = KaplanMeierFitter().fit(t, e)
        times, surv, _ = kaplan_meier(t, e)
        ref = kmf.survival_function_at_times(times).values
        np.testing.assert_allclose(surv, ref, rtol=0, atol=1e-12)
        assert km_median(t, e)[0] == pytest.approx(kmf.median_survival_time_, abs=1e-12)


def test_km_median_interval_contains_estimate_and_shrinks():
    rng = np.random.default_rng(0)
    widths = []
    for n in (200, 3200):
        t = rng.exponential(10.0, n)
        c = rng.uniform(0, 40, n)
        med, lo, hi = km_median(np.minimum(t, c), t <= c)
        assert lo <= med <= hi
        widths.append(hi - lo)
    # width scales as 1/sqrt(n): 16x the patients, about 1/4 the width
    assert 0.15 < widths[1] / widths[0] < 0.4


def test_km_median_coverage_of_exponential_truth():
    """Brookmeyer-Crowley intervals cover the true median ~95% of the time.

    200 replicates; the number covering is Binomial(200, 0.95): mean 190, SD 3.1.
    We accept 175 or more (4.8 SD below the mean).
    """
    rng = np.random.default_rng(1)
    truth = 10.0 * np.log(2)
    covered = 0
    for _ in range(200):
        t = rng.exponential(10.0, 300)
        c = rng.uniform(0, 60, 300)
        _, lo, hi = km_median(np.minimum(t, c), t <= c)
        covered += lo <= truth <= hi
    assert covered >= 175


def test_km_survival_at_exponential():
    rng = np.random.default_rng(2)
    t = rng.exponential(12.0, 20_000)
    s, lo, hi = km_survival_at(t, np.ones_like(t, dtype=bool), 12.0)
    # binomial SE of S(12) = sqrt(e^-1 (1 - e^-1) / 20000) = 0.0034; allow 4 SE
    assert abs(s - np.exp(-1)) < 4 * 0.0034 and lo < s < hi


def test_median_ci_order_statistics():
    x = np.arange(1, 102, dtype=float)  # median 51
    med, lo, hi = median_ci(x)
    assert med == 51 and lo < 51 < hi


def test_summarize_groups_by_realised_dose(label):
    ds = simulate(label, n_patients=5000, seed=22)
    summary = summarize(ds, cutoff=3.3)
    sizes = dict(zip(summary.group.values, summary.group_size.values))
    assert sizes["le"] == int((ds.cumulative_dose <= 3.3 + 1e-9).sum())
    assert sizes["le"] + sizes["gt"] == sizes["all"] == 5000
    cr = summary.estimate.sel(metric="cr_cri")
    low = ds.cumulative_dose.values <= 3.3 + 1e-9
    assert float(cr.sel(group="le")) == pytest.approx(ds.best_response.values[low].mean())
    row = summary.sel(metric="cr_cri", group="all")
    assert float(row.lower) < float(row.estimate) < float(row.upper)


def test_cumulative_incidence_matches_lifelines_aalen_johansen():
    from lifelines import AalenJohansenFitter

    rng = np.random.default_rng(3)
    n = 4000
    t1, t2, c = rng.exponential(10, n), rng.exponential(20, n), rng.uniform(0, 30, n)
    time = np.minimum.reduce([t1, t2, c])
    cause = np.where(time == t1, 1, np.where(time == t2, 2, 0))
    ajf = AalenJohansenFitter(calculate_variance=False).fit(time, cause, event_of_interest=1)
    for at in (5.0, 12.0, 25.0):
        ref = float(ajf.cumulative_density_.loc[:at].iloc[-1, 0])
        assert cumulative_incidence(time, cause, at) == pytest.approx(ref, abs=1e-10)
    # analytic: CIF_1(t) = 10^-1 / (10^-1 + 20^-1) (1 - exp(-(0.15) t)); n = 4000 gives
    # SE about 0.008 at t = 12, so allow 4 SE
    truth = (0.1 / 0.15) * (1 - np.exp(-0.15 * 12))
    assert abs(cumulative_incidence(time, cause, 12.0) - truth) < 4 * 0.008


def _tied_survival_data(seed: int = 1, n: int = 300):
    """Exponential times (hazard ratio 0.5) and uniform censoring, rounded to quarters: many ties."""
    rng = np.random.default_rng(seed)
    group = rng.random(n) < 0.4
    t = np.round(rng.exponential(1 / np.where(group, 0.5, 1.0)) * 4) / 4 + 0.25
    c = np.round(rng.uniform(0, 4, n) * 4) / 4 + 0.25
    return np.minimum(t, c), t <= c, group


def test_cox_efron_matches_lifelines_with_ties():
    import pandas as pd
    from lifelines import CoxPHFitter

    time, event, group = _tied_survival_data()
    hr = cox_hazard_ratio(time, event, group)
    ref = CoxPHFitter().fit(pd.DataFrame({"t": time, "e": event, "g": group.astype(float)}), "t", "e",
                            fit_options={"precision": 1e-12})
    lo, hi = np.exp(ref.confidence_intervals_.values[0])
    np.testing.assert_allclose([hr.estimate, hr.lower, hr.upper, hr.log_se],
                               [ref.hazard_ratios_["g"], lo, hi, ref.standard_errors_["g"]], rtol=1e-6)
    assert (hr.events, hr.patients) == (int(event.sum()), len(time))


def test_cox_breslow_matches_statsmodels_with_ties():
    from statsmodels.duration.hazard_regression import PHReg

    time, event, group = _tied_survival_data(seed=2)
    hr = cox_hazard_ratio(time, event, group, ties="breslow")
    ref = PHReg(time, group.astype(float)[:, None], status=event.astype(int), ties="breslow").fit()
    np.testing.assert_allclose([hr.estimate, hr.log_se], [np.exp(ref.params[0]), ref.bse[0]], rtol=1e-8)
    # Efron and Breslow differ only through the ties
    assert cox_hazard_ratio(time, event, group).estimate != pytest.approx(hr.estimate, rel=1e-3)
    untied = time + np.arange(len(time)) * 1e-9
    assert cox_hazard_ratio(untied, event, group).estimate == pytest.approx(
        cox_hazard_ratio(untied, event, group, ties="breslow").estimate, rel=1e-12)


def test_cox_without_events_in_a_group_is_nan_and_ties_are_checked():
    time = np.array([1.0, 2.0, 3.0, 4.0])
    hr = cox_hazard_ratio(time, np.array([True, True, False, False]), np.array([False, False, True, True]))
    assert np.isnan(hr.estimate) and hr.events == 2
    monotone = cox_hazard_ratio(time, np.ones(4, dtype=bool), np.array([True, True, False, False]))
    assert np.isnan(monotone.estimate) and monotone.events == 4
    with pytest.raises(ValueError, match="ties"):
        cox_hazard_ratio(time, time > 1, time > 2, ties="exact")


def test_protocol_pfs_and_remission_duration_by_hand():
    nan = np.nan
    d = {  # never responds, progresses late | progresses during treatment | responder | responder, dies
        #      | another treatment without CR/CRi: new induction on the day it ended, not after its last InO dose
        "best_response": np.array([0, 0, 1, 1, 0]),
        "response_day": np.array([nan, nan, 30.0, 30.0, nan]),
        "last_dose_day": np.array([14.0, 7.0, 100.0, 60.0, nan]),
        "treatment_end_day": np.array([28.0, 10.0, 100.0, 90.0, 49.0]),
        "treatment": np.array([K.TREAT_INO] * 4 + [K.TREAT_CHEMO]),
        "progression_day": np.array([200.0, 10.0, nan, nan, 80.0]),
        "death_day": np.array([300.0, 40.0, nan, 90.0, 120.0]),
        "censor_day": np.array([700.0, 700.0, 500.0, 700.0, 700.0]),
    }
    time, event = protocol_pfs(d)
    np.testing.assert_allclose(time, np.array([14.0 + 14.0, 10.0, 500.0, 90.0, 49.0]) / MONTH)
    np.testing.assert_array_equal(event, [True, True, False, True, True])
    time, event = remission_duration(d)
    np.testing.assert_allclose(time[2:4], np.array([470.0, 60.0]) / MONTH)
    np.testing.assert_array_equal(event[2:4], [False, True])
    assert np.isnan(time[[0, 1, 4]]).all()


def test_protocol_pfs_differs_only_for_patients_without_cr_cri(label):
    ds = simulate(label, n_patients=3000, seed=4)
    time, event = protocol_pfs(ds)
    recorded, recorded_event = ds["pfs_months"].values, ds["pfs_event"].values == 1
    responders = ds["best_response"].values == 1
    np.testing.assert_allclose(time[responders], recorded[responders], rtol=1e-12)
    np.testing.assert_array_equal(event[responders], recorded_event[responders])
    assert (time[~responders] <= recorded[~responders] + 1e-12).all() and event[~responders].all()
    assert (time[~responders] < recorded[~responders] - 1e-9).sum() > 0.1 * (~responders).sum()


@pytest.mark.parametrize("seed", range(40))
def test_estimators_of_sorted_runs_equal_the_one_pass_ones_exactly(seed):
    """The streaming forms (a k-way merge in blocks) give the same floating-point numbers, ties included."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 2000))
    time = rng.integers(0, 30, n).astype(float) if seed % 2 else rng.exponential(5.0, n)  # ties, or none
    event = rng.random(n) < rng.random()
    runs = []
    for part in np.split(np.arange(n), np.sort(rng.integers(0, n + 1, int(rng.integers(0, 8))))):
        order = np.argsort(time[part], kind="stable")
        runs.append((time[part][order], event[part][order]))
    block = int(rng.integers(1, 40))  # tiny blocks: many merge steps, ties at their edges
    np.testing.assert_array_equal(km_median_of_runs(runs, block=block), km_median(time, event))
    np.testing.assert_array_equal(median_ci_of_runs(runs, block=block), median_ci(time))
