"""Operating characteristics against analytic answers: group-sequential type I error and power
(recursive integration of the planned bounds), the large-sample truth, nested sample sizes."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from designs import RPACT, SELECTION, write_design

from simulator.trial import (
    analytic,
    format_figures,
    load_design,
    operating_characteristics,
    sample_size_search,
    simulate_trials,
    trial_arrays,
    true_values,
    verdict,
)
from simulator.trial.boundaries import GRID_R, crossing_probabilities_nb

Z_TOL = 3.0  # Monte Carlo tolerance in standard errors
SCHOENFELD_TOL = 0.01  # power: Schoenfeld's normal approximation of the log-rank at 100-300 events

GROUP_SEQUENTIAL = {
    "analyses": [{"events": 100}, {"events": 200}, {"events": 300}],
    "sample_size": 500,
    "enrollment": {"rates": [25.0]},
    "spending": {"function": "obf", "futility": {"beta": 0.2, "theta": 2.5}},
}


def _rejections(ds):
    return (ds.decision.sel(test="logrank") == 1).any("look").values


@pytest.mark.parametrize("information", ["planned", "observed"])
def test_group_sequential_type_one_error(tmp_path, information):
    """Null (identical arms), 3 looks, O'Brien-Fleming spending, non-binding futility:
    rejection within Z_TOL binomial standard errors of alpha = 0.025 over 40,000 trials."""
    spending = {**GROUP_SEQUENTIAL["spending"], "information": information}
    path = write_design(tmp_path, RPACT, **{**GROUP_SEQUENTIAL, "spending": spending}, null=True, n_trials=40_000)
    ds = simulate_trials(path)
    rate = _rejections(ds).mean()
    assert abs(rate - 0.025) < Z_TOL * math.sqrt(0.025 * 0.975 / ds.sizes["trial"])


def test_group_sequential_power_matches_recursive_integration(tmp_path):
    """HR 0.7, proportional hazards: simulated power and stopping by look agree with the
    crossing probabilities of the planned bounds under Schoenfeld's drift sqrt(events)/2 |log HR|
    (within Z_TOL Monte Carlo SEs plus SCHOENFELD_TOL)."""
    path = write_design(tmp_path, RPACT, **GROUP_SEQUENTIAL, n_trials=10_000)
    ds = simulate_trials(path)
    theta = 0.5 * -math.log(0.7)
    up, low = crossing_probabilities_nb(np.array([100.0, 200.0, 300.0]), ds.efficacy_bound.values,
                                        ds.futility_bound.values, theta, GRID_R)
    n = ds.sizes["trial"]
    power = _rejections(ds).mean()
    assert abs(power - up.sum()) < Z_TOL * math.sqrt(up.sum() * (1 - up.sum()) / n) + SCHOENFELD_TOL
    for k in range(3):
        stop_eff = ((ds.stop_look == k + 1) & (ds.decision.sel(test="logrank", look=k + 1) == 1)).mean().item()
        assert abs(stop_eff - up[k]) < Z_TOL * math.sqrt(up[k] * (1 - up[k]) / n) + SCHOENFELD_TOL


def test_truth_and_figures(tmp_path):
    """Proportional hazards: the large-sample Cox and Peto estimates equal the true HR 0.7
    (10^6 patients per arm: SE of log HR ~0.002); the summary covers bias and coverage."""
    path = write_design(tmp_path, RPACT, n_trials=2000)
    design = load_design(path)
    ds = simulate_trials(path)
    truth = true_values(trial_arrays(design, tmp_path), design.seed, 27.96)
    assert truth.true_estimate.sel(test="cox").item() == pytest.approx(0.7, rel=0.01)
    figures = {f.name: f for f in operating_characteristics(ds, truth)}
    cover = figures["CI coverage: cox"]
    assert abs(cover.estimate - 0.95) < Z_TOL * math.sqrt(0.95 * 0.05 / 2000)
    assert abs(figures["bias: cox"].estimate) < 0.01  # log scale
    assert figures["power: primary test rejects (any arm)"].lower < figures["power: logrank"].estimate
    text = format_figures(operating_characteristics(ds, truth) + analytic(ds, truth), "x")
    assert "Schoenfeld events for 80% power" in text and "MC CI" not in text  # the title says what () holds
    # estimate and CI to the same decimals: two significant digits of the CI's half-width
    power = figures["power: logrank"]
    row = next(line for line in text.splitlines() if line.strip().startswith("power: logrank"))
    est, lo, _, hi = row.split()[-4:]
    assert est.endswith("%") and lo.startswith("(") and hi.endswith(")")
    assert {len(x.strip("%()").split(".")[1]) for x in (est, lo, hi)} == {1}  # half-width 1.8: 0.1 resolution
    assert float(est[:-1]) == pytest.approx(100 * power.estimate, abs=0.05)
    assert max(len(line) for line in text.splitlines()) <= 100
    line = verdict(ds, figures=list(figures.values()), planned=analytic(ds, truth))
    assert line.startswith(("Powered", "Underpowered", "Power uncertain")) and "events for 80% power" in line
    # a true hazard ratio above 1 (control better): no sample size gives the one-sided test power
    against = [f if not f.name.startswith("Schoenfeld events for 80%") else
               dataclasses.replace(f, note="true Cox HR 1.054") for f in analytic(ds, truth)]
    assert "no number of events gives this one-sided test power" in verdict(ds, list(figures.values()), against)
    schoenfeld = next(f for f in analytic(ds, truth) if f.name.startswith("Schoenfeld events for 80%"))
    assert schoenfeld.estimate == pytest.approx(4 * (1.959964 + 0.841621) ** 2 / math.log(0.7) ** 2, rel=0.03)


def test_selection_figures(tmp_path):
    path = write_design(tmp_path, SELECTION, n_trials=60)
    design = load_design(path)
    ds = simulate_trials(path)
    truth = true_values(trial_arrays(design, tmp_path), 1, 30.0, n=20_000)
    figures = {f.name: f for f in operating_characteristics(ds, truth)}
    p_low, p_cap = figures["P(select low)"].estimate, figures["P(select capped)"].estimate
    assert p_low + p_cap == pytest.approx(1.0)
    assert figures["P(correct selection)"].estimate in (p_low, p_cap)
    assert "winner's curse: selected arm's interim utility - truth" in figures


def test_sample_size_search_is_nested_and_monotone(tmp_path):
    path = write_design(tmp_path, RPACT, n_trials=2000)
    design = load_design(path)
    search = sample_size_search(trial_arrays(design, tmp_path), [100, 200, 300, 400], target=0.7)
    power = search.power.values
    assert (np.diff(power) > 0).all()
    assert search.attrs["smallest_size"] == 400 if power[2] < 0.7 else 300
