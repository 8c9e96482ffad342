"""The jitted Kaplan-Meier walk and the per-trial reductions, against the numpy estimate and lifelines."""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import restricted_mean_survival_time

from simulator.analysis.outcomes import kaplan_meier, km_median
from simulator.analysis.reductions import km_by_trial, median_by_trial, tied_run


def test_tied_times_and_empty_trials():
    """Ties are one step of the Kaplan-Meier curve; a trial with nobody counted gives NaN."""
    rng = np.random.default_rng(3)
    n = 4 * 50
    time = np.round(rng.exponential(6.0, n))  # whole months: many ties
    event = rng.random(n) < 0.7
    include = np.ones(n, bool)
    include[50:100] = False  # trial 1 is empty
    median, surv, rmst = km_by_trial(time[None], event[None], include[None], 50, np.array([6.0, 12.0]),
                                     np.array([12.0, 24.0]))
    assert np.isnan(median[0, 1]) and np.isnan(surv[0, 1]).all() and np.isnan(rmst[0, 1]).all()
    for r in (0, 2, 3):
        t, e = time[r * 50:(r + 1) * 50], event[r * 50:(r + 1) * 50]
        kmf = KaplanMeierFitter().fit(t, e)
        assert median[0, r] == pytest.approx(km_median(t, e)[0], nan_ok=True)
        np.testing.assert_allclose(surv[0, r], kmf.survival_function_at_times([6.0, 12.0]).values, atol=1e-12)
        np.testing.assert_allclose(rmst[0, r], [restricted_mean_survival_time(kmf, t=h) for h in (12.0, 24.0)],
                                   rtol=1e-9)
    values = median_by_trial(time[None], include[None], 50)
    assert np.isnan(values[0, 1]) and values[0, 2] == np.median(time[100:150])


@pytest.mark.parametrize("ties", [False, True])
def test_walk_equals_the_numpy_estimate_to_the_last_bit(ties):
    """S at every event time and the median, from a block with excluded patients (some with NaN
    times), are exactly those of outcomes.kaplan_meier and km_median on the included patients."""
    rng = np.random.default_rng(8)
    n = 300
    time = rng.exponential(9.0, n)
    if ties:
        time = np.round(time)
    event = rng.random(n) < 0.6
    include = rng.random(n) < 0.7
    time[~include & (rng.random(n) < 0.5)] = np.nan
    t, s, _ = kaplan_meier(time[include], event[include])
    median, surv, _ = km_by_trial(time[None], event[None], include[None], n, t, np.array([12.0]))
    np.testing.assert_array_equal(surv[0, 0], s)
    assert median[0, 0] == km_median(time[include], event[include])[0]


def test_tied_run_counts_one_group_and_always_moves_on():
    time = np.array([1.0, 2.0, 2.0, 2.0, 3.0, np.nan, np.nan])
    event = np.array([1, 1, 0, 1, 0, 1, 1], dtype=np.int8)
    group = np.array([0, 1, 1, 0, 1, 0, 0])
    assert tied_run(time, event, group, 1, 1) == (1.0, 2.0, 4)  # patients 1 and 2 of group 1 at t = 2
    assert tied_run(time, event, group, 0, 1) == (1.0, 1.0, 4)
    assert tied_run(time, event, group, 1, 4) == (0.0, 1.0, 5)
    assert tied_run(time, event, group, 0, 5) == (1.0, 1.0, 6)  # a NaN time is a run of its own
