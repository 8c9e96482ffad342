"""Operating characteristics against analytic answers: group-sequential type I error and power
(recursive integration of the planned bounds), the large-sample truth, nested sample sizes."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from designs import LOG2, RPACT, SELECTION, write_design

from simulator.trial import (
    analytic,
    format_figures,
    load_design,
    look_cuts,
    operating_characteristics,
    sample_size_search,
    simulate_trials,
    trial_arrays,
    true_values,
    verdict,
)
from simulator.trial.boundaries import GRID_R, crossing_probabilities_nb
from simulator.trial.summary import at_stop

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
    """Double-programmed from the Dataset and the truth: each trial selects its arm of highest
    interim utility; P(correct selection) is the share selecting the arm of highest true
    utility; the winner's curse is the selected arm's interim utility minus its truth."""
    path = write_design(tmp_path, SELECTION, n_trials=60)
    design = load_design(path)
    ds = simulate_trials(path)
    truth = true_values(trial_arrays(design, tmp_path), 1, 30.0, n=20_000)
    figures = {f.name: f for f in operating_characteristics(ds, truth)}
    arms = ["low", "capped"]
    utility, chosen = ds.utility.sel(arm=arms).values, ds.selected.sel(arm=arms).values == 1
    assert (chosen.sum(axis=1) == 1).all()
    np.testing.assert_array_equal(utility[chosen], utility.max(axis=1))
    for a, name in enumerate(arms):
        assert figures[f"P(select {name})"].estimate == chosen[:, a].mean()
    true = truth.true_utility.sel(arm=arms).values
    best = int(np.argmax(true))
    assert true[best] > true[1 - best]
    correct = figures["P(correct selection)"]
    assert correct.estimate == chosen[:, best].mean() and arms[best] in correct.note
    curse = figures["winner's curse: selected arm's interim utility - truth"]
    assert curse.estimate == pytest.approx(np.mean(utility[chosen] - np.broadcast_to(true, chosen.shape)[chosen]))


def test_sample_size_search_is_nested_and_monotone(tmp_path):
    path = write_design(tmp_path, RPACT, n_trials=2000)
    design = load_design(path)
    search = sample_size_search(trial_arrays(design, tmp_path), [100, 200, 300, 400], target=0.7)
    power = search.power.values
    assert (np.diff(power) > 0).all()
    smallest = next((s for s, p in zip([100, 200, 300, 400], power) if p >= 0.7), -1)
    assert smallest in (300, 400) and search.attrs["smallest_size"] == smallest


def test_early_stops_scored_against_their_looks_truth(tmp_path):
    """Delayed effect (hazard ratio 1 for 6 months, then 0.5): the truth moves between looks, and
    each trial's estimate is scored against the truth at the look it stopped at (each look's
    mean cut), not at the final look's."""
    rate = LOG2 / 8
    arms = [{"name": "control", "piecewise_exponential": {"rates": [rate]}},
            {"name": "experimental", "piecewise_exponential": {"rates": [rate, 0.5 * rate], "durations": [6.0]}}]
    path = write_design(tmp_path, RPACT, arms=arms, n_trials=400, analyses=[{"events": 100}, {"events": 300}],
                        spending={"function": "obf", "futility": {"z": [0.5, -10.0]}})
    design = load_design(path)
    ds = simulate_trials(path)
    cuts = look_cuts(ds)
    np.testing.assert_allclose(cuts, np.nanmean(ds.cut_time.values, axis=0))
    truth = true_values(trial_arrays(design, tmp_path), 1, cuts, n=200_000)
    np.testing.assert_array_equal(truth.cut_months.values, cuts)
    hr = truth.true_estimate.sel(test="cox").values
    assert hr[0] > hr[1] + 0.05
    stop = ds.stop_look.values
    assert 0.1 < (stop == 1).mean() < 0.9
    est = at_stop(ds, "estimate").sel(test="cox").values
    lo, hi = at_stop(ds, "ci_lower").sel(test="cox").values, at_stop(ds, "ci_upper").sel(test="cox").values
    true = hr[stop - 1]
    figures = {f.name: f for f in operating_characteristics(ds, truth)}
    assert figures["bias: cox"].estimate == pytest.approx(np.mean(np.log(est) - np.log(true)))
    assert figures["CI coverage: cox"].estimate == np.mean((lo <= true) & (true <= hi))
    # what scoring at the final look's truth gave: off by the early stops' share of the truth's change
    assert abs(np.mean(np.log(est) - np.log(hr[-1])) - figures["bias: cox"].estimate) > 0.02
