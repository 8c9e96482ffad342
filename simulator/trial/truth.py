"""The truth a design's estimates are scored against: a large counterfactual run.

The same ``n`` virtual patients are simulated under every arm (ids apart from every trial's,
so they are new patients), enter as the design enrols, drop out at the design's rates and
are cut at each look's calendar time (by default the look's mean cut over the simulated
trials that reached it, :func:`look_cuts`). Each test's estimator applied to the control
copy and an experimental copy gives its large-sample value at that look (for a hazard ratio
under non-proportional hazards it depends on the follow-up, hence the design's entry,
dropout and cut; a binary outcome counts once seen by the cut), so an estimate is scored
against the truth of the look its trial stopped at. The arms' utilities P(CR/CRi) - weight x
P(post-HSCT SOS) over complete follow-up give the true ranking for dose selection.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from simulator.trial import engine as E
from simulator.trial.design import BINARY_ENDPOINTS, MAX_TRIALS, TIME_ENDPOINTS
from simulator.trial.run import TrialArrays, model_outcomes, test_labels

TRUTH_PATIENTS = 1_000_000  # per arm: the 10^6
TRUTH_TRIAL = MAX_TRIALS  # trial index of the counterfactual patients: beyond every simulated trial


def _entries(ta: TrialArrays, u: np.ndarray) -> np.ndarray:
    """Entry times distributed as the design's: uniform in cumulative intensity up to N patients."""
    n_slots, rates, ends = ta.design.sample_size, ta.constants.enroll_rates, ta.constants.enroll_ends
    last = E.inverse_cumulative(float(n_slots), rates, ends)
    knots = np.concatenate([[0.0], ends[ends < last], [last]])
    intensity = np.concatenate([[0.0], np.cumsum(np.diff(knots) * rates[:knots.size - 1])])
    return np.interp(u * n_slots, intensity, knots)


def counterfactual(ta: TrialArrays, seed: int, n: int = TRUTH_PATIENTS) -> dict[str, np.ndarray]:
    """The same ``n`` patients under every arm: endpoints (arm, endpoint, patient), strata, uniforms."""
    if n > E.MAX_SLOTS:
        raise ValueError(f"at most {E.MAX_SLOTS} counterfactual patients, got {n}")
    dc = ta.constants
    piecewise = ta.model[0] is None
    entry = np.empty((1, n))  # slot_draws' entry times are not used: see u_entry
    drop_u = np.empty((1, n))
    pe_u = np.empty((1, n) if piecewise else (0, 0))
    E.slot_draws(seed, TRUTH_TRIAL, np.ones(1), np.array([np.inf]), True, entry, drop_u, pe_u)
    ids = TRUTH_TRIAL * E.MAX_SLOTS + np.arange(n, dtype=np.int64)
    n_arms = len(ta.model)
    tte = np.full((n_arms, len(TIME_ENDPOINTS), n), np.inf)
    binary_time = np.full((n_arms, len(BINARY_ENDPOINTS), n), np.inf)
    stratum = np.zeros(n, dtype=np.int64)
    for a, model in enumerate(ta.model):
        if model is None:
            arm = np.zeros((1, n), dtype=np.int64)  # rows of the one-arm rate table below
            E.piecewise_fill(arm, pe_u, dc.pe_rates[a:a + 1], dc.pe_ends[a:a + 1], tte[a][:, None, :])
        else:
            tte[a], binary_time[a], cov = model_outcomes(model, seed, ids)
            if a == dc.control:
                for bit, factor in enumerate(ta.design.randomization.strata):
                    stratum |= cov[factor].astype(np.int64) << bit
    u_entry = np.random.default_rng([seed, TRUTH_TRIAL]).random(n)  # where in the enrolment each enters
    return {"entry": _entries(ta, u_entry), "drop_u": drop_u[0], "tte": tte, "binary_time": binary_time,
            "stratum": stratum}


def look_cuts(ds: xr.Dataset) -> np.ndarray:
    """Each look's mean calendar cut (months) over the simulated trials that reached it (NaN: none did)."""
    cut = ds.cut_time.values
    reached = np.isfinite(cut).sum(axis=0)
    return np.where(reached > 0, np.nansum(cut, axis=0) / np.maximum(reached, 1), np.nan)


def _estimates_at(ta: TrialArrays, cf: dict[str, np.ndarray], cut: float) -> np.ndarray:
    """Every test's large-sample estimate (test x comparison) with the counterfactual patients cut at ``cut``."""
    dc = ta.constants
    entry, stratum = cf["entry"], cf["stratum"]
    truth = np.full(dc.tests.shape[0] * dc.comparisons.size, np.nan)
    res = np.empty(E.N_RESULT)
    for ci, ex in enumerate(dc.comparisons):
        pair = np.array([dc.control, ex])
        arm = np.repeat(pair, entry.size).astype(np.int64)
        strat = np.tile(stratum, 2)
        drop = np.concatenate([-np.log(cf["drop_u"]) / r if r > 0 else np.full(entry.size, np.inf)
                               for r in dc.drop_rate[pair]])
        ent = np.tile(entry, 2)
        by_time = {}  # endpoint -> the pair's observed data sorted by time (one sort per endpoint)
        for j, q in enumerate(dc.tests):
            e = int(q[E.Q_ENDPOINT])
            if q[E.Q_TYPE] >= E.T_PROPORTIONS:
                t = np.concatenate([cf["binary_time"][a, e] for a in pair])
                x = ((t <= drop) & (ent + t <= cut)).astype(np.int8)  # engine.seen: by the cut, before dropout
                if q[E.Q_LOWER_BETTER] > 0:
                    x = (1 - x).astype(np.int8)
                evaluable = ent + q[E.Q_EVAL] <= cut
                E.binary_test(q, x[evaluable], arm[evaluable], strat[evaluable], dc.n_strata, dc.control, ex,
                              0.0, res)
            else:
                if e not in by_time:
                    t = np.concatenate([cf["tte"][a, e] for a in pair])
                    observed = (t <= drop) & (ent + t <= cut)
                    time = np.where(observed, t, np.minimum(drop, cut - ent))
                    order = np.argsort(time, kind="stable")
                    by_time[e] = (time[order], observed[order].astype(np.int8), arm[order], strat[order])
                E.time_test(q, *by_time[e], dc.n_strata, dc.control, ex, 0.0, res)
            truth[j * dc.comparisons.size + ci] = res[3]
    return truth


def true_values(ta: TrialArrays, seed: int, cut: float | Sequence[float], n: int = TRUTH_PATIENTS,
                cf: dict[str, np.ndarray] | None = None) -> xr.Dataset:
    """Large-sample value of every test's estimate at each look, and the arms' true utilities.

    Parameters
    ----------
    ta : TrialArrays
        The converted design (:func:`simulator.trial.run.trial_arrays`).
    seed : int
        Seed of the counterfactual patients.
    cut : float or sequence of float
        Calendar time (months) of the cut applied to the counterfactual trial: one per look
        (e.g. :func:`look_cuts`; NaN: the look is never reached, its truth NaN), or one for
        every look.
    n : int
        Patients per arm.
    cf : dict, optional
        A :func:`counterfactual` run to reuse.

    Returns
    -------
    xarray.Dataset
        ``true_estimate`` over (``look``, ``test``) (the test labels of
        :func:`simulator.trial.run.test_labels`; NaN for estimates without an estimand),
        ``true_utility`` over ``arm`` (NaN without binary outcomes) and ``true_rate`` over
        (``arm``, ``binary_endpoint``), both over complete follow-up; ``cut_months`` over ``look``.
    """
    cf = cf or counterfactual(ta, seed, n)
    dc = ta.constants
    cuts = np.broadcast_to(np.asarray(cut, dtype=float), (dc.looks.shape[0],))
    by_cut = {c: _estimates_at(ta, cf, c) for c in np.unique(cuts[np.isfinite(cuts)])}
    nan = np.full(dc.tests.shape[0] * dc.comparisons.size, np.nan)
    truth = np.stack([by_cut.get(c, nan) for c in cuts])
    rates = np.isfinite(cf["binary_time"]).mean(axis=2)
    weight = dc.sel_weight if dc.sel_look >= 0 else 1.0
    utility = rates[:, 0] - weight * rates[:, 1]
    if ta.model[0] is None:
        utility[:] = np.nan
        rates[:] = np.nan
    return xr.Dataset(
        {"true_estimate": (("look", "test"), truth, {"long_name": "large-sample value of the estimate at the look",
                                                     "units": "see estimand"}),
         "true_utility": ("arm", utility, {"long_name": "P(CR/CRi) - weight x P(post-HSCT SOS)", "units": "1"}),
         "true_rate": (("arm", "binary_endpoint"), rates, {"long_name": "share of patients", "units": "1"}),
         "cut_months": ("look", cuts.copy(), {"long_name": "calendar cut of the counterfactual trial",
                                              "units": "month"})},
        coords={"look": np.arange(1, cuts.size + 1), "test": test_labels(ta.design),
                "arm": [a.name for a in ta.design.arms], "binary_endpoint": list(BINARY_ENDPOINTS)},
        attrs={"patients_per_arm": cf["entry"].size, "seed": seed,
               "uncertainty": "Monte Carlo, negligible beside the trials' (10^6 patients per arm)"})
