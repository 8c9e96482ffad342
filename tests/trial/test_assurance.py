"""Trials over draws: classical assurance against its closed form, common patients across draws,
parameter draws reaching the kernel, the truth per draw, the nrm endpoint."""

from __future__ import annotations

import math

import numpy as np
import pytest
from designs import RPACT, STRATEGIES, write_design
from scipy import stats

from simulator.model import kernel as K
from simulator.model.config import ConfigError
from simulator.model.simulation import record_columns, run_kernel_ids
from simulator.trial import load_design, simulate_trials, trial_arrays
from simulator.trial.assurance import (
    assurance_figures,
    parameter_draws,
    prior_draws,
    simulate_assurance,
    true_benefit,
    under_draw,
)
from simulator.trial.design import Assurance
from simulator.trial.run import model_outcomes, resized
from simulator.trial.truth import counterfactual

LAMBDA = math.log(2) / 8  # control hazard per month: median 8 months

# One look at D events, 1:1, exponential arms: the fixed design of Schoenfeld's approximation.
D = 256
CLASSICAL = {
    "name": "classical_assurance",
    "arms": [{"name": "control", "piecewise_exponential": {"rates": [LAMBDA]}},
             {"name": "experimental", "piecewise_exponential": {"rates": [LAMBDA]},
              "log_hazard_ratio": {"mean": math.log(0.8), "sd": 0.1}}],
    "control": "control",
    "sample_size": 600,
    "enrollment": {"rates": [100]},
    "analyses": [{"events": D}],
    "tests": [{"name": "logrank", "type": "logrank", "endpoint": "os"}],
    "n_trials": 100,
    "seed": 17,
}


def _ta(tmp_path, trial, **changes):
    path = write_design(tmp_path, trial, **changes)
    return trial_arrays(load_design(path), path.parent, path)


def closed_form_assurance(m: float, s: float, d: float, alpha: float) -> float:
    """P(reject H0: HR >= 1) when log HR ~ N(m, s^2) and its estimate ~ N(log HR, 4/d) (Schoenfeld, 1:1):
    reject when -estimate * sqrt(d) / 2 > z, so P = Phi((-m sqrt(d) / 2 - z) / sqrt(1 + s^2 d / 4))."""
    z = stats.norm.isf(alpha)
    return float(stats.norm.cdf((-m * math.sqrt(d) / 2 - z) / math.sqrt(1 + s * s * d / 4)))


@pytest.mark.parametrize("sd", [0.0, 0.1, 0.3])
def test_classical_assurance_matches_its_closed_form(tmp_path, sd):
    trial = {**CLASSICAL, "arms": [CLASSICAL["arms"][0], {**CLASSICAL["arms"][1],
                                                          "log_hazard_ratio": {"mean": math.log(0.8), "sd": sd}}]}
    ta = _ta(tmp_path, trial)
    draws = prior_draws(ta, 100)
    ds = simulate_assurance(ta, draws, settings=Assurance(trials_per_draw=100, truth_patients=1000))
    success = ds.success.isel(sample_size=0).values  # (draw, trial): every draw its own patients
    estimate = success.mean()
    se = math.sqrt(estimate * (1 - estimate) / success.size)  # binomial: conservative for stratified draws
    expected = closed_form_assurance(math.log(0.8), sd, D, 0.025)
    assert abs(estimate - expected) < 3 * se + 0.005, (estimate, se, expected)  # 0.005: Schoenfeld's error


def test_each_draw_runs_its_own_trials_of_the_design(tmp_path):
    """Arms without priors: draw k's trials are the design's trials k M .. k M + M - 1."""
    ta = _ta(tmp_path, RPACT)
    ds = simulate_assurance(ta, prior_draws(ta, 3), settings=Assurance(trials_per_draw=40, truth_patients=500))
    plain = simulate_trials(ta, n_trials=120)
    rejected = (plain.decision.isel(test=0) == 1).any("look").values
    for k in range(3):
        mine = slice(40 * k, 40 * (k + 1))
        np.testing.assert_array_equal(ds.success.isel(sample_size=0, draw=k).values, rejected[mine])
        np.testing.assert_array_equal(ds.z.isel(draw=k).values, plain.z.isel(look=0).values[mine])
    assert len(set(ds.true_benefit.values.ravel())) == 1  # the same arms in every draw: the same exact truth


def test_parameter_draws_reach_every_arms_model(tmp_path):
    """Draw 0 holds the arms' own values (the trials are the design's own); draw 1 changes a parameter."""
    ta = _ta(tmp_path, STRATEGIES)
    name = "resp_intercept_cycle1"
    j = K.PARAMETER_NAMES.index(name)
    own = ta.model[0].par[j]
    draws = parameter_draws(ta, [name], np.array([[own], [own - 2.0]]), ["a-b-c", "d-e-f"], None, "test")
    assert [m.par[j] for m in under_draw(ta, draws, 1).model] == [own - 2.0] * 2
    ds = simulate_assurance(ta, draws, settings=Assurance(trials_per_draw=6, truth_patients=200))
    for k in range(2):
        plain = simulate_trials(under_draw(ta, draws, k), n_trials=12)
        stop = plain.stop_look.values[6 * k:6 * (k + 1)] - 1
        np.testing.assert_array_equal(ds.z.isel(draw=k).values, plain.z.values[np.arange(6 * k, 6 * (k + 1)), stop])
    assert list(ds.nrm_driver.values) == ["a", "d"]


def test_strategy_arms_truth_comes_from_each_draws_own_counterfactual_patients(tmp_path):
    """Two draws with the same parameters: their truths differ (own patients, independent errors) but agree
    within 4 Monte Carlo SEs of the difference."""
    ta = _ta(tmp_path, STRATEGIES)
    name = "resp_intercept_cycle1"
    own = ta.model[0].par[K.PARAMETER_NAMES.index(name)]
    draws = parameter_draws(ta, [name], np.array([[own], [own]]), ["a-b-c", "a-b-c"], None, "test")
    ds = simulate_assurance(ta, draws, settings=Assurance(trials_per_draw=2, truth_patients=4000))
    b, se = ds.true_benefit.values[:, 0], ds.true_benefit_se.values[:, 0]
    assert b[0] != b[1] and np.all(se > 0)
    assert abs(b[0] - b[1]) < 4 * math.hypot(*se)


def test_truth_per_draw_is_the_survival_difference_of_the_drawn_hazard_ratio(tmp_path):
    ta = _ta(tmp_path, CLASSICAL)
    draws = prior_draws(ta, 3)
    settings = Assurance(trials_per_draw=2, truth_patients=100_000)
    ds = simulate_assurance(ta, draws, settings=settings)
    months = 24.0
    expected = np.exp(-LAMBDA * np.exp(draws.log_hr[:, 1]) * months) - math.exp(-LAMBDA * months)
    got = ds.true_benefit.isel(experimental=0).values
    np.testing.assert_allclose(got, expected, rtol=1e-12)  # the closed form: exact, no Monte Carlo error
    assert np.all(ds.true_benefit_se.values == 0.0)
    for k in range(3):  # 100,000 counterfactual patients under each arm agree within 4 of their Monte Carlo SEs
        tk = under_draw(ta, draws, k)
        simulated, se = true_benefit(tk, counterfactual(tk, 11 + k, settings.truth_patients), settings)
        assert abs(simulated[0] - got[k]) < 4 * se[0], (k, simulated, got[k], se)


def test_figures_are_fractions_with_intervals_around_them(tmp_path):
    ta = _ta(tmp_path, CLASSICAL)
    ds = simulate_assurance(ta, prior_draws(ta, 20), settings=Assurance(trials_per_draw=20, truth_patients=500,
                                                                        sizes=[300]))
    figures = {f.name: f for f in assurance_figures(ds)}
    a = figures["assurance: P(the trial succeeds)"]
    assert a.lower <= a.estimate <= a.upper and 0 < a.estimate < 1
    assert a.estimate == pytest.approx(float(ds.success.sel(sample_size=600).mean()))
    assert "assurance at 300 patients" in figures
    assert figures["assurance at 300 patients"].estimate < a.estimate


def test_hazard_ratio_prior_needs_piecewise_arms_and_nrm_needs_strategy_arms(tmp_path):
    strategies = {**STRATEGIES, "arms": [{"name": "label", "log_hazard_ratio": {"mean": 0.0, "sd": 0.1}},
                                         STRATEGIES["arms"][1]]}
    with pytest.raises(ConfigError, match="log_hazard_ratio: a prior on the hazard ratio needs"):
        load_design(write_design(tmp_path, strategies))
    nrm = {**CLASSICAL, "tests": [{"name": "nrm", "type": "logrank", "endpoint": "nrm"}]}
    with pytest.raises(ConfigError, match="nrm: the nrm and binary endpoints need strategy arms"):
        load_design(write_design(tmp_path, nrm))


def test_nrm_time_is_death_without_relapse_after_hsct_else_never(tmp_path):
    ta = _ta(tmp_path, STRATEGIES)
    ids = np.arange(5000, dtype=np.int64)
    tte, _, _ = model_outcomes(ta.model[0], 3, ids)
    r = record_columns(*run_kernel_ids(ta.model[0], 3, ids))
    nrm = r["death_cause"] == 2
    assert nrm.sum() > 50 and np.all(np.isinf(tte[2][~nrm]))
    np.testing.assert_array_equal(tte[2][nrm], tte[0][nrm])  # the death time
    assert np.all(r["hsct_day"][nrm] <= r["death_day"][nrm])


def test_nested_sizes_are_the_designs_at_those_sizes(tmp_path):
    """The smaller and larger sizes, analysed on the first slots of the largest, equal the design run at each size."""
    ta = _ta(tmp_path, STRATEGIES, alpha=0.45)  # a lenient test: some trials reject, some do not
    j = K.PARAMETER_NAMES.index("resp_intercept_cycle1")
    draws = parameter_draws(ta, ["resp_intercept_cycle1"], np.array([[ta.model[0].par[j]], [-1.0]]), ["", ""],
                            None, "test")
    ds = simulate_assurance(ta, draws, settings=Assurance(trials_per_draw=5, truth_patients=200, sizes=[60, 140]))
    for k in range(2):
        for size in (60, 90, 140):
            plain = simulate_trials(under_draw(resized(ta, size), draws, k), n_trials=10)
            rejected = (plain.decision.isel(test=0) == 1).any("look").values[5 * k:5 * (k + 1)]
            np.testing.assert_array_equal(ds.success.sel(sample_size=size, draw=k).values, rejected)
            assert 0 < rejected.sum() < 5 or size != 90
            if size == 90:
                np.testing.assert_array_equal(ds.stop_look.isel(draw=k).values, plain.stop_look.values[5 * k:5 * (k + 1)])
