"""Spending on observed information, double-programmed: each trial's bounds recomputed in numpy
from its own event counts (the engine computes them per trial inside the kernel)."""

from __future__ import annotations

import numpy as np
from designs import LOG2, RPACT, write_design

from simulator.trial import engine as E
from simulator.trial import simulate_trials
from simulator.trial.boundaries import GRID_R, efficacy_bounds_nb, spend

ALPHA = 0.025
ARMS_085 = [{"name": "control", "piecewise_exponential": {"rates": [LOG2 / 8]}},
            {"name": "experimental", "piecewise_exponential": {"rates": [0.85 * LOG2 / 8]}}]


def _bounds(fractions: np.ndarray, final: bool, alpha: float) -> np.ndarray:
    """Efficacy bounds at these information fractions: interims spend Pocock's function at
    their fraction (at most 1), a final look all of alpha at its actual fraction."""
    t = fractions.copy()
    t[:-1] = np.minimum(t[:-1], 1.0)
    for k in range(1, t.size):
        t[k] = max(t[k], t[k - 1] + 1e-6)
    spent = spend("pocock", t, alpha)
    if final:
        spent[-1] = alpha
    return efficacy_bounds_nb(t, spent, np.full(t.size, -np.inf), False, GRID_R)


def _check_decisions(ds, test: str, planned_final: float, n_looks: int, alpha: float) -> int:
    """Every decision of ``test`` equals z > the trial's own bound; returns the final looks checked."""
    checked = 0
    for t in range(ds.sizes["trial"]):
        stop = int(ds.stop_look[t])
        events = ds.events.sel(test=test).values[t, :stop].astype(float)
        bounds = _bounds(events / planned_final, stop == n_looks, alpha)
        z = ds.z.sel(test=test).values[t, :stop]
        decision = ds.decision.sel(test=test).values[t, :stop]
        np.testing.assert_array_equal(decision == E.EFFICACY, z > bounds, err_msg=f"trial {t}")
        checked += stop == n_looks
    return checked


def test_final_look_spends_at_its_actual_information(tmp_path):
    """200 planned events but a 30-month minimum follow-up: the final look has more events
    (about 370) and its bound uses them, spending the remaining alpha at the information it
    has (rpact's and gsDesign's update at the final analysis), not at the planned 200. Pocock
    spending and HR 0.85, so that many final z values fall between the two bounds."""
    path = write_design(tmp_path, RPACT, arms=ARMS_085, n_trials=2000,
                        analyses=[{"events": 100}, {"events": 200, "min_follow_up": 30}],
                        spending={"function": "pocock", "information": "observed"})
    ds = simulate_trials(path)
    final = ds.events.sel(test="logrank", look=2).values
    assert np.nanmedian(final) > 340  # the overrun this test is about
    assert _check_decisions(ds, "logrank", 200.0, 2, ALPHA) > 1000


def test_multi_arm_information_counts_the_compared_arms_planned_events(tmp_path):
    """Three arms 1:1:1, 450 planned events over all arms: a comparison's information is its
    two arms' events over their share of the plan (300), not over all arms' 450."""
    arms = ARMS_085 + [{"name": "other", "piecewise_exponential": {"rates": [0.9 * LOG2 / 8]}}]
    path = write_design(tmp_path, RPACT, arms=arms, n_trials=1000, sample_size=600,
                        enrollment={"rates": [25.0], "random": False},
                        analyses=[{"events": 225}, {"events": 450}],
                        spending={"function": "pocock", "information": "observed"})
    ds = simulate_trials(path)
    assert _check_decisions(ds, "logrank: experimental", 300.0, 2, ALPHA / 2) > 500  # Bonferroni
