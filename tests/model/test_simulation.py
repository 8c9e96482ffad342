"""Closed-form cases of the model and the Dataset contract."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import with_changes

from simulator import simulate

N = 20_000

# Parameters that switch off every death, progression and relapse
NO_HAZARDS = {
    "progression_rate_refractory": 0.0, "death_rate_other": 0.0, "relapse_rate_remission": 0.0,
    "fatal_toxicity_given_sae": 0.0, "sos_fatal_prob": 0.0, "nrm_rate": 0.0,
    "relapse_rate_post_hsct": 0.0,
}

REQUIRED = ("cumulative_dose", "cycles", "doses_given", "starting_dose", "best_response",
            "response_cycle", "response_day", "mrd_negative", "grade3_ae", "serious_ae",
            "discontinued_ae", "hsct", "hsct_day", "sos", "sos_grade", "sos_post_hsct",
            "progression_day", "death_day", "death_cause", "pfs_months", "pfs_event", "os_months",
            "os_event", "age", "salvage", "prior_hsct", "ph_positive", "marrow_blasts",
            "bilirubin_high", "transplant_eligible")


def test_dataset_contract(label):
    ds = simulate(label, n_patients=1000, seed=1)
    assert ds.sizes == {"patient": 1000}
    for name in REQUIRED:
        assert name in ds and "units" in ds[name].attrs, name
    assert ds.cumulative_dose.attrs["units"] == "mg/m2"
    assert '"name":"label_dosing"' in ds.attrs["scenario"]


def test_certain_response_in_cycle1(label):
    s = with_changes(label, parameters={**NO_HAZARDS, "resp_intercept_cycle1": 60.0,
                                        "resp_sensitivity_sd": 0.0})
    ds = simulate(s, n_patients=N, seed=2)
    assert (ds.best_response == 1).all() and (ds.response_cycle == 1).all()


def test_cap_of_one_cycle(label):
    """With every cycle-1 dose given, a 1.8 mg/m2 cap leaves no room for a second cycle.

    (With omissions a patient may top up to the cap in cycle 2: the cap forbids any
    dose that would exceed it, not a second cycle; see test_cap_is_never_exceeded.)
    """
    s = with_changes(label, regimen={"cumulative_cap": 1.8}, parameters={"dose_omission_prob": 0.0})
    ds = simulate(s, n_patients=N, seed=3)
    assert ds.cycles.max() == 1
    assert ds.cumulative_dose.max() <= 1.8 + 1e-12


@pytest.mark.parametrize("cap", [0.8, 2.6, 3.3, 5.0])
def test_cap_is_never_exceeded(label, cap):
    ds = simulate(with_changes(label, regimen={"cumulative_cap": cap}), n_patients=5000, seed=4)
    assert ds.cumulative_dose.max() <= cap + 1e-9


def test_no_eligibility_no_transplant(label):
    s = with_changes(label, population={"transplant_eligibility": {"at_age_40": 0.0,
                                                                   "odds_ratio_per_decade": 1.0}})
    ds = simulate(s, n_patients=N, seed=5)
    assert ds.transplant_eligible.sum() == 0 and ds.hsct.sum() == 0
    assert ds.sos_post_hsct.sum() == 0 and (ds.death_cause != 2).all()


def test_zero_hazards_no_deaths(label):
    ds = simulate(with_changes(label, parameters=NO_HAZARDS), n_patients=N, seed=6)
    assert ds.os_event.sum() == 0 and (ds.death_cause == 0).all()
    assert np.allclose(ds.os_months * 30.4375, ds.censor_day)


def test_label_dosing_cumulative_doses_are_sums_of_label_doses(label):
    """Without omissions or reductions every dose total is a label schedule's sum."""
    s = with_changes(label, parameters={"dose_omission_prob": 0.0, "dose_reduction_given_g3ae": 0.0})
    ds = simulate(s, n_patients=N, seed=7)
    d = ds.cumulative_dose.values
    # 0.8 + 0.5 + 0.5 in cycle 1; any total is a multiple of 0.1 mg/m2
    assert np.allclose(np.round(d * 10), d * 10)
    full_two_cycle_responders = (ds.response_cycle == 1) & (ds.cycles == 2) & (ds.doses_given == 6)
    assert np.allclose(d[full_two_cycle_responders.values], 3.3)


def test_covariate_shares_match_population(label):
    """Shares within 4 binomial standard errors of the configured probabilities."""
    ds = simulate(label, n_patients=N, seed=8)
    pop = label.population
    for name, p in (("prior_hsct", pop.prior_hsct), ("ph_positive", pop.ph_positive),
                    ("bilirubin_high", pop.bilirubin_high)):
        se = np.sqrt(p * (1 - p) / N)
        assert abs(float(ds[name].mean()) - p) < 4 * se, name
    se = np.sqrt(pop.salvage2 * (1 - pop.salvage2) / N)
    assert abs(float((ds.salvage == 2).mean()) - pop.salvage2) < 4 * se
    # age: median 47 and 36.6% aged >= 55 by construction of the beta(1.013, 1.089) on [18, 79]
    share55 = float((ds.age >= 55).mean())
    assert abs(share55 - 0.366) < 4 * np.sqrt(0.366 * 0.634 / N)


def test_more_cycles_more_dose_outcome_not_input(label):
    """The cumulative dose follows from the course: responders go on, non-responders stop."""
    ds = simulate(label, n_patients=N, seed=9)
    assert (ds.cycles.values[ds.best_response.values == 0] <= 3).all()
    assert float(ds.cumulative_dose[ds.best_response == 1].mean()) > float(
        ds.cumulative_dose[ds.best_response == 0].mean())


@pytest.mark.parametrize("name", ["pooled_analysis", "cap_3p3", "low_start_1p2"])
def test_trajectories_are_consistent(name):
    """Event order holds for every patient (checks the kernel on its own, not against the reference)."""
    from conftest import CONFIGS

    from simulator import load_scenario

    scenario = load_scenario(CONFIGS / f"{name}.yaml")
    ds = simulate(scenario, n_patients=50_000, seed=12)
    v = {k: ds[k].values for k in ds.data_vars}

    def before(a, b, strict=False):  # a before b wherever both happened
        both = ~np.isnan(a) & ~np.isnan(b)
        return bool(np.all(a[both] < b[both])) if strict else bool(np.all(a[both] <= b[both]))

    assert before(v["last_dose_day"], v["death_day"])
    assert before(v["last_dose_day"], v["hsct_day"], strict=True)
    assert before(v["response_day"], v["death_day"], strict=True)
    assert before(v["response_day"], v["progression_day"], strict=True)
    assert before(v["hsct_day"], v["death_day"], strict=True)
    assert before(v["hsct_day"], v["relapse_post_hsct_day"], strict=True)
    assert np.all(np.isnan(v["last_dose_day"]) == (v["doses_given"] == 0))
    assert np.all(v["hsct"][v["sos_post_hsct"] == 1] == 1)
    assert np.all((v["sos_post_hsct_grade"] > 0) == (v["sos_post_hsct"] == 1))
    assert np.all(v["hsct"][v["death_cause"] == 3] == 0)  # toxicity deaths happen on treatment
    assert np.all(np.isnan(v["death_day"]) == (v["os_event"] == 0))
    cap = scenario.regimen.cumulative_cap
    if cap is not None:
        assert v["cumulative_dose"].max() <= cap + 1e-9


def test_run_kernel_ids_equals_run_kernel(label):
    """Patients simulated by id (any order, gaps) get exactly their records from run_kernel."""
    from simulator.model.simulation import model_arrays, run_kernel, run_kernel_ids

    arrays = model_arrays(label)
    full_f, full_i = run_kernel(arrays, 7, 1000, 500)
    ids = np.array([1499, 1000, 1250, 1251, 1003])
    got_f, got_i = run_kernel_ids(arrays, 7, ids)
    np.testing.assert_array_equal(got_f, full_f[:, ids - 1000])
    np.testing.assert_array_equal(got_i, full_i[:, ids - 1000])


def test_record_columns_name_every_kernel_row_once_and_make_the_dataset(label):
    """The one reading of the kernel's records: each row of its arrays is one named column (a
    view, not a copy), for 2-D and parameter-set records alike; the user's Dataset holds exactly those."""
    from simulator.model import kernel as K
    from simulator.model.simulation import (
        model_arrays,
        record_columns,
        records_to_dataset,
        run_kernel,
        run_parameter_sets,
    )

    arrays = model_arrays(label)
    out_float, out_int = run_kernel(arrays, 3, 10, 200)
    columns = record_columns(out_float, out_int)
    rows = {name: next(r for r, out in enumerate((*out_float, *out_int)) if np.shares_memory(out, column))
            for name, column in columns.items()}
    assert sorted(rows.values()) == list(range(K.N_FLOAT + K.N_INT))
    assert rows["death_day"] == K.F_DEATH_DAY and rows["salvage"] == K.N_FLOAT + K.I_SALVAGE
    ds = records_to_dataset(out_float, out_int, label, 3, 10)
    assert list(ds.data_vars) == list(columns)
    for name, column in columns.items():
        assert ds[name].dtype == column.dtype and np.array_equal(ds[name].values, column, equal_nan=True), name
    sets_float, sets_int = run_parameter_sets(arrays, np.stack([arrays.par, arrays.par]), 3, 200, 10)
    for name, column in record_columns(sets_float, sets_int).items():
        assert column.shape == (2, 200) and np.array_equal(column[1], columns[name], equal_nan=True), name
