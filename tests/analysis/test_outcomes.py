"""Summaries against independent implementations (lifelines, scipy)."""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from scipy import stats

from simulator import simulate, summarize
from simulator.analysis.outcomes import (
    clopper_pearson,
    cumulative_incidence,
    kaplan_meier,
    km_median,
    km_median_of_runs,
    km_survival_at,
    median_ci,
    median_ci_of_runs,
)


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
