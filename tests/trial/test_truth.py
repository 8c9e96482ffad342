"""The closed-form truth of piecewise-exponential arms against the counterfactual run it replaces.

The simulated truth (10^6 patients under each arm, 2 x 10^6 in all, cut at the look) and the
closed form (:func:`simulator.trial.truth.piecewise_estimates`) estimate the same large-sample
values, so they agree within the simulated truth's Monte Carlo error. Its SE here is each
estimator's own (log-rank variance, Cox information, Greenwood, the RMST's), which treats the
arms' copies as independent samples; they share their uniforms (common random numbers), which
makes the difference's true Monte Carlo error smaller, so Z_TOL such SEs is conservative.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from designs import LOG2, RPACT, write_design

from simulator.trial import engine as E
from simulator.trial import load_design, trial_arrays, true_values
from simulator.trial.truth import TRUTH_PATIENTS, counterfactual, piecewise_estimates

Z_TOL = 4.0  # Monte Carlo tolerance in (conservative) standard errors
RATE = LOG2 / 8
TESTS = [{"name": "logrank", "type": "logrank", "endpoint": "os"},
         {"name": "cox", "type": "cox", "endpoint": "os"},
         {"name": "fh", "type": "logrank", "endpoint": "os", "rho": 0, "gamma": 0.5},
         {"name": "maxcombo", "type": "maxcombo", "endpoint": "pfs"},
         {"name": "rmst", "type": "rmst", "endpoint": "os", "tau": 12},
         {"name": "rmst_past_cut", "type": "rmst", "endpoint": "pfs", "tau": 40},
         {"name": "milestone", "type": "milestone", "endpoint": "os", "time": 9},
         {"name": "milestone_past_cut", "type": "milestone", "endpoint": "os", "time": 40}]
DESIGNS = {
    # proportional hazards (HR 0.5) on two hazard periods, two enrolment periods, dropout
    "proportional": {"arms": [{"name": "control", "piecewise_exponential": {"rates": [2 * RATE, RATE],
                                                                            "durations": [6.0]}},
                              {"name": "experimental", "piecewise_exponential": {"rates": [RATE, 0.5 * RATE],
                                                                                 "durations": [6.0]}}],
                     "enrollment": {"rates": [10.0, 30.0], "durations": [6.0]}},
    # delayed effect (HR 1 for 4 months, then 0.5), the arms' own dropout, a pause in enrolment
    "delayed effect": {"arms": [{"name": "control", "piecewise_exponential": {"rates": [RATE]},
                                 "dropout": {"rate": 0.02}},
                                {"name": "experimental", "piecewise_exponential": {"rates": [RATE, 0.5 * RATE],
                                                                                   "durations": [4.0]}}],
                       "enrollment": {"rates": [20.0, 0.0, 20.0], "durations": [5.0, 3.0]}},
}
CUTS = (14.0, 30.0)  # months: the milestone and RMST horizons "past the cut" lie beyond both


def _simulated(ta, cf, cut):
    """(estimate, SE) of every test (one comparison) on the counterfactual patients cut at ``cut``,
    each from the estimator's own variance (on the log scale for hazard ratios)."""
    dc = ta.constants
    n = cf["entry"].size
    pair = [dc.control, int(dc.comparisons[0])]
    arm = np.repeat(pair, n).astype(np.int64)
    ent = np.tile(cf["entry"], 2)
    drop = np.concatenate([-np.log(cf["drop_u"]) / r if r > 0 else np.full(n, np.inf) for r in dc.drop_rate[pair]])
    out, res = [], np.empty(E.N_RESULT)
    for q in dc.tests:
        t = np.concatenate([cf["tte"][a, int(q[E.Q_ENDPOINT])] for a in pair])
        observed = (t <= drop) & (ent + t <= cut)
        time = np.where(observed, t, np.minimum(drop, cut - ent))
        order = np.argsort(time, kind="stable")
        E.time_test(q, time[order], observed[order].astype(np.int8), arm[order], np.zeros(2 * n, dtype=np.int64),
                    1, dc.control, pair[1], 1.0, res)
        ratio = q[E.Q_TYPE] in (E.T_LOGRANK, E.T_COX)
        lo, hi = (np.log(res[4:6]) if ratio else res[4:6])
        out.append((res[3], (hi - lo) / 2))
    return out


@pytest.mark.parametrize("name", DESIGNS)
def test_closed_form_truth_matches_the_counterfactual_run(tmp_path, name):
    """Every estimate's closed form lies within Z_TOL Monte Carlo SEs of the simulated truth at
    10^6 patients per arm, at an early cut (the milestone and RMST horizons inside the follow-up)
    and a late one; past the longest follow-up both carry the survival at it forward; weighted
    log-rank and MaxCombo have no estimand in either."""
    path = write_design(tmp_path, RPACT, tests=TESTS, **DESIGNS[name])
    ta = trial_arrays(load_design(path), tmp_path)
    cf = counterfactual(ta, 11, TRUTH_PATIENTS)
    for cut in CUTS:
        closed = piecewise_estimates(ta, cut)
        for test, value, (sim, se) in zip(TESTS, closed, _simulated(ta, cf, cut)):
            if test["name"] in ("fh", "maxcombo"):
                assert math.isnan(value) and math.isnan(sim)
                continue
            scale = math.log if test["type"] in ("logrank", "cox") else float
            assert se > 0
            assert abs(scale(value) - scale(sim)) < Z_TOL * se, (name, cut, test["name"], value, sim, se)


def test_closed_form_cox_is_the_hazard_ratio_under_proportional_hazards(tmp_path):
    """Proportional hazards: the Cox limit is the hazard ratio whatever the follow-up, and the
    milestone and RMST truths are the survival functions' exactly; a delayed effect's Cox limit
    moves with the follow-up (towards the late hazard ratio)."""
    path = write_design(tmp_path, RPACT, tests=TESTS, **DESIGNS["proportional"])
    ta = trial_arrays(load_design(path), tmp_path)
    names = [t["name"] for t in TESTS]
    s0 = lambda t: math.exp(-2 * RATE * min(t, 6) - RATE * max(t - 6, 0))  # noqa: E731
    for cut in (8.0, *CUTS, 200.0):
        truth = dict(zip(names, piecewise_estimates(ta, cut)))
        assert truth["cox"] == pytest.approx(0.5, rel=1e-12)
        m = min(9.0, cut)
        assert truth["milestone"] == pytest.approx(s0(m) ** 0.5 - s0(m), rel=1e-12)
    # RMST difference to 12 months with the whole follow-up, integrated piece by piece
    a, b = 2 * RATE, RATE
    rmst = lambda k: ((1 - math.exp(-k * a * 6)) / (k * a)  # noqa: E731
                      + math.exp(-k * a * 6) * (1 - math.exp(-k * b * 6)) / (k * b))
    assert truth["rmst"] == pytest.approx(rmst(0.5) - rmst(1.0), rel=1e-12)
    path = write_design(tmp_path, RPACT, tests=TESTS, **DESIGNS["delayed effect"])
    delayed = [dict(zip(names, piecewise_estimates(trial_arrays(load_design(path), tmp_path), c)))["cox"]
               for c in (8.0, 30.0, 200.0)]
    assert 0.9 > delayed[0] > delayed[1] > delayed[2] > 0.5


def test_truth_of_piecewise_arms_simulates_no_patients(tmp_path, monkeypatch):
    """true_values takes the closed form for piecewise-exponential arms (no counterfactual run),
    one truth per distinct cut, NaN for looks never reached."""
    import simulator.trial.truth as truth_module

    def refuse(*args, **kwargs):
        raise AssertionError("counterfactual patients simulated")

    monkeypatch.setattr(truth_module, "counterfactual", refuse)
    path = write_design(tmp_path, RPACT, tests=TESTS, analyses=[{"events": 100}, {"events": 250}])
    ta = trial_arrays(load_design(path), tmp_path)
    truth = true_values(ta, 1, [20.0, np.nan])
    np.testing.assert_array_equal(truth.true_estimate.sel(look=1).values, piecewise_estimates(ta, 20.0))
    assert np.isnan(truth.true_estimate.sel(look=2)).all() and np.isnan(truth.true_utility).all()
    assert truth.attrs["method"].startswith("closed form")


def test_trial_command_on_piecewise_arms_imports_no_plotting(tmp_path):
    """`inosim trial --no-plots` on piecewise-exponential arms: the truth in closed form, named
    so on screen, and neither matplotlib nor scipy.stats imported (a fresh process)."""
    import subprocess
    import sys

    path = write_design(tmp_path, RPACT, n_trials=20)
    code = ("import sys; from simulator.cli import main; "
            f"code = main(['trial', {str(path)!r}, '--out', {str(tmp_path / 't.nc')!r}, '--no-plots']); "
            "print(sorted(m for m in ('matplotlib', 'scipy.stats') if m in sys.modules)); sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "months): closed form from the arms' hazards" in " ".join(proc.stdout.split())  # wrapped at 100
    assert proc.stdout.rstrip().endswith("[]"), proc.stdout[-300:]
