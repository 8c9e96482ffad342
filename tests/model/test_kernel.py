"""The numba kernel against the plain-Python reference, and its random numbers."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from conftest import CONFIGS, SCENARIOS, with_changes
from reference import simulate_reference
from reference import uniform as reference_uniform

from simulator import load_scenario, simulate
from simulator.model import kernel as K
from simulator.model.simulation import model_arrays

N_REFERENCE = 1000


@pytest.mark.parametrize("name", SCENARIOS)
def test_kernel_equals_reference(name):
    scenario = load_scenario(CONFIGS / f"{name}.yaml")
    ds = simulate(scenario, n_patients=N_REFERENCE, seed=11)
    ref = simulate_reference(model_arrays(scenario), seed=11, n=N_REFERENCE)
    assert set(ref[0]) <= set(ds.data_vars)
    for field in ref[0]:
        expected = np.array([r[field] for r in ref])
        np.testing.assert_array_equal(ds[field].values, expected, err_msg=field)


def test_reference_agrees_on_edge_cases(label):
    """Cap, zero doses, certain response, no eligibility and a Weibull relapse clock exercise rare branches."""
    scenario = with_changes(
        label,
        regimen={"cumulative_cap": 2.6, "later_doses_in_cr": [0.0, 0.5, 0.5], "hsct_cycles": 1},
        parameters={"resp_intercept_cycle1": 3.0, "dose_omission_prob": 0.5, "death_rate_other": 0.05,
                    "relapse_shape": 1.8},
        population={"transplant_eligibility": {"at_age_40": 1.0, "odds_ratio_per_decade": 1.0}},
    )
    ds = simulate(scenario, n_patients=500, seed=3, first_patient=10**9)
    ref = simulate_reference(model_arrays(scenario), seed=3, n=500, first_patient=10**9)
    for field in ref[0]:
        np.testing.assert_array_equal(ds[field].values, [r[field] for r in ref], err_msg=field)


def test_uniform_matches_pure_python_and_is_uniform():
    seeds = [(0, 0, 0), (1, 2, 3), (2**63 - 1, 2**40, 999), (12345, 678, 90)]
    for s in seeds:
        assert K.uniform(*s) == reference_uniform(*s)
    u = np.array([K.uniform(5, i, 17) for i in range(20_000)])
    assert 0.0 < u.min() and u.max() < 1.0
    # mean of 20,000 uniforms: SE = sqrt(1/12 / 20000) = 0.0020; allow 4 SE
    assert abs(u.mean() - 0.5) < 4 * 0.0020


def test_same_seed_bit_identical_across_threads_and_chunks(label):
    saved = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = simulate(label, n_patients=4000, seed=5)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = simulate(label, n_patients=4000, seed=5)
    finally:
        numba.set_num_threads(saved)
    chunks = [simulate(label, n_patients=n, seed=5, first_patient=start)
              for start, n in ((0, 1234), (1234, 2766))]
    for name in one.data_vars:
        np.testing.assert_array_equal(one[name].values, two[name].values, err_msg=name)
        joined = np.concatenate([c[name].values for c in chunks])
        np.testing.assert_array_equal(one[name].values, joined, err_msg=name)


def test_common_random_numbers_across_strategies(label):
    """Changing only the regimen leaves every covariate (and the cycle-1 course) unchanged."""
    base = simulate(label, n_patients=5000, seed=9)
    capped = simulate(with_changes(label, regimen={"cumulative_cap": 1.8}), n_patients=5000, seed=9)
    for name in ("age", "salvage", "prior_hsct", "ph_positive", "marrow_blasts", "bilirubin_high",
                 "transplant_eligible", "censor_day", "cohort"):
        np.testing.assert_array_equal(base[name].values, capped[name].values, err_msg=name)
    # cycle 1 is identical under both, so is who responds in cycle 1
    np.testing.assert_array_equal(base.response_cycle.values == 1, capped.response_cycle.values == 1)
    assert (base.cumulative_dose.values != capped.cumulative_dose.values).any()


def test_parameter_sets_equal_simulate_with_each_vector(label):
    """Set s of the PSA entry point is exactly simulate() with parameter vector s, on 1 or 2 threads."""
    from simulator.model.simulation import record_columns, run_parameter_sets

    scenarios = [with_changes(label, parameters=change) for change in (
        {},
        {"resp_intercept_cycle1": 2.0, "hsct_proceed_prob": 0.9},
        {"death_rate_other": 0.05, "nrm_rate": 0.2, "dose_omission_prob": 0.4},
    )]
    par_sets = np.stack([model_arrays(s).par for s in scenarios])
    saved = numba.get_num_threads()
    runs = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            runs.append(run_parameter_sets(model_arrays(label), par_sets, seed=8, n=700, first_patient=50))
    finally:
        numba.set_num_threads(saved)
    expected = [simulate(s, n_patients=700, seed=8, first_patient=50) for s in scenarios]
    for out_float, out_int in runs:
        for s, ds in enumerate(expected):
            for name, column in record_columns(out_float[:, s], out_int[:, s]).items():
                np.testing.assert_array_equal(column, ds[name].values, err_msg=f"set {s}: {name}")
    assert (expected[0].cumulative_dose.values != expected[2].cumulative_dose.values).any()


def test_parameter_sets_with_their_own_patients(label):
    """Each set may start at its own patient: set s is exactly simulate() with that first patient."""
    from simulator.model.simulation import FLOAT_FIELDS, INT_FIELDS, run_parameter_sets

    par = model_arrays(label).par
    firsts = np.array([0, 300, 0, 5_000])
    out_float, out_int = run_parameter_sets(model_arrays(label), np.tile(par, (4, 1)), seed=8, n=300,
                                            first_patient=firsts)
    for s, first in enumerate(firsts):
        ds = simulate(label, n_patients=300, seed=8, first_patient=int(first))
        for fields, out in ((FLOAT_FIELDS, out_float), (INT_FIELDS, out_int)):
            for idx, name, _, _ in fields:
                np.testing.assert_array_equal(out[idx, s], ds[name].values, err_msg=f"set {s}: {name}")
    np.testing.assert_array_equal(out_float[:, 0], out_float[:, 2])
    assert (out_float[0, 0] != out_float[0, 1]).any()


TREATMENT_CHANGES = {
    "soc_chemotherapy": {"chemo_fatal_toxicity": 0.3, "chemo_hsct_prob": 0.9, "chemo_relapse_log_hr": 1.5,
                         "chemo_progression_log_hr": -0.5},
    "blinatumomab": {"blina_fatal_toxicity": 0.1, "blina_hsct_prob": 0.5, "blina_relapse_log_hr": 1.0,
                     "blina_crs_prob": 0.5, "blina_neurologic_prob": 0.3},
    "brexucabtagene": {"cart_manufacturing_failure": 0.2, "cart_dropout_after_progression": 0.8,
                       "cart_fatal_toxicity": 0.2, "cart_hsct_prob": 0.6, "cart_neurologic_prob": 0.5,
                       "cart_durable_prob": 0.5},
}


@pytest.mark.parametrize("treatment", [t for t in K.TREATMENTS if t != "inotuzumab"])
def test_reference_agrees_for_each_treatment(label, treatment):
    """Every treatment module, with rare branches made common (toxic deaths, transplants, relapses)."""
    scenario = with_changes(label, treatment=treatment, comparators=TREATMENT_CHANGES[treatment],
                            parameters={"death_rate_other": 0.05},
                            population={"transplant_eligibility": {"at_age_40": 1.0, "odds_ratio_per_decade": 1.0}})
    ds = simulate(scenario, n_patients=700, seed=4, first_patient=123)
    ref = simulate_reference(model_arrays(scenario), seed=4, n=700, first_patient=123)
    for field in ref[0]:
        np.testing.assert_array_equal(ds[field].values, [r[field] for r in ref], err_msg=field)
    assert set(ds.treatment.values) == {K.TREATMENTS.index(treatment)}
    assert ds.hsct.values.any() and (ds.death_cause.values == K.CAUSE_TOXICITY).any()


@pytest.mark.parametrize(("first", "then"), [("inotuzumab", "brexucabtagene"), ("soc_chemotherapy", "blinatumomab"),
                                           ("brexucabtagene", "inotuzumab")])
def test_reference_agrees_for_sequences(label, first, then):
    """A next treatment at the first relapse or progression: kernel == reference."""
    changes = {**TREATMENT_CHANGES.get(first, {}), **TREATMENT_CHANGES[then if then != "inotuzumab" else first],
               "next_response_after_inotuzumab": -0.5, "next_response_after_soc_chemotherapy": 0.3,
               "next_response_after_brexucabtagene": 0.7}
    scenario = with_changes(label, treatment=first, then=then, comparators=changes,
                            parameters={"death_rate_other": 0.02},
                            population={"transplant_eligibility": {"at_age_40": 1.0, "odds_ratio_per_decade": 1.0}})
    ds = simulate(scenario, n_patients=600, seed=6, first_patient=77)
    ref = simulate_reference(model_arrays(scenario), seed=6, n=600, first_patient=77)
    for field in ref[0]:
        np.testing.assert_array_equal(ds[field].values, [r[field] for r in ref], err_msg=field)
    assert np.isfinite(ds.then_start_day.values).sum() > 50 and ds.then_response.values.sum() > 10


def test_same_patients_under_every_treatment(label):
    """Common random numbers across treatments: covariates and baseline draws do not depend on the treatment."""
    runs = {t: simulate(with_changes(label, treatment=t, parameters={"death_rate_other": 0.05}),
                        n_patients=3000, seed=12) for t in K.TREATMENTS}
    ino = runs["inotuzumab"]

    def other_death_untreated(ds):  # died of other causes, never in remission, progressed or transplanted
        return ((ds.death_cause.values == K.CAUSE_OTHER) & (ds.best_response.values == 0)
                & np.isnan(ds.progression_day.values) & (ds.hsct.values == 0))

    for t, ds in runs.items():
        for name in ("age", "salvage", "prior_hsct", "ph_positive", "marrow_blasts", "bilirubin_high",
                     "transplant_eligible", "censor_day", "cohort"):
            np.testing.assert_array_equal(ds[name].values, ino[name].values, err_msg=f"{t}: {name}")
        # the natural-history clock of death from other causes is the patient's, not the treatment's
        both = other_death_untreated(ds) & other_death_untreated(ino)
        assert both.sum() > 20
        np.testing.assert_array_equal(ds.death_day.values[both], ino.death_day.values[both], err_msg=t)
        if t != "inotuzumab":
            assert (ds.best_response.values != ino.best_response.values).any()
